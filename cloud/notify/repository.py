"""Notify SQL (schema ``notify``); every function takes a connection in a transaction.

Everything a person reads is filtered by their user id in SQL (``user_id = %(user)s``):
an id of someone else's entry, endpoint or delivery matches nothing. The delivery
worker's functions (``claim_due``, ``finish_attempt``) are the system's and see all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from cloud.adapters.postgres import Connection, dict_row
from cloud.notify.models import (
    Category,
    DeliveryRecord,
    InboxEntry,
    InboxEntryIn,
    Preferences,
    PreferencesIn,
    QuietHours,
    WebhookEndpoint,
)
from contracts.topics import Region

#: The channel ``pg_notify`` announces inbox changes on (payload: the user id).
INBOX_CHANNEL = "notify_inbox"

_INBOX_COLS = (
    "id, seq, change_no, notification_id, user_id, region, account_id, kind, category,"
    " severity, title, body, link, created_at, read_at"
)
_ENDPOINT_COLS = "id, user_id, region, url, description, created_at, disabled_at, disabled_reason"
_DELIVERY_COLS = (
    "id, notification_id, user_id, channel, destination, status, attempts, next_attempt_at,"
    " last_error, finished_at"
)


# -- preferences -------------------------------------------------------------------------
def preferences_of(conn: Connection[Any], user_ids: Sequence[str]) -> dict[str, Preferences]:
    """Saved preferences and active endpoints of ``user_ids``: an entry for everyone with
    either (``saved`` False for endpoints without saved preferences)."""
    cur = conn.cursor(row_factory=dict_row)
    saved = cur.execute(
        "SELECT user_id, language, time_zone, quiet_start, quiet_end, email_categories,"
        " webhook_categories FROM notify.preferences WHERE user_id = ANY(%s)",
        (list(user_ids),),
    ).fetchall()
    endpoints: dict[str, list[str]] = {}
    for user_id, endpoint_id in conn.execute(
        "SELECT user_id, id FROM notify.webhook_endpoints"
        " WHERE user_id = ANY(%s) AND disabled_at IS NULL ORDER BY created_at, id",
        (list(user_ids),),
    ):
        endpoints.setdefault(user_id, []).append(endpoint_id)
    found: dict[str, Preferences] = {}
    for row in saved:
        quiet = (
            QuietHours(start=row["quiet_start"], end=row["quiet_end"])
            if row["quiet_start"] is not None
            else None
        )
        found[row["user_id"]] = Preferences(
            user_id=row["user_id"],
            language=row["language"],
            time_zone=row["time_zone"],
            quiet_hours=quiet,
            email=frozenset(Category(c) for c in row["email_categories"]),
            webhook=frozenset(Category(c) for c in row["webhook_categories"]),
            webhooks=tuple(endpoints.get(row["user_id"], ())),
            saved=True,
        )
    for user_id, ids in endpoints.items():
        if user_id not in found:
            found[user_id] = Preferences(user_id=user_id, webhooks=tuple(ids))
    return found


def save_preferences(
    conn: Connection[Any], user_id: str, prefs: PreferencesIn, now: datetime
) -> None:
    quiet = prefs.quiet_hours
    conn.execute(
        "INSERT INTO notify.preferences (user_id, language, time_zone, quiet_start, quiet_end,"
        " email_categories, webhook_categories, updated_at)"
        " VALUES (%(user)s, %(language)s, %(zone)s, %(start)s, %(end)s, %(email)s,"
        " %(webhook)s, %(now)s)"
        " ON CONFLICT (user_id) DO UPDATE SET language = EXCLUDED.language,"
        " time_zone = EXCLUDED.time_zone, quiet_start = EXCLUDED.quiet_start,"
        " quiet_end = EXCLUDED.quiet_end, email_categories = EXCLUDED.email_categories,"
        " webhook_categories = EXCLUDED.webhook_categories, updated_at = EXCLUDED.updated_at",
        {
            "user": user_id,
            "language": prefs.language,
            "zone": prefs.time_zone,
            "start": quiet.start if quiet else None,
            "end": quiet.end if quiet else None,
            "email": sorted(c.value for c in prefs.email),
            "webhook": sorted(c.value for c in prefs.webhook),
            "now": now,
        },
    )


# -- webhook endpoints -------------------------------------------------------------------
def insert_endpoint(conn: Connection[Any], endpoint: WebhookEndpoint, secret: str) -> None:
    conn.execute(
        "INSERT INTO notify.webhook_endpoints (id, user_id, region, url, description, secret,"
        " created_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (
            endpoint.id,
            endpoint.user_id,
            endpoint.region.value,
            endpoint.url,
            endpoint.description,
            secret,
            endpoint.created_at,
        ),
    )


def endpoints_of(conn: Connection[Any], user_id: str) -> list[WebhookEndpoint]:
    rows = (
        conn.cursor(row_factory=dict_row)
        .execute(
            f"SELECT {_ENDPOINT_COLS} FROM notify.webhook_endpoints"
            " WHERE user_id = %s ORDER BY created_at, id",
            (user_id,),
        )
        .fetchall()
    )
    return [WebhookEndpoint.model_validate(r) for r in rows]


def disable_endpoint(
    conn: Connection[Any], endpoint_id: str, reason: str, now: datetime, user_id: str | None
) -> bool:
    """Disable an endpoint (``user_id``: only if it is theirs; None: the worker's 410)."""
    cur = conn.execute(
        "UPDATE notify.webhook_endpoints SET disabled_at = %(now)s, disabled_reason = %(reason)s"
        " WHERE id = %(id)s AND disabled_at IS NULL"
        " AND (%(user)s::text IS NULL OR user_id = %(user)s)",
        {"now": now, "reason": reason[:200], "id": endpoint_id, "user": user_id},
    )
    return cur.rowcount == 1


def rotate_secret(
    conn: Connection[Any], user_id: str, endpoint_id: str, secret: str, old_until: datetime
) -> bool:
    """The new secret signs from now; the old one too until ``old_until``."""
    cur = conn.execute(
        "UPDATE notify.webhook_endpoints SET previous_secret = secret,"
        " previous_secret_until = %s, secret = %s"
        " WHERE id = %s AND user_id = %s AND disabled_at IS NULL",
        (old_until, secret, endpoint_id, user_id),
    )
    return cur.rowcount == 1


@dataclass(frozen=True, slots=True)
class EndpointSecrets:
    """What the worker calls an endpoint with."""

    url: str
    secrets: tuple[str, ...]
    disabled: bool


def endpoint_secrets(
    conn: Connection[Any], endpoint_ids: Iterable[str], now: datetime
) -> dict[str, EndpointSecrets]:
    rows = conn.execute(
        "SELECT id, url, secret, previous_secret, previous_secret_until, disabled_at"
        " FROM notify.webhook_endpoints WHERE id = ANY(%s)",
        (list(endpoint_ids),),
    ).fetchall()
    found: dict[str, EndpointSecrets] = {}
    for endpoint_id, url, secret, previous, until, disabled_at in rows:
        secrets = (secret, previous) if previous and until and until > now else (secret,)
        found[endpoint_id] = EndpointSecrets(url, secrets, disabled_at is not None)
    return found


# -- inbox -------------------------------------------------------------------------------
def next_change(conn: Connection[Any], user_id: str) -> int:
    """Increment ``user_id``'s change counter and return it; its row stays locked until
    commit, so this transaction's changes are the only ones with this number and the
    next number commits after them. Announces the change (``pg_notify``: on commit)."""
    row = conn.execute(
        "INSERT INTO notify.inbox_feed (user_id, last_change) VALUES (%s, 1)"
        " ON CONFLICT (user_id) DO UPDATE SET last_change = notify.inbox_feed.last_change + 1"
        " RETURNING last_change",
        (user_id,),
    ).fetchone()
    assert row is not None
    conn.execute("SELECT pg_notify(%s, %s)", (INBOX_CHANNEL, user_id))
    return int(row[0])


def insert_inbox(
    conn: Connection[Any], entry_id: UUID, user_id: str, entry: InboxEntryIn, change_no: int
) -> InboxEntry | None:
    """File ``entry``; None when this notification is already in the inbox."""
    row = (
        conn.cursor(row_factory=dict_row)
        .execute(
            "INSERT INTO notify.inbox (id, change_no, notification_id, user_id, region,"
            " account_id, kind, category, severity, title, body, link, created_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            f" ON CONFLICT (notification_id, user_id) DO NOTHING RETURNING {_INBOX_COLS}",
            (
                entry_id,
                change_no,
                entry.notification_id,
                user_id,
                entry.region.value,
                entry.account_id,
                entry.kind,
                entry.category.value,
                entry.severity.value,
                entry.title,
                entry.body,
                entry.link,
                entry.created_at,
            ),
        )
        .fetchone()
    )
    return _entry(row) if row else None


def list_inbox(
    conn: Connection[Any],
    user_id: str,
    *,
    unread_only: bool,
    limit: int,
    before_seq: int | None,
    region: Region | None,
) -> list[tuple[int, InboxEntry]]:
    """``(seq, entry)`` newest first, older than ``before_seq`` when given."""
    rows = (
        conn.cursor(row_factory=dict_row)
        .execute(
            f"SELECT {_INBOX_COLS} FROM notify.inbox WHERE user_id = %(user)s"
            " AND (%(before)s::bigint IS NULL OR seq < %(before)s)"
            " AND (NOT %(unread)s OR read_at IS NULL)"
            " AND (%(region)s::text IS NULL OR region = %(region)s)"
            " ORDER BY seq DESC LIMIT %(limit)s",
            {
                "user": user_id,
                "before": before_seq,
                "unread": unread_only,
                "region": region.value if region else None,
                "limit": limit,
            },
        )
        .fetchall()
    )
    return [(int(r["seq"]), _entry(r)) for r in rows]


def mark_read(
    conn: Connection[Any], user_id: str, entry_ids: Sequence[UUID] | None, now: datetime
) -> int:
    """Mark ``entry_ids`` (None: every unread entry) of ``user_id`` read; how many were."""
    ids = conn.execute(
        "UPDATE notify.inbox SET read_at = %(now)s WHERE user_id = %(user)s"
        " AND read_at IS NULL AND (%(all)s OR id = ANY(%(ids)s)) RETURNING id",
        {"now": now, "user": user_id, "all": entry_ids is None, "ids": list(entry_ids or [])},
    ).fetchall()
    if ids:
        change = next_change(conn, user_id)
        conn.execute(
            "UPDATE notify.inbox SET change_no = %s WHERE id = ANY(%s)",
            (change, [r[0] for r in ids]),
        )
    return len(ids)


def inbox_entry_exists(conn: Connection[Any], user_id: str, entry_id: UUID) -> bool:
    row = conn.execute(
        "SELECT 1 FROM notify.inbox WHERE id = %s AND user_id = %s", (entry_id, user_id)
    ).fetchone()
    return row is not None


def last_change(conn: Connection[Any], user_id: str) -> int:
    row = conn.execute(
        "SELECT last_change FROM notify.inbox_feed WHERE user_id = %s", (user_id,)
    ).fetchone()
    return int(row[0]) if row else 0


def changed_entries(
    conn: Connection[Any], user_id: str, after: int, upto: int, limit: int
) -> list[tuple[int, InboxEntry]]:
    """``(change_no, entry)`` changed after ``after`` up to ``upto``, oldest change first."""
    rows = (
        conn.cursor(row_factory=dict_row)
        .execute(
            f"SELECT {_INBOX_COLS} FROM notify.inbox WHERE user_id = %s"
            " AND change_no > %s AND change_no <= %s ORDER BY change_no, seq LIMIT %s",
            (user_id, after, upto, limit),
        )
        .fetchall()
    )
    return [(int(r["change_no"]), _entry(r)) for r in rows]


def unread_count(conn: Connection[Any], user_id: str) -> int:
    row = conn.execute(
        "SELECT count(*) FROM notify.inbox WHERE user_id = %s AND read_at IS NULL", (user_id,)
    ).fetchone()
    return int(row[0]) if row else 0


def _entry(row: Mapping[str, Any]) -> InboxEntry:
    return InboxEntry.model_validate(
        {k: v for k, v in row.items() if k not in ("seq", "change_no")}
    )


# -- deliveries --------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class NewDelivery:
    id: UUID
    notification_id: UUID
    user_id: str
    region: Region
    channel: str
    destination: str
    destination_key: str
    payload: str
    created_at: datetime
    send_after: datetime


def insert_delivery(conn: Connection[Any], d: NewDelivery) -> bool:
    """Queue ``d``; False when this notification already went that way to that person."""
    cur = conn.execute(
        "INSERT INTO notify.deliveries (id, notification_id, user_id, region, channel,"
        " destination, destination_key, payload, created_at, next_attempt_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (notification_id, user_id, channel, destination) DO NOTHING",
        (
            d.id,
            d.notification_id,
            d.user_id,
            d.region.value,
            d.channel,
            d.destination,
            d.destination_key,
            d.payload,
            d.created_at,
            d.send_after,
        ),
    )
    return cur.rowcount == 1


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery leased to this worker for attempt number ``attempt``."""

    id: UUID
    attempt: int
    channel: str
    destination: str
    destination_key: str
    payload: str


def claim_due(
    conn: Connection[Any],
    now: datetime,
    *,
    lease_until: datetime,
    batch: int,
    per_destination: Callable[[str], int],
    max_attempts: int,
) -> tuple[list[Claimed], int]:
    """Lease due deliveries, at most ``per_destination(key)`` per destination key (the
    rest stay due for the next call), and record each attempt as started. Deliveries
    whose attempts are used up — a worker crashed during each — fail instead. Returns
    the claimed and how many failed so."""
    rows = conn.execute(
        "SELECT id, destination_key, attempts FROM notify.deliveries"
        " WHERE status = 'pending' AND next_attempt_at <= %(now)s"
        " AND (lease_until IS NULL OR lease_until <= %(now)s)"
        " ORDER BY next_attempt_at, id LIMIT %(batch)s FOR UPDATE SKIP LOCKED",
        {"now": now, "batch": batch},
    ).fetchall()
    taken: dict[str, int] = {}
    chosen: list[UUID] = []
    exhausted: list[UUID] = []
    for delivery_id, key, attempts in rows:
        if attempts >= max_attempts:
            exhausted.append(delivery_id)
            continue
        if taken.get(key, 0) < per_destination(key):
            taken[key] = taken.get(key, 0) + 1
            chosen.append(delivery_id)
    everyone = chosen + exhausted
    # Attempts a crash cut short: their outcome is unknown (the receiver may have it).
    conn.execute(
        "UPDATE notify.delivery_attempts SET outcome = 'lost', finished_at = %s"
        " WHERE delivery_id = ANY(%s) AND outcome IS NULL",
        (now, everyone),
    )
    if exhausted:
        conn.execute(
            "UPDATE notify.deliveries SET status = 'failed', lease_until = NULL,"
            " finished_at = %s, last_error = 'attempts used up (lost in crashes)'"
            " WHERE id = ANY(%s)",
            (now, exhausted),
        )
    claimed = conn.execute(
        "UPDATE notify.deliveries SET attempts = attempts + 1, lease_until = %s"
        " WHERE id = ANY(%s)"
        " RETURNING id, attempts, channel, destination, destination_key, payload",
        (lease_until, chosen),
    ).fetchall()
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO notify.delivery_attempts (delivery_id, attempt, started_at)"
            " VALUES (%s, %s, %s)",
            [(r[0], r[1], now) for r in claimed],
        )
    return [Claimed(*r) for r in claimed], len(exhausted)


def finish_attempt(
    conn: Connection[Any],
    claimed: Claimed,
    *,
    outcome: str,
    now: datetime,
    next_attempt_at: datetime | None,
    status_code: int | None = None,
    error: str | None = None,
) -> bool:
    """Record how attempt ``claimed.attempt`` ended and move the delivery on: sent,
    failed, or pending until ``next_attempt_at``. The delivery changes only while this
    is still its latest attempt (a worker that outlived its lease changes nothing but its
    attempt's record); returns whether it did."""
    error = error[:500] if error else None
    conn.execute(
        "UPDATE notify.delivery_attempts SET outcome = %s, finished_at = %s, status_code = %s,"
        " error = %s WHERE delivery_id = %s AND attempt = %s"
        " AND (outcome IS NULL OR outcome = 'lost')",
        (outcome, now, status_code, error, claimed.id, claimed.attempt),
    )
    status = {"sent": "sent", "failed": "failed"}.get(outcome, "pending")
    if status == "pending" and next_attempt_at is None:
        status = "failed"
    cur = conn.execute(
        "UPDATE notify.deliveries SET status = %(status)s, lease_until = NULL,"
        " next_attempt_at = coalesce(%(next)s, next_attempt_at), last_error = %(error)s,"
        " finished_at = CASE WHEN %(status)s = 'pending' THEN NULL ELSE %(now)s END"
        " WHERE id = %(id)s AND attempts = %(attempt)s AND status = 'pending'",
        {
            "status": status,
            "next": next_attempt_at,
            "error": error,
            "now": now,
            "id": claimed.id,
            "attempt": claimed.attempt,
        },
    )
    return cur.rowcount == 1


def deliveries_of(
    conn: Connection[Any], notification_id: UUID, user_id: str | None
) -> list[DeliveryRecord]:
    """A notification's e-mail and webhook deliveries (``user_id``: only theirs)."""
    rows = (
        conn.cursor(row_factory=dict_row)
        .execute(
            f"SELECT {_DELIVERY_COLS} FROM notify.deliveries WHERE notification_id = %(n)s"
            " AND (%(user)s::text IS NULL OR user_id = %(user)s) ORDER BY created_at, id",
            {"n": notification_id, "user": user_id},
        )
        .fetchall()
    )
    return [DeliveryRecord.model_validate(r) for r in rows]
