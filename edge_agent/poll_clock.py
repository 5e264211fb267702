"""When the pollers poll and what time their readings carry: the wall clock in
production, an injected clock where a test or a simulation drives time (ARCHITECTURE
decision 135: a simulated month runs through the real agent in seconds, the readings
stamped with the simulated time the devices were read at).

A clock answers :meth:`PollClock.now` (the time a reading is stamped with) and waits
for the next poll, either aligned to the interval (``interval`` seconds since the epoch
divides the poll time: every gateway polls on the same wall-clock grid) or after a
back-off delay.
"""

from __future__ import annotations

import asyncio
import math
import time
from datetime import datetime
from typing import Protocol

from contracts.timeutil import utc_now

__all__ = ["PollClock", "WallClock", "next_aligned"]


def next_aligned(now: float, interval: float) -> float:
    """The next multiple of ``interval`` strictly after ``now`` (epoch seconds)."""
    return (math.floor(now / interval) + 1) * interval


class PollClock(Protocol):
    def now(self) -> datetime:
        """The time a reading taken now is stamped with (aware, UTC)."""
        ...

    async def wait_aligned(self, interval_s: float) -> None:
        """Return at the next multiple of ``interval_s`` since the epoch."""
        ...

    async def wait(self, delay_s: float) -> None:
        """Return ``delay_s`` seconds from now (a back-off)."""
        ...


class WallClock:
    """The system's clock and asyncio's sleep."""

    def now(self) -> datetime:
        return utc_now()

    async def wait_aligned(self, interval_s: float) -> None:
        now = time.time()
        await asyncio.sleep(next_aligned(now, interval_s) - now)

    async def wait(self, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
