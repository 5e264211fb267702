"""Webhooks, the pure part (cloud.notify.webhooks): signatures as a receiver checks them,
the destination guard, the retry schedule, what an answer means.

Signatures are recomputed here with ``hmac`` from the documented recipe; back-off
bounds are worked out by hand from base 30 s, cap 3600 s.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud.notify import RetryPolicy, sign, signature_header, verify_signature
from cloud.notify.webhooks import (
    WebhookRefused,
    address_refusal,
    classify_status,
    parse_networks,
    parse_webhook_url,
    pinned_address,
)

SECRET = "whsec_test-secret"
BODY = b'{"kind":"alarm_raised","title":"Alarm"}'
T = 1_751_371_200  # 2025-07-01T12:00:00Z


def _recipe(secret: str, timestamp: int, body: bytes) -> str:
    """The receiver's recipe from the module docstring."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


# -- signatures --------------------------------------------------------------------------
def test_the_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    assert sign(SECRET, T, BODY) == _recipe(SECRET, T, BODY)
    assert signature_header([SECRET], T, BODY) == f"t={T},v1={_recipe(SECRET, T, BODY)}"


def test_during_a_rotation_both_secrets_sign() -> None:
    header = signature_header(["whsec_new", "whsec_old"], T, BODY)
    assert header == f"t={T},v1={_recipe('whsec_new', T, BODY)},v1={_recipe('whsec_old', T, BODY)}"
    assert verify_signature(header, BODY, "whsec_old", now=T)
    assert verify_signature(header, BODY, "whsec_new", now=T)


@pytest.mark.parametrize(
    ("header", "body", "secret", "now", "ok"),
    [
        (f"t={T},v1={_recipe(SECRET, T, BODY)}", BODY, SECRET, T + 299, True),
        (f"t={T},v1={_recipe(SECRET, T, BODY)}", BODY, SECRET, T - 300, True),
        (f"t={T},v1={_recipe(SECRET, T, BODY)}", BODY, SECRET, T + 301, False),  # a replay
        (f"t={T},v1={_recipe(SECRET, T, BODY)}", BODY + b" ", SECRET, T, False),  # tampered
        (f"t={T},v1={_recipe(SECRET, T, BODY)}", BODY, "whsec_other", T, False),
        (f"t={T + 1},v1={_recipe(SECRET, T, BODY)}", BODY, SECRET, T, False),  # moved t
        (f"v1={_recipe(SECRET, T, BODY)}", BODY, SECRET, T, False),  # no t
        (f"t={T},v0={_recipe(SECRET, T, BODY)}", BODY, SECRET, T, False),  # unknown scheme
        ("garbage", BODY, SECRET, T, False),
        ("t=" + "9" * 3000, BODY, SECRET, T, False),
    ],
)
def test_a_receiver_accepts_only_a_fresh_matching_signature(
    header: str, body: bytes, secret: str, now: int, ok: bool
) -> None:
    assert verify_signature(header, body, secret, now=now) is ok


# -- destinations ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fc00::1", "private"),
        ("169.254.169.254", "link-local"),  # the cloud's metadata service
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("100.64.0.1", "not a public address"),  # carrier-grade NAT
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        ("::ffff:10.0.0.1", "private"),
        ("64:ff9b::a00:1", "private"),  # NAT64 of 10.0.0.1
        ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
        ("93.184.215.14", None),
        ("2606:4700:4700::1111", None),
    ],
)
def test_webhooks_may_reach_only_public_addresses(address: str, reason: str | None) -> None:
    assert address_refusal(ipaddress.ip_address(address)) == reason


def test_allowed_networks_let_through_what_they_hold() -> None:
    loopback = parse_networks("127.0.0.0/8, ::1")
    assert address_refusal(ipaddress.ip_address("127.0.0.1"), loopback) is None
    assert address_refusal(ipaddress.ip_address("::ffff:127.0.0.1"), loopback) is None
    assert address_refusal(ipaddress.ip_address("::1"), loopback) is None
    assert address_refusal(ipaddress.ip_address("10.0.0.1"), loopback) == "private"


def test_one_refused_address_refuses_the_host_and_the_first_is_pinned() -> None:
    public = [ipaddress.ip_address("93.184.215.14"), ipaddress.ip_address("2606:4700::1")]
    assert pinned_address("hooks.example.com", public) == public[0]
    mixed = [public[0], ipaddress.ip_address("10.0.0.7")]
    with pytest.raises(WebhookRefused, match=r"private address \(10\.0\.0\.7\)"):
        pinned_address("hooks.example.com", mixed)
    with pytest.raises(WebhookRefused, match="no address"):
        pinned_address("hooks.example.com", [])


@pytest.mark.parametrize(
    ("url", "host", "port", "target", "authority"),
    [
        (
            "https://hooks.example.com/in?x=1",
            "hooks.example.com",
            443,
            "/in?x=1",
            "hooks.example.com",
        ),
        (
            "https://Hooks.Example.com:8443",
            "hooks.example.com",
            8443,
            "/",
            "hooks.example.com:8443",
        ),
        ("https://[2001:db8::1]:8443/a", "2001:db8::1", 8443, "/a", "[2001:db8::1]:8443"),
        ("https://hooks.example.com./in", "hooks.example.com", 443, "/in", "hooks.example.com"),
    ],
)
def test_webhook_urls_are_split_for_the_call(
    url: str, host: str, port: int, target: str, authority: str
) -> None:
    parsed = parse_webhook_url(url)
    assert (parsed.host, parsed.port, parsed.target, parsed.authority) == (
        host,
        port,
        target,
        authority,
    )


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://hooks.example.com/in", "https"),
        ("ftp://hooks.example.com/in", "https"),
        ("https://user:pw@hooks.example.com/in", "credentials"),
        ("https://hooks.example.com/in#frag", "fragment"),
        ("https:///in", "no host"),
        ("https://hööks.example.com/in", "ASCII"),
        ("https://hooks.example.com/a b", "ASCII"),
        ("https://hooks.example.com:99999/", "not a URL"),
    ],
)
def test_webhook_urls_are_refused(url: str, why: str) -> None:
    with pytest.raises(WebhookRefused, match=why):
        parse_webhook_url(url)


def test_plain_http_only_where_allowed() -> None:
    assert parse_webhook_url("http://127.0.0.1:8080/x", allow_http=True).port == 8080


# -- retries -----------------------------------------------------------------------------
def test_the_back_off_doubles_up_to_the_cap_with_bounded_jitter() -> None:
    policy = RetryPolicy(base_s=30, cap_s=3600, max_attempts=8)
    assert policy.schedule() == [
        (15, 30),
        (30, 60),
        (60, 120),
        (120, 240),
        (240, 480),
        (480, 960),
        (960, 1920),
    ]
    assert policy.delay(1, 0.0) == timedelta(seconds=15)
    assert policy.delay(1, 0.5) == timedelta(seconds=22.5)
    assert RetryPolicy(base_s=30, cap_s=100).schedule()[2:4] == [(50, 100), (50, 100)]


def test_retry_after_lengthens_the_wait_up_to_the_cap() -> None:
    policy = RetryPolicy(base_s=30, cap_s=3600)
    assert policy.delay(1, 0.0, retry_after_s=200) == timedelta(seconds=200)
    assert policy.delay(1, 0.0, retry_after_s=5) == timedelta(seconds=15)
    assert policy.delay(1, 0.0, retry_after_s=99_999) == timedelta(seconds=3600)


def test_after_the_last_attempt_there_is_no_next() -> None:
    policy = RetryPolicy(base_s=30, cap_s=3600, max_attempts=8)
    now = datetime(2025, 7, 1, tzinfo=UTC)
    assert policy.next_attempt_at(now, 7, 0.0) == now + timedelta(seconds=960)
    assert policy.next_attempt_at(now, 8, 0.0) is None


@given(
    base=st.floats(1, 600),
    factor=st.floats(1, 100),
    failed=st.integers(1, 200),
    jitter=st.floats(0, 1, exclude_max=True),
)
def test_every_wait_lies_between_half_its_ceiling_and_the_cap(
    base: float, factor: float, failed: int, jitter: float
) -> None:
    policy = RetryPolicy(base_s=base, cap_s=base * factor, max_attempts=1000)
    wait = policy.delay(failed, jitter).total_seconds()
    ceiling = min(base * factor, base * 2 ** (failed - 1))
    assert ceiling / 2 - 1e-6 <= wait <= ceiling + 1e-6
    assert wait <= base * factor + 1e-6
    assert policy.ceiling_s(failed) <= policy.ceiling_s(failed + 1)


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (200, "sent"),
        (204, "sent"),
        (301, "failed"),  # redirects are not followed
        (400, "failed"),
        (401, "failed"),
        (404, "failed"),
        (408, "retry"),
        (410, "failed"),
        (425, "retry"),
        (429, "retry"),
        (500, "retry"),
        (503, "retry"),
    ],
)
def test_what_an_answer_means(status: int, verdict: str) -> None:
    assert classify_status(status) == verdict
