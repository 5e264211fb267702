"""The exporter: sends the ``sap`` schema's queues to SAP, each document exactly once.

One :meth:`SapExporter.export_round` (blocking; :meth:`SapExporter.run` runs rounds in a
thread):

1. **claims** due business partners, then due documents whose account's partner SAP
   already holds (an AR line names the customer), under a lease;
2. **queries SAP by our reference first** — the partner's external id, the document's
   number — and takes what SAP already holds as exported (an earlier attempt that
   committed but whose answer was lost: a timeout, a dropped connection, a crash);
3. **creates** the rest in one ``$batch``, a change set each, and records each outcome:
   exported with SAP's key; refused for its content → dead-lettered with SAP's reason;
   failed → due again after an exponential back-off with full jitter, bounded, and
   dead-lettered after ``max_attempts`` attempts.

After a timeout nothing is sent blind: the row is marked ``outcome_unknown`` and the
next round's step 2 finds what SAP committed. A document that cannot be represented in
SAP (a reference over 16 characters, tax that does not add up) is dead-lettered before
anything is sent.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from cloud.adapters.postgres import Connection, ConnectionPool
from cloud.events.invoices import InvoiceIssued
from cloud.events.payments import PaymentMoved
from cloud.sap import repository as repo
from cloud.sap.documents import (
    ArDocument,
    ArRecord,
    Created,
    Failed,
    PartnerDraft,
    PartnerRecord,
    Refused,
    SapGateway,
    ar_document,
    payment_document,
)
from cloud.sap.errors import (
    SapBusinessError,
    SapError,
    SapRefusedError,
    SapTimeoutError,
)
from cloud.sap.service_documents import ServiceGateway
from cloud.sap.service_exporter import ServiceExport
from cloud.sap.settings import SapSettings
from contracts.timeutil import utc_now
from contracts.topics import Region
from pacing import Backoff

__all__ = ["ExportReport", "SapExporter"]

log = logging.getLogger(__name__)


@dataclass
class ExportReport:
    """What one round did."""

    claimed: int = 0
    created: int = 0
    #: Found in SAP already (by reference): an earlier attempt had committed.
    found: int = 0
    retried: int = 0
    dead: int = 0


class SapExporter:
    """Sends due partners and documents to ``gateway``; several may run at once."""

    def __init__(
        self,
        pool: ConnectionPool[Connection[Any]],
        gateway: SapGateway,
        settings: SapSettings,
        *,
        clock: Callable[[], datetime] = utc_now,
        rng: random.Random | None = None,
        services: ServiceGateway | None = None,
    ) -> None:
        self._pool = pool
        self._gateway = gateway
        self._settings = settings
        self._clock = clock
        self._backoff = Backoff(
            settings.retry_first_s, settings.retry_cap_s, "full", rng or random.Random()
        )
        #: Work orders (service orders, confirmations), when a gateway for them is given.
        self._services = (
            ServiceExport(pool, services, settings, self._verdict) if services else None
        )

    # -- the loop ---------------------------------------------------------------------
    async def run(self, stop: asyncio.Event, *, wake: asyncio.Event | None = None) -> None:
        """Export until ``stop`` is set: again at once while rounds find work, else after
        ``poll_s`` or when ``wake`` is set (something was queued in this process)."""
        while not stop.is_set():
            if wake is not None:
                wake.clear()
            try:
                report = await asyncio.to_thread(self.export_round)
            except Exception:  # the database away, a bug: log, wait, go on
                log.exception("SAP export round failed")
                report = ExportReport()
            if report.claimed:
                continue
            waiters = [asyncio.create_task(stop.wait())]
            if wake is not None:
                waiters.append(asyncio.create_task(wake.wait()))
            await asyncio.wait(
                waiters, timeout=self._settings.poll_s, return_when=asyncio.FIRST_COMPLETED
            )
            for waiter in waiters:
                waiter.cancel()

    def export_round(self, now: datetime | None = None) -> ExportReport:
        """One round (blocking); ``now`` decides what is due (default: the clock)."""
        now = now or self._clock()
        report = ExportReport()
        s = self._settings
        with self._pool.connection() as conn:
            partners = repo.claim_partners(conn, now, s.lease_s, s.batch_size)
        report.claimed += len(partners)
        if partners:
            self._export_partners(partners, now, report)
        with self._pool.connection() as conn:
            documents = repo.claim_documents(conn, now, s.lease_s, s.batch_size)
        report.claimed += len(documents)
        if documents:
            self._export_documents(documents, now, report)
        if self._services is not None:
            self._services.run(now, report)
        return report

    # -- partners -----------------------------------------------------------------------
    def _export_partners(
        self, claims: list[repo.ClaimedPartner], now: datetime, report: ExportReport
    ) -> None:
        drafts: dict[str, PartnerDraft] = {}
        for claim in claims:
            try:
                drafts[claim.account_id] = PartnerDraft(claim.external_id, claim.name)
            except SapRefusedError as exc:
                self._partner_failed(claim, exc, now, report)
        live = [c for c in claims if c.account_id in drafts]
        try:
            found = self._gateway.find_partners([c.external_id for c in live])
        except SapError as exc:
            for claim in live:
                self._partner_failed(claim, exc, now, report)
            return
        to_create: list[repo.ClaimedPartner] = []
        for claim in live:
            records = found.get(claim.external_id, [])
            if not records:
                to_create.append(claim)
                continue
            if len(records) > 1:
                log.error("SAP holds %d partners for %s", len(records), claim.external_id)
            self._partner_found(claim, records[0], drafts[claim.account_id], now, report)
        if not to_create:
            return
        try:
            outcomes = self._gateway.create_partners([drafts[c.account_id] for c in to_create])
        except SapError as exc:
            for claim in to_create:
                self._partner_failed(claim, exc, now, report)
            return
        for claim, outcome in zip(to_create, outcomes, strict=True):
            if isinstance(outcome, Created):
                self._partner_done(claim, outcome.record, now)
                report.created += 1
            elif isinstance(outcome, Refused | Failed):
                self._partner_failed(claim, outcome.error, now, report)

    def _partner_found(
        self,
        claim: repo.ClaimedPartner,
        record: PartnerRecord,
        draft: PartnerDraft,
        now: datetime,
        report: ExportReport,
    ) -> None:
        if record.name != "".join(draft.name_parts):
            try:
                self._gateway.rename_partner(record, draft)
            except SapError as exc:
                self._partner_failed(claim, exc, now, report)
                return
        self._partner_done(claim, record, now)
        report.found += 1

    def _partner_done(
        self, claim: repo.ClaimedPartner, record: PartnerRecord, now: datetime
    ) -> None:
        with self._pool.connection() as conn:
            repo.partner_exported(conn, claim, record.partner, record.customer, now)
        log.info("SAP partner %s for %s: %s", record.partner, claim.account_id, claim.external_id)

    def _partner_failed(
        self, claim: repo.ClaimedPartner, error: SapError, now: datetime, report: ExportReport
    ) -> None:
        verdict, next_at, reason = self._verdict(error, claim.attempts, now)
        with self._pool.connection() as conn:
            if verdict == "dead":
                repo.partner_dead(
                    conn, claim, reason, now, attempted=not isinstance(error, SapRefusedError)
                )
            else:
                repo.partner_retry(
                    conn, claim, reason, unknown=isinstance(error, SapTimeoutError), next_at=next_at
                )
        self._count(verdict, report)
        log.warning("SAP partner %s: %s (%s)", claim.external_id, reason, verdict)

    # -- documents ------------------------------------------------------------------------
    def _export_documents(
        self, claims: list[repo.ClaimedDocument], now: datetime, report: ExportReport
    ) -> None:
        built: dict[int, ArDocument] = {}
        for claim in claims:
            try:
                built[claim.id] = self._document(claim)
            except SapRefusedError as exc:
                self._document_failed(claim, exc, now, report)
        by_company: dict[str, list[repo.ClaimedDocument]] = defaultdict(list)
        for claim in claims:
            if claim.id in built:
                by_company[built[claim.id].company_code].append(claim)
        for company_code, group in sorted(by_company.items()):
            self._export_company(company_code, group, built, now, report)

    def _document(self, claim: repo.ClaimedDocument) -> ArDocument:
        rules = self._settings.posting_rules(Region(claim.region))
        if claim.payload.get("kind") in ("payment", "refund"):
            try:
                moved = PaymentMoved.model_validate(claim.payload)
            except ValidationError as exc:
                raise SapRefusedError(f"stored payment is not a payment: {exc}") from None
            return payment_document(moved, customer=claim.sap_customer, rules=rules)
        try:
            issued = InvoiceIssued.model_validate(claim.payload)
        except ValidationError as exc:
            raise SapRefusedError(f"stored document is not an issued document: {exc}") from None
        return ar_document(issued, customer=claim.sap_customer, rules=rules)

    def _export_company(
        self,
        company_code: str,
        group: list[repo.ClaimedDocument],
        built: dict[int, ArDocument],
        now: datetime,
        report: ExportReport,
    ) -> None:
        try:
            found = self._gateway.find_documents(company_code, [c.number for c in group])
        except SapError as exc:
            for claim in group:
                self._document_failed(claim, exc, now, report)
            return
        to_post: list[repo.ClaimedDocument] = []
        for claim in group:
            records = found.get(claim.number, [])
            if not records:
                to_post.append(claim)
                continue
            warning = None
            if len(records) > 1:
                warning = f"SAP holds {len(records)} documents with reference {claim.number}"
                log.error(warning)
            self._document_done(claim, records[0], now, warning)
            report.found += 1
        if not to_post:
            return
        try:
            outcomes = self._gateway.post_documents([built[c.id] for c in to_post])
        except SapError as exc:
            for claim in to_post:
                self._document_failed(claim, exc, now, report)
            return
        for claim, outcome in zip(to_post, outcomes, strict=True):
            if isinstance(outcome, Created):
                self._document_done(claim, outcome.record, now, "; ".join(outcome.warnings) or None)
                report.created += 1
            elif isinstance(outcome, Refused | Failed):
                self._document_failed(claim, outcome.error, now, report)

    def _document_done(
        self, claim: repo.ClaimedDocument, record: ArRecord, now: datetime, warning: str | None
    ) -> None:
        with self._pool.connection() as conn:
            repo.document_exported(
                conn,
                claim,
                company_code=record.company_code,
                fiscal_year=record.fiscal_year,
                document=record.accounting_document,
                now=now,
                warnings=warning,
            )
        log.info("SAP document %s: %s", claim.number, record.key)

    def _document_failed(
        self, claim: repo.ClaimedDocument, error: SapError, now: datetime, report: ExportReport
    ) -> None:
        verdict, next_at, reason = self._verdict(error, claim.attempts, now)
        with self._pool.connection() as conn:
            if verdict == "dead":
                repo.document_dead(
                    conn, claim, reason, now, attempted=not isinstance(error, SapRefusedError)
                )
            else:
                repo.document_retry(
                    conn, claim, reason, unknown=isinstance(error, SapTimeoutError), next_at=next_at
                )
        self._count(verdict, report)
        log.warning("SAP document %s: %s (%s)", claim.number, reason, verdict)

    # -- the policy -------------------------------------------------------------------------
    def _verdict(self, error: SapError, attempts: int, now: datetime) -> tuple[str, datetime, str]:
        """("dead" | "retry", when the retry is due, the reason recorded)."""
        reason = f"{type(error).__name__}: {error}"
        if isinstance(error, SapBusinessError | SapRefusedError):
            return "dead", now, reason
        attempt = attempts + 1
        if attempt >= self._settings.max_attempts:
            return "dead", now, f"gave up after {attempt} attempts; last: {reason}"
        delay = self._backoff.delay(attempt)
        return "retry", now + timedelta(seconds=delay), reason

    @staticmethod
    def _count(verdict: str, report: ExportReport) -> None:
        if verdict == "dead":
            report.dead += 1
        else:
            report.retried += 1
