"""Staged rollouts end to end (issue 18): the config service → real Mosquitto → virtual
gateways (signed documents verified and applied like the agent does) → config_state →
ingest → events → the config service's tracker → the rollout loop.

Named gateways of the canary fail every config with settings (the fleet's failure
injection): the canary passes the threshold and the rollout aborts by itself before any
later wave. The rollback then restores the previous settings on every gateway reached —
shown by each gateway's own ``config_state`` — except one an operator changed meanwhile,
which keeps the operator's version and is named as skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from cloud.adapters.postgres import create_pool
from cloud.bootstrap import run_services
from cloud.config import ConfigIn, ConfigService, ConfigSettings, public_key_path, write_key_file
from cloud.config.rollout_models import RolloutIn
from cloud.ingest import IngestSettings
from cloud.migrate import migrate
from cloud.registry import RegistryService
from contracts.messages import ProfileRef
from potr.cli_rollout import _render
from potr.fleet import run_virtual_fleet
from simulators.fleet import FleetSpec
from tests.waiting import until

pytestmark = [pytest.mark.integration]

IDS = [f"ro-{i:05d}" for i in range(8)]
FAILING = ("ro-00001", "ro-00002")  # half the canary of four
PROFILE = ProfileRef(id="au-rollout-test", region="au", version=1)
WAIT_S = 20.0


def _inv(g: str) -> str:
    return f"INV-{g}"


@contextlib.asynccontextmanager
async def stack(database_url: str, mqtt_url: str, key_file: Path) -> AsyncIterator[ConfigService]:
    """Ingest, registry and the config service with its loops (rollouts included), and
    eight virtual gateways trusting the service's key."""
    await asyncio.to_thread(migrate, database_url)
    ingest = IngestSettings(
        database_url=database_url, mqtt_url=mqtt_url, mqtt_client_id=f"ro-ingest-{os.getpid()}"
    )
    config = ConfigSettings(
        database_url=database_url,
        mqtt_url=mqtt_url,
        signing_key_file=key_file,
        config_provision_new=False,  # the test's own first config is v1
        config_republish_interval_s=0.2,
    )
    spec = FleetSpec.model_validate(
        {
            "count": len(IDS),
            "id_prefix": "ro",
            "cadence_s": 300.0,
            "workers": 1,
            "connect_rate": 100.0,
            "drain_timeout_s": 5.0,
            "trusted_key_files": (public_key_path(key_file),),
            "fail_gateways": FAILING,
            "expect_stored": False,
        }
    )
    pool = await asyncio.to_thread(create_pool, database_url, min_size=1, max_size=8, name="ro")
    try:
        async with run_services(pool, RegistryService(pool), ingest=ingest, config=config) as svc:
            assert svc.publisher_connected
            stop = asyncio.Event()
            fleet = asyncio.create_task(
                run_virtual_fleet(
                    spec, mqtt_url=mqtt_url, database_url=database_url, stop=stop,
                    start_ingest=False,
                )
            )  # fmt: skip
            try:
                yield svc.config
            finally:
                stop.set()
                async with asyncio.timeout(30):
                    await fleet
    finally:
        await asyncio.to_thread(pool.close)


def _reported(service: ConfigService, g: str) -> tuple[int | None, str | None]:
    r = service.show_config(g).reported
    return (None, None) if r is None else (r.version, r.status)


def _points(service: ConfigService, g: str) -> dict[str, Any]:
    view = service.show_config(g)
    return next((d.points for d in view.devices if d.device == _inv(g)), {})


async def _wait(check: Callable[[], Any], what: str) -> None:
    """Wait for ``check`` run in a thread: its pooled reads, on the loop, would stall the
    services' relays and consumers and the fleet sharing it, and hold the loop while the
    pool is busy."""
    await until(lambda: asyncio.to_thread(check), WAIT_S, what)


async def test_a_failing_canary_aborts_and_the_rollback_restores_what_it_reached(
    database_url: str, mosquitto_url: str, tmp_path: Path
) -> None:
    key_file = tmp_path / "cloud.pem"
    write_key_file(key_file, demo=True)
    async with stack(database_url, mosquitto_url, key_file) as service:
        await _wait(
            lambda: all(_inv(g) in service.known_devices(g) for g in IDS), "every gateway's birth"
        )
        # version 1: the settings a rollback must restore (none on the failing gateways,
        # which fail any config with settings)
        for g in IDS:
            inverter = {} if g in FAILING else {"v_ref": 232}
            devices = {_inv(g): inverter, f"MTR-{g}": {}}
            request = ConfigIn(profile=PROFILE, devices=devices, reason="base")
            await asyncio.to_thread(service.set_config, g, request, "op")
        await _wait(lambda: all(_reported(service, g) == (1, "applied") for g in IDS), "v1 applied")

        rollouts = service.rollouts
        created = await asyncio.to_thread(
            rollouts.create,
            "au",
            RolloutIn(
                profile=PROFILE,
                settings={"sim-inverter-103": {"v_ref": 236, "power_limit_pct": 80}},
                target={"gateways": IDS},
                canary=4,
                failure_threshold=0.25,
                wave_timeout_s=60,
                reason="volt reference to 236 V",
            ),
            "operator:ana",
        )
        assert created.state == "running"
        assert [w.size for w in created.waves] == [4, 4]
        rid = created.id

        def settled() -> bool:
            view = rollouts.get(rid, region="au")
            canary = [g.status for g in view.gateway_steps if g.wave == 0]
            return view.state == "aborted" and "pending" not in canary

        await _wait(settled, "the canary decided and the rollout aborted")
        view = await asyncio.to_thread(rollouts.get, rid, region="au")
        status = {g.gateway_id: g.status for g in view.gateway_steps}
        assert status == {
            "ro-00000": "applied", "ro-00001": "failed", "ro-00002": "failed",
            "ro-00003": "applied", **{g: "waiting" for g in IDS[4:]},
        }  # fmt: skip
        assert view.detail.startswith("wave 0: 2 of 4 gateways failed")
        never_reached = await asyncio.to_thread(lambda: {g: _reported(service, g) for g in IDS[4:]})
        assert never_reached == {g: (1, "applied") for g in IDS[4:]}  # still version 1
        assert await asyncio.to_thread(_points, service, "ro-00000") == {
            "v_ref": 236,
            "power_limit_pct": 80,
        }

        # an operator changes one reached gateway after the rollout: theirs is the latest
        operator = await asyncio.to_thread(
            service.set_config,
            "ro-00003",
            ConfigIn(profile=PROFILE, devices={_inv("ro-00003"): {"v_ref": 240}}, reason="site"),
            "operator:bo",
        )
        rolled = await asyncio.to_thread(
            rollouts.act, rid, "rollback", "canary failed", "operator:ana", region="au"
        )
        assert rolled.state == "rolled_back"
        back = {g.gateway_id: g.rollback for g in rolled.gateway_steps}
        assert back["ro-00003"] is not None
        assert back["ro-00003"].status == "skipped"
        assert back["ro-00003"].detail == (
            f"changed since the rollout (version {operator.version} by operator:bo)"
        )
        assert all(back[g] is None for g in IDS[4:])  # never reached: not touched
        restoring = {g: back[g].version for g in IDS[:3]}  # type: ignore[union-attr]

        def restored() -> bool:
            return all(_reported(service, g) == (v, "applied") for g, v in restoring.items())

        await _wait(restored, "every reached gateway reports the rollback applied")
        assert await asyncio.to_thread(_points, service, "ro-00000") == {"v_ref": 232}
        assert await asyncio.to_thread(_points, service, "ro-00001") == {}
        assert await asyncio.to_thread(_reported, service, "ro-00003") == (
            operator.version,
            "applied",
        )
        await _wait(
            lambda: all(
                g.rollback is None or g.rollback.status in ("applied", "skipped")
                for g in rollouts.get(rid, region="au").gateway_steps
            ),
            "rollback outcomes recorded",
        )
        final = await asyncio.to_thread(rollouts.get, rid, region="au")
        shown = Console(record=True, width=200)
        shown.print(_render(final))  # what `potr rollout status` shows
        text = shown.export_text()
        assert f"rollout {rid} (au) rolled_back" in text
        assert "changed since the rollout" in text
        log = [(e.actor, e.action, e.outcome) for e in final.log]
        assert log[::-1] == [
            ("operator:ana", "rollout.create", "running"),
            ("cloud", "rollout.aborted", "aborted"),
            ("operator:ana", "rollout.rollback", "rolled_back"),
        ]
