"""The identity service's housekeeping: what nobody can use any more is deleted on a
timer, so the throttle counters (one per identifier ever tried, existing or not) and the
ended sessions' tokens do not grow without bound.

``potr identity-api`` runs :func:`run_purge_loop` beside its HTTP server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from cloud.adapters.postgres import DatabaseError

__all__ = ["run_purge_loop"]

log = logging.getLogger(__name__)


async def run_purge_loop(
    purge: Callable[[], int], stop: asyncio.Event, *, interval_s: float
) -> None:
    """Until ``stop``: ``purge()`` (blocking, run in a thread; returns the rows deleted)
    at once, then every ``interval_s`` seconds. A purge that fails is logged and tried
    again at the next interval; it never ends the loop."""
    while not stop.is_set():
        try:
            removed = await asyncio.to_thread(purge)
        except DatabaseError as exc:
            # The database is away or refused: nothing is lost by waiting for the next round.
            log.warning(
                "identity purge failed, next try in %gs: %s: %s",
                interval_s,
                type(exc).__name__,
                exc,
            )
        except Exception:
            log.exception("identity purge failed, next try in %gs", interval_s)
        else:
            log.info("identity purge: removed %d expired row(s)", removed)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)
