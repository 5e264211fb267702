"""Identity's purge loop: at once, then every interval; a failed purge is logged and
retried, never the end of the loop; ``stop`` ends the wait between purges at once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import psycopg
import pytest
from pydantic import ValidationError

from cloud.identity import IdentitySettings, run_purge_loop


def _purges(
    results: list[int | Exception], stop: asyncio.Event
) -> tuple[Callable[[], int], list[int]]:
    """A purge that answers ``results`` in turn (raising the exceptions) and sets ``stop``
    after the last; and the list of its call numbers."""
    loop = asyncio.get_running_loop()
    calls: list[int] = []

    def purge() -> int:  # runs in a worker thread, as the service's purge does
        calls.append(len(calls) + 1)
        if len(calls) == len(results):
            loop.call_soon_threadsafe(stop.set)
        result = results[len(calls) - 1]
        if isinstance(result, Exception):
            raise result
        return result

    return purge, calls


async def test_a_failed_purge_is_logged_and_the_next_interval_tries_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stop = asyncio.Event()
    failure = psycopg.OperationalError("connection to server at 10.9.0.5 failed")
    purge, calls = _purges([failure, RuntimeError("a bug"), 7], stop)
    with caplog.at_level(logging.INFO, logger="cloud.identity.housekeeping"):
        async with asyncio.timeout(10):
            await run_purge_loop(purge, stop, interval_s=0.01)
    assert calls == [1, 2, 3]
    records = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert records == [
        (
            logging.WARNING,
            "identity purge failed, next try in 0.01s: OperationalError:"
            " connection to server at 10.9.0.5 failed",
        ),
        (logging.ERROR, "identity purge failed, next try in 0.01s"),
        (logging.INFO, "identity purge: removed 7 expired row(s)"),
    ]


async def test_stop_ends_the_wait_between_purges_at_once() -> None:
    stop = asyncio.Event()
    purge, calls = _purges([0], stop)
    # An hour between purges: the loop returns only because stop cut the wait short.
    async with asyncio.timeout(5):
        await run_purge_loop(purge, stop, interval_s=3600)
    assert calls == [1]


async def test_a_loop_stopped_before_it_starts_purges_nothing() -> None:
    stop = asyncio.Event()
    stop.set()
    purge, calls = _purges([0], asyncio.Event())
    await run_purge_loop(purge, stop, interval_s=3600)
    assert calls == []


def test_the_purge_interval_is_an_hour_unless_set_within_a_second_and_a_day() -> None:
    assert IdentitySettings(env="test").identity_purge_interval_s == 3600
    every_minute = IdentitySettings(env="test", identity_purge_interval_s=60)
    assert every_minute.identity_purge_interval_s == 60
    for refused in (0, 86_401):
        with pytest.raises(ValidationError, match="identity_purge_interval_s"):
            IdentitySettings(env="test", identity_purge_interval_s=refused)
