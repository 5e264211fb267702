"""The dispatch board's live feed as server-sent events (``text/event-stream``).

The inbox's mechanism (:mod:`inbox_feed`), on dispatch's channel: every write of a work
order sends ``pg_notify('dispatch_board', region)`` in its transaction (on commit), one
``LISTEN`` connection per process wakes the streams watching that region
(:class:`ProcessWakeups`), and each stream re-renders its board — with the filters of
the page that opened it — and sends it when it differs from what the page shows:

1. it watches the region *before* its first render, so no change falls between;
2. it renders the board and sends it (``board``: the HTML and its digest, the digest as
   the event's id) unless the digest is the one the page (or, reconnecting, the last
   event) already has;
3. it waits for a wake-up or at most ``wait_s`` (a wake-up is a hint: PostgreSQL drops
   notifications while the connection is down, and some of what the board shows — a
   resolved job's verdict — changes without a work order's write), sends a heartbeat
   comment and goes back to 2;
4. after ``lifetime_s`` it ends and the browser reconnects with its last id.

A board is rendered whole rather than as a change list: it is at most a page of the
service's (200 jobs), what it shows depends on the filters and on facts beside the work
order (the site's name, why auto-assignment found nobody), and a whole render keeps the
page and the stream one template.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import orjson
from starlette.concurrency import run_in_threadpool

from cloud.adapters.wakeups import Wakeups
from cloud.dispatch import BOARD_CHANNEL
from cloud.portal.web.inbox_feed import RETRY_MS, ProcessWakeups, sse_frame

__all__ = ["BoardFeed", "digest_of"]


def digest_of(html: str) -> str:
    """A short digest of a rendered board (what the page and the stream compare)."""
    return hashlib.sha256(html.encode()).hexdigest()[:20]


def _listener(url: str) -> Wakeups:
    return Wakeups(url, BOARD_CHANNEL)


class BoardFeed:
    """Streams of one process's dispatch boards."""

    def __init__(
        self, database_url: str | None, *, wait_s: float = 15.0, lifetime_s: float = 300.0
    ) -> None:
        self.wait_s = wait_s
        self.lifetime_s = lifetime_s
        self._process = ProcessWakeups(database_url, _listener)
        #: Streams open now (each ends with its client, or after ``lifetime_s``).
        self.open_streams = 0

    async def aclose(self) -> None:
        await self._process.aclose()

    async def stream(
        self,
        region: str,
        digest: str | None,
        render: Callable[[], str],
        gone: Callable[[], Awaitable[bool]],
    ) -> AsyncIterator[str]:
        """The frames of one stream of ``region``'s board; ``digest``: the board the
        client has; ``render()`` (blocking: run in a thread) the board's HTML now."""
        wakeups = await self._process.get()
        ends = time.monotonic() + self.lifetime_s
        self.open_streams += 1
        try:
            if wakeups is None:
                async for frame in self._frames(digest, render, gone, ends, None):
                    yield frame
                return
            async with wakeups.watch(region) as changed:
                async for frame in self._frames(digest, render, gone, ends, changed.wait):
                    yield frame
        finally:
            self.open_streams -= 1

    async def _frames(
        self,
        digest: str | None,
        render: Callable[[], str],
        gone: Callable[[], Awaitable[bool]],
        ends: float,
        wait: Callable[[float], Awaitable[bool]] | None,
    ) -> AsyncIterator[str]:
        yield f"retry: {RETRY_MS}\n" + sse_frame("ready", "{}")
        while True:
            html = await run_in_threadpool(render)
            now = digest_of(html)
            if now != digest:
                data = orjson.dumps({"html": html, "digest": now}).decode()
                yield sse_frame("board", data, id=now)
                digest = now
            left = ends - time.monotonic()
            if left <= 0:
                return
            if wait is not None:
                await wait(min(self.wait_s, left))
            else:
                await asyncio.sleep(min(self.wait_s, left))  # no LISTEN: the timer alone
            if await gone():
                return
            yield ": still here\n\n"
