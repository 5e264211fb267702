"""The telemetry query API (issue 14) over the real PostgreSQL server: readings of a device
or a site at every resolution, cursor pages, the newest values of a site and of the
fleet — each through the portal as ``potr api`` builds it, scoped by the caller.

The fleet: account A's site S in au with one gateway and two devices (D1, D2), account
B's site O in au (D3), and a site in es (D4). Each device's key comes from ingest's
pipeline (one ``grid_hz`` reading at TK); the series under test are written through
``TelemetryStore`` and the rollups refreshed by ``RollupRefresher("plain")``. Every
expected figure is worked out here from the rows written.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from fastapi.testclient import TestClient

from cloud.adapters.mqtt import InboundMessage
from cloud.adapters.postgres import Connection, ConnectionPool, create_pool
from cloud.bootstrap import create_api
from cloud.ingest import IngestPipeline
from cloud.migrate import migrate
from cloud.registry import GatewayIn, RegistryService, SiteIn
from cloud.telemetry import TelemetryStore
from cloud.telemetry.rollups import RollupRefresher
from contracts.metrics import BY_NAME
from contracts.timeutil import to_wire
from contracts.topics import Region
from tests.api_tokens import api_settings, bearer
from tests.integration.api_world import private_database
from tests.integration.registry_events import deliver_gateway_events

pytestmark = pytest.mark.integration

Pool = ConnectionPool[Connection[Any]]
NOW = datetime.now(UTC)
#: A UTC day start two to three days ago: the series' first sample.
T0 = (NOW - timedelta(days=2)).replace(hour=0, minute=0, second=0, microsecond=0)
#: The key readings (grid_hz, through ingest).
TK = T0 - timedelta(hours=1)
ACCOUNT_A = "acc_" + "a" * 32
ACCOUNT_B = "acc_" + "b" * 32
PV = BY_NAME["pv_w"].id
PV_WH = BY_NAME["pv_wh"].id
MIN = timedelta(minutes=1)


@dataclass(frozen=True)
class Fleet:
    client: TestClient
    site_s: int
    site_o: int
    site_e: int
    d1: int
    d2: int
    d3: int
    d4: int


def _key_message(region: Region, gateway: str, devices: dict[str, float]) -> InboundMessage:
    payload = orjson.dumps(
        {
            "v": 1,
            "stream_id": str(uuid.uuid4()),
            "seq": 1,
            "readings": [
                {"device": d, "ts": to_wire(TK), "values": {"grid_hz": hz}}
                for d, hz in devices.items()
            ],
        }
    )
    return InboundMessage(
        f"potr/v1/{region.value}/{gateway}/telemetry", payload, 1, 1, datetime.now(UTC)
    )


#: D1: pv_w = i every 10 min for 3 h (i = 0..17), and a bad 1000 at 00:05 (raw only).
D1_ROWS = [(T0 + 10 * i * MIN, float(i), 0) for i in range(18)] + [(T0 + 5 * MIN, 1000.0, 2)]


#: D3's PV counter: +100 Wh every 15 minutes for two hours from T0 (Sydney: 11:00).
D3_ENERGY = [(T0 + 15 * MIN * i, 100.0 * i) for i in range(9)]


def _series_rows(fleet: dict[str, int]) -> list[tuple[datetime, int, int, float, int]]:
    d1, d2, d3, d4 = (fleet[k] for k in ("d1", "d2", "d3", "d4"))
    rows = [(ts, d1, PV, v, q) for ts, v, q in D1_ROWS]
    rows += [
        (NOW - timedelta(days=10), d2, PV, 99.0, 0),  # old: never the newest
        (T0, d2, PV, 4.0, 0),
        (T0 + 30 * MIN, d2, PV, 5.0, 1),  # suspect
        (T0, d3, PV, 7.0, 0),
        (T0, d4, PV, 8.0, 0),
    ]
    rows += [(ts, d3, PV_WH, v, 0) for ts, v in D3_ENERGY]
    return rows


@pytest.fixture(scope="module")
def fleet(postgres_server_url: str) -> Iterator[Fleet]:
    with private_database(postgres_server_url) as url:
        migrate(url)
        pool: Pool = create_pool(url, max_size=4, name="test-telemetry-queries")
        try:
            yield _build(url, pool)
        finally:
            pool.close()


def _build(url: str, pool: Pool) -> Fleet:
    registry = RegistryService(pool)
    sites: dict[str, int] = {}
    gateways: dict[str, str] = {}
    for name, region, account in (
        ("s", Region.AU, ACCOUNT_A),
        ("o", Region.AU, ACCOUNT_B),
        ("e", Region.ES, None),
    ):
        zone = "Australia/Sydney" if region == Region.AU else "Europe/Madrid"
        site = registry.add_site(SiteIn(name=f"q {name}", region=region, time_zone=zone))
        with pool.connection() as conn:
            conn.execute(
                "UPDATE registry.sites SET account_id = %s WHERE id = %s", (account, site.id)
            )
        gateways[name] = f"gw-q{name}-{uuid.uuid4().hex[:6]}"
        registry.add_gateway(GatewayIn(id=gateways[name], site_id=site.id))
        sites[name] = site.id
    deliver_gateway_events(pool)  # ingest learns the gateways and their sites
    store = TelemetryStore(pool)
    IngestPipeline(pool, store).process(
        [
            _key_message(Region.AU, gateways["s"], {"SN-1": 50.0, "SN-2": 49.9}),
            _key_message(Region.AU, gateways["o"], {"SN-3": 50.1}),
            _key_message(Region.ES, gateways["e"], {"SN-4": 50.2}),
        ]
    )
    with pool.connection() as conn:
        keys = dict(conn.execute("SELECT local_id, device_id FROM ingest.device_keys").fetchall())
    ids = {f"d{n}": keys[f"SN-{n}"] for n in range(1, 5)}
    rows = _series_rows(ids)
    store.ensure_partitions({r[0].date() for r in rows})
    with pool.connection() as conn, conn.transaction():
        store.write_readings(conn, rows)
    with pool.connection() as conn:
        RollupRefresher("plain").catch_up(conn)
    client = TestClient(create_api(api_settings(url), pool), raise_server_exceptions=False)
    return Fleet(client, sites["s"], sites["o"], sites["e"], **ids)


def _as(role: str, account: str | None = None, region: Region = Region.AU) -> dict[str, str]:
    return bearer(role, region=region, account_id=account)


def _get(fleet: Fleet, path: str, headers: dict[str, str] | None = None, **params: Any) -> Any:
    answer = fleet.client.get(
        f"/api/v1/au{path}", params=params, headers=headers or _as("operator")
    )
    return answer


def _window(hours: int = 3) -> dict[str, Any]:
    return {"from": to_wire(T0), "to": to_wire(T0 + timedelta(hours=hours))}


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


# -- a device's readings ----------------------------------------------------------------
def test_raw_is_the_default_and_holds_every_sample_bad_ones_too(fleet: Fleet) -> None:
    body = _get(fleet, f"/devices/{fleet.d1}/readings", metric="pv_w", **_window()).json()
    assert (body["resolution"], body["truncated"], body["next_cursor"]) == ("raw", False, None)
    want = sorted(D1_ROWS)
    assert [(_ts(p["ts"]), p["value"]) for p in body["points"]] == [(t, v) for t, v, _ in want]
    bad = body["points"][1]
    assert (_ts(bad["ts"]), bad["value"], bad["quality"]) == (T0 + 5 * MIN, 1000.0, "bad")


def test_hourly_buckets_hold_the_hours_aggregates(fleet: Fleet) -> None:
    body = _get(
        fleet, f"/devices/{fleet.d1}/readings", metric="pv_w", resolution="1h", **_window()
    ).json()
    assert body["resolution"] == "1h"
    assert "points" not in body
    # Hour h holds i = 6h .. 6h+5 (the bad 1000 is in no bucket).
    assert [
        (_ts(b["bucket"]), b["avg"], b["min"], b["max"], b["last"], b["count"])
        for b in body["buckets"]
    ] == [
        (T0, 2.5, 0.0, 5.0, 5.0, 6),
        (T0 + timedelta(hours=1), 8.5, 6.0, 11.0, 11.0, 6),
        (T0 + timedelta(hours=2), 14.5, 12.0, 17.0, 17.0, 6),
    ]
    assert _ts(body["buckets"][2]["last_ts"]) == T0 + 170 * MIN


def test_a_day_bucket_overlapping_the_window_is_whole(fleet: Fleet) -> None:
    """From 01:00 to 02:00, the day bucket starts before the window and counts all 18."""
    params: dict[str, Any] = {
        "from": to_wire(T0 + timedelta(hours=1)),
        "to": to_wire(T0 + timedelta(hours=2)),
    }
    body = _get(
        fleet, f"/devices/{fleet.d1}/readings", metric="pv_w", resolution="1d", **params
    ).json()
    assert [(_ts(b["bucket"]), b["avg"], b["count"]) for b in body["buckets"]] == [(T0, 8.5, 18)]


@pytest.mark.parametrize(
    ("points", "resolution"),
    # Over 3 h: 1 day bucket, 3 hours, 36 five-minute buckets.
    [(1, "1d"), (2, "1h"), (3, "1h"), (4, "5m"), (36, "5m"), (37, "raw")],
)
def test_auto_reads_the_coarsest_level_with_enough_points(
    fleet: Fleet, points: int, resolution: str
) -> None:
    body = _get(
        fleet,
        f"/devices/{fleet.d1}/readings",
        metric="pv_w",
        resolution="auto",
        points=points,
        **_window(),
    ).json()
    assert body["resolution"] == resolution


def test_raw_pages_by_cursor_hold_every_sample_once_in_order(fleet: Fleet) -> None:
    seen: list[datetime] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"metric": "pv_w", "limit": 7, **_window()}
        if cursor:
            params["cursor"] = cursor
        body = _get(fleet, f"/devices/{fleet.d1}/readings", **params).json()
        pages += 1
        seen += [_ts(p["ts"]) for p in body["points"]]
        cursor = body["next_cursor"]
        assert body["truncated"] == (cursor is not None)
        if cursor is None:
            break
    assert pages == 3  # 7 + 7 + 5
    assert seen == sorted(t for t, _, _ in D1_ROWS)


def test_bucket_pages_continue_by_cursor_too(fleet: Fleet) -> None:
    path = f"/devices/{fleet.d1}/readings"
    first = _get(fleet, path, metric="pv_w", resolution="5m", limit=10, **_window()).json()
    rest = _get(
        fleet,
        path,
        metric="pv_w",
        resolution="5m",
        limit=10,
        cursor=first["next_cursor"],
        **_window(),
    ).json()
    # 18 good samples, one per 10 minutes: 18 five-minute buckets, 10 then 8.
    buckets = [_ts(b["bucket"]) for b in first["buckets"] + rest["buckets"]]
    assert buckets == [T0 + 10 * i * MIN for i in range(18)]
    assert (first["truncated"], rest["truncated"], rest["next_cursor"]) == (True, False, None)


@pytest.mark.parametrize(
    "cursor",
    ["x", "bm90LWEtY3Vyc29y", "MWg6MTc3MjMzMDQwMDAwMDAwMA"],  # junk, base64 junk, a 1h cursor
)
def test_a_cursor_not_of_this_query_is_422(fleet: Fleet, cursor: str) -> None:
    answer = _get(fleet, f"/devices/{fleet.d1}/readings", metric="pv_w", cursor=cursor)
    assert answer.status_code == 422, answer.text


def test_a_cursor_over_its_length_or_alphabet_is_422(fleet: Fleet) -> None:
    for cursor in ("A" * 65, "abc=", "a b"):
        answer = _get(fleet, f"/devices/{fleet.d1}/readings", metric="pv_w", cursor=cursor)
        assert answer.status_code == 422, cursor


def test_a_customer_reads_its_devices_only(fleet: Fleet) -> None:
    mine = _as("customer", ACCOUNT_A)
    assert _get(fleet, f"/devices/{fleet.d1}/readings", mine, metric="pv_w").status_code == 200
    assert _get(fleet, f"/devices/{fleet.d3}/readings", mine, metric="pv_w").status_code == 404


# -- a site's readings ------------------------------------------------------------------
def test_a_sites_readings_are_one_series_per_device(fleet: Fleet) -> None:
    body = _get(
        fleet, f"/sites/{fleet.site_s}/readings", metric="pv_w", resolution="1h", **_window()
    ).json()
    assert (body["site_id"], body["metric"], body["unit"], body["resolution"]) == (
        fleet.site_s,
        "pv_w",
        "W",
        "1h",
    )
    by_device = {s["device_id"]: s for s in body["series"]}
    assert [s["device_id"] for s in body["series"]] == sorted([fleet.d1, fleet.d2])
    assert [b["avg"] for b in by_device[fleet.d1]["buckets"]] == [2.5, 8.5, 14.5]
    # D2 in its first hour: 4 (good) and 5 (suspect): avg 4.5, last 5.
    d2 = by_device[fleet.d2]["buckets"]
    assert [(b["avg"], b["min"], b["max"], b["last"], b["count"]) for b in d2] == [
        (4.5, 4.0, 5.0, 5.0, 2)
    ]


def test_a_sites_raw_series_are_truncated_each_with_its_cursor(fleet: Fleet) -> None:
    body = _get(fleet, f"/sites/{fleet.site_s}/readings", metric="pv_w", limit=2, **_window())
    series = {s["device_id"]: s for s in body.json()["series"]}
    assert [p["value"] for p in series[fleet.d1]["points"]] == [0.0, 1000.0]
    assert [p["value"] for p in series[fleet.d2]["points"]] == [4.0, 5.0]
    assert series[fleet.d2]["truncated"] is False
    cursor = series[fleet.d1]["next_cursor"]
    more = _get(
        fleet, f"/devices/{fleet.d1}/readings", metric="pv_w", limit=2, cursor=cursor, **_window()
    ).json()
    assert [p["value"] for p in more["points"]] == [1.0, 2.0]


def test_a_site_out_of_reach_is_404(fleet: Fleet) -> None:
    customer = _as("customer", ACCOUNT_A)
    for site, headers in (
        (fleet.site_o, customer),  # another account's
        (fleet.site_e, _as("operator")),  # another region's, under our URL
        (2_000_000_000, _as("admin")),  # none
    ):
        for path in (f"/sites/{site}/readings", f"/sites/{site}/latest"):
            assert _get(fleet, path, headers, metric="pv_w").status_code == 404, (site, path)
    assert _get(fleet, f"/sites/{fleet.site_s}/latest", customer).status_code == 200


# -- newest values --------------------------------------------------------------------------
def test_a_sites_latest_is_the_newest_sample_per_device_and_metric(fleet: Fleet) -> None:
    body = _get(fleet, f"/sites/{fleet.site_s}/latest").json()
    got = {
        (v["device_id"], v["metric"]): (_ts(v["ts"]), v["value"], v["quality"])
        for v in body["values"]
    }
    assert got == {
        (fleet.d1, "pv_w"): (T0 + 170 * MIN, 17.0, "good"),
        (fleet.d1, "grid_hz"): (TK, 50.0, "good"),
        (fleet.d2, "pv_w"): (T0 + 30 * MIN, 5.0, "suspect"),
        (fleet.d2, "grid_hz"): (TK, 49.9, "good"),
    }
    only_pv = _get(fleet, f"/sites/{fleet.site_s}/latest", metric="pv_w").json()["values"]
    assert {(v["device_id"], v["value"]) for v in only_pv} == {(fleet.d1, 17.0), (fleet.d2, 5.0)}


def test_latest_looks_back_max_age_hours_only(fleet: Fleet) -> None:
    """T0 is 2-3 days ago: one hour back finds nothing; 96 hours finds the pv_w values."""
    assert _get(fleet, f"/sites/{fleet.site_s}/latest", max_age_h=1).json()["values"] == []
    recent = _get(fleet, f"/sites/{fleet.site_s}/latest", metric="pv_w", max_age_h=96).json()
    assert {v["value"] for v in recent["values"]} == {17.0, 5.0}


def test_the_fleets_latest_pages_by_device_id_within_the_region(fleet: Fleet) -> None:
    first = _get(fleet, "/latest", metric="pv_w", limit=2).json()
    au = sorted([(fleet.d1, 17.0), (fleet.d2, 5.0), (fleet.d3, 7.0)])
    assert [(v["device_id"], v["value"]) for v in first["values"]] == au[:2]
    assert first["next_after"] == au[1][0]
    rest = _get(fleet, "/latest", metric="pv_w", limit=2, after=first["next_after"]).json()
    assert [(v["device_id"], v["value"]) for v in rest["values"]] == au[2:]
    assert rest["next_after"] is None  # D4 is in es


def test_a_customers_fleet_is_its_accounts_devices(fleet: Fleet) -> None:
    body = _get(fleet, "/latest", _as("customer", ACCOUNT_A), metric="pv_w").json()
    assert sorted(v["device_id"] for v in body["values"]) == sorted([fleet.d1, fleet.d2])
    nobody = _get(fleet, "/latest", _as("customer", "acc_" + "c" * 32), metric="pv_w").json()
    assert nobody["values"] == []


def test_a_metric_nobody_reported_lists_no_device(fleet: Fleet) -> None:
    body = _get(fleet, "/latest", metric="battery_soc_pct").json()
    assert (body["values"], body["next_after"]) == ([], None)


# -- a site's energy ----------------------------------------------------------------------
def _local_day() -> str:
    return T0.astimezone(ZoneInfo("Australia/Sydney")).date().isoformat()


def _energy(fleet: Fleet, headers: dict[str, str] | None = None, **params: Any) -> Any:
    day = _local_day()
    query = {"metric": "pv_wh", "from": day, "to": day} | params
    return _get(fleet, f"/sites/{fleet.site_o}/energy", headers, **query)


def test_a_sites_energy_per_local_day_and_hour(fleet: Fleet) -> None:
    day = _energy(fleet)
    assert day.status_code == 200, day.text
    body = day.json()
    assert (body["metric"], body["unit"], body["time_zone"]) == ("pv_wh", "day", "Australia/Sydney")
    [only] = body["periods"]
    # Eight pairs of +100 Wh; nine samples; not complete (the day has 22 more hours).
    assert (only["label"], only["energy_wh"], only["samples"], only["complete"]) == (
        _local_day(),
        "800.000",
        9,
        False,
    )
    hours = _energy(fleet, unit="hour").json()["periods"]
    # A pair belongs to the bucket its later sample closes: the four after T0 close the
    # buckets of T0's local hour (400 Wh), the next four those of the hour after.
    sydney = ZoneInfo("Australia/Sydney")
    first, second = (f"{(T0 + timedelta(hours=h)).astimezone(sydney):%H}:00" for h in (0, 1))
    by_label = {h["label"][11:16]: h["energy_wh"] for h in hours if h["energy_wh"] != "0.000"}
    assert by_label == {first: "400.000", second: "400.000"}
    midnight = datetime.combine(date.fromisoformat(_local_day()), time(), sydney)
    next_midnight = datetime.combine(midnight.date() + timedelta(days=1), time(), sydney)
    assert len(hours) == (next_midnight - midnight) // timedelta(hours=1)


def test_a_sites_energy_is_its_accounts_only(fleet: Fleet) -> None:
    assert _energy(fleet, _as("customer", ACCOUNT_A)).status_code == 404
    assert _energy(fleet, _as("customer", ACCOUNT_B)).status_code == 200


@pytest.mark.parametrize(
    "params",
    [
        {"metric": "pv_w"},  # a gauge: no energy
        {"from": "2026-03-02", "to": "2026-03-01"},
        {"unit": "hour", "from": "2026-01-01", "to": "2026-02-15"},  # 46 days by hour
        {"unit": "week"},
    ],
)
def test_a_bad_energy_question_is_422(fleet: Fleet, params: dict[str, str]) -> None:
    assert _energy(fleet, **params).status_code == 422
