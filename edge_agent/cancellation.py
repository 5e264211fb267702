"""Cancellations a library lost, honoured anyway; tasks stopped even if one ignores a cancel.

Python 3.11's ``asyncio.wait_for`` returns the awaited result instead of raising
``CancelledError`` when that result arrived in the same loop turn as the cancel (CPython
gh-86296; 3.12 rebuilt ``wait_for`` on ``asyncio.timeout``). aiomqtt waits for every
CONNACK, SUBACK and PUBACK that way and pymodbus for every response, so the cancel is
lost: a ``while True`` poller or publisher loop runs on, and the TaskGroup or shutdown
that cancelled it waits for ever. Measured here against the simulator and Mosquitto: about
one cancel in ten of a tight Modbus read loop, one in four of a publish loop.

``Task.cancelling()`` still counts the request, so each adapter checks it as the library
call returns (:func:`honour_cancel`), and the agent's shutdown cancels again, by name,
whatever is still running (:func:`cancel_and_wait`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Iterator
from typing import Any

__all__ = ["cancel_and_wait", "honour_cancel"]

log = logging.getLogger(__name__)

#: How long a cancelled task may take to end before it is cancelled again.
RECANCEL_AFTER_S = 1.0


def _cancels(task: asyncio.Task[Any] | None) -> int:
    return task.cancelling() if task is not None else 0


@contextlib.contextmanager
def honour_cancel() -> Iterator[None]:
    """``with honour_cancel(): await library_call()``: raise ``CancelledError`` when the
    task was cancelled during the call but the library returned (or raised something
    else) instead. A task already cancelled on entry (cleaning up) is left alone: only a
    cancel requested during the call counts."""
    task = asyncio.current_task()
    before = _cancels(task)
    try:
        yield
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        if _cancels(task) > before:
            raise asyncio.CancelledError from exc
        raise
    if _cancels(task) > before:
        raise asyncio.CancelledError


async def cancel_and_wait(
    tasks: Iterable[asyncio.Task[Any]], *, recancel_after_s: float = RECANCEL_AFTER_S
) -> None:
    """Cancel ``tasks`` and return once every one has ended, cancelling again (and
    logging by name) whichever still runs ``recancel_after_s`` after its last cancel."""
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=recancel_after_s)
        if pending:
            log.warning(
                "still running %.1fs after being cancelled (a cancel was lost), cancelling"
                " again: %s",
                recancel_after_s,
                ", ".join(sorted(task.get_name() for task in pending)),
            )
