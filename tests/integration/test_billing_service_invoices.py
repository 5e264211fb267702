"""Jobs chargeable to the customer are billed from the work order (issue 19 point 4:
"parts and labour are PoTR's own cost under a PPA; only customer-caused damage or
customer-owned equipment is billed"), on real PostgreSQL through the real event path:
dispatch resolves a job its MOSIE marked chargeable and writes
``workorder.chargeable_completed`` to its outbox; the relay carries it over the
in-process bus to billing's handler as the composition root wires it (``cloud_events``),
which issues a service invoice numbered from the same counter and emits
``invoice.issued``. A job nobody marked bills nothing; a redelivered event nothing twice.

By hand, from the figures written here (not billing's code): a Los Angeles site in the
CA tariff zone; the job's technician arrives at 09:00 and resolves at 10:35 local time
on 4 November 2026 — 95 minutes on site; two uses of parts: 2 * DC isolator at 84.50
and 1 * MC4 connector pair at 7.35 (the stock's unit costs). The US labour rate is
110.00 USD an hour and California's general sales tax 7.25 % (data/services/us.yaml):

* parts: 2 * 84.50 = 169.00; 1 * 7.35 = 7.35
* labour: 95 * 110.00 / 60 = 174.1666… → 174.17
* net 169.00 + 7.35 + 174.17 = 350.52; tax 350.52 * 7.25 % = 25.4127 → 25.41
* gross 375.93
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from cloud.adapters.postgres import Connection, ConnectionPool, create_pool
from cloud.billing import BillingService
from cloud.bootstrap import cloud_events, create_billing_service
from cloud.dispatch import ConflictError, DispatchService, FilesystemPhotoStorage
from cloud.dispatch.checklists import load_checklists
from cloud.events.bus import InProcessBus
from cloud.events.invoices import InvoiceIssued
from cloud.events.outbox import Event
from cloud.events.types import GatewayRegistration
from cloud.migrate import migrate
from cloud.sap.documents import PostingRules, ar_document
from cloud.scope import Scope
from contracts.topics import Region
from tests.integration.api_world import private_database
from tests.integration.billing_sites import LOS_ANGELES, _site
from tests.integration.test_billing_settlement import Clock
from tests.waiting import until

pytestmark = pytest.mark.integration

Pool = ConnectionPool[Connection[Any]]
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
MOSIE = "E7001"
#: 09:00 on Wednesday 4 November 2026 in Los Angeles (PST, UTC-8).
ARRIVAL = datetime(2026, 11, 4, 17, 0, tzinfo=UTC)
ON_SITE = timedelta(minutes=95, seconds=40)  # 40 s of a minute are not billed
SCHEMAS = {"registry", "customers", "dispatch", "billing", "employees"}


def _key() -> str:
    return uuid.uuid4().hex


@dataclass
class World:
    pool: Pool
    bus: InProcessBus
    dispatch: DispatchService
    billing: BillingService
    clock: Clock
    site_id: int
    account_id: str

    def invoices(self) -> list[dict[str, Any]]:
        with self.pool.connection() as conn:
            cur = conn.execute(
                "SELECT number, kind, work_order_id, account_id, site_id, net, tax, gross,"
                " currency FROM billing.invoices ORDER BY id"
            )
            names = [c.name for c in cur.description or ()]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


@pytest.fixture(scope="module")
def database(postgres_server_url: str) -> Iterator[str]:
    with private_database(postgres_server_url) as url:
        migrate(url, backend="plain", schemas=SCHEMAS)
        yield url


@pytest.fixture
async def w(database: str, tmp_path: Path) -> AsyncIterator[World]:
    pool = create_pool(database, name="test-service-invoices", max_size=6)
    clock = Clock(ARRIVAL - timedelta(hours=2))
    try:
        site_id, account = _site(pool, f"chargeable {_key()[:6]}", f"SYS-{_key()[:6]}",
                                 date(2026, 1, 1))  # fmt: skip
        dispatch = DispatchService(
            pool, clock=clock, photos=FilesystemPhotoStorage(tmp_path / "photos")
        )
        reg = GatewayRegistration(gateway_id=f"gw-{_key()[:8]}", site_id=site_id,
                                  region=Region.US, time_zone=LOS_ANGELES,
                                  account_id=account)  # fmt: skip
        dispatch.record_gateway(uuid.uuid4(), reg, clock.at)
        dispatch.add_stock(Region.US, "US-ISO-32", 10, "DC isolator 32 A",
                           unit_value=Decimal("84.50"))  # fmt: skip
        dispatch.add_stock(Region.US, "US-MC4", 10, "MC4 connector pair",
                           unit_value=Decimal("7.35"))  # fmt: skip
        billing = create_billing_service(pool, clock=clock)
        bus = InProcessBus()
        async with cloud_events(pool, billing=billing, bus=bus, outboxes=("dispatch", "billing")):
            yield World(pool, bus, dispatch, billing, clock, site_id, account)
            assert bus.dead_letters == []
    finally:
        pool.close()


def _job_on_site(w: World) -> int:
    order = w.dispatch.create(Region.US, w.site_id, "isolator_fault", "P3", "isolator", "", "op")
    w.dispatch.act(order.id, "assign", "op", "operator", idempotency_key=_key(), technician=MOSIE)
    for action in ("accept", "start_travel"):
        w.dispatch.act(order.id, action, MOSIE, "mosie", idempotency_key=_key())
    w.clock.at = ARRIVAL
    w.dispatch.act(order.id, "arrive", MOSIE, "mosie", idempotency_key=_key())
    return order.id


def _resolve(w: World, job: int) -> None:
    for task in load_checklists()["isolator_fault"].tasks:
        photo = w.dispatch.add_photo(job, PNG, "image/png", MOSIE, _key()) if task.photo else None
        w.dispatch.tick(job, task.id, MOSIE, _key(), photo.storage_key if photo else None)
    w.clock.at = ARRIVAL + ON_SITE
    w.dispatch.act(job, "resolve", MOSIE, "mosie", idempotency_key=_key())


async def test_a_chargeable_job_is_invoiced_once_and_an_unmarked_one_not_at_all(
    w: World,
) -> None:
    plain = _job_on_site(w)
    _resolve(w, plain)  # PoTR's own cost: nothing reaches billing
    w.clock.at = ARRIVAL - timedelta(hours=1)
    job = _job_on_site(w)
    w.dispatch.use_part(job, "US-ISO-32", 2, MOSIE, _key())
    w.dispatch.use_part(job, "US-MC4", 1, MOSIE, _key())
    w.dispatch.set_charge(job, "customer_damage", "Isolator cover broken by a ladder",
                          MOSIE, "mosie", idempotency_key=_key())  # fmt: skip
    _resolve(w, job)

    await until(lambda: len(w.invoices()), 10, "the service invoice")
    (invoice,) = w.invoices()
    assert invoice["kind"] == "invoice"
    assert invoice["work_order_id"] == job
    assert (invoice["account_id"], invoice["site_id"]) == (w.account_id, w.site_id)
    assert invoice["currency"] == "USD"
    assert invoice["net"] == Decimal("169.00") + Decimal("7.35") + Decimal("174.17")
    assert invoice["tax"] == Decimal("25.41")
    assert invoice["gross"] == Decimal("375.93")
    assert invoice["number"] == "US-2026-0000001"  # the one gap-free counter

    with w.pool.connection() as conn:
        lines = conn.execute(
            "SELECT l.description_key, l.item, l.quantity, l.unit_price, l.net, l.tax_percent"
            " FROM billing.invoice_lines l JOIN billing.invoices i ON i.id = l.invoice_id"
            " WHERE i.number = %s ORDER BY line_no",
            (invoice["number"],),
        ).fetchall()
        issued = conn.execute(
            "SELECT payload FROM billing.outbox WHERE name = 'invoice.issued'"
        ).fetchall()
        sent = conn.execute(
            "SELECT event_id, name, region, source, occurred_at, payload FROM dispatch.outbox"
            " WHERE name = 'workorder.chargeable_completed'"
        ).fetchall()
    assert lines == [
        ("part", "US-ISO-32 DC isolator 32 A", Decimal(2), Decimal("84.5"), Decimal("169.00"),
         Decimal("7.25")),
        ("part", "US-MC4 MC4 connector pair", Decimal(1), Decimal("7.35"), Decimal("7.35"),
         Decimal("7.25")),
        ("labour", None, Decimal(95), Decimal("110"), Decimal("174.17"), Decimal("7.25")),
    ]  # fmt: skip
    (payload,) = [row[0] for row in issued]
    assert (payload["work_order_id"], payload["gross"]) == (job, "375.93")
    # SAP posts it like any invoice: customer 375.93 against revenue 350.52 and tax 25.41.
    rules = PostingRules(company_code="1010", revenue_account="41000000", tax_account="22000000")
    entry = ar_document(InvoiceIssued.model_validate(payload), customer="C1", rules=rules)
    assert [(line.role, line.amount) for line in entry.lines] == [
        ("customer", Decimal("375.93")), ("revenue", Decimal("-350.52")),
        ("tax", Decimal("-25.41")),
    ]  # fmt: skip
    assert [line["quantity"] for line in payload["lines"]] == ["2", "1", "95"]
    (event,) = sent
    assert event[5]["labour_minutes"] == 95
    assert event[5]["reason"] == "customer_damage"
    assert [p["part_no"] for p in event[5]["parts"]] == ["US-ISO-32", "US-MC4"]

    # The account owes it like any invoice.
    assert w.billing.balance(w.account_id) == {"USD": Decimal("375.93")}

    # Redelivered (a lost ack), and the same job announced under another event id (a
    # replayed outbox): one invoice still.
    again = Event(id=event[0], name=event[1], region=event[2], source=event[3],
                  occurred_at=event[4], payload=event[5])  # fmt: skip
    await w.bus.publish([again, again.model_copy(update={"id": uuid.uuid4()})])
    assert len(w.invoices()) == 1
    # The mark is final once billed.
    assert w.dispatch.get(job, Scope.everything()).charge_billed_at is not None
    # Cancelled like any invoice: a reversing document with the same lines, the next number.
    assert w.billing.cancel(invoice["number"], "charged in error", "admin") == "US-2026-0000002"
    assert w.billing.balance(w.account_id) == {"USD": Decimal("0.00")}
    with w.pool.connection() as conn:
        reversed_lines = conn.execute(
            "SELECT l.description_key, l.item, l.quantity, l.net FROM billing.invoice_lines l"
            " JOIN billing.invoices i ON i.id = l.invoice_id WHERE i.number = 'US-2026-0000002'"
            " ORDER BY line_no"
        ).fetchall()
    assert [(k, q, n) for k, _, q, n in reversed_lines] == [
        ("part", Decimal(2), Decimal("169.00")), ("part", Decimal(1), Decimal("7.35")),
        ("labour", Decimal(95), Decimal("174.17")),
    ]  # fmt: skip
    with pytest.raises(ConflictError):
        w.dispatch.set_charge(job, None, "", "op", "operator", idempotency_key=_key())


async def test_a_chargeable_job_with_a_part_of_unknown_cost_is_not_invoiced(w: World) -> None:
    w.dispatch.add_stock(Region.US, "US-GLAND", 5, "Cable gland")  # no unit cost known
    job = _job_on_site(w)
    w.dispatch.use_part(job, "US-GLAND", 1, MOSIE, _key())
    w.dispatch.set_charge(job, "customer_equipment", "The customer's own EV charger",
                          MOSIE, "mosie", idempotency_key=_key())  # fmt: skip
    _resolve(w, job)
    with w.pool.connection() as conn:
        row = conn.execute(
            "SELECT event_id, payload FROM dispatch.outbox"
            " WHERE name = 'workorder.chargeable_completed'"
            " AND (payload->>'work_order_id')::bigint = %s",
            (job,),
        ).fetchone()
    assert row is not None
    assert row[1]["parts"][0]["unit_cost"] is None

    def handled() -> int:
        with w.pool.connection() as conn:
            found = conn.execute(
                "SELECT count(*) FROM billing.inbox WHERE event_id = %s", (row[0],)
            ).fetchone()
        return int(found[0]) if found else 0

    await until(handled, 10, "billing handled the event")
    assert [i for i in w.invoices() if i["work_order_id"] == job] == []
