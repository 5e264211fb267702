"""Reliability scenario 13 — MQTT identity: one test per forgery of issue 12's "Why",
each refused by a real Mosquitto started from the generated config (TLS listeners, the
rendered password file and ACL, ``use_username_as_clientid``).

A denied publish is silent under MQTT 3.1.1 (and only sometimes answered under v5), so
every denial is asserted where it matters: an observer allowed to read everything never
receives the forgery. Each forgery is followed, on the same connection, by a marker the
observer may receive; QoS 1 from one client keeps its order, so once the marker has
arrived a forgery the broker had routed would have arrived before it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from broker_config import pki
from broker_config.acl import render_acl
from broker_config.passwords import mosquitto_hash, render_password_file
from contracts.identities import BrokerIdentity
from potr.servers.mosquitto import BrokerSecurity, PrivateMosquitto
from tests.integration.mqtt_probe import Probe, ProbeTls

REGION = "au"
PASSWORDS = {
    "gw-a": "secret-a",
    "gw-b": "secret-b",
    "_ingest/au-0": "secret-ingest",
    "_config/au": "secret-config",
    "_tech/alice": "secret-alice",
    "observer": "secret-observer",  # test-only: reads everything (the oracle)
}
CERT_GATEWAY = "gw-c"


def t(gateway: str, kind: str, region: str = REGION) -> str:
    return f"potr/v1/{region}/{gateway}/{kind}"


@dataclass
class Broker:
    mosq: PrivateMosquitto
    certs: Path

    def probe(self, user: str | None, password: str | None = None, **kw: object) -> Probe:
        assert self.mosq.tls_port is not None
        return Probe(
            self.mosq.tls_port,
            user,
            password if password is not None else PASSWORDS.get(user or ""),
            tls=ProbeTls(self.mosq.ca_file),
            **kw,  # type: ignore[arg-type]
        )

    def connected(self, user: str, **kw: object) -> Probe:
        probe = self.probe(user, **kw)
        assert probe.connect(), f"{user}: {probe.reason}"
        return probe

    def cert_probe(self, cert_dir: Path) -> Probe:
        assert self.mosq.cert_port is not None
        return Probe(
            self.mosq.cert_port,
            tls=ProbeTls(self.mosq.ca_file, cert_dir / "client.crt", cert_dir / "client.key"),
        )


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    ca = tmp_path / "ca"
    pki.init(ca)
    pki.issue_client(ca, CERT_GATEWAY, tmp_path / "gw-c")
    identities = [BrokerIdentity(u, REGION) for u in PASSWORDS if u != "observer"] + [
        BrokerIdentity(CERT_GATEWAY, REGION)
    ]
    acl = render_acl([REGION], identities) + "\nuser observer\ntopic read #\n"
    passwords = render_password_file({u: mosquitto_hash(p) for u, p in PASSWORDS.items()})
    with PrivateMosquitto(
        persistence=False, security=BrokerSecurity(passwords, acl, pki_dir=ca)
    ) as mosq:
        yield Broker(mosq, tmp_path)


@pytest.fixture
def observer(broker: Broker) -> Iterator[Probe]:
    probe = broker.connected("observer")
    probe.subscribe("#")
    yield probe
    probe.close()


def marker(probe: Probe, observer: Probe, topic: str) -> None:
    """Publish a unique marker on ``topic`` (one ``probe`` may write) and wait until the
    observer has it: everything ``probe`` published before it has been judged."""
    payload = uuid.uuid4().bytes
    probe.publish(topic, payload)
    assert observer.wait_for(topic, payload), f"marker on {topic} never arrived"


def assert_never_routed(observer: Probe, *topics: str) -> None:
    got = set(observer.topics())
    assert not got & set(topics), f"the broker routed {sorted(got & set(topics))}"


# -- connecting ---------------------------------------------------------------------


def test_anonymous_connect_is_refused(broker: Broker) -> None:
    probe = broker.probe(None)
    assert not probe.connect()
    assert "Not authorized" in str(probe.reason) or "Bad user" in str(probe.reason)


def test_a_wrong_password_is_refused(broker: Broker) -> None:
    probe = broker.probe("gw-a", "not-the-secret")
    assert not probe.connect()
    assert probe.reason is not None


def test_plaintext_to_a_tls_listener_gets_no_session(broker: Broker) -> None:
    assert broker.mosq.tls_port is not None
    probe = Probe(broker.mosq.tls_port, "gw-a", PASSWORDS["gw-a"])  # no TLS
    assert not probe.connect(timeout_s=3)


def test_an_unknown_client_certificate_is_refused(broker: Broker, tmp_path: Path) -> None:
    other = tmp_path / "other-ca"
    pki.init(other, name="somebody else's CA")
    pki.issue_client(other, "gw-a", tmp_path / "forged")
    probe = broker.cert_probe(tmp_path / "forged")
    assert not probe.connect(timeout_s=3)
    # A certificate of the broker's own CA is accepted on the same listener.
    real = broker.cert_probe(broker.certs / "gw-c")
    assert real.connect(), real.reason
    real.close()


# -- what a gateway may write and read ---------------------------------------------------


@pytest.mark.parametrize(
    "kind", ["telemetry", "state", "birth", "event", "cmd_ack", "config_state"]
)
def test_a_gateway_cannot_write_another_gateways_topics(
    broker: Broker, observer: Probe, kind: str
) -> None:
    gw_a = broker.connected("gw-a")
    gw_a.publish(t("gw-b", kind), b'{"forged": true}')
    marker(gw_a, observer, t("gw-a", kind))
    assert_never_routed(observer, t("gw-b", kind))
    gw_a.close()


def test_a_certificate_gateway_cannot_write_another_gateways_topics(
    broker: Broker, observer: Probe
) -> None:
    gw_c = broker.cert_probe(broker.certs / "gw-c")
    assert gw_c.connect(), gw_c.reason
    gw_c.publish(t("gw-a", "telemetry"), b"forged")
    marker(gw_c, observer, t("gw-c", "telemetry"))  # its username is its certificate's CN
    assert_never_routed(observer, t("gw-a", "telemetry"))
    gw_c.close()


@pytest.mark.parametrize("kind", ["cmd", "config", "stored"])
def test_a_gateway_cannot_write_its_own_cmd_config_or_stored(
    broker: Broker, observer: Probe, kind: str
) -> None:
    gw_a = broker.connected("gw-a")
    gw_a.publish(t("gw-a", kind), b"forged", retain=kind == "config")
    marker(gw_a, observer, t("gw-a", "telemetry"))
    assert_never_routed(observer, t("gw-a", kind))
    gw_a.close()


def test_a_gateway_cannot_write_another_regions_topics(broker: Broker, observer: Probe) -> None:
    gw_a = broker.connected("gw-a")
    gw_a.publish(t("gw-a", "telemetry", region="us"), b"forged")
    gw_a.publish(t("gw-a", "state", region="es"), b"forged")
    marker(gw_a, observer, t("gw-a", "telemetry"))
    assert_never_routed(observer, t("gw-a", "telemetry", "us"), t("gw-a", "state", "es"))
    gw_a.close()


def test_subscribing_to_everything_yields_only_the_gateways_own_topics(broker: Broker) -> None:
    gw_a = broker.connected("gw-a")
    gw_a.subscribe("#")  # granted (Mosquitto checks reads at delivery), delivers nothing foreign
    gw_b = broker.connected("gw-b")
    config = broker.connected("_config/au")
    gw_b.publish(t("gw-b", "telemetry"), b"b's telemetry")
    config.publish(t("gw-b", "cmd"), b"b's command")
    config.publish(t("gw-a", "cmd"), b"a's command")  # the marker: a may read its own cmd
    assert gw_a.wait_for(t("gw-a", "cmd"), b"a's command")
    assert gw_a.topics() == [t("gw-a", "cmd")]
    for p in (gw_a, gw_b, config):
        p.close()


def test_taking_over_another_gateways_client_id_is_impossible(broker: Broker) -> None:
    """``use_username_as_clientid``: gw-b asking for client id ``gw-a`` gets ``gw-b``,
    so gw-a keeps its session (without it, gw-a would be kicked off)."""
    gw_a = broker.connected("gw-a", client_id="gw-a")
    gw_a.subscribe(t("gw-a", "cmd"))
    intruder = broker.connected("gw-b", client_id="gw-a")
    config = broker.connected("_config/au")
    config.publish(t("gw-a", "cmd"), b"still yours")
    assert gw_a.wait_for(t("gw-a", "cmd"), b"still yours")
    assert not gw_a.wait_disconnected(0)  # never kicked
    assert t("gw-a", "cmd") not in intruder.topics()
    for p in (gw_a, intruder, config):
        p.close()


# -- services and technicians --------------------------------------------------------------


def test_a_technician_cannot_publish_telemetry_or_commands(broker: Broker, observer: Probe) -> None:
    tech = broker.connected("_tech/alice")
    forged = [t("gw-a", "telemetry"), t("gw-a", "cmd"), t("gw-a", "config"), t("gw-a", "stored")]
    for topic in forged:
        tech.publish(topic, b"forged")
    # Substituted into the gateway patterns its name gives _tech/alice/telemetry: a topic
    # two levels deeper than any gateway's, which ingest's potr/v1/au/+/telemetry never reads.
    ingest = broker.connected("_ingest/au-0")
    ingest.subscribe("$share/ingest/potr/v1/au/+/telemetry")
    tech.publish("potr/v1/au/_tech/alice/telemetry", b"not a gateway")
    # What it may do: its own configuration request, which the config service reads.
    marker(tech, observer, "potr/v1/au/_tech/alice/config_req")
    assert_never_routed(observer, *forged)
    assert ingest.topics() == []
    for p in (tech, ingest):
        p.close()


def test_only_ingest_writes_stored_and_only_the_config_service_writes_cmd(
    broker: Broker, observer: Probe
) -> None:
    ingest = broker.connected("_ingest/au-0")
    config = broker.connected("_config/au")
    ingest.publish(t("gw-a", "cmd"), b"ingest forging a command")
    config.publish(t("gw-a", "stored"), b"config forging stored")
    marker(ingest, observer, t("gw-a", "stored"))
    marker(config, observer, t("gw-a", "cmd"))
    forged = [(t("gw-a", "cmd"), b"ingest forging a command")]
    forged += [(t("gw-a", "stored"), b"config forging stored")]
    assert not [m for m in observer.received if m in forged]
    for p in (ingest, config):
        p.close()


# -- revocation ---------------------------------------------------------------------------


def test_a_revoked_password_gateway_is_cut_off_and_cannot_reconnect(
    broker: Broker, observer: Probe
) -> None:
    gw_a = broker.connected("gw-a")
    users = {u: p for u, p in PASSWORDS.items() if u != "gw-a"}
    broker.mosq.reload(
        passwords=render_password_file({u: mosquitto_hash(p) for u, p in users.items()})
    )
    assert gw_a.wait_disconnected(2.0), "still connected 2 s after the reload"
    again = broker.probe("gw-a")
    assert not again.connect()


def test_a_revoked_certificate_gateway_is_denied_everything_and_cannot_reconnect(
    broker: Broker, observer: Probe
) -> None:
    gw_c = broker.cert_probe(broker.certs / "gw-c")
    assert gw_c.connect(), gw_c.reason
    marker(gw_c, observer, t("gw-c", "telemetry"))
    assert broker.mosq.pki_dir is not None
    pki.revoke(broker.mosq.pki_dir, cn="gw-c")
    ids = [BrokerIdentity(u, REGION) for u in PASSWORDS if u != "observer"]
    ids.append(BrokerIdentity(CERT_GATEWAY, REGION, blocked=True))
    broker.mosq.reload(acl=render_acl([REGION], ids) + "\nuser observer\ntopic read #\n")
    # Its TLS session outlives the CRL; the ACL's deny takes its rights at once. Judge
    # by another client's marker published after the gateway's attempt.
    gw_a = broker.connected("gw-a")
    deadline_payload = b"after revocation"
    gw_c.publish(t("gw-c", "telemetry"), deadline_payload)
    marker(gw_a, observer, t("gw-a", "telemetry"))
    assert (t("gw-c", "telemetry"), deadline_payload) not in observer.received
    fresh = broker.cert_probe(broker.certs / "gw-c")
    assert not fresh.connect(timeout_s=3), "a revoked certificate connected"
    for p in (gw_c, gw_a):
        p.close()
