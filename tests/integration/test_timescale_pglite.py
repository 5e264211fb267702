"""The TimescaleDB harness gives real TimescaleDB semantics through psycopg: hypertables
with 1-day chunks, a continuous aggregate refreshed on demand, compression and retention
policies run as jobs. Every expected figure is computed by hand below."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from potr.servers.pglite import PGliteError, PrivatePGlite

pytestmark = [pytest.mark.integration, pytest.mark.timescale]

SCHEMA = "pglite_check"

#: (day offset from today 00:00 UTC, minute of that day, device, value). Today's rows
#: arrive out of time order, so ``last(value, ts)`` must sort by ts, not by arrival.
ROWS = [
    (0, 9, 1, 3.0),
    (0, 0, 1, 1.0),
    (0, 1, 1, 2.0),
    (0, 2, 1, 3.0),
    (0, 3, 1, 4.0),
    (0, 4, 1, 10.0),
    (0, 5, 1, 6.0),
    (0, 7, 1, 9.0),
    (0, 2, 2, 50.0),
    (-2, 30, 1, 7.0),
    (-4, 30, 1, 8.0),
    (-5, 30, 1, 9.0),
    (-10, 30, 1, 10.0),
    (-11, 30, 1, 11.0),
]
#: Days holding rows: one 1-day chunk each.
DAYS = [-11, -10, -5, -4, -2, 0]


def _pglite(url: str) -> psycopg.Connection[Any]:
    # One autocommit connection, no prepared statements: the harness's rules.
    return psycopg.connect(url, autocommit=True, prepare_threshold=None, connect_timeout=5)


@pytest.fixture
def conn(timescale_database_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A hypertable ``readings`` (1-day chunks) holding :data:`ROWS`."""
    with _pglite(timescale_database_url) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(SCHEMA)))
        conn.execute(
            f"CREATE TABLE {SCHEMA}.readings (ts timestamptz NOT NULL,"
            " device_id int NOT NULL, value float8 NOT NULL)"
        )
        conn.execute(
            f"SELECT create_hypertable('{SCHEMA}.readings', by_range('ts', interval '1 day'))"
        )
        today = _today(conn)
        values = sql.SQL(", ").join(sql.SQL("(%s, %s, %s)") for _ in ROWS)
        params = [
            p
            for day, minute, device, value in ROWS
            for p in (today + timedelta(days=day, minutes=minute), device, value)
        ]
        conn.execute(
            sql.SQL("INSERT INTO {}.readings (ts, device_id, value) VALUES ").format(
                sql.Identifier(SCHEMA)
            )
            + values,
            params,
        )
        yield conn


def _today(conn: psycopg.Connection[Any]) -> datetime:
    # The server's clock: retention and compression count from its now().
    row = conn.execute("SELECT date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'")
    found = row.fetchone()
    assert found is not None
    return found[0]  # type: ignore[no-any-return]


def _chunks(conn: psycopg.Connection[Any]) -> dict[int, bool]:
    """Day offset of each chunk of ``readings`` → whether it is compressed."""
    today = _today(conn)
    rows = conn.execute(
        "SELECT range_start, is_compressed FROM timescaledb_information.chunks"
        " WHERE hypertable_schema = %s AND hypertable_name = 'readings'",
        (SCHEMA,),
    ).fetchall()
    return {(start - today).days: compressed for start, compressed in rows}


def _run_job(conn: psycopg.Connection[Any], job_id: int) -> None:
    # No background scheduler in PGlite: a policy runs when called.
    conn.execute(sql.SQL("CALL run_job({})").format(sql.Literal(job_id)))


def test_rows_land_in_one_day_chunks(conn: psycopg.Connection[Any]) -> None:
    interval = conn.execute(
        "SELECT time_interval FROM timescaledb_information.dimensions"
        " WHERE hypertable_schema = %s AND hypertable_name = 'readings'",
        (SCHEMA,),
    ).fetchone()
    assert interval == (timedelta(days=1),)
    assert sorted(_chunks(conn)) == DAYS
    assert conn.execute(f"SELECT count(*) FROM {SCHEMA}.readings").fetchone() == (14,)


def test_continuous_aggregate_refresh_gives_hand_computed_buckets(
    conn: psycopg.Connection[Any],
) -> None:
    conn.execute(
        f"CREATE MATERIALIZED VIEW {SCHEMA}.readings_5m"
        " WITH (timescaledb.continuous, timescaledb.materialized_only = true) AS"
        " SELECT time_bucket('5 minutes', ts) AS bucket, device_id, avg(value) AS avg,"
        " min(value) AS min, max(value) AS max, count(*) AS n, last(value, ts) AS last"
        f" FROM {SCHEMA}.readings GROUP BY bucket, device_id WITH NO DATA"
    )
    query = (
        f"SELECT bucket, device_id, avg, min, max, n, last FROM {SCHEMA}.readings_5m"
        " WHERE bucket >= %s ORDER BY bucket, device_id"
    )
    today = _today(conn)
    assert conn.execute(query, (today,)).fetchall() == []  # nothing until refreshed

    conn.execute(f"CALL refresh_continuous_aggregate('{SCHEMA}.readings_5m', NULL, NULL)")

    five = timedelta(minutes=5)
    assert conn.execute(query, (today,)).fetchall() == [
        # 00:00-00:05 device 1: 1, 2, 3, 4, 10 → avg 20/5 = 4; last at 00:04 is 10
        (today, 1, 4.0, 1.0, 10.0, 5, 10.0),
        # 00:00-00:05 device 2: one row
        (today, 2, 50.0, 50.0, 50.0, 1, 50.0),
        # 00:05-00:10 device 1: 6 (00:05), 9 (00:07), 3 (00:09, inserted first)
        # → avg 18/3 = 6; last is 00:09's 3, though 9 is the max
        (today + five, 1, 6.0, 3.0, 9.0, 3, 3.0),
    ]
    buckets = conn.execute(f"SELECT count(*) FROM {SCHEMA}.readings_5m").fetchone()
    assert buckets == (3 + 5,)  # today's three, one per earlier day


def test_compression_policy_run_as_a_job_compresses_chunks_older_than_its_limit(
    conn: psycopg.Connection[Any],
) -> None:
    conn.execute(
        f"ALTER TABLE {SCHEMA}.readings SET (timescaledb.compress,"
        " timescaledb.compress_segmentby = 'device_id', timescaledb.compress_orderby = 'ts')"
    )
    added = conn.execute(
        f"SELECT add_compression_policy('{SCHEMA}.readings', compress_after => interval '3 days')"
    ).fetchone()
    assert added is not None
    assert not any(_chunks(conn).values())

    _run_job(conn, added[0])

    # A chunk is compressed once it ends 3 days before now: days -11, -10, -5, -4
    # (day -4 ends at today-3d); day -2 ends at today-1d, today's is open.
    assert _chunks(conn) == {-11: True, -10: True, -5: True, -4: True, -2: False, 0: False}
    stats = conn.execute(
        "SELECT compression_status, count(*) FROM chunk_compression_stats(%s)"
        " GROUP BY 1 ORDER BY 1",
        (f"{SCHEMA}.readings",),
    ).fetchall()
    assert stats == [("Compressed", 4), ("Uncompressed", 2)]
    # Compressed rows still read back: 14 rows, values summing to 133 (hand-added).
    total = conn.execute(f"SELECT count(*), sum(value) FROM {SCHEMA}.readings").fetchone()
    assert total == (14, 133.0)


def test_retention_policy_run_as_a_job_drops_chunks_older_than_its_limit(
    conn: psycopg.Connection[Any],
) -> None:
    added = conn.execute(
        f"SELECT add_retention_policy('{SCHEMA}.readings', drop_after => interval '7 days')"
    ).fetchone()
    assert added is not None
    job = conn.execute(
        "SELECT proc_name FROM timescaledb_information.jobs WHERE job_id = %s", (added[0],)
    ).fetchone()
    assert job == ("policy_retention",)

    _run_job(conn, added[0])

    # Chunks ending more than 7 days before now go: days -11 and -10 (their rows 11, 10).
    assert sorted(_chunks(conn)) == [-5, -4, -2, 0]
    total = conn.execute(f"SELECT count(*), sum(value) FROM {SCHEMA}.readings").fetchone()
    assert total == (12, 133.0 - 11.0 - 10.0)


def test_reset_returns_the_server_to_its_state_at_start(pglite_server: PrivatePGlite) -> None:
    with _pglite(pglite_server.url) as conn:
        conn.execute("CREATE SCHEMA left_behind")
        conn.execute("CREATE TABLE left_behind.r (ts timestamptz NOT NULL, v float8)")
        conn.execute("SELECT create_hypertable('left_behind.r', by_range('ts'))")
        conn.execute("SELECT add_retention_policy('left_behind.r', interval '7 days')")
        conn.execute("CREATE TABLE public.p (ts timestamptz NOT NULL, v float8)")
        conn.execute("SELECT create_hypertable('public.p', by_range('ts'))")
        conn.execute(
            "CREATE MATERIALIZED VIEW public.p_5m WITH (timescaledb.continuous) AS"
            " SELECT time_bucket('5 minutes', ts) AS b, avg(v) FROM public.p GROUP BY b"
            " WITH NO DATA"
        )
        conn.execute("SET search_path TO left_behind")
    with psycopg.connect(pglite_server.url, autocommit=True) as careless:
        for _ in range(6):  # psycopg prepares a statement from its 5th run on
            careless.execute("SELECT 1 + %s", (1,))

    pglite_server.reset()

    # A second careless connection would collide with the first's _pg3_0 without reset.
    with psycopg.connect(pglite_server.url, autocommit=True) as careless:
        for _ in range(6):
            careless.execute("SELECT 1 + %s", (1,))
    with _pglite(pglite_server.url) as conn:
        assert conn.execute("SHOW search_path").fetchone() == ("public",)
        found = conn.execute(
            "SELECT (SELECT count(*) FROM pg_namespace WHERE nspname = 'left_behind'),"
            " (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            "  WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v', 'm')),"
            " (SELECT count(*) FROM timescaledb_information.hypertables),"
            " (SELECT count(*) FROM timescaledb_information.jobs WHERE job_id >= 1000)"
        ).fetchone()
        assert found == (0, 0, 0, 0)
    pglite_server.reset()  # the careless connection's statement, again


def test_a_missing_install_names_the_bootstrap_command(tmp_path: Path) -> None:
    with pytest.raises(PGliteError, match=r"scripts/bootstrap\.sh test"):
        PrivatePGlite(directory=tmp_path).start()
