"""Accounts on the real billing service and PostgreSQL: invoices issued by real billing
cycles (the billing-cycle test's sites and clock), then payments, allocation, a credit
note from a true-up, a cancellation, statements and overdue reminders.

Seven US sites in Los Angeles whose contracts start on 29 October 2026, each its own
account; every system meter's forward register rises 1000 Wh every hour, except site
``note``'s on 10 November (500 Wh an hour, withheld until after the November invoice).
Plan us-ppa-esc29: 0.15000 USD/kWh in the first contract year, California taxes
electricity sales at 0 %. So by hand:

* October (29-31, 72 hours): 72 kWh * 0.15 = 10.80, issued 2 November, due 16 November;
* November (721 hours: 1 November has 25): 721 kWh * 0.15 = 108.15, issued 2 December,
  due 16 December. Site ``note``: hours 0-22 of 10 November estimated at 1000 Wh, hour 23
  gets the day's whole 12000 Wh: 697 + 23 + 12 = 732 kWh = 109.80; after the backfill
  709 kWh, so a credit note of 23 kWh = 3.45.

Site ``prepaid`` pays 20.00 on 20 November, between the two cycles.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from uuid import uuid4

import pytest

from cloud.billing import (
    BillingService,
    BillsReader,
    LocalPaymentProvider,
    PaymentDeclinedError,
    PaymentReceipt,
)
from cloud.bootstrap import create_billing_service
from cloud.events.invoices import InvoiceIssued, InvoiceOverdue
from cloud.events.types import EnergyRevised
from cloud.scope import Scope
from contracts.topics import Region
from tests.integration.billing_world import (
    billing_store,
    db_rows,
    document_numbers,
    seed_us_sites,
    site_accounts,
)
from tests.integration.telemetry_world import Row, Store
from tests.integration.test_billing_cycle import IMPORT_WH, LOS_ANGELES, Clock, Q

pytestmark = pytest.mark.integration

D = Decimal
NAMES = ("split", "twice", "cancel", "note", "overdue", "prepaid", "race")
LOW_DAY = date(2026, 11, 10)
OCTOBER, NOVEMBER = date(2026, 10, 1), date(2026, 11, 1)


@dataclass
class World:
    store: Store
    billing: BillingService
    clock: Clock
    accounts: dict[str, str]
    sites: dict[str, int]


def _rows(device: int, low: bool) -> tuple[list[Row], list[Row]]:
    """Every 15 minutes from 21 October to 1 December 01:00 local: (written now,
    withheld: strictly inside 10 November when ``low``)."""
    t = datetime.combine(date(2026, 10, 21), time(), LOS_ANGELES).astimezone(UTC)
    end = datetime.combine(date(2026, 12, 1), time(1), LOS_ANGELES).astimezone(UTC)
    low_start = datetime.combine(LOW_DAY, time(), LOS_ANGELES)
    low_end = low_start + timedelta(days=1)
    now: list[Row] = []
    later: list[Row] = []
    wh = 5_000.0
    while t <= end:
        (later if low and low_start < t < low_end else now).append((t, device, IMPORT_WH, wh, 0))
        wh += 125.0 if low and low_start <= t < low_end else 250.0
        t += Q
    return now, later


@pytest.fixture(scope="module")
def world(postgres_server_url: str) -> Iterator[World]:
    with billing_store(postgres_server_url, "test-accounts") as (_, store):
        yield _world(store)


def _world(store: Store) -> World:
    sites, withheld_by = seed_us_sites(
        store, NAMES, 500, lambda name, device: _rows(device, low=name == "note")
    )
    withheld = [row for rows in withheld_by.values() for row in rows]
    clock = Clock(datetime(2026, 11, 2, 12, tzinfo=UTC))  # the same date in LA
    billing = create_billing_service(store.pool, clock=clock)
    assert len(billing.run_cycle(Region.US, OCTOBER, run_by="test").numbers) == len(NAMES)
    accounts = site_accounts(store, sites)
    # Site "prepaid" pays 20.00 before November is invoiced: 10.80 to October, 9.20 kept.
    prepay = PaymentReceipt(
        "bank", "tx-prepaid", accounts["prepaid"], D("20.00"), "USD",
        datetime(2026, 11, 20, tzinfo=UTC),
    )  # fmt: skip
    billing.record_payment(Region.US, prepay)
    clock.at = datetime(2026, 12, 2, 12, tzinfo=UTC)
    assert len(billing.run_cycle(Region.US, NOVEMBER, run_by="test").numbers) == len(NAMES)
    # The backfill of site "note", then its true-up (a credit note on 5 December).
    store.write(withheld, date(2026, 12, 5))
    store.catch_up(now=datetime(2026, 12, 5, tzinfo=UTC))
    clock.at = datetime(2026, 12, 5, 12, tzinfo=UTC)
    billing.true_up(uuid4(), Region.US, EnergyRevised(site_id=sites["note"], days=[LOW_DAY]))
    return World(store, billing, clock, accounts, sites)


def _receipt(world: World, name: str, amount: str, reference: str, day: int = 5) -> PaymentReceipt:
    return PaymentReceipt(
        "bank",
        reference,
        world.accounts[name],
        D(amount),
        "USD",
        datetime(2026, 12, day, 12, tzinfo=UTC),
    )


def test_the_cycles_issued_the_hand_computed_invoices(world: World) -> None:
    grosses = db_rows(
        world.store,
        "SELECT site_id, first_day, gross FROM billing.invoices WHERE kind = 'invoice' ORDER BY id",
    )
    expected = {("note", NOVEMBER): D("109.80")}
    assert grosses == [
        (
            world.sites[n],
            first,
            expected.get((n, first), D("10.80") if first.month == 10 else D("108.15")),
        )
        for first in (date(2026, 10, 29), NOVEMBER)
        for n in NAMES
    ]


def test_a_payment_is_allocated_across_two_invoices_oldest_first(world: World) -> None:
    october, november = document_numbers(world, "split")
    result = world.billing.record_payment(Region.US, _receipt(world, "split", "50.00", "tx-split"))
    assert result.recorded
    assert result.allocated == ((october, D("10.80")), (november, D("39.20")))
    assert world.billing.outstanding(october) == D("0.00")
    assert world.billing.outstanding(november) == D("68.95")  # 108.15 - 39.20
    assert world.billing.balance(world.accounts["split"]) == {"USD": D("68.95")}


def test_the_same_provider_reference_twice_is_one_payment(world: World) -> None:
    receipt = _receipt(world, "twice", "5.00", "tx-twice")
    assert world.billing.record_payment(Region.US, receipt).recorded
    again = world.billing.record_payment(Region.US, receipt)
    assert (again.recorded, again.allocated) == (False, ())
    assert db_rows(
        world.store,
        "SELECT count(*), sum(amount) FROM billing.payments WHERE provider_reference = 'tx-twice'",
    ) == [(1, D("5.00"))]
    (october, _) = document_numbers(world, "twice")
    assert world.billing.outstanding(october) == D("5.80")


def test_a_charge_through_the_local_provider_retried_is_recorded_once(world: World) -> None:
    provider = LocalPaymentProvider(clock=lambda: datetime(2026, 12, 6, tzinfo=UTC))
    account = world.accounts["twice"]
    before = world.billing.balance(account)["USD"]
    for _ in range(2):  # a client retrying with its idempotency key
        world.billing.collect(provider, Region.US, account, D("1.00"), "order-1")
    assert world.billing.balance(account) == {"USD": before - D("1.00")}
    with pytest.raises(PaymentDeclinedError):
        world.billing.collect(
            LocalPaymentProvider(decline_all=True), Region.US, account, D("1.00"), "order-2"
        )
    assert world.billing.balance(account) == {"USD": before - D("1.00")}


def test_a_credit_left_by_a_payment_settles_the_next_invoice_issued(world: World) -> None:
    october, november = document_numbers(world, "prepaid")
    assert world.billing.outstanding(october) == D("0.00")
    assert world.billing.outstanding(november) == D("98.95")  # 108.15 - (20.00 - 10.80)
    assert world.billing.balance(world.accounts["prepaid"]) == {"USD": D("98.95")}


def test_the_same_payment_recorded_twice_at_once_is_one_payment(world: World) -> None:
    receipt = _receipt(world, "race", "7.00", "tx-race")
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: world.billing.record_payment(Region.US, receipt), [1, 2]))
    assert sorted(r.recorded for r in results) == [False, True]
    (october, _) = document_numbers(world, "race")
    assert world.billing.outstanding(october) == D("3.80")  # 10.80 - 7.00
    assert db_rows(
        world.store,
        "SELECT count(*) FROM billing.allocations a JOIN billing.payments p"
        " ON p.id = a.payment_id WHERE p.provider_reference = 'tx-race'",
    ) == [(1,)]


def test_a_credit_note_reduces_the_outstanding_of_the_invoice_it_names(world: World) -> None:
    (_, november) = document_numbers(world, "note")
    (note,) = document_numbers(world, "note", "credit_note")
    (payload,) = db_rows(
        world.store, "SELECT payload FROM billing.outbox WHERE payload->>'number' = %s", note
    )
    issued = InvoiceIssued.model_validate(payload[0])
    assert (issued.reference_number, issued.gross) == (november, D("3.45"))
    assert world.billing.outstanding(november) == D("106.35")  # 109.80 - 3.45
    assert world.billing.balance(world.accounts["note"]) == {"USD": D("117.15")}  # 10.80 + 106.35


def test_a_cancelled_paid_invoice_becomes_credit_for_the_next_one(world: World) -> None:
    october, november = document_numbers(world, "cancel")
    world.billing.record_payment(Region.US, _receipt(world, "cancel", "10.80", "tx-cancel"))
    assert world.billing.outstanding(october) == D("0.00")
    number = world.billing.cancel(october, "meter misconfigured", "ops@example.com")
    (row,) = db_rows(
        world.store,
        "SELECT c.kind, c.gross, r.number, r.state FROM billing.invoices c"
        " JOIN billing.invoices r ON r.id = c.reference_id WHERE c.number = %s",
        number,
    )
    assert row == ("cancellation", D("10.80"), october, "cancelled")
    (payload,) = db_rows(
        world.store, "SELECT payload FROM billing.outbox WHERE payload->>'number' = %s", number
    )
    assert (payload[0]["kind"], payload[0]["reference_number"]) == ("cancellation", october)
    # The cancellation's 10.80 found the October invoice paid: it went to November.
    assert world.billing.outstanding(november) == D("97.35")  # 108.15 - 10.80
    assert world.billing.balance(world.accounts["cancel"]) == {"USD": D("97.35")}
    with pytest.raises(LookupError, match="not cancellable"):
        world.billing.cancel(october, "again", "ops@example.com")


def test_a_statement_closes_at_the_hand_computed_balance(world: World) -> None:
    account = world.accounts["split"]
    if not db_rows(
        world.store, "SELECT 1 FROM billing.payments WHERE provider_reference = 'tx-split'"
    ):
        world.billing.record_payment(Region.US, _receipt(world, "split", "50.00", "tx-split"))
    december = world.billing.statement(
        account, datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)
    )["USD"]
    # Before December: the October invoice 10.80. In it: the November invoice (2 Dec)
    # 108.15 and the payment (5 Dec) 50.00. Closing 10.80 + 108.15 - 50.00 = 68.95.
    assert december.opening == D("10.80")
    assert [(e.kind, e.amount) for e in december.entries] == [
        ("invoice", D("108.15")),
        ("payment", D("50.00")),
    ]
    assert december.closing == D("68.95")


def _overdue_events(world: World, number: str) -> list[InvoiceOverdue]:
    return [
        InvoiceOverdue.model_validate(r[0])
        for r in db_rows(
            world.store,
            "SELECT payload FROM billing.outbox WHERE name = 'invoice.overdue'"
            " AND payload->>'number' = %s ORDER BY id",
            number,
        )
    ]


def test_an_overdue_reminder_is_emitted_once_per_level(world: World) -> None:
    october, november = document_numbers(world, "overdue")
    overdue = [r.number for r in world.billing.overdue(Region.US, date(2026, 11, 17))]
    assert october in overdue
    assert november not in overdue
    assert october not in [r.number for r in world.billing.overdue(Region.US, date(2026, 11, 16))]

    def sent(as_of: date) -> list[tuple[str, int, Decimal]]:
        return [
            (r.number, r.level, r.outstanding)
            for r in world.billing.send_reminders(Region.US, as_of)
            if r.number in (october, november)
        ]

    assert sent(date(2026, 11, 22)) == []  # due 16 November: 6 days
    assert sent(date(2026, 11, 23)) == [(october, 7, D("10.80"))]
    assert sent(date(2026, 11, 30)) == []
    assert sent(date(2026, 12, 7)) == [(october, 21, D("10.80"))]
    assert sent(date(2026, 12, 7)) == []
    assert [(e.level, e.outstanding, e.due_date) for e in _overdue_events(world, october)] == [
        (7, D("10.80"), date(2026, 11, 16)),
        (21, D("10.80"), date(2026, 11, 16)),
    ]
    # Paid in full: no further reminder, however late.
    world.billing.record_payment(
        Region.US, _receipt(world, "overdue", "118.95", "tx-overdue", day=20)
    )
    assert sent(date(2027, 1, 31)) == []


def test_the_portals_reader_shows_each_account_its_documents_balance_and_payments(
    world: World,
) -> None:
    """What the portal shows (:class:`BillsReader`) of documents the cycles, a true-up and
    a payment made, by hand: site ``note`` owes 10.80 + 109.80 - 3.45 = 117.15, its
    November invoice 106.35 once the credit note is applied; ``prepaid`` paid 20.00, all
    of it applied (10.80 to October, 9.20 to November: 98.95 left to pay)."""
    reader = BillsReader(world.store.pool)
    note, prepaid = world.accounts["note"], world.accounts["prepaid"]
    own = Scope.of_account(Region.US, note)
    october, november = document_numbers(world, "note")
    (credit,) = document_numbers(world, "note", "credit_note")
    docs = reader.documents(note, scope=own)
    assert [(d.number, d.kind, d.gross, d.outstanding, d.reference) for d in docs] == [
        (credit, "credit_note", D("3.45"), D("0"), november),
        (november, "invoice", D("109.80"), D("106.35"), None),
        (october, "invoice", D("10.80"), D("10.80"), None),
    ]
    assert reader.balance(note, scope=own) == {"USD": D("117.15")}
    assert reader.payments(note, scope=own) == []
    detail = reader.document(november, scope=Scope.of_region(Region.US))
    assert detail is not None
    assert sum(line.kwh or 0 for line in detail.lines) == D("732")  # 697 + 23 + 12
    assert sum(line.net for line in detail.lines) == detail.net == D("109.80")
    paid = reader.payments(prepaid, scope=Scope.of_region(Region.US))
    assert [(p.amount, p.unallocated) for p in paid] == [(D("20.00"), D("0.00"))]
    assert reader.balance(prepaid, scope=Scope.of_account(Region.US, prepaid)) == {
        "USD": D("98.95")
    }
    # Out of reach: another account's scope, another region's.
    assert reader.documents(note, scope=Scope.of_account(Region.US, prepaid)) == []
    assert reader.document(november, scope=Scope.of_region(Region.ES)) is None
    assert reader.balance(note, scope=Scope.of_region(Region.AU)) == {}
