"""The telemetry maintenance job (issue 14) on both backends: one runner at a time,
rollups caught up, raw retention, partition upkeep (plain), compression and retention
policies set from the settings and run (timescale, PGlite: no scheduler). Expected days
and counts are worked out in the tests from the retention rules."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cloud.adapters.postgres import Connection, ConnectionPool, create_pool
from cloud.migrate import migrate
from cloud.telemetry import TelemetryStore
from cloud.telemetry.maintenance import LOCK_KEY, StoreMaintenance
from cloud.telemetry.settings import StoreSettings
from cloud.telemetry.store import partition_names
from tests.integration.api_world import private_database

pytestmark = pytest.mark.integration

Pool = ConnectionPool[Connection[Any]]
Row = tuple[datetime, int, int, float, int]


def _settings(**fields: Any) -> StoreSettings:
    return StoreSettings(database_url="postgresql://unused", **fields)


@pytest.fixture
def plain(postgres_server_url: str) -> Iterator[Pool]:
    with private_database(postgres_server_url) as url:
        migrate(url, schemas={"telemetry", "ingest"})
        pool = create_pool(url, max_size=2, name="test-maintenance")
        try:
            yield pool
        finally:
            pool.close()


@pytest.fixture
def timescale(timescale_database_url: str) -> Iterator[Pool]:
    migrate(timescale_database_url, backend="timescale", schemas={"telemetry", "ingest"})
    # One session for every connection (PGlite): one connection, nothing prepared.
    pool = create_pool(timescale_database_url, max_size=1, prepare_threshold=None, name="ts")
    try:
        yield pool
    finally:
        pool.close()


def _write(store: TelemetryStore, pool: Pool, rows: Sequence[Row], today: Any) -> None:
    store.ensure_partitions({r[0].date() for r in rows}, today=today)
    with pool.connection() as conn, conn.transaction():
        store.write_readings(conn, rows)


def _one(pool: Pool, query: str) -> Any:
    with pool.connection() as conn:
        row = conn.execute(query).fetchone()
    assert row is not None
    return row[0] if len(row) == 1 else row


# -- plain ------------------------------------------------------------------------------


def _partitions(pool: Pool) -> set[str]:
    with pool.connection() as conn:
        return set(partition_names(conn)) - {"readings_default"}


def test_plain_catches_up_keeps_partitions_ahead_and_drops_what_retention_ends(
    plain: Pool,
) -> None:
    now = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    store = TelemetryStore(plain, past_days=400)
    old, kept = now - timedelta(days=11), now - timedelta(days=9)
    _write(
        store, plain, [(old, 3, 1, 1.0, 0), (kept, 3, 1, 2.0, 0), (now, 3, 1, 3.0, 0)], now.date()
    )
    ten = {f"telemetry_{k}_retention_days": 10 for k in ("raw", "5m", "1h")}
    # (``now`` is not the clock that noted the rows: no waiting for open buckets here.)
    job = StoreMaintenance(plain, _settings(**ten, telemetry_open_bucket_wait_s=0), store=store)
    assert job.run_once(now)
    # Raw kept 10 days: from 11-23 on, so 11-22 (11 days back) is dropped and 11-24 kept;
    # partitions exist for today and the two days ahead.
    assert _partitions(plain) == {
        "readings_20261124",
        "readings_20261203",
        "readings_20261204",
        "readings_20261205",
    }
    # The rollups were made of all three readings first; then 5 min and 1 h lost what is
    # older than 10 days; the day level keeps everything.
    for level, step in (("5m", timedelta(minutes=5)), ("1h", timedelta(hours=1))):
        with plain.connection() as conn:
            rows = conn.execute(f"SELECT bucket FROM telemetry.rollup_{level} ORDER BY 1")
            # 12:00 is on every boundary: each reading's bucket starts at its own time.
            assert [r[0] for r in rows] == [kept, now], (level, step)
    assert _one(plain, "SELECT count(*) FROM telemetry.rollup_1d") == 3
    assert _one(plain, "SELECT count(*) FROM telemetry.dirty") == 0
    assert job.stats.partitions_dropped == 1
    assert job.stats.rollup_rows_deleted == 2
    assert job.stats.dirty_rows == 3  # three days of one device


def test_readings_of_the_open_bucket_wait_for_it_to_close_late_ones_do_not(
    plain: Pool,
) -> None:
    now = datetime.now(UTC)  # the rows are noted by the server's clock
    store = TelemetryStore(plain, past_days=400)
    late, live = now - timedelta(days=7), now - timedelta(seconds=1)
    _write(store, plain, [(late, 3, 1, 1.0, 0), (live, 4, 1, 2.0, 0)], now.date())
    job = StoreMaintenance(plain, _settings(), store=store)
    assert job.run_once(now)  # waits 300 s
    assert job.stats.backlog_rows == 1  # the live reading's range, noted again
    with plain.connection() as conn:
        done = conn.execute("SELECT device_id FROM telemetry.rollup_5m").fetchall()
        waiting = conn.execute("SELECT device_id, from_ts, to_ts FROM telemetry.dirty").fetchall()
    assert done == [(3,)]
    assert waiting == [(4, live, live)]  # noted again, unchanged
    # Six minutes on, the live reading's bucket has closed (5 min + the 30 s grace).
    later = now + timedelta(minutes=6)
    assert job.run_once(later)
    assert (job.stats.backlog_rows, job.stats.backlog_age_s) == (0, 0.0)
    assert _one(plain, "SELECT count(*) FROM telemetry.rollup_5m WHERE device_id = 4") == 1
    assert _one(plain, "SELECT count(*) FROM telemetry.dirty") == 0


def test_a_second_runner_skips_while_one_holds_the_lock(plain: Pool) -> None:
    # (PGlite has one session for every connection: a second runner cannot exist there.)
    job = StoreMaintenance(plain, _settings())
    with plain.connection() as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        try:
            assert job.run_once() is False
        finally:
            holder.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    assert job.stats.skipped_locked == 1
    assert job.run_once() is True


# -- timescale ---------------------------------------------------------------------------


def test_timescale_compresses_and_drops_chunks_by_the_settings(timescale: Pool) -> None:
    now = datetime.now(UTC)  # TimescaleDB's policies count from the server's now()
    store = TelemetryStore(timescale, write_mode="unnest")
    # One reading k days back for k = 0..12, value k: thirteen 1-day chunks.
    _write(
        store,
        timescale,
        [(now - timedelta(days=k), 3, 1, float(k), 0) for k in range(13)],
        now.date(),
    )
    job = StoreMaintenance(
        timescale,
        _settings(
            telemetry_raw_retention_days=10,
            telemetry_5m_retention_days=10,
            telemetry_1h_retention_days=10,
            telemetry_compress_after_days=7,
            telemetry_run_policy_jobs=True,
            telemetry_open_bucket_wait_s=0,  # today's reading is in the open bucket
        ),
    )
    assert job.run_once()
    # A chunk [D, D + 1 day) goes once it ends 10 days or more before now. The reading
    # k days back lies in the chunk that ends at midnight after it, within (now - k,
    # now - k + 1 day]: k >= 11 end before now - 10 days and go; k = 0..10 stay (11
    # readings, values summing to 55), readable though some are compressed.
    assert _one(timescale, "SELECT count(*), sum(value) FROM telemetry.readings") == (11, 55.0)
    # Compressed once a chunk ends 7 days or more before now: by the same reasoning,
    # k >= 8 — of those left, k = 8, 9, 10.
    compressed = _one(
        timescale,
        "SELECT count(*) FILTER (WHERE is_compressed), count(*)"
        " FROM timescaledb_information.chunks WHERE hypertable_name = 'readings'",
    )
    assert compressed == (3, 11)
    # The day level has no retention: it kept all 13 days, made before raw went.
    assert _one(timescale, "SELECT count(*) FROM telemetry.rollup_1d") == 13
    assert _one(timescale, "SELECT count(*) FROM telemetry.dirty") == 0
    policies = _one(
        timescale,
        "SELECT config->>'compress_after' FROM timescaledb_information.jobs"
        " WHERE proc_name = 'policy_compression'",
    )
    assert policies == "7 days"
    assert job.stats.policy_jobs_run >= 6  # 3 refresh, 1 compression, 3 retention
