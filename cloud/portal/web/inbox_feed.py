"""The inbox's live feed as server-sent events (``text/event-stream``).

One stream per open inbox page (the browser's ``EventSource``, from ``portal.js``):

1. it watches the person's inbox (:class:`cloud.notify.InboxWakeups`, one ``LISTEN``
   connection per process) *before* asking where the feed is, so no change falls
   between the two;
2. it asks :meth:`cloud.notify.InboxService.changes_since` after the client's cursor (the
   ``Last-Event-ID`` a reconnecting ``EventSource`` sends, else the page's), sends each
   changed entry, the unread count and the new cursor as the event's ``id``;
3. it waits for a wake-up or at most ``wait_s`` (a wake-up is a hint: PostgreSQL drops
   notifications while the connection is down), sends a comment as a heartbeat (a gone
   client fails the write) and goes back to 2;
4. after ``lifetime_s`` it ends: the browser reconnects (``retry``) with its last id, so
   no stream, and no connection behind a proxy, lives forever.

The ``LISTEN`` side starts on the first stream, in the serving event loop (the portal
may run with ``lifespan="off"``), and again if a later stream runs in another loop (a
test's); :meth:`InboxFeed.aclose` stops it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import orjson
from starlette.concurrency import run_in_threadpool

from cloud.adapters.wakeups import Wakeups
from cloud.notify import InboxChanges, InboxEntry, InboxService, InboxWakeups

__all__ = ["RETRY_MS", "InboxFeed", "ProcessWakeups", "sse_frame"]

log = logging.getLogger(__name__)

#: How long a browser waits before reconnecting after a stream ends (ms).
RETRY_MS = 2000


def sse_frame(event: str, data: str, *, id: str | None = None) -> str:
    """One server-sent event; ``data`` is one line (JSON here)."""
    head = f"id: {id}\n" if id is not None else ""
    return f"{head}event: {event}\ndata: {data}\n\n"


@dataclass
class _Listening:
    wakeups: Wakeups
    loop: asyncio.AbstractEventLoop


class ProcessWakeups:
    """The process's ``LISTEN`` on one channel for the streams of a feed: started by the
    first stream in the serving event loop (the portal may run with ``lifespan="off"``),
    and again if a later stream runs in another loop (a test's). ``make(url)``: the
    listener (no URL: none, the streams ask on their timer alone)."""

    def __init__(self, database_url: str | None, make: Callable[[str], Wakeups]) -> None:
        self._url = database_url
        self._make = make
        self._listening: _Listening | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> Wakeups | None:
        if self._url is None:
            return None
        loop = asyncio.get_running_loop()
        current = self._listening
        if current is not None and current.loop is loop:
            return current.wakeups
        async with self._lock:
            if self._listening is not None and self._listening.loop is not loop:
                await self.aclose()
            if self._listening is None:
                wakeups = self._make(self._url)
                await wakeups.__aenter__()
                self._listening = _Listening(wakeups, loop)
            return self._listening.wakeups

    async def aclose(self) -> None:
        listening, self._listening = self._listening, None
        if listening is not None:
            await listening.wakeups.__aexit__(None, None, None)


class InboxFeed:
    """Streams of one process's inbox pages; ``render(entry)`` is the entry's HTML."""

    def __init__(
        self,
        inbox: InboxService,
        database_url: str | None,
        *,
        wait_s: float = 15.0,
        lifetime_s: float = 300.0,
    ) -> None:
        self.inbox = inbox
        self.wait_s = wait_s
        self.lifetime_s = lifetime_s
        self._process = ProcessWakeups(database_url, InboxWakeups)
        #: Streams open now (each ends with its client, or after ``lifetime_s``).
        self.open_streams = 0

    async def aclose(self) -> None:
        await self._process.aclose()

    async def stream(
        self,
        user_id: str,
        cursor: str | None,
        render: Callable[[InboxEntry], str],
        gone: Callable[[], Awaitable[bool]],
    ) -> AsyncIterator[str]:
        """The frames of one stream for ``user_id`` from ``cursor`` (None: from now);
        ``gone()`` (awaitable) says whether the client left."""
        wakeups = await self._process.get()
        ends = time.monotonic() + self.lifetime_s
        self.open_streams += 1
        try:
            if wakeups is None:
                async for frame in self._frames(user_id, cursor, render, gone, ends, None):
                    yield frame
                return
            # A client that leaves cancels the stream here: the watch ends with it.
            async with wakeups.watch(user_id) as changed:
                async for frame in self._frames(user_id, cursor, render, gone, ends, changed.wait):
                    yield frame
        finally:
            self.open_streams -= 1

    async def _frames(
        self,
        user_id: str,
        cursor: str | None,
        render: Callable[[InboxEntry], str],
        gone: Callable[[], Awaitable[bool]],
        ends: float,
        wait: Callable[[float], Awaitable[bool]] | None,
    ) -> AsyncIterator[str]:
        first = await run_in_threadpool(self.inbox.changes_since, user_id, cursor)
        # The first frame names the cursor, so a client that came without one (from now)
        # reconnects from here.
        yield f"retry: {RETRY_MS}\n" + sse_frame("ready", "{}", id=first.cursor)
        for frame in self._changes(first, render):
            yield frame
        cursor = first.cursor
        while (left := ends - time.monotonic()) > 0:
            if wait is not None:
                await wait(min(self.wait_s, left))
            else:
                await asyncio.sleep(min(self.wait_s, left))  # no LISTEN: the timer alone
            if await gone():
                return
            yield ": still here\n\n"
            changes = await run_in_threadpool(self.inbox.changes_since, user_id, cursor)
            while True:
                for frame in self._changes(changes, render):
                    yield frame
                cursor = changes.cursor
                if not changes.more:
                    break
                changes = await run_in_threadpool(self.inbox.changes_since, user_id, cursor)

    @staticmethod
    def _changes(changes: InboxChanges, render: Callable[[InboxEntry], str]) -> list[str]:
        frames = [
            sse_frame(
                "entry",
                orjson.dumps(
                    {"id": str(e.id), "read": e.read_at is not None, "html": render(e)}
                ).decode(),
            )
            for e in changes.entries
        ]
        if changes.reload:
            frames.append(sse_frame("reload", "{}", id=changes.cursor))
        elif changes.unread is not None:  # None: nothing changed
            frames.append(sse_frame("unread", str(changes.unread), id=changes.cursor))
        return frames
