"""Reliability scenario 4: the agent process is killed with SIGKILL at random points while
it polls and publishes. Its buffer must open cleanly every time (same stream, integrity
check ok), and nothing it buffered may be lost: in the end ingest's watermark covers every
seq the stream ever allocated, with no gap.

Reduced form: 20 kill points. Full form (200): ``POTR_CHAOS_FULL=1``.
"""

from __future__ import annotations

import asyncio
import os
import random
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cloud.adapters.postgres import create_pool
from cloud.bootstrap import deliver_registry_events, run_ingest
from cloud.ingest import IngestSettings
from cloud.migrate import migrate
from cloud.registry import GatewayIn, RegistryService, SiteIn
from edge_agent.buffer import Outbox
from potr.servers.mosquitto import PrivateMosquitto
from simulators.device_site import DeviceSite, region_site
from tests.integration.harness import AgentProcess, site_agent_config, watermark
from tests.waiting import until

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

GATEWAY = "kill9-au-0001"
KILLS = 200 if os.environ.get("POTR_CHAOS_FULL") == "1" else 20


async def test_agent_survives_sigkill_at_random_points_without_losing_buffered_data(
    database_url: str, mosquitto: PrivateMosquitto, tmp_path: Path
) -> None:
    migrate(database_url)
    pool = create_pool(database_url, max_size=2)
    registry = RegistryService(pool)
    site = registry.add_site(SiteIn(name="kill9", region="au", time_zone="Australia/Sydney"))  # type: ignore[arg-type]
    registry.add_gateway(GatewayIn(id=GATEWAY, site_id=site.id))
    await deliver_registry_events(pool)  # ingest learns the gateway
    cloud = IngestSettings(
        database_url=database_url,
        mqtt_url=mosquitto.url,
        mqtt_client_id=f"ingest-{uuid.uuid4().hex[:8]}",
        stored_interval_s=0.2,
    )
    rng = random.Random(int(os.environ.get("POTR_CHAOS_SEED", "4")))
    noon = datetime.now(UTC).replace(hour=2, minute=0, second=0, microsecond=0)
    buffer = tmp_path / "buffer.sqlite"
    log = tmp_path / "agent.log"
    ingest_stop, ready = asyncio.Event(), asyncio.Event()
    async with DeviceSite(
        region_site(site_id=GATEWAY, region="au", start_time=noon, update_period_s=0.2)
    ) as sim:
        ingest = asyncio.create_task(run_ingest(cloud, ingest_stop, ready=ready))
        async with asyncio.timeout(20):
            await ready.wait()
        config = site_agent_config(
            tmp_path / "agent.yaml",
            GATEWAY,
            mosquitto.url,
            sim.port,
            buffer_path=str(buffer),
            poll_interval_s=0.1,
            stored_timeout_s=1.0,
            reconnect_min_s=0.05,
            reconnect_max_s=0.5,
        )
        stream = None
        for point in range(KILLS):
            agent = AgentProcess(config, log)
            # Anywhere from start-up through steady polling and publishing.
            await asyncio.sleep(rng.uniform(0.3, 2.0))  # the kill point itself, not a wait
            agent.kill()
            box = await asyncio.to_thread(Outbox, buffer)
            try:
                assert box.recovered is None, f"kill {point}: buffer had to be recovered"
                assert box.integrity_ok(), f"kill {point}: integrity check failed"
                stream = stream or box.stream_id
                assert box.stream_id == stream, f"kill {point}: a new stream started"
            finally:
                box.close()

        agent = AgentProcess(config, log)  # the last run drains everything
        final = await asyncio.to_thread(Outbox, buffer)
        last_seq = final.last_seq
        final.close()
        await until(
            lambda: watermark(database_url, GATEWAY),
            60,
            f"the watermark to cover seq {last_seq}",
            at_least=last_seq,
        )
        agent.stop()
        ingest_stop.set()
        await asyncio.wait_for(ingest, 20)
    pool.close()
    assert last_seq >= KILLS, "the agent buffered too little to mean anything"
    events = await asyncio.to_thread(_dropped_events, database_url)
    assert events == 0, "data was dropped"


def _dropped_events(database_url: str) -> int:
    import psycopg

    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM ingest.events WHERE gateway_id = %s AND event = 'data_dropped'",
            (GATEWAY,),
        ).fetchone()
    assert row is not None
    return int(row[0])
