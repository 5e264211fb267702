"""What ingest checks that the broker cannot (issue 12), the pure parts: message bounds,
the partition window, the new-device cap, the gateway cache, and bounded, rate-limited
dead letters. The database side is in tests/integration/test_ingest_checks.py."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from cloud.ingest.deadletters import (
    DeadLetterLimiter,
    LimiterConfig,
    dead_letter_row,
    dead_letter_source,
)
from cloud.ingest.device_cap import admit_new_devices
from cloud.ingest.gateways import GatewayCache, KnownGateway
from cloud.ingest.limits import IngestLimits
from cloud.ingest.settings import IngestSettings
from cloud.ingest.validate import (
    Accepted,
    Bounds,
    Rejected,
    salvage_stream_seq_prefix,
    validate,
)
from contracts.timeutil import to_wire

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
TOPIC = "potr/v1/au/gw-one/telemetry"
STREAM = uuid.UUID("6f1c2f7e-9a43-4a8e-9f1e-3f0cb1a1d2e4")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def _batch(stamps: list[datetime], seq: int = 7) -> dict[str, object]:
    # Keys in the agent's order: v, stream_id, seq first.
    return {
        "v": 1,
        "stream_id": str(STREAM),
        "seq": seq,
        "readings": [
            {"device": f"SN{i}", "ts": to_wire(ts), "values": {"pv_w": 1.0}}
            for i, ts in enumerate(stamps)
        ],
    }


# -- message bounds ----------------------------------------------------------------------
def test_a_payload_at_the_byte_limit_is_read_and_one_byte_more_is_refused_unread() -> None:
    raw = orjson.dumps(_batch([NOW]))
    at_limit = raw + b" " * (600 - len(raw))  # JSON allows trailing whitespace
    assert len(at_limit) == 600
    bounds = Bounds(max_bytes=600)
    assert isinstance(validate(TOPIC, at_limit, now=NOW, bounds=bounds), Accepted)

    verdict = validate(TOPIC, at_limit + b" ", now=NOW, bounds=bounds)
    assert isinstance(verdict, Rejected)
    assert verdict.reason == "message of 601 bytes exceeds the limit of 600 bytes"
    # Its stream still advances (read from the start of the payload only).
    assert verdict.stream_seq == (STREAM, 7)


def test_an_oversized_payload_without_a_stream_at_its_start_salvages_nothing() -> None:
    tail = b'"stream_id": "' + str(STREAM).encode() + b'", "seq": 3}'
    payload = b'{"v": 1, "pad": "' + b"x" * 2_000 + b'", ' + tail
    verdict = validate(TOPIC, payload, now=NOW, bounds=Bounds(max_bytes=1_024))
    assert isinstance(verdict, Rejected)
    assert verdict.stream_seq is None


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b'{"v":1,"stream_id":"%s","seq":42,"readings":[' % str(STREAM).encode(), (STREAM, 42)),
        (b'{"seq": 9, "stream_id": "%s"' % str(STREAM).encode(), (STREAM, 9)),
        (b'{"v":1,"stream_id":"not-a-uuid-at-all-not-a-uuid-at-all","seq":1', None),
        (b'{"v":1,"stream_id":"%s","seq":0,' % str(STREAM).encode(), None),
        (b'{"v":1,"stream_id":"%s","seq":1.5,' % str(STREAM).encode(), None),
        (b'{"v":1,"stream_id":"%s"' % str(STREAM).encode(), None),
    ],
    ids=["agent-order", "any-order", "bad-uuid", "seq-zero", "seq-float", "no-seq"],
)
def test_stream_and_seq_are_salvaged_from_a_payload_prefix(
    head: bytes, expected: tuple[uuid.UUID, int] | None
) -> None:
    assert salvage_stream_seq_prefix(head + b"x" * 5_000) == expected


def test_a_batch_over_the_readings_limit_is_refused_whole_and_at_the_limit_kept() -> None:
    bounds = Bounds(max_readings=3)
    kept = validate(TOPIC, orjson.dumps(_batch([NOW] * 3)), now=NOW, bounds=bounds)
    assert isinstance(kept, Accepted)
    assert len(kept.readings) == 3

    refused = validate(TOPIC, orjson.dumps(_batch([NOW] * 4)), now=NOW, bounds=bounds)
    assert isinstance(refused, Rejected)
    assert refused.reason == "4 readings exceed the limit of 3 per message"
    assert refused.stream_seq == (STREAM, 7)


# -- the partition window ------------------------------------------------------------------
def test_readings_before_the_window_are_quarantined_and_its_first_instant_is_kept() -> None:
    # 2025-03-01 minus 10 days is 2025-02-19: the window opens at its midnight (UTC).
    opens = datetime(2025, 2, 19, tzinfo=UTC)
    stamps = [opens - timedelta(milliseconds=1), opens, NOW]
    verdict = validate(TOPIC, orjson.dumps(_batch(stamps)), now=NOW, bounds=Bounds(past_days=10))
    assert isinstance(verdict, Accepted)
    assert [r.ts for r in verdict.readings] == [opens, NOW]
    assert verdict.quarantine_reason == (
        "1 of 3 readings older than 10 days (limit 2025-02-19T00:00:00.000Z, outside the "
        "partition window; first: device 'SN0' at 2025-02-18T23:59:59.999Z)"
    )


def test_readings_too_old_and_too_new_are_both_named() -> None:
    stamps = [NOW - timedelta(days=500), NOW + timedelta(hours=1), NOW]
    verdict = validate(TOPIC, orjson.dumps(_batch(stamps)), now=NOW)
    assert isinstance(verdict, Accepted)
    assert [r.ts for r in verdict.readings] == [NOW]
    reason = verdict.quarantine_reason or ""
    assert "1 of 3 readings more than 300 s in the future" in reason
    assert "1 of 3 readings older than 400 days" in reason


# -- the new-device cap --------------------------------------------------------------------
def test_new_devices_are_admitted_up_to_the_cap_announced_first_then_by_local_id() -> None:
    new = {("gw-a", "R-2"), ("gw-a", "R-1"), ("gw-a", "Z-birth"), ("gw-a", "R-3")}
    admitted, refused = admit_new_devices(
        new, announced={("gw-a", "Z-birth")}, added_today={"gw-a": 1}, cap=3
    )
    assert admitted == {("gw-a", "Z-birth"), ("gw-a", "R-1")}
    assert refused == {("gw-a", "R-2"), ("gw-a", "R-3")}


def test_each_gateway_has_its_own_allowance_and_none_goes_below_zero() -> None:
    new = {("gw-a", "1"), ("gw-b", "1"), ("gw-b", "2")}
    admitted, refused = admit_new_devices(new, (), {"gw-a": 70, "gw-b": 0}, cap=64)
    assert admitted == {("gw-b", "1"), ("gw-b", "2")}
    assert refused == {("gw-a", "1")}


def test_a_cap_of_zero_admits_nothing() -> None:
    assert admit_new_devices({("gw-a", "1")}, {("gw-a", "1")}, {}, cap=0) == (
        set(),
        {("gw-a", "1")},
    )


# -- the gateway cache -------------------------------------------------------------------------
def test_a_known_gateway_is_trusted_for_the_ttl_only() -> None:
    cache = GatewayCache(ttl_s=10)
    cache.put("gw-a", KnownGateway("au", True), now=100.0)
    assert cache.get("gw-a", 109.9) == KnownGateway("au", True)
    assert cache.get("gw-a", 110.0) is None


def test_a_zero_ttl_caches_nothing_and_the_size_stays_bounded() -> None:
    uncached = GatewayCache(ttl_s=0)
    uncached.put("gw-a", KnownGateway("au", True), now=1.0)
    assert uncached.get("gw-a", 1.0) is None

    small = GatewayCache(ttl_s=60, max_entries=3)
    for i in range(10):
        small.put(f"gw-{i}", KnownGateway("au", True), now=1.0)
        assert len(small._data) <= 3
    assert small.get("gw-9", 2.0) is not None


# -- dead letters ---------------------------------------------------------------------------
def test_a_dead_letter_keeps_a_prefix_the_original_size_and_its_hash() -> None:
    payload = b"abc" * 2_000
    row = dead_letter_row(NOW, TOPIC, payload, "why", prefix_bytes=4_096)
    received_at, topic, prefix, reason, _digest, size, sha = row
    assert (received_at, topic, reason) == (NOW, TOPIC, "why")
    assert prefix == payload[:4_096]
    assert size == 6_000
    assert len(sha) == 32
    # SHA-256("abc"), FIPS 180-2 appendix B.1: the hash is of the payload alone.
    abc = dead_letter_row(NOW, TOPIC, b"abc", "why", prefix_bytes=0)
    assert abc[2] == b""
    assert abc[6].hex() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_a_dead_letters_topic_and_reason_are_bounded_and_nul_free() -> None:
    row = dead_letter_row(NOW, "t" * 10_000, b"", "r\x00" * 5_000, prefix_bytes=10)
    assert len(row[1]) == 512
    assert len(row[3]) == 2_000
    assert "\x00" not in row[3]
    assert row[3].startswith("r\\u0000")


@pytest.mark.parametrize(
    ("topic", "source"),
    [
        ("potr/v1/au/gw-one/telemetry", "au/gw-one"),
        ("potr/v1/us/NOT_VALID/event", "us/NOT_VALID"),
        ("elsewhere/x", "elsewhere/x"),
        ("potr/v1/au/" + "g" * 500 + "/telemetry", ("au/" + "g" * 500)[:100]),
    ],
)
def test_a_dead_letter_is_charged_to_the_topics_gateway(topic: str, source: str) -> None:
    assert dead_letter_source(topic) == source


def _limiter(clock: Clock, **over: float) -> DeadLetterLimiter:
    config: dict[str, float] = {
        "per_source_per_s": 1.0,
        "source_burst": 3,
        "total_per_s": 100.0,
        "total_burst": 100,
        "sources_max": 100,
        "summary_s": 60.0,
    }
    config.update(over)
    return DeadLetterLimiter(LimiterConfig(**config), clock)  # type: ignore[arg-type]


def test_one_source_gets_its_burst_then_its_rate_and_the_rest_is_counted() -> None:
    clock = Clock()
    limiter = _limiter(clock)
    assert [limiter.admit("au/gw-a") for _ in range(5)] == [True, True, True, False, False]
    assert limiter.admit("au/gw-b")  # another source has its own bucket
    clock.now += 1.0  # one token back at 1/s
    assert [limiter.admit("au/gw-a") for _ in range(2)] == [True, False]
    assert limiter.suppressed == 3


def test_sprayed_sources_are_bounded_by_the_total_bucket() -> None:
    clock = Clock()
    limiter = _limiter(clock, total_burst=10, total_per_s=0.5, sources_max=5)
    admitted = sum(limiter.admit(f"au/gw-{i}") for i in range(1_000))
    assert admitted == 10
    assert limiter.suppressed == 990
    assert len(limiter._buckets) == 5  # least recently used sources forgotten


def test_a_forgotten_source_starts_again_with_a_full_burst() -> None:
    clock = Clock()
    limiter = _limiter(clock, source_burst=1, sources_max=2)
    assert limiter.admit("a")
    assert not limiter.admit("a")
    limiter.admit("b")
    limiter.admit("c")  # "a" is the least recently used: forgotten
    assert limiter.admit("a")


def test_the_summary_comes_once_per_interval_with_the_top_sources() -> None:
    clock = Clock()
    limiter = _limiter(clock, source_burst=1, summary_s=60.0)
    for source, n in (("au/gw-a", 4), ("au/gw-b", 2)):
        for _ in range(n):
            limiter.admit(source)
    assert limiter.summary() is None  # not yet an interval
    clock.now += 60.0
    summary = limiter.summary()
    assert summary is not None
    assert (summary.total, summary.top) == (4, (("au/gw-a", 3), ("au/gw-b", 1)))
    assert summary.describe() == (
        "4 dead letters not stored in the last 60 s (rate limit; by source: au/gw-a 3, au/gw-b 1)"
    )
    clock.now += 60.0
    assert limiter.summary() is None  # nothing suppressed since


def test_the_summarys_per_source_counts_are_bounded_too() -> None:
    clock = Clock()
    limiter = _limiter(clock, source_burst=1, total_burst=1, sources_max=2)
    for i in range(50):
        limiter.admit(f"s{i}")
    clock.now += 60.0
    summary = limiter.summary()
    assert summary is not None
    assert summary.total == 49
    assert dict(summary.top) == {"s1": 1, "s2": 1, "(other sources)": 47}


# -- settings → limits -----------------------------------------------------------------------
def test_the_limits_follow_the_settings() -> None:
    settings = IngestSettings(
        database_url="postgresql://x@127.0.0.1/x",
        future_skew_s=60,
        ingest_max_message_bytes=2_048,
        ingest_max_readings=10,
        ingest_partition_past_days=30,
        ingest_max_new_devices_per_day=5,
        ingest_dead_letters_per_source_per_min=6,
        ingest_gateway_cache_s=0,
    )
    limits = IngestLimits.from_settings(settings)
    assert limits.bounds == Bounds(future_skew_s=60, max_bytes=2_048, max_readings=10, past_days=30)
    assert limits.max_new_devices_per_day == 5
    assert limits.gateway_cache_s == 0
    assert limits.dead_letter_rate.per_source_per_s == pytest.approx(0.1)
    assert IngestLimits.from_settings(IngestSettings()) == IngestLimits()
