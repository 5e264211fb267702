"""Field technicians push a grid-code profile over MQTT (issue 18.4), end to end: a
private Mosquitto with TLS, the generated password file and ACL (the config publisher,
the config service's request listener and two technicians each their own identity),
real PostgreSQL, the config service's listener as ``potr config run`` starts it, and
``potr tech push`` itself for the accepted case.

The config service learns technicians (``user.*``) and work orders (``workorder.*``)
from its tracker, as its bus consumers apply them. A fake gateway subscribed to the
gateway's retained ``config`` topic witnesses what was published; the answers on the
reply topic are the technician's.
"""

from __future__ import annotations

import queue
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from broker_config import pki
from broker_config.acl import render_acl
from broker_config.passwords import mosquitto_hash, render_password_file
from cloud.adapters.mqtt import InboundMessage, MqttConsumer, MqttOptions
from cloud.adapters.postgres import create_pool
from cloud.bootstrap import create_tech_listener, create_tracker, open_config_service
from cloud.config import ConfigService, ConfigSettings, ConfigTracker, write_key_file
from cloud.events.users import UserChanged
from cloud.events.workorders import WorkOrderChanged
from cloud.migrate import migrate
from contracts.identities import BrokerIdentity
from contracts.messages import ConfigReq, ConfigResp
from contracts.timeutil import utc_now
from contracts.topics import Kind, Region, tech_topic, topic
from potr.cli import app
from potr.servers.mosquitto import BrokerSecurity, PrivateMosquitto
from potr.tech import new_request, push
from tests.integration.der_birth import der_inverter_birth
from tests.integration.mqtt_probe import Probe, ProbeTls

pytestmark = [pytest.mark.integration, pytest.mark.security]

GW = "gw-tech-1"
INV = "SN-DER-1"
SITE = 10
ALICE, BOB = "MO-100", "MO-200"
PASSWORDS = {
    "_config/au": "secret-config",
    "_config/au-tech": "secret-config-tech",
    "_tech/alice": "secret-alice",
    "_tech/bob": "secret-bob",
    "observer": "secret-observer",  # test-only: reads everything (the oracle)
}


def _options(mosq: PrivateMosquitto, user: str) -> MqttOptions:
    assert mosq.tls_port is not None
    return MqttOptions(
        "127.0.0.1",
        mosq.tls_port,
        client_id=f"t-{uuid.uuid4().hex[:8]}",
        username=user,
        password=SecretStr(PASSWORDS[user]),
        tls=True,
        ca_file=str(mosq.ca_file),
    )


@dataclass
class World:
    mosq: PrivateMosquitto
    service: ConfigService
    tracker: ConfigTracker
    gateway: FakeGateway
    pool: Any

    def options(self, user: str) -> MqttOptions:
        return _options(self.mosq, user)

    def probe(self, user: str) -> Probe:
        assert self.mosq.tls_port is not None
        probe = Probe(self.mosq.tls_port, user, PASSWORDS[user], tls=ProbeTls(self.mosq.ca_file))
        assert probe.connect(), probe.reason
        return probe

    def versions(self) -> list[int]:
        return [d.version for d in self.service.show_config(GW).history]


class FakeGateway:
    """GW's retained ``config`` topic; each message lands in a queue."""

    def __init__(self, options: MqttOptions) -> None:
        self.configs: queue.Queue[dict[str, Any]] = queue.Queue()
        self._consumer = MqttConsumer(
            replace(options, session_expiry_s=0), [topic(Region.AU, GW, Kind.CONFIG)], self._got
        )

    def _got(self, message: InboundMessage) -> None:
        self._consumer.ack(message)
        self.configs.put(orjson.loads(message.payload))

    def __enter__(self) -> FakeGateway:
        self._consumer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._consumer.stop()


def _work_order(
    wo: int, site: int, status: str, *, region: str = "au", assignee: str = ALICE
) -> WorkOrderChanged:
    return WorkOrderChanged(
        work_order_id=wo,
        region=region,
        site_id=site,
        gateway_ids=[GW],
        type="fault",
        priority="P2",
        status=status,
        on_site=status == "on_site",
        at=utc_now(),
        assignee=assignee,
    )


def _technician(user_id: str, employee_no: str, name: str) -> UserChanged:
    return UserChanged.model_validate(
        {
            "user_id": user_id,
            "role": "mosie",
            "home_region": "au",
            "employee_no": employee_no,
            "broker_username": f"_tech/{name}",
        }
    )


@pytest.fixture
def world(database_url: str, tmp_path: Path) -> Iterator[World]:
    ca = tmp_path / "ca"
    pki.init(ca)
    identities = [BrokerIdentity(u, Region.AU) for u in PASSWORDS if u != "observer"]
    acl = render_acl([Region.AU], identities) + "\nuser observer\ntopic read #\n"
    passwords = render_password_file({u: mosquitto_hash(p) for u, p in PASSWORDS.items()})
    migrate(database_url)
    key_file = tmp_path / "cloud.pem"
    write_key_file(key_file, demo=True)
    with PrivateMosquitto(
        persistence=False, security=BrokerSecurity(passwords, acl, pki_dir=ca)
    ) as mosq:
        settings = ConfigSettings(
            database_url=database_url,
            mqtt_url=mosq.url,
            mqtt_ca_file=mosq.ca_file,
            mqtt_username="_config/au",
            mqtt_password=SecretStr(PASSWORDS["_config/au"]),
            config_tech_mqtt_password=SecretStr(PASSWORDS["_config/au-tech"]),
            config_tech_regions=[Region.AU],
            signing_key_file=key_file,
        )
        pool = create_pool(database_url, max_size=6, name="test-tech-push")
        try:
            with open_config_service(settings, pool, connect_timeout_s=10) as (service, ok):
                assert ok
                tracker = create_tracker(settings, pool)
                tracker.apply_birth(uuid.uuid4(), "au", utc_now(), der_inverter_birth(GW, INV))
                tracker.apply_user(uuid.uuid4(), utc_now(), _technician("usr_a", ALICE, "alice"))
                tracker.apply_user(uuid.uuid4(), utc_now(), _technician("usr_b", BOB, "bob"))
                # Alice is on site at SITE (which holds GW); bob has no job there.
                tracker.apply_work_order(uuid.uuid4(), _work_order(1, SITE, "on_site"))
                listener = create_tech_listener(settings, pool, service)
                with listener, FakeGateway(_options(mosq, "observer")) as gateway:
                    yield World(mosq, service, tracker, gateway, pool)
        finally:
            pool.close()


def _ask(w: World, user: str, request: ConfigReq) -> ConfigResp:
    answer = push(w.options(user), Region.AU, request, timeout_s=10)
    assert answer is not None, "no answer on the reply topic"
    assert answer.id == request.id
    return answer


def test_a_technician_on_site_pushes_a_profile_with_potr_tech_push(world: World) -> None:
    result = CliRunner().invoke(
        app,
        ["tech", "push", "--site", str(SITE), "--profile", "au-a-2020", "--timeout", "10"],
        env={
            "POTR_TECH_EMPLOYEE": ALICE.lower(),
            "POTR_TECH_BROKER": world.mosq.url,
            "POTR_TECH_REGION": "au",
            "POTR_TECH_USERNAME": "_tech/alice",
            "POTR_TECH_PASSWORD": PASSWORDS["_tech/alice"],
            "POTR_TECH_CA_FILE": str(world.mosq.ca_file),
        },
    )
    assert result.exit_code == 0, result.output
    assert "accepted" in result.output
    assert f"{GW}: config version 1" in result.output

    # Published at once although alice's own work order holds the site (she pushed it),
    # signed with her as the issuer; AS/NZS 4777.2 region A's volt-var reaches -60 % at
    # 258 V (grid-codes.md §5, % of rated VA), the last point of the device's curve.
    document = world.gateway.configs.get(timeout=5)
    assert document["version"] == 1
    assert document["issued_by"] == ALICE
    assert document["profile"] == {"id": "au-a-2020", "region": "au", "version": 1}
    assert document["devices"][INV]["volt_var_q_pct"][-1] == pytest.approx(-60)
    view = world.service.show_config(GW)
    assert view.desired is not None
    assert view.desired.status == "published"
    assert view.desired.created_by == ALICE
    assert view.desired.reason == "technician push, work order 1"
    audit = world.service.audit(GW)
    assert [(a.actor, a.action, a.outcome) for a in audit if a.action == "config.tech_push"] == [
        (ALICE, "config.tech_push", "pending")
    ]


def test_forbidden_requests_are_refused_answered_and_change_nothing(world: World) -> None:
    accepted = new_request(ALICE, SITE, "au-b-2020")
    assert _ask(world, "_tech/alice", accepted).ok
    assert world.gateway.configs.get(timeout=5)["version"] == 1
    # An offered job (assigned, not accepted) and a job in another region open nothing.
    world.tracker.apply_work_order(uuid.uuid4(), _work_order(2, 12, "assigned"))
    world.tracker.apply_work_order(uuid.uuid4(), _work_order(3, 13, "accepted", region="us"))
    world.tracker.apply_work_order(uuid.uuid4(), _work_order(4, 14, "closed"))
    old = new_request(ALICE, SITE, "au-b-2020", now=utc_now() - timedelta(minutes=6))
    cases: list[tuple[str, str, ConfigReq]] = [
        ("_tech/alice", "no_open_job", new_request(ALICE, 11, "au-b-2020")),
        ("_tech/alice", "no_open_job", new_request(ALICE, 12, "au-b-2020")),
        ("_tech/alice", "no_open_job", new_request(ALICE, 14, "au-b-2020")),
        ("_tech/alice", "other_region", new_request(ALICE, 13, "au-b-2020")),
        ("_tech/alice", "replayed", accepted),
        (
            "_tech/alice",
            "replayed",
            new_request(ALICE, SITE, "au-b-2020").model_copy(update={"nonce": accepted.nonce}),
        ),
        ("_tech/alice", "stale", old),
        # Bob, on his own topic, speaking for alice (whose job it is).
        ("_tech/bob", "identity_mismatch", new_request(ALICE, SITE, "au-b-2020")),
        # Bob as himself: no job at the site.
        ("_tech/bob", "no_open_job", new_request(BOB, SITE, "au-b-2020")),
        ("_tech/alice", "unknown_profile", new_request(ALICE, SITE, "au-z-1999")),
        ("_tech/alice", "profile_region", new_request(ALICE, SITE, "ieee1547-2018-b-i")),
    ]
    for user, code, request in cases:
        answer = _ask(world, user, request)
        assert (answer.ok, answer.code) == (False, code), (user, request, answer.detail)
        assert answer.detail
    assert world.versions() == [1]
    assert world.gateway.configs.empty()
    pushes = [a for a in world.service.audit(GW) if a.action == "config.tech_push"]
    assert len(pushes) == 1  # the accepted one; refusals are logged with the requests:
    with world.pool.connection() as conn:
        logged = conn.execute(
            "SELECT outcome, count(*) FROM config.tech_requests GROUP BY outcome"
        ).fetchall()
    # every request once (a replay of a logged id or nonce leaves that row alone)
    expected = {"accepted": 1, "no_open_job": 4, "other_region": 1, "stale": 1}
    expected |= {"identity_mismatch": 1, "unknown_profile": 1, "profile_region": 1}
    assert dict(logged) == expected


def test_a_technician_cannot_publish_on_another_technicians_topic(world: World) -> None:
    observer = world.probe("observer")
    observer.subscribe("potr/v1/au/_tech/#")
    alice = world.probe("_tech/alice")
    alice.subscribe(tech_topic("au", "bob", Kind.CONFIG_RESP))  # granted, delivers nothing
    forged = new_request(BOB, SITE, "au-b-2020").to_json()
    alice.publish(tech_topic("au", "bob", Kind.CONFIG_REQ), forged)
    # Her own request afterwards is the marker: QoS 1 from one client keeps its order.
    mine = new_request(ALICE, 11, "au-b-2020").to_json()
    alice.publish(tech_topic("au", "alice", Kind.CONFIG_REQ), mine)
    assert observer.wait_for(tech_topic("au", "alice", Kind.CONFIG_REQ), mine)
    assert tech_topic("au", "bob", Kind.CONFIG_REQ) not in observer.topics()
    # Nor does she read bob's answers: the service answers bob, alice gets nothing.
    bob_answer = _ask(world, "_tech/bob", new_request(BOB, SITE, "au-b-2020"))
    assert bob_answer.code == "no_open_job"
    assert tech_topic("au", "bob", Kind.CONFIG_RESP) not in alice.topics()
    for probe in (observer, alice):
        probe.close()
