"""The telemetry store's maintenance job (issue 14) on ``bench.ingest``-shaped data, beside
the store's own write of the same readings in the same run.

    .venv/bin/python -m bench.maintenance                 # 200 devices x 2 batches
    .venv/bin/python -m bench.maintenance --devices 400 --batches 4
    .venv/bin/python -m bench.maintenance --history 144   # after 12 h of the same day

Data (a fresh bench database, plain backend): ``--devices`` devices, two per gateway and
site (Australia/Sydney), each sending ``--batches`` batches of 60 samples 5 s apart (a
virtual gateway's 5-minute batch) of 16 metrics, three of them Wh counters (pv_wh,
import_wh, export_wh): the shape ``bench.ingest`` offers. The readings go in through
``TelemetryStore.write_readings`` (binary COPY, dirty ranges marked), one transaction a
device batch, timed: the baseline. Then ``RollupRefresher("plain").catch_up`` — rollups
5 min / 1 h / 1 day, energy buckets, site days — timed, with the process CPU it used
(the rest of the wall time is the server's). Both per stored reading. ``--history N``
first stores and maintains N earlier batches of every device on the same UTC day
(untimed): the job's windows must not cost more as the day's partition fills.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.common import bench_database
from cloud.adapters.postgres import create_pool
from cloud.migrate import migrate
from cloud.telemetry import TelemetryStore
from cloud.telemetry.rollups import RollupRefresher
from contracts.metrics import metric

COUNTERS = {metric(n).id for n in ("pv_wh", "import_wh", "export_wh")}
GAUGES = [
    metric(n).id
    for n in (
        "pv_w",
        "pv_va",
        "pv_var",
        "pv_ac_a",
        "pv_l1_v",
        "pv_hz",
        "pv_dc_w",
        "pv_cabinet_c",
        "grid_w",
        "grid_l1_w",
        "grid_va",
        "grid_l1_v",
        "grid_hz",
    )
]
SAMPLES = 60  # a batch: 5 minutes of 5-second samples


def _write(
    pool: Any,
    store: TelemetryStore,
    devices: int,
    metrics: list[int],
    batches: range,
    day: datetime,
) -> tuple[int, float]:
    """Batches ``batches`` of every device through the store; readings and seconds."""
    written, write_s = 0, 0.0
    for b in batches:
        for device in range(1, devices + 1):
            rows = []
            for i in range(SAMPLES):
                ts = day + timedelta(seconds=300 * b + 5 * i)
                n = SAMPLES * b + i
                for m in metrics:
                    value = float(1000 + 7 * n) if m in COUNTERS else float(n % 17)
                    rows.append((ts, device, m, value, 0))
            t = time.perf_counter()
            with pool.connection() as conn, conn.transaction():
                store.write_readings(conn, rows)
            write_s += time.perf_counter() - t
            written += len(rows)
    return written, write_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--batches", type=int, default=2, help="per device, 5 min each")
    parser.add_argument("--history", type=int, default=0, help="earlier batches, untimed")
    args = parser.parse_args()
    metrics = [*GAUGES, *sorted(COUNTERS)]
    day_start = datetime(2026, 12, 2, 0, 2, 30, tzinfo=UTC)
    start = day_start + timedelta(minutes=5 * args.history)
    with bench_database() as url:
        migrate(url, schemas={"telemetry", "ingest"})
        pool = create_pool(url, max_size=2, name="bench-maintenance")
        try:
            with pool.connection() as conn:
                conn.execute(
                    "INSERT INTO ingest.gateways (gateway_id, region, time_zone, updated_at,"
                    " site_id) SELECT 'gw' || g, 'au', 'Australia/Sydney', now(), g * 4 + 1"
                    " FROM generate_series(1, %s) g",
                    ((args.devices + 1) // 2,),
                )
                conn.execute(
                    "INSERT INTO ingest.device_keys (gateway_id, local_id, device_id)"
                    " SELECT 'gw' || ((d + 1) / 2), 'd' || d, d FROM generate_series(1, %s) d",
                    (args.devices,),
                )
            store = TelemetryStore(pool)
            store.ensure_partitions({start.date()}, today=start.date())
            if args.history:
                _write(pool, store, args.devices, metrics, range(args.history), day_start)
                with pool.connection() as conn:
                    conn.autocommit = True
                    RollupRefresher("plain").catch_up(conn, now=start + timedelta(days=1))
                    conn.execute("VACUUM ANALYZE telemetry.readings")
                print(f"history: {args.history} batches a device stored and maintained")
            batches = range(args.history, args.history + args.batches)
            written, write_s = _write(pool, store, args.devices, metrics, batches, day_start)
            with pool.connection() as conn:
                conn.autocommit = True
                t, cpu = time.perf_counter(), time.process_time()
                consumed = RollupRefresher("plain").catch_up(conn, now=start + timedelta(days=1))
                job_s, job_cpu = time.perf_counter() - t, time.process_time() - cpu
        finally:
            pool.close()
    us = 1e6 / written
    print(
        f"{written:,} readings ({args.devices} devices x {args.batches} batches x {SAMPLES}"
        f" samples x {len(metrics)} metrics), {consumed:,} dirty ranges"
    )
    print(f"write (store, COPY + dirty)   {write_s * us:6.2f} µs a reading   (baseline)")
    print(
        f"maintenance (catch_up)        {job_s * us:6.2f} µs a reading"
        f"   {job_s / write_s:5.2f}x the write; this process's CPU {job_cpu * us:.2f} µs"
    )


if __name__ == "__main__":
    main()
