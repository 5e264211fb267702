"""Durable control state: seen command ids, the last handled config, effective settings.

Its own SQLite file next to the buffer (rollback journal, ``synchronous=FULL``), not tables inside
the buffer: the buffer is moved aside and replaced when it fails its integrity check (a
new stream starts), but forgetting seen ids or the applied config version there would
let a replayed command or a stale config through. The two files also have different
writers (the outbox thread, the control task), so neither waits on the other's fsync.

Blocking; the control task calls it from one worker thread (:func:`ControlStore.io`).
``remember`` commits before it returns, so an id is durable before any write it allows.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import orjson

__all__ = ["ControlStore", "HandledConfig", "control_store_path"]

T = TypeVar("T")
log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS seen_commands (
    id TEXT PRIMARY KEY,
    expires_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS handled_config (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER,
    hash TEXT,
    state TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS inflight_commands (
    id TEXT PRIMARY KEY,
    device TEXT NOT NULL,
    name TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS effective_settings (
    device TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    settings TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS pending_settings (
    device TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    settings TEXT NOT NULL
);
"""


def control_store_path(buffer_path: Path) -> Path:
    """``<buffer>-control.sqlite`` beside the buffer file."""
    return buffer_path.with_name(f"{buffer_path.stem}-control.sqlite")


class HandledConfig:
    """The last handled config: version, hash and the ``config_state`` body (without
    ``stream_id``/``seq``/``ts``)."""

    def __init__(self, version: int | None, hash_: str | None, state: dict[str, Any]) -> None:
        self.version = version
        self.hash = hash_
        self.state = state


class ControlStore:
    """Implements :class:`contracts.control.SeenStore` plus config bookkeeping."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        # A rollback journal, not WAL: the store is written a few times a day, so it
        # keeps no -wal/-shm files around taking space from the buffer on a full disk.
        self._db.execute("PRAGMA journal_mode=DELETE")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="control-store")

    async def io(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the store's thread (blocking SQLite + fsync off the loop)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, partial(fn, *args))

    # ----- SeenStore ----------------------------------------------------------------------
    def remember(self, command_id: UUID, expires_at: datetime) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO seen_commands (id, expires_at) VALUES (?, ?)",
            (str(command_id), expires_at.isoformat()),
        )

    def forget(self, command_ids: Iterable[UUID]) -> None:
        self._db.executemany(
            "DELETE FROM seen_commands WHERE id = ?", [(str(c),) for c in command_ids]
        )

    def seen(self) -> list[tuple[UUID, datetime]]:
        return [
            (UUID(i), datetime.fromisoformat(e))
            for i, e in self._db.execute("SELECT id, expires_at FROM seen_commands")
        ]

    # ----- commands being executed ---------------------------------------------------------
    def begin(self, command_id: UUID, device: str, name: str) -> None:
        """Durable before the first write: a crash before :meth:`finish` is reported."""
        self._db.execute(
            "INSERT OR REPLACE INTO inflight_commands (id, device, name) VALUES (?, ?, ?)",
            (str(command_id), device, name),
        )

    def finish(self, command_id: UUID) -> None:
        self._db.execute("DELETE FROM inflight_commands WHERE id = ?", (str(command_id),))

    def inflight(self) -> list[tuple[UUID, str, str]]:
        """Commands whose final ack was never buffered (the agent stopped mid-way)."""
        return [
            (UUID(i), d, n)
            for i, d, n in self._db.execute("SELECT id, device, name FROM inflight_commands")
        ]

    # ----- configs --------------------------------------------------------------------------
    def handled(self) -> HandledConfig | None:
        row = self._db.execute(
            "SELECT version, hash, state FROM handled_config WHERE id = 1"
        ).fetchone()
        if row is None:
            return None
        return HandledConfig(row[0], row[1], orjson.loads(row[2]))

    def save_handled(
        self,
        handled: HandledConfig,
        effective: dict[str, dict[str, Any]] | None = None,
        pending: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        """Record a handled config and (atomically with it) the devices it applied on;
        ``pending`` (when given) replaces the settings kept for unreachable devices."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute(
                "INSERT OR REPLACE INTO handled_config (id, version, hash, state)"
                " VALUES (1, ?, ?, ?)",
                (handled.version, handled.hash, orjson.dumps(handled.state)),
            )
            for device, settings in (effective or {}).items():
                self._db.execute(
                    "INSERT OR REPLACE INTO effective_settings (device, version, settings)"
                    " VALUES (?, ?, ?)",
                    (device, handled.version or 0, orjson.dumps(settings)),
                )
            if pending is not None:
                self._db.execute("DELETE FROM pending_settings")
                for device, settings in pending.items():
                    self._db.execute(
                        "INSERT INTO pending_settings (device, version, settings) VALUES (?, ?, ?)",
                        (device, handled.version or 0, orjson.dumps(settings)),
                    )
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise

    def effective(self) -> dict[str, dict[str, Any]]:
        """Per device, the settings of the last config applied on it."""
        return {
            device: orjson.loads(settings)
            for device, settings in self._db.execute(
                "SELECT device, settings FROM effective_settings"
            )
        }

    def pending(self) -> dict[str, dict[str, Any]]:
        """Per device, the settings of the handled config still to apply on it (it did
        not answer when the config came: asleep or unreachable)."""
        return {
            device: orjson.loads(settings)
            for device, settings in self._db.execute(
                "SELECT device, settings FROM pending_settings"
            )
        }

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self._db.close()
