"""The cloud's MQTT clients over TLS (issue 12): the ingest consumer and the config
publisher reach a TLS broker with its CA and their passwords, and refuse a broker they
cannot verify; ``potr ingest --workers 2`` connects each worker as its own identity and
prints no password.

The broker is the project's secure private Mosquitto (``PrivateMosquitto(security=...)``:
a TLS password listener, a client-certificate listener with the CN as username, the
rendered password file and ACL) with a CA from ``broker_config.pki``.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from broker_config import pki
from broker_config.acl import render_acl
from broker_config.passwords import mosquitto_hash, new_secret, render_password_file
from cloud.adapters.mqtt import InboundMessage, MqttConsumer, MqttError, MqttPublisher
from cloud.credentials import write_credentials
from cloud.migrate import migrate
from cloud.mqtt_options import mqtt_options
from cloud.settings import MqttSettings
from contracts.identities import BrokerIdentity
from contracts.topics import Region
from potr.servers.mosquitto import BrokerSecurity, PrivateMosquitto
from tests.waiting import until_sync

pytestmark = pytest.mark.integration

TIMEOUT_S = 10
REGION = Region.AU
#: The identities the broker knows, each with its own password.
USERS = ("_ingest/au-0", "_ingest/au-1", "_config/au")
#: The client certificate's identity (its CN).
CERT_USER = "_ingest/au-7"


@dataclass
class TlsBroker:
    mosq: PrivateMosquitto
    passwords: dict[str, str]
    #: ``client.crt`` / ``client.key`` of :data:`CERT_USER`, from the broker's CA.
    client: pki.IssuedFiles
    #: The certificate of a CA that did not sign the broker's certificate.
    other_ca_file: Path

    @property
    def url(self) -> str:
        return self.mosq.url  # mqtts://127.0.0.1:<TLS password listener>

    @property
    def ca_file(self) -> Path:
        return self.mosq.ca_file


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[TlsBroker]:
    ca, other = tmp_path / "ca", tmp_path / "other-ca"
    pki.init(ca, name="PoTR test CA")
    pki.init(other, name="another CA")
    client = pki.issue_client(ca, CERT_USER, tmp_path / "client")
    passwords = {user: new_secret() for user in USERS}
    identities = [BrokerIdentity(u, REGION) for u in (*USERS, CERT_USER)]
    # Test-only: these tests speak on scratch topics (t/<uuid>), which no identity's
    # production rights cover.
    acl = render_acl([REGION], identities) + "\npattern readwrite t/#\n"
    security = BrokerSecurity(
        passwords=render_password_file({u: mosquitto_hash(p) for u, p in passwords.items()}),
        acl=acl,
        pki_dir=ca,
        server_names=("127.0.0.1",),  # not localhost: test_the_brokers_name_is_checked
    )
    with PrivateMosquitto(persistence=False, security=security) as mosq:
        yield TlsBroker(mosq, passwords, client, other / "ca.crt")


def _settings(broker: TlsBroker, user: str, **overrides: Any) -> MqttSettings:
    """The production shape: mqtts://, the broker's CA, the password apart from the URL."""
    values: dict[str, Any] = {
        "env": "production",
        "mqtt_url": broker.url,
        "mqtt_ca_file": broker.ca_file,
        "mqtt_username": user,
        "mqtt_password": broker.passwords.get(user),
    }
    return MqttSettings(**{**values, **overrides})


@pytest.fixture
def received() -> list[InboundMessage]:
    return []


@pytest.fixture
def consumer_of(received: list[InboundMessage]) -> Iterator[Any]:
    started: list[MqttConsumer] = []

    def make(settings: MqttSettings, topic: str) -> MqttConsumer:
        consumer = MqttConsumer(
            mqtt_options(settings, f"c-{uuid.uuid4().hex[:6]}"), [topic], received.append
        )
        consumer.start(TIMEOUT_S)
        started.append(consumer)
        return consumer

    yield make
    for consumer in started:
        consumer.stop()


def test_consumer_and_publisher_connect_with_the_ca_and_their_passwords(
    tls_broker: TlsBroker, consumer_of: Any, received: list[InboundMessage]
) -> None:
    topic = f"t/{uuid.uuid4().hex}"
    consumer = consumer_of(_settings(tls_broker, "_ingest/au-0"), topic)
    publisher = MqttPublisher(mqtt_options(_settings(tls_broker, "_config/au"), "p-1"))
    try:
        assert publisher.start(TIMEOUT_S)
        assert publisher.publish(topic, b"over tls")
        until_sync(lambda: received, TIMEOUT_S, "the publish, through the TLS broker")
    finally:
        publisher.stop()
    assert received[0].payload == b"over tls"
    assert consumer.ack(received[0])


def test_a_broker_signed_by_another_ca_is_refused(
    tls_broker: TlsBroker, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = _settings(tls_broker, "_ingest/au-0", mqtt_ca_file=tls_broker.other_ca_file)
    consumer = MqttConsumer(mqtt_options(wrong, "c-wrong-ca"), ["t/#"], lambda _m: None)
    with pytest.raises(MqttError, match="CERTIFICATE_VERIFY_FAILED"):
        consumer.start(TIMEOUT_S)

    wrong = _settings(tls_broker, "_config/au", mqtt_ca_file=tls_broker.other_ca_file)
    publisher = MqttPublisher(mqtt_options(wrong, "p-wrong-ca"))
    with caplog.at_level(logging.WARNING, logger="cloud.adapters.mqtt"):
        try:
            # It keeps trying in the background; the first failure is logged with its reason.
            publisher.start(0)
            until_sync(
                lambda: "certificate verify failed" in caplog.text, TIMEOUT_S, "the refusal logged"
            )
            assert not publisher.connected
        finally:
            publisher.stop()


def test_the_brokers_name_is_checked(tls_broker: TlsBroker) -> None:
    # Right CA, but the certificate names 127.0.0.1 only.
    url = tls_broker.url.replace("127.0.0.1", "localhost")
    settings = _settings(tls_broker, "_ingest/au-0", mqtt_url=url)
    consumer = MqttConsumer(mqtt_options(settings, "c-name"), ["t/#"], lambda _m: None)
    with pytest.raises(MqttError, match=r"[Mm]ismatch"):
        consumer.start(TIMEOUT_S)


def test_a_wrong_password_is_refused_at_once_and_never_logged(
    tls_broker: TlsBroker, caplog: pytest.LogCaptureFixture
) -> None:
    bad = "wrong-" + uuid.uuid4().hex
    settings = _settings(tls_broker, "_ingest/au-0", mqtt_password=bad)
    consumer = MqttConsumer(mqtt_options(settings, "c-bad-pw"), ["t/#"], lambda _m: None)
    with (
        caplog.at_level(logging.DEBUG),
        pytest.raises(MqttError, match="refused the connection: Not authorized") as err,
    ):
        consumer.start(TIMEOUT_S)
    assert bad not in str(err.value)
    assert bad not in caplog.text
    assert "mqtts://_ingest/au-0@127.0.0.1" in caplog.text


def test_a_client_certificate_stands_in_for_a_password(
    tls_broker: TlsBroker, consumer_of: Any, received: list[InboundMessage]
) -> None:
    topic = f"t/{uuid.uuid4().hex}"
    settings = _settings(
        tls_broker,
        CERT_USER,
        mqtt_url=f"mqtts://127.0.0.1:{tls_broker.mosq.cert_port}",
        mqtt_cert_file=tls_broker.client.cert_file,
        mqtt_key_file=tls_broker.client.key_file,
    )
    consumer_of(settings, topic)
    publisher = MqttPublisher(mqtt_options(_settings(tls_broker, "_config/au"), "p-2"))
    try:
        assert publisher.start(TIMEOUT_S)
        assert publisher.publish(topic, b"to a certificate")
        until_sync(lambda: received, TIMEOUT_S, "delivery to the certificate's client")
    finally:
        publisher.stop()


def test_potr_ingest_workers_connect_as_their_own_identities_and_print_no_password(
    tls_broker: TlsBroker, database_url: str, tmp_path: Path
) -> None:
    migrate(database_url)
    credentials = tmp_path / "mqtt-credentials.yaml"
    write_credentials(
        credentials, {u: p for u, p in tls_broker.passwords.items() if u.startswith("_ingest/")}
    )
    env = {
        **os.environ,
        "POTR_ENV": "production",
        "POTR_JWT_SECRET": uuid.uuid4().hex * 2,
        "POTR_DATABASE_URL": database_url,
        "POTR_MQTT_URL": tls_broker.url,
        "POTR_MQTT_CA_FILE": str(tls_broker.ca_file),
        "POTR_MQTT_USERNAME": "_ingest/au",
        "POTR_MQTT_CREDENTIALS_FILE": str(credentials),
        "POTR_MQTT_CLIENT_ID": "ingest-tls",
    }
    env.pop("POTR_AMQP_URL", None)  # the in-process bus, whatever the environment says
    out_path, err_path = tmp_path / "out", tmp_path / "err"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "potr", "ingest", "--workers", "2"],
            env=env,
            stdout=out,
            stderr=err,
        )
    try:

        def subscribed() -> int:
            if proc.poll() is not None:
                pytest.fail(f"potr ingest exited {proc.returncode}: {err_path.read_text()}")
            return err_path.read_text().count(" subscribed to ")

        until_sync(lambda: subscribed() >= 2, 60, "both workers subscribed over TLS")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    output = out_path.read_text() + err_path.read_text()
    assert "(_ingest/au-0, _ingest/au-1) on mqtts://127.0.0.1" in output
    for n in (0, 1):  # each once: no worker pushed another off its identity
        assert output.count(f"MQTT connected to mqtts://_ingest/au-{n}@127.0.0.1") == 1
    for password in tls_broker.passwords.values():
        assert password not in output
    assert "Not authorized" not in output
