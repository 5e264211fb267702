"""A billing month through the real pieces: readings written through the telemetry
store's write path, the refresher's energy buckets, the meter-hour reader, the registry
and customers services, and the billing service on PostgreSQL.

October 2026 for an AU site in Sydney (plan au-ppa-tou: no peak window in October, so
every hour is off-peak; GST 10 %) and an ES site in Madrid (plan es-ppa-20td: P1/P2/P3
with 12 October, a Monday, a national holiday; IVA 21 %; es-ppa-flat from 20 October,
a plan change prorated by decision 150). Sydney springs forward on
Sunday 4 October (a 23-hour day), Madrid falls back on Sunday 25 October (25 hours).
Both contracts started 2025-06-01, so October 2026 is in the second contract year: each
price escalated 2 % once (decision: five decimals), e.g. 0.14 * 1.02 = 0.14280.

Every local hour of every day the test writes (15-minute samples, one quarter of the
hour's figure each) the same pattern, in Wh:

* system meter forward (``import_wh``): night battery 100 in hours 0-5 and 20-23, solar
  200/400/600/800/900/900/800/600/400/200 in hours 8..17 — 6800 a day;
* system meter reverse (``export_wh``): 50 in hours 0 and 1 (charging from the grid);
* grid meter export: 300/400/400/300 in hours 11..14 — 1400 a day.

Except 14 October (Wednesday), a cloudy day: solar halved (3900 forward), no export.
That day's samples are withheld until after the invoice (a gateway outage, backfilled):
the samples at local midnight on the 14th and the 15th are there, so until the backfill
the hour 23:00-24:00 of the 14th receives the whole day's registers (a gap pair) and
hours 0-22 have no data, estimated from the 7 days before the month (the same pattern).

Billable per hour: ES forward - export (never below 0); AU the same less the grid pool
(the reverse energy, 50 + 50 each night, taken from hours 0 and 1's delivery).
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest

from cloud.adapters.postgres import create_pool
from cloud.billing import BillingService, TrueUpResult
from cloud.bootstrap import RegistryCustomersSites, create_billing_service, link_site
from cloud.customers import AccountIn, AccountPatch, AccountStatus, CustomersService, InstallationIn
from cloud.events.invoices import InvoiceIssued
from cloud.events.outbox import Event
from cloud.events.support import PlanChangeApproved
from cloud.events.types import EnergyRevised
from cloud.migrate import migrate
from cloud.registry import RegistryService, SiteIn
from contracts.metrics import metric
from contracts.topics import Region
from tests.integration.api_world import private_database
from tests.integration.telemetry_world import Row, Store, add_devices, add_gateway

pytestmark = pytest.mark.integration

IMPORT_WH, EXPORT_WH = (metric(n).id for n in ("import_wh", "export_wh"))
Q = timedelta(minutes=15)
OCTOBER = date(2026, 10, 1)
CLOUDY = date(2026, 10, 14)
SOLAR = {8: 200, 9: 400, 10: 600, 11: 800, 12: 900, 13: 900, 14: 800, 15: 600, 16: 400, 17: 200}
NIGHT = dict.fromkeys((0, 1, 2, 3, 4, 5, 20, 21, 22, 23), 100)
DREW = {0: 50, 1: 50}
EXPORTED = {11: 300, 12: 400, 13: 400, 14: 300}
US_START = date(2026, 10, 29)
LOS_ANGELES = ZoneInfo("America/Los_Angeles")
SCHEMAS = {"telemetry", "ingest", "registry", "customers", "billing"}


def _hour_wh(local: datetime) -> tuple[float, float, float]:
    """(forward, reverse, grid export) Wh of the local hour starting at ``local``."""
    cloudy = local.date() == CLOUDY
    solar = SOLAR.get(local.hour, 0) / (2 if cloudy else 1)
    exported = 0 if cloudy else EXPORTED.get(local.hour, 0)
    return solar + NIGHT.get(local.hour, 0), DREW.get(local.hour, 0), exported


@dataclass
class Meters:
    """One site's samples: every register value written, by time."""

    zone: ZoneInfo
    system: int
    grid: int
    forward: dict[datetime, float] = field(default_factory=dict)

    def rows(self, start: datetime, end: datetime) -> tuple[list[Row], list[Row]]:
        """Samples every 15 minutes over ``[start, end]``: (written now, withheld until
        the backfill: those strictly inside the cloudy local day)."""
        f, r, g = 1_000_000.0, 20_000.0, 500_000.0
        cloud_start = datetime.combine(CLOUDY, time(), self.zone)
        cloud_end = cloud_start + timedelta(days=1)
        now: list[Row] = []
        later: list[Row] = []
        t = start
        while t <= end:
            self.forward[t] = f
            samples: list[Row] = [
                (t, self.system, IMPORT_WH, f, 0),
                (t, self.system, EXPORT_WH, r, 0),
                (t, self.grid, EXPORT_WH, g, 0),
            ]
            (later if cloud_start < t < cloud_end else now).extend(samples)
            df, dr, dg = _hour_wh(t.astimezone(self.zone))
            f, r, g = f + df / 4, r + dr / 4, g + dg / 4
            t += Q
        return now, later


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@dataclass
class World:
    store: Store
    billing: BillingService
    clock: Clock
    sites: dict[str, int]
    meters: dict[str, Meters]
    withheld: list[Row]


def _site(
    registry: RegistryService,
    customers: CustomersService,
    region: Region,
    zone: str,
    plan: str,
    tariff_zone: str,
    serials: tuple[str, str | None],
    installed_on: str = "2025-06-01",
) -> int:
    site = registry.add_site(SiteIn(name=f"{zone} home", region=region, time_zone=zone))
    account = customers.add_account(
        region, AccountIn(name=f"{zone} customer", email="c@example.com", plan_code=plan)
    )
    link_site(registry, customers, site.id, account.id)
    record = {**_record(installed_on, serials), "tariff_zone": tariff_zone}
    customers.put_installation(region, site.id, InstallationIn.model_validate(record))
    return site.id


def _record(installed_on: str, serials: tuple[str, str | None]) -> dict[str, Any]:
    return {
        "pv_kwp": "6.6",
        "tilt_deg": "20",
        "azimuth_deg": "0",
        "battery_kwh": "10",
        "network_operator": "Grid Co",
        "tariff_zone": "peninsula",
        "installed_on": installed_on,
        "warranty_until": "2035-06-01",
        "billing_meter": serials[0],
        "grid_meter": serials[1],
    }


@pytest.fixture(scope="module")
def world(postgres_server_url: str) -> Iterator[World]:
    with private_database(postgres_server_url) as url:
        migrate(url, backend="plain", schemas=SCHEMAS)
        pool = create_pool(url, name="test-billing", max_size=4)
        try:
            yield _world(Store(pool, "plain"))
        finally:
            pool.close()


def _world(store: Store) -> World:
    registry, customers = RegistryService(store.pool), CustomersService(store.pool)
    sites = {
        "au": _site(
            registry, customers, Region.AU, "Australia/Sydney", "au-ppa-tou", "NSW",
            ("SYS-AU", "GRID-AU"),
        ),
        "es": _site(
            registry, customers, Region.ES, "Europe/Madrid", "es-ppa-20td", "peninsula",
            ("SYS-ES", "GRID-ES"),
        ),
        # Production billed from 29 October (the contract's start); no grid meter.
        "us": _site(
            registry, customers, Region.US, "America/Los_Angeles", "us-ppa-esc29", "CA",
            ("SYS-US", None), "2026-10-29",
        ),
        # Its meters never reported: skipped by the cycle, with the reason.
        "es-silent": _site(
            registry, customers, Region.ES, "Europe/Madrid", "es-ppa-20td", "peninsula",
            ("SYS-ES2", "GRID-ES2"),
        ),
    }  # fmt: skip
    meters = {
        "au": Meters(ZoneInfo("Australia/Sydney"), 101, 102),
        "es": Meters(ZoneInfo("Europe/Madrid"), 201, 202),
    }
    with store.pool.connection() as conn:
        add_gateway(conn, "gw-au", sites["au"], "au", "Australia/Sydney")
        add_devices(conn, "gw-au", {"SYS-AU": 101, "GRID-AU": 102})
        add_gateway(conn, "gw-es", sites["es"], "es", "Europe/Madrid")
        add_devices(conn, "gw-es", {"SYS-ES": 201, "GRID-ES": 202})
        add_gateway(conn, "gw-us", sites["us"], "us", "America/Los_Angeles")
        add_devices(conn, "gw-us", {"SYS-US": 301})
    # The US meter: forward only, 1000 Wh every hour from 29 October, local midnight.
    us_start = datetime.combine(US_START, time(), LOS_ANGELES).astimezone(UTC)
    store.write(
        [(us_start + k * Q, 301, IMPORT_WH, 7_000.0 + 250.0 * k, 0) for k in range(4 * 80)],
        date(2026, 11, 2),
    )
    withheld: list[Row] = []
    for m in meters.values():
        first = datetime.combine(OCTOBER - timedelta(days=8), time(), m.zone).astimezone(UTC)
        last = datetime.combine(date(2026, 11, 1), time(1), m.zone).astimezone(UTC)
        now, later = m.rows(first, last)
        store.write(now, date(2026, 11, 2))
        withheld += later
    store.catch_up(now=datetime(2026, 11, 2, tzinfo=UTC))
    clock = Clock(datetime(2026, 11, 2, 3, tzinfo=UTC))
    return World(
        store, create_billing_service(store.pool, clock=clock), clock, sites, meters, withheld
    )


def _one(world: World, query: str, *args: Any) -> Any:
    with world.store.pool.connection() as conn:
        return conn.execute(query, args).fetchall()


def _issued(world: World) -> list[InvoiceIssued]:
    """The documents issued in 2026 (the other test's are 2027's), in order."""
    rows = _one(
        world,
        "SELECT payload FROM billing.outbox WHERE name = 'invoice.issued'"
        " AND payload->>'number' LIKE '%%-2026-%%' ORDER BY id",
    )
    return [InvoiceIssued.model_validate(r[0]) for r in rows]


def _lines(world: World, number: str) -> list[tuple[str | None, Decimal, Decimal, Decimal]]:
    return [
        tuple(r)
        for r in _one(
            world,
            "SELECT l.period, l.kwh, l.unit_price, l.net FROM billing.invoice_lines l"
            " JOIN billing.invoices i ON i.id = l.invoice_id WHERE i.number = %s"
            " ORDER BY l.line_no",
            number,
        )
    ]


def _october(m: Meters) -> tuple[datetime, datetime]:
    """October's local month at the site, in UTC."""
    start = datetime.combine(OCTOBER, time(), m.zone).astimezone(UTC)
    return start, datetime.combine(date(2026, 11, 1), time(), m.zone).astimezone(UTC)


def _ledger(world: World, site: str) -> tuple[int, int, int]:
    """October's current lines: (billable mWh, estimated billable mWh, forward mWh of
    real data)."""
    (row,) = _one(
        world,
        "SELECT sum(billable_mwh), sum(billable_mwh) FILTER (WHERE estimated),"
        " sum(forward_mwh) FILTER (WHERE NOT estimated) FROM billing.ledger_lines"
        " WHERE site_id = %s AND superseded_by IS NULL AND hour_start >= %s"
        " AND hour_start < %s",
        world.sites[site],
        *_october(world.meters[site]),
    )
    return int(row[0]), int(row[1] or 0), int(row[2])


def _register_rise(m: Meters) -> int:
    """The system meter's forward register over October (local), mWh."""
    start, end = _october(m)
    return round((m.forward[end] - m.forward[start]) * 1000)


def test_a_month_is_invoiced_to_the_cent_then_trued_up_by_one_note(world: World) -> None:
    # The ES account moves to es-ppa-flat (0.09000 a kWh, no escalator) from 20 October
    # (decision 150): approved on 1 October, not applied to the account yet (the daily
    # sweep never ran), billed from its date all the same.
    customers = CustomersService(world.store.pool)
    change = PlanChangeApproved(
        ticket_id=2,
        region=Region.ES,
        account_id=_owner(RegistryService(world.store.pool), world.sites["es"]),
        at=datetime(2026, 10, 1, tzinfo=UTC),
        plan_code="es-ppa-flat",
        effective_from=date(2026, 10, 20),
        approved_by="desk",
    )
    assert customers.record_plan_change(uuid4(), change, date(2026, 10, 1))
    es = world.billing.run_cycle(Region.ES, OCTOBER, run_by="test")
    au = world.billing.run_cycle(Region.AU, OCTOBER, run_by="test")
    assert (au.state, au.numbers) == ("billed", ("AU-2026-0000001",))
    assert (es.state, es.numbers) == ("billed", ("ES-2026-0000001",))
    # The silent site: skipped, its reason kept on the cycle.
    assert [s.site_id for s in es.skipped] == [world.sites["es-silent"]]
    assert "MeterMissingError" in es.skipped[0].reason
    assert "SYS-ES2" in es.skipped[0].reason
    (stored,) = _one(world, "SELECT skipped FROM billing.cycles WHERE region = 'es'")
    assert stored[0][0]["site_id"] == world.sites["es-silent"]

    # ES, billable Wh on a normal weekday: P1 (10-14, 18-22) 600+500+500+500 + 100+100
    # = 2300; P2 (8-10, 14-18, 22-24) 200+400 + 500+600+400+200 + 100+100 = 2500; P3
    # (0-8) 6*100 = 600. A weekend day or 12 Oct: all 5400 in P3.
    # 1-19 October on es-ppa-20td: 12 weekdays (14 Oct among them), 7 P3 days (6
    # weekend days + 12 Oct). 14 Oct before the backfill: hours 0-22 estimated at the
    # pattern (P1 2300, P2 2400, P3 600), hour 23 (P2) the whole cloudy day: forward
    # 3900, export 0.
    # P1 = 12 * 2300 = 27600 Wh; P2 = 11 * 2500 + 2400 + 3900 = 33800 Wh;
    # P3 = 12 * 600 + 7 * 5400 = 45000 Wh.
    # Prices 0.13 / 0.10 / 0.07 * 1.02: 0.13260, 0.10200, 0.07140.
    # 27.6 * 0.1326 = 3.65976 -> 3.66; 33.8 * 0.102 = 3.4476 -> 3.45;
    # 45.0 * 0.0714 = 3.213 -> 3.21.
    # 20-31 October on es-ppa-flat: 12 * 5400 + 100 (25 Oct has 02:00 twice: one more
    # night hour) = 64900 Wh at 0.09000 = 5.841 -> 5.84.
    # Net 16.16; IVA 21 % 3.3936 -> 3.39; gross 19.55.
    assert _lines(world, "ES-2026-0000001") == [
        ("P1", Decimal("27.600000"), Decimal("0.132600"), Decimal("3.66")),
        ("P2", Decimal("33.800000"), Decimal("0.102000"), Decimal("3.45")),
        ("P3", Decimal("45.000000"), Decimal("0.071400"), Decimal("3.21")),
        ("flat", Decimal("64.900000"), Decimal("0.090000"), Decimal("5.84")),
    ]
    # AU, every hour off-peak: a day 6800 - 1400 exported - 100 of the grid pool = 5300;
    # 4 Oct (no 02:00) 5200; 14 Oct hours 0-22 estimated 5300 - 100 (hour 23) = 5200,
    # hour 23: 3900 less the day's 100 drawn = 3800, so 9000.
    # 29 * 5300 + 5200 + 9000 = 167900 Wh; * 0.14280 = 23.97612 -> 23.98;
    # GST 10 % 2.398 -> 2.40; gross 26.38.
    assert _lines(world, "AU-2026-0000001") == [
        ("offpeak", Decimal("167.900000"), Decimal("0.142800"), Decimal("23.98"))
    ]
    issued = {d.number: d for d in _issued(world)}
    assert {n: (d.net, d.tax, d.gross) for n, d in issued.items()} == {
        "ES-2026-0000001": (Decimal("16.16"), Decimal("3.39"), Decimal("19.55")),
        "AU-2026-0000001": (Decimal("23.98"), Decimal("2.40"), Decimal("26.38")),
    }
    assert issued["ES-2026-0000001"].kind == "invoice"
    # Before the true-up the ledger is the registers plus exactly its estimates: 23
    # estimated hours of the pattern (ES 5400 - 100 = 5300 Wh, AU 5300 - 100 = 5200 Wh),
    # and the real hours' forward energy is the register's rise over the month.
    assert _ledger(world, "es") == (171_300_000, 5_300_000, _register_rise(world.meters["es"]))
    assert _ledger(world, "au") == (167_900_000, 5_200_000, _register_rise(world.meters["au"]))

    # A second run of a billed period bills nothing.
    again = world.billing.run_cycle(Region.ES, OCTOBER, run_by="test")
    assert (again.state, again.numbers) == ("already_billed", ())
    assert len(_issued(world)) == 2

    # The backfill: the withheld samples arrive; the store announces the revised days.
    (last_event,) = _one(world, "SELECT coalesce(max(id), 0) FROM telemetry.outbox")
    world.store.write(world.withheld, date(2026, 11, 20))
    world.store.catch_up(now=datetime(2026, 11, 20, tzinfo=UTC))
    revised = [
        Event.model_validate(
            {"id": r[0], "name": r[1], "region": r[2], "source": r[3], "payload": r[4]}
        )
        for r in _one(
            world,
            "SELECT event_id, name, region, source, payload FROM telemetry.outbox"
            " WHERE id > %s AND name = 'energy.revised' ORDER BY id",
            last_event[0],
        )
    ]
    assert {(e.region, EnergyRevised.model_validate(e.payload).site_id) for e in revised} == {
        (Region.AU, world.sites["au"]),
        (Region.ES, world.sites["es"]),
    }
    world.clock.at = datetime(2026, 11, 20, 3, tzinfo=UTC)
    for e in revised:
        world.billing.true_up(e.id, e.region, EnergyRevised.model_validate(e.payload))
    # Redelivered: handled once.
    for e in revised:
        assert not world.billing.true_up(
            e.id, e.region, EnergyRevised.model_validate(e.payload)
        ).handled

    # 14 Oct as it was (cloudy): ES P1 10-14 300+400+450+450 + 20-22 200 = 1800, P2
    # 8-10 100+200, 14-18 400+300+200+100, 22-24 200 = 1500, P3 600: against the
    # invoiced 2300 / 6300 / 600, P1 -500 Wh and P2 -4800 Wh: one credit note, at
    # es-ppa-20td (the plan of 14 October), not the account's plan since the 20th.
    # 0.5 * 0.1326 = 0.0663 -> 0.07; 4.8 * 0.102 = 0.4896 -> 0.49; net 0.56;
    # IVA 0.1176 -> 0.12; gross 0.68.
    # AU: 3800 actual against 9000 invoiced: -5200 Wh; 5.2 * 0.1428 = 0.74256 -> 0.74;
    # GST 0.074 -> 0.07; gross 0.81.
    notes = {d.number: d for d in _issued(world)[2:]}
    assert {n: (d.kind, d.reference_number, d.net, d.tax, d.gross) for n, d in notes.items()} == {
        "AU-2026-0000002": (
            "credit_note", "AU-2026-0000001", Decimal("0.74"), Decimal("0.07"), Decimal("0.81"),
        ),
        "ES-2026-0000002": (
            "credit_note", "ES-2026-0000001", Decimal("0.56"), Decimal("0.12"), Decimal("0.68"),
        ),
    }  # fmt: skip
    assert _lines(world, "ES-2026-0000002") == [
        ("P1", Decimal("0.500000"), Decimal("0.132600"), Decimal("0.07")),
        ("P2", Decimal("4.800000"), Decimal("0.102000"), Decimal("0.49")),
    ]
    assert _one(
        world,
        "SELECT l.plan_code FROM billing.invoice_lines l JOIN billing.invoices i"
        " ON i.id = l.invoice_id WHERE i.number = %s ORDER BY l.line_no",
        "ES-2026-0000002",
    ) == [("es-ppa-20td",), ("es-ppa-20td",)]
    # After the true-up the ledger is exactly the registers: ES 167400 (31 pattern days)
    # + 100 (25 Oct) - 5400 + 3900 (the cloudy day) = 166000 Wh; AU 167900 - 9000 + 3800
    # = 162700 Wh; nothing estimated; forward energy = the register's rise.
    assert _ledger(world, "es") == (166_000_000, 0, _register_rise(world.meters["es"]))
    assert _ledger(world, "au") == (162_700_000, 0, _register_rise(world.meters["au"]))
    # Numbers are gap-free per region; every document is in the outbox once.
    numbers = _one(
        world,
        "SELECT region, number FROM billing.invoices WHERE number LIKE '%%-2026-%%'"
        " ORDER BY region, number",
    )
    assert numbers == [
        ("au", "AU-2026-0000001"),
        ("au", "AU-2026-0000002"),
        ("es", "ES-2026-0000001"),
        ("es", "ES-2026-0000002"),
    ]


def test_two_runs_of_one_period_at_once_bill_it_once(world: World) -> None:
    """November (estimated from late October: the meters stopped on 1 November) run
    twice at the same time: the region's lock lets one bill, the other finds it billed.
    Issued in 2027, so its number leaves 2026's sequence to the other test."""
    billing = create_billing_service(
        world.store.pool, clock=Clock(datetime(2027, 1, 4, tzinfo=UTC))
    )
    november = date(2026, 11, 1)
    with ThreadPoolExecutor(2) as runs:
        results = list(
            runs.map(lambda _: billing.run_cycle(Region.AU, november, run_by="t"), [1, 2])
        )
    assert sorted(r.state for r in results) == ["already_billed", "billed"]
    (billed,) = [r for r in results if r.state == "billed"]
    assert billed.numbers == ("AU-2027-0000001",)
    assert _one(
        world,
        "SELECT count(*) FROM billing.invoices WHERE region = 'au' AND first_day = %s",
        november,
    ) == [(1,)]


def test_production_is_billed_from_the_contract_start_on_each_days_plan(world: World) -> None:
    # Support approved a move to us-ppa-fixed (0.18500 a kWh, no escalator) from 31
    # October, recorded on 2 November (so applied at once): decision 150.
    customers = CustomersService(world.store.pool)
    account = _owner(RegistryService(world.store.pool), world.sites["us"])
    change = PlanChangeApproved(
        ticket_id=1,
        region=Region.US,
        account_id=account,
        at=datetime(2026, 11, 2, tzinfo=UTC),
        plan_code="us-ppa-fixed",
        effective_from=date(2026, 10, 31),
        approved_by="desk",
    )
    assert customers.record_plan_change(uuid4(), change, date(2026, 11, 2))
    us = world.billing.run_cycle(Region.US, OCTOBER, run_by="test")
    assert (us.state, us.numbers, us.skipped) == ("billed", ("US-2026-0000001",), ())
    # 29-31 October local (the contract started on the 29th, nothing before is billed),
    # 1000 Wh an hour: 29-30 October on us-ppa-esc29, 48 kWh at 0.15000 (first contract
    # year, no escalation yet) = 7.20; 31 October on us-ppa-fixed, 24 kWh at 0.18500 =
    # 4.44. Net 11.64; California taxes electricity sales at 0 %: 0.00; gross 11.64.
    assert _lines(world, "US-2026-0000001") == [
        ("flat", Decimal("48.000000"), Decimal("0.150000"), Decimal("7.20")),
        ("flat", Decimal("24.000000"), Decimal("0.185000"), Decimal("4.44")),
    ]
    (row,) = _one(
        world,
        "SELECT first_day, net, tax, gross, plan_code, plans FROM billing.invoices"
        " WHERE number = %s",
        "US-2026-0000001",
    )
    assert row == (
        US_START,
        Decimal("11.64"),
        Decimal("0.00"),
        Decimal("11.64"),
        "us-ppa-fixed",
        [["2026-10-29", "us-ppa-esc29"], ["2026-10-31", "us-ppa-fixed"]],
    )
    plans = _one(
        world,
        "SELECT l.plan_code FROM billing.invoice_lines l JOIN billing.invoices i"
        " ON i.id = l.invoice_id WHERE i.number = %s ORDER BY l.line_no",
        "US-2026-0000001",
    )
    assert plans == [("us-ppa-esc29",), ("us-ppa-fixed",)]
    # Cancelled, its reversal carries the same plan segments and line plans.
    reversal = world.billing.cancel("US-2026-0000001", "test", "desk")
    ((kept,),) = _one(world, "SELECT plans FROM billing.invoices WHERE number = %s", reversal)
    assert kept == [["2026-10-29", "us-ppa-esc29"], ["2026-10-31", "us-ppa-fixed"]]
    assert _one(
        world,
        "SELECT l.plan_code, l.net FROM billing.invoice_lines l JOIN billing.invoices i"
        " ON i.id = l.invoice_id WHERE i.number = %s ORDER BY l.line_no",
        reversal,
    ) == [("us-ppa-esc29", Decimal("7.20")), ("us-ppa-fixed", Decimal("4.44"))]
    (ledger,) = _one(
        world,
        "SELECT count(*), sum(billable_mwh), bool_or(estimated), max(grid_meter)"
        " FROM billing.ledger_lines WHERE site_id = %s",
        world.sites["us"],
    )
    assert ledger == (72, 72_000_000, False, None)


def _owner(registry: RegistryService, site_id: int) -> str:
    site = registry.get_site(site_id)
    assert site is not None
    assert site.account_id is not None
    return site.account_id


def test_only_sites_with_an_active_account_on_a_plan_and_a_record_are_billable(
    world: World,
) -> None:
    registry, customers = RegistryService(world.store.pool), CustomersService(world.store.pool)
    sites = RegistryCustomersSites(registry, customers)
    zone, serials = "Europe/Madrid", ("SYS-X", "GRID-X")
    suspended = _site(registry, customers, Region.ES, zone, "es-ppa-20td", "peninsula", serials)
    customers.update_account(
        _owner(registry, suspended), AccountPatch(status=AccountStatus.SUSPENDED)
    )
    no_plan = _site(registry, customers, Region.ES, zone, "es-ppa-20td", "peninsula", serials)
    customers.update_account(_owner(registry, no_plan), AccountPatch(plan_code=None))
    no_record = registry.add_site(SiteIn(name="bare", region=Region.ES, time_zone=zone)).id
    unowned = registry.add_site(SiteIn(name="unowned", region=Region.ES, time_zone=zone)).id
    customers.put_installation(
        Region.ES, unowned, InstallationIn.model_validate(_record("2025-06-01", serials))
    )

    listed = {s.site_id: s for s in sites.billable_sites(Region.ES)}
    assert set(listed) == {world.sites["es"], world.sites["es-silent"]}
    es = listed[world.sites["es"]]
    assert (es.plan_code, es.tariff_zone, es.time_zone, es.contract_start) == (
        "es-ppa-20td",
        "peninsula",
        "Europe/Madrid",
        date(2025, 6, 1),
    )
    assert (es.billing_meter, es.grid_meter) == ("SYS-ES", "GRID-ES")
    assert sites.billable_site(Region.ES, world.sites["es"]) == es
    for site in (suspended, no_plan, no_record, unowned):
        assert sites.billable_site(Region.ES, site) is None
    assert sites.billable_site(Region.AU, world.sites["es"]) is None  # another region's


def test_a_revision_that_changes_no_billed_hour_issues_nothing(world: World) -> None:
    """December is not invoiced; 20 October's data did not change (whether or not it is
    invoiced yet): handled, no note, no ledger line replaced."""
    site = world.sites["es"]
    for day in (date(2026, 12, 3), date(2026, 10, 20)):
        revised = EnergyRevised(site_id=site, days=[day])
        assert world.billing.true_up(uuid4(), Region.ES, revised) == TrueUpResult(True)
