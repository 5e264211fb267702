"""Cancels a library's ``wait_for`` loses on Python 3.11 (gh-86296) are raised anyway, and
the agent's shutdown cancels again whatever ignored a cancel (:mod:`edge_agent.cancellation`).

The race is made deterministic with asyncio alone: the awaited future gets its result in
the same loop turn as the cancel, before ``wait_for`` has woken up to see it.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

import pytest

from edge_agent.cancellation import cancel_and_wait, honour_cancel


async def _waiting(task: asyncio.Task[Any]) -> None:
    """Let ``task`` run until it waits (inside ``wait_for``)."""
    for _ in range(3):
        await asyncio.sleep(0)
    assert not task.done()


async def _answer_and_cancel(honoured: bool) -> asyncio.Task[str]:
    """A call awaiting an answer through ``wait_for``, cancelled in the very turn the
    answer arrives."""
    answer: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def call() -> str:
        if not honoured:
            return await asyncio.wait_for(answer, 10)
        with honour_cancel():
            return await asyncio.wait_for(answer, 10)

    task = asyncio.create_task(call())
    await _waiting(task)
    answer.set_result("late answer")
    task.cancel()
    return task


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="3.12 rebuilt wait_for on timeout()")
async def test_wait_for_loses_a_cancel_that_comes_with_the_answer_on_this_python() -> None:
    task = await _answer_and_cancel(honoured=False)
    assert await task == "late answer"  # the cancel is gone: a loop around it runs on
    assert task.cancelling() == 1  # ... but the task still counts the request


async def test_a_cancel_lost_by_the_library_is_raised_as_the_call_returns() -> None:
    task = await _answer_and_cancel(honoured=True)
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_timeout_lost_by_the_library_still_times_out() -> None:
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[str] = loop.create_future()
    deadline: list[asyncio.Timeout] = []

    async def call() -> str:
        async with asyncio.timeout(None) as cm:
            deadline.append(cm)
            with honour_cancel():
                return await asyncio.wait_for(answer, 10)

    task = asyncio.create_task(call())
    await _waiting(task)
    answer.set_result("late answer")
    deadline[0].reschedule(loop.time() - 1)  # expires in the same turn as the answer
    with pytest.raises(TimeoutError):
        await task


async def test_a_task_cleaning_up_after_its_cancel_may_still_call_out() -> None:
    """Only a cancel requested during the call counts, not one being handled already."""
    cleaned: list[str] = []

    async def work() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            with honour_cancel():
                cleaned.append(await asyncio.wait_for(asyncio.sleep(0, "flushed"), 1))
            raise

    task = asyncio.create_task(work())
    await _waiting(task)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleaned == ["flushed"]


async def test_a_task_that_ignored_its_cancel_is_cancelled_again_and_named(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ignored = asyncio.Event()

    async def poller() -> None:
        while True:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                if ignored.is_set():
                    raise
                ignored.set()  # what a lost cancel amounts to: the loop goes on

    stubborn = asyncio.create_task(poller(), name="poll-site-u1")
    polite = asyncio.create_task(asyncio.Event().wait(), name="clock")
    await _waiting(stubborn)
    with caplog.at_level(logging.WARNING, logger="edge_agent.cancellation"):
        async with asyncio.timeout(5):
            await cancel_and_wait([stubborn, polite], recancel_after_s=0.05)
    assert ignored.is_set()
    assert stubborn.cancelled()
    assert polite.cancelled()
    assert [r.getMessage().rsplit(": ", 1)[1] for r in caplog.records] == ["poll-site-u1"]
