"""The agent's control path against real Mosquitto and a simulated site over Modbus TCP:
signed commands and configs are applied, read back, restored on failure, watched for
drift; the handled config and seen command ids survive a restart; keys rotate.

Every claim about a device is read from the simulator (its served values and its own
write log), never from the agent's word.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from contracts.signing import SigningKey
from edge_agent.app import Agent
from edge_agent.control_store import ControlStore, control_store_path
from simulators.device_site import DeviceSite, DeviceSiteSettings, DeviceSpec
from tests.integration.control_harness import (
    BATTERY,
    INVERTER,
    ISOLATOR,
    Cloud,
    agent_settings,
    cloud_for,
    control_site,
    device_ids,
    running_agent,
    write_public_key,
)

pytestmark = [pytest.mark.integration, pytest.mark.security]


@pytest.fixture
async def site() -> AsyncIterator[DeviceSite]:
    async with control_site(f"ctl-{uuid4().hex[:6]}") as sim:
        yield sim


def _gw() -> str:
    return f"gw-c-{uuid4().hex[:10]}"


@contextlib.asynccontextmanager
async def _controlled(
    url: str, site: DeviceSite, tmp_path: Path, **settings: Any
) -> AsyncIterator[tuple[Cloud, dict[int, str], Agent]]:
    """An agent for ``site`` trusting a fresh key, a signing cloud, and the devices
    discovered (birth seen): (cloud, unit id → device id, agent)."""
    key = SigningKey.generate()
    gw = _gw()
    ids = device_ids(site)
    agent_cfg = agent_settings(
        url, site, tmp_path, gw, [write_public_key(key, tmp_path / "k.pem")], **settings
    )
    async with cloud_for(url, gw, key) as cloud, running_agent(agent_cfg) as agent:
        await cloud.until(lambda: cloud.devices_discovered(set(ids.values())), 15, "birth")
        yield cloud, ids, agent


async def test_command_is_written_read_back_and_acked_done(
    mosquitto_url: str, site: DeviceSite, tmp_path: Path
) -> None:
    async with _controlled(mosquitto_url, site, tmp_path) as (cloud, ids, _):
        doc = cloud.command("set_power_limit", ids[INVERTER], {"pct": 42})
        ack = await cloud.command_result(doc)
        assert ack["status"] == "done", ack
        assert [a["status"] for a in cloud.acks_of(doc["id"])] == ["accepted", "done"]
        assert site.point(INVERTER, "704.WMaxLimPct") == 42
        assert site.point(INVERTER, "704.WMaxLimPctEna") == 1
        ping = await cloud.command_result(cloud.command("ping", None))
        assert (ping["status"], ping["detail"]) == ("done", "pong")
        opened = await cloud.command_result(cloud.command("open", ids[ISOLATOR]))
        assert opened["status"] == "done", opened
        assert site.device(ISOLATOR).vendor["state"] == 0  # open
        charge = await cloud.command_result(cloud.command("charge", ids[BATTERY], {"pct": 30}))
        assert charge["status"] == "done", charge
        assert site.point(BATTERY, "124.InWRte") == pytest.approx(30)


VOLT_VAR_V = [90.0, 100.0, 105.0, 110.0]
VOLT_VAR_Q = [40.0, 0.0, 0.0, -40.0]


def _curve(site: DeviceSite, name: str, n: int) -> list[float | int | None]:
    return [site.point(INVERTER, f"705.Crv[0].Pt[{i}].{name}") for i in range(n)]


async def test_config_with_a_curve_is_applied_and_reported_with_read_back(
    mosquitto_url: str, site: DeviceSite, tmp_path: Path
) -> None:
    ids = device_ids(site)
    devices = {
        ids[INVERTER]: {
            "power_limit_pct": 80,
            "volt_var_enable": 1,
            "volt_var_v_pct": VOLT_VAR_V,
            "volt_var_q_pct": VOLT_VAR_Q,
        },
        ids[BATTERY]: {"min_reserve_pct": 20},
    }
    async with _controlled(mosquitto_url, site, tmp_path) as (cloud, ids, agent):
        doc = cloud.config(devices)
        state = await cloud.config_result(doc)
        assert state["status"] == "applied", state
        assert state["version"] == doc["version"]
        assert state["devices"] == {ids[INVERTER]: "applied", ids[BATTERY]: "applied"}
        assert state["points"][ids[INVERTER]]["volt_var_v_pct"] == VOLT_VAR_V
        assert _curve(site, "V", 4) == VOLT_VAR_V
        assert _curve(site, "Var", 4) == VOLT_VAR_Q
        assert site.point(INVERTER, "704.WMaxLimPct") == 80
        assert site.point(BATTERY, "124.MinRsvPct") == 20
        adoptions = [r for r in site.writes(INVERTER) if "705.AdptCrvReq" in r.points]
        assert [r.points["705.AdptCrvReq"] for r in adoptions] == [3]  # the staging curve
        # The same version again: nothing written, the state re-reported.
        writes = len(site.write_log)
        again = await cloud.config_result(doc)
        assert (again["version"], again["status"]) == (doc["version"], "applied")
        assert len(site.write_log) == writes
        assert agent.publisher.birth().config_version == doc["version"]


async def test_failing_write_restores_the_previous_values_and_names_the_point(
    mosquitto_url: str, site: DeviceSite, tmp_path: Path
) -> None:
    ids = device_ids(site)
    inverter = ids[INVERTER]
    async with _controlled(mosquitto_url, site, tmp_path) as (cloud, ids, _):
        first = await cloud.config_result(
            cloud.config({inverter: {"power_limit_pct": 80, "power_limit_enable": 0}})
        )
        assert first["status"] == "applied", first
        site.activate_fault(
            {"kind": "write_fail", "unit": INVERTER, "point": "704.WMaxLimPctEna", "count": 1}
        )
        state = await cloud.config_result(
            cloud.config(
                {
                    inverter: {"power_limit_pct": 60, "power_limit_enable": 1},
                    ids[BATTERY]: {"min_reserve_pct": 15},
                }
            )
        )
        assert state["status"] == "failed", state
        assert state["devices"] == {inverter: "failed", ids[BATTERY]: "applied"}
        assert "power_limit_enable" in state["detail"]
        assert "704.WMaxLimPctEna" in state["detail"]
        assert "previous values restored" in state["detail"]
        assert site.point(INVERTER, "704.WMaxLimPct") == 80  # written, then restored
        assert site.point(INVERTER, "704.WMaxLimPctEna") == 0
        assert site.point(BATTERY, "124.MinRsvPct") == 15  # other devices unaffected
        limits = [
            r.points["704.WMaxLimPct"]
            for r in site.writes(INVERTER)
            if "704.WMaxLimPct" in r.points
        ]
        assert limits[-2:] == [60, 80]


async def test_drift_behind_the_agents_back_is_reported_once_and_clears(
    mosquitto_url: str, site: DeviceSite, tmp_path: Path
) -> None:
    ids = device_ids(site)
    inverter = ids[INVERTER]
    async with _controlled(mosquitto_url, site, tmp_path) as (cloud, ids, _):
        state = await cloud.config_result(cloud.config({inverter: {"power_limit_pct": 70}}))
        assert state["status"] == "applied", state
        before = len(cloud.states)
        site.set_point(INVERTER, "704.WMaxLimPct", 55)
        # one check interval (0.5 s) plus a poll's worth of slack
        await cloud.until(lambda: len(cloud.states) > before, 2.0, "drift report")
        drifted = cloud.states[before]
        assert drifted["status"] == "drifted"
        assert drifted["drift"] == [f"{inverter}.power_limit_pct"]
        await cloud.until(lambda: any(e["event"] == "config_drift" for e in cloud.events), 2.0)
        event = next(e for e in cloud.events if e["event"] == "config_drift")
        assert event["detail"]["drift"][0]["setting"] == "power_limit_pct"
        site.set_point(INVERTER, "704.WMaxLimPct", 70)
        await cloud.until(lambda: len(cloud.states) > before + 1, 2.0, "drift cleared")
        cleared = cloud.states[before + 1]
        assert (cleared["status"], cleared["drift"]) == ("applied", [])
        assert len([e for e in cloud.events if e["event"] == "config_drift"]) == 1


async def test_handled_config_and_seen_ids_survive_a_restart(
    mosquitto_url: str, site: DeviceSite, tmp_path: Path
) -> None:
    key = SigningKey.generate()
    gw = _gw()
    ids = device_ids(site)
    settings = agent_settings(
        mosquitto_url, site, tmp_path, gw, [write_public_key(key, tmp_path / "k.pem")]
    )
    command = None
    async with cloud_for(mosquitto_url, gw, key) as cloud:
        async with running_agent(settings):
            await cloud.until(lambda: cloud.devices_discovered(set(ids.values())), 15, "birth")
            config = cloud.config({ids[INVERTER]: {"power_limit_pct": 65}})
            assert (await cloud.config_result(config))["status"] == "applied"
            command = cloud.command("set_power_limit", ids[INVERTER], {"pct": 50})
            assert (await cloud.command_result(command))["status"] == "done"
        births = len(cloud.births)
        async with running_agent(settings) as agent:
            await cloud.until(lambda: len(cloud.births) > births, 15, "birth after restart")
            assert cloud.births[-1]["config_version"] == config["version"]
            assert agent.control.config_version == config["version"]
            writes = len(site.write_log)
            replay = await cloud.command_result(command)
            assert replay["status"] == "rejected"
            assert replay["detail"].startswith("replayed")
            stale = await cloud.config_result(cloud.config({}, version=config["version"] - 0))
            assert stale["version"] == config["version"]
            assert len(site.write_log) == writes


async def test_a_command_interrupted_by_a_crash_is_answered_failed_after_restart(
    mosquitto_url: str, site: DeviceSite, tmp_path: Path
) -> None:
    """The control store holds a command accepted but never finished (the process died
    between its writes and its final ack): the next run answers it ``failed``, once."""
    key = SigningKey.generate()
    gw = _gw()
    ids = device_ids(site)
    settings = agent_settings(
        mosquitto_url, site, tmp_path, gw, [write_public_key(key, tmp_path / "k.pem")]
    )
    interrupted = uuid4()
    store = ControlStore(control_store_path(settings.buffer_path))
    store.begin(interrupted, ids[INVERTER], "set_power_limit")
    store.close()
    async with cloud_for(mosquitto_url, gw, key) as cloud:
        async with running_agent(settings):
            await cloud.until(lambda: cloud.acks_of(str(interrupted)), 15, "the late answer")
            await cloud.until(lambda: cloud.devices_discovered(set(ids.values())), 15, "birth")
            # Handled in order: a ping answered afterwards means nothing else is coming.
            assert (await cloud.command_result(cloud.command("ping", None)))["status"] == "done"
        [ack] = cloud.acks_of(str(interrupted))
        assert ack["status"] == "failed"
        assert ack["detail"].startswith("interrupted")
    store = ControlStore(control_store_path(settings.buffer_path))
    assert store.inflight() == []
    store.close()


async def test_key_rotation_trusts_both_keys_then_only_the_new_one(
    mosquitto_url: str, site: DeviceSite, tmp_path: Path
) -> None:
    old, new = SigningKey.generate(), SigningKey.generate()
    old_pem = write_public_key(old, tmp_path / "old.pem")
    new_pem = write_public_key(new, tmp_path / "new.pem")
    gw = _gw()
    ids = device_ids(site)
    both = agent_settings(mosquitto_url, site, tmp_path, gw, [old_pem, new_pem])
    async with cloud_for(mosquitto_url, gw, old) as cloud:
        async with running_agent(both):
            await cloud.until(lambda: cloud.devices_discovered(set(ids.values())), 15, "birth")
            assert (await cloud.command_result(cloud.command("ping", None)))["status"] == "done"
            cloud.key = new
            assert (await cloud.command_result(cloud.command("ping", None)))["status"] == "done"
        retired = agent_settings(mosquitto_url, site, tmp_path, gw, [new_pem])
        births = len(cloud.births)
        async with running_agent(retired):
            await cloud.until(lambda: len(cloud.births) > births, 15, "birth after restart")
            assert (await cloud.command_result(cloud.command("ping", None)))["status"] == "done"
            cloud.key = old
            refused = await cloud.command_result(cloud.command("ping", None))
            assert refused["status"] == "rejected"
            assert refused["detail"].startswith("untrusted key")


async def test_a_value_that_would_round_past_its_limit_is_not_written(
    mosquitto_url: str, tmp_path: Path
) -> None:
    """v_ref may be 180..265 V; at scale factor 2 (100 V steps) 260 V would be written as
    300 V. The rounded value is checked too: refused, nothing reaches the device."""
    key = SigningKey.generate()
    gw = _gw()
    async with DeviceSite(
        DeviceSiteSettings(
            site_id=f"round-{uuid4().hex[:6]}",
            devices=[DeviceSpec(profile="sim-inverter-103", unit_id=1)],
        )
    ) as legacy:
        settings = agent_settings(
            mosquitto_url,
            legacy,
            tmp_path,
            gw,
            [write_public_key(key, tmp_path / "k.pem")],
            endpoints=[
                {
                    "name": "site",
                    "host": "127.0.0.1",
                    "port": legacy.port,
                    "unit_ids": [1],
                    "unit_profiles": {1: "sim-inverter-103"},
                    "timeout_s": 1.0,
                }
            ],
        )
        legacy.activate_fault({"kind": "scale_factor", "unit": 1, "point": "121.VRef_SF", "sf": 2})
        device = legacy.device(1).serial
        async with cloud_for(mosquitto_url, gw, key) as cloud, running_agent(settings):
            await cloud.until(lambda: cloud.devices_discovered({device}), 15, "birth")
            before = list(legacy.write_log)
            state = await cloud.config_result(cloud.config({device: {"v_ref": 260}}))
            assert state["status"] == "failed", state
            assert state["devices"] == {device: "failed"}
            assert "rounds to 300" in state["detail"], state
            assert legacy.write_log == before  # nothing reached the device
            state = await cloud.config_result(cloud.config({device: {"v_ref": 200}}))
            assert state["status"] == "applied", state
            assert legacy.point(1, "121.VRef") == pytest.approx(200)


async def test_an_isolator_command_is_done_only_when_the_switch_moved(
    mosquitto_url: str, site: DeviceSite, tmp_path: Path
) -> None:
    """``open`` writes a command register that resets itself: the profile's declared
    effect (``vendor.state`` = 0) is what is read back. A device that takes the write
    but does not move (the write ignored) ends ``failed``, naming what it shows."""
    async with _controlled(mosquitto_url, site, tmp_path, command_effect_timeout_s=0.5) as (
        cloud,
        ids,
        _,
    ):
        site.activate_fault(
            {"kind": "write_fail", "unit": ISOLATOR, "point": "vendor.command", "mode": "ignore"}
        )
        stuck = await cloud.command_result(cloud.command("open", ids[ISOLATOR]))
        assert stuck["status"] == "failed", stuck
        assert "no effect: vendor.state reads 1" in stuck["detail"], stuck
        site.clear_faults("write_fail", ISOLATOR)
        opened = await cloud.command_result(cloud.command("open", ids[ISOLATOR]))
        assert opened["status"] == "done", opened
        assert "vendor.state=0" in opened["detail"]
        assert site.point(ISOLATOR, "vendor.state") == 0


async def test_an_isolator_command_that_cannot_apply_is_rejected_at_once_unwritten(
    mosquitto_url: str, site: DeviceSite, tmp_path: Path
) -> None:
    """``reset_trip`` applies only to a tripped isolator (the profile's ``requires``): on
    a closed one it is ``rejected`` as not applicable with nothing written, answered well
    before the effect timeout it used to wait out. The simulator's own write log is the
    witness that nothing reached the device."""
    async with _controlled(mosquitto_url, site, tmp_path, command_effect_timeout_s=30) as (
        cloud,
        ids,
        _,
    ):
        assert site.point(ISOLATOR, "vendor.state") == 1  # the simulator starts closed
        before = len(site.writes(ISOLATOR))
        ack = await cloud.command_result(cloud.command("reset_trip", ids[ISOLATOR]), within=5)
        assert ack["status"] == "rejected", ack
        assert ack["detail"].startswith("not applicable: reset_trip"), ack
        assert "it reads 1 (CLOSED)" in ack["detail"], ack
        assert len(site.writes(ISOLATOR)) == before
        assert site.point(ISOLATOR, "vendor.state") == 1


async def test_an_isolator_command_already_in_effect_is_done_without_a_write(
    mosquitto_url: str, site: DeviceSite, tmp_path: Path
) -> None:
    """``close`` on a closed isolator: its declared effect already shows, so it is
    ``done`` ("already in effect") with no write and no ``accepted`` step."""
    async with _controlled(mosquitto_url, site, tmp_path) as (cloud, ids, _):
        before = len(site.writes(ISOLATOR))
        doc = cloud.command("close", ids[ISOLATOR])
        ack = await cloud.command_result(doc, within=5)
        assert ack["status"] == "done", ack
        assert ack["detail"] == "already in effect: vendor.state=1 (CLOSED); nothing written"
        assert [a["status"] for a in cloud.acks_of(doc["id"])] == ["done"]
        assert len(site.writes(ISOLATOR)) == before


async def test_a_tripped_isolator_refuses_close_unwritten_and_is_reset_then_closed(
    mosquitto_url: str, site: DeviceSite, tmp_path: Path
) -> None:
    """Tripped: ``close`` and ``open`` do not apply (nothing written); ``reset_trip``
    writes once and is done when the isolator shows open; then ``close`` closes it."""
    async with _controlled(mosquitto_url, site, tmp_path) as (cloud, ids, _):
        site.activate_fault({"kind": "isolator_trip", "unit": ISOLATOR})
        assert site.point(ISOLATOR, "vendor.state") == 2
        before = len(site.writes(ISOLATOR))
        for name in ("close", "open"):
            ack = await cloud.command_result(cloud.command(name, ids[ISOLATOR]), within=5)
            assert ack["status"] == "rejected", ack
            assert "it reads 2 (TRIPPED)" in ack["detail"], ack
        assert len(site.writes(ISOLATOR)) == before
        reset = await cloud.command_result(cloud.command("reset_trip", ids[ISOLATOR]))
        assert reset["status"] == "done", reset
        assert [r.points for r in site.writes(ISOLATOR)[before:]] == [{"vendor.command": 3}]
        assert site.point(ISOLATOR, "vendor.state") == 0
        closed = await cloud.command_result(cloud.command("close", ids[ISOLATOR]))
        assert closed["status"] == "done", closed
        assert site.point(ISOLATOR, "vendor.state") == 1


async def test_a_config_for_a_sleeping_inverter_is_pending_then_applied_when_it_wakes(
    mosquitto_url: str, site: DeviceSite, tmp_path: Path
) -> None:
    """Decision 153: no answer (TCP refused at night) keeps a device's part pending; the
    agent applies it, read back, when the poller sees the device answer again."""
    ids = device_ids(site)
    inverter = ids[INVERTER]
    async with _controlled(mosquitto_url, site, tmp_path, unreachable_backoff_max_s=0.5) as (
        cloud,
        ids,
        agent,
    ):
        first = await cloud.config_result(cloud.config({inverter: {"power_limit_pct": 80}}))
        assert first["status"] == "applied", first
        await site.endpoint.sleep()  # the whole endpoint refuses connections
        # Sent at once, most likely before the poller noticed: the writes get no answer.
        state = await cloud.config_result(cloud.config({inverter: {"power_limit_pct": 65}}))
        assert (state["status"], state["devices"]) == ("pending", {inverter: "pending"}), state
        assert "kept pending" in state["detail"]
        # Once the poller has seen it stop answering, a newer version supersedes it.
        await cloud.until(
            lambda: any(
                e["event"] in ("device_asleep", "device_unreachable") and e["device"] == inverter
                for e in cloud.events
            ),
            10,
            "the inverter seen not answering",
        )
        newer = cloud.config({inverter: {"power_limit_pct": 55, "power_limit_enable": 1}})
        state = await cloud.config_result(newer)
        assert (state["status"], state["devices"]) == ("pending", {inverter: "pending"}), state
        assert site.point(INVERTER, "704.WMaxLimPct") == 80  # nothing reached it
        before = len(cloud.states)
        await site.endpoint.wake()
        await cloud.until(
            lambda: any(s["status"] == "applied" for s in cloud.states[before:]),
            10,
            "the pending config applied on wake",
        )
        applied = next(s for s in cloud.states[before:] if s["status"] == "applied")
        assert applied["version"] == newer["version"]
        assert applied["devices"] == {inverter: "applied"}
        assert applied["points"][inverter] == {"power_limit_pct": 55, "power_limit_enable": 1}
        assert applied["detail"] == ""
        assert site.point(INVERTER, "704.WMaxLimPct") == 55
        assert site.point(INVERTER, "704.WMaxLimPctEna") == 1
        written = [
            r.points["704.WMaxLimPct"]
            for r in site.writes(INVERTER)
            if "704.WMaxLimPct" in r.points
        ]
        assert 65 not in written  # the superseded version never reached the device
        assert agent.publisher.birth().config_version == newer["version"]


async def test_a_refusal_from_an_answering_device_stays_failed_not_pending(
    mosquitto_url: str, site: DeviceSite, tmp_path: Path
) -> None:
    ids = device_ids(site)
    inverter = ids[INVERTER]
    async with _controlled(mosquitto_url, site, tmp_path) as (cloud, ids, agent):
        site.activate_fault(  # an exception response: the device answers "no"
            {"kind": "write_fail", "unit": INVERTER, "point": "704.WMaxLimPct", "code": 4}
        )
        state = await cloud.config_result(cloud.config({inverter: {"power_limit_pct": 45}}))
        assert (state["status"], state["devices"]) == ("failed", {inverter: "failed"}), state
        assert "kept pending" not in state["detail"]
        site.clear_faults("write_fail", INVERTER)
        writes = len(site.write_log)
        await agent.control.apply_pending()  # what the device answering again triggers
        assert site.write_log[writes:] == []  # a refusal is not retried
        assert site.point(INVERTER, "704.WMaxLimPct") != 45
