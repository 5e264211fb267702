"""The ``sap`` schema's SQL for billing and customers: the partner and document queues
(filled by the event handlers; claimed and settled through :mod:`cloud.sap.queue`) and the
stored reconciliations. Functions over a connection in the caller's transaction; no
service logic.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from cloud.adapters.postgres import Connection, Jsonb
from cloud.events.invoices import InvoiceIssued
from cloud.events.payments import PaymentMoved
from cloud.events.types import CustomerAccount
from cloud.sap.documents import partner_external_id
from cloud.sap.queue import Queue

__all__ = [
    "DOCUMENTS",
    "PARTNERS",
    "ClaimedDocument",
    "ClaimedPartner",
    "SentDocument",
    "SentPartner",
    "documents_of_day",
    "enqueue_document",
    "enqueue_payment",
    "partners_of_day",
    "store_reconciliation",
    "upsert_partner",
]


@dataclass(frozen=True)
class ClaimedPartner:
    account_id: str
    region: str
    external_id: str
    name: str
    attempts: int
    lease_id: UUID
    outcome_unknown: bool
    sap_partner: str | None


@dataclass(frozen=True)
class ClaimedDocument:
    id: int
    region: str
    number: str
    payload: dict[str, Any]
    attempts: int
    lease_id: UUID
    outcome_unknown: bool
    #: The customer number of the account's business partner in SAP.
    sap_customer: str


#: Business partners, by account; an export records SAP's partner and customer numbers.
PARTNERS = Queue(
    "partners",
    "account_id",
    ("region", "external_id", "name", "sap_partner"),
    ClaimedPartner,
    "sap_partner = %(partner)s, sap_customer = %(customer)s, exported_at = %(now)s",
)

#: Documents (issued documents, payments, refunds) in the order issued, claimed once
#: their account's business partner is in SAP (an AR line names the customer: the others
#: wait without spending an attempt); an export records SAP's key and warnings.
DOCUMENTS = Queue(
    "documents",
    "id",
    ("region", "number", "payload"),
    ClaimedDocument,
    "sap_company_code = %(company_code)s, sap_fiscal_year = %(fiscal_year)s,"
    " sap_document = %(document)s, exported_at = %(now)s, warnings = %(warnings)s",
    joined=(("sap_customer", "p.sap_customer"),),
    join="JOIN sap.partners p ON p.account_id = q.account_id AND p.sap_customer IS NOT NULL",
    order_by="id",
)


@dataclass(frozen=True)
class SentDocument:
    """A document of the day as this side knows it."""

    number: str
    kind: str
    currency: str
    gross: Decimal
    state: str
    sap_document: str | None


@dataclass(frozen=True)
class SentPartner:
    account_id: str
    external_id: str
    sap_partner: str | None


# -- filled by the event handlers ----------------------------------------------------
def enqueue_document(conn: Connection[Any], issued: InvoiceIssued) -> bool:
    """Queue ``issued`` for SAP; False when its number is queued already."""
    return _enqueue(conn, issued, issued.number, issued.issue_date, issued.gross)


def enqueue_payment(conn: Connection[Any], moved: PaymentMoved) -> bool:
    """Queue a payment or a refund for SAP; False when its reference is queued already."""
    return _enqueue(conn, moved, moved.reference, moved.booked_on, moved.amount)


def _enqueue(
    conn: Connection[Any],
    news: InvoiceIssued | PaymentMoved,
    number: str,
    day: date,
    gross: Decimal,
) -> bool:
    row = conn.execute(
        "INSERT INTO sap.documents (region, number, kind, account_id, issue_date, currency,"
        " gross, payload) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (region, number) DO NOTHING RETURNING 1",
        (news.region.value, number, news.kind, news.account_id, day, news.currency, gross,
         Jsonb(news.model_dump(mode="json"))),
    ).fetchone()  # fmt: skip
    return row is not None


def upsert_partner(conn: Connection[Any], account: CustomerAccount, occurred_at: datetime) -> bool:
    """Make ``account`` the business partner SAP should hold, if this news is newer than
    what the row has and changes the name; True when something is to be sent."""
    row = conn.execute(
        "INSERT INTO sap.partners (account_id, region, external_id, name, desired_at)"
        " VALUES (%s, %s, %s, %s, %s)"
        " ON CONFLICT (account_id) DO UPDATE SET name = EXCLUDED.name,"
        "  desired_at = EXCLUDED.desired_at, state = 'pending', attempts = 0,"
        "  next_attempt_at = now(), dead_reason = NULL, dead_at = NULL"
        " WHERE sap.partners.desired_at < EXCLUDED.desired_at"
        "  AND sap.partners.name IS DISTINCT FROM EXCLUDED.name"
        " RETURNING 1",
        (
            account.account_id,
            account.region.value,
            partner_external_id(account.account_id),
            account.name.strip()[:200],
            occurred_at,
        ),
    ).fetchone()
    return row is not None


# -- reconciliation ---------------------------------------------------------------------
def documents_of_day(conn: Connection[Any], region: str, day: date) -> list[SentDocument]:
    rows = conn.execute(
        "SELECT number, kind, currency, gross, state, sap_document FROM sap.documents"
        " WHERE region = %s AND issue_date = %s ORDER BY number",
        (region, day),
    ).fetchall()
    return [SentDocument(*r) for r in rows]


def partners_of_day(conn: Connection[Any], region: str, day: date) -> list[SentPartner]:
    """Partners of ``region`` sent (exported) on UTC ``day``."""
    rows = conn.execute(
        "SELECT account_id, external_id, sap_partner FROM sap.partners"
        " WHERE region = %s AND (exported_at AT TIME ZONE 'UTC')::date = %s"
        " ORDER BY account_id",
        (region, day),
    ).fetchall()
    return [SentPartner(*r) for r in rows]


def store_reconciliation(conn: Connection[Any], row: dict[str, Any]) -> int:
    got = conn.execute(
        "INSERT INTO sap.reconciliations (region, day, documents_sent, documents_in_sap,"
        " partners_sent, partners_in_sap, service_orders_sent, service_orders_in_sap,"
        " confirmations_sent, confirmations_in_sap, missing, extra, mismatched, ok, details)"
        " VALUES (%(region)s, %(day)s, %(documents_sent)s, %(documents_in_sap)s,"
        " %(partners_sent)s, %(partners_in_sap)s, %(service_orders_sent)s,"
        " %(service_orders_in_sap)s, %(confirmations_sent)s, %(confirmations_in_sap)s,"
        " %(missing)s, %(extra)s, %(mismatched)s, %(ok)s, %(details)s) RETURNING id",
        {**row, "details": Jsonb(row["details"])},
    ).fetchone()
    assert got is not None
    return int(got[0])
