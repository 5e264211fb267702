"""Virtual gateways' control side: commands, configs and failure injection (pure parts)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from contracts.control import config_hash
from contracts.messages import AckStatus, BirthMsg, CmdAck, ConfigState, StoredMsg
from contracts.signing import SigningKey, TrustedKeys, sign_document
from contracts.timeutil import to_wire, utc_now
from device_profiles import builtin_profile
from simulators.fleet.control import GatewayControl, VirtualDevice, virtual_devices
from simulators.fleet.gateway import VirtualGateway
from simulators.fleet.spec import FleetSpec, failing_gateways, fails_by_seed, plan
from simulators.fleet.stats import WorkerStats
from simulators.fleet.telemetry import INVERTER_MODELS, INVERTER_PROFILE, METER_MODELS

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
GW = "vgw-00001"
INV, MTR = f"INV-{GW}", f"MTR-{GW}"
KEY = SigningKey.generate()
TRUSTED = TrustedKeys([KEY.public_key])


def command(**over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "v": 1,
        "id": str(uuid.uuid4()),
        "gateway_id": GW,
        "name": "set_power_limit",
        "device": INV,
        "args": {"pct": 50},
        "expires_at": to_wire(NOW + timedelta(minutes=5)),
        "issued_by": "ops@potr",
    }
    doc.update(over)
    return doc


def config(version: int = 3, devices: dict[str, Any] | None = None, **over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "v": 1,
        "gateway_id": GW,
        "version": version,
        "profile": {"id": "au-default", "region": "au", "version": 1},
        "devices": devices if devices is not None else {INV: {"power_limit_pct": 80}},
        "not_after": to_wire(NOW + timedelta(days=1)),
        "issued_by": "ops@potr",
    }
    doc.update(over)
    return doc


def signed(doc: dict[str, Any], key: SigningKey = KEY) -> bytes:
    return orjson.dumps(sign_document(doc, key))


def control(*, fails: bool = False, trusted: TrustedKeys = TRUSTED) -> GatewayControl:
    return GatewayControl(GW, virtual_devices(GW, 4000.0), trusted, fails=fails)


def statuses(acks: list[Any]) -> list[str]:
    return [a.status.value for a in acks]


# ----- devices ----------------------------------------------------------------------------
def test_virtual_devices_have_builtin_profiles_and_factory_values() -> None:
    inv, mtr = virtual_devices(GW, 4000.0)
    assert inv.profile.name == INVERTER_PROFILE
    assert inv.profile.models == INVERTER_MODELS
    assert mtr.profile.models == METER_MODELS
    assert inv.read("123.WMaxLimPct") == 100
    assert inv.read("121.WMax") == 4000  # its rating, within the profile's nameplate
    assert inv.read("123.Conn") == 1
    assert mtr.values == {}


def test_factory_values_outside_the_limits_are_left_unset() -> None:
    dev = VirtualDevice.with_factory_values("X", builtin_profile(INVERTER_PROFILE), {"w_rtg": -1})
    assert dev.read("121.WMax") is None  # the limit resolves to an empty range


# ----- commands ---------------------------------------------------------------------------
def test_a_valid_command_is_accepted_written_and_done() -> None:
    c = control()
    doc = command()
    acks = c.on_command(signed(doc), NOW)
    assert statuses(acks) == ["accepted", "done"]
    assert all(str(a.id) == doc["id"] for a in acks)
    assert c.devices[INV].read("123.WMaxLimPct") == 50
    assert c.devices[INV].read("123.WMaxLim_Ena") == 1
    assert acks[1].detail == "read back 123.WMaxLimPct=50, 123.WMaxLim_Ena=1"


@pytest.mark.parametrize(
    ("over", "status", "starts"),
    [
        ({"args": {"pct": 150}}, "rejected", "args.pct: 150 is out of range"),
        ({"args": {"pct": True}}, "rejected", "args.pct: a boolean is not a number"),
        ({"args": {"pct": 50, "x": 1}}, "rejected", "args.x"),
        ({"args": {"pct": "50"}}, "rejected", "args.pct: expected a number"),
        ({"gateway_id": "vgw-00002"}, "rejected", "wrong gateway"),
        ({"expires_at": to_wire(NOW - timedelta(seconds=1))}, "expired", "expired"),
        ({"device": "INV-nope"}, "rejected", "unknown device"),
        ({"name": "self_destruct"}, "rejected", "unknown command"),
        ({"device": None, "name": "reboot"}, "rejected", "unknown command"),
        ({"device": None, "name": "ping", "args": {"x": 1}}, "rejected", "args.x"),
    ],
)
def test_bad_commands_are_refused_and_write_nothing(
    over: dict[str, Any], status: str, starts: str
) -> None:
    c = control()
    before = dict(c.devices[INV].values)
    acks = c.on_command(signed(command(**over)), NOW)
    assert statuses(acks) == [status]
    assert acks[0].detail.startswith(starts), acks[0].detail
    assert c.devices[INV].values == before


def test_out_of_range_names_the_field_and_limit() -> None:
    (ack,) = control().on_command(signed(command(args={"pct": 150})), NOW)
    assert ack.detail == "args.pct: 150 is out of range (limit 0 <= power_limit_pct <= 100 %)"


def test_forged_unsigned_and_untrusted_commands_are_rejected() -> None:
    c = control()
    doc = sign_document(command(), KEY)
    doc["args"] = {"pct": 10}  # changed after signing
    (ack,) = c.on_command(orjson.dumps(doc), NOW)
    assert (ack.status, ack.detail.split(":")[0]) == (AckStatus.REJECTED, "bad signature")
    (ack,) = c.on_command(orjson.dumps(command()), NOW)
    assert ack.detail.startswith("unsigned")
    (ack,) = c.on_command(signed(command(), SigningKey.generate()), NOW)
    assert ack.detail.startswith("untrusted key")
    assert c.devices[INV].read("123.WMaxLimPct") == 100


def test_without_trusted_keys_everything_is_refused() -> None:
    c = control(trusted=TrustedKeys())
    (ack,) = c.on_command(signed(command()), NOW)
    assert ack.detail.startswith("untrusted key")
    state = c.on_config(signed(config()), NOW)
    assert state is not None
    assert state.detail.startswith("refused config: untrusted key")
    assert state.version is None


def test_a_replayed_command_is_rejected() -> None:
    c = control()
    payload = signed(command())
    assert statuses(c.on_command(payload, NOW)) == ["accepted", "done"]
    (ack,) = c.on_command(payload, NOW + timedelta(seconds=1))
    assert (ack.status, ack.detail.split(":")[0]) == (AckStatus.REJECTED, "replayed")


def test_a_command_without_an_id_cannot_be_answered() -> None:
    c = control()
    assert c.on_command(b"not json", NOW) == []
    assert c.on_command(signed(command()).replace(b'"pct":50', b'"pct":NaN'), NOW) == []
    assert c.on_command(orjson.dumps({"name": "ping"}), NOW) == []


def test_gateway_commands_are_done_at_once() -> None:
    c = control(fails=True)
    ping = c.on_command(signed(command(device=None, name="ping", args={})), NOW)
    assert statuses(ping) == ["accepted", "done"]
    assert ping[1].detail == "pong"
    rescan = c.on_command(signed(command(device=None, name="rescan", args={})), NOW)
    assert statuses(rescan) == ["accepted", "done"]


def test_a_failing_gateway_fails_device_commands_and_keeps_values() -> None:
    c = control(fails=True)
    acks = c.on_command(signed(command()), NOW)
    assert statuses(acks) == ["accepted", "failed"]
    assert "123.WMaxLimPct" in acks[1].detail
    assert INV in acks[1].detail
    assert c.devices[INV].read("123.WMaxLimPct") == 100


# ----- configs ----------------------------------------------------------------------------
def test_a_config_is_applied_and_read_back_per_device() -> None:
    c = control()
    doc = config(devices={INV: {"power_limit_pct": 80, "v_ref": 240, "w_max": 3500}, MTR: {}})
    state = c.on_config(signed(doc), NOW)
    assert state is not None
    assert state.status == "applied"
    assert state.version == 3
    assert state.hash == config_hash(sign_document(doc, KEY))
    assert state.devices == {INV: "applied", MTR: "applied"}
    assert state.points == {INV: {"power_limit_pct": 80, "v_ref": 240, "w_max": 3500}, MTR: {}}
    assert c.devices[INV].read("121.VRef") == 240
    assert c.config_version == 3
    ConfigState(stream_id=uuid.uuid4(), seq=1, ts=utc_now(), **state.fields())  # valid


def test_equal_version_re_reports_and_older_is_refused() -> None:
    c = control()
    first = c.on_config(signed(config(version=5)), NOW)
    assert c.on_config(signed(config(version=5)), NOW) == first  # the same: re-reported
    again = c.on_config(signed(config(version=5, devices={INV: {"power_limit_pct": 1}})), NOW)
    assert first is not None
    assert again is not None
    # The same number from another document is refused, never taken as a no-op.
    assert again.detail.startswith("refused config: stale version: version 5 was applied")
    assert (again.version, again.status, again.hash) == (5, "applied", first.hash)
    assert c.devices[INV].read("123.WMaxLimPct") == 80
    old = c.on_config(signed(config(version=4, devices={INV: {"power_limit_pct": 1}})), NOW)
    assert old is not None
    assert first is not None
    assert old.detail.startswith("refused config: stale version: version 4 is older")
    assert (old.version, old.status, old.hash) == (5, "applied", first.hash)
    assert c.devices[INV].read("123.WMaxLimPct") == 80
    # the very same bytes again (a retained config on resubscribe): re-reported as handled
    assert c.on_config(signed(config(version=5)), NOW) == first


def test_a_config_refused_by_validation_is_handled_and_writes_nothing() -> None:
    c = control()
    bad = {INV: {"power_limit_pct": 80, "v_ref": 300}, MTR: {}}
    state = c.on_config(signed(config(version=2, devices=bad)), NOW)
    assert state is not None
    assert (state.version, state.status) == (2, "failed")
    assert state.devices == {INV: "failed", MTR: "failed"}
    assert state.detail.startswith(f"devices.{INV}.v_ref: 300 is out of range")
    assert c.devices[INV].read("123.WMaxLimPct") == 100
    unknown = c.on_config(signed(config(version=3, devices={MTR: {"x": 1}})), NOW)
    assert unknown is not None
    assert unknown.detail.startswith(f"devices.{MTR}.x")


def test_an_expired_newer_config_is_handled_as_failed() -> None:
    c = control()
    doc = config(version=7, not_after=to_wire(NOW - timedelta(seconds=1)))
    state = c.on_config(signed(doc), NOW)
    assert state is not None
    assert (state.version, state.status, state.devices) == (7, "failed", {INV: "failed"})
    assert state.detail.startswith("expired")
    assert c.devices[INV].read("123.WMaxLimPct") == 100


def test_forged_or_misaddressed_configs_move_nothing() -> None:
    c = control()
    applied = c.on_config(signed(config(version=2)), NOW)
    forged = sign_document(config(version=9, devices={INV: {"power_limit_pct": 5}}), KEY)
    forged["version"] = 10
    for payload, reason in [
        (orjson.dumps(forged), "bad signature"),
        (signed(config(version=9, gateway_id="vgw-00002")), "wrong gateway"),
        (b"{", "schema-invalid"),
    ]:
        state = c.on_config(payload, NOW)
        assert state is not None
        assert applied is not None
        assert state.detail.startswith(f"refused config: {reason}")
        assert (state.version, state.hash, state.points) == (2, applied.hash, applied.points)
    assert c.devices[INV].read("123.WMaxLimPct") == 80
    assert c.on_config(b"", NOW) is None  # the retained config was cleared


def test_a_failing_gateway_fails_configs_and_keeps_previous_values() -> None:
    c = control(fails=True)
    doc = config(devices={INV: {"power_limit_pct": 60, "v_ref": 240}, MTR: {}})
    state = c.on_config(signed(doc), NOW)
    assert state is not None
    assert (state.version, state.status) == (3, "failed")
    assert state.devices == {INV: "failed", MTR: "applied"}
    assert f"{INV}.power_limit_pct (123.WMaxLimPct)" in state.detail
    assert state.points[INV] == {"power_limit_pct": 100, "v_ref": 230}  # previous values
    assert c.devices[INV].read("121.VRef") == 230


# ----- failure injection -------------------------------------------------------------------
def test_fails_by_seed_is_stable_and_follows_the_fraction() -> None:
    ids = [f"vgw-{i:05d}" for i in range(2000)]
    chosen = [g for g in ids if fails_by_seed(42, g, 0.1)]
    assert chosen == [g for g in ids if fails_by_seed(42, g, 0.1)]
    assert 150 <= len(chosen) <= 250
    assert chosen != [g for g in ids if fails_by_seed(43, g, 0.1)]
    assert not any(fails_by_seed(42, g, 0.0) for g in ids)
    assert all(fails_by_seed(42, g, 1.0) for g in ids)
    # a larger fraction keeps the smaller one's gateways (rollout stages grow)
    assert set(chosen) <= {g for g in ids if fails_by_seed(42, g, 0.3)}


def test_the_plan_marks_named_and_seeded_failing_gateways() -> None:
    spec = FleetSpec(count=50, fail_gateways=("vgw-00003",), fail_fraction=0.2, seed=7)
    failing = failing_gateways(spec)
    assert "vgw-00003" in failing
    assert failing == failing_gateways(spec.model_copy())
    assert [p.gateway_id for p in plan(spec) if p.fails] == failing
    expected = {f"vgw-{i:05d}" for i in range(50) if fails_by_seed(7, f"vgw-{i:05d}", 0.2)}
    assert set(failing) == expected | {"vgw-00003"}
    assert failing_gateways(FleetSpec(count=50)) == []


def test_spec_checks_trusted_key_files_and_failing_ids(tmp_path: Path) -> None:
    good = tmp_path / "cloud.pub"
    good.write_bytes(KEY.public_pem())
    spec = FleetSpec(count=1, trusted_key_files=(good,))
    assert spec.trusted_keys().kids() == {KEY.kid}
    assert FleetSpec(count=1).trusted_keys().kids() == frozenset()
    bad = tmp_path / "bad.pem"
    bad.write_text("nope")
    with pytest.raises(ValueError, match="not an Ed25519 public key"):
        FleetSpec(count=1, trusted_key_files=(bad,))
    with pytest.raises(ValueError, match="trusted key"):
        FleetSpec(count=1, trusted_key_files=(tmp_path / "missing.pem",))
    with pytest.raises(ValueError, match="not a gateway id"):
        FleetSpec(count=1, fail_gateways=("NOT OK",))


# ----- the gateway's buffer ------------------------------------------------------------------
def gateway(**spec: object) -> VirtualGateway:
    s = FleetSpec.model_validate({"count": 2, "cadence_s": 300, "speed": 60, **spec})
    return VirtualGateway(
        plan=plan(s)[1],
        spec=s,
        stream_id=uuid.uuid4(),
        boot_id="b",
        sim_first=NOW,
        stats=WorkerStats(gateways=1),
        trusted=TRUSTED,
    )


def live(doc: dict[str, Any]) -> bytes:
    """A document valid now (the gateway reads the clock)."""
    key = "expires_at" if "expires_at" in doc else "not_after"
    doc[key] = to_wire(utc_now() + timedelta(minutes=5))
    return signed(doc)


def test_answers_take_the_next_seqs_of_the_stream_and_are_buffered() -> None:
    gw = gateway()
    gw.on_connected()
    assert gw.produce() == 1
    assert gw.on_command(live(command())) == 2
    assert gw.on_config(live(config(version=1))) == 1
    assert gw.on_config(live(config(version=2))) == 1
    sent = [gw.next_send(float(i)) for i in range(5)]
    assert [p.seq for p in sent if p] == [1, 2, 3, 4, 5]
    kinds = [p.topic.rsplit("/", 1)[1] for p in sent if p]
    assert kinds == ["telemetry", "cmd_ack", "cmd_ack", "config_state", "config_state"]
    acks = [CmdAck.model_validate_json(p.payload) for p in sent[1:3] if p]
    assert [(a.stream_id, a.seq, a.status) for a in acks] == [
        (gw.stream_id, 2, AckStatus.ACCEPTED),
        (gw.stream_id, 3, AckStatus.DONE),
    ]
    states = [ConfigState.model_validate_json(p.payload) for p in sent[3:] if p]
    assert [s.version for s in states] == [1, 2]
    # the superseded state was sent unretained; only the newest is retained
    assert [p.retain for p in sent if p] == [False, False, False, False, True]
    assert BirthMsg.model_validate_json(gw.birth().payload).config_version == 2
    assert (gw.stats.commands, gw.stats.cmd_acks, gw.stats.config_states) == (1, 2, 2)


def test_stored_releases_control_messages_under_their_own_counter() -> None:
    gw = gateway()
    gw.on_connected()
    gw.produce()
    gw.on_command(live(command(device=None, name="ping", args={})))
    for i in range(3):
        p = gw.next_send(float(i))
        assert p is not None
        assert p.seq is not None
        gw.on_puback(p.seq, float(i), float(i))
    assert gw.stats.acked == 1  # telemetry only
    released = gw.on_stored(StoredMsg(stream_id=gw.stream_id, upto_seq=3, ts=utc_now()), 5.0)
    assert released == 3
    assert (gw.stats.stored, gw.stats.control_stored) == (1, 2)
    assert gw.settled()


def test_a_failing_planned_gateway_fails_its_commands() -> None:
    gw = gateway(fail_gateways=(GW,))
    assert gw.plan.gateway_id == GW
    assert gw.plan.fails
    gw.on_connected()
    gw.on_command(live(command()))
    statuses_sent = [CmdAck.model_validate_json(gw.buffer[s].payload).status for s in (1, 2)]
    assert statuses_sent == [AckStatus.ACCEPTED, AckStatus.FAILED]
