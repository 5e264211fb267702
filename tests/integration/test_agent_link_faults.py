"""The agent's link to the cloud under faults, with the real ingest storing what arrives.

- Paced backfill (issue 5): after a broker outage the backlog drains oldest first through
  the token bucket while live batches keep reaching the broker within 2 s.
- Reliability scenario 2, tightened by issue 12: a half-open link (the fault proxy stops
  forwarding, no FIN) or a black hole (it swallows every byte) is detected within 1.5 x
  keepalive — the agent pings at half the keepalive (``edge_agent.mqtt``), so a PINGREQ
  without PINGRESP tells, idle or not; the agent reconnects through a fresh connection
  and nothing polled is lost.
- Stopping on a half-open link is bounded by ``mqtt_goodbye_timeout_s``, not by the
  keepalive that bounds PUBACK waits; the crash-safe buffer keeps what was not stored.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cloud.adapters.postgres import create_pool
from cloud.bootstrap import deliver_registry_events, run_ingest
from cloud.ingest import IngestSettings
from cloud.migrate import migrate
from cloud.registry import GatewayIn, RegistryService, SiteIn
from edge_agent.app import Agent
from edge_agent.buffer import AsyncOutbox
from edge_agent.settings import AgentSettings
from potr.servers.mosquitto import PrivateMosquitto
from simulators.device_site import DeviceSite, region_site
from tests.faultproxy import FaultProxy
from tests.integration.harness import running_agent, stream_progress, watermark
from tests.integration.witness import Delivery, Witness
from tests.waiting import until

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

GATEWAY = "lf-au-0001"
LIVE_LATENCY_S = 2.0
OUTAGE_S = 4.0
#: Scheduling slack on top of a stop's own bounds (two cores under load).
STOP_SLACK_S = 2.0


class Cloud:
    """Registry with the test gateway, and an ingest worker that can be stopped and started."""

    def __init__(self, database_url: str, mqtt_url: str) -> None:
        migrate(database_url)
        self.database_url = database_url
        self.pool = create_pool(database_url, max_size=2)
        self.registry = RegistryService(self.pool)
        site = self.registry.add_site(
            SiteIn(name="lf", region="au", time_zone="Australia/Sydney")  # type: ignore[arg-type]
        )
        self.registry.add_gateway(GatewayIn(id=GATEWAY, site_id=site.id))
        self.settings = IngestSettings(
            database_url=database_url,
            mqtt_url=mqtt_url,
            mqtt_client_id=f"ingest-{uuid.uuid4().hex[:8]}",
            stored_interval_s=0.2,
        )
        self._stop: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    async def start_ingest(self) -> None:
        await deliver_registry_events(self.pool)  # ingest learns the gateway (once)
        self._stop, ready = asyncio.Event(), asyncio.Event()
        self._task = asyncio.create_task(run_ingest(self.settings, self._stop, ready=ready))
        async with asyncio.timeout(20):
            await ready.wait()

    async def stop_ingest(self) -> None:
        if self._stop is not None and self._task is not None:
            self._stop.set()
            await asyncio.wait_for(self._task, 20)
            self._stop = self._task = None

    async def watermark(self) -> int:
        return await watermark(self.database_url, GATEWAY)

    def open_gaps(self) -> int:
        return stream_progress(self.database_url, GATEWAY)[2]


@pytest.fixture
async def cloud(database_url: str, mosquitto: PrivateMosquitto) -> AsyncIterator[Cloud]:
    c = Cloud(database_url, mosquitto.url)
    await c.start_ingest()
    try:
        yield c
    finally:
        await c.stop_ingest()
        c.pool.close()


@pytest.fixture
async def site() -> AsyncIterator[DeviceSite]:
    noon = datetime.now(UTC).replace(hour=2, minute=0, second=0, microsecond=0)
    settings = region_site(site_id=GATEWAY, region="au", start_time=noon, update_period_s=0.2)
    async with DeviceSite(settings) as sim:
        yield sim


def _settings(mqtt_url: str, site: DeviceSite, tmp_path: Path, **kw: Any) -> AgentSettings:
    values: dict[str, Any] = {
        "gateway_id": GATEWAY,
        "region": "au",
        "mqtt_url": mqtt_url,
        "mqtt_keepalive_s": 5,
        "buffer_path": tmp_path / "buffer.sqlite",
        "poll_interval_s": 0.1,
        "stored_timeout_s": 2.0,
        "reconnect_min_s": 0.1,
        "reconnect_max_s": 0.5,
        "endpoints": [{"name": "site", "host": "127.0.0.1", "port": site.port, "unit_ids": [1, 2]}],
        **kw,
    }
    return AgentSettings(**values)


async def _all_stored(cloud: Cloud, agent: Agent, within_s: float) -> int:
    """Wait until ingest's watermark covers every seq the agent had allocated; return it."""
    target = await agent.outbox.last_seq()
    await until(cloud.watermark, within_s, f"the watermark to cover seq {target}", at_least=target)
    assert await asyncio.to_thread(cloud.open_gaps) == 0
    return target


async def test_backlog_drains_paced_while_live_batches_arrive_within_2s(
    cloud: Cloud,
    mosquitto: PrivateMosquitto,
    site: DeviceSite,
    tmp_path: Path,
    fault_proxy: Callable[[str, int], Awaitable[FaultProxy]],
) -> None:
    rate, burst = 8.0, 4
    proxy = await fault_proxy("127.0.0.1", mosquitto.port)
    settings = _settings(proxy.url, site, tmp_path, backfill_rate_msgs_s=rate, backfill_burst=burst)
    with Witness(mosquitto.port, GATEWAY) as w:
        await until(w.connected.is_set, 10, "the witness to subscribe")
        async with running_agent(settings) as agent:
            await until(cloud.watermark, 20, "first batches stored", at_least=5)

            proxy.set("cut")  # the uplink goes down; witness and ingest stay connected
            cut_at = time.time()
            await asyncio.sleep(OUTAGE_S)  # the outage: the agent polls into its buffer
            backlog_top = await agent.outbox.last_seq()
            proxy.set("pass")
            await until(lambda: agent.publisher.connected.is_set(), 10, "the agent to reconnect")
            live_from = await agent.outbox.last_seq()  # created from here on: live

            backlog = set(range(1, backlog_top + 1))
            await until(lambda: backlog <= w.seqs(), 30, "the backlog to reach the broker")
            drained_at = time.time()
            target = await _all_stored(cloud, agent, 30)
            assert target > backlog_top
            assert not [r for r in await agent.outbox.unsent_of(2, 10) if r.seq <= backlog_top]

    first: dict[int, Delivery] = {}  # each batch's first arrival (later ones are resends)
    for d in w.of("telemetry"):
        first.setdefault(d.doc["seq"], d)
    live = [d for seq, d in first.items() if seq > live_from and d.received <= drained_at]
    assert len(live) >= 10, "too few live batches during the drain to judge"
    worst = max(d.received - d.newest_reading for d in live)
    assert worst < LIVE_LATENCY_S, f"a live batch took {worst:.2f}s to reach the broker"

    # The outage's batches drain oldest first, spread out at about ``rate``.
    outage = sorted(seq for seq, d in first.items() if seq <= backlog_top and d.received > cut_at)
    assert len(outage) >= 25
    arrivals = [first[seq].received for seq in outage]
    assert arrivals == sorted(arrivals), "the backlog did not drain oldest first"
    assert arrivals[-1] - arrivals[0] >= 0.7 * (len(outage) - burst) / rate
    assert any(d.received < arrivals[-1] for d in live), "live batches waited for the backlog"
    # Raw samples: each device's every poll of the outage is there, nothing averaged.
    per_device = Counter(r["device"] for seq in outage for r in first[seq].doc["readings"])
    assert len(per_device) == 2
    assert min(per_device.values()) >= 0.8 * OUTAGE_S / settings.poll_interval_s


async def test_half_open_link_is_detected_within_one_and_a_half_keepalives_and_nothing_is_lost(
    cloud: Cloud,
    mosquitto: PrivateMosquitto,
    site: DeviceSite,
    tmp_path: Path,
    fault_proxy: Callable[[str, int], Awaitable[FaultProxy]],
) -> None:
    keepalive = 5
    proxy = await fault_proxy("127.0.0.1", mosquitto.port)
    settings = _settings(proxy.url, site, tmp_path, mqtt_keepalive_s=keepalive)
    async with running_agent(settings) as agent:
        await until(cloud.watermark, 20, "first batches stored", at_least=5)
        assert agent.publisher.connected.is_set()
        sessions, accepted = agent.publisher.sessions, proxy.accepted

        proxy.set("stall")  # half-open: no FIN, no RST, nothing forwarded
        stalled_at = time.monotonic()
        await until(
            lambda: not agent.publisher.connected.is_set(),
            1.5 * keepalive + 2,
            "the agent to notice the dead link",
        )
        detected_s = time.monotonic() - stalled_at
        stalled_seq = await agent.outbox.last_seq()

        proxy.set("pass")
        await until(
            lambda: agent.publisher.sessions > sessions, 15, "the agent to reconnect", at_least=1
        )
        await _all_stored(cloud, agent, 30)

    assert detected_s <= 1.5 * keepalive, f"half-open link detected after {detected_s:.1f}s"
    assert proxy.accepted > accepted, "the agent did not open a fresh connection"
    assert stalled_seq > 0


async def test_a_black_hole_on_an_idle_link_is_detected_by_pings_at_half_the_keepalive(
    mosquitto: PrivateMosquitto,
    tmp_path: Path,
    fault_proxy: Callable[[str, int], Awaitable[FaultProxy]],
) -> None:
    """No publish in flight to time out (no devices): only PINGREQ without PINGRESP tells.
    The proxy swallows every byte both ways and keeps the TCP connection up."""
    keepalive = 5
    proxy = await fault_proxy("127.0.0.1", mosquitto.port)
    settings = AgentSettings(
        gateway_id=GATEWAY,
        region="au",
        mqtt_url=proxy.url,
        mqtt_keepalive_s=keepalive,
        buffer_path=tmp_path / "buffer.sqlite",
        reconnect_min_s=0.1,
        reconnect_max_s=0.5,
    )
    async with running_agent(settings) as agent:
        await until(agent.publisher.connected.is_set, 10, "the agent to connect")
        proxy.set("drop")
        dropped_at = time.monotonic()
        await until(
            lambda: not agent.publisher.connected.is_set(),
            1.5 * keepalive + 2,
            "the agent to notice the dead link",
        )
        detected_s = time.monotonic() - dropped_at
        # The retry made meanwhile went into the black hole too: cut it rather than wait
        # out its CONNACK timeout.
        proxy.set("cut")
        proxy.set("pass")
        await until(lambda: agent.publisher.sessions, 15, "the agent to reconnect", at_least=2)
    # PINGREQ after half a keepalive of silence, no PINGRESP within another half: one
    # keepalive, plus up to a second each for paho's once-a-second timer to see it.
    assert detected_s <= 1.5 * keepalive, f"black-holed idle link detected after {detected_s:.1f}s"


async def test_an_agent_stopped_on_a_half_open_link_stops_within_its_goodbye_and_loses_nothing(
    cloud: Cloud,
    mosquitto: PrivateMosquitto,
    site: DeviceSite,
    tmp_path: Path,
    fault_proxy: Callable[[str, int], Awaitable[FaultProxy]],
) -> None:
    """With a 30 s keepalive (paho's and the PUBACK bound) the stop used to wait that long
    for the PUBACK of the retained offline state that the dead link never brings: past the
    service's stop timeout. Now the session gets ``mqtt_goodbye_timeout_s`` after the stop
    and the DISCONNECT as long again; what ingest had not stored stays buffered and is
    stored after the restart."""
    goodbye = 1.0
    proxy = await fault_proxy("127.0.0.1", mosquitto.port)
    settings = _settings(
        proxy.url, site, tmp_path, mqtt_keepalive_s=30, mqtt_goodbye_timeout_s=goodbye
    )
    stop = asyncio.Event()
    async with AsyncOutbox(settings.buffer_path) as outbox:
        task = asyncio.create_task(Agent(settings, outbox).run(stop))
        try:
            await until(cloud.watermark, 20, "first batches stored", at_least=5)
            proxy.set("stall")  # half-open: no FIN, no RST, nothing forwarded
            stalled_seq = await outbox.last_seq()
            await until(
                outbox.last_seq, 10, "batches behind the half-open link", at_least=stalled_seq + 5
            )
        finally:
            stop.set()
            stopping = time.monotonic()
            stopped, _ = await asyncio.wait({task}, timeout=20)
            stop_s = time.monotonic() - stopping
            if not stopped:
                task.cancel()
                await asyncio.wait({task}, timeout=10)
        assert stopped, "the agent did not stop within 20 s on a half-open link"
        task.result()  # stopped cleanly, not by an error
        last_seq = await outbox.last_seq()
    stored = await cloud.watermark()
    assert stop_s <= 2 * goodbye + STOP_SLACK_S, f"the stop took {stop_s:.1f}s"

    async with AsyncOutbox(settings.buffer_path) as reopened:
        await reopened.requeue_all()
        kept = {row.seq for row in await reopened.unsent(100_000)}
    assert stored <= stalled_seq < last_seq  # nothing made after the stall got through
    assert set(range(stored + 1, last_seq + 1)) <= kept, "unstored batches left the buffer"

    proxy.set("pass")
    async with running_agent(settings) as agent:
        assert await _all_stored(cloud, agent, 30) >= last_seq
