"""The daily reconciliation: what SAP holds for a region's day against what was sent.

Documents: every document we issued with that date (whatever its export state) against
every AR document SAP holds in the region's company code with that posting date. A
document of ours SAP lacks is **missing** (its export state says why); a document SAP
holds that we did not send, or a second one with the same reference, is **extra** (a
duplicate is what exactly-once forbids); one whose customer amount or currency differs is
**mismatched**. Business partners: every partner sent that day (UTC) is looked up by its
external id: none is missing, more than one extra, another partner number mismatched.
Service orders and service confirmations (when a service gateway is given): every one
first exported that day is looked up by its reference the same way.

:func:`compare_documents` and :func:`compare_partners` are pure; :func:`reconcile` reads
both sides, stores the result in ``sap.reconciliations`` and returns it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from cloud.adapters.postgres import Connection, ConnectionPool
from cloud.sap.documents import ArRecord, PartnerRecord, SapGateway
from cloud.sap.repository import (
    SentDocument,
    SentPartner,
    documents_of_day,
    partners_of_day,
    store_reconciliation,
)
from cloud.sap.service_documents import ServiceGateway
from cloud.sap.service_repository import confirmations_of_day, service_orders_of_day
from cloud.sap.settings import SapSettings
from contracts.topics import Region

__all__ = [
    "Finding",
    "Reconciliation",
    "compare_documents",
    "compare_keyed",
    "compare_partners",
    "reconcile",
    "reconcile_daily",
]

log = logging.getLogger(__name__)

#: Credited to the customer in SAP (a refund, like an invoice, is a debit).
_LOWERS_BALANCE = frozenset({"credit_note", "cancellation", "payment"})


@dataclass(frozen=True)
class Finding:
    """One disagreement; ``reference`` our number (documents) or external id (partners)."""

    kind: Literal["missing", "extra", "mismatched"]
    subject: Literal["document", "partner", "service_order", "confirmation"]
    reference: str
    detail: str


@dataclass(frozen=True)
class Reconciliation:
    region: str
    day: date
    documents_sent: int
    documents_in_sap: int
    partners_sent: int
    partners_in_sap: int
    findings: tuple[Finding, ...] = field(default=())
    service_orders_sent: int = 0
    service_orders_in_sap: int = 0
    confirmations_sent: int = 0
    confirmations_in_sap: int = 0

    def count(self, kind: str) -> int:
        return sum(1 for f in self.findings if f.kind == kind)

    @property
    def ok(self) -> bool:
        """True when SAP holds exactly what was sent, once each."""
        return not self.findings

    def row(self) -> dict[str, Any]:
        """The ``sap.reconciliations`` row."""
        return {
            "region": self.region,
            "day": self.day,
            "documents_sent": self.documents_sent,
            "documents_in_sap": self.documents_in_sap,
            "partners_sent": self.partners_sent,
            "partners_in_sap": self.partners_in_sap,
            "service_orders_sent": self.service_orders_sent,
            "service_orders_in_sap": self.service_orders_in_sap,
            "confirmations_sent": self.confirmations_sent,
            "confirmations_in_sap": self.confirmations_in_sap,
            "missing": self.count("missing"),
            "extra": self.count("extra"),
            "mismatched": self.count("mismatched"),
            "ok": self.ok,
            "details": {"findings": [asdict(f) for f in self.findings]},
        }


def expected_amount(document: SentDocument) -> Decimal:
    """The signed amount SAP's customer line should carry for ``document``."""
    return -document.gross if document.kind in _LOWERS_BALANCE else document.gross


def compare_documents(sent: Sequence[SentDocument], held: Sequence[ArRecord]) -> list[Finding]:
    by_reference: dict[str, list[ArRecord]] = defaultdict(list)
    for record in held:
        by_reference[record.reference].append(record)
    findings: list[Finding] = []
    ours = {d.number: d for d in sent}
    for number, document in ours.items():
        records = by_reference.get(number, [])
        if not records:
            findings.append(
                Finding(
                    "missing", "document", number, f"not in SAP (export state {document.state})"
                )
            )
            continue
        for extra in records[1:]:
            findings.append(Finding("extra", "document", number, f"duplicate in SAP: {extra.key}"))
        first = records[0]
        want = expected_amount(document)
        if first.amount != want or first.currency != document.currency:
            findings.append(
                Finding(
                    "mismatched",
                    "document",
                    number,
                    f"SAP {first.key} holds {first.amount} {first.currency},"
                    f" sent {want} {document.currency}",
                )
            )
    for reference, records in sorted(by_reference.items()):
        if reference not in ours:
            for record in records:
                findings.append(
                    Finding("extra", "document", reference, f"not sent by PoTR: {record.key}")
                )
    return findings


def compare_partners(
    sent: Sequence[SentPartner], held: Mapping[str, Sequence[PartnerRecord]]
) -> list[Finding]:
    findings: list[Finding] = []
    for partner in sent:
        records = list(held.get(partner.external_id, ()))
        if not records:
            findings.append(Finding("missing", "partner", partner.external_id, "not in SAP"))
            continue
        for extra in records[1:]:
            findings.append(
                Finding("extra", "partner", partner.external_id, f"duplicate: {extra.partner}")
            )
        if partner.sap_partner is not None and records[0].partner != partner.sap_partner:
            findings.append(
                Finding(
                    "mismatched",
                    "partner",
                    partner.external_id,
                    f"SAP holds {records[0].partner}, sent as {partner.sap_partner}",
                )
            )
    return findings


def compare_keyed(
    subject: Literal["service_order", "confirmation"],
    sent: Sequence[tuple[str, str]],
    held: Mapping[str, Sequence[str]],
) -> list[Finding]:
    """(reference, SAP number) sent against the SAP numbers holding each reference."""
    findings: list[Finding] = []
    for reference, number in sent:
        numbers = list(held.get(reference, ()))
        if not numbers:
            findings.append(Finding("missing", subject, reference, "not in SAP"))
            continue
        for extra in numbers[1:]:
            findings.append(Finding("extra", subject, reference, f"duplicate: {extra}"))
        if number and numbers[0] != number:
            findings.append(
                Finding("mismatched", subject, reference, f"SAP holds {numbers[0]}, sent {number}")
            )
    return findings


def _service_side(
    pool: ConnectionPool[Connection[Any]], services: ServiceGateway, region: Region, day: date
) -> tuple[list[Finding], tuple[int, int, int, int]]:
    with pool.connection() as conn:
        orders = service_orders_of_day(conn, region.value, day)
        confirmations = confirmations_of_day(conn, region.value, day)
    held_orders = {
        ref: [r.service_order for r in records]
        for ref, records in services.find_service_orders([r for r, _ in orders]).items()
    }
    held_confirmations = {
        ref: [r.confirmation for r in records]
        for ref, records in services.find_confirmations([r for r, _ in confirmations]).items()
    }
    findings = compare_keyed("service_order", orders, held_orders) + compare_keyed(
        "confirmation", confirmations, held_confirmations
    )
    counts = (
        len(orders),
        sum(len(v) for v in held_orders.values()),
        len(confirmations),
        sum(len(v) for v in held_confirmations.values()),
    )
    return findings, counts


def reconcile(
    pool: ConnectionPool[Connection[Any]],
    gateway: SapGateway,
    settings: SapSettings,
    region: Region,
    day: date,
    *,
    services: ServiceGateway | None = None,
) -> Reconciliation:
    """Reconcile ``region``'s ``day`` (blocking: SAP reads and SQL), store the result and
    return it; service orders and confirmations too when ``services`` is given. SAP's
    errors propagate (nothing is stored then)."""
    service_findings: list[Finding] = []
    service_counts = (0, 0, 0, 0)
    if services is not None:
        service_findings, service_counts = _service_side(pool, services, region, day)
    with pool.connection() as conn:
        sent_documents = documents_of_day(conn, region.value, day)
        sent_partners = partners_of_day(conn, region.value, day)
    held_documents = gateway.documents_posted_on(settings.company_codes[region], day)
    held_partners = gateway.find_partners([p.external_id for p in sent_partners])
    result = Reconciliation(
        region=region.value,
        day=day,
        documents_sent=len(sent_documents),
        documents_in_sap=len(held_documents),
        partners_sent=len(sent_partners),
        partners_in_sap=sum(len(v) for v in held_partners.values()),
        findings=tuple(
            compare_documents(sent_documents, held_documents)
            + compare_partners(sent_partners, held_partners)
            + service_findings
        ),
        service_orders_sent=service_counts[0],
        service_orders_in_sap=service_counts[1],
        confirmations_sent=service_counts[2],
        confirmations_in_sap=service_counts[3],
    )
    with pool.connection() as conn:
        store_reconciliation(conn, result.row())
    level = logging.INFO if result.ok else logging.WARNING
    log.log(
        level,
        "SAP reconciliation %s %s: %d documents sent, %d in SAP; %d partners;"
        " missing %d, extra %d, mismatched %d",
        region.value,
        day,
        result.documents_sent,
        result.documents_in_sap,
        result.partners_sent,
        result.count("missing"),
        result.count("extra"),
        result.count("mismatched"),
    )
    return result


def _reconciled(pool: ConnectionPool[Connection[Any]], region: Region, day: date) -> bool:
    with pool.connection() as conn:
        row = conn.execute(
            "SELECT 1 FROM sap.reconciliations WHERE region = %s AND day = %s LIMIT 1",
            (region.value, day),
        ).fetchone()
    return row is not None


async def reconcile_daily(
    pool: ConnectionPool[Connection[Any]],
    gateway: SapGateway,
    settings: SapSettings,
    stop: asyncio.Event,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    check_every_s: float = 3600.0,
    services: ServiceGateway | None = None,
) -> None:
    """Reconcile every region's previous UTC day once (stored rows say what is done),
    checking every ``check_every_s``; a failed run (SAP away) is tried at the next check."""
    while not stop.is_set():
        day = clock().date() - timedelta(days=1)
        for region in Region:
            try:
                if not await asyncio.to_thread(_reconciled, pool, region, day):
                    await asyncio.to_thread(
                        functools.partial(
                            reconcile, pool, gateway, settings, region, day, services=services
                        )
                    )
            except Exception:
                log.exception("SAP reconciliation of %s %s failed", region.value, day)
        try:
            await asyncio.wait_for(stop.wait(), check_every_s)
        except TimeoutError:
            continue
