"""Accounts jobs and settlement on the real billing service and PostgreSQL: the daily
overdue-reminder job on an injected clock, refunds of a credit, and the cancellation of
an invoice that has notes. Documents come from real billing cycles over the meter
readings of the accounts test (``test_billing_accounts``), whose figures are by hand:

* every site in Los Angeles, contract from 29 October 2026, plan us-ppa-esc29 at
  0.15000 USD/kWh, California taxes electricity sales at 0 %; each meter's forward
  register rises 1000 Wh an hour;
* October (29-31, 72 hours): 72 kWh * 0.15 = 10.80, issued 2 November, due 16 November;
* November (721 hours: 1 November has 25): 721 kWh * 0.15 = 108.15, issued 2 December,
  due 16 December;
* site ``credit``: 500 Wh an hour on 10 November, withheld until 5 December, so November
  is 732 kWh = 109.80 (hours 0-22 estimated at 1000 Wh, hour 23 the day's 12000 Wh)
  and its true-up a credit note of 23 kWh = 3.45;
* site ``refund`` pays 150.00 on 5 December against 10.80 + 108.15 = 118.95: a credit
  of 31.05, refunded as 20.00 and then 11.05;
* site ``debit``: 2000 Wh an hour on 30 November, withheld until 5 December (nothing
  after it reached the cycle), so November bills those 24 hours as estimates of
  1000 Wh: 108.15 still, and its true-up a debit note of 24 kWh * 0.15 = 3.60.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from cloud.billing import (
    BillingService,
    LocalPaymentProvider,
    PaymentReceipt,
    RefundError,
    Reminder,
    ReminderSettings,
    run_reminders_daily,
)
from cloud.bootstrap import create_billing_service, region_zone
from cloud.events.types import EnergyRevised
from contracts.topics import Region
from potr.cli import app
from tests.integration.billing_world import (
    billing_store,
    db_rows,
    document_numbers,
    seed_us_sites,
    site_accounts,
)
from tests.integration.telemetry_world import Row, Store
from tests.integration.test_billing_cycle import IMPORT_WH, LOS_ANGELES, Q
from tests.waiting import until

pytestmark = pytest.mark.integration

D = Decimal
NAMES = ("remind", "refund", "credit", "debit")
OCTOBER, NOVEMBER = date(2026, 10, 1), date(2026, 11, 1)
#: (local day withheld until the backfill, Wh per quarter hour that day) per site.
ODD_DAYS = {"credit": (date(2026, 11, 10), 125.0), "debit": (date(2026, 11, 30), 500.0)}


@dataclass
class Clock:
    """An injected clock that counts how often it was read."""

    at: datetime
    reads: int = 0

    def __call__(self) -> datetime:
        self.reads += 1
        return self.at


@dataclass
class World:
    url: str
    store: Store
    billing: BillingService
    clock: Clock
    accounts: dict[str, str]
    sites: dict[str, int]
    withheld: dict[str, list[Row]] = field(default_factory=dict)


def _rows(device: int, odd: tuple[date, float] | None) -> tuple[list[Row], list[Row]]:
    """Every 15 minutes from 21 October to 1 December 01:00 local: (written now, withheld
    strictly after the odd day's local midnight and before the next one, when given)."""
    t = datetime.combine(date(2026, 10, 21), time(), LOS_ANGELES).astimezone(UTC)
    end = datetime.combine(date(2026, 12, 1), time(1), LOS_ANGELES).astimezone(UTC)
    start_odd = end_odd = end
    if odd is not None:
        start_odd = datetime.combine(odd[0], time(), LOS_ANGELES).astimezone(UTC)
        end_odd = start_odd + timedelta(days=1)
    now: list[Row] = []
    later: list[Row] = []
    wh = 5_000.0
    while t <= end:
        withheld = odd is not None and start_odd < t and (t < end_odd or odd[0].day == 30)
        (later if withheld else now).append((t, device, IMPORT_WH, wh, 0))
        wh += odd[1] if odd is not None and start_odd <= t < end_odd else 250.0
        t += Q
    return now, later


@pytest.fixture(scope="module")
def world(postgres_server_url: str) -> Iterator[World]:
    with billing_store(postgres_server_url, "test-settlement") as (url, store):
        yield _world(url, store)


def _world(url: str, store: Store) -> World:
    sites, withheld = seed_us_sites(
        store, NAMES, 700, lambda name, device: _rows(device, ODD_DAYS.get(name))
    )
    clock = Clock(datetime(2026, 11, 2, 12, tzinfo=UTC))
    billing = create_billing_service(store.pool, clock=clock)
    assert len(billing.run_cycle(Region.US, OCTOBER, run_by="test").numbers) == len(NAMES)
    clock.at = datetime(2026, 12, 2, 12, tzinfo=UTC)
    assert len(billing.run_cycle(Region.US, NOVEMBER, run_by="test").numbers) == len(NAMES)
    accounts = site_accounts(store, sites)
    return World(url, store, billing, clock, accounts, sites, withheld)


def _true_up(world: World, name: str) -> None:
    """The withheld day arrives (5 December) and billing trues the invoice up."""
    world.store.write(world.withheld[name], date(2026, 12, 5))
    world.store.catch_up(now=datetime(2026, 12, 5, tzinfo=UTC))
    world.clock.at = datetime(2026, 12, 5, 12, tzinfo=UTC)
    revised = EnergyRevised(site_id=world.sites[name], days=[ODD_DAYS[name][0]])
    assert world.billing.true_up(uuid4(), Region.US, revised).handled


# -- the daily reminder job ------------------------------------------------------------
@dataclass
class Runs:
    """The real service, with each run the job made noted (region, as_of, sent)."""

    billing: BillingService
    runs: list[tuple[Region, date, list[Reminder]]] = field(default_factory=list)

    def send_reminders(self, region: Region, as_of: date) -> Sequence[Reminder]:
        sent = self.billing.send_reminders(region, as_of)
        self.runs.append((region, as_of, sent))
        return sent


def _local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), LOS_ANGELES).astimezone(UTC)


async def test_the_daily_job_reminds_once_a_day_from_the_hour_on_the_regions_clock(
    world: World,
) -> None:
    """Site ``remind``'s October invoice (10.80) is due 16 November: 7 days overdue on
    23 November, Los Angeles time. The job runs at 09:00 there."""
    (october, _) = document_numbers(world, "remind")
    assert region_zone(Region.US) == ZoneInfo("America/Los_Angeles")
    clock = Clock(datetime(2026, 11, 23, 7, 30, tzinfo=UTC))  # 22 Nov 23:30 in LA
    runs = Runs(world.billing)
    settings = ReminderSettings(reminder_hour=9, reminder_check_s=0.01)
    stop = asyncio.Event()
    job = asyncio.create_task(
        run_reminders_daily(
            runs, stop, zones={Region.US: region_zone(Region.US)}, settings=settings, clock=clock
        )
    )
    try:
        # 23 November in UTC is still 22 November in LA: that day's run, 6 days overdue.
        await until(lambda: len(runs.runs), 5, "the run of 22 November")
        assert [(r, d) for r, d, _ in runs.runs] == [(Region.US, date(2026, 11, 22))]
        assert runs.runs[0][2] == []
        # 08:59 on 23 November: the job looks (the clock is read) but does not run.
        clock.at = _local(date(2026, 11, 23), 8, 59)
        reads = clock.reads
        await until(lambda: clock.reads - reads, 5, "three looks at the clock", at_least=3)
        assert len(runs.runs) == 1
        # 09:00: the day's run, once, however often the job looks afterwards.
        clock.at = _local(date(2026, 11, 23), 9)
        await until(lambda: len(runs.runs), 5, "the run of 23 November", at_least=2)
        reads = clock.reads
        await until(lambda: clock.reads - reads, 5, "three more looks", at_least=3)
        assert [(d, [(s.number, s.level, s.outstanding) for s in sent
                     if s.number == october]) for _, d, sent in runs.runs] == [
            (date(2026, 11, 22), []),
            (date(2026, 11, 23), [(october, 7, D("10.80"))]),
        ]  # fmt: skip
    finally:
        stop.set()
        await asyncio.wait_for(job, 5)
    (count,) = db_rows(
        world.store,
        "SELECT count(*) FROM billing.outbox WHERE name = 'invoice.overdue'"
        " AND payload->>'number' = %s",
        october,
    )
    assert count == (1,)


# -- refunds -----------------------------------------------------------------------------
def test_a_credit_is_refunded_once_per_key_and_never_beyond_what_is_held(world: World) -> None:
    account = world.accounts["refund"]
    paid = PaymentReceipt("bank", "tx-refund", account, D("150.00"), "USD",
                          datetime(2026, 12, 5, 12, tzinfo=UTC))  # fmt: skip
    world.billing.record_payment(Region.US, paid)
    assert world.billing.balance(account) == {"USD": D("-31.05")}  # 118.95 - 150.00
    # Before any run of this test: the CLI's refund below is stamped with the real clock.
    provider = LocalPaymentProvider(clock=lambda: datetime(2026, 12, 5, 18, tzinfo=UTC))

    first = world.billing.refund(provider, Region.US, account, D("20.00"), "r-1", by="support-1")
    assert (first.recorded, first.amount, first.credit_left) == (True, D("20.00"), D("11.05"))
    again = world.billing.refund(provider, Region.US, account, D("20.00"), "r-1", by="support-1")
    assert (again.recorded, again.refund_id, again.reference) == (
        False, first.refund_id, first.reference,
    )  # fmt: skip
    with pytest.raises(RefundError, match=r"credit is 11\.05"):
        world.billing.refund(provider, Region.US, account, D("20.00"), "r-2", by="support-1")
    assert world.billing.balance(account) == {"USD": D("-11.05")}  # -31.05 + 20.00

    # The rest through the CLI, as support would; more than is left is refused.
    env = {"POTR_DATABASE_URL": world.url}
    args = ["billing", "refund", "--region", "us", "--account", account, "--by", "support-1"]
    done = CliRunner().invoke(app, [*args, "--amount", "11.05", "--key", "r-3"], env=env)
    assert done.exit_code == 0, done.output
    said = " ".join(done.output.split())
    assert "11.05 refunded" in said
    assert "credit left 0.00" in said
    over = CliRunner().invoke(app, [*args, "--amount", "0.01", "--key", "r-4"], env=env)
    assert over.exit_code == 1
    assert "credit is 0" in " ".join(over.output.split())
    assert world.billing.balance(account) == {"USD": D("0.00")}
    december = world.billing.statement(
        account, datetime(2026, 12, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)
    )["USD"]
    # Opening: October's 10.80; then 108.15 invoiced, 150.00 paid, 20.00 and 11.05 back.
    assert december.opening == D("10.80")
    assert [(e.kind, e.amount) for e in december.entries] == [
        ("invoice", D("108.15")),
        ("payment", D("150.00")),
        ("refund", D("20.00")),
        ("refund", D("11.05")),
    ]
    assert december.closing == D("0.00")
    assert db_rows(
        world.store,
        "SELECT count(*), sum(amount) FROM billing.refunds WHERE account_id = %s",
        account,
    ) == [(2, D("31.05"))]
    # Each went out through billing's outbox, for SAP: one event per payment and refund.
    moved = db_rows(
        world.store,
        "SELECT name, payload->>'amount', payload->>'reference' FROM billing.outbox"
        " WHERE name LIKE 'payment.%%' AND payload->>'account_id' = %s ORDER BY id",
        account,
    )
    assert [(n, a) for n, a, _ in moved] == [
        ("payment.recorded", "150.00"),
        ("payment.refunded", "20.00"),
        ("payment.refunded", "11.05"),
    ]
    assert [r[:7] for _, _, r in moved] == ["US-PAY-", "US-RFD-", "US-RFD-"]


# -- cancelling an invoice with notes -------------------------------------------------------
def _documents(world: World, name: str) -> list[tuple[str, str, Decimal, str | None, str]]:
    """(number, kind, gross, number of the document it corrects, state), in issue order."""
    return [
        tuple(r)  # type: ignore[misc]
        for r in db_rows(
            world.store,
            "SELECT i.number, i.kind, i.gross, r.number, i.state FROM billing.invoices i"
            " LEFT JOIN billing.invoices r ON r.id = i.reference_id"
            " WHERE i.account_id = %s ORDER BY i.id",
            world.accounts[name],
        )
    ]


def _events(world: World, numbers: Sequence[str]) -> list[tuple[str, str, str]]:
    rows = db_rows(
        world.store,
        "SELECT payload->>'kind', payload->>'gross', payload->>'reference_number'"
        " FROM billing.outbox WHERE name = 'invoice.issued' AND payload->>'number' = ANY(%s)"
        " ORDER BY id",
        list(numbers),
    )
    return [tuple(r) for r in rows]  # type: ignore[misc]


def test_an_invoice_with_a_credit_note_is_reversed_document_by_document(world: World) -> None:
    """November 109.80 with its credit note 3.45 (applied to it: 106.35 owed). Cancelled:
    a debit note reverses the credit note (3.45), a cancellation the invoice (109.80),
    which pays the November invoice's 106.35 and the 3.45 reversal. October's 10.80 is
    still owed, and nothing else."""
    _true_up(world, "credit")
    october, november = document_numbers(world, "credit")
    (note,) = document_numbers(world, "credit", "credit_note")
    assert world.billing.outstanding(november) == D("106.35")
    world.clock.at = datetime(2026, 12, 7, 12, tzinfo=UTC)
    cancellation = world.billing.cancel(november, "wrong tariff zone", "ops@example.com")
    docs = _documents(world, "credit")
    reversal = docs[-2][0]
    assert docs[1:] == [
        (november, "invoice", D("109.80"), None, "cancelled"),
        (note, "credit_note", D("3.45"), november, "cancelled"),
        (reversal, "debit_note", D("3.45"), note, "issued"),
        (cancellation, "cancellation", D("109.80"), november, "issued"),
    ]
    assert _events(world, [reversal, cancellation]) == [
        ("debit_note", "3.45", note),
        ("cancellation", "109.80", november),
    ]
    assert world.billing.outstanding(november) == D("0.00")
    assert world.billing.outstanding(reversal) == D("0.00")
    assert world.billing.outstanding(october) == D("10.80")
    assert world.billing.balance(world.accounts["credit"]) == {"USD": D("10.80")}
    since = world.billing.statement(
        world.accounts["credit"],
        datetime(2026, 12, 1, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
    )["USD"]
    # 10.80 + 109.80 - 3.45 + 3.45 - 109.80 = 10.80
    assert (since.opening, since.closing) == (D("10.80"), D("10.80"))
    with pytest.raises(LookupError, match="not cancellable"):
        world.billing.cancel(november, "again", "ops@example.com")


def test_an_invoice_with_a_debit_note_paid_in_part_leaves_the_payment_as_credit(
    world: World,
) -> None:
    """50.00 paid on 5 December goes to October (10.80) and November (39.20). The
    true-up's debit note (3.60) then opens. Cancelled: the debit note's cancellation pays
    it, the invoice's pays the 68.95 still owed on it, and its other 39.20 — the money
    paid on November — is the account's credit: 10.80 + 108.15 + 3.60 - 50.00 - 3.60 -
    108.15 = -39.20."""
    account = world.accounts["debit"]
    paid = PaymentReceipt("bank", "tx-debit", account, D("50.00"), "USD",
                          datetime(2026, 12, 5, 1, tzinfo=UTC))  # fmt: skip
    world.billing.record_payment(Region.US, paid)
    _true_up(world, "debit")
    october, november = document_numbers(world, "debit")
    (note,) = document_numbers(world, "debit", "debit_note")
    assert world.billing.outstanding(note) == D("3.60")  # 24 kWh * 0.15
    world.clock.at = datetime(2026, 12, 7, 12, tzinfo=UTC)
    cancellation = world.billing.cancel(november, "customer moved out", "ops@example.com")
    docs = _documents(world, "debit")
    reversal = docs[-2][0]
    assert docs[1:] == [
        (november, "invoice", D("108.15"), None, "cancelled"),
        (note, "debit_note", D("3.60"), november, "cancelled"),
        (reversal, "cancellation", D("3.60"), note, "issued"),
        (cancellation, "cancellation", D("108.15"), november, "issued"),
    ]
    assert [world.billing.outstanding(n) for n in (october, november, note)] == [D("0.00")] * 3
    assert world.billing.balance(account) == {"USD": D("-39.20")}
    # The credit is real money: it can be refunded, and no more.
    provider = LocalPaymentProvider(clock=lambda: datetime(2026, 12, 7, 4, tzinfo=UTC))
    with pytest.raises(RefundError):
        world.billing.refund(provider, Region.US, account, D("39.21"), "d-1", by="support-1")
    back = world.billing.refund(provider, Region.US, account, D("39.20"), "d-2", by="support-1")
    assert back.credit_left == D("0.00")
    assert world.billing.balance(account) == {"USD": D("0.00")}
