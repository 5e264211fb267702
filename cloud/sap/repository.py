"""The ``sap`` schema's SQL: the export queues (partners, documents), their claims and
outcomes, and the stored reconciliations. Functions over a connection in the caller's
transaction; no service logic.

A claim leases rows (``FOR UPDATE SKIP LOCKED``, so exporters in several processes share
the work) under a fresh ``lease_id``; an outcome is recorded only while that lease is
still the row's, so an exporter that outlived its lease changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

from cloud.adapters.postgres import Connection, Jsonb
from cloud.events.invoices import InvoiceIssued
from cloud.events.payments import PaymentMoved
from cloud.events.types import CustomerAccount
from cloud.sap.documents import partner_external_id

__all__ = [
    "ClaimedDocument",
    "ClaimedPartner",
    "SentDocument",
    "SentPartner",
    "claim_documents",
    "claim_partners",
    "document_dead",
    "document_exported",
    "document_retry",
    "documents_of_day",
    "enqueue_document",
    "enqueue_payment",
    "partner_dead",
    "partner_exported",
    "partner_retry",
    "partners_of_day",
    "queue_counts",
    "requeue_dead",
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
    row = conn.execute(
        "INSERT INTO sap.documents (region, number, kind, account_id, issue_date, currency,"
        " gross, payload) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (region, number) DO NOTHING RETURNING 1",
        (
            issued.region.value,
            issued.number,
            issued.kind,
            issued.account_id,
            issued.issue_date,
            issued.currency,
            issued.gross,
            Jsonb(issued.model_dump(mode="json")),
        ),
    ).fetchone()
    return row is not None


def enqueue_payment(conn: Connection[Any], moved: PaymentMoved) -> bool:
    """Queue a payment or a refund for SAP; False when its reference is queued already."""
    row = conn.execute(
        "INSERT INTO sap.documents (region, number, kind, account_id, issue_date, currency,"
        " gross, payload) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (region, number) DO NOTHING RETURNING 1",
        (
            moved.region.value,
            moved.reference,
            moved.kind,
            moved.account_id,
            moved.booked_on,
            moved.currency,
            moved.amount,
            Jsonb(moved.model_dump(mode="json")),
        ),
    ).fetchone()
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


# -- claims ---------------------------------------------------------------------------
def claim_partners(
    conn: Connection[Any], now: datetime, lease_s: float, limit: int
) -> list[ClaimedPartner]:
    lease = uuid4()
    rows = conn.execute(
        "UPDATE sap.partners p SET lease_id = %s, lease_until = %s"
        " FROM (SELECT account_id FROM sap.partners WHERE state = 'pending'"
        "  AND next_attempt_at <= %s AND (lease_until IS NULL OR lease_until < %s)"
        "  ORDER BY next_attempt_at LIMIT %s FOR UPDATE SKIP LOCKED) due"
        " WHERE p.account_id = due.account_id"
        " RETURNING p.account_id, p.region, p.external_id, p.name, p.attempts,"
        "  p.outcome_unknown, p.sap_partner",
        (lease, now + timedelta(seconds=lease_s), now, now, limit),
    ).fetchall()
    return [
        ClaimedPartner(r[0], r[1], r[2], r[3], r[4], lease, r[5], r[6])
        for r in sorted(rows, key=lambda r: r[0])
    ]


def claim_documents(
    conn: Connection[Any], now: datetime, lease_s: float, limit: int
) -> list[ClaimedDocument]:
    """Due documents whose account's business partner SAP holds already (an AR line
    names the customer): the others wait for it, without spending an attempt."""
    lease = uuid4()
    rows = conn.execute(
        "UPDATE sap.documents d SET lease_id = %s, lease_until = %s"
        " FROM (SELECT d2.id, p.sap_customer FROM sap.documents d2"
        "  JOIN sap.partners p ON p.account_id = d2.account_id AND p.sap_customer IS NOT NULL"
        "  WHERE d2.state = 'pending' AND d2.next_attempt_at <= %s"
        "  AND (d2.lease_until IS NULL OR d2.lease_until < %s)"
        "  ORDER BY d2.id LIMIT %s FOR UPDATE OF d2 SKIP LOCKED) due"
        " WHERE d.id = due.id"
        " RETURNING d.id, d.region, d.number, d.payload, d.attempts, d.outcome_unknown,"
        "  due.sap_customer",
        (lease, now + timedelta(seconds=lease_s), now, now, limit),
    ).fetchall()
    return [
        ClaimedDocument(r[0], r[1], r[2], r[3], r[4], lease, r[5], r[6])
        for r in sorted(rows, key=lambda r: r[0])
    ]


# -- outcomes (only while the lease is still ours) --------------------------------------
def partner_exported(
    conn: Connection[Any],
    claim: ClaimedPartner,
    sap_partner: str,
    sap_customer: str,
    now: datetime,
) -> bool:
    cur = conn.execute(
        "UPDATE sap.partners SET state = 'exported', sap_partner = %s, sap_customer = %s,"
        " exported_at = %s, outcome_unknown = false, last_error = NULL, lease_id = NULL,"
        " lease_until = NULL WHERE account_id = %s AND lease_id = %s",
        (sap_partner, sap_customer, now, claim.account_id, claim.lease_id),
    )
    return cur.rowcount == 1


def partner_retry(
    conn: Connection[Any],
    claim: ClaimedPartner,
    error: str,
    *,
    unknown: bool,
    next_at: datetime,
) -> bool:
    return _retry(conn, "partners", "account_id", claim.account_id, claim.lease_id,
                  error, unknown, next_at)  # fmt: skip


def partner_dead(
    conn: Connection[Any],
    claim: ClaimedPartner,
    reason: str,
    now: datetime,
    *,
    attempted: bool = True,
) -> bool:
    return _dead(conn, "partners", "account_id", claim.account_id, claim.lease_id,
                 reason, now, attempted)  # fmt: skip


def document_exported(
    conn: Connection[Any],
    claim: ClaimedDocument,
    *,
    company_code: str,
    fiscal_year: str,
    document: str,
    now: datetime,
    warnings: str | None = None,
) -> bool:
    cur = conn.execute(
        "UPDATE sap.documents SET state = 'exported', sap_company_code = %s,"
        " sap_fiscal_year = %s, sap_document = %s, exported_at = %s, warnings = %s,"
        " outcome_unknown = false, last_error = NULL, lease_id = NULL, lease_until = NULL"
        " WHERE id = %s AND lease_id = %s",
        (company_code, fiscal_year, document, now, warnings, claim.id, claim.lease_id),
    )
    return cur.rowcount == 1


def document_retry(
    conn: Connection[Any],
    claim: ClaimedDocument,
    error: str,
    *,
    unknown: bool,
    next_at: datetime,
) -> bool:
    return _retry(conn, "documents", "id", claim.id, claim.lease_id, error, unknown, next_at)


def document_dead(
    conn: Connection[Any],
    claim: ClaimedDocument,
    reason: str,
    now: datetime,
    *,
    attempted: bool = True,
) -> bool:
    return _dead(conn, "documents", "id", claim.id, claim.lease_id, reason, now, attempted)


_QUEUES = {("partners", "account_id"), ("documents", "id")}


def _retry(
    conn: Connection[Any],
    table: str,
    key_column: str,
    key: object,
    lease_id: object,
    error: str,
    unknown: bool,
    next_at: datetime,
) -> bool:
    """Release a claimed row for another attempt at ``next_at``; False when the lease
    was lost meanwhile (another worker owns the row now)."""
    assert (table, key_column) in _QUEUES  # names from this module only, never input
    cur = conn.execute(
        f"UPDATE sap.{table} SET attempts = attempts + 1, last_error = %s,"
        " outcome_unknown = outcome_unknown OR %s, next_attempt_at = %s, lease_id = NULL,"
        f" lease_until = NULL WHERE {key_column} = %s AND lease_id = %s",
        (error[:1000], unknown, next_at, key, lease_id),
    )
    return cur.rowcount == 1


def _dead(
    conn: Connection[Any],
    table: str,
    key_column: str,
    key: object,
    lease_id: object,
    reason: str,
    now: datetime,
    attempted: bool,
) -> bool:
    """Dead-letter a claimed row with ``reason``; False when the lease was lost."""
    assert (table, key_column) in _QUEUES
    cur = conn.execute(
        f"UPDATE sap.{table} SET state = 'dead', dead_reason = %s, dead_at = %s,"
        " attempts = attempts + %s, last_error = %s, lease_id = NULL, lease_until = NULL"
        f" WHERE {key_column} = %s AND lease_id = %s",
        (reason[:1000], now, int(attempted), reason[:1000], key, lease_id),
    )
    return cur.rowcount == 1


def requeue_dead(conn: Connection[Any], region: str | None = None) -> int:
    """Give dead-lettered documents, partners, service orders and confirmations (of
    ``region``, or all) a new round of attempts, after an operator fixed the cause; the
    number requeued."""
    total = 0
    for table in ("documents", "partners", "service_orders", "service_confirmations"):
        cur = conn.execute(
            f"UPDATE sap.{table} SET state = 'pending', attempts = 0, dead_reason = NULL,"
            " dead_at = NULL, next_attempt_at = now()"
            " WHERE state = 'dead' AND (%s::text IS NULL OR region = %s)",
            (region, region),
        )
        total += cur.rowcount
    return total


def queue_counts(conn: Connection[Any]) -> dict[str, dict[str, int]]:
    """``{"documents": {"pending": n, ...}, "partners": {...}}``."""
    out: dict[str, dict[str, int]] = {}
    for table in ("documents", "partners"):
        rows = conn.execute(f"SELECT state, count(*) FROM sap.{table} GROUP BY state").fetchall()
        out[table] = {state: int(n) for state, n in rows}
    return out


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
