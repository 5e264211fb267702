"""Work orders to SAP: the service-order and confirmation part of an export round,
run by :class:`~cloud.sap.exporter.SapExporter` after partners and documents, with the
same rules:

1. **claim** due service orders whose sold-to party SAP holds (and due confirmations
   whose service order SAP holds) under a lease;
2. **query SAP by our reference first** (``ReferenceServiceOrder``; the confirmation's
   reference) — what SAP holds is taken as sent, an order whose description, priority or
   rejection differs is updated (``MERGE``; rejected, never deleted);
3. **create** the rest in one ``$batch``, a change set each; refused → dead letter with
   SAP's reason; failed → back-off; a timeout marks the row ``outcome_unknown`` and
   nothing is sent before the next query by reference.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from cloud.adapters.postgres import Connection, ConnectionPool
from cloud.sap import service_repository as repo
from cloud.sap.documents import Created, Failed, Refused
from cloud.sap.errors import SapError, SapRefusedError, SapTimeoutError
from cloud.sap.service_documents import (
    ConfirmationDraft,
    PartLine,
    ServiceGateway,
    ServiceOrderDraft,
    ServiceOrderRecord,
    sap_priority,
)
from cloud.sap.settings import SapSettings

__all__ = ["Counts", "ServiceExport", "Verdict"]

log = logging.getLogger(__name__)


class Counts(Protocol):
    """What a round counts (:class:`~cloud.sap.exporter.ExportReport` is one)."""

    claimed: int
    created: int
    found: int
    retried: int
    dead: int


#: (error, attempts so far, now) → ("dead" | "retry", when the retry is due, reason).
Verdict = Callable[[SapError, int, datetime], tuple[str, datetime, str]]


class ServiceExport:
    """One round's work for service orders and confirmations; counts go to ``report``
    (an :class:`~cloud.sap.exporter.ExportReport`)."""

    def __init__(
        self,
        pool: ConnectionPool[Connection[Any]],
        gateway: ServiceGateway,
        settings: SapSettings,
        verdict: Verdict,
    ) -> None:
        self._pool = pool
        self._gateway = gateway
        self._settings = settings
        self._verdict = verdict

    def run(self, now: datetime, report: Counts) -> None:
        s = self._settings
        with self._pool.connection() as conn:
            orders = repo.claim_service_orders(conn, now, s.lease_s, s.batch_size)
        report.claimed += len(orders)
        if orders:
            self._orders(orders, now, report)
        with self._pool.connection() as conn:
            confirmations = repo.claim_confirmations(conn, now, s.lease_s, s.batch_size)
        report.claimed += len(confirmations)
        if confirmations:
            self._confirmations(confirmations, now, report)

    # -- service orders ---------------------------------------------------------------
    def _draft(self, claim: repo.ClaimedServiceOrder) -> ServiceOrderDraft:
        if claim.sold_to is None:
            raise SapRefusedError(
                f"work order {claim.reference} names no customer account:"
                " SAP's service order needs a sold-to party"
            )
        return ServiceOrderDraft(
            reference=claim.reference,
            order_type=self._settings.service_order_type,
            description=claim.description,
            sold_to=claim.sold_to,
            priority=sap_priority(claim.priority),
            requested_start=claim.requested_start,
            rejected=claim.rejected,
        )

    def _orders(
        self, claims: list[repo.ClaimedServiceOrder], now: datetime, report: Counts
    ) -> None:
        drafts: dict[str, ServiceOrderDraft] = {}
        for claim in claims:
            try:
                drafts[claim.reference] = self._draft(claim)
            except SapRefusedError as exc:
                self._failed("service_orders", claim, exc, now, report)
        live = [c for c in claims if c.reference in drafts]
        if not live:
            return
        try:
            found = self._gateway.find_service_orders([c.reference for c in live])
        except SapError as exc:
            for claim in live:
                self._failed("service_orders", claim, exc, now, report)
            return
        to_create = []
        for claim in live:
            records = found.get(claim.reference, [])
            if not records:
                to_create.append(claim)
                continue
            if len(records) > 1:
                log.error("SAP holds %d service orders for %s", len(records), claim.reference)
            self._order_found(claim, records[0], drafts[claim.reference], now, report)
        if not to_create:
            return
        try:
            outcomes = self._gateway.create_service_orders([drafts[c.reference] for c in to_create])
        except SapError as exc:
            for claim in to_create:
                self._failed("service_orders", claim, exc, now, report)
            return
        for claim, outcome in zip(to_create, outcomes, strict=True):
            if isinstance(outcome, Created):
                self._order_done(claim, outcome.record.service_order, now)
                report.created += 1
            elif isinstance(outcome, Refused | Failed):
                self._failed("service_orders", claim, outcome.error, now, report)

    def _order_found(
        self,
        claim: repo.ClaimedServiceOrder,
        record: ServiceOrderRecord,
        draft: ServiceOrderDraft,
        now: datetime,
        report: Counts,
    ) -> None:
        if record.differs_from(draft):
            try:
                self._gateway.update_service_order(record.service_order, draft)
            except SapError as exc:
                self._failed("service_orders", claim, exc, now, report)
                return
        self._order_done(claim, record.service_order, now)
        report.found += 1

    def _order_done(self, claim: repo.ClaimedServiceOrder, number: str, now: datetime) -> None:
        with self._pool.connection() as conn:
            repo.service_order_exported(conn, claim, number, now)
        log.info("SAP service order %s for %s", number, claim.reference)

    # -- confirmations ----------------------------------------------------------------
    def _confirmation_draft(self, claim: repo.ClaimedConfirmation) -> ConfirmationDraft:
        return ConfirmationDraft(
            reference=claim.reference,
            service_order=claim.sap_service_order,
            sold_to=claim.sold_to,
            confirmation_type=self._settings.confirmation_type,
            description=claim.description,
            labour_product=self._settings.labour_product,
            labour_hours=claim.labour_hours,
            parts=tuple(PartLine(str(p["part_no"]), int(p["quantity"])) for p in claim.parts),
        )

    def _confirmations(
        self, claims: list[repo.ClaimedConfirmation], now: datetime, report: Counts
    ) -> None:
        drafts: dict[str, ConfirmationDraft] = {}
        for claim in claims:
            try:
                drafts[claim.reference] = self._confirmation_draft(claim)
            except SapRefusedError as exc:
                self._failed("service_confirmations", claim, exc, now, report)
        live = [c for c in claims if c.reference in drafts]
        if not live:
            return
        try:
            found = self._gateway.find_confirmations([c.reference for c in live])
        except SapError as exc:
            for claim in live:
                self._failed("service_confirmations", claim, exc, now, report)
            return
        to_create = []
        for claim in live:
            records = found.get(claim.reference, [])
            if records:
                self._confirmation_done(claim, records[0].confirmation, now)
                report.found += 1
            else:
                to_create.append(claim)
        if not to_create:
            return
        try:
            outcomes = self._gateway.create_confirmations([drafts[c.reference] for c in to_create])
        except SapError as exc:
            for claim in to_create:
                self._failed("service_confirmations", claim, exc, now, report)
            return
        for claim, outcome in zip(to_create, outcomes, strict=True):
            if isinstance(outcome, Created):
                self._confirmation_done(claim, outcome.record.confirmation, now)
                report.created += 1
            elif isinstance(outcome, Refused | Failed):
                self._failed("service_confirmations", claim, outcome.error, now, report)

    def _confirmation_done(
        self, claim: repo.ClaimedConfirmation, number: str, now: datetime
    ) -> None:
        with self._pool.connection() as conn:
            repo.confirmation_exported(conn, claim, number, now)
        log.info("SAP service confirmation %s for %s", number, claim.reference)

    # -- failures ---------------------------------------------------------------------
    def _failed(
        self,
        table: str,
        claim: repo.ClaimedServiceOrder | repo.ClaimedConfirmation,
        error: SapError,
        now: datetime,
        report: Counts,
    ) -> None:
        verdict, next_at, reason = self._verdict(error, claim.attempts, now)
        with self._pool.connection() as conn:
            if verdict == "dead":
                repo.mark_dead(
                    conn, table, claim.reference, claim.lease_id, reason, now,
                    attempted=not isinstance(error, SapRefusedError),
                )  # fmt: skip
                report.dead += 1
            else:
                repo.mark_retry(
                    conn, table, claim.reference, claim.lease_id, reason,
                    unknown=isinstance(error, SapTimeoutError), next_at=next_at,
                )  # fmt: skip
                report.retried += 1
        log.warning("SAP %s %s: %s (%s)", table, claim.reference, reason, verdict)
