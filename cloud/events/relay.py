"""The outbox relay: publishes a service's ``<schema>.outbox`` rows on the bus, in order.

Each cycle claims up to ``batch_max`` unpublished rows (``FOR UPDATE SKIP LOCKED``, so
relays in several processes share the work), publishes them with confirms and marks them
published in the same transaction. That transaction keeps a pooled connection while the
bus publishes — on the in-process bus, until the handlers are done, and they take
connections of the same pool — so the relays of one runtime share ``claim_slots``
(:func:`claim_slots`: half the pool). A round with nothing to publish takes and gives back
its connection in one thread call: it never holds one while waiting for a worker thread.
A crash between confirm and commit publishes them again (consumers dedupe by event id).
While the bus is away the relay claims nothing and waits with back-off: producers keep
inserting (they never wait on the broker), the outbox grows and drains once the bus is
back. Published rows are pruned after ``retention_s``.

A relay given a ``region`` claims only that region's rows: the identity service's one
outbox feeds each region's bus through a relay per region (ARCHITECTURE decision 152).
Every row has exactly one region, so each region's relay keeps its own progress in the
same ``published_at`` column, in id order within the region: a region whose broker is
away holds back only its own rows, the others' keep flowing.

Visibility: :class:`OutboxStats` (pending rows, age of the oldest = the relay's lag,
published, failures) refreshed every ``stats_interval_s``, logged when lagging and
handed to an optional metrics hook (:func:`prometheus_hook`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any
from uuid import UUID

from pydantic import ValidationError

from cloud.adapters.postgres import Connection, ConnectionPool, DatabaseError, sql
from cloud.events.bus import BusError, EventBus
from cloud.events.outbox import SERVICE_RE, Event
from pacing import Backoff

__all__ = ["MetricsHook", "OutboxRelay", "OutboxStats", "claim_slots", "prometheus_hook"]

log = logging.getLogger(__name__)
#: Retries after a failed round: full jitter from 0.2 s up to 5 s.
_RETRY = Backoff(0.2, 5.0)


@dataclass(frozen=True)
class OutboxStats:
    """One relay's view of its outbox; ``lag_s`` = age of the oldest unpublished event.
    ``schema`` is the relay's label: the schema, ``<schema>/<region>`` for a region's."""

    schema: str
    pending: int = 0
    lag_s: float = 0.0
    published: int = 0
    failures: int = 0
    bus_connected: bool = False
    last_error: str | None = None


MetricsHook = Callable[[OutboxStats], None]


def claim_slots(pool: ConnectionPool[Connection[Any]]) -> asyncio.Semaphore:
    """How many relays sharing ``pool`` may hold a claim at once: half its connections.

    A relay holds its claim's connection until the bus has the batch, and the in-process
    bus has it once the handlers are done — which need connections of the same pool.
    With every connection held by a relay (nine schemas' relays, a pool of eight), no
    handler runs and no relay finishes until the pool's timeout; half leaves the other
    half to the handlers and the services' own calls, which never wait on a relay.
    """
    return asyncio.Semaphore(max(1, pool.max_size // 2))


class OutboxRelay:
    """Relay one service schema's outbox to ``bus``; run with :meth:`run`."""

    def __init__(
        self,
        pool: ConnectionPool[Connection[Any]],
        schema: str,
        bus: EventBus,
        *,
        batch_max: int = 500,
        poll_s: float = 0.2,
        publish_timeout_s: float = 10.0,
        stats_interval_s: float = 5.0,
        lag_warn_s: float = 30.0,
        retention_s: float = 86_400.0,
        metrics: MetricsHook | None = None,
        claim_slots: asyncio.Semaphore | None = None,
        region: str | None = None,
    ) -> None:
        if not SERVICE_RE.match(schema):
            raise ValueError(f"schema {schema!r} must be lower_snake")
        self._pool = pool
        self.schema = schema
        #: Only this region's rows (None: every row).
        self.region = region
        self._bus = bus
        self._batch_max = batch_max
        self._poll_s = poll_s
        self._publish_timeout_s = publish_timeout_s
        self._stats_interval_s = stats_interval_s
        self._lag_warn_s = lag_warn_s
        self._retention_s = retention_s
        self._metrics = metrics
        #: Shared by the relays of one pool (:func:`claim_slots`); alone, one is enough.
        self._slots = claim_slots if claim_slots is not None else asyncio.Semaphore(1)
        self._kick = asyncio.Event()
        self._table = sql.SQL("{}.outbox").format(sql.Identifier(schema))
        # "AND region = %s" with the region as its one parameter, or nothing.
        self._only: tuple[sql.Composable, tuple[str, ...]] = (
            (sql.SQL(" AND region = %s"), (region,)) if region is not None else (sql.SQL(""), ())
        )
        self.stats = OutboxStats(schema if region is None else f"{schema}/{region}")
        #: Set whenever a cycle found nothing left to publish (tests wait on it).
        self.drained = asyncio.Event()

    def kick(self) -> None:
        """Publish now rather than at the next poll (call after committing events)."""
        self._kick.set()

    # -- the loop --------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Relay until ``stop`` is set; database and bus failures are waited out."""
        attempt = 0
        next_stats = next_prune = 0.0
        while not stop.is_set():
            now = time.monotonic()
            published = 0
            try:
                if now >= next_stats:
                    next_stats = now + self._stats_interval_s
                    await self.refresh_stats()
                if now >= next_prune:
                    next_prune = now + max(60.0, self._retention_s / 24)
                    await asyncio.to_thread(self._prune)
                if self._bus.connected:
                    published = await self.relay_once()
                    attempt = 0
                else:
                    attempt += 1
            except BusError as exc:
                attempt += 1
                self._failed(exc)
            except DatabaseError as exc:
                attempt += 1
                self._failed(exc)
                if attempt == 1 or attempt % 20 == 0:
                    log.warning("outbox %s: database error: %r", self.schema, exc)
            if published >= self._batch_max:
                continue  # more waiting: no pause
            if published == 0 and attempt == 0:
                self.drained.set()
            delay = self._poll_s if attempt == 0 else _RETRY.delay(attempt)
            await _wait_any(stop, self._kick, timeout_s=delay)
            self._kick.clear()

    async def relay_once(self) -> int:
        """Claim, publish and mark one batch; the number published.

        Raises :class:`~cloud.events.bus.BusError` (nothing marked) or a database error.
        """
        async with self._slots:
            claimed = await asyncio.to_thread(self._claim_batch)
            if claimed is None:
                return 0
            conn, rows = claimed
            self.drained.clear()
            try:
                events, ids = self._events(rows)
                await self._bus.publish(events, timeout_s=self._publish_timeout_s)
            except BusError as exc:
                failed = [e.id for e in events]
                await asyncio.to_thread(self._give_back, conn, self._mark_failed, failed, exc)
                raise
            except BaseException:
                await asyncio.to_thread(self._give_back, conn)
                raise
            await asyncio.to_thread(self._give_back, conn, self._mark_published, ids)
        self.stats = replace(
            self.stats,
            published=self.stats.published + len(events),
            bus_connected=True,
            last_error=None,
        )
        return len(events)

    async def refresh_stats(self) -> OutboxStats:
        """Count pending rows and the oldest one's age; log a lag; call the hook."""
        pending, lag_s = await asyncio.to_thread(self._pending)
        self.stats = replace(
            self.stats, pending=pending, lag_s=lag_s, bus_connected=self._bus.connected
        )
        if lag_s > self._lag_warn_s:
            log.warning(
                "outbox %s: %d events pending, oldest %.0f s (bus %s)",
                self.schema,
                pending,
                lag_s,
                "connected" if self._bus.connected else "away",
            )
        if self._metrics is not None:
            try:
                self._metrics(self.stats)
            except Exception:
                log.exception("outbox %s: metrics hook failed", self.schema)
        return self.stats

    def _failed(self, exc: BaseException) -> None:
        self.stats = replace(
            self.stats,
            failures=self.stats.failures + 1,
            bus_connected=self._bus.connected,
            last_error=f"{type(exc).__name__}: {exc}",
        )

    # -- SQL (run in a thread) ---------------------------------------------------------
    def _claim_batch(self) -> tuple[Connection[Any], list[tuple[Any, ...]]] | None:
        """A connection whose transaction holds the claimed rows' locks, with the rows;
        None when there is nothing to publish (the connection is back in the pool)."""
        conn = self._pool.getconn()
        try:
            rows = self._claim(conn)
        except BaseException:
            self._give_back(conn)
            raise
        if rows:
            return conn, rows
        self._give_back(conn)
        return None

    def _give_back(
        self, conn: Connection[Any], mark: Callable[..., None] | None = None, *args: Any
    ) -> None:
        """End the claim's transaction (``mark`` commits it; without, roll back) and
        return the connection in the same thread call: a caller cancelled meanwhile
        leaves nothing held."""
        try:
            if mark is not None:
                mark(conn, *args)
            else:
                conn.rollback()
        except BaseException:
            with contextlib.suppress(Exception):
                conn.rollback()
            raise
        finally:
            self._pool.putconn(conn)

    def _claim(self, conn: Connection[Any]) -> list[tuple[Any, ...]]:
        return conn.execute(
            sql.SQL(
                "SELECT id, event_id, name, region, source, occurred_at, payload FROM {}"
                " WHERE published_at IS NULL{} ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED"
            ).format(self._table, self._only[0]),
            (*self._only[1], self._batch_max),
        ).fetchall()

    def _events(self, rows: list[tuple[Any, ...]]) -> tuple[list[Event], list[int]]:
        events: list[Event] = []
        ids: list[int] = []
        for row_id, event_id, name, region, source, occurred_at, payload in rows:
            ids.append(row_id)
            try:
                events.append(
                    Event(
                        id=event_id,
                        name=name,
                        region=region,
                        source=source,
                        occurred_at=occurred_at,
                        payload=payload,
                    )
                )
            except ValidationError as exc:
                # Not written by emit(): marked published with the reason, never sent.
                log.error("outbox %s: row %s is not an event: %s", self.schema, row_id, exc)
        return events, ids

    def _mark_published(self, conn: Connection[Any], ids: list[int]) -> None:
        conn.execute(
            sql.SQL("UPDATE {} SET published_at = now() WHERE id = ANY(%s)").format(self._table),
            (ids,),
        )
        conn.commit()

    def _mark_failed(
        self, conn: Connection[Any], event_ids: list[UUID], exc: BaseException
    ) -> None:
        conn.execute(
            sql.SQL(
                "UPDATE {} SET attempts = attempts + 1, last_error = %s WHERE event_id = ANY(%s)"
            ).format(self._table),
            (f"{type(exc).__name__}: {exc}"[:500], event_ids),
        )
        conn.commit()

    def _pending(self) -> tuple[int, float]:
        with self._pool.connection() as conn:
            row = conn.execute(
                sql.SQL(
                    "SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0)"
                    " FROM {} WHERE published_at IS NULL{}"
                ).format(self._table, self._only[0]),
                self._only[1],
            ).fetchone()
        assert row is not None
        return int(row[0]), float(row[1])

    def _prune(self) -> None:
        with self._pool.connection() as conn:
            cur = conn.execute(
                sql.SQL(
                    "DELETE FROM {} WHERE published_at < now() - make_interval(secs => %s){}"
                ).format(self._table, self._only[0]),
                (self._retention_s, *self._only[1]),
            )
            if cur.rowcount:
                log.info("outbox %s: pruned %d published events", self.schema, cur.rowcount)


async def _wait_any(*events: asyncio.Event, timeout_s: float) -> None:
    waiters = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)


def prometheus_hook(registry: Any = None) -> MetricsHook:
    """A :data:`MetricsHook` exporting ``potr_outbox_pending``, ``potr_outbox_lag_seconds``,
    ``potr_outbox_published_total`` and ``potr_outbox_failures_total`` per schema."""
    from prometheus_client import REGISTRY, Gauge

    reg = registry if registry is not None else REGISTRY
    pending = Gauge("potr_outbox_pending", "Unpublished outbox events", ["schema"], registry=reg)
    lag = Gauge(
        "potr_outbox_lag_seconds", "Age of the oldest unpublished event", ["schema"], registry=reg
    )
    published = Gauge(
        "potr_outbox_published_total", "Events published by this relay", ["schema"], registry=reg
    )
    failures = Gauge("potr_outbox_failures_total", "Failed relay cycles", ["schema"], registry=reg)

    def hook(stats: OutboxStats) -> None:
        pending.labels(stats.schema).set(stats.pending)
        lag.labels(stats.schema).set(stats.lag_s)
        published.labels(stats.schema).set(stats.published)
        failures.labels(stats.schema).set(stats.failures)

    return hook
