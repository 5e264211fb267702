"""The device-configuration service against real PostgreSQL and Mosquitto.

A fake gateway subscribes to its ``cmd``/``config`` topics on the broker and verifies
what arrives with the shared ``contracts.control`` code; the gateways' answers arrive
as ingest would send them: ``command.acked`` / ``config.reported`` / ``gateway.birth``
events in ``ingest.outbox``, relayed over the in-process bus to the service's handlers.
"""

from __future__ import annotations

import asyncio
import json
import math
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cloud.adapters.mqtt import MqttOptions, MqttPublisher
from cloud.bootstrap import (
    cloud_events,
    create_api,
    create_config_service,
)
from cloud.config import (
    CommandIn,
    ConfigIn,
    RefusedError,
    RollbackIn,
    SigningKeyError,
    run_config_loops,
)
from cloud.events.bus import InProcessBus
from cloud.events.outbox import Event, emit
from cloud.events.runtime import BusSettings, EventRuntime
from cloud.events.types import GatewayBirth, gateway_birth_event
from cloud.ingest import announce
from contracts.control import ReplayGuard, config_hash, verify_command, verify_config
from contracts.messages import AckStatus, CmdAck, DeviceInfo, ProfileRef
from contracts.timeutil import utc_now
from contracts.topics import Region
from tests.api_tokens import api_settings, bearer
from tests.integration.config_harness import FakeGateway, Stack, config_stack
from tests.waiting import until

pytestmark = pytest.mark.integration

GW = "gw-config-1"
INV = "SN-INV-1"
PROFILE = {"id": "au-4777", "region": "au", "version": 1}


def _birth(gateway_id: str = GW) -> GatewayBirth:
    return GatewayBirth(
        gateway_id=gateway_id,
        stream_id=uuid.uuid4(),
        boot_id="boot-1",
        agent_version="test",
        publish_interval_s=5,
        devices=[
            DeviceInfo(
                device=INV,
                endpoint="127.0.0.1:15020",
                unit_id=1,
                models=[1, 103, 120, 121, 122, 123, 126, 132, 160],
                profile="sim-inverter-103",
                nameplate={"w_rtg": 4000.0},
            )
        ],
    )


@pytest.fixture
def stack(database_url: str, mosquitto_url: str, tmp_path: Path) -> Iterator[Stack]:
    with config_stack(
        database_url, mosquitto_url, tmp_path, pool_name="test-config", births=[_birth()]
    ) as stack:
        yield stack


@pytest.fixture
def gateway(stack: Stack) -> Iterator[FakeGateway]:
    with FakeGateway(stack.mqtt, GW, f"fake-{uuid.uuid4().hex[:8]}") as gw:
        yield gw


@pytest.fixture
async def runtime(stack: Stack) -> AsyncIterator[EventRuntime]:
    async with cloud_events(
        stack.pool,
        config=stack.tracker,
        outboxes=("ingest", "config"),
        settings=BusSettings(outbox_poll_ms=50),
        bus=InProcessBus(),
    ) as rt:
        yield rt


def _from_ingest(stack: Stack, runtime: EventRuntime, event: Event) -> None:
    """Emit an event as ingest would (its outbox), and wake the relay."""
    with stack.pool.connection() as conn:
        emit(conn, "ingest", event)
    runtime.kick("ingest")


def _ack(
    command_id: uuid.UUID, status: AckStatus, seq: int, detail: str = "", gateway: str = GW
) -> Event:
    ack = CmdAck(
        stream_id=uuid.uuid5(uuid.NAMESPACE_DNS, gateway),
        seq=seq,
        id=command_id,
        status=status,
        detail=detail,
        ts=utc_now(),
    )
    return announce.command_acked("au", gateway, ack)


def _report(version: int, status: str, seq: int, **extra: Any) -> Event:
    return Event(
        name="config.reported",
        region=Region.AU,
        source="ingest",
        occurred_at=utc_now(),
        payload={
            "gateway_id": GW,
            "version": version,
            "hash": None,
            "status": status,
            "devices": {INV: status},
            "points": {INV: {"v_ref": 231.0}},
            "drift": [],
            "detail": "",
            **extra,
        },
    )


def _outbox(stack: Stack, name: str) -> list[dict[str, Any]]:
    with stack.pool.connection() as conn:
        rows = conn.execute(
            "SELECT payload FROM config.outbox WHERE name = %s ORDER BY id", (name,)
        ).fetchall()
    return [r[0] for r in rows]


def _count(stack: Stack, table: str) -> int:
    with stack.pool.connection() as conn:
        row = conn.execute(f"SELECT count(*) FROM config.{table}").fetchone()
    assert row is not None
    return int(row[0])


def _client(stack: Stack) -> TestClient:
    settings = api_settings(stack.settings.database_url)
    return TestClient(create_api(settings, stack.pool, config=stack.service))


def _auth(role: str) -> dict[str, str]:
    return bearer(role, account_id="acc_" + "c" * 32 if role == "customer" else None)


AU = "/api/v1/au"


# -- API: roles and refusals ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("role", "expected"),
    [("admin", 200), ("operator", 200), ("support", 403), ("mosie", 403), ("customer", 403)],
)
def test_only_operators_and_admins_reach_the_config_api(
    stack: Stack, role: str, expected: int
) -> None:
    with _client(stack) as client:
        assert client.get(f"{AU}/gateways/{GW}/config", headers=_auth(role)).status_code == (
            expected
        )
        cmd = {"name": "ping", "reason": "check"}
        answer = client.post(f"{AU}/gateways/{GW}/commands", json=cmd, headers=_auth(role))
        assert answer.status_code == (201 if expected == 200 else 403)


def test_no_token_is_401(stack: Stack) -> None:
    with _client(stack) as client:
        assert client.get(f"{AU}/gateways/{GW}/config").status_code == 401
        assert client.put(f"{AU}/gateways/{GW}/config", json={}).status_code == 401


@pytest.mark.parametrize(
    ("body", "status", "field", "limit"),
    [
        ({"device": INV, "name": "set_power_limit", "args": {"pct": 150}}, 422, "args.pct", "100"),
        ({"device": INV, "name": "set_power_limit", "args": {"pct": "50"}}, 422, "args.pct", ""),
        ({"device": INV, "name": "self_destruct"}, 422, "name", None),
        ({"device": None, "name": "ping", "args": {"x": 1}}, 422, "args", None),
        ({"device": "SN-NOPE", "name": "connect"}, 404, None, None),
    ],
)
def test_a_bad_command_is_refused_before_signing_and_nothing_is_stored_or_published(
    stack: Stack,
    gateway: FakeGateway,
    body: dict[str, Any],
    status: int,
    field: str | None,
    limit: str | None,
) -> None:
    with _client(stack) as client:
        answer = client.post(
            f"{AU}/gateways/{GW}/commands",
            content=json.dumps({**body, "reason": "test"}),
            headers={**_auth("operator"), "Content-Type": "application/json"},
        )
        assert answer.status_code == status, answer.text
        if field is not None:
            detail = answer.json()["detail"]
            assert detail["field"] == field
            if limit:
                assert limit in detail["limit"]
        assert _count(stack, "commands") == 0
        # Messages on one topic arrive in order: the first one is this ping, so nothing
        # was published for the refused command.
        ok = client.post(
            f"{AU}/gateways/{GW}/commands",
            json={"name": "ping", "reason": "after"},
            headers=_auth("operator"),
        )
        assert ok.status_code == 201
    kind, doc = gateway.next()
    assert (kind, doc["name"], doc["id"]) == ("cmd", "ping", ok.json()["id"])
    with stack.pool.connection() as conn:
        outcomes = [r[0] for r in conn.execute("SELECT outcome FROM config.audit ORDER BY id")]
    assert outcomes == ["refused", "pending"]


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_a_non_finite_number_is_refused_at_the_door_and_nothing_is_written(
    stack: Stack, value: float
) -> None:
    body = {"device": INV, "name": "set_power_limit", "args": {"pct": value}, "reason": "x"}
    with _client(stack) as client:
        # json.dumps writes NaN as the bare token NaN (httpx's json= would refuse it).
        answer = client.post(
            f"{AU}/gateways/{GW}/commands",
            content=json.dumps(body),
            headers={**_auth("operator"), "Content-Type": "application/json"},
        )
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["loc"] == ["body"]
    assert (_count(stack, "commands"), _count(stack, "audit")) == (0, 0)


def test_an_operator_of_another_region_reaches_neither_the_gateway_nor_its_audit(
    stack: Stack,
) -> None:
    """By its own region's URL the au gateway is not there, and nothing is written for
    it — not even the audit row an in-region refusal leaves."""
    es = bearer("operator", region="es")
    with _client(stack) as client:
        sent = client.post(
            f"/api/v1/es/gateways/{GW}/commands", json={"name": "ping", "reason": "x"}, headers=es
        )
        assert sent.status_code == 404
        assert client.get(f"/api/v1/es/gateways/{GW}/config", headers=es).status_code == 404
        assert client.get(f"{AU}/gateways/{GW}/config", headers=es).status_code == 404
    assert (_count(stack, "commands"), _count(stack, "audit")) == (0, 0)


@pytest.mark.parametrize(
    ("devices", "status", "field"),
    [
        ({INV: {"v_ref": 300}}, 422, f"devices.{INV}.v_ref"),
        ({INV: {"w_max": 4500}}, 422, f"devices.{INV}.w_max"),  # over the device's nameplate
        ({INV: {"no_such_setting": 1}}, 422, f"devices.{INV}.no_such_setting"),
        ({"SN-OTHER": {"v_ref": 230}}, 422, "devices.SN-OTHER"),
    ],
)
def test_a_bad_config_is_refused_and_no_version_is_made(
    stack: Stack, devices: dict[str, Any], status: int, field: str
) -> None:
    with _client(stack) as client:
        answer = client.put(
            f"{AU}/gateways/{GW}/config",
            json={"profile": PROFILE, "devices": devices, "reason": "test"},
            headers=_auth("admin"),
        )
    assert answer.status_code == status, answer.text
    assert answer.json()["detail"]["field"] == field
    assert _count(stack, "desired") == 0


def test_an_unknown_gateway_is_404(stack: Stack) -> None:
    with _client(stack) as client:
        answer = client.put(
            f"{AU}/gateways/gw-unknown/config",
            json={"profile": PROFILE, "devices": {INV: {"v_ref": 230}}, "reason": "x"},
            headers=_auth("admin"),
        )
    assert answer.status_code == 404


# -- commands: signed, published, followed ----------------------------------------------
async def test_a_command_is_published_signed_and_followed_to_done(
    stack: Stack, gateway: FakeGateway, runtime: EventRuntime
) -> None:
    request = CommandIn(device=INV, name="set_power_limit", args={"pct": 50}, reason="export limit")
    sent = await asyncio.to_thread(stack.service.send_command, GW, request, "op-1")
    assert sent.status == "pending"
    assert sent.published_at is not None
    kind, raw = await asyncio.to_thread(gateway.next)
    assert kind == "cmd"
    cmd = verify_command(
        raw, gateway_id=GW, trusted=stack.trusted, now=utc_now(), seen=ReplayGuard()
    )
    assert (cmd.id, cmd.args, cmd.issued_by) == (sent.id, {"pct": 50}, "op-1")

    _from_ingest(stack, runtime, _ack(sent.id, AckStatus.ACCEPTED, 1))
    await until(lambda: stack.service.get_command(sent.id).status == "accepted", 10, "accepted")  # type: ignore[union-attr]
    _from_ingest(stack, runtime, _ack(sent.id, AckStatus.DONE, 2, "read back 50"))
    await until(lambda: stack.service.get_command(sent.id).status == "done", 10, "done")  # type: ignore[union-attr]
    # A duplicate delivery refused as replayed changes nothing.
    _from_ingest(stack, runtime, _ack(sent.id, AckStatus.REJECTED, 3, "replayed: seen"))
    await until(lambda: len(_outbox(stack, "command.done")) == 1, 10, "command.done")
    done = _outbox(stack, "command.done")[0]
    assert (done["command_id"], done["status"], done["closed_by"]) == (
        str(sent.id),
        "done",
        "gateway",
    )
    final = stack.service.get_command(sent.id)
    assert final is not None
    assert final.status == "done"
    assert final.detail == "read back 50"
    actions = [e.action for e in stack.service.audit(GW)]
    assert actions == ["command.done", "command.send"]


async def test_a_rejected_command_ends_failed_with_its_status(
    stack: Stack, runtime: EventRuntime
) -> None:
    sent = await asyncio.to_thread(
        stack.service.send_command, GW, CommandIn(name="rescan", reason="why"), "op-1"
    )
    _from_ingest(stack, runtime, _ack(sent.id, AckStatus.REJECTED, 1, "untrusted key: x"))
    await until(lambda: len(_outbox(stack, "command.failed")) == 1, 10, "command.failed")
    assert _outbox(stack, "command.failed")[0]["status"] == "rejected"


async def test_an_ack_from_another_gateway_cannot_close_a_command(
    stack: Stack, runtime: EventRuntime
) -> None:
    """Only the gateway a command was sent to answers it: another gateway's ``cmd_ack``
    naming its id (forged, or a confused agent) changes nothing."""
    sent = await asyncio.to_thread(
        stack.service.send_command, GW, CommandIn(name="rescan", reason="why"), "op-1"
    )
    forged = _ack(sent.id, AckStatus.DONE, 1, "forged", gateway="gw-intruder-01")
    _from_ingest(stack, runtime, forged)
    _from_ingest(stack, runtime, _ack(sent.id, AckStatus.DONE, 1, "genuine"))  # after it
    await until(lambda: len(_outbox(stack, "command.done")) == 1, 10, "command.done")
    final = stack.service.get_command(sent.id)
    assert final is not None
    assert (final.status, final.detail) == ("done", "genuine")
    [audit] = [e for e in stack.service.audit(GW) if e.action == "command.done"]
    assert audit.actor == GW


async def test_a_command_with_no_answer_expires(stack: Stack, runtime: EventRuntime) -> None:
    sent = await asyncio.to_thread(
        stack.service.send_command,
        GW,
        CommandIn(name="ping", expires_in_s=0.3, reason="short"),
        "op-1",
    )
    stop = asyncio.Event()
    loops = asyncio.create_task(
        run_config_loops(
            stack.service, stack.tracker, stop, interval_s=0.1, kick=lambda: runtime.kick("config")
        )
    )
    try:
        await until(lambda: len(_outbox(stack, "command.expired")) == 1, 10, "command.expired")
    finally:
        stop.set()
        await loops
    command = stack.service.get_command(sent.id)
    assert command is not None
    assert (command.status, command.closed_by) == ("expired", "cloud")
    # A late "done" from the gateway is the truth and corrects the cloud's timeout.
    _from_ingest(stack, runtime, _ack(sent.id, AckStatus.DONE, 1, "pong"))
    await until(lambda: stack.service.get_command(sent.id).status == "done", 10, "corrected")  # type: ignore[union-attr]


def test_a_command_stored_while_the_broker_was_away_is_published_later(
    stack: Stack, gateway: FakeGateway
) -> None:
    offline = MqttPublisher(MqttOptions("127.0.0.1", 1, client_id="never"))  # never started
    service = create_config_service(stack.settings, stack.pool, publisher=offline)
    sent = service.send_command(GW, CommandIn(name="ping", reason="offline"), "op-1")
    assert sent.published_at is None
    assert stack.service.publish_pending().commands == 1
    kind, raw = gateway.next()
    assert (kind, raw["id"]) == ("cmd", str(sent.id))
    assert stack.service.publish_pending().commands == 0


# -- configs: versions, retained, rollback, reported state ---------------------------------
def _set(stack: Stack, v_ref: float) -> int:
    request = ConfigIn(
        profile=ProfileRef.model_validate(PROFILE), devices={INV: {"v_ref": v_ref}}, reason="tune"
    )
    return stack.service.set_config(GW, request, "admin-1").version


def _retained_config(stack: Stack) -> dict[str, Any]:
    with FakeGateway(stack.mqtt, GW, f"late-{uuid.uuid4().hex[:8]}") as late:
        kind, raw = late.next()
    assert kind == "config"
    return raw


def test_config_versions_are_monotonic_retained_and_rollback_republishes_older_settings(
    stack: Stack,
) -> None:
    assert [_set(stack, 230), _set(stack, 240)] == [1, 2]
    raw = _retained_config(stack)
    verdict = verify_config(
        raw, gateway_id=GW, trusted=stack.trusted, now=utc_now(), applied_version=1
    )
    assert (verdict.doc.version, verdict.doc.devices) == (2, {INV: {"v_ref": 240}})

    back = stack.service.rollback(GW, RollbackIn(reason="240 trips"), "admin-1")
    assert (back.version, back.rollback_of, back.devices) == (3, 1, {INV: {"v_ref": 230}})
    raw = _retained_config(stack)
    assert (raw["version"], raw["devices"]) == (3, {INV: {"v_ref": 230}})
    assert config_hash(raw) == back.hash
    view = stack.service.show_config(GW)
    assert [h.version for h in view.history] == [3, 2, 1]
    assert view.devices[0].status == "pending"
    with pytest.raises(RefusedError):
        stack.service.set_config(
            GW,
            ConfigIn(
                profile=ProfileRef(id="x", region=Region.US, version=1),
                devices={INV: {"v_ref": 230}},
                reason="wrong region",
            ),
            "admin-1",
        )


def test_a_config_about_to_expire_is_re_signed_as_a_new_version(stack: Stack) -> None:
    assert _set(stack, 230) == 1
    assert stack.service.refresh_expiring(margin_s=60) == 0  # 30 days ahead: not due
    assert stack.service.refresh_expiring(margin_s=31 * 86_400) == 1
    raw = _retained_config(stack)
    assert (raw["version"], raw["devices"], raw["issued_by"]) == (2, {INV: {"v_ref": 230}}, "cloud")
    verify_config(raw, gateway_id=GW, trusted=stack.trusted, now=utc_now(), applied_version=1)
    audit = [a.action for a in stack.service.audit(GW)]
    assert "config.refresh" in audit


def test_two_operators_at_once_get_distinct_consecutive_versions(stack: Stack) -> None:
    """Versions are allocated under the gateway's row lock: 8 concurrent requests make
    versions 1..8, none lost or doubled, and the retained config is the newest."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        versions = list(pool.map(lambda v: _set(stack, v), [200 + i for i in range(8)]))
    assert sorted(versions) == list(range(1, 9))
    assert _retained_config(stack)["version"] == 8


async def test_config_reports_move_device_state_and_emit_events(
    stack: Stack, runtime: EventRuntime
) -> None:
    await asyncio.to_thread(_set, stack, 231)
    _from_ingest(stack, runtime, _report(1, "applied", 1))
    await until(lambda: len(_outbox(stack, "config.applied")) == 1, 10, "config.applied")
    view = stack.service.show_config(GW)
    assert view.devices[0].status == "applied"
    assert view.devices[0].points == {"v_ref": 231.0}

    drifted = _report(1, "drifted", 2, drift=[f"{INV}.v_ref"], devices={INV: "drifted"})
    _from_ingest(stack, runtime, drifted)
    await until(lambda: len(_outbox(stack, "config.drifted")) == 1, 10, "config.drifted")
    assert stack.service.show_config(GW).devices[0].drift == [f"{INV}.v_ref"]

    await asyncio.to_thread(_set, stack, 235)
    failed = _report(2, "failed", 3, detail=f"{INV}: 121.VRef read back 231")
    _from_ingest(stack, runtime, failed)
    await until(lambda: len(_outbox(stack, "config.failed")) == 1, 10, "config.failed")
    event = _outbox(stack, "config.failed")[0]
    assert (event["version"], event["desired_version"], event["devices"]) == (
        2,
        2,
        {INV: "failed"},
    )
    # A report older than the last one changes nothing.
    stale = _report(1, "applied", 4)
    stale = stale.model_copy(update={"occurred_at": utc_now() - timedelta(hours=1)})
    _from_ingest(stack, runtime, stale)
    await until(lambda: _inbox_has(stack, stale.id), 10, "stale report handled")
    assert stack.service.show_config(GW).reported.status == "failed"  # type: ignore[union-attr]
    actions = [e.action for e in stack.service.audit(GW)]
    assert actions[:3] == ["config.failed", "config.set", "config.drifted"]


def _inbox_has(stack: Stack, event_id: uuid.UUID) -> bool:
    with stack.pool.connection() as conn:
        return (
            conn.execute("SELECT 1 FROM config.inbox WHERE event_id = %s", (event_id,)).fetchone()
            is not None
        )


async def test_birth_events_teach_the_service_a_gateways_devices(
    stack: Stack, runtime: EventRuntime
) -> None:
    event = gateway_birth_event(Region.ES, _birth("gw-config-2"), occurred_at=datetime.now(UTC))
    _from_ingest(stack, runtime, event)
    await until(lambda: _inbox_has(stack, event.id), 10, "birth handled")
    sent = await asyncio.to_thread(
        stack.service.send_command,
        "gw-config-2",
        CommandIn(device=INV, name="connect", reason="r"),
        "op-1",
    )
    assert sent.region == "es"


def test_production_refuses_the_demo_key(stack: Stack) -> None:
    production = stack.settings.model_copy(update={"env": "production"})
    with pytest.raises(SigningKeyError, match="demo key"):
        create_config_service(production, stack.pool)
    with pytest.raises(SigningKeyError, match="not set"):
        create_config_service(production.model_copy(update={"signing_key_file": None}), stack.pool)


# -- CLI ----------------------------------------------------------------------------------------
def test_the_cli_generates_a_key_sends_a_command_sets_and_rolls_back_a_config(
    stack: Stack, gateway: FakeGateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from potr.cli import app

    runner = CliRunner()
    made = runner.invoke(app, ["keys", "generate", "--out", str(tmp_path / "k.pem"), "--demo"])
    assert made.exit_code == 0, made.output
    assert "kid " in made.output
    assert (tmp_path / "k.pem.pub").exists()
    monkeypatch.setenv("POTR_DATABASE_URL", stack.settings.database_url)
    monkeypatch.setenv("POTR_MQTT_URL", stack.settings.mqtt_url)
    monkeypatch.setenv("POTR_SIGNING_KEY_FILE", str(tmp_path / "k.pem"))

    sent = runner.invoke(app, ["config", "cmd", GW, "set_power_limit", "--device", INV,
                               "--arg", "pct=40", "--reason", "cli test"])  # fmt: skip
    assert sent.exit_code == 0, sent.output
    kind, raw = gateway.next()
    assert (kind, raw["args"], raw["issued_by"][:4]) == ("cmd", {"pct": 40}, "cli:")
    refused = runner.invoke(app, ["config", "cmd", GW, "set_power_limit", "--device", INV,
                                  "--arg", "pct=101", "--reason", "too much"])  # fmt: skip
    assert refused.exit_code == 1
    assert "args.pct" in " ".join(refused.output.split())

    config_file = tmp_path / "config.yaml"
    config_file.write_text(
        f"profile: {{id: au-4777, region: au, version: 1}}\ndevices: {{{INV}: {{v_ref: 232}}}}\n"
    )
    for _ in range(2):
        done = runner.invoke(
            app, ["config", "set", GW, "--file", str(config_file), "--reason", "r"]
        )
        assert done.exit_code == 0, done.output
    back = runner.invoke(app, ["config", "rollback", GW, "--to-version", "1", "--reason", "undo"])
    assert back.exit_code == 0, back.output
    assert "version 3 (rollback to version 1)" in back.output
    shown = runner.invoke(app, ["config", "show", GW])
    assert shown.exit_code == 0
    assert "version 3" in shown.output

    monkeypatch.setenv("POTR_ENV", "production")
    # Production's broker settings (TLS with its CA), so the key is what gets refused.
    monkeypatch.setenv("POTR_MQTT_URL", "mqtts://broker.example")
    monkeypatch.setenv("POTR_MQTT_CA_FILE", str(tmp_path / "ca.pem"))
    refused_key = runner.invoke(app, ["config", "show", GW])
    assert refused_key.exit_code == 2
    assert "is the demo key" in " ".join(refused_key.output.split())  # rich wraps lines


async def test_run_config_service_publishes_what_was_stored_while_the_broker_was_away(
    stack: Stack, gateway: FakeGateway
) -> None:
    from cloud.bootstrap import run_config_service

    offline = MqttPublisher(MqttOptions("127.0.0.1", 1, client_id="never"))  # never started
    service = create_config_service(stack.settings, stack.pool, publisher=offline)
    sent = await asyncio.to_thread(
        service.send_command, GW, CommandIn(name="rescan", reason="offline"), "op-1"
    )
    settings = stack.settings.model_copy(update={"config_republish_interval_s": 0.1})
    stop = asyncio.Event()
    task = asyncio.create_task(run_config_service(settings, stop, bus=InProcessBus()))
    try:
        kind, raw = await asyncio.to_thread(gateway.next)
        assert (kind, raw["id"]) == ("cmd", str(sent.id))
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
