"""A 24 h backlog drains while live data keeps flowing: 10 devices polled every 5 s for a
day (17,280 buffered telemetry batches) are drained by a real ``potr agent`` process to a
private Mosquitto and ingest into PostgreSQL, while the agent keeps polling live devices.

    .venv/bin/python -m bench.edge_backlog [--hours 24] [--devices 10] [--poll 5]

Figures: drain time (agent start → ``stored`` watermark covers the whole backlog), live
latency (MQTT receipt - reading time of batches polled during the drain: p50/p99/max),
beside the raw baseline of the same run: the same backlog payloads published by a bare
paho QoS 1 loop (100 in flight) to the same broker, no pacing, no ingest.
Target (issue 5): drain ≤ 10 min with live latency < 2 s.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import paho.mqtt.client as paho
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from bench.common import bench_database, report
from cloud.adapters.postgres import create_pool
from cloud.bootstrap import deliver_registry_events, run_ingest
from cloud.ingest import IngestSettings
from cloud.migrate import migrate
from cloud.registry import GatewayIn, RegistryService, SiteIn
from contracts.messages import Reading, TelemetryBatch
from contracts.timeutil import to_wire
from contracts.topics import topic
from edge_agent.buffer import Outbox
from potr.servers.mosquitto import PrivateMosquitto
from simulators.device_site import DeviceSite, region_site
from tests.integration.harness import AgentProcess, site_agent_config, stream_progress

GATEWAY = "gw-bench-backlog"


def fill_backlog(path: Path, hours: float, devices: int, poll_s: float) -> bytes:
    """Buffer ``hours`` of past polls (one batch per poll, one reading per device)."""
    box = Outbox(path)
    now = datetime.now(UTC).replace(microsecond=0)
    steps = int(hours * 3600 / poll_s)
    for i in range(steps):
        ts = now - timedelta(seconds=(steps - i) * poll_s)
        readings = [
            Reading(
                device=f"BACKLOG-{d}",
                ts=ts,
                values={"pv_w": 1000.0 + d, "pv_wh": 1e6 + i, "pv_hz": 50.0},
            )
            for d in range(devices)
        ]

        def make(stream_id: uuid.UUID, seq: int, r: list[Reading] = readings) -> bytes:
            return TelemetryBatch(stream_id=stream_id, seq=seq, readings=r).to_json()

        box.append("telemetry", make, span=(to_wire(ts), to_wire(ts)))
    sample = box.unsent(1)[0].payload
    box.close()
    return sample


def raw_publish_rate(port: int, payloads: list[bytes]) -> float:
    """The bare paho QoS 1 baseline: the same number of messages, 100 in flight."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"raw-{uuid.uuid4().hex[:6]}")
    client.max_inflight_messages_set(100)
    client.connect("127.0.0.1", port)
    client.loop_start()
    done = threading.Semaphore(100)
    client.on_publish = lambda *a: done.release()
    t0 = time.perf_counter()
    for payload in payloads:
        done.acquire()
        client.publish("bench/raw", payload, qos=1)
    for _ in range(100):
        done.acquire()
    rate = len(payloads) / (time.perf_counter() - t0)
    client.loop_stop()
    client.disconnect()
    return rate


class LiveWitness:
    """Latency of live batches: receipt time - newest reading time."""

    def __init__(self, port: int, since: datetime) -> None:
        self.since = since
        self.latencies: list[float] = []
        self.seen: set[int] = set()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id="live-witness")
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(topic("au", GATEWAY, "telemetry"), qos=1)
        self.client.loop_start()

    def _on_message(self, _c: object, _u: object, msg: paho.MQTTMessage) -> None:
        doc = orjson.loads(msg.payload)
        if doc["seq"] in self.seen:  # a resend: latency counts the first delivery
            return
        self.seen.add(doc["seq"])
        newest = max(datetime.fromisoformat(r["ts"]) for r in doc["readings"])
        if newest >= self.since and not any(
            r["device"].startswith("BACKLOG") for r in doc["readings"]
        ):
            self.latencies.append((datetime.now(UTC) - newest).total_seconds())

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


async def drain(args: argparse.Namespace, workdir: Path, url: str) -> None:
    migrate(url)
    pool = create_pool(url, max_size=3)
    registry = RegistryService(pool)
    site = registry.add_site(SiteIn(name="backlog", region="au", time_zone="Australia/Sydney"))  # type: ignore[arg-type]
    registry.add_gateway(GatewayIn(id=GATEWAY, site_id=site.id))
    await deliver_registry_events(pool)  # ingest knows the gateway before it starts
    buffer = workdir / "buffer.sqlite"
    steps = int(args.hours * 3600 / args.poll)
    print(
        f"buffering {steps:,} batches ({args.hours} h of {args.devices} devices at {args.poll} s)"
    )
    sample = fill_backlog(buffer, args.hours, args.devices, args.poll)
    backlog_last = steps
    with PrivateMosquitto() as broker:
        baseline = raw_publish_rate(broker.port, [sample] * steps)
        noon = datetime.now(UTC).replace(hour=2, minute=0, second=0, microsecond=0)
        sims = [
            DeviceSite(region_site(site_id=f"live-{i}", region="au", start_time=noon))
            for i in range(max(args.devices // 2, 1))
        ]
        for sim in sims:
            await sim.__aenter__()
        cloud = IngestSettings(database_url=url, mqtt_url=broker.url, mqtt_client_id="bench-ingest")
        stop, ready = asyncio.Event(), asyncio.Event()
        ingest = asyncio.create_task(run_ingest(cloud, stop, ready=ready))
        await asyncio.wait_for(ready.wait(), 30)
        config = site_agent_config(
            workdir / "agent.yaml",
            GATEWAY,
            broker.url,
            sims[0].port,
            buffer_path=str(buffer),
            poll_interval_s=args.poll,
            stored_timeout_s=30.0,
        )
        raw = yaml.safe_load(config.read_text())
        raw["endpoints"] = [
            {
                "name": f"site{i}",
                "host": "127.0.0.1",
                "port": s.port,
                "unit_ids": [1, 2],
                "timeout_s": 2.0,
            }
            for i, s in enumerate(sims)
        ]
        config.write_text(yaml.safe_dump(raw))
        start = datetime.now(UTC)
        witness = LiveWitness(broker.port, start)
        t0 = time.monotonic()
        agent = AgentProcess(config, workdir / "agent.log")
        try:
            while stream_progress(url, GATEWAY)[0] < backlog_last:
                if time.monotonic() - t0 > args.limit_s:
                    print(f"gave up after {args.limit_s} s", file=sys.stderr)
                    break
                await asyncio.sleep(1)
            drained_s = time.monotonic() - t0
        finally:
            agent.stop()
            witness.close()
            stop.set()
            await ingest
            for sim in sims:
                await sim.__aexit__(None, None, None)
    lat = sorted(witness.latencies)
    print(
        f"backlog of {steps:,} batches drained in {drained_s:,.1f} s "
        f"(target <= 600 s) while polling {args.devices} live devices"
    )
    report("baseline: bare paho QoS 1 publish, no pacing", baseline, baseline, "msg/s")
    report("agent drain incl. ingest + stored watermark", steps / drained_s, baseline, "msg/s")
    if lat:
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        print(
            f"live latency over {len(lat)} batches: p50 {statistics.median(lat):.3f} s, "
            f"p99 {p99:.3f} s, max {lat[-1]:.3f} s (target < 2 s)"
        )
    pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--devices", type=int, default=10)
    parser.add_argument("--poll", type=float, default=5.0)
    parser.add_argument("--limit-s", type=float, default=1200.0)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="potr-backlog-", dir="/tmp") as tmp,
        bench_database() as url,
    ):
        asyncio.run(drain(args, Path(tmp), url))


if __name__ == "__main__":
    main()
