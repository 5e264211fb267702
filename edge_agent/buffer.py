"""The crash-safe outbox: SQLite in WAL mode with ``synchronous=FULL``.

``meta`` holds the stream (``stream_id`` made with the database, ``last_seq``);
``outbox`` holds every buffered message (telemetry, event, cmd_ack, config_state) under
one seq space until the cloud's ``stored`` watermark covers it. :class:`Outbox` is the
blocking core; :class:`AsyncOutbox` runs it on one dedicated thread.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

from contracts.streams import next_seq

T = TypeVar("T")

#: Lower sorts first when sending: events and acks before telemetry.
PRIORITY: dict[str, int] = {"event": 0, "cmd_ack": 0, "config_state": 0, "telemetry": 1}

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
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS outbox_unsent ON outbox (priority, seq) WHERE sent_at IS NULL;
"""

PayloadFactory = Callable[[UUID, int], bytes]


@dataclass(frozen=True, slots=True)
class OutboxRow:
    seq: int
    kind: str
    payload: bytes
    created_at: float
    sent_at: float | None
    priority: int


class Outbox:
    """Blocking outbox over one SQLite connection; use from one thread at a time."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)
        columns = {r[1] for r in self._db.execute("PRAGMA table_info(outbox)")}
        if "attempts" not in columns:  # a buffer written by an older agent
            self._db.execute("ALTER TABLE outbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0")
        with self._tx():
            row = self._db.execute("SELECT stream_id FROM meta WHERE id = 1").fetchone()
            if row is None:
                self._db.execute(
                    "INSERT INTO meta (id, stream_id, last_seq) VALUES (1, ?, 0)",
                    (str(uuid.uuid4()),),
                )
                row = self._db.execute("SELECT stream_id FROM meta WHERE id = 1").fetchone()
        self.stream_id = UUID(row[0])

    def _tx(self) -> _Tx:
        return _Tx(self._db)

    @property
    def last_seq(self) -> int:
        return int(self._db.execute("SELECT last_seq FROM meta WHERE id = 1").fetchone()[0])

    def append(self, kind: str, make_payload: PayloadFactory, *, now: float | None = None) -> int:
        """Allocate the next seq, build the payload with it and persist both atomically."""
        created = time.time() if now is None else now
        with self._tx():
            seq = next_seq(self.last_seq)
            payload = make_payload(self.stream_id, seq)
            self._db.execute("UPDATE meta SET last_seq = ? WHERE id = 1", (seq,))
            self._db.execute(
                "INSERT INTO outbox (seq, kind, payload, created_at, sent_at, priority)"
                " VALUES (?, ?, ?, ?, NULL, ?)",
                (seq, kind, payload, created, PRIORITY.get(kind, 1)),
            )
        return seq

    def unsent(self, limit: int, exclude: Iterable[int] = ()) -> list[OutboxRow]:
        """Up to ``limit`` unsent rows, events/acks first, oldest first, minus ``exclude``."""
        skip = set(exclude)
        rows = self._db.execute(
            "SELECT seq, kind, payload, created_at, sent_at, priority FROM outbox"
            " WHERE sent_at IS NULL ORDER BY priority, seq LIMIT ?",
            (limit + len(skip),),
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

    def apply_stored(self, stream_id: UUID, upto_seq: int) -> int:
        """Delete rows covered by a ``stored`` watermark of this stream; other streams: 0."""
        if stream_id != self.stream_id or upto_seq < 1:
            return 0
        with self._tx():
            cur = self._db.execute("DELETE FROM outbox WHERE seq <= ?", (upto_seq,))
        return cur.rowcount

    def counts(self) -> dict[str, int]:
        total, unsent = self._db.execute(
            "SELECT count(*), count(*) - count(sent_at) FROM outbox"
        ).fetchone()
        return {"rows": int(total), "unsent": int(unsent)}

    def rows(self) -> list[OutboxRow]:
        return [
            OutboxRow(*r)
            for r in self._db.execute(
                "SELECT seq, kind, payload, created_at, sent_at, priority FROM outbox ORDER BY seq"
            )
        ]

    def integrity_ok(self) -> bool:
        return bool(self._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok")

    def close(self) -> None:
        self._db.close()


class _Tx:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self._db.execute("ROLLBACK" if exc_type else "COMMIT")


class AsyncOutbox:
    """:class:`Outbox` on a dedicated single thread, so the event loop never blocks."""

    def __init__(self, path: str | Path) -> None:
        self._path = Path(path)
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
        self._outbox = await self._run(Outbox, self._path)
        return self

    async def append(self, kind: str, make_payload: PayloadFactory) -> int:
        return await self._run(self._core.append, kind, make_payload)

    async def unsent(self, limit: int, exclude: Iterable[int] = ()) -> list[OutboxRow]:
        return await self._run(self._core.unsent, limit, list(exclude))

    async def mark_sent(self, seqs: Iterable[int]) -> None:
        await self._run(self._core.mark_sent, list(seqs))

    async def requeue_stale(self, timeout_s: float) -> int:
        return await self._run(self._core.requeue_stale, timeout_s)

    async def requeue_all(self) -> int:
        return await self._run(self._core.requeue_all)

    async def apply_stored(self, stream_id: UUID, upto_seq: int) -> int:
        return await self._run(self._core.apply_stored, stream_id, upto_seq)

    async def counts(self) -> dict[str, int]:
        return await self._run(self._core.counts)

    async def close(self) -> None:
        if self._outbox is not None:
            await self._run(self._outbox.close)
            self._outbox = None
        self._executor.shutdown(wait=True)

    async def __aenter__(self) -> AsyncOutbox:
        return await self.open()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
