"""Virtual-gateway fleet vs a raw paho publisher, against the same local Mosquitto.

The fleet: ``--gateways`` virtual gateways (one MQTT connection each, birth, retained
state, telemetry batches from the site physics, QoS 1) at ``--cadence`` simulated
seconds compressed ``--speed`` times, over ``--workers`` processes, for ``--duration`` real
seconds; its sustained rate is PUBACKed batches per second after the connect ramp and
the first batch interval. The baseline: one paho client publishing the same payload
size at QoS 1 as fast as it can with a bounded in-flight window, in one process.
No ingest runs, so there is no ``stored``: this measures publish/PUBACK rates.

    .venv/bin/python -m bench.sim_fleet                    # 10,000 gateways, 300 s/60x, 60 s
    .venv/bin/python -m bench.sim_fleet --gateways 500 --duration 15   # smaller

``POTR_BENCH_MQTT_URL`` uses another broker instead of a private Mosquitto.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion

from bench.common import report
from potr.fleet import start_fleet_broker
from simulators.fleet import FleetSpec, MqttTarget, run_fleet


def raw_paho_rate(host: str, port: int, payload: bytes, seconds: float, window: int) -> float:
    """PUBACKed QoS 1 messages/s of one paho client with ``window`` in flight."""
    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id="bench-raw", protocol=MQTTProtocolVersion.MQTTv5
    )
    client.max_inflight_messages_set(window)
    slots = threading.Semaphore(window)
    acked = 0

    def on_publish(*_: object) -> None:
        nonlocal acked
        acked += 1
        slots.release()

    client.on_publish = on_publish
    client.connect(host, port)
    client.loop_start()
    try:
        t0 = time.perf_counter()
        end = t0 + seconds
        while time.perf_counter() < end:
            if not slots.acquire(timeout=1):
                continue
            rc = client.publish("potr/v1/au/bench-raw/telemetry", payload, qos=1).rc
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                slots.release()
        n, elapsed = acked, time.perf_counter() - t0
    finally:
        client.disconnect()
        client.loop_stop()
    return n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gateways", type=int, default=10_000)
    parser.add_argument("--cadence", type=float, default=300.0, help="simulated s per batch")
    parser.add_argument("--speed", type=float, default=60.0)
    parser.add_argument("--duration", type=float, default=60.0, help="real s of publishing")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--samples-per-batch", type=int, default=1)
    parser.add_argument("--connect-rate", type=float, default=1000.0)
    parser.add_argument("--raw-seconds", type=float, default=10.0)
    parser.add_argument("--no-persistence", action="store_true", help="broker without persistence")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    given = os.environ.get("POTR_BENCH_MQTT_URL")
    broker = None if given else start_fleet_broker(persistence=not args.no_persistence)
    url = given or (broker.url if broker else "")
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 1883
    try:
        spec = FleetSpec(
            count=args.gateways,
            id_prefix="bench",
            cadence_s=args.cadence,
            speed=args.speed,
            duration_s=args.duration,
            samples_per_batch=args.samples_per_batch,
            workers=args.workers,
            connect_rate=args.connect_rate,
            expect_stored=False,
            drain_timeout_s=15.0,
            mqtt=MqttTarget(host=host, port=port),
        )
        print(
            f"{spec.count:,} virtual gateways, {spec.cadence_s:g} s cadence at {spec.speed:g}x"
            f" = {spec.nominal_rate:,.0f} msg/s nominal, {spec.duration_s:g} s,"
            f" {spec.workers} workers, broker {url}"
        )
        result = run_fleet(spec)
        summary = result.summary()
        rates = summary["rates_per_s"]
        size = _payload_size(spec)
        raw = raw_paho_rate(host, port, b"x" * size, args.raw_seconds, window=100)
        print(
            f"payload ≈ {size} bytes; connect ramp {summary['connect_s']:.1f} s;"
            f" sustained window {rates['window_s']:.1f} s"
        )
        report("baseline: raw paho publisher, QoS 1, window 100", raw, raw, "msg/s")
        report(f"virtual fleet: {spec.count:,} gateways, PUBACKed", rates["acked"], raw, "msg/s")
        report("virtual fleet: nominal (target)", spec.nominal_rate, raw, "msg/s")
        print(
            f"fleet workers: {rates['worker_cpu_pct']:.0f} % of a core in total,"
            f" {rates['cpu_us_per_acked']:.0f} µs CPU per acknowledged batch"
        )
        lat = summary["latency_ms"]["publish_to_puback"]
        print(
            f"publish→PUBACK ms p50 {lat['p50']} p90 {lat['p90']} p99 {lat['p99']}"
            f" max {lat['max']};"
            f" sent {summary['sent']:,} acked {summary['acked']:,} refused {summary['refused']}"
            f" connect failures {summary['connect_failures']} disconnects {summary['disconnects']}"
        )
        if args.json:
            summary["raw_paho_rate_per_s"] = raw
            args.json.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    finally:
        if broker is not None:
            broker.cleanup()


def _payload_size(spec: FleetSpec) -> int:
    import uuid
    from datetime import UTC, datetime

    from simulators.fleet.telemetry import SitePhysics, device_ids, readings, telemetry_batch

    physics = SitePhysics(spec.regions and next(iter(spec.regions)), 5000.0, 1, datetime.now(UTC))
    rows = readings(physics.sample(datetime.now(UTC)), device_ids("bench-00000"))
    return len(telemetry_batch(uuid.uuid4(), 1, rows * spec.samples_per_batch))


if __name__ == "__main__":
    main()
