"""Ingest throughput in one run on the same PostgreSQL (issue 6):

(a) the raw ceiling: binary ``COPY`` of the rows into an unindexed table;
(b) the storage writer alone (``TelemetryStore.write_readings``: keyed table, dedupe),
    the same rows, new and then replayed;
(c) end to end: the fleet simulator (virtual gateways, ``simulators.fleet``) publishing
    telemetry batches through a private Mosquitto to ``--workers`` ingest processes
    (``potr ingest --workers N``) into the database: stored readings/s (one reading = one
    metric value), ingest CPU µs per reading, and the stored count against the sent one.

    .venv/bin/python -m bench.ingest                         # defaults below
    .venv/bin/python -m bench.ingest --workers 2 --rate 120000 --duration 30
    .venv/bin/python -m bench.ingest --profile /tmp/ingest.txt   # py-spy on worker 0

The rows of (a)/(b) are shaped like the fleet's: 2 devices per gateway, 16 metrics per
sample, 5 s apart.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from bench.common import bench_database, report
from cloud.adapters.postgres import create_pool
from cloud.bootstrap import deliver_registry_events
from cloud.ingest import IngestSettings
from cloud.migrate import migrate
from cloud.registry import RegistryService
from cloud.telemetry import RowTuple, TelemetryStore, partition_days
from contracts.topics import Region
from potr.fleet import register_gateways, start_fleet_broker
from potr.ingest_workers import IngestSupervisor
from simulators.fleet import FleetSpec, MqttTarget, run_fleet
from simulators.fleet.spec import gateway_id

METRICS_PER_SAMPLE = 16  # the virtual gateway's inverter (9) + meter (7)
CLK_TCK = os.sysconf("SC_CLK_TCK")


def make_rows(n: int, devices: int = 400) -> list[RowTuple]:
    """``n`` rows: ``devices`` devices x 8 metrics per timestamp, 5 s apart."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=6)
    rows: list[RowTuple] = []
    per_step = devices * 8
    for i in range(n):
        step, rest = divmod(i, per_step)
        device, metric = divmod(rest, 8)
        ts = start + timedelta(seconds=5 * step)
        rows.append((ts, device + 1, metric + 1, float(i % 9973), 0))
    return rows


def chunks(rows: list[RowTuple], size: int) -> Iterator[list[RowTuple]]:
    for i in range(0, len(rows), size):
        yield rows[i : i + size]


def writer_figures(url: str, n: int, batch: int) -> tuple[float, float, float, float]:
    """(a) raw COPY, text and binary; (b) the store's writer on new rows, then replayed."""
    rows = make_rows(n)
    pool = create_pool(url, max_size=2, name="bench-writer")
    try:
        store = TelemetryStore(pool)
        store.ensure_partitions(partition_days({r[0] for r in rows}, datetime.now(UTC).date()))
        with pool.connection() as conn:
            conn.execute(
                "CREATE TABLE raw_copy (ts timestamptz, device_id int, metric_id smallint,"
                " value float8, quality smallint)"
            )

        def raw_text(conn: Any, chunk: list[RowTuple]) -> None:
            with (
                conn.cursor() as cur,
                cur.copy(
                    "COPY raw_copy (ts, device_id, metric_id, value, quality) FROM STDIN"
                ) as copy,
            ):
                for r in chunk:
                    copy.write_row(r)

        def raw(conn: Any, chunk: list[RowTuple]) -> None:
            with (
                conn.cursor() as cur,
                cur.copy(
                    "COPY raw_copy (ts, device_id, metric_id, value, quality)"
                    " FROM STDIN (FORMAT BINARY)"
                ) as copy,
            ):
                copy.set_types(["timestamptz", "int4", "int2", "float8", "int2"])
                for r in chunk:
                    copy.write_row(r)

        def timed(write: Any) -> float:
            t0 = time.perf_counter()
            for chunk in chunks(rows, batch):
                with pool.connection() as conn:
                    write(conn, chunk)
            return n / (time.perf_counter() - t0)

        plain = timed(raw_text)
        with pool.connection() as conn:
            conn.execute("TRUNCATE raw_copy")
        ceiling = timed(raw)
        new = timed(store.write_readings)
        replay = timed(store.write_readings)
        with pool.connection() as conn:
            (count,) = conn.execute("SELECT count(*) FROM telemetry.readings").fetchone() or (0,)
        assert count == n, f"stored {count} rows of {n}"
    finally:
        pool.close()
    return plain, ceiling, new, replay


def _cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def _dirty(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM telemetry.dirty").fetchone()
    return int(row[0]) if row else 0


def _catch_up_s(url: str, timeout_s: float = 600.0) -> tuple[int, float]:
    """The maintenance's backlog when the fleet stops (dirty ranges) and the seconds its
    workers take to clear it: a job that kept up leaves little."""
    left, started = _dirty(url), time.monotonic()
    while _dirty(url) and time.monotonic() - started < timeout_s:
        time.sleep(0.5)  # polling a count: nothing to synchronise with
    return left, time.monotonic() - started


def _count(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM telemetry.readings").fetchone()
    return int(row[0]) if row else 0


@contextlib.contextmanager
def py_spy(pid: int, seconds: float, out: Path | None) -> Iterator[None]:
    """Sample ``pid`` with py-spy for ``seconds`` (when asked and installed)."""
    exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    proc = None
    args = ["-o", str(out), "--nonblocking"]
    if out is not None and Path(exe).exists():
        proc = subprocess.Popen(
            [exe, "record", "-p", str(pid), "-d", str(int(seconds)), "-f", "raw", *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    try:
        yield
    finally:
        if proc is not None:
            try:
                proc.wait(timeout=seconds + 30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def summarise_profile(raw: Path, top: int = 18) -> list[tuple[float, str]]:
    """Self-time shares per function from py-spy's collapsed stacks."""
    totals: dict[str, int] = {}
    all_samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        all_samples += n
        leaf = stack.split(";")[-1]
        totals[leaf] = totals.get(leaf, 0) + n
    ranked = sorted(totals.items(), key=lambda kv: -kv[1])[:top]
    return [(100 * n / max(all_samples, 1), name) for name, n in ranked]


def end_to_end(url: str, args: argparse.Namespace) -> dict[str, Any]:
    """(c): fleet → Mosquitto → N ingest processes → PostgreSQL."""
    broker = start_fleet_broker(persistence=True)
    pool = create_pool(url, max_size=2, name="bench-registry")
    supervisor: IngestSupervisor | None = None
    try:
        per_batch = args.samples_per_batch * METRICS_PER_SAMPLE
        batches_per_s = args.rate / per_batch
        speed = batches_per_s * args.cadence / args.gateways
        prefix = f"b{uuid.uuid4().hex[:4]}"
        register_gateways(
            RegistryService(pool),
            [(gateway_id(prefix, i), Region.AU) for i in range(args.gateways)],
            label="Bench",
        )
        asyncio.run(deliver_registry_events(pool))  # ingest knows them before they publish
        settings = IngestSettings(
            database_url=url,
            mqtt_url=broker.url,
            mqtt_client_id=f"bench-ingest-{prefix}",
            ingest_workers=args.workers,
        )
        supervisor = IngestSupervisor(settings)
        supervisor.start()
        supervisor.wait_ready(60)
        pids = supervisor.pids
        maintenance_pid = supervisor.maintenance_pid
        spec = FleetSpec(
            count=args.gateways,
            id_prefix=prefix,
            cadence_s=args.cadence,
            samples_per_batch=args.samples_per_batch,
            speed=speed,
            duration_s=args.duration,
            workers=args.fleet_workers,
            connect_rate=500.0,
            stored_timeout_s=60.0,
            drain_timeout_s=120.0,
            mqtt=MqttTarget(host="127.0.0.1", port=broker.port),
        )
        samples: list[tuple[float, int, float]] = []
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.5):
                samples.append((time.monotonic(), _count(url), sum(map(_cpu_s, pids))))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        with py_spy(pids[0], min(15.0, args.duration), args.profile_raw):
            result = run_fleet(spec)
        done.set()
        sampler.join()
        stored_total = _count(url)
        cpu_end = sum(map(_cpu_s, pids))
        backlog, catch_up_s = _catch_up_s(url)
        maintenance_cpu = _cpu_s(maintenance_pid) if maintenance_pid else 0.0
    finally:
        if supervisor is not None:
            supervisor.stop()
        pool.close()
        broker.cleanup()
    # The busiest stretch: from the first stored rows to when 99 % were stored.
    first = next((s for s in samples if s[1] > 0), samples[0])
    last = next((s for s in samples if s[1] >= 0.99 * stored_total), samples[-1])
    span = max(last[0] - first[0], 1e-9)
    rate = (last[1] - first[1]) / span
    cpu_us = 1e6 * (last[2] - first[2]) / max(last[1] - first[1], 1)
    stats = result.stats
    return {
        "gateways": args.gateways,
        "workers": args.workers,
        "readings_per_message": per_batch,
        "offered_per_s": args.rate,
        "stored_per_s": rate,
        "window_s": span,
        "cpu_us_per_reading": cpu_us,
        "ingest_cpu_total_s": cpu_end,
        "sent_values": stats.values,
        "stored_values_db": stored_total,
        "fleet_stored_values": stats.stored_values,
        "messages": stats.sent,
        "resends": stats.resends,
        "fleet_cpu_s": stats.cpu_s,
        "restarts": supervisor.restarts if supervisor else 0,
        "dirty_backlog": backlog,
        "catch_up_s": catch_up_s,
        "maintenance_cpu_s": maintenance_cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--readings", type=int, default=400_000, help="rows for (a) and (b)")
    parser.add_argument("--batch", type=int, default=20_000, help="rows per (b) transaction")
    parser.add_argument("--workers", type=int, default=2, help="ingest processes for (c)")
    parser.add_argument("--fleet-workers", type=int, default=1)
    parser.add_argument("--gateways", type=int, default=200)
    parser.add_argument("--samples-per-batch", type=int, default=60)
    parser.add_argument("--cadence", type=float, default=300.0, help="simulated s per batch")
    parser.add_argument("--rate", type=float, default=120_000, help="offered readings/s")
    parser.add_argument("--duration", type=float, default=30.0, help="real s of publishing")
    parser.add_argument("--profile", type=Path, default=None, help="py-spy summary file")
    parser.add_argument("--skip-writer", action="store_true")
    args = parser.parse_args()
    args.profile_raw = args.profile.with_suffix(".raw") if args.profile else None

    with bench_database() as url:
        migrate(url)
        if not args.skip_writer:
            plain, ceiling, new, replay = writer_figures(url, args.readings, args.batch)
            print(f"(a)/(b): {args.readings:,} readings in transactions of {args.batch:,}")
            report("(a) raw ceiling: plain (text) COPY, unindexed", plain, plain)
            report("(a) raw ceiling: binary COPY, unindexed", ceiling, plain)
            report("(b) store writer, new rows (keyed, dedupe)", new, plain)
            report("(b) store writer, replayed rows", replay, plain)
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("TRUNCATE telemetry.readings")
        e2e = end_to_end(url, args)
    print(
        f"(c) end to end: {e2e['gateways']} virtual gateways, {e2e['readings_per_message']}"
        f" readings/message, {e2e['workers']} ingest processes, offered"
        f" {e2e['offered_per_s']:,.0f} readings/s for {args.duration:g} s"
    )
    print(
        f"(c) stored {e2e['stored_per_s']:,.0f} readings/s over {e2e['window_s']:.1f} s;"
        f" ingest CPU {e2e['cpu_us_per_reading']:.2f} µs per reading;"
        f" fleet CPU {e2e['fleet_cpu_s']:.1f} s"
    )
    if not args.skip_writer:
        print(
            f"(c) / (b) = {e2e['stored_per_s'] / new:.2f}; (b) / (a) = {new / plain:.2f}"
            f" (text COPY), {new / ceiling:.2f} (binary COPY)"
        )
    print(
        f"(c) the store's maintenance: {e2e['dirty_backlog']:,} dirty ranges left when the"
        f" fleet stopped, cleared {e2e['catch_up_s']:.1f} s later; its process's CPU"
        f" {e2e['maintenance_cpu_s']:.1f} s in all"
    )
    equal = e2e["sent_values"] == e2e["stored_values_db"]
    print(
        f"(c) sent {e2e['sent_values']:,} readings in {e2e['messages']:,} messages"
        f" ({e2e['resends']} resends), stored {e2e['stored_values_db']:,} —"
        f" {'equal' if equal else 'NOT EQUAL'}; worker restarts {e2e['restarts']}"
    )
    if args.profile_raw is not None and args.profile_raw.exists():
        lines = [f"{pct:5.1f} %  {name}" for pct, name in summarise_profile(args.profile_raw)]
        args.profile.write_text("\n".join(lines) + "\n", encoding="utf-8")
        print("py-spy, ingest worker 0, self time:")
        print("\n".join(lines))


if __name__ == "__main__":
    main()
