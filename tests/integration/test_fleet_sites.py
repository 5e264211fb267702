"""``potr sim fleet --mode sites``: simulated sites over Modbus TCP, each polled by a real
``potr agent`` process, through a private Mosquitto and ingest into PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from cloud.migrate import migrate
from contracts.topics import Region
from potr.fleet import SiteAgent, readings_per_gateway, run_site_fleet
from potr.servers.mosquitto import PrivateMosquitto

pytestmark = pytest.mark.integration


async def test_three_sites_with_agent_processes_store_readings(
    mosquitto: PrivateMosquitto, database_url: str, tmp_path: Path
) -> None:
    migrate(database_url)  # so the test can count before the fleet's own (idempotent) run
    stop = asyncio.Event()
    started: list[SiteAgent] = []
    run_task = asyncio.create_task(
        run_site_fleet(
            3,
            stop=stop,
            mqtt_url=mosquitto.url,
            database_url=database_url,
            regions={Region.AU: 1, Region.US: 1, Region.ES: 1},
            id_prefix="sf",
            poll_interval_s=0.5,
            duration_s=45,  # upper bound; the test stops it as soon as data is in
            workdir=tmp_path,
            on_started=started.extend,
        )
    )
    ids = ["sf-00000", "sf-00001", "sf-00002"]
    deadline = time.monotonic() + 40
    counts: dict[str, int] = {}
    while time.monotonic() < deadline and not run_task.done():
        counts = await asyncio.to_thread(readings_per_gateway, database_url, ids)
        if all(n >= 2 * 10 for n in counts.values()):  # >= 2 polls of both devices
            break
        await asyncio.wait({run_task}, timeout=0.5)  # bounded wait for the next check
    stop.set()
    run = await asyncio.wait_for(run_task, 30)
    assert [a.gateway_id for a in started] == ids
    assert all(n >= 20 for n in counts.values()), counts
    assert all(a.returncode == 0 for a in run.agents), [a.log_path.read_text() for a in run.agents]
    assert run.database is not None
    assert run.database["dead_letters"] == 0
    assert run.database["streams"] == 3
