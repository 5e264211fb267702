"""Rollups (issue 14) on both backends — plain on the real PostgreSQL server, timescale
on PGlite with TimescaleDB — through the same code: what the write path stores is marked
dirty in its transaction, and the refresher brings the 5 min, 1 h and 1 day rollups
(tables, or continuous aggregates) to exactly the aggregates of the raw rows — computed
here in Python from the rows the test wrote, not by the code under test — live data and
late data alike."""

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

from cloud.migrate import Backend, schema_backend
from cloud.telemetry import TelemetryStore
from cloud.telemetry.rollups import RollupRefresher
from cloud.telemetry.store import store_backend
from tests.integration.telemetry_world import Pool, Row, Store, backend_store

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 30, 22, 0, tzinfo=UTC)
STEPS = {
    "rollup_5m": timedelta(minutes=5),
    "rollup_1h": timedelta(hours=1),
    "rollup_1d": timedelta(days=1),
}
ORIGIN = datetime(2000, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module", params=["plain", "timescale"])
def store(request: pytest.FixtureRequest, postgres_server_url: str) -> Iterator[Store]:
    yield from backend_store(request, postgres_server_url)


@pytest.fixture
def pool(store: Store) -> Pool:
    return store.pool


def _reset(pool: Pool) -> None:
    Store(pool, _backend(pool)).reset()


def _write(pool: Pool, rows: Sequence[Row]) -> None:
    Store(pool, _backend(pool)).write(rows, T0.date())


def _backend(pool: Pool) -> Backend:
    with pool.connection() as conn:
        return store_backend(conn)


def _catch_up(pool: Pool) -> None:
    Store(pool, _backend(pool)).catch_up()


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


def test_the_backend_is_the_servers(store: Store) -> None:
    # Asked for explicitly here; migrate()'s own choice is tested in test_cloud_migrate.
    with store.pool.connection() as conn:
        assert schema_backend(conn, "telemetry") == store.backend
        hypertable = conn.execute(
            "SELECT to_regclass('timescaledb_information.hypertables') IS NOT NULL"
        ).fetchone()
    assert hypertable == (store.backend == "timescale",)


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
    backend = _backend(pool)
    with pool.connection() as conn:
        report = RollupRefresher(backend).run_once(conn)
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


def test_an_uncommitted_batch_leaves_no_dirty_row(store: Store) -> None:
    pool = store.pool
    _reset(pool)
    store = TelemetryStore(pool, write_mode=store.write_mode)
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
    refresher = RollupRefresher(_backend(pool))
    for lo, hi in itertools.pairwise(bounds):
        _write(pool, rows[lo:hi])  # arrival order is the list's, not time order
        if refresh_between:
            with pool.connection() as conn:
                refresher.run_once(conn, limit=2)  # partial catch-ups between batches
    _catch_up(pool)
    _assert_rollups_equal(pool, rows)
