"""The RabbitMQ event bus (aio-pika): the only module that imports ``aio_pika``.

Topology (declared idempotently on every connect):

* ``potr.events`` — durable topic exchange; routing key ``<region>.<service>.<event>``;
* ``potr.<consumer>`` — one durable **quorum** queue per consumer name, bound with the
  subscription's pattern, ``x-delivery-limit`` against crash loops, dead-lettering to
* ``potr.events.dlx`` — durable topic exchange, bound to the quorum queue
  ``potr.dead_letters`` (``#``), where poison and exhausted events wait for an operator.

Publishing waits for publisher confirms (persistent messages: the broker has them on
disk). A supervisor task connects, declares, consumes and, when the connection is lost,
reconnects with full-jitter exponential back-off; while it is away ``publish`` raises
:class:`~cloud.events.bus.BusUnavailableError` at once, so a caller (the outbox relay)
never waits on a dead broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

import aio_pika
from aio_pika import DeliveryMode, ExchangeType, Message
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
)
from pydantic import ValidationError

from cloud.events.bus import (
    BusError,
    BusUnavailableError,
    Subscription,
    deliver,
)
from cloud.events.outbox import Event
from pacing import Backoff

__all__ = ["RabbitBus"]

log = logging.getLogger(__name__)


class RabbitBus:
    """:class:`~cloud.events.bus.EventBus` on RabbitMQ (``amqp://user:pass@host:port/vhost``)."""

    def __init__(
        self,
        url: str,
        *,
        exchange: str = "potr.events",
        queue_prefix: str = "potr.",
        prefetch: int = 64,
        delivery_limit: int = 10,
        connect_timeout_s: float = 5.0,
        reconnect_max_s: float = 10.0,
    ) -> None:
        self._url = url
        self.exchange_name = exchange
        self.dead_letter_exchange = f"{exchange}.dlx"
        self.dead_letter_queue = f"{queue_prefix}dead_letters"
        self._queue_prefix = queue_prefix
        self._prefetch = prefetch
        self._delivery_limit = delivery_limit
        self._connect_timeout_s = connect_timeout_s
        # attempt 0 (a setup that failed at once) waits like the first retry
        self._backoff = Backoff(0.2, reconnect_max_s)
        self._subs: list[Subscription] = []
        self._patterns: dict[str, str] = {}
        self._conn: AbstractConnection | None = None
        self._exchange: AbstractExchange | None = None
        self._consumers: list[asyncio.Task[None]] = []
        self._connected = asyncio.Event()
        self._closing = asyncio.Event()
        self._lost = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None
        #: Connections made since start (1 after the first connect).
        self.connects = 0

    def queue_name(self, consumer: str) -> str:
        return f"{self._queue_prefix}{consumer}"

    # -- lifecycle -----------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def start(self) -> None:
        if self._supervisor is None:
            self._closing.clear()
            self._supervisor = asyncio.create_task(self._supervise(), name="rabbit-bus")

    async def wait_connected(self, timeout_s: float) -> None:
        """Wait until connected with every subscription consuming; TimeoutError if not."""
        async with asyncio.timeout(timeout_s):
            await self._connected.wait()

    async def close(self) -> None:
        self._closing.set()
        if self._supervisor is not None:
            await self._supervisor
            self._supervisor = None

    async def __aenter__(self) -> RabbitBus:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- publish / subscribe ---------------------------------------------------------
    async def publish(self, events: Sequence[Event], *, timeout_s: float = 10.0) -> None:
        exchange = self._exchange
        if not self.connected or exchange is None:
            raise BusUnavailableError("RabbitMQ is not connected")
        try:
            async with asyncio.timeout(timeout_s):
                results = await asyncio.gather(
                    *(
                        exchange.publish(_message(e), routing_key=e.routing_key, mandatory=False)
                        for e in events
                    ),
                    return_exceptions=True,
                )
        except TimeoutError:
            self._lost.set()  # a broker that stops confirming: reconnect
            raise BusUnavailableError(
                f"no confirm for {len(events)} events in {timeout_s}s"
            ) from None
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            raise BusUnavailableError(
                f"{len(failed)} of {len(events)} events not confirmed: {failed[0]!r}"
            ) from failed[0]

    async def subscribe(self, subscription: Subscription) -> None:
        known = self._patterns.setdefault(subscription.consumer, subscription.pattern)
        if known != subscription.pattern:
            raise BusError(
                f"consumer {subscription.consumer!r} is bound to {known!r},"
                f" not {subscription.pattern!r}"
            )
        self._subs.append(subscription)
        conn = self._conn
        if self.connected and conn is not None:
            try:
                await self._consume(conn, subscription)
            except Exception:
                log.exception("subscribing %s failed; reconnecting", subscription.consumer)
                self._lost.set()

    # -- the supervisor --------------------------------------------------------------
    async def _supervise(self) -> None:
        attempt = 0
        while not self._closing.is_set():
            try:
                conn = await aio_pika.connect(self._url, timeout=self._connect_timeout_s)
            except Exception as exc:
                attempt += 1
                if attempt == 1 or attempt % 10 == 0:
                    log.warning("RabbitMQ unreachable (attempt %d): %r", attempt, exc)
                await self._pause(self._backoff.delay(attempt))
                continue
            self._lost.clear()
            conn.close_callbacks.add(self._on_close)
            try:
                await self._setup(conn)
                self.connects += 1
                attempt = 0
                self._connected.set()
                log.info("RabbitMQ connected (%d consumers)", len(self._subs))
                await _first_of(self._lost, self._closing)
                if not self._closing.is_set():
                    log.warning("RabbitMQ connection lost; reconnecting")
            except Exception as exc:
                attempt += 1
                log.warning("RabbitMQ setup failed: %r", exc)
            finally:
                self._connected.clear()
                await self._teardown(conn)
            if not self._closing.is_set():
                await self._pause(self._backoff.delay(attempt))

    def _on_close(self, *_: Any) -> None:
        self._lost.set()

    async def _pause(self, delay_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), delay_s)

    async def _setup(self, conn: AbstractConnection) -> None:
        channel = await conn.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange(
            self.exchange_name, ExchangeType.TOPIC, durable=True
        )
        dlx = await channel.declare_exchange(
            self.dead_letter_exchange, ExchangeType.TOPIC, durable=True
        )
        dlq = await channel.declare_queue(
            self.dead_letter_queue, durable=True, arguments={"x-queue-type": "quorum"}
        )
        await dlq.bind(dlx, "#")
        self._conn, self._exchange = conn, exchange
        for sub in self._subs:
            await self._consume(conn, sub)

    async def _declare(self, channel: AbstractChannel, sub: Subscription) -> AbstractQueue:
        queue = await channel.declare_queue(
            self.queue_name(sub.consumer),
            durable=True,
            arguments={
                "x-queue-type": "quorum",
                "x-dead-letter-exchange": self.dead_letter_exchange,
                "x-delivery-limit": self._delivery_limit,
            },
        )
        await queue.bind(self.exchange_name, sub.pattern)
        return queue

    async def _consume(self, conn: AbstractConnection, sub: Subscription) -> None:
        channel = await conn.channel(publisher_confirms=False)
        await channel.set_qos(prefetch_count=self._prefetch)
        queue = await self._declare(channel, sub)
        self._consumers.append(
            asyncio.create_task(self._consume_loop(queue, sub), name=f"rabbit:{sub.consumer}")
        )

    async def _consume_loop(self, queue: AbstractQueue, sub: Subscription) -> None:
        try:
            async with queue.iterator() as messages:
                async for message in messages:
                    await self._handle(sub, message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("consumer %s stopped: %r", sub.consumer, exc)
        if not self._closing.is_set():
            self._lost.set()

    async def _handle(self, sub: Subscription, message: AbstractIncomingMessage) -> None:
        try:
            event = Event.from_bytes(message.body)
        except ValidationError as exc:
            reason: str | None = f"not an event: {exc.error_count()} errors"
        else:
            # Cancelled (closing) mid-way: unacked, the broker redelivers it.
            reason = await deliver(sub, event, self._closing)
        if reason is None:
            await message.ack()
            return
        log.error(
            "%s: dead-lettering message %s (%s): %s",
            sub.consumer,
            message.message_id,
            message.routing_key,
            reason,
        )
        await message.reject(requeue=False)

    async def _teardown(self, conn: AbstractConnection) -> None:
        consumers, self._consumers = self._consumers, []
        for task in consumers:
            task.cancel()
        await asyncio.gather(*consumers, return_exceptions=True)
        self._exchange = None
        self._conn = None
        with contextlib.suppress(Exception):
            await asyncio.wait_for(conn.close(), 5.0)

    # -- helpers for operators and tests ---------------------------------------------
    async def dead_letters(self, *, max_messages: int = 1_000) -> list[tuple[str, bytes]]:
        """Take (routing key, body) of dead letters off ``potr.dead_letters`` (acked)."""
        conn = self._conn
        if conn is None:
            raise BusUnavailableError("RabbitMQ is not connected")
        out: list[tuple[str, bytes]] = []
        async with conn.channel() as channel:
            queue = await channel.declare_queue(
                self.dead_letter_queue, durable=True, arguments={"x-queue-type": "quorum"}
            )
            while len(out) < max_messages:
                message = await queue.get(fail=False, timeout=5.0)
                if message is None:
                    break
                out.append((message.routing_key or "", message.body))
                await message.ack()
        return out

    async def delete_topology(self) -> None:
        """Delete this bus's queues and exchanges (tests on a shared broker clean up)."""
        conn = self._conn
        if conn is None:
            raise BusUnavailableError("RabbitMQ is not connected")
        async with conn.channel() as channel:
            for name in [self.dead_letter_queue, *(self.queue_name(c) for c in self._patterns)]:
                await channel.queue_delete(name)
            await channel.exchange_delete(self.exchange_name)
            await channel.exchange_delete(self.dead_letter_exchange)

    async def publish_raw(self, routing_key: str, body: bytes) -> None:
        """Publish bytes that need not be an event (tests of poison handling)."""
        exchange = self._exchange
        if exchange is None:
            raise BusUnavailableError("RabbitMQ is not connected")
        await exchange.publish(
            Message(body, delivery_mode=DeliveryMode.PERSISTENT),
            routing_key=routing_key,
            mandatory=False,
        )


def _message(event: Event) -> Message:
    return Message(
        event.to_bytes(),
        content_type="application/json",
        delivery_mode=DeliveryMode.PERSISTENT,
        message_id=str(event.id),
        type=event.name,
        app_id=event.source,
        timestamp=event.occurred_at,
        headers={"region": event.region.value},
    )


async def _first_of(*events: asyncio.Event) -> None:
    waiters = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
