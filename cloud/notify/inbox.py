"""The in-portal inbox: each person's notifications, read only by them, and a live feed.

Every method takes the person's user id (the portal passes its caller's subject) and
every query filters by it: another person's entry id matches nothing.

**Live feed.** :meth:`InboxService.changes_since` answers "what changed after cursor c":
one primary-key read of the person's change counter when nothing did (an SSE endpoint
can ask every second or two per open page), the changed entries otherwise. Cursors
never skip a change: each change takes the next number of the person's counter under a
row lock held to commit, so numbers commit in order.

:class:`InboxWakeups` (optional) lets such an endpoint wait instead of asking on a
timer: one ``LISTEN notify_inbox`` connection per process, woken by the ``pg_notify``
each change sends on commit (payload: the user id). PostgreSQL drops notifications
while the connection is down, so it is a hint, never the record: the endpoint still
re-asks ``changes_since`` after a bounded wait, and every reconnect wakes every waiter.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

from cloud.adapters.postgres import Connection, ConnectionPool
from cloud.adapters.wakeups import Wakeups
from cloud.notify import repository as repo
from cloud.notify.models import InboxChanges, InboxEntry, InboxEntryIn, InboxPage
from contracts.timeutil import utc_now
from contracts.topics import Region

__all__ = ["INBOX_CHANNEL", "InboxService", "InboxWakeups", "InvalidCursorError"]

INBOX_CHANNEL = repo.INBOX_CHANNEL
MAX_PAGE = 200

log = logging.getLogger(__name__)


class InvalidCursorError(ValueError):
    """A cursor this service did not hand out."""


def _parse_cursor(cursor: str) -> int:
    if not cursor.isdigit() or len(cursor) > 19:
        raise InvalidCursorError("invalid cursor")
    return int(cursor)


class InboxService:
    """Thread-safe (each call takes a pooled connection); ``clock`` stamps reads."""

    def __init__(
        self, pool: ConnectionPool[Connection[Any]], *, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self._pool = pool
        self._clock = clock

    def post(self, user_id: str, entry: InboxEntryIn) -> InboxEntry | None:
        """File ``entry`` in ``user_id``'s inbox; None when that notification is there
        already (posting is idempotent per notification id)."""
        with self._pool.connection() as conn:
            return post_entry(conn, user_id, entry)

    def list(
        self,
        user_id: str,
        *,
        unread_only: bool = False,
        limit: int = 50,
        cursor: str | None = None,
        region: Region | None = None,
    ) -> InboxPage:
        """A page of ``user_id``'s entries, newest first (``region``: only that region's)."""
        limit = max(1, min(limit, MAX_PAGE))
        before = _parse_cursor(cursor) if cursor is not None else None
        with self._pool.connection() as conn:
            rows = repo.list_inbox(
                conn,
                user_id,
                unread_only=unread_only,
                limit=limit + 1,
                before_seq=before,
                region=region,
            )
        page = rows[:limit]
        next_cursor = str(page[-1][0]) if len(rows) > limit else None
        return InboxPage(entries=tuple(e for _, e in page), next_cursor=next_cursor)

    def mark_read(self, user_id: str, entry_id: UUID) -> bool:
        """Mark an entry of ``user_id``'s read: True when it is theirs (read now or
        before), False when they have no such entry."""
        with self._pool.connection() as conn:
            if repo.mark_read(conn, user_id, [entry_id], self._clock()):
                return True
            return repo.inbox_entry_exists(conn, user_id, entry_id)

    def mark_all_read(self, user_id: str) -> int:
        """Mark every unread entry of ``user_id``'s read; how many there were."""
        with self._pool.connection() as conn:
            return repo.mark_read(conn, user_id, None, self._clock())

    def unread_count(self, user_id: str) -> int:
        with self._pool.connection() as conn:
            return repo.unread_count(conn, user_id)

    def changes_since(self, user_id: str, cursor: str | None, *, limit: int = 100) -> InboxChanges:
        """Entries of ``user_id``'s posted or marked read after ``cursor`` (None: start
        now, no entries), oldest change first, and the cursor to ask with next.
        ``unread`` is None when nothing changed. ``more``: ask again at once (``limit``
        reached). ``reload``: one change (mark all read) held more than ``limit``
        entries and not all are listed — reload the list."""
        limit = max(1, min(limit, MAX_PAGE))
        after = _parse_cursor(cursor) if cursor is not None else None
        with self._pool.connection() as conn:
            upto = repo.last_change(conn, user_id)
            if after is None or after >= upto:
                # after > upto: a cursor from before a restore; start again from now
                unread = None if after == upto else repo.unread_count(conn, user_id)
                return InboxChanges(cursor=str(upto), entries=(), unread=unread)
            rows = repo.changed_entries(conn, user_id, after, upto, limit + 1)
            unread = repo.unread_count(conn, user_id)
        if len(rows) <= limit:
            return InboxChanges(cursor=str(upto), entries=_entries(rows), unread=unread)
        boundary = rows[limit][0]
        kept = [r for r in rows[:limit] if r[0] < boundary]
        if kept:
            return InboxChanges(
                cursor=str(boundary - 1), entries=_entries(kept), unread=unread, more=True
            )
        return InboxChanges(
            cursor=str(boundary), entries=_entries(rows[:limit]), unread=unread, reload=True
        )


def post_entry(conn: Connection[Any], user_id: str, entry: InboxEntryIn) -> InboxEntry | None:
    """:meth:`InboxService.post` inside the caller's transaction."""
    change = repo.next_change(conn, user_id)
    return repo.insert_inbox(conn, uuid.uuid4(), user_id, entry, change)


def _entries(rows: list[tuple[int, InboxEntry]]) -> tuple[InboxEntry, ...]:
    return tuple(e for _, e in rows)


class InboxWakeups(Wakeups):
    """Wakes waiters when someone's inbox changes (``LISTEN notify_inbox``, keyed by the
    user id). Use as ``async with InboxWakeups(url) as wakeups``, then per SSE stream
    ``async with wakeups.watch(user_id) as changed`` and ``await changed.wait(timeout_s)``
    between two ``changes_since``."""

    def __init__(self, database_url: str, *, poll_s: float = 1.0, retry_s: float = 2.0) -> None:
        super().__init__(database_url, INBOX_CHANNEL, poll_s=poll_s, retry_s=retry_s)
