"""Accounts receivable as pure functions: allocating money to open documents, an
account's balance and statement, and overdue reminder levels.

Sign convention: an invoice and a debit note are *charges* (they raise what the customer
owes); a credit note, a cancellation and a payment are *credits* (they lower it); a
refund pays credit back, so it raises the balance towards zero like a charge. All
amounts are positive ``Decimal`` in one currency; the kind gives the direction. Nothing
here rounds: every amount is already in cents, so sums are exact.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

__all__ = [
    "CHARGE_KINDS",
    "CREDIT_KINDS",
    "REMINDER_DAYS",
    "Allocation",
    "AllocationError",
    "Entry",
    "OpenItem",
    "Source",
    "Statement",
    "allocate_money",
    "balance",
    "draw_credit",
    "reminder_levels",
    "settle",
    "statement",
]

#: Documents that raise a balance, and those that lower it.
CHARGE_KINDS = frozenset({"invoice", "debit_note"})
CREDIT_KINDS = frozenset({"credit_note", "cancellation"})
#: Entries that raise the balance: charges, and refunds (credit paid back).
RAISING_KINDS = CHARGE_KINDS | {"refund"}
#: Days after the due date at which an unpaid document gets a reminder (its levels).
REMINDER_DAYS: tuple[int, ...] = (7, 21)


class AllocationError(ValueError):
    """A negative amount, or an open item whose outstanding is not positive."""


@dataclass(frozen=True, slots=True)
class OpenItem:
    """A charge still owed: ``outstanding`` > 0 (gross less what was allocated to it)."""

    document_id: int
    due_date: date
    issued_at: datetime
    outstanding: Decimal


@dataclass(frozen=True, slots=True)
class Allocation:
    """``parts``: (document id, amount) in the order paid; ``remainder``: what no open
    item needed (kept as the account's credit)."""

    parts: tuple[tuple[int, Decimal], ...]
    remainder: Decimal


def allocate_money(amount: Decimal, items: Iterable[OpenItem]) -> Allocation:
    """Spread ``amount`` over ``items``, oldest due first (then oldest issued, then id),
    each up to its outstanding; what is left over is the remainder. Exact: the parts and
    the remainder add up to ``amount``."""
    if amount < 0:
        raise AllocationError(f"cannot allocate a negative amount {amount}")
    left = amount
    parts: list[tuple[int, Decimal]] = []
    for item in sorted(items, key=lambda i: (i.due_date, i.issued_at, i.document_id)):
        if item.outstanding <= 0:
            raise AllocationError(f"document {item.document_id} has nothing outstanding")
        if left == 0:
            break
        part = min(left, item.outstanding)
        parts.append((item.document_id, part))
        left -= part
    return Allocation(tuple(parts), left)


@dataclass(frozen=True, slots=True)
class Source:
    """Money not yet allocated: a payment's or a credit document's (``kind``) remaining
    ``amount``; a credit document's ``applies_to`` is the charge it references, which it
    settles before anything else."""

    kind: str
    source_id: int
    at: datetime
    amount: Decimal
    applies_to: int | None = None


def settle(
    sources: Sequence[Source], items: Sequence[OpenItem]
) -> list[tuple[Source, int, Decimal]]:
    """Allocate ``sources`` to ``items``: each credit document first to the charge it
    references, then every source, oldest first, to the charges oldest due first.
    Returns (source, document id, amount) for each allocation; what a source keeps is
    still the account's credit. Never more than an item's outstanding nor a source's
    amount."""
    owed = {i.document_id: i.outstanding for i in items}
    left = {(s.kind, s.source_id): s.amount for s in sources}
    result: list[tuple[Source, int, Decimal]] = []

    def take(source: Source, document_id: int, amount: Decimal) -> None:
        if amount > 0:
            owed[document_id] -= amount
            left[(source.kind, source.source_id)] -= amount
            result.append((source, document_id, amount))

    for s in sources:
        if s.applies_to is not None and owed.get(s.applies_to, Decimal(0)) > 0:
            take(s, s.applies_to, min(s.amount, owed[s.applies_to]))
    for s in sorted(sources, key=lambda s: (s.at, s.kind, s.source_id)):
        still = [
            OpenItem(i.document_id, i.due_date, i.issued_at, owed[i.document_id])
            for i in items
            if owed[i.document_id] > 0
        ]
        for document_id, amount in allocate_money(left[(s.kind, s.source_id)], still).parts:
            take(s, document_id, amount)
    return result


def draw_credit(sources: Sequence[Source], amount: Decimal) -> list[tuple[Source, Decimal]]:
    """What a refund of ``amount`` takes from each source of credit, oldest first, each
    up to what it has left; :class:`AllocationError` when they hold less than
    ``amount`` (a refund never pays out more than the credit held)."""
    held = sum((s.amount for s in sources), Decimal(0))
    if amount <= 0 or amount > held:
        raise AllocationError(f"cannot refund {amount}: the account's credit is {held}")
    left = amount
    drawn: list[tuple[Source, Decimal]] = []
    for s in sorted(sources, key=lambda s: (s.at, s.kind, s.source_id)):
        if left == 0:
            break
        part = min(left, s.amount)
        if part > 0:
            drawn.append((s, part))
            left -= part
    return drawn


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of an account's history: a document (``kind`` its kind, ``reference``
    its number), a payment or a refund (``kind`` ``payment`` / ``refund``,
    ``reference`` the provider's)."""

    at: datetime
    kind: str
    reference: str
    currency: str
    amount: Decimal

    @property
    def signed(self) -> Decimal:
        """What the entry adds to the balance (negative for credits)."""
        return self.amount if self.kind in RAISING_KINDS else -self.amount


def balance(entries: Iterable[Entry]) -> dict[str, Decimal]:
    """What the customer owes per currency (negative: PoTR owes them, a credit):
    sum of charges - sum of credit documents - sum of payments + sum of refunds."""
    totals: dict[str, Decimal] = {}
    for e in entries:
        totals[e.currency] = totals.get(e.currency, Decimal(0)) + e.signed
    return totals


@dataclass(frozen=True, slots=True)
class Statement:
    """An account's period ``[start, end)`` in one currency: the balance before it, its
    entries in time order, and the balance after (opening + Σ signed entries)."""

    currency: str
    start: datetime
    end: datetime
    opening: Decimal
    entries: tuple[Entry, ...]
    closing: Decimal


def statement(entries: Sequence[Entry], start: datetime, end: datetime) -> dict[str, Statement]:
    """The statement of ``[start, end)`` per currency of ``entries`` (all of the
    account's history up to ``end`` at least)."""
    result: dict[str, Statement] = {}
    for currency in sorted({e.currency for e in entries}):
        mine = sorted((e for e in entries if e.currency == currency), key=lambda e: e.at)
        opening = sum((e.signed for e in mine if e.at < start), Decimal(0))
        during = tuple(e for e in mine if start <= e.at < end)
        closing = opening + sum((e.signed for e in during), Decimal(0))
        result[currency] = Statement(currency, start, end, opening, during, closing)
    return result


def reminder_levels(
    due_date: date, as_of: date, days: Sequence[int] = REMINDER_DAYS
) -> tuple[int, ...]:
    """The reminder levels (days overdue) an unpaid document due ``due_date`` has reached
    on ``as_of``: ``(7,)`` from 7 days after the due date, ``(7, 21)`` from 21."""
    overdue = (as_of - due_date).days
    return tuple(d for d in sorted(days) if overdue >= d)
