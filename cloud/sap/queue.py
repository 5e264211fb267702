"""The ``sap`` schema's export queues — partners, documents (issued documents, payments,
refunds), service orders, service confirmations — as one shape: claims, back-off, dead
letters, exports, requeues and counts for any of them, over a connection in the caller's
transaction. A :class:`Queue` names a table and what differs between them (the key, the
columns and joined values a claim carries, what an export records); the tables' own
news (enqueues, reconciliation reads) stays in :mod:`cloud.sap.repository` and
:mod:`cloud.sap.service_repository`, which define the queues.

A claim leases rows (``FOR UPDATE SKIP LOCKED``, so exporters in several processes share
the work) under a fresh ``lease_id``; an outcome is recorded only while that lease is
still the row's, so an exporter that outlived its lease changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar
from uuid import UUID, uuid4

from cloud.adapters.postgres import Connection

__all__ = [
    "TABLES",
    "Claimed",
    "Queue",
    "claim",
    "dead",
    "exported",
    "queue_counts",
    "requeue_dead",
    "retry",
]

#: Every queue's table in the ``sap`` schema (SQL names come from here, never input).
TABLES = ("documents", "partners", "service_confirmations", "service_orders")


class Claimed(Protocol):
    """What every claim carries (besides its row's columns)."""

    @property
    def attempts(self) -> int: ...

    @property
    def lease_id(self) -> UUID: ...


C = TypeVar("C", bound=Claimed)


@dataclass(frozen=True)
class Queue(Generic[C]):
    """One queue table and how a claim of it is read and an export of it recorded.

    ``claimed`` is called with the lease and, by name, the key, ``attempts``,
    ``outcome_unknown``, ``columns`` and ``joined``. ``join`` and ``condition`` are SQL
    on the due rows (the queue's row is ``q``); ``joined`` names SQL values of those
    joins. ``exported`` is the SET of an export beyond its state: named parameters, the
    values the exporter read from SAP's record and ``now``."""

    table: str
    key: str
    columns: tuple[str, ...]
    claimed: Callable[..., C]
    exported: str
    joined: tuple[tuple[str, str], ...] = ()
    join: str = ""
    condition: str = ""
    order_by: str = "next_attempt_at"

    def __post_init__(self) -> None:
        assert self.table in TABLES

    def key_of(self, claim: C) -> object:
        return getattr(claim, self.key)


def claim(
    conn: Connection[Any], queue: Queue[C], now: datetime, lease_s: float, limit: int
) -> list[C]:
    """Lease up to ``limit`` due rows of ``queue`` (by key)."""
    lease = uuid4()
    names = (queue.key, "attempts", "outcome_unknown", *queue.columns)
    joined = [name for name, _ in queue.joined]
    rows = conn.execute(
        f"UPDATE sap.{queue.table} t SET lease_id = %s, lease_until = %s"
        f" FROM (SELECT q.{queue.key}"
        + "".join(f", {sql} AS {name}" for name, sql in queue.joined)
        + f" FROM sap.{queue.table} q {queue.join}"
        "  WHERE q.state = 'pending' AND q.next_attempt_at <= %s"
        f"  AND (q.lease_until IS NULL OR q.lease_until < %s) {queue.condition}"
        f"  ORDER BY q.{queue.order_by} LIMIT %s FOR UPDATE OF q SKIP LOCKED) due"
        f" WHERE t.{queue.key} = due.{queue.key} RETURNING "
        + ", ".join([f"t.{name}" for name in names] + [f"due.{name}" for name in joined]),
        (lease, now + timedelta(seconds=lease_s), now, now, limit),
    ).fetchall()
    return [
        queue.claimed(lease_id=lease, **dict(zip((*names, *joined), r, strict=True)))
        for r in sorted(rows, key=lambda r: r[0])
    ]


# -- outcomes (only while the lease is still ours) --------------------------------------
def exported(
    conn: Connection[Any], queue: Queue[C], claim: C, now: datetime, sap: dict[str, object]
) -> bool:
    """SAP holds the claimed row: record ``sap`` (what :attr:`Queue.exported` names)."""
    cur = conn.execute(
        f"UPDATE sap.{queue.table} SET state = 'exported', {queue.exported},"
        " outcome_unknown = false, last_error = NULL, lease_id = NULL, lease_until = NULL"
        f" WHERE {queue.key} = %(key)s AND lease_id = %(lease)s",
        {**sap, "now": now, "key": queue.key_of(claim), "lease": claim.lease_id},
    )
    return cur.rowcount == 1


def retry(
    conn: Connection[Any],
    queue: Queue[C],
    claim: C,
    error: str,
    *,
    unknown: bool,
    next_at: datetime,
) -> bool:
    """Release a claimed row for another attempt at ``next_at``; False when the lease
    was lost meanwhile (another worker owns the row now)."""
    cur = conn.execute(
        f"UPDATE sap.{queue.table} SET attempts = attempts + 1, last_error = %s,"
        " outcome_unknown = outcome_unknown OR %s, next_attempt_at = %s, lease_id = NULL,"
        f" lease_until = NULL WHERE {queue.key} = %s AND lease_id = %s",
        (error[:1000], unknown, next_at, queue.key_of(claim), claim.lease_id),
    )
    return cur.rowcount == 1


def dead(
    conn: Connection[Any],
    queue: Queue[C],
    claim: C,
    reason: str,
    now: datetime,
    *,
    attempted: bool = True,
) -> bool:
    """Dead-letter a claimed row with ``reason``; False when the lease was lost."""
    cur = conn.execute(
        f"UPDATE sap.{queue.table} SET state = 'dead', dead_reason = %s, dead_at = %s,"
        " attempts = attempts + %s, last_error = %s, lease_id = NULL, lease_until = NULL"
        f" WHERE {queue.key} = %s AND lease_id = %s",
        (reason[:1000], now, int(attempted), reason[:1000], queue.key_of(claim), claim.lease_id),
    )
    return cur.rowcount == 1


# -- operators ---------------------------------------------------------------------------
def requeue_dead(conn: Connection[Any], region: str | None = None) -> int:
    """Give dead-lettered rows of every queue (of ``region``, or all) a new round of
    attempts, after an operator fixed the cause; the number requeued."""
    total = 0
    for table in TABLES:
        cur = conn.execute(
            f"UPDATE sap.{table} SET state = 'pending', attempts = 0, dead_reason = NULL,"
            " dead_at = NULL, next_attempt_at = now()"
            " WHERE state = 'dead' AND (%s::text IS NULL OR region = %s)",
            (region, region),
        )
        total += cur.rowcount
    return total


def queue_counts(
    conn: Connection[Any], tables: Sequence[str] = TABLES
) -> dict[str, dict[str, int]]:
    """``{"documents": {"pending": n, ...}, "partners": {...}, ...}`` of ``tables``."""
    out: dict[str, dict[str, int]] = {}
    for table in tables:
        assert table in TABLES
        rows = conn.execute(f"SELECT state, count(*) FROM sap.{table} GROUP BY state").fetchall()
        out[table] = {state: int(n) for state, n in rows}
    return out
