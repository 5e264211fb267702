"""Simulator → agent → Mosquitto → ingest → PostgreSQL → REST API, through an agent
crash (SIGKILL of its process) and a broker SIGKILL while ingest is down: stored readings
equal the simulator's registers, with no duplicate and no missing row (the ``stored``
watermark at work).

A witness MQTT client with a persistent session records every delivery the broker made;
the database must end up holding exactly the witnessed readings, and the witness must
have seen resends (the broker died holding messages no one had stored).
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import orjson
import paho.mqtt.client as paho
import psycopg
import pytest
import uvicorn
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from cloud.adapters.postgres import create_pool
from cloud.bootstrap import create_api, run_ingest
from cloud.ingest import IngestSettings
from cloud.migrate import migrate
from cloud.registry import GatewayIn, RegistryService, SiteIn
from cloud.telemetry.energy import base_buckets
from cloud.telemetry.energy_models import CounterSample
from contracts.topics import topic
from potr.servers.mosquitto import PrivateMosquitto
from potr.servers.ports import free_port
from simulators.device_site import DeviceSite, region_site
from tests.api_tokens import api_settings, bearer
from tests.integration import sunspec_oracle as oracle
from tests.integration.harness import AgentProcess, site_agent_config, watermark
from tests.integration.registry_events import deliver_registry_events, relay_ingest_events
from tests.waiting import until

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

GATEWAY = "e2e-au-0001"
POLL_S = 0.5


class Witness:
    """Records every telemetry batch and event the broker delivers, by seq."""

    def __init__(self, port: int) -> None:
        self.batches: dict[int, dict[str, Any]] = {}
        self.seqs: set[int] = set()
        self.deliveries: Counter[int] = Counter()
        self.subscribed = threading.Event()
        self._lock = threading.Lock()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"witness-{uuid.uuid4()}", protocol=paho.MQTTv5
        )
        self.client.reconnect_delay_set(0.05, 0.5)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        self.client.connect("127.0.0.1", port, keepalive=5, clean_start=False, properties=props)
        self.client.loop_start()

    def _on_connect(self, client: paho.Client, *_: Any) -> None:
        client.subscribe(
            [(topic("au", GATEWAY, "telemetry"), 1), (topic("au", GATEWAY, "event"), 1)]
        )
        client.on_subscribe = lambda *a: self.subscribed.set()

    def _on_message(self, _c: paho.Client, _u: Any, msg: paho.MQTTMessage) -> None:
        doc = orjson.loads(msg.payload)
        with self._lock:
            self.seqs.add(doc["seq"])
            self.deliveries[doc["seq"]] += 1
            if msg.topic.endswith("/telemetry"):
                self.batches[doc["seq"]] = doc

    def max_seq(self) -> int:
        with self._lock:
            return max(self.seqs, default=0)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
async def api_client(database_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    migrate(database_url)
    pool = create_pool(database_url, max_size=4)
    settings = api_settings(database_url, api_port=free_port())
    registry = RegistryService(pool)
    app = create_api(settings, pool)
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=settings.api_port, log_level="warning", lifespan="off"
        )
    )
    task = asyncio.create_task(server.serve())
    await until(lambda: server.started, 10, "the API to listen")
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{settings.api_port}/api/v1/au",
        headers=bearer("operator", region="au", ttl_s=600),
    ) as client:
        yield client, registry
    server.should_exit = True
    await task
    pool.close()


def _dirty(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM telemetry.dirty").fetchone()
    return int(row[0]) if row else -1


def _assert_rollups_and_energy_follow_the_raw_rows(database_url: str) -> None:
    """What the ingest workers' maintenance made, against the stored raw rows: each
    5-minute bucket's count, min, max and last, and the pv_wh energy buckets against
    the energy function over the stored samples (both computed here)."""
    with psycopg.connect(database_url) as conn:
        raw = conn.execute(
            "SELECT device_id, metric_id, ts, value FROM telemetry.readings"
            " WHERE quality < 2 ORDER BY ts"
        ).fetchall()
        rollups = conn.execute(
            "SELECT device_id, metric_id, bucket, min, max, last, count FROM telemetry.rollup_5m"
        ).fetchall()
        energy = conn.execute(
            "SELECT device_id, bucket, energy_mwh, samples FROM telemetry.energy_15m"
            " WHERE metric_id = 10"
        ).fetchall()
    groups: dict[tuple[int, int, datetime], list[tuple[datetime, float]]] = {}
    for device, metric, ts, value in raw:
        bucket = datetime.fromtimestamp(ts.timestamp() // 300 * 300, UTC)
        groups.setdefault((device, metric, bucket), []).append((ts, value))
    expected = {
        key: (min(v for _, v in rows), max(v for _, v in rows), rows[-1][1], len(rows))
        for key, rows in groups.items()
    }
    assert {(d, m, b): (lo, hi, last, n) for d, m, b, lo, hi, last, n in rollups} == expected
    pv = {}
    for device, metric, ts, value in raw:
        if metric == 10:
            pv.setdefault(device, []).append(CounterSample(ts=ts, value_wh=value))
    assert pv, "no pv_wh stored"
    want = {
        (device, b.start): (b.energy_mwh, b.samples)
        for device, samples in pv.items()
        for b in base_buckets(samples)
    }
    assert {(d, b): (e, n) for d, b, e, n in energy} == want


def _open_gaps_upto(database_url: str, seq: int) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM ingest.gaps g JOIN ingest.streams s USING (stream_id)"
            " WHERE s.gateway_id = %s AND g.closed_at IS NULL AND g.from_seq <= %s",
            (GATEWAY, seq),
        ).fetchone()
    assert row is not None
    return int(row[0])


async def _series(client: httpx.AsyncClient, device_id: int, metric: str) -> dict[datetime, float]:
    end = datetime.now(UTC) + timedelta(minutes=1)
    resp = await client.get(
        f"/devices/{device_id}/readings",
        params={
            "metric": metric,
            "from": (end - timedelta(hours=1)).isoformat(),
            "to": end.isoformat(),
            "limit": 10000,
        },
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert not body["truncated"]
    stamps = [p["ts"] for p in body["points"]]
    assert len(stamps) == len(set(stamps)), f"duplicate timestamps in {metric}"
    return {datetime.fromisoformat(p["ts"]): p["value"] for p in body["points"]}


def _matches_served_image(
    ts: datetime,
    values: dict[str, float],
    history: list[Any],
    unit: int,
    decode: Callable[[list[int]], dict[str, float]],
) -> bool:
    """The reading equals the image served at ``ts`` or the next one (a poll's timestamp is
    taken when it starts, the registers a moment later)."""
    starts = [h[0] for h in history]
    idx = max((i for i, s in enumerate(starts) if s <= ts), default=0)
    for cand in history[idx : idx + 2]:
        expected = decode(cand[1][unit][1])
        if all(values[k] == pytest.approx(expected[k], rel=1e-9, abs=1e-9) for k in expected):
            return True
    return False


async def _gateways_to_ingest(database_url: str) -> None:
    """The registry's gateway events to ingest (the relay `potr ingest` runs)."""
    pool = create_pool(database_url, min_size=1, max_size=2, name="e2e-gateways")
    try:
        await deliver_registry_events(pool)
    finally:
        pool.close()


async def test_readings_reach_the_api_exactly_once_through_agent_restart_and_broker_kill(
    api_client: tuple[httpx.AsyncClient, RegistryService],
    database_url: str,
    mosquitto: PrivateMosquitto,
    tmp_path: Path,
) -> None:
    client, registry = api_client
    site = registry.add_site(SiteIn(name="E2E", region="au", time_zone="Australia/Sydney"))  # type: ignore[arg-type]
    registry.add_gateway(GatewayIn(id=GATEWAY, site_id=site.id))
    await _gateways_to_ingest(database_url)
    witness = Witness(mosquitto.port)
    await until(witness.subscribed.is_set, 10, "the witness to subscribe")

    noon = datetime.now(UTC).replace(hour=2, minute=0, second=0, microsecond=0)  # ~noon AEDT
    sim_settings = region_site(
        site_id=GATEWAY, region="au", update_period_s=0.3, speed=20, start_time=noon
    )
    cloud = IngestSettings(
        database_url=database_url,
        mqtt_url=mosquitto.url,
        mqtt_client_id=f"ingest-{uuid.uuid4().hex[:8]}",
        stored_interval_s=0.2,
        telemetry_maintenance_interval_s=0.5,  # the workers keep rollups and energy
        telemetry_open_bucket_wait_s=0,  # ... of the open bucket too, for the check below
    )
    ingest_stop, ingest_ready = asyncio.Event(), asyncio.Event()
    async with DeviceSite(sim_settings) as sim:
        ingest = asyncio.create_task(run_ingest(cloud, ingest_stop, ready=ingest_ready))
        async with asyncio.timeout(20):
            await ingest_ready.wait()
        config = site_agent_config(
            tmp_path / "agent.yaml",
            GATEWAY,
            mosquitto.url,
            sim.port,
            mqtt_keepalive_s=5,
            poll_interval_s=POLL_S,
        )
        log = tmp_path / "agent.log"
        agent = AgentProcess(config, log)
        await until(
            lambda: watermark(database_url, GATEWAY), 30, "first batches stored", at_least=5
        )

        agent.kill()  # a crash mid-run; the next process reopens the same buffer and stream
        agent = AgentProcess(config, log)
        restart_seq = witness.max_seq()
        await until(lambda: witness.max_seq() >= restart_seq + 4, 30, "batches after restart")

        # The broker dies holding messages no one has stored: ingest is down meanwhile.
        ingest_stop.set()
        await asyncio.wait_for(ingest, 20)
        queued_from = witness.max_seq()
        await until(lambda: witness.max_seq() >= queued_from + 3, 30, "messages queued for ingest")
        mosquitto.kill()
        await asyncio.sleep(3)  # the outage itself (the agent keeps polling into its buffer)
        mosquitto.start()
        ingest_stop, ingest_ready = asyncio.Event(), asyncio.Event()
        ingest = asyncio.create_task(run_ingest(cloud, ingest_stop, ready=ingest_ready))
        async with asyncio.timeout(20):
            await ingest_ready.wait()
        after_restart = witness.max_seq()
        await until(
            lambda: witness.max_seq() >= after_restart + 6, 60, "batches after broker restart"
        )

        target = witness.max_seq()
        await until(
            lambda: watermark(database_url, GATEWAY),
            60,
            f"the stored watermark to cover seq {target}",
            at_least=target,
        )
        agent.stop()
        # The workers' maintenance catches up with everything stored.
        await until(lambda: _dirty(database_url) == 0, 30, "the store's maintenance")
        ingest_stop.set()
        await asyncio.wait_for(ingest, 20)
        history = sim.history()
    witness.close()

    assert any(n >= 2 for n in witness.deliveries.values()), "no message was ever resent"
    _assert_rollups_and_energy_follow_the_raw_rows(database_url)
    # Batches after ``target`` may still be uncovered: the agent stopped before resending.
    assert _open_gaps_upto(database_url, target) == 0
    assert set(range(1, target + 1)) <= witness.seqs, "the witness missed a batch"

    # The registry learns of the devices from ingest's events (the relay `potr ingest` runs).
    relay_pool = create_pool(database_url, min_size=1, max_size=2, name="e2e-relay")
    try:
        await relay_ingest_events(relay_pool, registry)
    finally:
        relay_pool.close()
    devices = (await client.get("/devices", params={"gateway_id": GATEWAY})).json()
    by_serial = {d["local_id"]: d["id"] for d in devices}
    checks = {
        f"INV-{GATEWAY}": (1, oracle.inverter_values, ("pv_w", "pv_l1_v", "pv_hz", "pv_wh")),
        f"MTR-{GATEWAY}": (2, oracle.meter_values, ("grid_w", "grid_hz", "export_wh", "import_wh")),
    }
    for local_id, (unit, decode, metrics) in checks.items():
        witnessed = {
            datetime.fromisoformat(r["ts"]): r["values"]
            for seq, batch in witness.batches.items()
            if seq <= target
            for r in batch["readings"]
            if r["device"] == local_id
        }
        assert len(witnessed) >= 15, f"too few readings witnessed for {local_id}"
        cutoff = max(witnessed)
        stored = {m: await _series(client, by_serial[local_id], m) for m in metrics}
        for metric, series in stored.items():
            upto = {ts: v for ts, v in series.items() if ts <= cutoff}
            assert set(upto) == set(witnessed), f"{local_id}.{metric}: missing or extra rows"
            for ts, value in upto.items():
                assert value == witnessed[ts][metric]
        # No reading lost inside the agent: from well after its restart, through the broker
        # outage, one reading every poll period.
        window_from = min(
            datetime.fromisoformat(r["ts"]) for r in witness.batches[restart_seq + 4]["readings"]
        )
        steady = sorted(ts for ts in witnessed if ts >= window_from)
        assert len(steady) >= 10
        worst = max((b - a).total_seconds() for a, b in pairwise(steady))
        assert worst < 1.5 * POLL_S, f"{local_id}: a poll period without a reading ({worst}s)"
        for ts in witnessed:
            values = {m: stored[m][ts] for m in metrics}
            assert _matches_served_image(ts, values, history, unit, decode), (
                f"{local_id} at {ts}: {values} is not what the simulator served"
            )
