"""The inbox against a real PostgreSQL: each person reads and marks only their own
entries; pages and the live feed's cursors; change numbers that commit in order; and
the LISTEN/NOTIFY wake-up."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from cloud.adapters.postgres import Connection, ConnectionPool, create_pool
from cloud.notify import (
    Category,
    InboxEntryIn,
    InboxService,
    InboxWakeups,
    InvalidCursorError,
    Severity,
)
from cloud.notify.inbox import post_entry
from contracts.topics import Region
from tests.integration.notify_harness import notify_database
from tests.waiting import until, until_sync

pytestmark = pytest.mark.integration

ANA = "usr_" + "a" * 32
BEN = "usr_" + "b" * 32
T0 = datetime(2025, 7, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def notify_db(postgres_server_url: str) -> Iterator[str]:
    """One database migrated for notify, for this module (tests empty its tables)."""
    with notify_database(postgres_server_url) as url:
        yield url


@pytest.fixture
def pool(notify_db: str) -> Iterator[ConnectionPool[Connection[Any]]]:
    with psycopg.connect(notify_db, autocommit=True) as conn:
        conn.execute("TRUNCATE notify.inbox, notify.inbox_feed")
    p = create_pool(notify_db, max_size=4, name="test-notify-inbox")
    try:
        yield p
    finally:
        p.close()


@pytest.fixture
def inbox(pool: ConnectionPool[Connection[Any]]) -> InboxService:
    return InboxService(pool, clock=lambda: T0 + timedelta(hours=1))


def _entry(n: int, region: Region = Region.AU, **fields: Any) -> InboxEntryIn:
    data: dict[str, Any] = {
        "notification_id": uuid.uuid4(),
        "region": region,
        "kind": "alarm_raised",
        "category": Category.ALARM,
        "severity": Severity.WARNING,
        "title": f"Alarm {n}",
        "body": f"Body {n}",
        "link": f"/au/sites/{n}",
        "created_at": T0 + timedelta(minutes=n),
    }
    return InboxEntryIn.model_validate(data | fields)


def _titles(entries: Any) -> list[str]:
    return [e.title for e in entries]


def test_a_person_reads_their_inbox_newest_first_in_pages(inbox: InboxService) -> None:
    for n in range(5):
        inbox.post(ANA, _entry(n, region=Region.ES if n == 2 else Region.AU))
    inbox.post(BEN, _entry(9))
    first = inbox.list(ANA, limit=2)
    assert _titles(first.entries) == ["Alarm 4", "Alarm 3"]
    second = inbox.list(ANA, limit=2, cursor=first.next_cursor)
    assert _titles(second.entries) == ["Alarm 2", "Alarm 1"]
    third = inbox.list(ANA, limit=2, cursor=second.next_cursor)
    assert (_titles(third.entries), third.next_cursor) == (["Alarm 0"], None)
    assert _titles(inbox.list(ANA, region=Region.ES).entries) == ["Alarm 2"]
    assert all(e.user_id == ANA for e in inbox.list(ANA).entries)
    with pytest.raises(InvalidCursorError):
        inbox.list(ANA, cursor="1; DROP TABLE x")


def test_nobody_reads_or_marks_anothers_entries(inbox: InboxService) -> None:
    anas = inbox.post(ANA, _entry(1))
    assert anas is not None
    assert inbox.list(BEN).entries == ()
    assert inbox.mark_read(BEN, anas.id) is False
    assert inbox.mark_all_read(BEN) == 0
    assert inbox.unread_count(ANA) == 1
    assert inbox.changes_since(BEN, "0").entries == ()
    assert inbox.mark_read(ANA, anas.id) is True
    assert inbox.mark_read(ANA, anas.id) is True  # already read: still hers
    assert inbox.unread_count(ANA) == 0
    assert inbox.mark_read(ANA, uuid.uuid4()) is False


def test_posting_a_notification_twice_files_it_once(inbox: InboxService) -> None:
    entry = _entry(1)
    assert inbox.post(ANA, entry) is not None
    assert inbox.post(ANA, entry) is None
    assert inbox.post(BEN, entry) is not None
    assert len(inbox.list(ANA).entries) == 1


def test_unread_only_and_mark_all_read(inbox: InboxService) -> None:
    posted = [inbox.post(ANA, _entry(n)) for n in range(3)]
    assert posted[1] is not None
    inbox.mark_read(ANA, posted[1].id)
    assert _titles(inbox.list(ANA, unread_only=True).entries) == ["Alarm 2", "Alarm 0"]
    assert inbox.mark_all_read(ANA) == 2
    assert inbox.list(ANA, unread_only=True).entries == ()
    read = inbox.list(ANA).entries[0]
    assert read.read_at == T0 + timedelta(hours=1)


def test_the_feed_gives_each_change_once_and_is_cheap_when_nothing_changed(
    inbox: InboxService,
) -> None:
    start = inbox.changes_since(ANA, None)
    assert (start.entries, start.unread) == ((), 0)
    a = inbox.post(ANA, _entry(1))
    inbox.post(ANA, _entry(2))
    after_posts = inbox.changes_since(ANA, start.cursor)
    assert (_titles(after_posts.entries), after_posts.unread) == (["Alarm 1", "Alarm 2"], 2)
    quiet = inbox.changes_since(ANA, after_posts.cursor)
    assert (quiet.entries, quiet.unread, quiet.cursor) == ((), None, after_posts.cursor)
    assert a is not None
    inbox.mark_read(ANA, a.id)
    after_read = inbox.changes_since(ANA, after_posts.cursor)
    assert [(e.title, e.read_at is not None) for e in after_read.entries] == [("Alarm 1", True)]
    assert after_read.unread == 1


def test_a_long_feed_comes_in_parts_and_a_huge_change_asks_for_a_reload(
    inbox: InboxService,
) -> None:
    start = inbox.changes_since(ANA, None).cursor
    for n in range(3):
        inbox.post(ANA, _entry(n))
    part = inbox.changes_since(ANA, start, limit=2)
    assert (_titles(part.entries), part.more) == (["Alarm 0", "Alarm 1"], True)
    rest = inbox.changes_since(ANA, part.cursor, limit=2)
    assert (_titles(rest.entries), rest.more) == (["Alarm 2"], False)
    inbox.mark_all_read(ANA)  # one change of three entries
    big = inbox.changes_since(ANA, rest.cursor, limit=2)
    assert (len(big.entries), big.reload, big.unread) == (2, True, 0)
    assert inbox.changes_since(ANA, big.cursor).entries == ()


def test_change_numbers_commit_in_order(
    pool: ConnectionPool[Connection[Any]], notify_db: str
) -> None:
    """A post holds its person's counter until commit: a second post waits, so a reader
    never sees change 2 while change 1 is still to come (a bare sequence would allow it)."""
    inbox = InboxService(pool)
    cursor = inbox.changes_since(ANA, None).cursor
    first = psycopg.connect(notify_db)
    try:
        post_entry(first, ANA, _entry(1))  # change 1, not committed
        second_done = threading.Event()

        def second() -> None:
            with psycopg.connect(notify_db) as conn:
                post_entry(conn, ANA, _entry(2))
            second_done.set()

        thread = threading.Thread(target=second)
        thread.start()
        until_sync(lambda: _waiting_on_a_lock(notify_db), 10, "the second post to wait")
        assert inbox.changes_since(ANA, cursor).entries == ()
        first.commit()
        thread.join(timeout=10)
        assert second_done.is_set()
    finally:
        first.close()
    changes = inbox.changes_since(ANA, cursor)
    assert _titles(changes.entries) == ["Alarm 1", "Alarm 2"]


def _waiting_on_a_lock(url: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        ).fetchone()
    return row is not None and row[0] > 0


async def test_a_post_wakes_the_watchers_of_that_inbox(
    pool: ConnectionPool[Connection[Any]], notify_db: str
) -> None:
    inbox = InboxService(pool)
    async with InboxWakeups(notify_db, poll_s=0.2) as wakeups, wakeups.watch(ANA) as changed:
        await until(lambda: wakeups.listening.is_set(), 10, "LISTEN to start")
        await changed.wait(0.01)  # drop the wake-up every (re)connect sends
        cursor = inbox.changes_since(ANA, None).cursor
        inbox.post(ANA, _entry(1))
        assert await changed.wait(10) is True
        assert _titles(inbox.changes_since(ANA, cursor).entries) == ["Alarm 1"]
