"""The exporter: sends the ``sap`` schema's queues to SAP, each row exactly once.

One :meth:`SapExporter.export_round` (blocking; :meth:`SapExporter.run` runs rounds in a
thread) runs every kind (:mod:`cloud.sap.kinds`: partners, documents and, with a service
gateway, service orders and confirmations) in turn, each the same way:

1. **claims** due rows under a lease (documents and service orders once their account's
   partner is in SAP, confirmations once their service order is);
2. **queries SAP by our reference first** — the partner's external id, the document's
   number, the service order's or confirmation's reference — and takes what SAP already
   holds as exported (an earlier attempt that committed but whose answer was lost: a
   timeout, a dropped connection, a crash), brought up to date where it differs (a
   partner's name; a service order's description, priority or rejection);
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
from typing import Any, TypeVar

from cloud.adapters.postgres import Connection, ConnectionPool
from cloud.sap import queue
from cloud.sap.documents import Created, Failed, Refused, SapGateway
from cloud.sap.errors import (
    SapBusinessError,
    SapError,
    SapRefusedError,
    SapTimeoutError,
)
from cloud.sap.kinds import Kind, billing_kinds, service_kinds
from cloud.sap.queue import Claimed
from cloud.sap.service_documents import ServiceGateway
from cloud.sap.settings import SapSettings
from contracts.timeutil import utc_now
from pacing import Backoff

__all__ = ["ExportReport", "SapExporter"]

log = logging.getLogger(__name__)

C = TypeVar("C", bound=Claimed)
D = TypeVar("D")
R = TypeVar("R")


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
    """Sends due partners and documents to ``gateway`` (and work orders to ``services``);
    several may run at once."""

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
        self._settings = settings
        self._clock = clock
        self._backoff = Backoff(
            settings.retry_first_s, settings.retry_cap_s, "full", rng or random.Random()
        )
        #: Work orders (service orders, confirmations), when a gateway for them is given.
        self._kinds = [
            *billing_kinds(gateway, settings),
            *(service_kinds(services, settings) if services else ()),
        ]

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
        for kind in self._kinds:
            self._export(kind, now, report)
        return report

    # -- one kind -----------------------------------------------------------------------
    def _export(self, kind: Kind[C, D, R], now: datetime, report: ExportReport) -> None:
        s = self._settings
        with self._pool.connection() as conn:
            claims: list[C] = queue.claim(conn, kind.queue, now, s.lease_s, s.batch_size)
        report.claimed += len(claims)
        groups: dict[str, list[tuple[C, D]]] = defaultdict(list)
        for claim in claims:
            try:
                draft = kind.draft(claim)
            except SapRefusedError as exc:
                self._failed(kind, claim, exc, now, report)
                continue
            groups[kind.group(draft)].append((claim, draft))
        for group in sorted(groups):
            self._export_group(kind, group, groups[group], now, report)

    def _export_group(
        self,
        kind: Kind[C, D, R],
        group: str,
        live: list[tuple[C, D]],
        now: datetime,
        report: ExportReport,
    ) -> None:
        """Query SAP by our references, take what it holds, create the rest."""
        try:
            found = kind.find(group, [kind.reference(claim) for claim, _ in live])
        except SapError as exc:
            for claim, _ in live:
                self._failed(kind, claim, exc, now, report)
            return
        to_create: list[tuple[C, D]] = []
        for claim, draft in live:
            reference = kind.reference(claim)
            records = found.get(reference, [])
            if not records:
                to_create.append((claim, draft))
                continue
            warning = None
            if len(records) > 1:
                warning = f"SAP holds {len(records)} {kind.plural} with reference {reference}"
                log.error(warning)
            try:
                kind.refresh(records[0], draft)
            except SapError as exc:
                self._failed(kind, claim, exc, now, report)
                continue
            self._done(kind, claim, records[0], now, warning)
            report.found += 1
        if not to_create:
            return
        try:
            outcomes = kind.create([draft for _, draft in to_create])
        except SapError as exc:
            for claim, _ in to_create:
                self._failed(kind, claim, exc, now, report)
            return
        for (claim, _), outcome in zip(to_create, outcomes, strict=True):
            if isinstance(outcome, Created):
                self._done(kind, claim, outcome.record, now, "; ".join(outcome.warnings) or None)
                report.created += 1
            elif isinstance(outcome, Refused | Failed):
                self._failed(kind, claim, outcome.error, now, report)

    def _done(
        self, kind: Kind[C, D, R], claim: C, record: R, now: datetime, warnings: str | None
    ) -> None:
        sap = kind.sap_key(claim, record)
        with self._pool.connection() as conn:
            queue.exported(conn, kind.queue, claim, now, {**sap, "warnings": warnings})
        log.info("SAP %s %s: %s", kind.name, kind.reference(claim), sap)

    def _failed(
        self, kind: Kind[C, D, R], claim: C, error: SapError, now: datetime, report: ExportReport
    ) -> None:
        verdict, next_at, reason = self._verdict(error, claim.attempts, now)
        with self._pool.connection() as conn:
            if verdict == "dead":
                queue.dead(
                    conn, kind.queue, claim, reason, now,
                    attempted=not isinstance(error, SapRefusedError),
                )  # fmt: skip
                report.dead += 1
            else:
                queue.retry(
                    conn, kind.queue, claim, reason,
                    unknown=isinstance(error, SapTimeoutError), next_at=next_at,
                )  # fmt: skip
                report.retried += 1
        log.warning("SAP %s %s: %s (%s)", kind.name, kind.reference(claim), reason, verdict)

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
