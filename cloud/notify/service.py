"""NotificationService: the notify service's published interface for telling people
things, and for the settings they choose (preferences, webhook endpoints).

:meth:`NotificationService.notify` takes a :class:`Notification` and its recipients (the
caller resolves who: the site's customers, the region's operators) and, in one
transaction, files the inbox entries and queues the e-mails and webhook calls in the
outbox (``notify.deliveries``), rendered in each person's language and time zone. The
delivery worker (:mod:`cloud.notify.worker`) sends what is queued. A notification id
posted again adds nothing: deliver alert events at least once, and people get each once.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import orjson

from cloud.adapters.postgres import Connection, ConnectionPool, ping
from cloud.notify import recipients
from cloud.notify import repository as repo
from cloud.notify.inbox import post_entry
from cloud.notify.mail import Rendered, TemplateError, Templates, builtin_templates
from cloud.notify.models import (
    Category,
    Channel,
    Delivery,
    DeliveryRecord,
    InboxEntryIn,
    NoticeIn,
    NoticeResult,
    Notification,
    NotifyResult,
    Preferences,
    PreferencesIn,
    Recipient,
    WebhookCreated,
    WebhookEndpoint,
    WebhookEndpointIn,
)
from cloud.notify.preferences import deliveries
from cloud.notify.settings import NotifySettings
from cloud.notify.webhook_http import Resolver, system_resolver
from cloud.notify.webhooks import WebhookRefused, parse_webhook_url, pinned_address, webhook_body
from contracts.timeutil import utc_now
from contracts.topics import Region

__all__ = [
    "MAX_RECIPIENTS",
    "SCHEMA",
    "SMTP_DESTINATION",
    "InvalidError",
    "NotFoundError",
    "NotificationService",
    "NotifyError",
    "PreferencesReader",
]

#: The notify service's PostgreSQL schema.
SCHEMA = "notify"
#: The destination key all mail shares (one relay; its concurrency is bounded as one).
SMTP_DESTINATION = "smtp"
#: Most people one ``notify`` call reaches (an offer to more goes in several calls).
MAX_RECIPIENTS = 5000
#: Most webhook endpoints per person.
MAX_ENDPOINTS = 10
#: How long the previous secret still signs after a rotation.
ROTATION_OVERLAP = timedelta(hours=24)


class NotifyError(Exception):
    """Base of the service's refusals; ``str()`` is fit for an API answer."""


class NotFoundError(NotifyError):
    pass


class InvalidError(NotifyError):
    """A request the models accept but the service refuses (422)."""


def _new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


class NotificationService:
    """Thread-safe (each call takes a pooled connection). ``clock``: the time a
    notification is planned at (quiet hours are judged against it); ``resolver``: how
    endpoint hosts are resolved when registered."""

    def __init__(
        self,
        pool: ConnectionPool[Connection[Any]],
        settings: NotifySettings,
        *,
        templates: Templates | None = None,
        clock: Callable[[], datetime] = utc_now,
        resolver: Resolver = system_resolver,
    ) -> None:
        self._pool = pool
        self._settings = settings
        self._templates = templates or builtin_templates()
        self._clock = clock
        self._resolver = resolver

    def ping(self) -> None:
        ping(self._pool)

    # -- preferences ----------------------------------------------------------------
    def preferences(self, user_id: str) -> Preferences:
        """``user_id``'s saved preferences, else the defaults (``saved`` False)."""
        return PreferencesReader(self._pool).preferences(user_id)

    def set_preferences(self, user_id: str, prefs: PreferencesIn) -> Preferences:
        with self._pool.connection() as conn:
            repo.save_preferences(conn, user_id, prefs, self._clock())
            return repo.preferences_of(conn, [user_id])[user_id]

    # -- webhook endpoints ----------------------------------------------------------
    def add_webhook(
        self, user_id: str, region: Region, endpoint: WebhookEndpointIn
    ) -> WebhookCreated:
        """Register an endpoint of ``user_id``'s and create its secret (in the answer
        only). :class:`InvalidError` when the URL is refused: not https, or its host
        resolves to an address webhooks may not reach (checked again at every call).
        Who may have endpoints (organisations) is the portal's decision."""
        self._check_url(endpoint.url)
        created = WebhookEndpoint(
            id="whk_" + uuid.uuid4().hex,
            user_id=user_id,
            region=region,
            url=endpoint.url,
            description=endpoint.description,
            created_at=self._clock(),
        )
        secret = _new_secret()
        with self._pool.connection() as conn:
            active = [e for e in repo.endpoints_of(conn, user_id) if e.disabled_at is None]
            if len(active) >= MAX_ENDPOINTS:
                raise InvalidError(f"at most {MAX_ENDPOINTS} webhook endpoints per person")
            repo.insert_endpoint(conn, created, secret)
        return WebhookCreated(endpoint=created, secret=secret)

    def webhooks(self, user_id: str) -> list[WebhookEndpoint]:
        """``user_id``'s endpoints, disabled ones included (with the reason)."""
        with self._pool.connection() as conn:
            return repo.endpoints_of(conn, user_id)

    def remove_webhook(self, user_id: str, endpoint_id: str) -> None:
        """Disable an endpoint of ``user_id``'s (its queued calls fail)."""
        with self._pool.connection() as conn:
            if not repo.disable_endpoint(conn, endpoint_id, "removed", self._clock(), user_id):
                raise NotFoundError(f"no active webhook endpoint {endpoint_id}")

    def rotate_webhook_secret(self, user_id: str, endpoint_id: str) -> str:
        """A new secret for an endpoint of ``user_id``'s (returned once); the previous one
        keeps signing beside it for 24 hours, so the receiver can switch without a gap."""
        secret = _new_secret()
        with self._pool.connection() as conn:
            until = self._clock() + ROTATION_OVERLAP
            if not repo.rotate_secret(conn, user_id, endpoint_id, secret, until):
                raise NotFoundError(f"no active webhook endpoint {endpoint_id}")
        return secret

    # -- notifications --------------------------------------------------------------
    def notify(
        self,
        notification: Notification,
        recipients: Sequence[Recipient],
        *,
        conn: Connection[Any] | None = None,
    ) -> NotifyResult:
        """File ``notification`` in every recipient's inbox and queue its e-mails and
        webhook calls (see the module). :class:`InvalidError` when its kind has no
        template or lacks a parameter, or there are too many recipients. ``conn``: do it
        in the caller's transaction (an event handler's, with its inbox row)."""
        if len(recipients) > MAX_RECIPIENTS:
            raise InvalidError(f"at most {MAX_RECIPIENTS} recipients per notification")
        try:
            self._templates.check(notification)
        except TemplateError as exc:
            raise InvalidError(str(exc)) from None
        now = self._clock()
        if conn is None:
            with self._pool.connection() as own:
                return self._notify(own, notification, recipients, now)
        return self._notify(conn, notification, recipients, now)

    def _notify(
        self,
        conn: Connection[Any],
        notification: Notification,
        recipients: Sequence[Recipient],
        now: datetime,
    ) -> NotifyResult:
        link = self._link(notification)
        renderings: dict[tuple[str, str], Rendered] = {}
        prefs = repo.preferences_of(conn, list({r.user_id for r in recipients}))
        planned = deliveries(notification, recipients, prefs, now)
        endpoints = repo.endpoint_secrets(
            conn, [d.destination for d in planned if d.channel is Channel.WEBHOOK], now
        )
        posted = queued = 0
        # Inboxes first, in user-id order: two notifications for the same people lock
        # the people's change counters in one order, never waiting in a cycle.
        for d in sorted(planned, key=lambda d: (d.channel is not Channel.INBOX, d.user_id)):
            reader = (d.language, d.time_zone)
            if reader not in renderings:
                renderings[reader] = self._templates.render(
                    notification, d.language, d.time_zone, link=link
                )
            rendered = renderings[reader]
            if d.channel is Channel.INBOX:
                entry = post_entry(conn, d.user_id, _inbox_entry(notification, rendered))
                posted += entry is not None
                continue
            new = self._new_delivery(notification, d, rendered, endpoints, now)
            queued += new is not None and repo.insert_delivery(conn, new)
        return NotifyResult(deliveries=tuple(planned), inbox_posted=posted, queued=queued)

    def staff(self, region: Region, roles: Sequence[str]) -> list[Recipient]:
        """The enabled staff of ``roles`` whose home region is ``region``, as notify knows
        them (from ``user.*``): whom a scheduled job (the monthly reports pack) tells."""
        with self._pool.connection() as conn:
            return recipients.staff_of(conn, region, roles)

    def send_notice(self, notice: NoticeIn) -> NoticeResult:
        """One notification per chosen account (:class:`NoticeIn`) to the account's
        customer users, each account in its own transaction (an interrupted sending sent
        again with the same ``campaign_id`` completes it and repeats nobody). An offer
        reaches only people who opted in to offers (their saved preferences choose the
        ``offer`` category by e-mail or webhook): without consent, not even the inbox.
        :class:`InvalidError` as :meth:`notify`."""
        category = _NOTICE_CATEGORIES[notice.kind]
        now = self._clock()

        def notification(account_id: str | None) -> Notification:
            return Notification(
                id=uuid.uuid5(notice.campaign_id, account_id or ""),
                kind=notice.kind,
                category=category,
                region=notice.region,
                account_id=account_id,
                link=notice.link,
                params=notice.params,
                created_at=now,
            )

        try:
            self._templates.check(notification(None))
        except TemplateError as exc:
            raise InvalidError(str(exc)) from None
        with self._pool.connection() as conn:
            chosen = recipients.accounts_in(
                conn, notice.region, account_ids=notice.account_ids, plan_code=notice.plan_code
            )
        notified = posted = queued = 0
        for account_id in chosen:
            with self._pool.connection() as conn:
                people = recipients.customers_of(conn, notice.region, [account_id])
                reached = people.get(account_id, [])
                if category is Category.OFFER:
                    reached = _consenting(
                        reached, repo.preferences_of(conn, [r.user_id for r in reached])
                    )
                if not reached:
                    continue
                result = self._notify(conn, notification(account_id), reached, now)
            notified += 1
            posted += result.inbox_posted
            queued += result.queued
        return NoticeResult(
            campaign_id=notice.campaign_id,
            chosen=len(chosen),
            notified=notified,
            inbox_posted=posted,
            queued=queued,
        )

    def deliveries(
        self, notification_id: UUID, *, user_id: str | None = None
    ) -> list[DeliveryRecord]:
        """The e-mail and webhook deliveries of a notification (``user_id``: only theirs;
        None: all, for operators and tests)."""
        with self._pool.connection() as conn:
            return repo.deliveries_of(conn, notification_id, user_id)

    # -- helpers --------------------------------------------------------------------
    def _check_url(self, url: str) -> None:
        s = self._settings
        try:
            target = parse_webhook_url(url, allow_http=s.notify_webhook_allow_http)
            try:
                addresses = self._resolver(target.host, target.port)
            except OSError as exc:
                raise WebhookRefused(f"{target.host} does not resolve: {exc}") from None
            pinned_address(target.host, addresses, s.webhook_allowed_networks)
        except WebhookRefused as exc:
            raise InvalidError(str(exc)) from None

    def _link(self, notification: Notification) -> str:
        return self._settings.portal_link(notification.link)

    def _new_delivery(
        self,
        notification: Notification,
        d: Delivery,
        rendered: Rendered,
        endpoints: dict[str, repo.EndpointSecrets],
        now: datetime,
    ) -> repo.NewDelivery | None:
        delivery_id = uuid.uuid4()
        if d.channel is Channel.EMAIL:
            text = self._templates.email_text(
                rendered,
                link=self._link(notification),
                settings_url=self._settings.settings_url,
                time_zone=d.time_zone,
            )
            fields: dict[str, Any] = {
                "to": d.destination,
                "subject": rendered.title,
                "text": text,
                "language": d.language,
            }
            if notification.attachment is not None:  # its name: the worker makes the file
                fields["attachment"] = notification.attachment.model_dump()
            payload = orjson.dumps(fields).decode()
            key = SMTP_DESTINATION
        else:
            endpoint = endpoints.get(d.destination)
            if endpoint is None:  # removed since the preferences were read
                return None
            try:
                key = parse_webhook_url(endpoint.url, allow_http=True).destination_key
            except WebhookRefused:
                return None
            payload = webhook_body(
                _webhook_fields(notification, rendered, delivery_id, self._link(notification))
            ).decode()
        return repo.NewDelivery(
            id=delivery_id,
            notification_id=notification.id,
            user_id=d.user_id,
            region=notification.region,
            channel=d.channel.value,
            destination=d.destination,
            destination_key=key,
            payload=payload,
            created_at=now,
            send_after=d.send_after,
        )


_NOTICE_CATEGORIES = {
    "notice": Category.NOTICE,
    "plan_change": Category.NOTICE,
    "offer": Category.OFFER,
}


def _consenting(people: Sequence[Recipient], prefs: dict[str, Preferences]) -> list[Recipient]:
    """Those of ``people`` who chose offers (saved preferences only: the defaults never
    include them)."""

    def agreed(p: Preferences | None) -> bool:
        return p is not None and p.saved and Category.OFFER in (p.email | p.webhook)

    return [r for r in people if agreed(prefs.get(r.user_id))]


def _inbox_entry(notification: Notification, rendered: Rendered) -> InboxEntryIn:
    return InboxEntryIn(
        notification_id=notification.id,
        region=notification.region,
        account_id=notification.account_id,
        kind=notification.kind,
        category=notification.category,
        severity=notification.severity,
        title=rendered.title,
        body=rendered.body,
        link=notification.link,
        created_at=notification.created_at,
    )


def _webhook_fields(
    notification: Notification, rendered: Rendered, delivery_id: UUID, link: str
) -> dict[str, Any]:
    """The webhook body: the notification as data, and as text in the owner's language."""
    data = notification.model_dump(mode="json")
    return {
        "type": f"notification.{notification.category.value}",
        "delivery_id": str(delivery_id),
        "notification_id": data["id"],
        "kind": data["kind"],
        "category": data["category"],
        "severity": data["severity"],
        "region": data["region"],
        "account_id": data["account_id"],
        "created_at": data["created_at"],
        "params": data["params"],
        "language": rendered.language,
        "title": rendered.title,
        "body": rendered.body,
        "link": link or None,
    }


class PreferencesReader:
    """People's saved notification preferences, read with nothing but the pool: what
    another process needs (a bill's language) without notify's settings."""

    def __init__(self, pool: ConnectionPool[Connection[Any]]) -> None:
        self._pool = pool

    def preferences(self, user_id: str) -> Preferences:
        """``user_id``'s saved preferences, else the defaults (``saved`` False)."""
        with self._pool.connection() as conn:
            found = repo.preferences_of(conn, [user_id])
        return found.get(user_id) or Preferences(user_id=user_id)
