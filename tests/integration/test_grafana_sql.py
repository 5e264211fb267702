"""Every SQL of the provisioned dashboards (panel targets and variable queries) runs on
a freshly migrated schema of each backend — plain PostgreSQL (rollup tables) and
TimescaleDB on the session's PGlite (continuous aggregates) — expanded as Grafana
expands it, as the read-only role of ``deploy/grafana/reader.sql``, so a renamed column,
a relation the role may not read, one only a backend has, or a macro Grafana would not
expand fails here. Every query answers the same rows on both, and the key panels answer
on each what the rows put in make by hand.

The rows: region au, site 10 behind ``au-gw-1`` (inverter ``inv1`` = device 5, meter
``meter1`` = device 9) and site 11 behind ``au-gw-2`` (inverter = device 13), both in
Australia/Sydney (UTC+11 in March). Readings every minute 00:00-01:59 UTC on
2024-03-04: device 5 pv_w 1000 W (1200 at 01:59) and pv_wh from 10 000 Wh +100 per
minute; device 13 pv_w 500 W (300 at 01:59). Device 5's pv_wh was also read at
01:00 (5000) and 01:15 (5600) UTC on 2024-03-03. They go in through the store's write
path (multi-row INSERT on PGlite, which has no COPY FROM STDIN) and the
maintenance job's rollup/energy refresher."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from psycopg.errors import InsufficientPrivilege

from cloud.adapters.postgres import Connection
from cloud.ingest.deadletters import dead_letter_row
from cloud.ingest.repository import insert_dead_letters
from cloud.migrate import Backend
from cloud.telemetry import TelemetryStore
from contracts.metrics import BY_NAME
from tests.grafana import READER_SQL, Query, all_queries, dashboard, expand, variables
from tests.integration.telemetry_world import Pool, backend_store

pytestmark = pytest.mark.integration

DAY = datetime(2024, 3, 4, tzinfo=UTC)
#: The range the panels are asked about: 00:00-02:00 UTC on 2024-03-04 (5-minute rollups).
START, END = DAY, DAY + timedelta(hours=2)
PV_W, PV_WH = BY_NAME["pv_w"].id, BY_NAME["pv_wh"].id
#: What a user picks: every variable's value for the runs below.
PICKED: dict[str, list[str]] = {
    "region": ["au"],
    "site": ["10"],
    "device": ["5"],
    "metric": [str(PV_W)],
    "counter": [str(PV_WH)],
}


def _rows() -> list[tuple[datetime, int, int, float, int]]:
    rows = []
    for minute in range(120):
        ts = DAY + timedelta(minutes=minute)
        last = minute == 119
        rows.append((ts, 5, PV_W, 1200.0 if last else 1000.0, 0))
        rows.append((ts, 5, PV_WH, 10_000.0 + 100 * minute, 0))
        rows.append((ts, 13, PV_W, 300.0 if last else 500.0, 0))
    day_before = DAY - timedelta(days=1)
    rows.append((day_before + timedelta(hours=1), 5, PV_WH, 5000.0, 0))
    rows.append((day_before + timedelta(hours=1, minutes=15), 5, PV_WH, 5600.0, 0))
    return rows


def _ingest_rows(conn: Connection[Any]) -> None:
    conn.execute(
        "INSERT INTO ingest.gateways (gateway_id, region, time_zone, updated_at, site_id)"
        " VALUES ('au-gw-1', 'au', 'Australia/Sydney', now(), 10),"
        " ('au-gw-2', 'au', 'Australia/Sydney', now(), 11)"
    )
    conn.execute(
        "INSERT INTO ingest.device_keys (gateway_id, local_id, device_id) VALUES"
        " ('au-gw-1', 'inv1', 5), ('au-gw-1', 'meter1', 9), ('au-gw-2', 'inv1', 13)"
    )
    # inv1 of au-gw-1 never announced: online. bat1 has no key yet (never sent data).
    conn.execute(
        "INSERT INTO ingest.presence (kind, key, online, status) VALUES"
        " ('device', 'au-gw-1/meter1', true, 'faulty'),"
        " ('device', 'au-gw-2/inv1', true, 'asleep'),"
        " ('device', 'au-gw-2/bat1', false, 'unreachable'),"
        " ('gateway', 'au-gw-2', false, 'offline')"
    )
    conn.execute(
        "INSERT INTO ingest.sessions (gateway_id, region, poll_interval_s) VALUES"
        " ('au-gw-1', 'au', 60), ('au-gw-2', 'au', 30)"
    )
    stream = uuid4()
    conn.execute(
        "INSERT INTO ingest.streams (stream_id, gateway_id) VALUES (%s, 'au-gw-1')", (stream,)
    )
    conn.execute(
        "INSERT INTO ingest.gaps (stream_id, from_seq, to_seq, opened_at, closed_at) VALUES"
        " (%(s)s, 10, 19, %(t)s, NULL), (%(s)s, 40, 44, %(t)s, NULL),"
        " (%(s)s, 3, 5, %(t)s, %(t)s)",
        {"s": stream, "t": DAY + timedelta(minutes=30)},
    )
    at = DAY + timedelta(minutes=10)
    letters = [
        dead_letter_row(at, "potr/v1/au/x/data", b"a", "unknown gateway", prefix_bytes=64),
        dead_letter_row(at, "potr/v1/au/x/data", b"a", "unknown gateway", prefix_bytes=64),
        dead_letter_row(at, "potr/v1/au/y/data", b"b", "unknown gateway", prefix_bytes=64),
        dead_letter_row(at, "potr/v1/au/z/data", b"c", "bad payload", prefix_bytes=64),
    ]
    for row in letters:  # one at a time: the second is a repeat of the first
        insert_dead_letters(conn, [row])


def _world(
    request: pytest.FixtureRequest, postgres_server_url: str, backend: Backend
) -> Iterator[Pool]:
    """A schema migrated for ``backend`` holding the rows above, rollups and energy
    caught up by the maintenance job's refresher, the reader role granted on it."""
    for store in backend_store(request, postgres_server_url, backend):
        TelemetryStore(store.pool, backend=backend).sync_catalog()
        store.write(_rows(), today=DAY.date())
        with store.pool.connection() as conn, conn.transaction():
            _ingest_rows(conn)
        store.catch_up(now=END)
        with store.pool.connection() as conn, conn.transaction():
            conn.execute(READER_SQL.read_text(encoding="utf-8"))
        yield store.pool


@pytest.fixture(scope="module")
def plain(request: pytest.FixtureRequest, postgres_server_url: str) -> Iterator[Pool]:
    """The world on plain PostgreSQL (a private database)."""
    yield from _world(request, postgres_server_url, "plain")


@pytest.fixture(scope="module")
def timescale(request: pytest.FixtureRequest, postgres_server_url: str) -> Iterator[Pool]:
    """The world on TimescaleDB (the session's PGlite, this module's until its end)."""
    yield from _world(request, postgres_server_url, "timescale")


@pytest.fixture(params=["plain", "timescale"])
def reader(request: pytest.FixtureRequest) -> Pool:
    """The world on each backend: the hand-made figures below hold on both."""
    pool: Pool = request.getfixturevalue(request.param)
    return pool


def run(pool: Pool, query: Query, **given: Any) -> list[tuple[Any, ...]]:
    """``query`` expanded for the range (default START..END) and PICKED, run as the
    reader role; its rows."""
    board = dashboard(query.board)
    multi = {v["name"]: bool(v["multi"] or v["includeAll"]) for v in variables(board)}
    sql = expand(
        query.sql,
        start=given.get("start", START),
        end=given.get("end", END),
        interval=given.get("interval", "1m"),
        values={**PICKED, **given.get("values", {})},
        multi=multi,
    )
    # SET LOCAL and a rollback: on PGlite every connection shares one session, so a
    # plain SET ROLE would outlive this query.
    with pool.connection() as conn, conn.transaction(force_rollback=True):
        conn.execute("SET LOCAL ROLE potr_grafana_read")
        return conn.execute(sql).fetchall()


QUERIES = {q.id: q for q in all_queries()}


@pytest.mark.parametrize("query", list(QUERIES.values()), ids=list(QUERIES))
def test_every_query_runs_as_the_reader_alike_on_both_backends(
    plain: Pool, timescale: Pool, query: Query
) -> None:
    for end in (END, DAY + timedelta(days=3)):  # both rollup levels' branches
        assert run(timescale, query, end=end) == run(plain, query, end=end)


def one(board: str, where: str) -> Query:
    return QUERIES[f"{board}: {where}"]


def test_devices_by_state(reader: Pool) -> None:
    # online: au-gw-1/inv1 (never announced); faulty meter1; asleep au-gw-2/inv1;
    # offline: au-gw-2/bat1 (unreachable, no key yet).
    totals = run(reader, one("fleet-overview", "panel Devices by state / A"))
    assert totals == [(1, 1, 1, 1)]
    per_region = run(reader, one("fleet-overview", "panel Devices by state per region / A"))
    assert per_region == [("au", 1, 1, 1, 1)]
    assert run(reader, one("fleet-overview", "panel Devices by state / A"),
               values={"region": ["us"]}) == [(0, 0, 0, 0)]  # fmt: skip


def test_fleet_power_is_the_sum_of_each_devices_latest_pv_w(reader: Pool) -> None:
    [(watts,)] = run(reader, one("fleet-overview", "panel Fleet PV power / A"))
    assert watts == 1200 + 300
    # An hour after the last reading nothing is current.
    later = run(reader, one("fleet-overview", "panel Fleet PV power / A"),
                end=END + timedelta(hours=1))  # fmt: skip
    assert later == [(0,)]


def test_fleet_power_curve_sums_the_devices_per_bucket(reader: Pool) -> None:
    curve = one("fleet-overview", "panel Fleet PV power curve / A")
    points = run(reader, curve)
    assert len(points) == 24  # 00:00 .. 01:55, 5-minute buckets
    assert points[0] == (DAY, "au", 1000 + 500)
    # 01:55 bucket: device 5 (4 * 1000 + 1200) / 5, device 13 (4 * 500 + 300) / 5.
    assert points[-1][0] == DAY + timedelta(hours=1, minutes=55)
    assert points[-1][2] == pytest.approx(1040 + 460)


def test_energy_today_is_the_sites_local_day(reader: Pool) -> None:
    # Local day 2024-03-04 in Sydney = 2024-03-03 13:00Z .. 2024-03-04 13:00Z: the gap
    # pair 03-03 01:15Z → 03-04 00:00Z (10 000 - 5600 Wh) ends in it, then 119 * 100 Wh.
    [(kwh,)] = run(reader, one("fleet-overview", "panel PV energy today / A"))
    assert float(kwh) == (10_000 - 5_600 + 119 * 100) / 1000  # mWh / 1e6: exact


def test_a_sites_energy_per_local_day(reader: Pool) -> None:
    rows = run(
        reader,
        one("site-detail", "panel Energy per day / A"),
        start=DAY - timedelta(days=2),
    )
    sydney_midnight = timedelta(hours=11)  # UTC+11 (AEDT)
    assert [(r[0], r[1], float(r[2])) for r in rows] == [
        (DAY - timedelta(days=1) - sydney_midnight, "pv_wh", 0.6),  # 5600 - 5000 Wh
        (DAY - sydney_midnight, "pv_wh", 16.3),  # as energy today above
    ]
    other_site = run(
        reader,
        one("site-detail", "panel Energy per day / A"),
        start=DAY - timedelta(days=2),
        values={"site": ["11"]},
    )
    assert other_site == []


def test_the_power_curve_uses_5_minute_then_hourly_rollups(reader: Pool) -> None:
    query = one("site-detail", "panel Power curve / A")
    five = run(reader, query)
    assert [r[0] for r in five] == [DAY + timedelta(minutes=5 * i) for i in range(24)]
    assert {r[1] for r in five} == {"au-gw-1/inv1 pv_w"}
    assert five[-1][2] == pytest.approx((4 * 1000 + 1200) / 5)
    hourly = run(reader, query, end=DAY + timedelta(days=3))
    assert [r[0] for r in hourly] == [DAY, DAY + timedelta(hours=1)]
    assert hourly[-1][2] == pytest.approx((59 * 1000 + 1200) / 60)


def test_latest_values_of_the_sites_devices(reader: Pool) -> None:
    rows = run(reader, one("site-detail", "panel Latest values / A"))
    last = DAY + timedelta(minutes=119)
    assert rows == [
        ("au-gw-1/inv1", "pv_w", 1200.0, "W", last),
        ("au-gw-1/inv1", "pv_wh", 10_000.0 + 119 * 100, "Wh", last),
    ]


def test_variables_offer_what_is_there(reader: Pool) -> None:
    def values(board: str, name: str) -> list[tuple[Any, ...]]:
        return run(reader, one(board, f"variable {name}"))

    assert values("site-detail", "region") == [("au",)]
    assert values("site-detail", "site") == [(10,), (11,)]
    assert values("site-detail", "device") == [("au-gw-1/inv1", 5), ("au-gw-1/meter1", 9)]
    assert (BY_NAME["pv_w"].name, PV_W) in values("site-detail", "metric")
    assert ("pv_wh", PV_WH) in values("site-detail", "counter")


def test_ingest_health(reader: Pool) -> None:
    rpm = run(reader, one("ingest-health", "panel Readings per minute / A"))
    # Per 5 minutes: device 5 pv_w + pv_wh, device 13 pv_w: 15 readings.
    assert len(rpm) == 24
    assert {r[1] for r in rpm} == {3}
    dead = run(reader, one("ingest-health", "panel Dead letters by reason / A"))
    assert [(r[0], r[1], r[2]) for r in dead] == [
        ("unknown gateway", 2, 3),
        ("bad payload", 1, 1),
    ]
    series = run(reader, one("ingest-health", "panel Dead letters per reason / A"))
    at = DAY + timedelta(minutes=10)  # the 1-minute bin of their first receipt
    assert sorted(series) == [(at, "bad payload", 1), (at, "unknown gateway", 2)]
    gaps = run(reader, one("ingest-health", "panel Open gaps / A"))
    assert gaps == [("au-gw-1", 2, 10 + 5, DAY + timedelta(minutes=30))]
    complete = run(reader, one("ingest-health", "panel Completeness / A"))
    # device: stored / expected over two hours — poll 60 s: 120; poll 30 s: 240.
    assert [(r[0], r[2], r[3], float(r[4])) for r in complete] == [
        ("au-gw-1/meter1", 0, 120, 0.0),
        ("au-gw-2/inv1", 120, 240, 50.0),
        ("au-gw-1/inv1", 120, 120, 100.0),
    ]


def test_the_reader_may_not_read_raw_readings(reader: Pool) -> None:
    # The role really is in force on both backends (PGlite's single user included).
    raw = Query("site-detail", "raw", "SELECT count(*) FROM telemetry.readings")
    with pytest.raises(InsufficientPrivilege):
        run(reader, raw)
