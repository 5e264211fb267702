"""A secure private Mosquitto 2.0.11 with paho clients: passwords over TLS, client
certificates from the private CA (CN = username), revocation with reload, and the check of
candidate configs.

Passwords are hashed by ``mosquitto_passwd`` itself, certificates made by
``broker_config.pki``; every verdict is the broker's (CONNACK, TLS alert, delivery).
"""

from __future__ import annotations

import datetime as dt
import os
import ssl
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from broker_config import pki
from potr.servers.mosquitto import BrokerSecurity, PrivateMosquitto, validate_candidate
from tests.waiting import until_sync

pytestmark = [pytest.mark.integration, pytest.mark.security]

GATEWAY = "gw-au-0001"
WATCHER = "_tech/watcher"
WATCHER_PASSWORD = "watcher-" + uuid.uuid4().hex
PASSWORD_GATEWAY = "gw-au-0002"
GATEWAY_PASSWORD = "gw-" + uuid.uuid4().hex
# A gateway may publish only under its own username; the watcher reads every gateway's.
ACL = f"""pattern readwrite t/%u
user {WATCHER}
topic read t/#
"""
WAIT_S = 5.0


def _password_file(tmp_path: Path, users: dict[str, str]) -> str:
    path = tmp_path / "passwd"
    for user, password in users.items():
        flags = ["-b"] if path.exists() else ["-c", "-b"]
        subprocess.run(
            ["mosquitto_passwd", *flags, str(path), user, password], check=True, timeout=10
        )
    return path.read_text()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[PrivateMosquitto]:
    passwords = _password_file(
        tmp_path, {WATCHER: WATCHER_PASSWORD, PASSWORD_GATEWAY: GATEWAY_PASSWORD}
    )
    security = BrokerSecurity(passwords=passwords, acl=ACL, pki_dir=tmp_path / "ca")
    pki.init(tmp_path / "ca")
    with PrivateMosquitto(persistence=False, security=security) as running:
        yield running


@dataclass
class Outcome:
    """What the broker said to one connection attempt."""

    connected: threading.Event = field(default_factory=threading.Event)
    refused: threading.Event = field(default_factory=threading.Event)
    reason: str = ""
    received: list[str] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)
    subscribed: threading.Event = field(default_factory=threading.Event)


def _client(
    outcome: Outcome,
    *,
    ca: Path | None,
    cert: pki.IssuedFiles | None = None,
    username: str | None = None,
    password: str | None = None,
) -> mqtt.Client:
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"probe-{uuid.uuid4().hex[:8]}",
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    if ca is not None:
        client.tls_set(
            ca_certs=str(ca),
            certfile=str(cert.cert_file) if cert else None,
            keyfile=str(cert.key_file) if cert else None,
        )
    if username is not None:
        client.username_pw_set(username, password)

    def on_connect(c: mqtt.Client, u: object, f: object, rc: object, p: object) -> None:
        outcome.reason = str(rc)
        if getattr(rc, "is_failure", True):
            outcome.refused.set()
        else:
            outcome.connected.set()

    def on_disconnect(c: mqtt.Client, u: object, f: object, rc: object, p: object) -> None:
        outcome.reason = outcome.reason or f"disconnected: {rc}"
        outcome.refused.set()

    def on_message(c: mqtt.Client, u: object, message: mqtt.MQTTMessage) -> None:
        outcome.received.append(message.topic)
        outcome.arrived.set()

    def on_subscribe(c: mqtt.Client, u: object, mid: int, codes: object, p: object) -> None:
        outcome.subscribed.set()

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_disconnect = on_disconnect
    client.on_message = on_message
    return client


def _attempt(port: int, outcome: Outcome, client: mqtt.Client) -> bool:
    """Connect; True once CONNACK says success, False when refused (CONNACK failure, TLS
    alert, closed socket), failing the test if the broker says nothing in time. Drives
    paho's loop here (no thread), so a refusal costs no reconnect back-off."""
    deadline = time.monotonic() + WAIT_S
    try:
        client.connect("127.0.0.1", port, keepalive=10)
        while not (outcome.connected.is_set() or outcome.refused.is_set()):
            if time.monotonic() > deadline:
                pytest.fail(f"no answer from the broker on port {port} in {WAIT_S}s")
            if client.loop(timeout=0.05) != mqtt.MQTT_ERR_SUCCESS:
                outcome.refused.set()
    except (ssl.SSLError, OSError) as exc:
        outcome.reason = f"{type(exc).__name__}: {exc}"
        return False
    return outcome.connected.is_set()


def _connects(port: int, **kwargs: object) -> tuple[bool, str]:
    outcome = Outcome()
    client = _client(outcome, **kwargs)  # type: ignore[arg-type]
    try:
        return _attempt(port, outcome, client), outcome.reason
    finally:
        client.disconnect()


@pytest.fixture
def watcher(broker: PrivateMosquitto) -> Iterator[Outcome]:
    """A technician reading every gateway's ``t/<id>`` over the password listener."""
    outcome = Outcome()
    client = _client(outcome, ca=broker.ca_file, username=WATCHER, password=WATCHER_PASSWORD)
    assert broker.tls_port is not None
    assert _attempt(broker.tls_port, outcome, client), outcome.reason
    client.loop_start()
    client.subscribe("t/#", qos=1)
    until_sync(outcome.subscribed.is_set, WAIT_S, "the watcher's SUBACK")
    try:
        yield outcome
    finally:
        client.disconnect()
        client.loop_stop()


def test_a_gateway_logs_in_with_its_password_over_verified_tls(
    broker: PrivateMosquitto,
) -> None:
    assert broker.tls_port is not None
    ok, reason = _connects(
        broker.tls_port, ca=broker.ca_file, username=PASSWORD_GATEWAY, password=GATEWAY_PASSWORD
    )
    assert ok, reason


def test_a_wrong_password_and_no_password_are_refused(broker: PrivateMosquitto) -> None:
    assert broker.tls_port is not None
    wrong, _ = _connects(
        broker.tls_port, ca=broker.ca_file, username=PASSWORD_GATEWAY, password="guess"
    )
    anonymous, reason = _connects(broker.tls_port, ca=broker.ca_file)
    assert not wrong
    assert not anonymous, reason


def test_plaintext_to_a_tls_listener_gets_no_session(broker: PrivateMosquitto) -> None:
    assert broker.tls_port is not None
    ok, reason = _connects(
        broker.tls_port, ca=None, username=PASSWORD_GATEWAY, password=GATEWAY_PASSWORD
    )
    assert not ok, reason


def test_the_client_verifies_the_broker_against_the_ca(
    broker: PrivateMosquitto, tmp_path: Path
) -> None:
    pki.init(tmp_path / "stranger")
    assert broker.tls_port is not None
    ok, reason = _connects(
        broker.tls_port,
        ca=tmp_path / "stranger" / "ca.crt",
        username=PASSWORD_GATEWAY,
        password=GATEWAY_PASSWORD,
    )
    assert not ok
    assert "CERTIFICATE_VERIFY_FAILED" in reason


def test_a_client_certificate_logs_in_with_its_cn_as_username(
    broker: PrivateMosquitto, watcher: Outcome, tmp_path: Path
) -> None:
    assert broker.pki_dir is not None
    assert broker.cert_port is not None
    cert = pki.issue_client(broker.pki_dir, GATEWAY, tmp_path / "gw")
    outcome = Outcome()
    client = _client(outcome, ca=broker.ca_file, cert=cert)
    assert _attempt(broker.cert_port, outcome, client), outcome.reason
    client.loop_start()
    try:
        # ``pattern readwrite t/%u`` lets it write t/<CN> and nothing else: the denied
        # publish goes first, so had it been delivered it would have arrived first.
        client.publish("t/gw-au-0002", b"not mine", qos=1).wait_for_publish(WAIT_S)
        client.publish(f"t/{GATEWAY}", b"mine", qos=1).wait_for_publish(WAIT_S)
        until_sync(watcher.arrived.is_set, WAIT_S, "the gateway's own message at the watcher")
        assert watcher.received == [f"t/{GATEWAY}"]
    finally:
        client.disconnect()
        client.loop_stop()


def test_the_certificate_listener_refuses_a_client_without_a_certificate(
    broker: PrivateMosquitto,
) -> None:
    assert broker.cert_port is not None
    ok, reason = _connects(
        broker.cert_port, ca=broker.ca_file, username=PASSWORD_GATEWAY, password=GATEWAY_PASSWORD
    )
    assert not ok, reason


def test_a_certificate_from_another_ca_is_refused(broker: PrivateMosquitto, tmp_path: Path) -> None:
    pki.init(tmp_path / "stranger")
    forged = pki.issue_client(tmp_path / "stranger", GATEWAY, tmp_path / "forged")
    assert broker.cert_port is not None
    ok, reason = _connects(broker.cert_port, ca=broker.ca_file, cert=forged)
    assert not ok, reason


def test_after_revoke_and_reload_the_revoked_certificate_is_refused_and_its_successor_is_not(
    broker: PrivateMosquitto, tmp_path: Path
) -> None:
    assert broker.pki_dir is not None
    assert broker.cert_port is not None
    port = broker.cert_port
    old = pki.issue_client(broker.pki_dir, GATEWAY, tmp_path / "old")
    new = pki.issue_client(broker.pki_dir, GATEWAY, tmp_path / "new")  # rotation overlap
    assert _connects(port, ca=broker.ca_file, cert=old)[0]
    pki.revoke(broker.pki_dir, serial=old.record.serial)
    broker.reload()
    until_sync(
        lambda: not _connects(port, ca=broker.ca_file, cert=old)[0],
        WAIT_S,
        "the revoked certificate to be refused after the reload",
    )
    # The reload re-read the server key as user mosquitto (when started as root): the
    # listener still serves the certificate that was not revoked.
    ok, reason = _connects(port, ca=broker.ca_file, cert=new)
    assert ok, reason


def test_a_crl_past_its_next_update_refuses_every_certificate(
    broker: PrivateMosquitto, tmp_path: Path
) -> None:
    """Why ``potr pki crl`` must run before the next update: OpenSSL refuses them all."""
    assert broker.pki_dir is not None
    assert broker.cert_port is not None
    port = broker.cert_port
    cert = pki.issue_client(broker.pki_dir, GATEWAY, tmp_path / "gw")
    assert _connects(port, ca=broker.ca_file, cert=cert)[0]
    week_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=7)
    pki.refresh_crl(broker.pki_dir, crl_days=1, now=week_ago)
    broker.reload()
    until_sync(
        lambda: not _connects(port, ca=broker.ca_file, cert=cert)[0],
        WAIT_S,
        "every certificate refused under an expired CRL",
    )
    pki.refresh_crl(broker.pki_dir)
    broker.reload()
    until_sync(
        lambda: _connects(port, ca=broker.ca_file, cert=cert)[0],
        WAIT_S,
        "the certificate accepted again under a fresh CRL",
    )


def test_a_development_plain_listener_still_wants_a_password(tmp_path: Path) -> None:
    passwords = _password_file(tmp_path, {PASSWORD_GATEWAY: GATEWAY_PASSWORD})
    security = BrokerSecurity(passwords=passwords, acl=ACL, dev_plain=True)
    with PrivateMosquitto(persistence=False, security=security) as broker:
        assert broker.plain_port is not None
        assert broker.url == f"mqtt://127.0.0.1:{broker.plain_port}"
        anonymous, _ = _connects(broker.plain_port, ca=None)
        ok, reason = _connects(
            broker.plain_port, ca=None, username=PASSWORD_GATEWAY, password=GATEWAY_PASSWORD
        )
    assert not anonymous
    assert ok, reason


def test_the_check_accepts_the_running_brokers_own_config(broker: PrivateMosquitto) -> None:
    conf = (broker.root / "mosquitto.conf").read_text()
    check = validate_candidate(conf)
    assert check.ok, check.reason
    assert check.exit_code is None


def test_the_check_refuses_a_bad_keyword(broker: PrivateMosquitto) -> None:
    conf = (broker.root / "mosquitto.conf").read_text() + "max_inflight_mesages 10\n"
    check = validate_candidate(conf)
    assert not check.ok
    assert check.exit_code == 3
    assert "max_inflight_mesages" in check.reason


def test_the_check_refuses_an_acl_the_broker_cannot_read(broker: PrivateMosquitto) -> None:
    if os.geteuid() != 0:
        pytest.skip("only a broker started as root drops to another user")
    unreadable = broker.root / "acl-root-only"  # in a directory the broker may enter
    unreadable.write_text(ACL)
    unreadable.chmod(0o600)
    conf = (
        (broker.root / "mosquitto.conf")
        .read_text()
        .replace(f"acl_file {broker.acl_file}", f"acl_file {unreadable}")
    )
    check = validate_candidate(conf)
    assert not check.ok
    assert check.exit_code == 13, check.reason
