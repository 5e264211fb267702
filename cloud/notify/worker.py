"""The delivery worker: sends the e-mails and webhook calls the outbox holds when due.

One :meth:`DeliveryWorker.deliver_due` call:

1. **claims** (one transaction) the due deliveries, at most the destination's
   concurrency per destination (the relay; a webhook's host and port), leasing them and
   recording each attempt as started;
2. **sends** them outside any transaction, concurrently, each bounded by the attempt
   timeout and its destination's semaphore;
3. **records** each outcome as it comes (its own short transaction): sent, failed for
   good, or due again after the back-off.

A worker that dies between 1 and 3 leaves its attempts open and its leases running; when
a lease ends the delivery is claimed again and the open attempt closed as ``lost`` (the
receiver may have had it: delivery is at least once, and the delivery id — the mail's
Message-ID, the webhook's ``X-PoTR-Delivery`` — lets receivers drop a repeat). A worker
that outlived its lease records its attempt but no longer moves the delivery.

Several workers may run at once (``FOR UPDATE SKIP LOCKED``). ``now`` decides what is
due and when retries fall (tests pass their own); the clock stamps signatures and mail.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson

from cloud.adapters.postgres import Connection, ConnectionPool
from cloud.adapters.smtp import SmtpError
from cloud.notify import repository as repo
from cloud.notify.attachments import AttachmentSource, MailAttachment, checked
from cloud.notify.mail import MailTransport, SmtpTransport, email_message
from cloud.notify.service import SMTP_DESTINATION
from cloud.notify.settings import NotifySettings
from cloud.notify.webhook_http import (
    HttpxWebhookClient,
    Resolver,
    WebhookClient,
    WebhookConnectError,
    system_resolver,
)
from cloud.notify.webhooks import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    Attempt,
    WebhookRefused,
    classify_status,
    parse_webhook_url,
    pinned_address,
    signature_header,
)
from contracts.timeutil import utc_now

__all__ = ["DeliveryReport", "DeliveryWorker"]

log = logging.getLogger(__name__)


@dataclass
class DeliveryReport:
    """What one :meth:`DeliveryWorker.deliver_due` did."""

    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0


@dataclass(frozen=True)
class _Outcome:
    attempt: Attempt
    error: str | None = None
    status_code: int | None = None
    retry_after_s: float | None = None
    disable_endpoint: bool = False


@dataclass
class DeliveryWorker:
    """Sends due deliveries; open with :meth:`open` (SMTP and httpx) or give the
    transports yourself."""

    pool: ConnectionPool[Connection[Any]]
    settings: NotifySettings
    mail: MailTransport
    webhooks: WebhookClient
    resolver: Resolver = system_resolver
    clock: Callable[[], datetime] = utc_now
    rng: random.Random = field(default_factory=random.Random)
    #: Attachment kind → the source that makes its files (:mod:`cloud.notify.attachments`).
    attachments: Mapping[str, AttachmentSource] = field(default_factory=dict)

    @classmethod
    @asynccontextmanager
    async def open(
        cls, pool: ConnectionPool[Connection[Any]], settings: NotifySettings, **kwargs: Any
    ) -> AsyncIterator[DeliveryWorker]:
        """A worker over the settings' SMTP relay and an httpx client it closes on exit;
        ``kwargs``: the other fields (resolver, clock, rng, attachments)."""
        client = HttpxWebhookClient(
            timeout_s=settings.notify_webhook_timeout_s, ca_file=settings.notify_webhook_ca_file
        )
        async with client:
            yield cls(pool, settings, SmtpTransport(settings.smtp_relay), client, **kwargs)

    def concurrency(self, destination_key: str) -> int:
        """Deliveries in flight at once to one destination."""
        s = self.settings
        if destination_key == SMTP_DESTINATION:
            return s.notify_smtp_concurrency
        return s.notify_webhook_concurrency

    async def deliver_due(self, now: datetime | None = None) -> DeliveryReport:
        """Send what is due at ``now`` (default: the clock) and record the outcomes."""
        now = now or self.clock()
        s = self.settings
        claimed, exhausted = await asyncio.to_thread(self._claim, now)
        report = DeliveryReport(claimed=len(claimed), failed=exhausted)
        if not claimed:
            return report
        endpoints = await asyncio.to_thread(self._endpoints, claimed, now)
        limits = {
            key: asyncio.Semaphore(self.concurrency(key))
            for key in {c.destination_key for c in claimed}
        }

        async def attempt(c: repo.Claimed) -> None:
            async with limits[c.destination_key]:
                try:
                    async with asyncio.timeout(s.notify_attempt_timeout_s):
                        outcome = await self._send(c, endpoints.get(c.destination))
                except TimeoutError:
                    outcome = _Outcome("retry", "timed out")
                except Exception as exc:  # one bad delivery must not sink the batch
                    log.exception("notify: delivery %s attempt %d broke", c.id, c.attempt)
                    outcome = _Outcome("retry", f"internal error: {type(exc).__name__}")
            await asyncio.to_thread(self._record, c, outcome, now)
            if outcome.attempt == "sent":
                report.sent += 1
            elif outcome.attempt == "retry" and c.attempt < s.notify_max_attempts:
                report.retried += 1
            else:
                report.failed += 1

        async with asyncio.TaskGroup() as group:
            for c in claimed:
                group.create_task(attempt(c))
        return report

    async def run(
        self, stop: asyncio.Event, *, idle_s: float = 5.0, wake: asyncio.Event | None = None
    ) -> None:
        """Deliver until ``stop`` is set: again at once while there was work, else after
        ``idle_s`` or as soon as ``wake`` is set (a delivery was filed in this process;
        the idle check stays for retries and for filings elsewhere). A failing database is
        logged and retried after ``idle_s``."""
        while not stop.is_set():
            if wake is not None:
                wake.clear()  # what is filed from here on is seen by the next round
            try:
                report = await self.deliver_due()
            except Exception:  # keep delivering; the next round retries
                log.exception("notify: delivery round failed")
                report = DeliveryReport()
            if report.claimed:
                continue
            await _first_of(stop, wake, idle_s)

    # -- the database (in a thread) -----------------------------------------------
    def _claim(self, now: datetime) -> tuple[list[repo.Claimed], int]:
        s = self.settings
        with self.pool.connection() as conn:
            return repo.claim_due(
                conn,
                now,
                lease_until=now + timedelta(seconds=s.notify_lease_s),
                batch=s.notify_batch,
                per_destination=self.concurrency,
                max_attempts=s.notify_max_attempts,
            )

    def _endpoints(
        self, claimed: list[repo.Claimed], now: datetime
    ) -> dict[str, repo.EndpointSecrets]:
        ids = [c.destination for c in claimed if c.channel == "webhook"]
        if not ids:
            return {}
        with self.pool.connection() as conn:
            return repo.endpoint_secrets(conn, ids, now)

    def _record(self, c: repo.Claimed, outcome: _Outcome, now: datetime) -> None:
        next_at = None
        if outcome.attempt == "retry":
            next_at = self.settings.retry_policy.next_attempt_at(
                now, c.attempt, self.rng.random(), outcome.retry_after_s
            )
        with self.pool.connection() as conn:
            moved = repo.finish_attempt(
                conn,
                c,
                outcome=outcome.attempt,
                now=now,
                next_attempt_at=next_at,
                status_code=outcome.status_code,
                error=outcome.error,
            )
            if outcome.disable_endpoint:
                repo.disable_endpoint(conn, c.destination, "the receiver answered 410", now, None)
        if not moved:
            log.warning("notify: delivery %s attempt %d finished after its lease", c.id, c.attempt)

    # -- sending --------------------------------------------------------------------
    async def _send(self, c: repo.Claimed, endpoint: repo.EndpointSecrets | None) -> _Outcome:
        if c.channel == "email":
            return await self._send_mail(c)
        return await self._send_webhook(c, endpoint)

    async def _send_mail(self, c: repo.Claimed) -> _Outcome:
        payload = orjson.loads(c.payload)
        files: list[MailAttachment] = []
        named = payload.get("attachment")
        if named is not None:
            made = await self._attachment(named["kind"], named["key"], payload["language"])
            if isinstance(made, str):
                log.warning("notify: delivery %s attempt %d: %s", c.id, c.attempt, made)
                return _Outcome("retry", made)
            files.append(made)
        message = email_message(
            sender=self.settings.smtp_from,
            to=payload["to"],
            subject=payload["subject"],
            text=payload["text"],
            language=payload["language"],
            message_id=f"<{c.id}@notify.potr>",
            sent_at=self.clock(),
            settings_url=self.settings.settings_url,
            attachments=files,
        )
        try:
            await self.mail.send(message)
        except SmtpError as exc:
            return _Outcome("failed" if exc.permanent else "retry", str(exc), exc.code)
        return _Outcome("sent")

    async def _attachment(self, kind: str, key: str, language: str) -> MailAttachment | str:
        """The file ``kind``/``key`` names, made now in ``language``, or why it cannot be
        (a transient failure: the mail is retried, never sent without it)."""
        source = self.attachments.get(kind)
        if source is None:
            return f"attachment {kind}/{key}: no source for {kind!r}"
        try:
            return checked(await asyncio.to_thread(source, key, language))
        except Exception as exc:  # whatever the source raised: try the mail again later
            return f"attachment {kind}/{key} unavailable: {type(exc).__name__}: {exc}"[:300]

    async def _send_webhook(
        self, c: repo.Claimed, endpoint: repo.EndpointSecrets | None
    ) -> _Outcome:
        if endpoint is None or endpoint.disabled:
            return _Outcome("failed", "the endpoint was removed")
        s = self.settings
        try:
            target = parse_webhook_url(endpoint.url, allow_http=s.notify_webhook_allow_http)
            try:
                addresses = await asyncio.to_thread(self.resolver, target.host, target.port)
            except OSError as exc:
                return _Outcome("retry", f"{target.host} does not resolve: {exc}"[:300])
            address = pinned_address(target.host, addresses, s.webhook_allowed_networks)
        except WebhookRefused as exc:
            return _Outcome("failed", str(exc))
        body = c.payload.encode()
        timestamp = int(self.clock().timestamp())
        headers = {
            SIGNATURE_HEADER: signature_header(endpoint.secrets, timestamp, body),
            DELIVERY_HEADER: str(c.id),
        }
        try:
            response = await self.webhooks.post(target, address, body, headers)
        except WebhookConnectError as exc:
            return _Outcome("retry", str(exc))
        verdict = classify_status(response.status)
        return _Outcome(
            verdict,
            None if verdict == "sent" else f"HTTP {response.status}",
            response.status,
            response.retry_after_s,
            disable_endpoint=response.status == 410,
        )


async def _first_of(stop: asyncio.Event, wake: asyncio.Event | None, timeout_s: float) -> None:
    """Wait until ``stop`` or ``wake`` is set, at most ``timeout_s``."""
    waits = [asyncio.create_task(stop.wait())]
    if wake is not None:
        waits.append(asyncio.create_task(wake.wait()))
    try:
        await asyncio.wait(waits, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waits:
            task.cancel()
