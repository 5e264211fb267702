"""A true-up that changes the AU grid pool a period ends with trues up the next period
too.

An AU site in Sydney (au-ppa-tou, contract from 2025-06-01, so prices escalated once):
every local day the system draws 200 Wh from the grid in hour 2 (``export_wh`` of the
system meter, its reverse register) and delivers 1000 Wh in each of hours 10-14
(``import_wh``); nothing is exported. On 31 October it also delivers 1000 Wh in hour 21
and then draws 3000 Wh in hour 22. Those samples (20:00-24:00) are withheld until after
both invoices: the invoice sees one gap pair on hour 23 holding both, the draw judged
first (3000 into the pool, the 1000 delivered taken from it: pool out 2000). Backfilled,
hour 21's 1000 Wh was PV (billed: a debit note on October) and the pool ends at 3000, so
on 1 November the battery handed back 1000 Wh more grid energy than November's invoice
assumed: a credit note on November.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from cloud.adapters.postgres import create_pool
from cloud.bootstrap import create_billing_service, link_site
from cloud.customers import AccountIn, CustomersService, InstallationIn
from cloud.events.outbox import Event
from cloud.events.types import EnergyRevised
from cloud.migrate import migrate
from cloud.registry import RegistryService, SiteIn
from contracts.metrics import metric
from contracts.topics import Region
from tests.integration.api_world import private_database
from tests.integration.telemetry_world import Row, Store, add_devices, add_gateway

pytestmark = pytest.mark.integration

IMPORT_WH, EXPORT_WH = (metric(n).id for n in ("import_wh", "export_wh"))
SYDNEY = ZoneInfo("Australia/Sydney")
Q = timedelta(minutes=15)
LATE = datetime(2026, 10, 31, 20, tzinfo=SYDNEY)  # the withheld evening starts
SCHEMAS = {"telemetry", "ingest", "registry", "customers", "billing"}


class Clock:
    def __init__(self) -> None:
        self.at = datetime(2026, 12, 2, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.at


def _hour_wh(local: datetime) -> tuple[int, int]:
    """(delivered, drawn) Wh of the local hour starting at ``local``."""
    delivered = 1000 if 10 <= local.hour <= 14 else 0
    drawn = 200 if local.hour == 2 else 0
    if local.date() == LATE.date():
        delivered += 1000 if local.hour == 21 else 0
        drawn += 3000 if local.hour == 22 else 0
    return delivered, drawn


def _samples(start: datetime, end: datetime) -> tuple[list[Row], list[Row]]:
    """15-minute samples of both registers and the grid meter: (now, withheld)."""
    now: list[Row] = []
    later: list[Row] = []
    forward, reverse = 10_000.0, 500.0
    t = start
    while t <= end:
        rows: list[Row] = [
            (t, 11, IMPORT_WH, forward, 0),
            (t, 11, EXPORT_WH, reverse, 0),
            (t, 12, EXPORT_WH, 700.0, 0),
        ]
        withheld = LATE < t < LATE + timedelta(hours=4)
        (later if withheld else now).extend(rows)
        delivered, drawn = _hour_wh(t.astimezone(SYDNEY))
        forward, reverse = forward + delivered / 4, reverse + drawn / 4
        t += Q
    return now, later


@pytest.fixture(scope="module")
def store(postgres_server_url: str) -> Iterator[Store]:
    with private_database(postgres_server_url) as url:
        migrate(url, backend="plain", schemas=SCHEMAS)
        pool = create_pool(url, name="test-pool-carry", max_size=3)
        try:
            yield Store(pool, "plain")
        finally:
            pool.close()


def _query(store: Store, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with store.pool.connection() as conn:
        return conn.execute(sql, args).fetchall()


def test_a_changed_pool_trues_up_the_next_period(store: Store) -> None:
    registry, customers = RegistryService(store.pool), CustomersService(store.pool)
    site = registry.add_site(SiteIn(name="Pool", region=Region.AU, time_zone="Australia/Sydney"))
    account = customers.add_account(
        Region.AU, AccountIn(name="Pool", email="p@example.com", plan_code="au-ppa-tou")
    )
    link_site(registry, customers, site.id, account.id)
    record = {
        "pv_kwp": "6.6",
        "tilt_deg": "20",
        "azimuth_deg": "0",
        "battery_kwh": "10",
        "network_operator": "Ausgrid",
        "tariff_zone": "NSW",
        "installed_on": "2025-06-01",
        "warranty_until": "2035-06-01",
        "billing_meter": "SYS-1",
        "grid_meter": "GRID-1",
    }
    customers.put_installation(Region.AU, site.id, InstallationIn.model_validate(record))
    with store.pool.connection() as conn:
        add_gateway(conn, "gw-pool", site.id, "au", "Australia/Sydney")
        add_devices(conn, "gw-pool", {"SYS-1": 11, "GRID-1": 12})
    first = datetime.combine(date(2026, 9, 22), time(), SYDNEY).astimezone(UTC)
    last = datetime.combine(date(2026, 12, 1), time(1), SYDNEY).astimezone(UTC)
    now, withheld = _samples(first, last)
    store.write(now, date(2026, 12, 2))
    store.catch_up(now=datetime(2026, 12, 2, tzinfo=UTC))
    clock = Clock()
    billing = create_billing_service(store.pool, clock=clock)
    october = billing.run_cycle(Region.AU, date(2026, 10, 1), run_by="test")
    november = billing.run_cycle(Region.AU, date(2026, 11, 1), run_by="test")
    assert (len(october.numbers), len(november.numbers)) == (1, 1)

    (before,) = _query(store, "SELECT coalesce(max(id), 0) FROM telemetry.outbox")
    store.write(withheld, date(2026, 12, 10))
    store.catch_up(now=datetime(2026, 12, 10, tzinfo=UTC))
    rows = _query(
        store,
        "SELECT event_id, name, region, source, payload FROM telemetry.outbox"
        " WHERE id > %s AND name = 'energy.revised' ORDER BY id",
        before[0],
    )
    assert rows, "the backfill revised 31 October"
    clock.at = datetime(2026, 12, 10, 1, tzinfo=UTC)
    notes: list[str] = []
    for r in rows:
        e = Event.model_validate(
            {"id": r[0], "name": r[1], "region": r[2], "source": r[3], "payload": r[4]}
        )
        notes += billing.true_up(e.id, e.region, EnergyRevised.model_validate(e.payload)).numbers
    # October: hour 21's 1000 Wh billed (off-peak all October): 1 * 0.14280 -> 0.14,
    # GST 0.014 -> 0.01, gross 0.15, on a debit note. Its pool now ends at 3000, not
    # 2000: on 1 November the 3200 Wh pool (with hour 2's 200) covers hours 10, 11, 12
    # and 200 of 13, against 2200 before (10, 11 and 200 of 12): 1000 Wh less billed,
    # off-peak (peak is 15-21 h in November): a credit note of the same 0.15.
    assert len(notes) == 2
    docs = _query(
        store,
        "SELECT n.kind, i.number, n.net, n.tax, n.gross, l.period, l.kwh"
        " FROM billing.invoices n JOIN billing.invoices i ON i.id = n.reference_id"
        " JOIN billing.invoice_lines l ON l.invoice_id = n.id AND l.period IS NOT NULL"
        " WHERE n.number = ANY(%s) ORDER BY n.id",
        notes,
    )
    one = (Decimal("0.14"), Decimal("0.01"), Decimal("0.15"), "offpeak", Decimal("1.000000"))
    assert docs == [
        ("debit_note", october.numbers[0], *one),
        ("credit_note", november.numbers[0], *one),
    ]
    # A second delivery of the same events changes nothing.
    for r in rows:
        e = Event.model_validate(
            {"id": r[0], "name": r[1], "region": r[2], "source": r[3], "payload": r[4]}
        )
        assert not billing.true_up(e.id, e.region, EnergyRevised.model_validate(e.payload)).handled
