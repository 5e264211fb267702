"""Rollups (issue 14) on the plain backend against the real PostgreSQL server: what the
write path stores is marked dirty in its transaction, and the refresher brings the 5 min,
1 h and 1 day rollups to exactly the aggregates of the raw rows — computed here in
Python from the rows the test wrote, not by the code under test — live data and late
data alike."""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud.adapters.postgres import Connection, ConnectionPool, create_pool
from cloud.migrate import migrate, schema_backend
from cloud.telemetry import TelemetryStore
from cloud.telemetry.maintenance import LOCK_KEY as MAINTENANCE_LOCK
from cloud.telemetry.maintenance import StoreMaintenance
from cloud.telemetry.rollups import RollupRefresher
from cloud.telemetry.settings import StoreSettings
from tests.integration.api_world import private_database

pytestmark = pytest.mark.integration

Pool = ConnectionPool[Connection[Any]]
Row = tuple[datetime, int, int, float, int]
T0 = datetime(2026, 11, 30, 22, 0, tzinfo=UTC)
STEPS = {
    "rollup_5m": timedelta(minutes=5),
    "rollup_1h": timedelta(hours=1),
    "rollup_1d": timedelta(days=1),
}
ORIGIN = datetime(2000, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def pool(postgres_server_url: str) -> Iterator[Pool]:
    with private_database(postgres_server_url) as url:
        migrate(url)
        pool = create_pool(url, max_size=2, name="test-rollups")
        try:
            yield pool
        finally:
            pool.close()


def _reset(pool: Pool) -> None:
    with pool.connection() as conn:
        conn.execute(
            "TRUNCATE telemetry.readings, telemetry.rollup_5m, telemetry.rollup_1h,"
            " telemetry.rollup_1d, telemetry.dirty"
        )


def _write(pool: Pool, rows: Sequence[Row]) -> None:
    store = TelemetryStore(pool)
    store.ensure_partitions({r[0].date() for r in rows}, today=T0.date())
    with pool.connection() as conn, conn.transaction():
        store.write_readings(conn, rows)


def _catch_up(pool: Pool) -> None:
    with pool.connection() as conn:
        RollupRefresher("plain").catch_up(conn)


def _table(pool: Pool, name: str) -> dict[tuple[int, int, datetime], tuple[Any, ...]]:
    with pool.connection() as conn:
        rows = conn.execute(
            f"SELECT device_id, metric_id, bucket, avg, min, max, last, last_ts, count"
            f" FROM telemetry.{name}"
        ).fetchall()
    return {(r[0], r[1], r[2]): tuple(r[3:]) for r in rows}


def _expected(rows: Sequence[Row], step: timedelta) -> dict[tuple[int, int, datetime], tuple]:
    """The oracle: each bucket's aggregates straight from the raw rows (bad left out)."""
    groups: dict[tuple[int, int, datetime], list[Row]] = defaultdict(list)
    for row in rows:
        ts, device, metric, _value, quality = row
        if quality < 2:
            groups[(device, metric, ts - (ts - ORIGIN) % step)].append(row)
    out = {}
    for key, members in groups.items():
        values = [m[3] for m in members]
        last = max(members, key=lambda m: m[0])
        out[key] = (
            math.fsum(values) / len(values),
            min(values),
            max(values),
            last[3],
            last[0],
            len(values),
        )
    return out


def _assert_rollups_equal(pool: Pool, rows: Sequence[Row]) -> None:
    for name, step in STEPS.items():
        got, want = _table(pool, name), _expected(rows, step)
        assert got.keys() == want.keys(), name
        for key, (avg, *exact) in want.items():
            g_avg, *g_exact = got[key]
            assert g_avg == pytest.approx(avg, rel=1e-12, abs=1e-9), (name, key)
            assert list(g_exact) == exact, (name, key)


def test_the_plain_backend_is_chosen_on_a_server_without_timescaledb(pool: Pool) -> None:
    with pool.connection() as conn:
        assert schema_backend(conn, "telemetry") == "plain"


def test_rollups_of_a_hand_made_hour(pool: Pool) -> None:
    _reset(pool)
    at = T0 + timedelta(minutes=1)
    rows: list[Row] = [
        (at, 5, 1, 100.0, 0),
        (at + timedelta(minutes=2), 5, 1, 300.0, 0),
        (at + timedelta(minutes=3), 5, 1, 9999.0, 2),  # bad: in no rollup
        (at + timedelta(minutes=6), 5, 1, 50.0, 1),  # suspect: counted
    ]
    _write(pool, rows)
    _catch_up(pool)
    five = _table(pool, "rollup_5m")
    assert five == {
        (5, 1, T0): (200.0, 100.0, 300.0, 300.0, at + timedelta(minutes=2), 2),
        (5, 1, T0 + timedelta(minutes=5)): (50.0, 50.0, 50.0, 50.0, at + timedelta(minutes=6), 1),
    }
    # The hour: (100 + 300 + 50) / 3 = 150, last 50 at 22:07.
    assert _table(pool, "rollup_1h") == {
        (5, 1, T0): (150.0, 50.0, 300.0, 50.0, at + timedelta(minutes=6), 3)
    }
    day = datetime(2026, 11, 30, tzinfo=UTC)
    assert _table(pool, "rollup_1d") == {
        (5, 1, day): (150.0, 50.0, 300.0, 50.0, at + timedelta(minutes=6), 3)
    }
    with pool.connection() as conn:
        assert conn.execute("SELECT count(*) FROM telemetry.dirty").fetchone() == (0,)


def test_late_data_a_week_old_corrects_its_buckets_and_leaves_the_rest(pool: Pool) -> None:
    _reset(pool)
    live = [(T0 + timedelta(minutes=i), 9, 40, float(i), 0) for i in range(10)]
    _write(pool, live)
    _catch_up(pool)
    old_day = T0 - timedelta(days=7)
    late = [(old_day + timedelta(minutes=i), 9, 40, 1000.0 + i, 0) for i in range(0, 60, 7)]
    _write(pool, late)
    with pool.connection() as conn:
        report = RollupRefresher("plain").run_once(conn)
    # One dirty row (one device, one day: 22:00 to 22:56): one window per level, the
    # whole buckets around it (22:00-23:00 of 5 min, that hour, that day).
    assert report.dirty_rows == 1
    assert report.windows == {"5m": 1, "1h": 1, "1d": 1}
    _assert_rollups_equal(pool, live + late)


def test_a_redelivered_batch_changes_nothing(pool: Pool) -> None:
    _reset(pool)
    rows = [(T0 + timedelta(seconds=30 * i), 2, 10, 5.0 * i, 0) for i in range(20)]
    _write(pool, rows)
    _write(pool, rows)
    _catch_up(pool)
    _assert_rollups_equal(pool, rows)


def test_an_uncommitted_batch_leaves_no_dirty_row(pool: Pool) -> None:
    _reset(pool)
    store = TelemetryStore(pool)
    store.ensure_partitions({T0.date()}, today=T0.date())
    with pool.connection() as conn:

        def batch_that_fails() -> None:
            with conn.transaction():
                store.write_readings(conn, [(T0, 1, 1, 1.0, 0)])
                conn.execute("SELECT 1 / 0")

        with pytest.raises(psycopg.errors.DivisionByZero):
            batch_that_fails()
        assert conn.execute("SELECT count(*) FROM telemetry.dirty").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM telemetry.readings").fetchone() == (0,)


# -- property: rollups equal the raw rows' aggregates, however the rows arrive -------------

_reading = st.tuples(
    st.integers(0, 3 * 24 * 60 * 60 - 1),  # seconds after T0 - 1 day: four UTC days
    st.sampled_from([5, 9]),
    st.sampled_from([1, 40]),
    st.integers(-5_000, 5_000).map(float),
    st.sampled_from([0, 0, 0, 1, 2]),
)


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    readings=st.lists(_reading, min_size=1, max_size=120, unique_by=lambda r: r[:3]),
    cuts=st.lists(st.integers(0, 120), max_size=3),
    refresh_between=st.booleans(),
)
def test_rollups_equal_the_raw_aggregates_whatever_the_batches(
    pool: Pool,
    readings: list[tuple[int, int, int, float, int]],
    cuts: list[int],
    refresh_between: bool,
) -> None:
    _reset(pool)
    start = T0 - timedelta(days=1)
    rows: list[Row] = [(start + timedelta(seconds=s), d, m, v, q) for s, d, m, v, q in readings]
    bounds = sorted({0, len(rows), *(c for c in cuts if c < len(rows))})
    refresher = RollupRefresher("plain")
    for lo, hi in itertools.pairwise(bounds):
        _write(pool, rows[lo:hi])  # arrival order is the list's, not time order
        if refresh_between:
            with pool.connection() as conn:
                refresher.run_once(conn, limit=2)  # partial catch-ups between batches
    _catch_up(pool)
    _assert_rollups_equal(pool, rows)


# -- the maintenance job (plain) ----------------------------------------------------------


def _settings(**fields: Any) -> StoreSettings:
    return StoreSettings(database_url="postgresql://unused", **fields)


def _partitions(pool: Pool) -> list[str]:
    with pool.connection() as conn:
        rows = conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'telemetry.readings'::regclass ORDER BY 1"
        ).fetchall()
    return [r[0] for r in rows]


def test_maintenance_catches_up_keeps_partitions_ahead_and_drops_what_retention_ends(
    pool: Pool,
) -> None:
    _reset(pool)
    now = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    store = TelemetryStore(pool, past_days=400)
    old, kept = now - timedelta(days=11), now - timedelta(days=9)
    rows = [(old, 3, 1, 1.0, 0), (kept, 3, 1, 2.0, 0), (now, 3, 1, 3.0, 0)]
    store.ensure_partitions({r[0].date() for r in rows}, today=now.date())
    with pool.connection() as conn, conn.transaction():
        store.write_readings(conn, rows)
    job = StoreMaintenance(
        pool,
        _settings(
            telemetry_raw_retention_days=10,
            telemetry_5m_retention_days=10,
            telemetry_1h_retention_days=10,
        ),
        store=store,
    )
    assert job.run_once(now)
    # Raw: the day 11 days back (11-22) is gone, 9 days back kept (10 days: from 11-23
    # on); partitions for today and the two days ahead exist. (Other tests of the module
    # left partitions of later days.)
    days = {p for p in _partitions(pool) if p != "readings_default"}
    assert min(days) >= "readings_20261123"  # 11-22 dropped
    assert {"readings_20261124", "readings_20261203", "readings_20261204"} <= days
    assert "readings_20261205" in days
    # Rollups were made of all three readings first, then those older than 10 days
    # deleted from 5 min and 1 h; the day level keeps everything.
    five, hour, day = (_table(pool, t) for t in ("rollup_5m", "rollup_1h", "rollup_1d"))
    assert sorted(k[2] for k in five) == [datetime(2026, 11, 24, 12, tzinfo=UTC), now]
    assert sorted(k[2] for k in hour) == [datetime(2026, 11, 24, 12, tzinfo=UTC), now]
    assert len(day) == 3
    assert job.stats.partitions_dropped == 1
    assert job.stats.rollup_rows_deleted == 2
    assert job.stats.dirty_rows == 3  # three days of one device


def test_a_second_runner_skips_while_one_holds_the_lock(pool: Pool) -> None:
    _reset(pool)
    job = StoreMaintenance(pool, _settings())
    with pool.connection() as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (MAINTENANCE_LOCK,))
        try:
            assert job.run_once() is False
        finally:
            holder.execute("SELECT pg_advisory_unlock(%s)", (MAINTENANCE_LOCK,))
    assert job.stats.skipped_locked == 1
    assert job.run_once() is True
