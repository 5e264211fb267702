"""The billing service: a region's billing cycle and the true-up of billed hours.

**Cycle** (:meth:`BillingService.run_cycle`): one region's billing period (a month, or a
quarter for plans billed quarterly), under the region's advisory lock. A cycle is
recorded once per (region, period); a second run of a billed period is a no-op
(``already_billed``) and a run that stopped half-way resumes, skipping the sites already
invoiced. The cycle row records its progress (sites done of the total) as it goes, and a
run asked to ``stop`` stops between two sites (``interrupted``: the next run resumes).
Per site, in its own transaction: the meters' hours of the site's local
period (its IANA zone: 23- and 25-hour days are just UTC hours), an estimate profile
from the 7 local days before, :func:`~cloud.billing.ledger.reckon` with the carried AU
grid pool, the ledger lines, the energy allocated to the plan's tariff periods,
:func:`~cloud.billing.rating.rate_plans` (each day on the plan of the account's plan
history in effect that local day, decision 150), and the invoice numbered gap-free and emitted
as ``invoice.issued`` through the outbox. A site that cannot be billed (a meter no device
answers for, no grid meter where one is needed, data the tariffs cannot rate) is
skipped and its reason stored on the cycle at once: the cycle never stops for a site.

**True-up** (:meth:`BillingService.true_up`): on ``energy.revised`` for days already
invoiced, the invoice's whole period is re-read and re-reckoned from the pool it started
with, with the serials its lines were read from; hours whose figures changed get new
ledger lines superseding the old ones, and the energy difference per tariff period is
rated at the invoice's plans (each plan segment's days at its own, decision 150), zone
and contract (the effective-dated prices and taxes of its days) on a debit note (more
energy) and/or a credit note (less), each naming the invoice. Once per event
(``billing.inbox``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID
from zoneinfo import ZoneInfo

from cloud.adapters.postgres import Connection, ConnectionPool
from cloud.billing import receivables as ar
from cloud.billing import repository as repo
from cloud.billing.accounts import (
    AllocationError,
    Source,
    Statement,
    balance,
    draw_credit,
    reminder_levels,
    settle,
    statement,
)
from cloud.billing.documents import (
    document_number,
    issued_payload,
    segment_difference,
    segment_energy,
)
from cloud.billing.ledger import LedgerLine, Reckoning, hour_profile, reckon
from cloud.billing.money import currency_for
from cloud.billing.payments import PaymentProvider, PaymentReceipt, RefundReceipt
from cloud.billing.periods import PeriodEnergy
from cloud.billing.ports import (
    BillableSite,
    BillingSites,
    MeterHours,
    MeterMissingError,
    MeterSwap,
    RegisterEdges,
)
from cloud.billing.rating import BillingPeriod, RatedInvoice, plan_parts, rate_plans
from cloud.billing.readings import local_midnight, read_site_hours
from cloud.billing.service_charges import (
    ChargedItem,
    ServiceRates,
    load_service_rates,
    price_service,
)
from cloud.billing.tariffs import BillingCycle, Plan, TariffError, Tariffs, load_tariffs
from cloud.events.invoices import (
    DocumentKind,
    InvoiceOverdue,
    invoice_issued_event,
    invoice_overdue_event,
)
from cloud.events.outbox import emit, handle_once
from cloud.events.payments import PaymentMoved, payment_event, payment_reference
from cloud.events.types import EnergyRevised
from cloud.events.workorders import WorkOrderChargeable
from contracts.timeutil import utc_now
from contracts.topics import Region

__all__ = [
    "SCHEMA",
    "BillingService",
    "CycleResult",
    "DocumentError",
    "PaymentResult",
    "RefundError",
    "RefundResult",
    "Reminder",
    "SkippedSite",
    "TrueUpResult",
    "period_of",
]

log = logging.getLogger(__name__)

SCHEMA = "billing"
Pool = ConnectionPool[Connection[Any]]


@dataclass(frozen=True, slots=True)
class SkippedSite:
    site_id: int
    reason: str


@dataclass(frozen=True, slots=True)
class CycleResult:
    """``billed``: this run billed the period (``numbers`` issued now); ``already_billed``:
    an earlier run did, nothing was issued; ``interrupted``: the run was asked to stop
    before every site was done (the cycle stays running; the next run resumes it)."""

    cycle_id: int
    region: Region
    period: BillingPeriod
    state: Literal["billed", "already_billed", "interrupted"]
    numbers: tuple[str, ...]
    skipped: tuple[SkippedSite, ...]


@dataclass(frozen=True, slots=True)
class TrueUpResult:
    """``numbers``: the notes issued; ``superseded``: ledger lines replaced."""

    handled: bool
    numbers: tuple[str, ...] = ()
    superseded: int = 0


class DocumentError(LookupError):
    """No such document, or one that cannot be cancelled (not an invoice, or cancelled
    already)."""


@dataclass(frozen=True, slots=True)
class PaymentResult:
    """``recorded``: False when the provider's reference was recorded before (nothing
    changed); ``allocated``: (document number, amount) applied now."""

    recorded: bool
    payment_id: int | None = None
    allocated: tuple[tuple[str, Decimal], ...] = ()


class RefundError(ValueError):
    """A refund refused before anything was paid: more than the account's credit, or
    not an amount in cents."""


@dataclass(frozen=True, slots=True)
class RefundResult:
    """``recorded``: False when the key was used before (nothing more was paid; the first
    refund is described); ``credit_left``: the account's credit after it."""

    recorded: bool
    refund_id: int
    amount: Decimal
    reference: str
    credit_left: Decimal


@dataclass(frozen=True, slots=True)
class Reminder:
    """An ``invoice.overdue`` emitted: the document, its level (days overdue) and what
    it still owed."""

    number: str
    level: int
    outstanding: Decimal


def period_of(first_day: date, cycle: BillingCycle) -> BillingPeriod:
    """The month or quarter starting on ``first_day`` (the first of a month; of January,
    April, July or October for a quarter)."""
    if first_day.day != 1 or (cycle == "quarterly" and first_day.month % 3 != 1):
        raise ValueError(f"{first_day} does not start a {cycle} billing period")
    months = 1 if cycle == "monthly" else 3
    month = first_day.month - 1 + months
    after = date(first_day.year + month // 12, month % 12 + 1, 1)
    return BillingPeriod(first_day, after - timedelta(days=1))


@dataclass
class _Run:
    cycle_id: int
    numbers: list[str] = field(default_factory=list)
    skipped: list[SkippedSite] = field(default_factory=list)


class BillingService:
    """Billing cycles and true-ups over the ``billing`` schema. ``sites`` and ``meters``
    answer for the other services; ``zones`` are each region's tariff zones (checked
    against the tariff data); blocking: call from a thread in async code."""

    def __init__(
        self,
        pool: Pool,
        *,
        sites: BillingSites,
        meters: MeterHours,
        zones: Mapping[Region, Collection[str]],
        edges: RegisterEdges | None = None,
        clock: Callable[[], datetime] = utc_now,
        payment_days: int = 14,
        progress_every: int = 500,
        progress_interval_s: float = 1.0,
    ) -> None:
        self._pool = pool
        self._sites = sites
        self._meters = meters
        self._edges = edges
        self._zones = zones
        self._clock = clock
        self._payment_days = payment_days
        self._progress_every = progress_every
        #: How often a run writes its progress to the cycle row (seconds; 0: every site).
        self._progress_interval_s = progress_interval_s

    @property
    def clock(self) -> Callable[[], datetime]:
        """The service's clock (its daily jobs run on it too)."""
        return self._clock

    def tariffs(self, region: Region) -> Tariffs:
        return load_tariffs(region, self._zones[region])

    # -- the cycle ----------------------------------------------------------------------
    def open_cycle(
        self, region: Region, first_day: date, *, run_by: str, cycle: BillingCycle = "monthly"
    ) -> int:
        """The id of ``region``'s cycle of the period starting ``first_day``, recorded as
        running (not yet started: no total) if it is new, so that a run started in the
        background has an address at once. Takes no lock: :meth:`run_cycle` finds it."""
        period = period_of(first_day, cycle)
        with self._pool.connection() as conn:
            return repo.open_cycle(conn, region, period.first_day, period.last_day, run_by).id

    def run_cycle(
        self,
        region: Region,
        first_day: date,
        *,
        run_by: str,
        cycle: BillingCycle = "monthly",
        stop: Callable[[], bool] | None = None,
    ) -> CycleResult:
        """Bill ``region``'s sites whose plan is billed ``cycle`` for the period starting
        ``first_day`` (module docstring). ``run_by`` says who ran it (kept on the cycle);
        ``stop()``, asked before each site, True ends the run there (``interrupted``)."""
        period = period_of(first_day, cycle)
        with self._pool.connection() as lock_conn:
            lock_conn.autocommit = True
            repo.lock_region(lock_conn, region)
            try:
                return self._run_locked(lock_conn, region, period, cycle, run_by, stop)
            finally:
                repo.unlock_region(lock_conn, region)
                lock_conn.autocommit = False

    def _run_locked(
        self,
        conn: Connection[Any],
        region: Region,
        period: BillingPeriod,
        cycle: BillingCycle,
        run_by: str,
        stop: Callable[[], bool] | None,
    ) -> CycleResult:
        found = repo.open_cycle(conn, region, period.first_day, period.last_day, run_by)
        if found.state == "billed":
            log.info("billing cycle %s %s..%s already billed", region.value, *_days(period))
            skipped = tuple(SkippedSite(s["site_id"], s["reason"]) for s in found.skipped)
            return CycleResult(found.id, region, period, "already_billed", (), skipped)
        run = _Run(found.id)
        done = repo.invoiced_sites(conn, found.id)
        tariffs = self.tariffs(region)
        sites = [
            s
            for s in self._sites.billable_sites(region)
            if s.site_id not in done and _cycle_of(tariffs, s, period.last_day) in (cycle, None)
        ]
        log.info("billing cycle %s %s..%s: %d sites", region.value, *_days(period), len(sites))
        # ``conn`` is autocommitted (it holds the session lock): progress shows at once.
        repo.set_progress(conn, found.id, len(done), self._clock(), total=len(done) + len(sites))
        written = time.monotonic()
        for count, site in enumerate(sites, start=1):
            if stop is not None and stop():
                log.info(
                    "billing cycle %s stopped after %d of %d sites",
                    region.value,
                    count - 1,
                    len(sites),
                )
                repo.set_progress(conn, found.id, len(done) + count - 1, self._clock())
                skipped = tuple(run.skipped)
                return CycleResult(
                    found.id, region, period, "interrupted", tuple(run.numbers), skipped
                )
            self._bill_or_skip(conn, run, tariffs, site, period)
            if time.monotonic() - written >= self._progress_interval_s:
                repo.set_progress(conn, found.id, len(done) + count, self._clock())
                written = time.monotonic()
            if count % self._progress_every == 0:
                log.info(
                    "billing cycle %s: %d of %d sites, %d skipped",
                    region.value,
                    count,
                    len(sites),
                    len(run.skipped),
                )
        invoiced = repo.finish_cycle(conn, found.id, self._clock())
        log.info(
            "billing cycle %s %s..%s billed: %d invoices, %d skipped",
            region.value,
            *_days(period),
            invoiced,
            len(run.skipped),
        )
        return CycleResult(
            found.id, region, period, "billed", tuple(run.numbers), tuple(run.skipped)
        )

    def _bill_or_skip(
        self,
        conn: Connection[Any],
        run: _Run,
        tariffs: Tariffs,
        site: BillableSite,
        period: BillingPeriod,
    ) -> None:
        try:
            number = self._bill_site(run.cycle_id, tariffs, site, period)
        except (MeterMissingError, TariffError, ValueError) as e:
            reason = f"{type(e).__name__}: {e}"
        except Exception as e:  # one site's surprise must not stop a region's billing
            log.exception("billing site %s (%s) failed", site.site_id, site.region.value)
            reason = f"{type(e).__name__}: {e}"
        else:
            if number is not None:
                run.numbers.append(number)
                return
            reason = "nothing billable in the period"
        log.info("billing site %s (%s) skipped: %s", site.site_id, site.region.value, reason)
        run.skipped.append(SkippedSite(site.site_id, reason))
        repo.add_skipped(conn, run.cycle_id, {"site_id": site.site_id, "reason": reason})

    def _bill_site(
        self, cycle_id: int, tariffs: Tariffs, site: BillableSite, period: BillingPeriod
    ) -> str | None:
        """The site's invoice of ``period``, issued; its number (None: nothing billable)."""
        if site.contract_start > period.last_day:
            raise ValueError(f"the contract starts {site.contract_start}, after the period")
        own = BillingPeriod(max(period.first_day, site.contract_start), period.last_day)
        plans = _plans(tariffs, site.plans_within(own.first_day, own.last_day))
        # The region's plans share their billable basis: any of them says what is read.
        plan = plans[-1][1]
        if plan.billable_basis != "us_production" and site.grid_meter is None:
            raise ValueError("the installation has no grid meter (needed for on-site energy)")
        zone = ZoneInfo(site.time_zone)
        hours = read_site_hours(
            self._meters,
            site.region,
            site.site_id,
            own,
            zone,
            plan,
            (site.billing_meter, site.grid_meter),
            swaps=site.swaps,
            edges=self._edges,
        )
        with self._pool.connection() as conn:
            repo.lock_site(conn, site.region, site.site_id)
            pool_in = _carried(conn, site, local_midnight(own.first_day, zone))
            reckoning = reckon(
                hours.period,
                plan.billable_basis,
                zone,
                hour_profile(hours.history, zone),
                pool_mwh=pool_in,
            )
            rated = _rate(
                tariffs, plans, site.tariff_zone, site.contract_start, own, reckoning.lines, zone
            )
            if not rated.lines:
                return None
            number, invoice_id = self._issue(
                conn,
                rated,
                "invoice",
                site.account_id,
                site.site_id,
                site.time_zone,
                pool_in=pool_in,
                cycle_id=cycle_id,
            )
            repo.insert_ledger_lines(
                conn, site.region, site.site_id, reckoning.lines, hours.meters, invoice_id
            )
            repo.set_grid_pool(
                conn,
                site.region,
                site.site_id,
                reckoning.pool_mwh,
                local_midnight(own.last_day + timedelta(days=1), zone),
            )
            return number

    def _issue(
        self,
        conn: Connection[Any],
        rated: RatedInvoice,
        kind: DocumentKind,
        account_id: str,
        site_id: int,
        time_zone: str,
        *,
        pool_in: int,
        cycle_id: int | None = None,
        reference: tuple[int, str] | None = None,
        settle: bool = True,
        work_order_id: int | None = None,
    ) -> tuple[str, int]:
        """Number, store and emit a document in the caller's transaction (and, with
        ``settle``, allocate the account's money)."""
        now = self._clock()
        # The site's local date: an AU invoice issued at 9 am on 1 January is dated (and
        # numbered in) the new year although UTC is still in the old one.
        issue_date = now.astimezone(ZoneInfo(time_zone)).date()
        year = issue_date.year
        number = document_number(rated.region, year, repo.next_number(conn, rated.region, year))
        due = issue_date + timedelta(days=self._payment_days)
        doc = repo.NewDocument(
            kind=kind,
            number=number,
            account_id=account_id,
            site_id=site_id,
            cycle_id=cycle_id,
            time_zone=time_zone,
            pool_in_mwh=pool_in,
            rated=rated,
            reference_id=reference[0] if reference else None,
            issued_at=now,
            issue_date=issue_date,
            due_date=due,
            work_order_id=work_order_id,
        )
        invoice_id = repo.insert_document(conn, doc)
        payload = issued_payload(
            rated,
            kind=kind,
            number=number,
            account_id=account_id,
            issue_date=issue_date,
            due_date=due,
            reference_number=reference[1] if reference else None,
            work_order_id=work_order_id,
        )
        emit(conn, SCHEMA, invoice_issued_event(payload, occurred_at=now))
        if settle:
            self._settle(conn, account_id, rated.currency)
        return number, invoice_id

    # -- accounts -----------------------------------------------------------------------
    def _settle(
        self,
        conn: Connection[Any],
        account_id: str,
        currency: str,
        *,
        among: Collection[int] | None = None,
    ) -> None:
        """Allocate the account's unallocated payments and credits to its open charges
        (:func:`~cloud.billing.accounts.settle`) under the account's lock; with ``among``,
        only credit documents and charges of those ids."""
        ar.lock_account(conn, account_id)
        sources = ar.sources(conn, account_id, currency)
        items = ar.open_items(conn, account_id, currency)
        if among is not None:
            sources = [s for s in sources if s.kind != "payment" and s.source_id in among]
            items = [i for i in items if i.document_id in among]
        parts = settle(sources, items)
        ar.insert_allocations(conn, parts, self._clock())

    def record_payment(self, region: Region, receipt: PaymentReceipt) -> PaymentResult:
        """Store a payment received and allocate it (with any credit the account holds)
        to its open charges, oldest due first, in one transaction. The same provider
        reference again records nothing."""
        currency = currency_for(region)
        if receipt.currency != currency:
            raise ValueError(f"region {region.value} is paid in {currency}, not {receipt.currency}")
        with self._pool.connection() as conn:
            ar.lock_account(conn, receipt.account_id)
            payment_id = ar.insert_payment(conn, region, receipt)
            if payment_id is None:
                return PaymentResult(recorded=False)
            _emit_moved(conn, region, "payment", payment_id, receipt, receipt.received_at)
            parts = settle(
                ar.sources(conn, receipt.account_id, currency),
                ar.open_items(conn, receipt.account_id, currency),
            )
            ar.insert_allocations(conn, parts, self._clock())
            numbers = ar.numbers(conn, [d for _, d, _ in parts])
            allocated = tuple(
                (numbers[d], amount)
                for s, d, amount in parts
                if s.kind == "payment" and s.source_id == payment_id
            )
        log.info("payment %s recorded for %s: %s", receipt.reference, receipt.account_id, allocated)
        return PaymentResult(True, payment_id, allocated)

    def collect(
        self,
        provider: PaymentProvider,
        region: Region,
        account_id: str,
        amount: Decimal,
        idempotency_key: str,
    ) -> PaymentResult:
        """Charge ``amount`` of the region's currency through ``provider`` and record the
        payment (:meth:`record_payment`). A retry with the same ``idempotency_key`` gets
        the provider's first receipt, so it records nothing more; a refusal raises
        :class:`~cloud.billing.payments.PaymentDeclinedError` and records nothing."""
        receipt = provider.charge(account_id, amount, currency_for(region), idempotency_key)
        return self.record_payment(region, receipt)

    def refund(
        self,
        provider: PaymentProvider,
        region: Region,
        account_id: str,
        amount: Decimal,
        idempotency_key: str,
        *,
        by: str,
    ) -> RefundResult:
        """Pay ``amount`` of the account's credit back through ``provider`` and record it,
        under the account's lock: open charges are settled first (credit pays what is
        owed before it is paid out), then a refund above the credit left is refused
        (:class:`RefundError`, nothing paid). The refund draws on the credit's sources
        oldest first, so the balance moves back towards zero by ``amount``. The same
        ``idempotency_key`` again pays and records nothing and describes the first
        refund. A provider's refusal raises
        :class:`~cloud.billing.payments.PaymentDeclinedError` and records nothing.

        The provider is called inside the transaction: if the commit then fails, the
        caller retries with the same key, the provider returns its first receipt, and the
        refund is recorded once."""
        currency = currency_for(region)
        exponent = amount.as_tuple().exponent
        if amount <= 0 or not isinstance(exponent, int) or exponent < -2:
            raise RefundError(f"a refund is a positive amount in cents, not {amount}")
        with self._pool.connection() as conn:
            ar.lock_account(conn, account_id)
            found = ar.refund_by_key(conn, account_id, idempotency_key)
            if found is not None:
                left = _credit(ar.sources(conn, account_id, found.currency))
                return RefundResult(False, found.id, found.amount, found.provider_reference, left)
            self._settle(conn, account_id, currency)
            sources = ar.sources(conn, account_id, currency)
            try:
                drawn = draw_credit(sources, amount)
            except AllocationError as e:
                raise RefundError(f"{account_id}: {e}") from None
            receipt: RefundReceipt = provider.refund(account_id, amount, currency, idempotency_key)
            refund_id = ar.insert_refund(
                conn, region, receipt, idempotency_key, by, drawn, self._clock()
            )
            _emit_moved(conn, region, "refund", refund_id, receipt, receipt.refunded_at)
            left = _credit(sources) - amount
        log.info("refund %s of %s %s to %s by %s", receipt.reference, amount, currency,
                 account_id, by)  # fmt: skip
        return RefundResult(True, refund_id, amount, receipt.reference, left)

    def balance(self, account_id: str) -> dict[str, Decimal]:
        """What the account owes per currency, everything recorded counted (negative: a
        credit): charges - credit documents - payments + refunds."""
        with self._pool.connection() as conn:
            return balance(ar.entries(conn, account_id, _END_OF_TIME))

    def outstanding(self, number: str) -> Decimal:
        """What a charge still owes (gross less its allocations); 0 for other kinds."""
        with self._pool.connection() as conn:
            found = ar.document(conn, number)
            if found is None:
                raise DocumentError(f"no document {number}")
            items = ar.open_items(conn, found.account_id, found.currency)
        return next((i.outstanding for i in items if i.document_id == found.id), Decimal(0))

    def statement(self, account_id: str, start: datetime, end: datetime) -> dict[str, Statement]:
        """The account's statement of ``[start, end)`` per currency: the balance before,
        the documents (at issue) and payments (at receipt) in it, the balance after."""
        with self._pool.connection() as conn:
            history = ar.entries(conn, account_id, end)
        return statement(history, start, end)

    def overdue(self, region: Region, as_of: date) -> list[ar.OverdueRow]:
        """The region's charges whose due date passed before ``as_of`` and that still owe."""
        with self._pool.connection() as conn:
            return ar.overdue(conn, region, as_of)

    def send_reminders(self, region: Region, as_of: date) -> list[Reminder]:
        """Emit ``invoice.overdue`` for each overdue charge once per reminder level it
        has reached on ``as_of`` (7 and 21 days after its due date); a level sent before
        is not sent again."""
        sent: list[Reminder] = []
        now = self._clock()
        with self._pool.connection() as conn:
            for row in ar.overdue(conn, region, as_of):
                for level in reminder_levels(row.due_date, as_of):
                    if not ar.insert_reminder(conn, row.id, level, row.outstanding, now):
                        continue
                    overdue = InvoiceOverdue.model_validate(
                        {**_fields(row), "level": level, "outstanding": row.outstanding}
                    )
                    emit(conn, SCHEMA, invoice_overdue_event(overdue, occurred_at=now))
                    sent.append(Reminder(row.number, level, row.outstanding))
        log.info("overdue reminders %s as of %s: %d sent", region.value, as_of, len(sent))
        return sent

    def cancel(self, number: str, reason: str, by: str) -> str:
        """Cancel invoice ``number`` and the notes that correct it, one reversing document
        per document (numbered and emitted like any other, naming the one it reverses);
        nothing is deleted, the reversed documents are kept, marked cancelled. A charge
        (the invoice, a debit note) is reversed by a ``cancellation``; a credit note by a
        ``debit_note`` (reversing a credit raises the balance, and a cancellation always
        lowers it). The reversals settle each other first — a cancellation its own
        document, then the family's other reversals — and what is left is the account's
        credit (money paid on the invoice). Returns the invoice's cancellation's number."""
        with self._pool.connection() as conn:
            found = ar.document(conn, number, for_update=True)
            if found is None:
                raise DocumentError(f"no document {number}")
            if found.kind != "invoice" or found.state != "issued":
                raise DocumentError(f"{number} is a {found.state} {found.kind}: not cancellable")
            ar.lock_account(conn, found.account_id)
            family = [*ar.notes_of(conn, found.id), found]  # the invoice last
            reversals: list[tuple[str, str]] = []
            issued: list[int] = []
            for doc in family:
                kind: DocumentKind = "debit_note" if doc.kind == "credit_note" else "cancellation"
                reversal, reversal_id = self._issue(
                    conn,
                    ar.rated_of(conn, doc.id),
                    kind,
                    doc.account_id,
                    doc.site_id,
                    doc.time_zone,
                    pool_in=doc.pool_in_mwh,
                    reference=(doc.id, doc.number),
                    settle=False,
                )
                ar.insert_cancellation(conn, doc.id, reversal_id, reason, by, self._clock())
                reversals.append((doc.number, reversal))
                issued.append(reversal_id)
            ids = {d.id for d in family} | set(issued)
            self._settle(conn, found.account_id, found.currency, among=ids)
            self._settle(conn, found.account_id, found.currency)
        log.info("%s cancelled by %s (%s): %s", number, by, reversals, reason)
        return reversals[-1][1]

    # -- jobs chargeable to the customer (business.md §6) -------------------------------
    def service_rates(self, region: Region) -> ServiceRates:
        return load_service_rates(region, self._zones[region])

    def charge_work_order(
        self, event_id: UUID, region: Region, charge: WorkOrderChargeable
    ) -> str | None:
        """The service invoice of a completed job chargeable to the customer
        (:mod:`cloud.billing.service_charges`), numbered, emitted and settled like any
        invoice; once per event and once per work order. Its number, or None when the
        event was handled already or the job cannot be charged (logged with why: no
        billable site, a part without a cost, no rate or tax in force)."""
        site = self._sites.billable_site(region, charge.site_id)
        with self._pool.connection() as conn:
            if not handle_once(conn, SCHEMA, event_id):
                return None
            if repo.service_invoice(conn, region, charge.work_order_id) is not None:
                return None
            refused = _uncharged(site, charge, currency_for(region))
            if refused is not None or site is None:
                log.warning("work order %s not charged: %s", charge.work_order_id, refused)
                return None
            day = charge.completed_at.astimezone(ZoneInfo(site.time_zone)).date()
            items = [
                ChargedItem(p.part_no, p.description, p.quantity, p.unit_cost or Decimal(0))
                for p in charge.parts
            ]
            try:
                rated = price_service(
                    self.service_rates(region),
                    tariff_zone=site.tariff_zone,
                    day=day,
                    parts=items,
                    labour_minutes=charge.labour_minutes,
                )
            except TariffError as error:
                log.warning("work order %s not charged: %s", charge.work_order_id, error)
                return None
            number, _ = self._issue(
                conn,
                rated,
                "invoice",
                charge.account_id or site.account_id,
                site.site_id,
                site.time_zone,
                pool_in=0,
                work_order_id=charge.work_order_id,
            )
            log.info("work order %s charged on %s", charge.work_order_id, number)
            return number

    # -- true-ups -----------------------------------------------------------------------
    def true_up(self, event_id: UUID, region: Region, revised: EnergyRevised) -> TrueUpResult:
        """Re-reckon the invoiced periods holding ``revised.days`` and issue notes for
        the difference (module docstring); once per ``event_id``."""
        tariffs = self.tariffs(region)
        with self._pool.connection() as conn:
            if not handle_once(conn, SCHEMA, event_id):
                return TrueUpResult(handled=False)
            repo.lock_site(conn, region, revised.site_id)
            numbers: list[str] = []
            superseded = 0
            if not revised.days:
                return TrueUpResult(True)
            # One read: the periods holding a revised day, and the ones after them (which a
            # changed AU pool reaches).
            carry = False
            for invoice in repo.invoices_from(conn, region, revised.site_id, min(revised.days)):
                holds = any(invoice.first_day <= d <= invoice.last_day for d in revised.days)
                if not (carry or holds):
                    continue
                end = _period_end(invoice)
                pool_out = repo.pool_before(conn, region, invoice.site_id, end)
                issued, count = self._true_up_invoice(conn, tariffs, region, invoice)
                numbers += issued
                superseded += count
                # A changed AU grid pool changes what the next period could bill: it is
                # trued up too, from the pool this one now ends with.
                basis = tariffs.plan(invoice.plan_code).billable_basis
                carry = basis == "au_pv_consumed_and_pv_battery" and pool_out != repo.pool_before(
                    conn, region, invoice.site_id, end
                )
            return TrueUpResult(True, tuple(numbers), superseded)

    def _true_up_invoice(
        self, conn: Connection[Any], tariffs: Tariffs, region: Region, invoice: repo.InvoiceRow
    ) -> tuple[list[str], int]:
        zone = ZoneInfo(invoice.time_zone)
        period = BillingPeriod(invoice.first_day, invoice.last_day)
        start = local_midnight(period.first_day, zone)
        end = local_midnight(period.last_day + timedelta(days=1), zone)
        stored = repo.current_lines(conn, region, invoice.site_id, start, end)
        if not stored:
            return [], 0
        plans = _plans(tariffs, invoice.plans or ((period.first_day, invoice.plan_code),))
        plan = plans[-1][1]
        billing_meter, grid_meter, swaps = self._meters_of(region, invoice.site_id, stored)
        hours = read_site_hours(
            self._meters,
            region,
            invoice.site_id,
            period,
            zone,
            plan,
            (billing_meter, grid_meter),
            swaps=swaps,
            edges=self._edges,
        )
        new = reckon(
            hours.period,
            plan.billable_basis,
            zone,
            hour_profile(hours.history, zone),
            pool_mwh=_pool_in(conn, region, invoice, start),
        )
        old = [s.line for s in stored]
        changed = [k for k, (a, b) in enumerate(zip(old, new.lines, strict=True)) if a != b]
        if not changed:
            return [], 0
        args = (invoice.tariff_zone, invoice.contract_start, period)
        numbers, ids = self._notes(conn, tariffs, plans, invoice, zone, old, new, args)
        note_id = ids[0] if ids else invoice.id
        repo.replace_lines(
            conn,
            region,
            invoice.site_id,
            [stored[k].id for k in changed],
            [new.lines[k] for k in changed],
            [hours.meters[k] for k in changed],
            note_id,
        )
        _, through = repo.grid_pool(conn, region, invoice.site_id)
        if through == end:  # the latest billed period: the pool carried on is this one's
            repo.set_grid_pool(conn, region, invoice.site_id, new.pool_mwh, end)
        log.info("true-up of %s: %d hours changed, notes %s", invoice.number, len(changed), numbers)
        return numbers, len(changed)

    def _meters_of(
        self, region: Region, site_id: int, stored: Sequence[repo.StoredLine]
    ) -> tuple[str, str | None, tuple[MeterSwap, ...]]:
        """The meters to re-read a billed period from: the grid meter its lines were
        read from (even if the record changed since) and the billing meter's chain of
        swaps as the customers service knows it now (a swap recorded late included);
        without a billable site any more, the serial its last line was read from."""
        grid_meter = stored[0].meters.grid_meter
        site = self._sites.billable_site(region, site_id)
        if site is None:
            return stored[-1].meters.billing_meter, grid_meter, ()
        return site.billing_meter, grid_meter, site.swaps

    def _notes(
        self,
        conn: Connection[Any],
        tariffs: Tariffs,
        plans: Sequence[tuple[date, Plan]],
        invoice: repo.InvoiceRow,
        zone: ZoneInfo,
        old: Sequence[LedgerLine],
        new: Reckoning,
        args: tuple[str, date, BillingPeriod],
    ) -> tuple[list[str], list[int]]:
        """Credit and/or debit notes for the energy difference, at the invoice's terms:
        each plan segment's days at its own plan (decision 150)."""
        tariff_zone, contract_start, period = args
        segments = [(day, tariffs.schedule_of(plan)) for day, plan in plans]
        before = segment_energy(old, time_zone=zone, segments=segments, tariff_zone=tariff_zone)
        after = segment_energy(
            new.lines, time_zone=zone, segments=segments, tariff_zone=tariff_zone
        )
        differences = segment_difference(after, before)
        numbers, ids = [], []
        sides: list[tuple[DocumentKind, list[tuple[PeriodEnergy, ...]]]] = [
            ("credit_note", [d.less for d in differences]),
            ("debit_note", [d.more for d in differences]),
        ]
        for kind, energy in sides:
            if not any(energy):
                continue
            rated = rate_plans(
                plan_parts(plans, period, energy),
                tariffs.zone_taxes(tariff_zone),
                contract_start=contract_start,
                period=period,
            )
            if not rated.lines or rated.gross == 0:
                continue
            number, note_id = self._issue(
                conn,
                rated,
                kind,
                invoice.account_id,
                invoice.site_id,
                invoice.time_zone,
                pool_in=invoice.pool_in_mwh,
                reference=(invoice.id, invoice.number),
            )
            numbers.append(number)
            ids.append(note_id)
        return numbers, ids


_END_OF_TIME = datetime.max.replace(tzinfo=ZoneInfo("UTC"))


def _uncharged(site: BillableSite | None, charge: WorkOrderChargeable, currency: str) -> str | None:
    """Why the job cannot be charged; None when it can."""
    if site is None:
        return f"site {charge.site_id} is not billable (no account on a plan, no installation)"
    for part in charge.parts:
        if part.unit_cost is None:
            return f"part {part.part_no} has no recorded cost"
        if part.currency != currency:
            return f"part {part.part_no} is costed in {part.currency}, not {currency}"
    return None


def _emit_moved(
    conn: Connection[Any],
    region: Region,
    kind: Literal["payment", "refund"],
    row_id: int,
    receipt: PaymentReceipt | RefundReceipt,
    at: datetime,
) -> None:
    """``payment.recorded`` / ``payment.refunded`` in the recording transaction."""
    moved = PaymentMoved(
        kind=kind,
        reference=payment_reference(region, kind, row_id),
        region=region,
        account_id=receipt.account_id,
        currency=receipt.currency,
        amount=receipt.amount,
        at=at,
        booked_on=at.astimezone(ZoneInfo("UTC")).date(),
        provider=receipt.provider,
        provider_reference=receipt.reference,
    )
    emit(conn, SCHEMA, payment_event(moved, occurred_at=at))


def _credit(sources: Sequence[Source]) -> Decimal:
    return sum((s.amount for s in sources), Decimal(0))


def _fields(row: ar.OverdueRow) -> dict[str, Any]:
    return {
        "number": row.number,
        "kind": row.kind,
        "region": row.region,
        "account_id": row.account_id,
        "currency": row.currency,
        "due_date": row.due_date,
    }


def _days(period: BillingPeriod) -> tuple[str, str]:
    return period.first_day.isoformat(), period.last_day.isoformat()


def _cycle_of(tariffs: Tariffs, site: BillableSite, day: date) -> BillingCycle | None:
    """The cycle of the site's plan on ``day`` (a period's last: the plan a period
    ends on says when it is billed, decision 150); None for a plan the data lacks
    (billed, so that the cycle records why it cannot be)."""
    try:
        return tariffs.plan(site.plan_on(day)).billing_cycle
    except TariffError:
        return None


def _period_end(invoice: repo.InvoiceRow) -> datetime:
    return local_midnight(invoice.last_day + timedelta(days=1), ZoneInfo(invoice.time_zone))


def _pool_in(
    conn: Connection[Any], region: Region, invoice: repo.InvoiceRow, start: datetime
) -> int:
    """The AU grid pool an invoiced period starts with as its predecessors' current
    lines leave it (a true-up of an earlier period may have changed it); the pool the
    invoice was issued with where no earlier period joins it."""
    found = repo.pool_before(conn, region, invoice.site_id, start)
    return invoice.pool_in_mwh if found is None else found


def _carried(conn: Connection[Any], site: BillableSite, start: datetime) -> int:
    """The grid pool carried into a period starting at ``start``: none when the pool
    kept is a later period's (a period billed out of order starts empty)."""
    pool, through = repo.grid_pool(conn, site.region, site.site_id)
    return pool if through is None or through <= start else 0


def _plans(tariffs: Tariffs, segments: Sequence[tuple[date, str]]) -> list[tuple[date, Plan]]:
    """A period's plan segments (first day, code) with their plans."""
    return [(day, tariffs.plan(code)) for day, code in segments]


def _rate(
    tariffs: Tariffs,
    plans: Sequence[tuple[date, Plan]],
    tariff_zone: str,
    contract_start: date,
    period: BillingPeriod,
    lines: Sequence[LedgerLine],
    zone: ZoneInfo,
) -> RatedInvoice:
    """The period's invoice from its ledger lines, each plan segment's days allocated to
    its plan's tariff periods and rated at its plan (decision 150)."""
    energy = segment_energy(
        lines,
        time_zone=zone,
        segments=[(day, tariffs.schedule_of(plan)) for day, plan in plans],
        tariff_zone=tariff_zone,
    )
    return rate_plans(
        plan_parts(plans, period, energy),
        tariffs.zone_taxes(tariff_zone),
        contract_start=contract_start,
        period=period,
    )
