"""Wake-ups from PostgreSQL's ``LISTEN``/``NOTIFY``: one listening connection per
process and channel, in a thread, waking the asyncio waiters of a key (the
notification's payload).

A writer sends ``pg_notify(channel, key)`` in its transaction (delivered on commit).
PostgreSQL drops notifications while the connection is down, so a wake-up is a hint,
never the record: a waiter still re-reads what it shows after a bounded wait, and every
(re)connect wakes every waiter. The inbox's live feed (``notify_inbox``, keyed by user
id) and the dispatch board's (``dispatch_board``, keyed by region) listen this way.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from cloud.adapters.postgres import DatabaseError, connect

__all__ = ["Wakeups", "Watch"]

log = logging.getLogger(__name__)

_CHANNEL = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class Wakeups:
    """Wakes waiters when a key of ``channel`` is notified. Use as
    ``async with Wakeups(url, channel) as wakeups``, then per waiter
    ``async with wakeups.watch(key) as changed`` and ``await changed.wait(timeout_s)``."""

    def __init__(
        self, database_url: str, channel: str, *, poll_s: float = 1.0, retry_s: float = 2.0
    ) -> None:
        if not _CHANNEL.match(channel):  # it is spliced into LISTEN: an identifier only
            raise ValueError(f"not a channel name: {channel!r}")
        self._url = database_url
        self.channel = channel
        self._poll_s = poll_s
        self._retry_s = retry_s
        self._waiters: dict[str, set[Watch]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.listening = asyncio.Event()

    async def __aenter__(self) -> Wakeups:
        self._loop = asyncio.get_running_loop()
        name = f"wakeups-{self.channel}"
        self._thread = threading.Thread(target=self._listen, name=name, daemon=True)
        self._thread.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, self._poll_s + 5)

    @asynccontextmanager
    async def watch(self, key: str) -> AsyncIterator[Watch]:
        watch = Watch()
        self._waiters.setdefault(key, set()).add(watch)
        try:
            yield watch
        finally:
            waiters = self._waiters.get(key)
            if waiters is not None:
                waiters.discard(watch)
                if not waiters:
                    del self._waiters[key]

    # -- on the event loop ---------------------------------------------------------
    def _wake(self, key: str | None) -> None:
        if key is None:
            self.listening.set()
            targets = [w for ws in self._waiters.values() for w in ws]
        else:
            targets = list(self._waiters.get(key, ()))
        for watch in targets:
            watch.event.set()

    # -- on the listening thread ---------------------------------------------------
    def _listen(self) -> None:
        assert self._loop is not None
        loop = self._loop
        while not self._stop.is_set():
            try:
                with connect(self._url, autocommit=True, prepare_threshold=None) as conn:
                    conn.execute(f"LISTEN {self.channel}")
                    # Anything may have changed while not listening: wake everyone.
                    loop.call_soon_threadsafe(self._wake, None)
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=self._poll_s):
                            loop.call_soon_threadsafe(self._wake, note.payload)
            except DatabaseError as exc:
                log.warning("%s: LISTEN connection lost: %s", self.channel, type(exc).__name__)
                self._stop.wait(self._retry_s)
            except RuntimeError:  # the event loop closed under us
                return


class Watch:
    """One waiter's signal: set by a notification of the watched key."""

    def __init__(self) -> None:
        self.event = asyncio.Event()

    async def wait(self, timeout_s: float) -> bool:
        """Wait for a change (or ``timeout_s``); True when woken. Clears the signal, so a
        change arriving while the caller reads wakes the next wait."""
        try:
            async with asyncio.timeout(timeout_s):
                await self.event.wait()
        except TimeoutError:
            return False
        finally:
            self.event.clear()
        return True
