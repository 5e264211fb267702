"""The ``billing`` schema's accounts SQL (``schema/003_accounts.sql``): payments,
allocations, cancellations, reminders, and the figures balances are derived from.
Every function runs in the caller's transaction; none commits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from cloud.adapters.postgres import Connection, dict_row
from cloud.billing.accounts import Entry, OpenItem, Source
from cloud.billing.payments import PaymentReceipt, RefundReceipt
from cloud.billing.rating import BillingPeriod, InvoiceLine, RatedInvoice, TaxLine
from cloud.billing.repository import plans_of
from contracts.topics import Region

__all__ = [
    "DocumentRow",
    "OverdueRow",
    "RefundRow",
    "document",
    "entries",
    "has_notes",
    "insert_allocations",
    "insert_cancellation",
    "insert_payment",
    "insert_refund",
    "insert_reminder",
    "lock_account",
    "notes_of",
    "numbers",
    "open_items",
    "overdue",
    "rated_of",
    "refund_by_key",
    "sources",
]

_ACCOUNT_LOCK = 0x62696C61  # "bila"
#: What a document still owes: its gross less what was allocated to it.
_OUTSTANDING = (
    "i.gross - coalesce((SELECT sum(a.amount) FROM billing.allocations a"
    " WHERE a.invoice_id = i.id), 0)"
)


def lock_account(conn: Connection[Any], account_id: str) -> None:
    """The account's lock until the transaction ends: allocations of one account are
    computed and written by one transaction at a time."""
    conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_ACCOUNT_LOCK, account_id))


def insert_payment(conn: Connection[Any], region: Region, receipt: PaymentReceipt) -> int | None:
    """Store ``receipt``; its id, or None when (provider, reference) was recorded before."""
    row = conn.execute(
        "INSERT INTO billing.payments (region, account_id, amount, currency, received_at,"
        " provider, provider_reference) VALUES (%s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (provider, provider_reference) DO NOTHING RETURNING id",
        (
            region.value,
            receipt.account_id,
            receipt.amount,
            receipt.currency,
            receipt.received_at,
            receipt.provider,
            receipt.reference,
        ),
    ).fetchone()
    return None if row is None else int(row[0])


def open_items(conn: Connection[Any], account_id: str, currency: str) -> list[OpenItem]:
    """The account's charges (invoices, debit notes) with something outstanding."""
    rows = conn.execute(
        f"SELECT id, due_date, issued_at, {_OUTSTANDING} AS outstanding"
        " FROM billing.invoices i WHERE account_id = %s AND currency = %s"
        " AND kind IN ('invoice', 'debit_note')",
        (account_id, currency),
    ).fetchall()
    return [OpenItem(r[0], r[1], r[2], r[3]) for r in rows if r[3] > 0]


def sources(conn: Connection[Any], account_id: str, currency: str) -> list[Source]:
    """The account's payments and credit documents with an amount not yet allocated."""
    rows = conn.execute(
        "SELECT 'payment', p.id, p.received_at, p.amount - coalesce((SELECT sum(a.amount)"
        " FROM billing.allocations a WHERE a.payment_id = p.id), 0), NULL::bigint"
        " FROM billing.payments p WHERE p.account_id = %s AND p.currency = %s"
        " UNION ALL"
        " SELECT 'credit', i.id, i.issued_at, i.gross - coalesce((SELECT sum(a.amount)"
        " FROM billing.allocations a WHERE a.credit_id = i.id), 0), i.reference_id"
        " FROM billing.invoices i WHERE i.account_id = %s AND i.currency = %s"
        " AND i.kind IN ('credit_note', 'cancellation')",
        (account_id, currency, account_id, currency),
    ).fetchall()
    return [Source(r[0], r[1], r[2], r[3], r[4]) for r in rows if r[3] > 0]


def numbers(conn: Connection[Any], document_ids: Sequence[int]) -> dict[int, str]:
    rows = conn.execute(
        "SELECT id, number FROM billing.invoices WHERE id = ANY(%s)", (list(document_ids),)
    ).fetchall()
    return {r[0]: r[1] for r in rows}


def insert_allocations(
    conn: Connection[Any], parts: Sequence[tuple[Source, int, Decimal]], at: datetime
) -> None:
    conn.cursor().executemany(
        "INSERT INTO billing.allocations (payment_id, credit_id, invoice_id, amount,"
        " allocated_at) VALUES (%s, %s, %s, %s, %s)",
        [
            (
                s.source_id if s.kind == "payment" else None,
                s.source_id if s.kind != "payment" else None,
                document_id,
                amount,
                at,
            )
            for s, document_id, amount in parts
        ],
    )


def entries(conn: Connection[Any], account_id: str, before: datetime) -> list[Entry]:
    """The account's documents (at their issue), payments (at their receipt) and refunds
    (when paid out) before ``before``."""
    rows = conn.execute(
        "SELECT issued_at, kind, number, currency, gross FROM billing.invoices"
        " WHERE account_id = %s AND issued_at < %s"
        " UNION ALL SELECT received_at, 'payment', provider_reference, currency, amount"
        " FROM billing.payments WHERE account_id = %s AND received_at < %s"
        " UNION ALL SELECT refunded_at, 'refund', provider_reference, currency, amount"
        " FROM billing.refunds WHERE account_id = %s AND refunded_at < %s",
        (account_id, before, account_id, before, account_id, before),
    ).fetchall()
    return [Entry(*r) for r in rows]


@dataclass(frozen=True, slots=True)
class DocumentRow:
    id: int
    number: str
    kind: str
    state: str
    region: Region
    account_id: str
    site_id: int
    time_zone: str
    pool_in_mwh: int
    currency: str
    gross: Decimal


def document(conn: Connection[Any], number: str, *, for_update: bool = False) -> DocumentRow | None:
    row = (
        conn.cursor(row_factory=dict_row)
        .execute(
            "SELECT id, number, kind, state, region, account_id, site_id, time_zone,"
            " pool_in_mwh, currency, gross FROM billing.invoices WHERE number = %s"
            + (" FOR UPDATE" if for_update else ""),
            (number,),
        )
        .fetchone()
    )
    return None if row is None else DocumentRow(**{**row, "region": Region(row["region"])})


def rated_of(conn: Connection[Any], invoice_id: int) -> RatedInvoice:
    """A stored document as rated: its lines, taxes and totals (to reverse it)."""
    cur = conn.cursor(row_factory=dict_row)
    head = cur.execute(
        "SELECT plan_code, region, currency, tariff_zone, contract_start, first_day,"
        " last_day, net, tax, gross, plans FROM billing.invoices WHERE id = %s",
        (invoice_id,),
    ).fetchone()
    assert head is not None
    lines = cur.execute(
        "SELECT description_key, first_day, last_day, net, tax, tax_percent, period, kwh,"
        " unit_price, base, percent, quantity, item, plan_code AS plan FROM billing.invoice_lines"
        " WHERE invoice_id = %s ORDER BY line_no",
        (invoice_id,),
    ).fetchall()
    taxes = cur.execute(
        "SELECT tax, percent, base, amount FROM billing.invoice_taxes WHERE invoice_id = %s"
        " ORDER BY tax, percent",
        (invoice_id,),
    ).fetchall()
    return RatedInvoice(
        plan_code=head["plan_code"],
        region=Region(head["region"]),
        currency=head["currency"],
        tariff_zone=head["tariff_zone"],
        contract_start=head["contract_start"],
        period=BillingPeriod(head["first_day"], head["last_day"]),
        lines=tuple(InvoiceLine(**r) for r in lines),
        taxes=tuple(TaxLine(**r) for r in taxes),
        net=head["net"],
        tax=head["tax"],
        gross=head["gross"],
        unverified=(),
        plans=plans_of(head["plans"]),
    )


def notes_of(conn: Connection[Any], invoice_id: int) -> list[DocumentRow]:
    """The issued credit and debit notes that correct the invoice, oldest first, locked."""
    rows = (
        conn.cursor(row_factory=dict_row)
        .execute(
            "SELECT id, number, kind, state, region, account_id, site_id, time_zone,"
            " pool_in_mwh, currency, gross FROM billing.invoices WHERE reference_id = %s"
            " AND kind IN ('credit_note', 'debit_note') AND state = 'issued'"
            " ORDER BY id FOR UPDATE",
            (invoice_id,),
        )
        .fetchall()
    )
    return [DocumentRow(**{**r, "region": Region(r["region"])}) for r in rows]


def has_notes(conn: Connection[Any], invoice_id: int) -> bool:
    """Whether a credit or debit note references the invoice."""
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM billing.invoices WHERE reference_id = %s"
        " AND kind IN ('credit_note', 'debit_note'))",
        (invoice_id,),
    ).fetchone()
    return bool(row and row[0])


def insert_cancellation(
    conn: Connection[Any],
    invoice_id: int,
    cancellation_id: int,
    reason: str,
    by: str,
    at: datetime,
) -> None:
    """Mark the document ``invoice_id`` (an invoice or a note) cancelled by
    ``cancellation_id``, its reversing document."""
    conn.execute("UPDATE billing.invoices SET state = 'cancelled' WHERE id = %s", (invoice_id,))
    conn.execute(
        "INSERT INTO billing.cancellations (invoice_id, cancellation_id, reason,"
        " cancelled_by, cancelled_at) VALUES (%s, %s, %s, %s, %s)",
        (invoice_id, cancellation_id, reason, by, at),
    )


@dataclass(frozen=True, slots=True)
class OverdueRow:
    id: int
    number: str
    kind: str
    region: Region
    account_id: str
    currency: str
    due_date: date
    outstanding: Decimal


def overdue(conn: Connection[Any], region: Region, as_of: date) -> list[OverdueRow]:
    """The region's charges due before ``as_of`` with something outstanding, oldest due
    first."""
    rows = (
        conn.cursor(row_factory=dict_row)
        .execute(
            "SELECT * FROM (SELECT id, number, kind, region, account_id, currency,"
            f" due_date, {_OUTSTANDING} AS outstanding FROM billing.invoices i"
            " WHERE region = %s AND kind IN ('invoice', 'debit_note') AND due_date < %s) o"
            " WHERE outstanding > 0 ORDER BY due_date, id",
            (region.value, as_of),
        )
        .fetchall()
    )
    return [OverdueRow(**{**r, "region": Region(r["region"])}) for r in rows]


def insert_reminder(
    conn: Connection[Any], invoice_id: int, level: int, outstanding: Decimal, at: datetime
) -> bool:
    """Record the reminder; False when this level was sent before."""
    row = conn.execute(
        "INSERT INTO billing.reminders (invoice_id, level, outstanding, sent_at)"
        " VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING 1",
        (invoice_id, level, outstanding, at),
    ).fetchone()
    return row is not None


@dataclass(frozen=True, slots=True)
class RefundRow:
    id: int
    amount: Decimal
    currency: str
    provider_reference: str


def refund_by_key(conn: Connection[Any], account_id: str, key: str) -> RefundRow | None:
    """The account's refund recorded under the caller's ``key``, if any."""
    row = conn.execute(
        "SELECT id, amount, currency, provider_reference FROM billing.refunds"
        " WHERE account_id = %s AND idempotency_key = %s",
        (account_id, key),
    ).fetchone()
    return None if row is None else RefundRow(*row)


def insert_refund(
    conn: Connection[Any],
    region: Region,
    receipt: RefundReceipt,
    key: str,
    by: str,
    drawn: Sequence[tuple[Source, Decimal]],
    at: datetime,
) -> int:
    """Store ``receipt`` and the credit it drew on (allocation rows pointing at it)."""
    row = conn.execute(
        "INSERT INTO billing.refunds (region, account_id, amount, currency, refunded_at,"
        " provider, provider_reference, idempotency_key, requested_by)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (
            region.value,
            receipt.account_id,
            receipt.amount,
            receipt.currency,
            receipt.refunded_at,
            receipt.provider,
            receipt.reference,
            key,
            by,
        ),
    ).fetchone()
    assert row is not None
    refund_id = int(row[0])
    conn.cursor().executemany(
        "INSERT INTO billing.allocations (payment_id, credit_id, refund_id, amount,"
        " allocated_at) VALUES (%s, %s, %s, %s, %s)",
        [
            (
                s.source_id if s.kind == "payment" else None,
                s.source_id if s.kind != "payment" else None,
                refund_id,
                amount,
                at,
            )
            for s, amount in drawn
        ],
    )
    return refund_id
