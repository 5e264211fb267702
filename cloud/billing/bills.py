"""What the portal shows of billing (issue 19 point 6), read-only: an account's
documents with what each still owes, one document with its lines and taxes, the
account's balance per currency and its payments. Every query is filtered by the caller's
:class:`~cloud.scope.Scope` in SQL (the documents' and payments' own ``region`` and
``account_id``): a customer reaches its own account only, staff their region's; what is
outside answers nothing (None or empty), never another tenant's rows."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from cloud.adapters.postgres import Connection, ConnectionPool, dict_row
from cloud.billing.rating import ENERGY_LINE
from cloud.billing.savings import EnergyLine
from cloud.scope import Scope, site_condition

__all__ = [
    "BillLine",
    "BillTax",
    "BillsReader",
    "Document",
    "DocumentDetail",
    "Payment",
]

Pool = ConnectionPool[Connection[Any]]

#: What a charge still owes: its gross less what was allocated to it (a note or a
#: cancellation owes nothing: it is money back).
_OUTSTANDING = (
    "CASE WHEN i.kind IN ('invoice', 'debit_note') THEN i.gross - coalesce("
    "(SELECT sum(a.amount) FROM billing.allocations a WHERE a.invoice_id = i.id), 0)"
    " ELSE 0 END"
)
_DOCUMENT_COLUMNS = (
    "i.number, i.kind, i.state, i.account_id, i.site_id, i.first_day, i.last_day,"
    " i.issue_date, i.due_date, i.currency, i.net, i.tax, i.gross,"
    f" {_OUTSTANDING} AS outstanding,"
    " (SELECT r.number FROM billing.invoices r WHERE r.id = i.reference_id) AS reference,"
    " i.work_order_id"
)


class Document(BaseModel):
    """An issued document (invoice, credit or debit note, cancellation). Amounts are
    never negative: ``kind`` says which way they move the balance."""

    number: str
    kind: str
    state: str
    account_id: str
    site_id: int
    first_day: date
    last_day: date
    issue_date: date
    due_date: date
    currency: str
    net: Decimal
    tax: Decimal
    gross: Decimal
    outstanding: Decimal
    #: The document a note or cancellation corrects.
    reference: str | None = None
    #: The work order a service invoice bills (a job chargeable to the customer).
    work_order_id: int | None = None


class BillLine(BaseModel):
    line_no: int
    description_key: str
    first_day: date
    last_day: date
    period: str | None
    kwh: Decimal | None
    unit_price: Decimal | None
    base: Decimal | None
    percent: Decimal | None
    net: Decimal
    tax: str
    tax_percent: Decimal
    #: Service lines: how many (parts; labour minutes, ``unit_price`` then per hour)
    #: and which part.
    quantity: Decimal | None = None
    item: str | None = None
    #: The plan an energy line is priced on, on a document whose period spans a plan
    #: change (decision 150); None otherwise.
    plan_code: str | None = None


class BillTax(BaseModel):
    tax: str
    percent: Decimal
    base: Decimal
    amount: Decimal


class DocumentDetail(Document):
    lines: list[BillLine]
    taxes: list[BillTax]


class Payment(BaseModel):
    received_at: datetime
    amount: Decimal
    currency: str
    provider: str
    reference: str
    #: What of it is not yet applied to a charge (the account's credit).
    unallocated: Decimal


class BillsReader:
    """Read-only billing views over the ``billing`` schema; blocking: call from a thread
    in async code."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    @staticmethod
    def reaches(scope: Scope, account_id: str) -> bool:
        """Whether ``scope`` may name ``account_id`` at all (a customer: its own only)."""
        return not scope.by_account or scope.account_id == account_id

    def documents(
        self, account_id: str, *, scope: Scope, limit: int = 100, offset: int = 0
    ) -> list[Document]:
        """The account's documents within ``scope``, newest issue first."""
        sql = (
            f"SELECT {_DOCUMENT_COLUMNS} FROM billing.invoices i"
            f" WHERE i.account_id = %(account)s AND {site_condition('i')}"
            " ORDER BY i.issued_at DESC, i.id DESC LIMIT %(limit)s OFFSET %(offset)s"
        )
        params = {**scope.sql_params(), "account": account_id, "limit": limit, "offset": offset}
        with self._pool.connection() as conn:
            rows = conn.cursor(row_factory=dict_row).execute(sql, params).fetchall()
        return [Document(**r) for r in rows]

    def document(self, number: str, *, scope: Scope) -> DocumentDetail | None:
        """One document with its lines and taxes, or None outside ``scope``."""
        head_sql = (
            f"SELECT i.id, {_DOCUMENT_COLUMNS} FROM billing.invoices i"
            f" WHERE i.number = %(number)s AND {site_condition('i')}"
        )
        with self._pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            head = cur.execute(head_sql, {**scope.sql_params(), "number": number}).fetchone()
            if head is None:
                return None
            doc_id = head.pop("id")
            lines = cur.execute(
                "SELECT line_no, description_key, first_day, last_day, period, kwh,"
                " unit_price, base, percent, net, tax, tax_percent, quantity, item, plan_code"
                " FROM billing.invoice_lines WHERE invoice_id = %s ORDER BY line_no",
                (doc_id,),
            ).fetchall()
            taxes = cur.execute(
                "SELECT tax, percent, base, amount FROM billing.invoice_taxes"
                " WHERE invoice_id = %s ORDER BY tax, percent",
                (doc_id,),
            ).fetchall()
        return DocumentDetail(
            **head, lines=[BillLine(**r) for r in lines], taxes=[BillTax(**r) for r in taxes]
        )

    def balance(self, account_id: str, *, scope: Scope) -> dict[str, Decimal]:
        """Charges - credits - payments + refunds per currency within ``scope`` (positive: owed
        by the customer); currencies with nothing booked are absent."""
        sql = (
            "SELECT currency, sum(amount) FROM ("
            " SELECT i.currency, CASE WHEN i.kind IN ('invoice', 'debit_note')"
            " THEN i.gross ELSE -i.gross END AS amount FROM billing.invoices i"
            f" WHERE i.account_id = %(account)s AND {site_condition('i')}"
            " UNION ALL SELECT p.currency, -p.amount FROM billing.payments p"
            f" WHERE p.account_id = %(account)s AND {site_condition('p')}"
            " UNION ALL SELECT r.currency, r.amount FROM billing.refunds r"
            f" WHERE r.account_id = %(account)s AND {site_condition('r')}"
            ") booked GROUP BY currency ORDER BY currency"
        )
        with self._pool.connection() as conn:
            rows = conn.execute(sql, {**scope.sql_params(), "account": account_id}).fetchall()
        return {r[0]: r[1] for r in rows}

    def energy_lines(self, account_id: str, *, scope: Scope) -> list[EnergyLine]:
        """The energy lines of the account's issued invoices within ``scope`` (a
        cancelled invoice's are left out: it no longer bills them), oldest first: what
        :func:`~cloud.billing.savings.estimate_savings` reads."""
        sql = (
            "SELECT i.currency, i.tariff_zone, l.first_day, l.kwh, l.unit_price"
            " FROM billing.invoice_lines l JOIN billing.invoices i ON i.id = l.invoice_id"
            " WHERE i.account_id = %(account)s AND i.kind = 'invoice' AND i.state = 'issued'"
            f" AND l.description_key = %(energy)s AND {site_condition('i')}"
            " AND l.kwh IS NOT NULL AND l.unit_price IS NOT NULL"
            " ORDER BY l.first_day, i.id, l.line_no"
        )
        params = {**scope.sql_params(), "account": account_id, "energy": ENERGY_LINE}
        with self._pool.connection() as conn:
            rows = conn.execute(sql, params).fetchall()
        return [EnergyLine(r[0], r[1], r[2], r[3], r[4]) for r in rows]

    def payments(
        self, account_id: str, *, scope: Scope, limit: int = 100, offset: int = 0
    ) -> list[Payment]:
        """The account's payments within ``scope``, newest first."""
        sql = (
            "SELECT p.received_at, p.amount, p.currency, p.provider,"
            " p.provider_reference AS reference, p.amount - coalesce((SELECT sum(a.amount)"
            " FROM billing.allocations a WHERE a.payment_id = p.id), 0) AS unallocated"
            " FROM billing.payments p"
            f" WHERE p.account_id = %(account)s AND {site_condition('p')}"
            " ORDER BY p.received_at DESC, p.id DESC LIMIT %(limit)s OFFSET %(offset)s"
        )
        params = {**scope.sql_params(), "account": account_id, "limit": limit, "offset": offset}
        with self._pool.connection() as conn:
            rows = conn.cursor(row_factory=dict_row).execute(sql, params).fetchall()
        return [Payment(**r) for r in rows]
