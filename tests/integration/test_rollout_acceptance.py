"""Issue 18 acceptance: a staged rollout to 100 gateways — 95 virtual gateways and 5 real
agents polling simulated sites over Modbus TCP — on one real Mosquitto and PostgreSQL.

Three named gateways of the canary of ten fail (two virtual gateways by the fleet's
failure injection, one agent whose inverter refuses the write): 30 % passes the 20 %
threshold and the rollout aborts by itself before its second wave. The rollback
restores the previous settings on every gateway the canary reached, shown by each
gateway's own ``config_state`` and, on the real agents, by what the simulators'
registers hold. Then a limit written straight into one simulator's register over Modbus,
behind its agent's back, is reported as drift within one check interval.

Expected values are the test's own: the settings it signs and the registers it reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiomqtt
import orjson
import psycopg
import pytest
from pymodbus.client import AsyncModbusTcpClient

from cloud.adapters.postgres import create_pool
from cloud.bootstrap import run_services
from cloud.config import ConfigIn, ConfigService, ConfigSettings, public_key_path, write_key_file
from cloud.config.rollout_models import RolloutIn
from cloud.ingest import IngestSettings
from cloud.migrate import migrate
from cloud.registry import RegistryService
from contracts.messages import ProfileRef
from contracts.topics import Region
from potr.fleet import register_gateways, run_virtual_fleet
from simulators.device_site import DeviceSite
from simulators.fleet import FleetSpec
from tests.integration.control_harness import INVERTER, agent_settings, control_site
from tests.integration.harness import running_agent
from tests.waiting import until

pytestmark = [pytest.mark.integration]

AGENTS = [f"rb-site-{i}" for i in range(1, 6)]
VIRTUAL = [f"rb-{i:05d}" for i in range(95)]
#: The canary: the five agents and five virtual gateways; the rest is the second wave.
ORDER = [*AGENTS, *VIRTUAL]
CANARY = 10
FAILING_VIRTUAL = ("rb-00001", "rb-00002")
FAILING_AGENT = "rb-site-2"
PROFILE = ProfileRef(id="au-rollout-acceptance", region="au", version=1)
LIMIT = "704.WMaxLimPct"
BASE_PCT, ROLLOUT_PCT, BEHIND_PCT = 60, 80, 85
CHECK_S = 1.0  # the agents' drift check interval
#: The check reads every setting back and publishes; one interval plus this is "within".
CHECK_SLACK_S = 1.0
WAIT_S = 20.0


def _inv(g: str) -> str:
    return f"INV-{g}"


@contextlib.asynccontextmanager
async def cloud(database_url: str, mqtt_url: str, key_file: Path) -> AsyncIterator[ConfigService]:
    """Ingest, the registry and the config service with its loops, in this process."""
    await asyncio.to_thread(migrate, database_url)
    pool = await asyncio.to_thread(create_pool, database_url, min_size=1, max_size=8, name="rb")
    try:
        registry = RegistryService(pool)
        # Every gateway registered before the services start, so each consumer (ingest,
        # alerts) learns all of them from the registry's events.
        await asyncio.to_thread(register_gateways, registry, [(g, Region.AU) for g in ORDER])
        async with run_services(
            pool,
            registry,
            ingest=IngestSettings(
                database_url=database_url, mqtt_url=mqtt_url, mqtt_client_id=f"rb-{os.getpid()}"
            ),
            config=ConfigSettings(
                database_url=database_url,
                mqtt_url=mqtt_url,
                signing_key_file=key_file,
                config_provision_new=False,  # the test's own first config is v1
                config_republish_interval_s=0.2,
            ),
        ) as services:
            assert services.publisher_connected
            yield services.config
    finally:
        await asyncio.to_thread(pool.close)


@contextlib.asynccontextmanager
async def virtual_fleet(mqtt_url: str, key_file: Path) -> AsyncIterator[None]:
    spec = FleetSpec.model_validate(
        {
            "count": len(VIRTUAL),
            "id_prefix": "rb",
            "cadence_s": 300.0,
            "workers": 1,
            "connect_rate": 500.0,
            "drain_timeout_s": 5.0,
            "trusted_key_files": (public_key_path(key_file),),
            "fail_gateways": FAILING_VIRTUAL,
            "expect_stored": False,
        }
    )
    stop = asyncio.Event()
    task = asyncio.create_task(run_virtual_fleet(spec, mqtt_url=mqtt_url, stop=stop))
    try:
        yield
    finally:
        stop.set()
        async with asyncio.timeout(30):
            await task


@contextlib.asynccontextmanager
async def agents(
    mqtt_url: str, key_file: Path, workdir: Path
) -> AsyncIterator[dict[str, DeviceSite]]:
    """Five simulated sites (inverter, battery, isolator over Modbus TCP), each polled by
    a real agent trusting the cloud's key."""
    async with contextlib.AsyncExitStack() as stack:
        sites: dict[str, DeviceSite] = {}
        for g in AGENTS:
            sites[g] = await stack.enter_async_context(control_site(g))
            (workdir / g).mkdir()
            settings = agent_settings(
                mqtt_url, sites[g], workdir / g, g, [public_key_path(key_file)],
                poll_interval_s=2.0, config_check_interval_s=CHECK_S,
            )  # fmt: skip
            await stack.enter_async_context(running_agent(settings))
        yield sites


def _inverters(database_url: str) -> dict[str, str]:
    """Each agent's inverter as the config service learnt it from the agent's birth."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT gateway_id, device FROM config.devices WHERE profile = 'sim-der-inverter'"
        ).fetchall()
    return {g: d for g, d in rows}


def _reported(service: ConfigService, g: str) -> tuple[int | None, str | None]:
    r = service.show_config(g).reported
    return (None, None) if r is None else (r.version, r.status)


def _limit(site: DeviceSite) -> Any:
    return site.point(INVERTER, LIMIT)


async def _write_register(site: DeviceSite, ref: str, raw: int) -> None:
    """One FC16 write straight to the simulator, as a second Modbus master would."""
    model, path = ref.split(".", 1)
    block = site.device(INVERTER).block(int(model))
    slot = block.lay.slot(path)
    assert slot is not None, ref
    client = AsyncModbusTcpClient("127.0.0.1", port=site.port, timeout=1, retries=0)
    try:
        async with asyncio.timeout(5):
            assert await client.connect()
            result = await client.write_registers(
                block.addr + slot.offset, [raw], device_id=INVERTER
            )
        assert not result.isError(), result
    finally:
        client.close()


async def _wait(check: Callable[[], Any], what: str) -> None:
    """Wait for ``check`` run in a thread: its pooled reads, on the loop, would stall the
    services' relays and consumers, the agents and the simulators sharing it, and hold
    the loop while the pool is busy."""
    await until(lambda: asyncio.to_thread(check), WAIT_S, what)


async def test_a_rollout_to_100_gateways_aborts_its_failing_canary_rolls_back_and_sees_drift(
    database_url: str, mosquitto_url: str, tmp_path: Path
) -> None:
    key_file = tmp_path / "cloud.pem"
    write_key_file(key_file, demo=True)
    async with (
        cloud(database_url, mosquitto_url, key_file) as service,
        virtual_fleet(mosquitto_url, key_file),
        agents(mosquitto_url, key_file, tmp_path) as sites,
    ):
        await _wait(
            lambda: (
                len(_inverters(database_url)) == len(AGENTS)
                and all(_inv(g) in service.known_devices(g) for g in VIRTUAL)
            ),
            "every gateway's birth",
        )
        inverter = await asyncio.to_thread(_inverters, database_url)

        # Version 1, what a rollback must restore: a 60 % limit on the agents' inverters,
        # a 232 V reference on the virtual ones (none on those failing every setting).
        def base(g: str) -> dict[str, dict[str, Any]]:
            if g in sites:
                return {inverter[g]: {"power_limit_pct": BASE_PCT, "power_limit_enable": 1}}
            return {_inv(g): {} if g in FAILING_VIRTUAL else {"v_ref": 232}, f"MTR-{g}": {}}

        for g in ORDER:
            request = ConfigIn(profile=PROFILE, devices=base(g), reason="base")
            await asyncio.to_thread(service.set_config, g, request, "operator:ana")
        await _wait(lambda: all(_reported(service, g) == (1, "applied") for g in ORDER), "v1")
        assert {g: _limit(s) for g, s in sites.items()} == {g: BASE_PCT for g in AGENTS}

        # The failing agent's inverter refuses the limit from now on (Modbus exception 4).
        sites[FAILING_AGENT].activate_fault(
            {"kind": "write_fail", "unit": INVERTER, "point": LIMIT, "code": 4}
        )
        rollouts = service.rollouts
        created = await asyncio.to_thread(
            rollouts.create,
            "au",
            RolloutIn(
                profile=PROFILE,
                settings={
                    "sim-der-inverter": {"power_limit_pct": ROLLOUT_PCT},
                    "sim-inverter-103": {"v_ref": 236, "power_limit_pct": ROLLOUT_PCT},
                },
                target={"gateways": ORDER},
                canary=CANARY,
                wave_sizes=[len(ORDER) - CANARY],
                failure_threshold=0.2,
                wave_timeout_s=60,
                reason="export limit to 80 %",
            ),
            "operator:ana",
        )
        assert [w.size for w in created.waves] == [CANARY, 90]
        rid = created.id

        def settled() -> bool:
            view = rollouts.get(rid, region="au")
            canary = [g.status for g in view.gateway_steps if g.wave == 0]
            return view.state == "aborted" and "pending" not in canary

        await _wait(settled, "the canary decided and the rollout aborted")
        view = await asyncio.to_thread(rollouts.get, rid, region="au")
        failing = {FAILING_AGENT, *FAILING_VIRTUAL}
        status = {g.gateway_id: g.status for g in view.gateway_steps}
        assert status == {
            **{g: "failed" if g in failing else "applied" for g in ORDER[:CANARY]},
            **{g: "waiting" for g in ORDER[CANARY:]},
        }
        assert view.detail.startswith("wave 0: 3 of 10 gateways failed")
        assert {g: _limit(s) for g, s in sites.items()} == {
            g: BASE_PCT if g == FAILING_AGENT else ROLLOUT_PCT for g in AGENTS
        }  # the failed write restored the inverter's previous limit
        never_reached = await asyncio.to_thread(
            lambda: {g: _reported(service, g) for g in ORDER[CANARY:]}
        )
        assert never_reached == {g: (1, "applied") for g in ORDER[CANARY:]}  # still version 1

        # Rollback: every gateway the canary reached gets version 1's settings back.
        sites[FAILING_AGENT].clear_faults("write_fail", INVERTER)
        rolled = await asyncio.to_thread(
            rollouts.act, rid, "rollback", "canary failed", "operator:ana", region="au"
        )
        assert rolled.state == "rolled_back"
        back = {g.gateway_id: g.rollback for g in rolled.gateway_steps}
        assert all(back[g] is None for g in ORDER[CANARY:])  # not reached: not touched
        restoring = {g: back[g].version for g in ORDER[:CANARY]}  # type: ignore[union-attr]
        assert all(v is not None and v > 2 for v in restoring.values())
        await _wait(
            lambda: all(_reported(service, g) == (v, "applied") for g, v in restoring.items()),
            "every reached gateway reports the rollback applied",
        )
        assert {g: _limit(s) for g, s in sites.items()} == {g: BASE_PCT for g in AGENTS}
        for g in ORDER:
            view_g = await asyncio.to_thread(service.show_config, g)
            devices = {d.device: d.points for d in view_g.devices}
            assert view_g.desired is not None
            assert view_g.desired.devices == base(g)
            for device, settings in base(g).items():
                assert devices[device] == settings, g
        await _wait(
            lambda: all(
                g.rollback is None or g.rollback.status == "applied"
                for g in rollouts.get(rid, region="au").gateway_steps
            ),
            "rollback outcomes recorded",
        )

        # Drift: the limit written into one simulator's register behind its agent's back.
        drifting = AGENTS[0]
        async with _config_states(mosquitto_url, drifting) as states:
            start = time.monotonic()
            await _write_register(sites[drifting], LIMIT, BEHIND_PCT)
            await until(
                lambda: any(s["status"] == "drifted" for s in states),
                CHECK_S + CHECK_SLACK_S,
                "the agent's drifted config_state within one check interval",
            )
            took = time.monotonic() - start
        (state,) = [s for s in states if s["status"] == "drifted"]
        assert state["version"] == restoring[drifting]
        assert state["drift"] == [f"{inverter[drifting]}.power_limit_pct"]
        await _wait(
            lambda: _device_drift(service, drifting, inverter[drifting]),
            "the config service showing the drift",
        )
        assert _limit(sites[drifting]) == BEHIND_PCT  # reported, never written back
        assert took <= CHECK_S + CHECK_SLACK_S


def _device_drift(service: ConfigService, g: str, device: str) -> bool:
    state = next(d for d in service.show_config(g).devices if d.device == device)
    return state.status == "drifted" and state.drift == [f"{device}.power_limit_pct"]


@contextlib.asynccontextmanager
async def _config_states(url: str, gateway_id: str) -> AsyncIterator[list[dict[str, Any]]]:
    """The gateway's ``config_state`` messages published from now on (not the retained
    one the broker hands a new subscriber)."""
    parts = urlsplit(url)
    found: list[dict[str, Any]] = []
    async with aiomqtt.Client(parts.hostname or "127.0.0.1", parts.port or 1883) as client:
        await client.subscribe(f"potr/v1/au/{gateway_id}/config_state", qos=1)

        async def collect() -> None:
            async for message in client.messages:
                if not message.retain:
                    assert isinstance(message.payload, bytes)
                    found.append(orjson.loads(message.payload))

        task = asyncio.create_task(collect())
        try:
            yield found
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
