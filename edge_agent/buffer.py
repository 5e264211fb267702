"""The crash-safe outbox: SQLite in WAL mode with ``synchronous=FULL``.

``meta`` holds the stream (``stream_id`` made with the database, ``last_seq``);
``outbox`` holds every buffered message (telemetry, event, cmd_ack, config_state) under
one seq space until the cloud's ``stored`` watermark covers it. :class:`Outbox` is the
blocking core; :class:`AsyncOutbox` runs it on one dedicated thread.

Bounded by payload bytes: when full, the oldest *telemetry* goes first and every drop is
recorded (:class:`Dropped`, seq ranges and time span) for a ``data_dropped`` event
(:class:`contracts.events.DataDropped`);
events, acks and config states are never dropped. A file that fails its integrity check
on open is moved aside and a new stream starts (:attr:`Outbox.recovered`).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

from pydantic import ValidationError

from contracts.events import DataDropped
from contracts.streams import next_seq

T = TypeVar("T")
log = logging.getLogger(__name__)

#: Lower sorts first when sending: events and acks, then config state, then telemetry.
PRIORITY: dict[str, int] = {"event": 0, "cmd_ack": 0, "config_state": 1, "telemetry": 2}
#: Only these kinds may be dropped when the buffer is full.
DROPPABLE = frozenset({"telemetry"})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    stream_id TEXT NOT NULL,
    last_seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    payload BLOB NOT NULL,
    created_at REAL NOT NULL,
    sent_at REAL,
    priority INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    span_from TEXT,
    span_to TEXT
);
CREATE TABLE IF NOT EXISTS dropped (
    seq INTEGER PRIMARY KEY,
    reason TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    span_from TEXT,
    span_to TEXT
);
CREATE INDEX IF NOT EXISTS outbox_unsent ON outbox (priority, seq) WHERE sent_at IS NULL;
"""

PayloadFactory = Callable[[UUID, int], bytes]
Span = tuple[str, str]  # first and last reading time (RFC 3339) of a telemetry batch
#: ``(stream id, seq, first item) -> (payload, end, span)``: the next piece of a message
#: being split, holding items ``[first, end)``, built for that seq.
Cut = Callable[[UUID, int, int], tuple[bytes, int, Span | None]]


class BufferFullError(RuntimeError):
    """Nothing droppable is left and the disk refuses more (events and acks are kept)."""


@dataclass
class Dropped:
    """Telemetry removed to make room: which seqs, how much, which time span."""

    reason: str
    seqs: list[int] = field(default_factory=list)
    bytes: int = 0
    span_from: str | None = None
    span_to: str | None = None
    #: Batches dropped before a seq was allocated (the disk refused even that): no hole.
    unsequenced: int = 0

    def add(self, seq: int | None, size: int, span: Span | None) -> None:
        if seq is None:
            self.unsequenced += 1
        else:
            self.seqs.append(seq)
        self.bytes += size
        if span is not None:
            self.span_from = min(filter(None, (self.span_from, span[0])))
            self.span_to = max(filter(None, (self.span_to, span[1])))

    def ranges(self) -> list[tuple[int, int]]:
        """The dropped seqs as inclusive ranges, e.g. ``[(3, 7), (9, 9)]``."""
        out: list[tuple[int, int]] = []
        for seq in sorted(self.seqs):
            if out and seq == out[-1][1] + 1:
                out[-1] = (out[-1][0], seq)
            else:
                out.append((seq, seq))
        return out

    def detail(self) -> DataDropped:
        """The ``data_dropped`` event's detail (``reason`` is a :class:`DropReason`).

        The seq ranges must reach ingest whatever else is wrong (a span a clock step left
        unreadable, a reason from an older version): a drop report that never goes out
        would leave its gap open forever, and this one is recorded in the buffer and
        retried at every start. So a detail that does not validate goes without its
        span, then with the ranges alone."""
        detail = {
            "reason": self.reason,
            "seq_ranges": self.ranges(),
            "batches": len(self.seqs) + self.unsequenced,
            "bytes": self.bytes,
            "from": self.span_from,
            "to": self.span_to,
        }
        for fallback in ((), ("from", "to"), ("from", "to", "reason", "batches", "bytes")):
            try:
                return DataDropped.model_validate(
                    {k: v for k, v in detail.items() if k not in fallback}
                )
            except ValidationError as exc:
                log.warning("drop report %s: %s", self.ranges(), exc.errors()[0]["msg"])
        return DataDropped()  # no range validates either: nothing to account for


@dataclass(frozen=True)
class Recovered:
    """A buffer file that failed its integrity check and was moved aside."""

    moved_to: Path
    reason: str


@dataclass(frozen=True, slots=True)
class OutboxRow:
    seq: int
    kind: str
    payload: bytes
    created_at: float
    sent_at: float | None
    priority: int


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA busy_timeout=5000")
    return db


def _check(db: sqlite3.Connection) -> str | None:
    """None when the file is sound, else what is wrong."""
    result = [r[0] for r in db.execute("PRAGMA quick_check")]
    return None if result == ["ok"] else "; ".join(map(str, result[:3]))


def _open_checked(path: Path) -> tuple[sqlite3.Connection, Recovered | None]:
    """Open ``path``; a corrupt file (and its WAL) is moved aside and a new one created."""
    reason: str | None
    try:
        db = _connect(path)
        reason = _check(db)
        if reason is None:
            return db, None
        db.close()
    except sqlite3.DatabaseError as exc:
        reason = str(exc)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    moved = path.with_name(f"{path.name}.corrupt-{stamp}")
    for suffix in ("", "-wal", "-shm"):
        src = Path(f"{path}{suffix}")
        if src.exists():
            src.rename(f"{moved}{suffix}")
    log.error("buffer %s failed its integrity check (%s): moved to %s", path, reason, moved)
    return _connect(path), Recovered(moved, reason)


class Outbox:
    """Blocking outbox over one SQLite connection; use from one thread at a time.

    ``max_bytes`` bounds the stored payload bytes (SQLite's own overhead comes on top).
    """

    def __init__(self, path: str | Path, *, max_bytes: int | None = None) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self._db, self.recovered = _open_checked(self.path)
        self._db.executescript(_SCHEMA)
        columns = {r[1] for r in self._db.execute("PRAGMA table_info(outbox)")}
        for name, decl in (
            ("attempts", "INTEGER NOT NULL DEFAULT 0"),
            ("span_from", "TEXT"),
            ("span_to", "TEXT"),
        ):
            if name not in columns:  # a buffer written by an older agent
                self._db.execute(f"ALTER TABLE outbox ADD COLUMN {name} {decl}")
        #: Telemetry batches dropped since this process opened the buffer.
        self.dropped_total = 0
        with self._tx():
            row = self._db.execute("SELECT stream_id FROM meta WHERE id = 1").fetchone()
            if row is None:
                self._db.execute(
                    "INSERT INTO meta (id, stream_id, last_seq) VALUES (1, ?, 0)",
                    (str(uuid.uuid4()),),
                )
                row = self._db.execute("SELECT stream_id FROM meta WHERE id = 1").fetchone()
        self.stream_id = UUID(row[0])
        self.bytes = int(
            self._db.execute("SELECT coalesce(sum(length(payload)), 0) FROM outbox").fetchone()[0]
        )

    def _tx(self) -> _Tx:
        return _Tx(self._db)

    @property
    def last_seq(self) -> int:
        return int(self._db.execute("SELECT last_seq FROM meta WHERE id = 1").fetchone()[0])

    def append(
        self,
        kind: str,
        make_payload: PayloadFactory,
        *,
        now: float | None = None,
        span: Span | None = None,
    ) -> int:
        """Allocate the next seq, build the payload with it and persist both atomically.

        When the buffer is full (``max_bytes``) or the disk is (ENOSPC), the oldest
        telemetry makes room; if the new message is telemetry and nothing older can go, it
        is itself dropped (its seq still allocated and reported). What was dropped is
        recorded in the buffer until :meth:`report_drops` reports it.
        """
        created = time.time() if now is None else now
        try:
            return self._append(kind, make_payload, created, span)
        except sqlite3.OperationalError as exc:
            if "full" not in str(exc).lower():
                raise
            log.error("buffer %s: disk full while appending %s", self.path, kind)
            # Give the WAL's disk blocks back, make room from the oldest telemetry (its
            # pages are reused), then try once more.
            self._checkpoint()
            try:
                freed = self._drop_oldest_telemetry(max(self.bytes // 10, 1), "disk full")
            except sqlite3.OperationalError:
                freed = 0
            self._checkpoint()
            try:
                return self._append(kind, make_payload, created, span)
            except sqlite3.OperationalError as again:
                if "full" not in str(again).lower():
                    raise
                if kind not in DROPPABLE:
                    raise BufferFullError(f"disk full, {freed} bytes freed: {again}") from again
            try:
                return self._skip_seq(kind, span, "disk full")
            except sqlite3.OperationalError as again:
                raise BufferFullError(f"disk full: {again}") from again

    def _append(
        self, kind: str, make_payload: PayloadFactory, created: float, span: Span | None
    ) -> int:
        victims: list[tuple[int, int, Span | None]] = []
        with self._tx():
            seq = next_seq(self.last_seq)
            payload = make_payload(self.stream_id, seq)
            self._db.execute("UPDATE meta SET last_seq = ? WHERE id = 1", (seq,))
            if self.max_bytes is not None and self.bytes + len(payload) > self.max_bytes:
                victims = self._make_room(len(payload))
                room = self.max_bytes - self.bytes + sum(v[1] for v in victims)
                if kind in DROPPABLE and len(payload) > room:
                    # Nothing older can go: this batch itself is dropped, its seq reported.
                    self.bytes += len(payload)  # given back by _commit_drops
                    victims.append((seq, len(payload), span))
                    self._record_drops("buffer full", victims[-1:])
                    payload = b""
            if payload:
                self._db.execute(
                    "INSERT INTO outbox (seq, kind, payload, created_at, sent_at, priority,"
                    " span_from, span_to) VALUES (?, ?, ?, ?, NULL, ?, ?, ?)",
                    (
                        seq,
                        kind,
                        payload,
                        created,
                        PRIORITY.get(kind, 2),
                        span[0] if span else None,
                        span[1] if span else None,
                    ),
                )
        self.bytes += len(payload)
        self._commit_drops("buffer full", victims)
        return seq

    def _checkpoint(self) -> None:
        try:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        except sqlite3.OperationalError as exc:
            log.warning("buffer %s: checkpoint failed: %s", self.path, exc)

    def _skip_seq(self, kind: str, span: Span | None, reason: str) -> int:
        """Allocate a seq for a message that cannot be stored, and record it dropped."""
        seq = self.skip(span, reason)
        self.dropped_total += 1
        return seq

    def skip(self, span: Span | None, reason: str, size: int = 0) -> int:
        """Allocate a seq for telemetry that will never be buffered (``size`` bytes of
        readings over ``span``) and record it dropped for ``reason``: the next
        ``data_dropped`` names the seq, so ingest accounts for it."""
        with self._tx():
            seq = next_seq(self.last_seq)
            self._db.execute("UPDATE meta SET last_seq = ? WHERE id = 1", (seq,))
            self._record_drops(reason, [(seq, size, span)])
        return seq

    def dead_end(self, seq: int, reason: str) -> bool:
        """Delete row ``seq`` and record it dropped for ``reason`` (one transaction): for
        a message that can never be delivered. False when the row is gone already."""
        with self._tx():
            row = self._db.execute(
                "SELECT length(payload), span_from, span_to FROM outbox WHERE seq = ?", (seq,)
            ).fetchone()
            if row is None:
                return False
            size, s_from, s_to = row
            self._db.execute("DELETE FROM outbox WHERE seq = ?", (seq,))
            self._record_drops(reason, [(seq, size, (s_from, s_to) if s_from else None)])
        self.bytes -= int(size)
        return True

    def split(
        self,
        seq: int,
        cut: Cut,
        count: int,
        *,
        reason: str,
        lost: tuple[Span | None, int] | None = None,
    ) -> list[int]:
        """Replace row ``seq`` (``count`` items) by pieces that each fit, in one
        transaction: the row keeps its seq with the first piece, the others get the next
        seqs (same kind, priority and creation time); items that fit nowhere (``lost``:
        their span and bytes) get a seq recorded dropped for ``reason``. ``count`` 0:
        the row is dead-ended. Returns the pieces' seqs (none when the row is gone)."""
        if count == 0:
            self.dead_end(seq, reason)  # its readings are the lost ones
            return []
        added = 0
        with self._tx():
            row = self._db.execute(
                "SELECT kind, created_at, priority, length(payload) FROM outbox WHERE seq = ?",
                (seq,),
            ).fetchone()
            if row is None:
                return []
            kind, created, priority, old_size = row
            payload, end, span = cut(self.stream_id, seq, 0)
            self._db.execute(
                "UPDATE outbox SET payload = ?, sent_at = NULL, span_from = ?, span_to = ?"
                " WHERE seq = ?",
                (payload, span[0] if span else None, span[1] if span else None, seq),
            )
            added += len(payload) - int(old_size)
            seqs = [seq]
            while end < count:
                new = next_seq(self.last_seq)
                payload, end, span = cut(self.stream_id, new, end)
                self._db.execute("UPDATE meta SET last_seq = ? WHERE id = 1", (new,))
                self._db.execute(
                    "INSERT INTO outbox (seq, kind, payload, created_at, sent_at, priority,"
                    " span_from, span_to) VALUES (?, ?, ?, ?, NULL, ?, ?, ?)",
                    (
                        new,
                        kind,
                        payload,
                        created,
                        priority,
                        span[0] if span else None,
                        span[1] if span else None,
                    ),
                )
                added += len(payload)
                seqs.append(new)
            if lost is not None:
                new = next_seq(self.last_seq)
                self._db.execute("UPDATE meta SET last_seq = ? WHERE id = 1", (new,))
                self._record_drops(reason, [(new, lost[1], lost[0])])
        self.bytes += added
        return seqs

    def _make_room(self, size: int) -> list[tuple[int, int, Span | None]]:
        """Inside the caller's transaction: delete the oldest telemetry until ``size`` fits;
        return the victims, to account for once the transaction commits."""
        assert self.max_bytes is not None
        need = self.bytes + size - self.max_bytes
        rows = self._db.execute(
            "SELECT seq, length(payload), span_from, span_to FROM outbox WHERE kind = 'telemetry'"
            " ORDER BY seq"
        )
        victims: list[tuple[int, int, Span | None]] = []
        for r_seq, r_len, r_from, r_to in rows:
            if need <= 0:
                break
            victims.append((r_seq, r_len, (r_from, r_to) if r_from else None))
            need -= r_len
        rows.close()
        for r_seq, _, _ in victims:
            self._db.execute("DELETE FROM outbox WHERE seq = ?", (r_seq,))
        self._record_drops("buffer full", victims)
        return victims

    def _drop_oldest_telemetry(self, at_least: int, reason: str) -> int:
        """Delete the oldest telemetry worth ``at_least`` bytes (own transaction)."""
        victims: list[tuple[int, int, Span | None]] = []
        freed = 0
        with self._tx():
            for r_seq, r_len, r_from, r_to in self._db.execute(
                "SELECT seq, length(payload), span_from, span_to FROM outbox"
                " WHERE kind = 'telemetry' ORDER BY seq"
            ).fetchall():
                if freed >= at_least:
                    break
                self._db.execute("DELETE FROM outbox WHERE seq = ?", (r_seq,))
                victims.append((r_seq, r_len, (r_from, r_to) if r_from else None))
                freed += r_len
            self._record_drops(reason, victims)
        self._commit_drops(reason, victims)
        return freed

    def _commit_drops(self, reason: str, victims: list[tuple[int, int, Span | None]]) -> None:
        """Account in memory for rows whose deletion has committed."""
        for _, r_len, _ in victims:
            self.bytes -= r_len
        self.dropped_total += len(victims)

    def _record_drops(self, reason: str, victims: list[tuple[int, int, Span | None]]) -> None:
        """Inside the caller's transaction: remember what was dropped until it is reported,
        so a crash between dropping and reporting loses no report."""
        self._db.executemany(
            "INSERT OR REPLACE INTO dropped (seq, reason, bytes, span_from, span_to)"
            " VALUES (?, ?, ?, ?, ?)",
            [
                (seq, reason, size, span[0] if span else None, span[1] if span else None)
                for seq, size, span in victims
            ],
        )

    def pending_drops(self) -> list[Dropped]:
        """Drops not yet reported, one record per reason."""
        drops: dict[str, Dropped] = {}
        for seq, reason, size, s_from, s_to in self._db.execute(
            "SELECT seq, reason, bytes, span_from, span_to FROM dropped ORDER BY seq"
        ):
            drops.setdefault(reason, Dropped(reason)).add(
                seq, size, (s_from, s_to) if s_from else None
            )
        return list(drops.values())

    def report_drops(self, make_event: Callable[[Dropped], PayloadFactory]) -> list[Dropped]:
        """Append one ``data_dropped`` event per reason for every drop not yet reported,
        and forget those drops, in one transaction. Events come after the seqs they name.
        Coalesced: call it now and then, not after every append (events are never dropped,
        so one event per lost batch would fill a small buffer with reports)."""
        with self._tx():
            drops = self.pending_drops()
            for dropped in drops:
                seq = next_seq(self.last_seq)
                payload = make_event(dropped)(self.stream_id, seq)
                self._db.execute("UPDATE meta SET last_seq = ? WHERE id = 1", (seq,))
                self._db.execute(
                    "INSERT INTO outbox (seq, kind, payload, created_at, sent_at, priority)"
                    " VALUES (?, 'event', ?, ?, NULL, ?)",
                    (seq, payload, time.time(), PRIORITY["event"]),
                )
                self.bytes += len(payload)
            if drops:
                self._db.execute("DELETE FROM dropped")
        return drops

    def unsent(self, limit: int, exclude: Iterable[int] = ()) -> list[OutboxRow]:
        """Up to ``limit`` unsent rows, events/acks first, oldest first, minus ``exclude``."""
        skip = set(exclude)
        rows = self._db.execute(
            "SELECT seq, kind, payload, created_at, sent_at, priority FROM outbox"
            " WHERE sent_at IS NULL ORDER BY priority, seq LIMIT ?",
            (limit + len(skip),),
        ).fetchall()
        return [OutboxRow(*r) for r in rows if r[0] not in skip][:limit]

    def unsent_of(
        self,
        priority: int,
        limit: int,
        exclude: Iterable[int] = (),
        *,
        after_seq: int = 0,
        upto_seq: int = 2**63 - 1,
    ) -> list[OutboxRow]:
        """Up to ``limit`` unsent rows of one ``priority`` with ``after_seq < seq <=
        upto_seq``, oldest first, minus ``exclude`` (what paced backfill asks for)."""
        skip = set(exclude)
        rows = self._db.execute(
            "SELECT seq, kind, payload, created_at, sent_at, priority FROM outbox"
            " WHERE sent_at IS NULL AND priority = ? AND seq > ? AND seq <= ?"
            " ORDER BY seq LIMIT ?",
            (priority, after_seq, upto_seq, limit + len(skip)),
        ).fetchall()
        return [OutboxRow(*r) for r in rows if r[0] not in skip][:limit]

    def mark_sent(self, seqs: Iterable[int], *, now: float | None = None) -> None:
        """Record the PUBACK time of ``seqs`` on the monotonic clock (rows already deleted
        are ignored). Monotonic, because the gateway has no RTC: an NTP step must not
        postpone resends for days. Restarts requeue everything (:meth:`requeue_all`)."""
        ts = time.monotonic() if now is None else now
        with self._tx():
            self._db.executemany(
                "UPDATE outbox SET sent_at = ?, attempts = attempts + 1 WHERE seq = ?",
                [(ts, s) for s in seqs],
            )

    def requeue_stale(
        self, timeout_s: float, *, now: float | None = None, max_backoff: int = 32
    ) -> int:
        """Make PUBACKed rows not yet covered by ``stored`` unsent again once they have
        waited ``timeout_s`` x 2^(attempts - 1) (capped at ``max_backoff`` x timeout), so a
        long cloud outage is not met by the whole backlog every ``timeout_s``."""
        current = time.monotonic() if now is None else now
        with self._tx():
            cur = self._db.execute(
                "UPDATE outbox SET sent_at = NULL WHERE sent_at IS NOT NULL"
                " AND sent_at + ? * min(1 << max(attempts - 1, 0), ?) <= ?",
                (timeout_s, max_backoff, current),
            )
        return cur.rowcount

    def requeue_all(self) -> int:
        with self._tx():
            cur = self._db.execute("UPDATE outbox SET sent_at = NULL WHERE sent_at IS NOT NULL")
        return cur.rowcount

    def apply_stored(self, stream_id: UUID, upto_seq: int) -> int | None:
        """Delete rows covered by a ``stored`` watermark of this stream; other streams: 0.

        A watermark beyond the highest seq this stream ever allocated claims data that
        was never sent: it is refused (None) and deletes nothing — taken, it would delete
        rows the cloud never received (a forged or misrouted ``stored``)."""
        if stream_id != self.stream_id or upto_seq < 1:
            return 0
        with self._tx():
            if upto_seq > self.last_seq:
                return None
            freed = self._db.execute(
                "SELECT coalesce(sum(length(payload)), 0) FROM outbox WHERE seq <= ?", (upto_seq,)
            ).fetchone()[0]
            cur = self._db.execute("DELETE FROM outbox WHERE seq <= ?", (upto_seq,))
        self.bytes -= int(freed)
        return cur.rowcount

    def counts(self) -> dict[str, int]:
        total, unsent = self._db.execute(
            "SELECT count(*), count(*) - count(sent_at) FROM outbox"
        ).fetchone()
        return {"rows": int(total), "unsent": int(unsent), "bytes": self.bytes}

    def oldest_created_at(self) -> float | None:
        """When the oldest buffered row was created (epoch seconds); None when empty."""
        oldest = self._db.execute("SELECT min(created_at) FROM outbox").fetchone()[0]
        return None if oldest is None else float(oldest)

    def rows(self) -> list[OutboxRow]:
        return [
            OutboxRow(*r)
            for r in self._db.execute(
                "SELECT seq, kind, payload, created_at, sent_at, priority FROM outbox ORDER BY seq"
            )
        ]

    def integrity_ok(self) -> bool:
        return _check(self._db) is None

    def close(self) -> None:
        self._db.close()


class _Tx:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is not None:
            self._rollback()
            return
        try:
            self._db.execute("COMMIT")
        except sqlite3.Error:
            # A COMMIT refused (e.g. ENOSPC) leaves the transaction open: end it, so the
            # next BEGIN works, then let the caller see the error.
            self._rollback()
            raise

    def _rollback(self) -> None:
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")


class AsyncOutbox:
    """:class:`Outbox` on a dedicated single thread, so the event loop never blocks."""

    def __init__(self, path: str | Path, *, max_bytes: int | None = None) -> None:
        self._path = Path(path)
        self._max_bytes = max_bytes
        self._dropped_at_close = 0
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox")
        self._outbox: Outbox | None = None

    @property
    def stream_id(self) -> UUID:
        return self._core.stream_id

    @property
    def _core(self) -> Outbox:
        if self._outbox is None:
            raise RuntimeError("outbox not open")
        return self._outbox

    async def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, partial(fn, *args, **kwargs))

    async def open(self) -> AsyncOutbox:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._outbox = await self._run(Outbox, self._path, max_bytes=self._max_bytes)
        return self

    @property
    def recovered(self) -> Recovered | None:
        return self._core.recovered

    async def append(
        self, kind: str, make_payload: PayloadFactory, *, span: Span | None = None
    ) -> int:
        return await self._run(self._core.append, kind, make_payload, span=span)

    @property
    def dropped_total(self) -> int:
        """Batches dropped since open (still readable after close)."""
        return self._outbox.dropped_total if self._outbox is not None else self._dropped_at_close

    async def pending_drops(self) -> list[Dropped]:
        return await self._run(self._core.pending_drops)

    async def report_drops(self, make_event: Callable[[Dropped], PayloadFactory]) -> list[Dropped]:
        return await self._run(self._core.report_drops, make_event)

    async def skip(self, span: Span | None, reason: str, size: int = 0) -> int:
        return await self._run(self._core.skip, span, reason, size)

    async def dead_end(self, seq: int, reason: str) -> bool:
        return await self._run(self._core.dead_end, seq, reason)

    async def split(
        self,
        seq: int,
        cut: Cut,
        count: int,
        *,
        reason: str,
        lost: tuple[Span | None, int] | None = None,
    ) -> list[int]:
        return await self._run(self._core.split, seq, cut, count, reason=reason, lost=lost)

    async def unsent(self, limit: int, exclude: Iterable[int] = ()) -> list[OutboxRow]:
        return await self._run(self._core.unsent, limit, list(exclude))

    async def unsent_of(
        self,
        priority: int,
        limit: int,
        exclude: Iterable[int] = (),
        *,
        after_seq: int = 0,
        upto_seq: int = 2**63 - 1,
    ) -> list[OutboxRow]:
        return await self._run(
            self._core.unsent_of,
            priority,
            limit,
            list(exclude),
            after_seq=after_seq,
            upto_seq=upto_seq,
        )

    async def last_seq(self) -> int:
        return await self._run(lambda: self._core.last_seq)

    async def mark_sent(self, seqs: Iterable[int]) -> None:
        await self._run(self._core.mark_sent, list(seqs))

    async def requeue_stale(self, timeout_s: float) -> int:
        return await self._run(self._core.requeue_stale, timeout_s)

    async def requeue_all(self) -> int:
        return await self._run(self._core.requeue_all)

    async def apply_stored(self, stream_id: UUID, upto_seq: int) -> int | None:
        return await self._run(self._core.apply_stored, stream_id, upto_seq)

    async def counts(self) -> dict[str, int]:
        return await self._run(self._core.counts)

    async def oldest_created_at(self) -> float | None:
        return await self._run(self._core.oldest_created_at)

    async def close(self) -> None:
        if self._outbox is not None:
            self._dropped_at_close = self._outbox.dropped_total
            await self._run(self._outbox.close)
            self._outbox = None
        self._executor.shutdown(wait=True)

    async def __aenter__(self) -> AsyncOutbox:
        return await self.open()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
