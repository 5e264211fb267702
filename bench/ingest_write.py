"""Telemetry write path: staging COPY + ON CONFLICT vs unnest INSERT, against a raw COPY
baseline into an unkeyed table (no dedupe) measured in the same run.

    .venv/bin/python -m bench.ingest_write [--readings 200000] [--batch 5000]
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta

from bench.common import bench_database, report
from cloud.adapters.postgres import create_pool
from cloud.migrate import migrate
from cloud.telemetry import ReadingRow, TelemetryStore, partition_days


def make_rows(n: int, offset_s: int = 0) -> list[ReadingRow]:
    """n readings: 50 devices x 20 metrics per timestamp, 5 s apart."""
    start = (
        datetime.now(UTC).replace(microsecond=0) - timedelta(hours=6) + timedelta(seconds=offset_s)
    )
    rows = []
    for i in range(n):
        step, rest = divmod(i, 1000)
        device, metric = divmod(rest, 20)
        rows.append(
            ReadingRow(start + timedelta(seconds=5 * step), device + 1, metric + 1, float(i % 9973))
        )
    return rows


def batches(rows: list[ReadingRow], size: int) -> list[list[ReadingRow]]:
    return [rows[i : i + size] for i in range(0, len(rows), size)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--readings", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=5_000)
    args = parser.parse_args()
    rows = make_rows(args.readings)
    with bench_database() as url:
        migrate(url)
        pool = create_pool(url, max_size=2)
        with pool.connection() as conn:
            conn.execute(
                "CREATE UNLOGGED TABLE IF NOT EXISTS raw_copy (ts timestamptz,"
                " device_id int, metric_id smallint, value float8, quality smallint)"
            )
            conn.execute("ALTER TABLE raw_copy SET LOGGED")
        print(f"{args.readings:,} readings in batches of {args.batch:,}")

        def timed(write: object) -> float:
            t0 = time.perf_counter()
            for chunk in batches(rows, args.batch):
                with pool.connection() as conn:
                    write(conn, chunk)  # type: ignore[operator]
            return args.readings / (time.perf_counter() - t0)

        def raw_copy(conn: object, chunk: list[ReadingRow]) -> None:
            with (
                conn.cursor() as cur,
                cur.copy(  # type: ignore[attr-defined]
                    "COPY raw_copy (ts, device_id, metric_id, value, quality) FROM STDIN"
                ) as copy,
            ):
                for r in chunk:
                    copy.write_row((r.ts, r.device_id, r.metric_id, r.value, r.quality))

        baseline = timed(raw_copy)
        report("baseline: raw COPY, no key, no dedupe", baseline, baseline)
        for mode in ("copy", "unnest"):
            store = TelemetryStore(pool, write_mode=mode)  # type: ignore[arg-type]
            store.ensure_partitions(partition_days((r.ts for r in rows), datetime.now(UTC).date()))
            with pool.connection() as conn:
                conn.execute("TRUNCATE telemetry.readings")
            rate = timed(store.write_readings)
            report(f"{mode}: new rows, keyed, ON CONFLICT", rate, baseline)
            replay = timed(store.write_readings)  # the same rows again: all repeats
            report(f"{mode}: replayed rows (all duplicates)", replay, baseline)
        pool.close()


if __name__ == "__main__":
    main()
