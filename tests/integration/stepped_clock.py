"""A clock the test steps, shared by agents' pollers (their injected
:class:`~edge_agent.poll_clock.PollClock`) and the simulators the test fast-forwards:
simulated weeks through the real agent in seconds, every reading stamped with the
simulated time its registers were read at.

The test drives it in lockstep: :meth:`SteppedClock.settle` returns once every poller
is waiting again (so the polls of the last step are done and the simulators may move),
then :meth:`SteppedClock.advance` moves the time and wakes the pollers whose poll falls
due (an aligned interval, or a back-off, reaching the new time).
"""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime, timedelta

__all__ = ["SteppedClock"]


class SteppedClock:
    def __init__(self, start: datetime, pollers: int) -> None:
        self._now = start
        self._pollers = pollers
        self._due: dict[asyncio.Future[None], datetime] = {}
        self._changed = asyncio.Event()

    def now(self) -> datetime:
        return self._now

    async def wait_aligned(self, interval_s: float) -> None:
        epoch = self._now.timestamp()
        at = (math.floor(epoch / interval_s) + 1) * interval_s
        await self._until(datetime.fromtimestamp(at, UTC))

    async def wait(self, delay_s: float) -> None:
        await self._until(self._now + timedelta(seconds=delay_s))

    async def _until(self, at: datetime) -> None:
        due: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._due[due] = at
        self._changed.set()
        try:
            await due
        finally:
            self._due.pop(due, None)

    async def settle(self, timeout_s: float = 20.0) -> None:
        """Return once every poller waits for a later time (none is mid-poll)."""
        async with asyncio.timeout(timeout_s):
            while len(self._due) < self._pollers:
                self._changed.clear()
                await self._changed.wait()

    def advance(self, to: datetime) -> None:
        """Move to ``to`` and wake the pollers due by then."""
        if to < self._now:
            raise ValueError("the clock never goes back")
        self._now = to
        for due, at in list(self._due.items()):
            if at <= to:
                del self._due[due]
                due.set_result(None)
