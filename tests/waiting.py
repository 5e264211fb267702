"""The one bounded wait of the test suite: a condition, a deadline, and what was awaited.

``until`` (async) re-checks on a signal when the caller has one (an ``asyncio.Event`` set
whenever something arrives), else every ``poll_s``; ``until_sync`` is the same for tests
that run servers on threads. A timeout fails the test naming what did not happen.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

__all__ = ["until", "until_sync"]

POLL_S = 0.05


def _holds(result: Any, at_least: int) -> bool:
    # A count (int, not bool) must reach ``at_least``; anything else must be truthy.
    return result >= at_least if type(result) is int else bool(result)


async def until(
    check: Callable[[], Awaitable[Any] | Any],
    within_s: float,
    what: str,
    *,
    at_least: int = 1,
    changed: asyncio.Event | None = None,
    poll_s: float = POLL_S,
) -> None:
    """Wait until ``check()`` holds (awaited if it returns an awaitable), failing after
    ``within_s`` seconds. With ``changed``, sleep until it is set instead of polling."""
    deadline = time.monotonic() + within_s
    while True:
        if changed is not None:
            changed.clear()  # before the check: a change after it wakes the wait below
        result = check()
        if isinstance(result, Awaitable):
            result = await result
        if _holds(result, at_least):
            return
        left = deadline - time.monotonic()
        if left <= 0:
            pytest.fail(f"timed out after {within_s:g}s waiting for {what}")
        if changed is None:
            await asyncio.sleep(min(poll_s, left))
        else:
            try:
                async with asyncio.timeout(left):
                    await changed.wait()
            except TimeoutError:
                pass  # checked once more above, then failed


def until_sync(
    check: Callable[[], Any], within_s: float, what: str, *, poll_s: float = POLL_S
) -> None:
    """``until`` for threaded tests: poll ``check()`` until it holds or time runs out."""
    deadline = time.monotonic() + within_s
    while not _holds(check(), 1):
        left = deadline - time.monotonic()
        if left <= 0:
            pytest.fail(f"timed out after {within_s:g}s waiting for {what}")
        time.sleep(min(poll_s, left))
