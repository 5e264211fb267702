"""A regional broker's config: TLS listeners, global security after them, refusals; and the
rewrite that lets a candidate config start beside a live broker for its check."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from broker_config.mosquitto import (
    MosquittoConfig,
    MosquittoConfigError,
    MosquittoListener,
    TlsCertificateListener,
    TlsFiles,
    TlsPasswordListener,
)
from potr.servers.mosquitto import for_check

TLS = TlsFiles(Path("/etc/potr/ca.crt"), Path("/etc/potr/server.crt"), Path("/etc/potr/s.key"))
CRL = Path("/etc/potr/crl.pem")


def region_config(**overrides: object) -> MosquittoConfig:
    fields: dict[str, object] = {
        "listeners": (
            TlsPasswordListener(8883, TLS),
            TlsCertificateListener(8884, TLS, crlfile=CRL),
        ),
        "password_file": Path("/etc/potr/passwd"),
        "acl_file": Path("/etc/potr/acl"),
        "pid_file": Path("/run/mosquitto/mosquitto.pid"),
        "persistence_dir": Path("/var/lib/mosquitto"),
    }
    fields.update(overrides)
    return MosquittoConfig(**fields)  # type: ignore[arg-type]


def _block(text: str, port: int) -> list[str]:
    """The lines of the listener on ``port``, up to the next listener or the security part."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"listener {port}"))
    block = [lines[start]]
    for line in lines[start + 1 :]:
        if line.startswith(("listener ", "#")):
            break
        block.append(line)
    return block


def test_the_password_listener_is_tls_without_client_certificates() -> None:
    assert _block(region_config().render(), 8883) == [
        "listener 8883",
        "cafile /etc/potr/ca.crt",
        "certfile /etc/potr/server.crt",
        "keyfile /etc/potr/s.key",
        "tls_version tlsv1.2",
        "require_certificate false",
        "use_username_as_clientid true",
    ]


def test_the_certificate_listener_requires_one_and_takes_its_cn_as_username() -> None:
    assert _block(region_config().render(), 8884) == [
        "listener 8884",
        "cafile /etc/potr/ca.crt",
        "certfile /etc/potr/server.crt",
        "keyfile /etc/potr/s.key",
        "tls_version tlsv1.2",
        "require_certificate true",
        "use_identity_as_username true",
        "crlfile /etc/potr/crl.pem",
        "use_username_as_clientid true",
    ]


def test_security_lines_come_after_the_last_listener() -> None:
    """Before the first listener they would open a default listener on 0.0.0.0:1883."""
    lines = region_config().render().splitlines()
    last_listener = max(i for i, line in enumerate(lines) if line.startswith("listener "))
    for line in (
        "allow_anonymous false",
        "password_file /etc/potr/passwd",
        "acl_file /etc/potr/acl",
    ):
        assert lines.index(line) > last_listener, line
    assert "per_listener_settings false" in lines


def test_the_broker_wide_settings_of_a_region() -> None:
    lines = region_config().render().splitlines()
    first_listener = next(i for i, line in enumerate(lines) if line.startswith("listener "))
    for line in (
        "persistence true",
        "persistence_location /var/lib/mosquitto/",
        "autosave_interval 1",
        "pid_file /run/mosquitto/mosquitto.pid",
        "max_inflight_messages 100",
        "max_queued_messages 100000",
        f"max_queued_bytes {256 * 1024 * 1024}",
        "max_packet_size 262144",
        "set_tcp_nodelay true",
    ):
        assert lines.index(line) < first_listener, line


def test_a_plain_listener_is_refused_outside_development() -> None:
    with pytest.raises(MosquittoConfigError, match="plain MQTT only in development"):
        region_config(listeners=(MosquittoListener(1883),))


def test_a_plain_listener_stays_on_loopback_even_in_development() -> None:
    with pytest.raises(MosquittoConfigError, match="must be on loopback"):
        region_config(listeners=(MosquittoListener(1883, host="0.0.0.0"),), development=True)


def test_development_adds_a_plain_loopback_listener_to_the_tls_ones() -> None:
    conf = region_config(
        listeners=(
            TlsPasswordListener(8883, TLS),
            TlsCertificateListener(8884, TLS, crlfile=CRL),
            MosquittoListener(1883),
        ),
        development=True,
    )
    text = conf.render()
    assert "listener 1883 127.0.0.1\n" in text
    assert "allow_anonymous false\n" in text


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"allow_anonymous": True}, "allow_anonymous"),
        ({"use_username_as_clientid": False}, "use_username_as_clientid"),
        ({"acl_file": None}, "acl_file"),
        ({"listeners": ()}, "at least one listener"),
        (
            {"listeners": (TlsPasswordListener(8883, TLS), TlsPasswordListener(8883, TLS))},
            "ports must differ",
        ),
    ],
)
def test_unsafe_settings_are_refused(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(MosquittoConfigError, match=message):
        region_config(**overrides)


def test_a_candidate_is_checked_on_fresh_loopback_ports_away_from_live_state() -> None:
    ports = itertools.count(40001)
    checked = for_check(region_config().render(), lambda: next(ports)).splitlines()
    assert "listener 40001 127.0.0.1" in checked
    assert "listener 40002 127.0.0.1" in checked
    assert not any(line.startswith(("listener 8883", "listener 8884")) for line in checked)
    live = [
        line
        for line in checked
        if line.startswith(("pid_file", "persistence_location", "autosave_interval"))
    ]
    assert live == []
    assert checked[-6:] == [
        "persistence false",
        "log_dest stderr",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "log_type information",
    ]
    # what is being checked stays as written
    for line in ("crlfile /etc/potr/crl.pem", "acl_file /etc/potr/acl", "keyfile /etc/potr/s.key"):
        assert line in checked
