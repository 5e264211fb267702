"""The query API's SQL (``cloud.telemetry.queries``) gives the same answers on both
backends — plain PostgreSQL (rollup tables) and TimescaleDB on PGlite (continuous
aggregates) — for one hand-made hour: raw pages, 5 min and 1 h buckets, a site's and the
fleet's newest values, reach by region and by gateway. The HTTP routes over it are
tested in ``test_telemetry_queries`` (plain)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from cloud.scope import GatewayReach
from cloud.telemetry.models import ReadingSeries, RollupSeries
from cloud.telemetry.queries import fleet_latest, series, site_latest
from cloud.telemetry.resolution import decode_cursor, level_named
from contracts.metrics import BY_NAME
from contracts.topics import Region
from tests.integration.telemetry_world import Pool, Store, backend_store

pytestmark = pytest.mark.integration

PV = BY_NAME["pv_w"]
#: Recent (retention and the newest-value window count from now), a whole hour.
T0 = (datetime.now(UTC) - timedelta(hours=5)).replace(minute=0, second=0, microsecond=0)
SINCE = T0 - timedelta(hours=1)
MIN = timedelta(minutes=1)
AU = GatewayReach(Region.AU)


@pytest.fixture(scope="module", params=["plain", "timescale"])
def pool(request: pytest.FixtureRequest, postgres_server_url: str) -> Iterator[Pool]:
    for store in backend_store(request, postgres_server_url):
        _fill(store)
        yield store.pool


def _fill(store: Store) -> None:
    with store.pool.connection() as conn:
        conn.execute(
            "INSERT INTO ingest.gateways (gateway_id, region, time_zone, updated_at, site_id)"
            " VALUES ('gw-s', 'au', 'UTC', now(), 7), ('gw-e', 'es', 'UTC', now(), 8)"
        )
        conn.execute(
            "INSERT INTO ingest.device_keys (gateway_id, local_id, device_id)"
            " VALUES ('gw-s', 'SN-1', 101), ('gw-s', 'SN-2', 105), ('gw-e', 'SN-3', 103)"
        )
    # 101: pv_w = i at T0 + 10 i min (i = 0..5) and a bad 1000 at T0 + 1 min;
    # 105: 4 and 5 (suspect); 103 (es): 8.
    rows = [(T0 + 10 * i * MIN, 101, PV.id, float(i), 0) for i in range(6)]
    rows += [(T0 + MIN, 101, PV.id, 1000.0, 2)]
    rows += [(T0, 105, PV.id, 4.0, 0), (T0 + 30 * MIN, 105, PV.id, 5.0, 1)]
    rows += [(T0, 103, PV.id, 8.0, 0)]
    store.write(rows, datetime.now(UTC).date())
    store.catch_up()


def test_raw_pages_and_buckets_are_the_hand_made_hours(pool: Pool) -> None:
    window = (T0, T0 + timedelta(hours=1))
    with pool.connection() as conn:
        first = series(conn, 101, PV, window, None, limit=4)
        assert first.next_cursor is not None
        after = decode_cursor(first.next_cursor, None)
        rest = series(conn, 101, PV, window, None, limit=4, after=after)
        five = series(conn, 101, PV, window, level_named("5m"), limit=100)
        hour = series(conn, 101, PV, window, level_named("1h"), limit=100)
    assert isinstance(first, ReadingSeries)
    assert isinstance(rest, ReadingSeries)
    assert [p.value for p in first.points + rest.points] == [0.0, 1000.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert (first.truncated, rest.truncated, rest.next_cursor) == (True, False, None)
    assert isinstance(five, RollupSeries)
    assert isinstance(hour, RollupSeries)
    # One good sample per 10 minutes: six 5-min buckets; the bad one is in none.
    assert [(b.bucket, b.avg, b.count) for b in five.buckets] == [
        (T0 + 10 * i * MIN, float(i), 1) for i in range(6)
    ]
    b = hour.buckets[0]
    assert (b.bucket, b.avg, b.min, b.max, b.last, b.last_ts, b.count) == (
        T0,
        2.5,
        0.0,
        5.0,
        5.0,
        T0 + 50 * MIN,
        6,
    )


def test_newest_values_of_a_site_and_of_the_fleet_in_reach(pool: Pool) -> None:
    with pool.connection() as conn:
        site = site_latest(conn, 7, AU, SINCE)
        fleet, more = fleet_latest(conn, PV, AU, SINCE, after=0, limit=10)
        customer, _ = fleet_latest(
            conn, PV, GatewayReach(Region.AU, ("gw-x",)), SINCE, after=0, limit=10
        )
        es_site = site_latest(conn, 8, AU, SINCE)
        page, next_after = fleet_latest(conn, PV, GatewayReach(), SINCE, after=0, limit=2)
    assert [(v.device_id, v.metric, v.ts, v.value, v.quality) for v in site] == [
        (101, "pv_w", T0 + 50 * MIN, 5.0, "good"),
        (105, "pv_w", T0 + 30 * MIN, 5.0, "suspect"),
    ]
    assert ([(v.device_id, v.value) for v in fleet], more) == ([(101, 5.0), (105, 5.0)], None)
    assert customer == []
    assert es_site == []
    # Every region: 101, 103, 105 by id; a page of two continues after 103.
    assert ([v.device_id for v in page], next_after) == ([101, 103], 103)
