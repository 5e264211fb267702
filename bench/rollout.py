"""A staged rollout to a virtual fleet (issue 18), beside the raw publish of the same
signed documents in the same run.

    .venv/bin/python -m bench.rollout [--gateways 10000] [--canary 100] [--factor 2]
                                      [--json FILE]

One private Mosquitto (the fleet broker: persistence on, file limit raised), a fresh
database, and in this process the cloud side as ``run_services`` runs it: ingest (one
worker), the event bus, the config service with its loops (rollouts advanced every
``--interval`` s) and its tracker. The virtual gateways run in ``--workers`` fleet
processes (each gateway its own MQTT connection; they verify every signed config, apply
it and answer ``config_state``), with a long telemetry cadence so the cloud's work is
the rollout's.

Figures:
- rollout: ``RolloutService.create`` (canary ``--canary``, each later wave ``--factor``
  times the one before) → 99 % and 100 % of the gateways' reports ``applied`` in the
  config service's table (what the tracker recorded from their ``config_state``), and
  the rollout ``completed``;
- service CPU: this process's user + system CPU over that window (config service,
  tracker, ingest, event bus: everything of the cloud side; the fleet runs elsewhere),
  and the broker's;
- baseline, same run, after the rollout: the very documents the rollout signed (read
  from ``config.desired``) published again one after another, QoS 1 retained, each
  awaiting its PUBACK, through the config service's own publisher class
  (``MqttPublisher``) on a topic no gateway reads; and the same documents signed again
  (Ed25519, no database) to show what signing alone costs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import psycopg

from bench.common import bench_database
from cloud.adapters.postgres import create_pool
from cloud.bootstrap import (
    cloud_events,
    config_loops,
    create_publisher,
    create_tracker,
    run_ingest,
    serve_config_service,
)
from cloud.config import ConfigSettings, public_key_path, write_key_file
from cloud.config.rollout_models import RolloutIn
from cloud.config.service import ConfigService
from cloud.ingest import IngestSettings
from cloud.migrate import migrate
from cloud.registry import RegistryService
from contracts.messages import ProfileRef
from contracts.signing import SigningKey, sign_document
from contracts.topics import Region
from potr.fleet import register_gateways, run_virtual_fleet, start_fleet_broker
from simulators.fleet import FleetSpec

PROFILE = ProfileRef(id="au-bench-rollout", region="au", version=1)
SETTINGS = {"sim-inverter-103": {"v_ref": 236, "power_limit_pct": 80}}


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _count(url: str, sql: str, *args: Any) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(sql, args).fetchone()
    return int(row[0]) if row else 0


async def _wait(check: Callable[[], bool], within_s: float, what: str, poll_s: float) -> float:
    """Seconds until ``check()`` holds (polled); RuntimeError after ``within_s``."""
    start = time.perf_counter()
    while not await asyncio.to_thread(check):
        if time.perf_counter() - start > within_s:
            raise RuntimeError(f"timed out after {within_s:g} s waiting for {what}")
        await asyncio.sleep(poll_s)
    return time.perf_counter() - start


async def run(
    args: argparse.Namespace, database_url: str, mqtt_url: str, broker_pid: int
) -> dict[str, Any]:
    n = args.gateways
    ids = [f"bench-{i:05d}" for i in range(n)]
    work = Path(args.workdir)
    key_file = work / "cloud.pem"
    write_key_file(key_file, demo=True)
    await asyncio.to_thread(migrate, database_url)
    pool = await asyncio.to_thread(
        create_pool, database_url, min_size=2, max_size=10, name="bench-rollout"
    )
    t = time.perf_counter()
    await asyncio.to_thread(register_gateways, RegistryService(pool), [(g, Region.AU) for g in ids])
    print(f"registered {n:,} gateways in {time.perf_counter() - t:.1f} s")
    config = ConfigSettings(
        database_url=database_url,
        mqtt_url=mqtt_url,
        signing_key_file=key_file,
        config_republish_interval_s=args.interval,
    )
    ingest = IngestSettings(
        database_url=database_url, mqtt_url=mqtt_url, mqtt_client_id="bench-rollout-ingest"
    )
    spec = FleetSpec.model_validate(
        {
            "count": n,
            "id_prefix": "bench",
            "cadence_s": 86_400.0,  # one telemetry batch a day: the cloud's work is the rollout
            "workers": args.workers,
            "connect_rate": 1000.0,
            "drain_timeout_s": 10.0,
            "trusted_key_files": (public_key_path(key_file),),
            "expect_stored": False,
        }
    )
    out: dict[str, Any] = {"gateways": n}
    try:
        async with config_side(pool, config, ingest) as service:
            stop = asyncio.Event()
            fleet = asyncio.create_task(run_virtual_fleet(spec, mqtt_url=mqtt_url, stop=stop))
            try:
                known = (
                    "SELECT count(DISTINCT gateway_id) FROM config.devices"
                    " WHERE profile = 'sim-inverter-103'"
                )
                took = await _wait(
                    lambda: _count(database_url, known) >= n, 600, "every birth", 0.5
                )
                print(f"{n:,} gateways connected and known to the config service in {took:.1f} s")

                applied_sql = "SELECT count(*) FROM config.reported WHERE status = 'applied'"
                cpu0, broker0, t0 = _cpu_s(), _proc_cpu_s(broker_pid), time.perf_counter()
                created = await asyncio.to_thread(
                    service.rollouts.create,
                    "au",
                    RolloutIn(
                        profile=PROFILE,
                        settings=SETTINGS,
                        canary=args.canary,
                        factor=args.factor,
                        failure_threshold=0.05,
                        wave_timeout_s=600,
                        reason="bench: volt reference and export limit",
                    ),
                    "operator:bench",
                )
                created_s = time.perf_counter() - t0
                waves = [w.size for w in created.waves]
                print(f"rollout {created.id}: waves {waves}, create {created_s:.2f} s")
                p99 = -(-99 * n // 100)
                t99 = await _wait(
                    lambda: _count(database_url, applied_sql) >= p99,
                    args.timeout, "99 % applied", 0.1,
                )  # fmt: skip
                cpu99 = _cpu_s() - cpu0
                t100 = t99 + await _wait(
                    lambda: _count(database_url, applied_sql) >= n, args.timeout, "all applied", 0.1
                )
                done_sql = "SELECT count(*) FROM config.rollouts WHERE state = 'completed'"
                tdone = t100 + await _wait(
                    lambda: _count(database_url, done_sql) >= 1, args.timeout, "completed", 0.1
                )
                cpu_done, broker_done = _cpu_s() - cpu0, _proc_cpu_s(broker_pid) - broker0
                out["rollout"] = {
                    "waves": waves,
                    "create_s": created_s,
                    "p99_applied_s": t99,
                    "all_applied_s": t100,
                    "completed_s": tdone,
                    "service_cpu_s_to_p99": cpu99,
                    "service_cpu_s_to_completed": cpu_done,
                    "broker_cpu_s_to_completed": broker_done,
                }
                documents = await asyncio.to_thread(_documents, database_url)
            finally:
                stop.set()
                async with asyncio.timeout(60):
                    await fleet
            out["baseline"] = await asyncio.to_thread(_raw_publish, config, documents, broker_pid)
            out["baseline"]["sign_s"] = _sign_again(documents)
    finally:
        await asyncio.to_thread(pool.close)
    return out


@contextlib.asynccontextmanager
async def config_side(
    pool: Any, config: ConfigSettings, ingest: IngestSettings
) -> AsyncIterator[ConfigService]:
    """What ``run_services`` runs for the config path, without the alerts service (its
    own process in production; it reacts to every ``config.applied`` too): the config
    service with its loops and tracker, the registry's and config's event consumers, and
    ingest (one worker), which turns each ``config_state`` into the tracker's event."""
    async with serve_config_service(config, pool) as (service, connected):
        if not connected:
            raise RuntimeError("the config service's publisher did not connect")
        tracker = create_tracker(config, pool)
        stop = asyncio.Event()
        async with (
            cloud_events(pool, registry=RegistryService(pool), config=tracker, ingest=True) as rt,
            asyncio.TaskGroup() as tg,
        ):
            ready = asyncio.Event()
            tg.create_task(run_ingest(ingest, stop, ready=ready))
            tg.create_task(config_loops(config, service, tracker, stop, rt))
            try:
                async with asyncio.timeout(30):
                    await ready.wait()
                yield service
            finally:
                stop.set()


def _documents(database_url: str) -> list[tuple[str, dict[str, Any]]]:
    """The signed documents of the rollout, as stored (gateway, document)."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT gateway_id, document FROM config.desired ORDER BY gateway_id, version"
        ).fetchall()
    return [(g, d) for g, d in rows]


def _raw_publish(
    settings: ConfigSettings, documents: list[tuple[str, dict[str, Any]]], broker_pid: int
) -> dict[str, float]:
    """The same documents, serialised and published as the service does (QoS 1,
    retained, one PUBACK at a time) by a fresh publisher of the same class."""
    import orjson

    publisher = create_publisher(settings)
    if not publisher.start(10):
        raise RuntimeError("baseline publisher did not connect")
    try:
        cpu0, broker0, t0 = _cpu_s(), _proc_cpu_s(broker_pid), time.perf_counter()
        for gateway_id, document in documents:
            if not publisher.publish(
                f"bench/raw/{gateway_id}/config", orjson.dumps(document), qos=1, retain=True
            ):
                raise RuntimeError(f"raw publish to {gateway_id} not confirmed")
        elapsed = time.perf_counter() - t0
        return {
            "documents": len(documents),
            "publish_s": elapsed,
            "cpu_s": _cpu_s() - cpu0,
            "broker_cpu_s": _proc_cpu_s(broker_pid) - broker0,
        }
    finally:
        publisher.stop()


def _sign_again(documents: list[tuple[str, dict[str, Any]]]) -> float:
    key = SigningKey.generate()
    bodies = [{k: v for k, v in d.items() if k != "sig"} for _, d in documents]
    t0 = time.perf_counter()
    for body in bodies:
        sign_document(body, key)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gateways", type=int, default=10_000)
    parser.add_argument("--canary", type=int, default=100)
    parser.add_argument("--factor", type=float, default=2.0)
    parser.add_argument("--workers", type=int, default=2, help="fleet processes")
    parser.add_argument("--interval", type=float, default=1.0, help="config loop round, s")
    parser.add_argument("--timeout", type=float, default=900.0, help="s per awaited figure")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    import tempfile

    broker = start_fleet_broker(persistence=True)
    try:
        with tempfile.TemporaryDirectory() as work, bench_database() as database_url:
            args.workdir = work
            assert broker.proc is not None
            out = asyncio.run(run(args, database_url, broker.url, broker.proc.pid))
    finally:
        broker.cleanup()
    _print(out)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")


def _print(out: dict[str, Any]) -> None:
    n, ro, raw = out["gateways"], out["rollout"], out["baseline"]

    def row(label: str, seconds: float, note: str = "") -> None:
        print(f"{label:<60} {seconds:>10.2f} s   {note}")

    print()
    docs = raw["documents"]
    row(f"baseline: raw publish of the same {docs:,} signed documents", raw["publish_s"])
    row("  its process CPU", raw["cpu_s"])
    row("  broker CPU", raw["broker_cpu_s"])
    row("  signing the same documents again (Ed25519 only)", raw["sign_s"])
    ratio = ro["p99_applied_s"] / raw["publish_s"]
    row(f"rollout to {n:,}: create → 99 % applied", ro["p99_applied_s"], f"{ratio:.1f}x baseline")
    row("rollout: create → 100 % applied", ro["all_applied_s"])
    row("rollout: create → completed", ro["completed_s"])
    row("service CPU (this process) to 99 % applied", ro["service_cpu_s_to_p99"])
    per = 1000 * ro["service_cpu_s_to_completed"] / n
    row("service CPU to completed", ro["service_cpu_s_to_completed"], f"{per:.2f} ms a gateway")
    row("broker CPU to completed", ro["broker_cpu_s_to_completed"])
    print(f"waves {ro['waves']}; create (signs the canary) {ro['create_s']:.2f} s")


if __name__ == "__main__":
    main()
