"""The event bus: one interface, an in-process implementation (the demo's default).

The RabbitMQ implementation lives in :mod:`cloud.events.amqp`. Both give each
subscription (a named consumer with a routing pattern) every matching event at least
once; consumers make effects happen once with :func:`cloud.events.outbox.handle_once`.

Routing keys are ``<region>.<service>.<event>`` (``au.ingest.gateway.birth``); patterns
use AMQP topic syntax: ``*`` is one word, ``#`` zero or more (``*.ingest.gateway.*``,
``#.gateway.birth``).

Handler failures: :class:`PoisonEventError` (or an event that does not parse) is
dead-lettered at once; an :class:`~cloud.adapters.postgres.OperationalError` (database away) is
retried with back-off for as long as the subscription runs; any other exception is
retried ``max_attempts`` times, then dead-lettered.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from cloud.adapters.postgres import OperationalError
from cloud.events.outbox import Event
from pacing import Backoff

__all__ = [
    "BusError",
    "BusUnavailableError",
    "DeadLetter",
    "EventBus",
    "Handler",
    "InProcessBus",
    "PoisonEventError",
    "RetryPolicy",
    "Subscription",
    "pattern_matches",
]

log = logging.getLogger(__name__)

Handler = Callable[[Event], Awaitable[None]]
_CONSUMER_RE = re.compile(r"^[a-z][a-z0-9_.-]{0,100}$")


class BusError(Exception):
    """Base of the bus's errors."""


class BusUnavailableError(BusError):
    """The bus did not take (confirm) the events: not connected, refused or timed out.

    Nothing is known to be delivered; publish again later (consumers dedupe).
    """


class PoisonEventError(Exception):
    """Raised by a handler for an event it can never handle: dead-letter it, no retry."""


_P = TypeVar("_P", bound=BaseModel)


def event_payload(event: Event, model: type[_P]) -> _P:
    """``event``'s payload as ``model``; a payload that is not one is poison (no retry
    would make it one)."""
    try:
        return model.model_validate(event.payload)
    except ValidationError as exc:
        raise PoisonEventError(f"{event.name} payload: {exc.error_count()} errors") from exc


@dataclass(frozen=True)
class RetryPolicy:
    """How a subscription retries a failing handler before dead-lettering."""

    max_attempts: int = 5
    first_delay_s: float = 0.05
    max_delay_s: float = 5.0

    def delay(self, attempt: int) -> float:
        """Equal-jitter exponential back-off before attempt ``attempt + 1``."""
        return Backoff(self.first_delay_s, self.max_delay_s, jitter="equal").delay(attempt)


@dataclass(frozen=True)
class Subscription:
    """A named consumer: one durable queue per name; several subscribers with one name
    share its events (each event to one of them)."""

    consumer: str
    pattern: str
    handler: Handler
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        if not _CONSUMER_RE.match(self.consumer):
            raise ValueError(f"consumer {self.consumer!r} must be lower-case, e.g. 'registry'")
        _pattern_words(self.pattern)


@dataclass(frozen=True)
class DeadLetter:
    consumer: str
    event: Event | None
    body: bytes
    reason: str


class EventBus(Protocol):
    """What services need from a bus; :class:`InProcessBus` and ``RabbitBus`` provide it."""

    async def start(self) -> None:
        """Begin connecting and consuming (returns without waiting for the broker)."""
        ...

    async def close(self) -> None:
        """Stop consuming (handlers in progress finish) and disconnect."""
        ...

    @property
    def connected(self) -> bool:
        """True when a publish can be confirmed now."""
        ...

    async def publish(self, events: Sequence[Event], *, timeout_s: float = 10.0) -> None:
        """Return once the bus has confirmed every event; else raise
        :class:`BusUnavailableError` (some may have been delivered)."""
        ...

    async def subscribe(self, subscription: Subscription) -> None:
        """Deliver every event matching ``subscription.pattern`` to its handler, at
        least once, from now on (RabbitMQ: from when its queue was first declared)."""
        ...


@lru_cache(maxsize=1024)
def _pattern_words(pattern: str) -> tuple[str, ...]:
    words = tuple(pattern.split("."))
    for w in words:
        if w not in ("*", "#") and not re.fullmatch(r"[a-z0-9_-]+", w):
            raise ValueError(f"routing pattern {pattern!r}: bad word {w!r}")
    return words


def _match(pattern: tuple[str, ...], key: tuple[str, ...]) -> bool:
    if not pattern:
        return not key
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(_match(rest, key[i:]) for i in range(len(key) + 1))
    if not key:
        return False
    return (head == "*" or head == key[0]) and _match(rest, key[1:])


def pattern_matches(pattern: str, key: str) -> bool:
    """AMQP topic matching: ``*`` is exactly one word, ``#`` zero or more."""
    return _match(_pattern_words(pattern), tuple(key.split(".")))


async def deliver(
    sub: Subscription,
    event: Event,
    stopping: asyncio.Event,
) -> str | None:
    """Run ``sub.handler`` until it succeeds; None on success, else the dead-letter reason.

    Raises :class:`asyncio.CancelledError` when ``stopping`` is set during a back-off
    (the event is then left undelivered, to be redelivered).
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            await sub.handler(event)
            return None
        except PoisonEventError as exc:
            return f"poison: {exc}"
        except OperationalError as exc:
            # The database is away: never dead-letter for that, wait for it.
            why = f"{type(exc).__name__}: {exc}"
            delay = sub.retry.delay(min(attempt, 10))
            if attempt == 1 or attempt % 20 == 0:
                log.warning(
                    "%s: %s %s waits for the database: %s", sub.consumer, event.name, event.id, why
                )
        except Exception as exc:
            why = f"{type(exc).__name__}: {exc}"
            if attempt >= sub.retry.max_attempts:
                log.exception(
                    "%s: %s %s failed %d times", sub.consumer, event.name, event.id, attempt
                )
                return f"failed {attempt} times: {why}"
            delay = sub.retry.delay(attempt)
        try:
            await asyncio.wait_for(stopping.wait(), delay)
        except TimeoutError:
            continue
        raise asyncio.CancelledError


@dataclass
class _Pending:
    event: Event
    done: asyncio.Future[None]


class _LocalQueue:
    """One subscription name's bounded queue and its workers."""

    def __init__(self, consumer: str, pattern: str, maxsize: int) -> None:
        self.consumer = consumer
        self.pattern = pattern
        self.queue: asyncio.Queue[_Pending] = asyncio.Queue(maxsize)
        self.workers: list[asyncio.Task[None]] = []


class InProcessBus:
    """Events between services of one process, through bounded asyncio queues.

    ``publish`` returns when every matching subscription has handled the event (or
    dead-lettered it): a confirm here means delivered, so the outbox relay marks an
    event published only after its effects are committed, and a crash before that makes
    the relay publish it again. A full queue makes ``publish`` wait (back-pressure) up to
    its timeout.
    """

    def __init__(self, *, queue_max: int = 1_000) -> None:
        self._queue_max = queue_max
        self._queues: dict[str, _LocalQueue] = {}
        self._stopping = asyncio.Event()
        self._started = False
        self.dead_letters: list[DeadLetter] = []

    @property
    def connected(self) -> bool:
        return self._started and not self._stopping.is_set()

    async def start(self) -> None:
        self._stopping.clear()
        self._started = True

    async def close(self) -> None:
        self._stopping.set()
        workers = [t for q in self._queues.values() for t in q.workers]
        for t in workers:
            t.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        for q in self._queues.values():
            q.workers.clear()
            while not q.queue.empty():
                q.queue.get_nowait().done.cancel()
        self._started = False

    async def __aenter__(self) -> InProcessBus:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def subscribe(self, subscription: Subscription) -> None:
        if not self._started:
            raise BusError("subscribe after start()")
        q = self._queues.get(subscription.consumer)
        if q is None:
            q = self._queues[subscription.consumer] = _LocalQueue(
                subscription.consumer, subscription.pattern, self._queue_max
            )
        elif q.pattern != subscription.pattern:
            raise BusError(
                f"consumer {subscription.consumer!r} is bound to {q.pattern!r},"
                f" not {subscription.pattern!r}"
            )
        q.workers.append(
            asyncio.create_task(self._work(q, subscription), name=f"bus:{subscription.consumer}")
        )

    async def publish(self, events: Sequence[Event], *, timeout_s: float = 10.0) -> None:
        if not self.connected:
            raise BusUnavailableError("in-process bus is not running")
        loop = asyncio.get_running_loop()
        pending: list[asyncio.Future[None]] = []
        try:
            async with asyncio.timeout(timeout_s):
                for event in events:
                    key = event.routing_key
                    for q in self._queues.values():
                        if q.workers and pattern_matches(q.pattern, key):
                            item = _Pending(event, loop.create_future())
                            await q.queue.put(item)
                            pending.append(item.done)
                await asyncio.gather(*pending)
        except TimeoutError:
            raise BusUnavailableError(
                f"{len(events)} events not handled within {timeout_s}s"
            ) from None
        except asyncio.CancelledError:
            if self._stopping.is_set():
                raise BusUnavailableError("in-process bus closed") from None
            raise

    async def _work(self, q: _LocalQueue, sub: Subscription) -> None:
        while True:
            item = await q.queue.get()
            if item.done.done():  # the publisher gave up; it will publish again
                continue
            try:
                reason = await deliver(sub, item.event, self._stopping)
            except asyncio.CancelledError:
                item.done.cancel()
                raise
            if reason is not None:
                log.error(
                    "%s: dead-lettered %s %s: %s",
                    sub.consumer,
                    item.event.name,
                    item.event.id,
                    reason,
                )
                self.dead_letters.append(
                    DeadLetter(sub.consumer, item.event, item.event.to_bytes(), reason)
                )
            if not item.done.done():
                item.done.set_result(None)
