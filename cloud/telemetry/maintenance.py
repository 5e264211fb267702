"""The telemetry store's maintenance job: rollups caught up with what was written,
retention, partition upkeep (plain), compression and retention policies (timescale).

One runner per database at a time, whatever the number of processes that schedule it:
each run holds a session advisory lock on its one connection and a process that does
not get it skips the run. Every step logs what it did and adds to
:class:`MaintenanceStats`, which the process exposes.

On TimescaleDB the server's scheduler runs the compression, retention and refresh
policies; the job sets the policies' ages from the settings at its first run (so a
changed setting takes effect on the next start) and, where the server has no scheduler
(``POTR_TELEMETRY_RUN_POLICY_JOBS``; PGlite), runs those jobs itself.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from cloud.adapters.postgres import Connection, ConnectionPool, sql
from cloud.migrate import Backend
from cloud.telemetry.rollups import RollupRefresher
from cloud.telemetry.settings import StoreSettings
from cloud.telemetry.store import TelemetryStore, partition_name, partition_names, store_backend

__all__ = ["MaintenanceStats", "StoreMaintenance"]

log = logging.getLogger(__name__)

#: "potrmnt" — the advisory lock key of the telemetry maintenance job.
LOCK_KEY = 0x706F74726D6E74
_PARTITION_RE = re.compile(r"readings_\d{8}")


@dataclass
class MaintenanceStats:
    """Counters since start (they only grow) and the last run's duration."""

    runs: int = 0
    skipped_locked: int = 0
    failures: int = 0
    dirty_rows: int = 0
    partitions_created: int = 0
    partitions_dropped: int = 0
    rollup_rows_deleted: int = 0
    policy_jobs_run: int = 0
    last_run_s: float = 0.0
    #: After the last run: dirty ranges left (open buckets waiting, or what a loaded
    #: machine has not let the job reach) and the age of the oldest, seconds.
    backlog_rows: int = 0
    backlog_age_s: float = 0.0


class StoreMaintenance:
    def __init__(
        self,
        pool: ConnectionPool[Connection[Any]],
        settings: StoreSettings,
        *,
        store: TelemetryStore | None = None,
        backend: Backend | None = None,
    ) -> None:
        self._pool = pool
        self._settings = settings
        self._backend = backend
        self._store = store
        self._policies_set = False
        self.stats = MaintenanceStats()

    def backend(self, conn: Connection[Any]) -> Backend:
        if self._backend is None:
            self._backend = store_backend(conn)
        return self._backend

    def run_once(self, now: datetime | None = None) -> bool:
        """One run if no other runner holds the lock; False when skipped."""
        now = now or datetime.now(UTC)
        started = time.monotonic()
        with self._pool.connection() as conn:
            # Each step commits its own transactions: one long transaction would hold the
            # locks of what it read while the store creates partitions beside it.
            conn.autocommit = True
            try:
                got = conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()
                if not (got and got[0]):
                    self.stats.skipped_locked += 1
                    return False
                try:
                    self._steps(conn, now)
                finally:
                    conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
            finally:
                conn.autocommit = False
        self.stats.runs += 1
        self.stats.last_run_s = time.monotonic() - started
        return True

    def run_until(self, stop: threading.Event) -> None:
        """Every ``telemetry_maintenance_interval_s`` until ``stop`` is set; a failed run
        is logged and the next one tries again."""
        while not stop.wait(self._settings.telemetry_maintenance_interval_s):
            try:
                self.run_once()
            except Exception:
                self.stats.failures += 1
                log.exception("telemetry maintenance failed; trying again next round")

    # -- the steps ------------------------------------------------------------------------
    def _steps(self, conn: Connection[Any], now: datetime) -> None:
        backend = self.backend(conn)
        wait = timedelta(seconds=self._settings.telemetry_open_bucket_wait_s)
        consumed = RollupRefresher(backend, open_wait=wait).catch_up(conn, now=now)
        self.stats.dirty_rows += consumed
        if consumed:
            log.info("telemetry maintenance: rollups caught up with %d dirty range(s)", consumed)
        self._note_backlog(conn, now, wait)
        if backend == "plain":
            self._plain_upkeep(conn, now)
        else:
            self._timescale_upkeep(conn)

    def _note_backlog(self, conn: Connection[Any], now: datetime, wait: timedelta) -> None:
        """What is left in ``telemetry.dirty``; a warning when its oldest range is older
        than the open-bucket wait and ten runs: the job is not keeping up (under
        saturation, niced, it yields to ingest: ARCHITECTURE decision 57)."""
        row = conn.execute("SELECT count(*), min(noted_at) FROM telemetry.dirty").fetchone()
        rows, oldest = (int(row[0]), row[1]) if row else (0, None)
        age = max((now - oldest).total_seconds(), 0.0) if oldest is not None else 0.0
        self.stats.backlog_rows, self.stats.backlog_age_s = rows, age
        behind = wait.total_seconds() + 10 * self._settings.telemetry_maintenance_interval_s
        if age > behind:
            log.warning(
                "telemetry maintenance is behind: %d dirty range(s), the oldest %.0f s old",
                rows,
                age,
            )

    def _plain_upkeep(self, conn: Connection[Any], now: datetime) -> None:
        s = self._settings
        today = now.astimezone(UTC).date()
        if self._store is not None:
            created = self._store.create_ahead(today)
            self.stats.partitions_created += len(created)
        dropped = drop_partitions_before(
            conn, today - timedelta(days=s.telemetry_raw_retention_days)
        )
        self.stats.partitions_dropped += len(dropped)
        deleted = 0
        for relation, days in (
            ("rollup_5m", s.telemetry_5m_retention_days),
            ("rollup_1h", s.telemetry_1h_retention_days),
        ):
            cur = conn.execute(
                sql.SQL("DELETE FROM telemetry.{} WHERE bucket < %s").format(
                    sql.Identifier(relation)
                ),
                (now - timedelta(days=days),),
            )
            deleted += max(cur.rowcount, 0)
        self.stats.rollup_rows_deleted += deleted
        if dropped or deleted:
            log.info(
                "telemetry maintenance: dropped %d raw partition(s), %d old rollup row(s)",
                len(dropped),
                deleted,
            )

    def _timescale_upkeep(self, conn: Connection[Any]) -> None:
        if not self._policies_set:
            set_policies(conn, self._settings)
            self._policies_set = True
        if self._settings.telemetry_run_policy_jobs:
            ran = run_policy_jobs(conn)
            self.stats.policy_jobs_run += ran


def drop_partitions_before(conn: Connection[Any], first_kept: date) -> list[date]:
    """Drop the raw day partitions of days before ``first_kept``; the days dropped."""
    days = sorted(
        datetime.strptime(name[9:], "%Y%m%d").date()
        for name in partition_names(conn)
        if _PARTITION_RE.fullmatch(name)
    )
    dropped = [d for d in days if d < first_kept]
    for day in dropped:
        conn.execute(sql.SQL("DROP TABLE telemetry.{}").format(sql.Identifier(partition_name(day))))
    return dropped


def set_policies(conn: Connection[Any], settings: StoreSettings) -> None:
    """Compression after ``telemetry_compress_after_days`` and the retentions, replacing
    whatever policies were there (so a changed setting takes effect)."""
    days = {
        "telemetry.readings": settings.telemetry_raw_retention_days,
        "telemetry.rollup_5m": settings.telemetry_5m_retention_days,
        "telemetry.rollup_1h": settings.telemetry_1h_retention_days,
    }
    conn.execute("SELECT remove_compression_policy('telemetry.readings', if_exists => true)")
    conn.execute(
        "SELECT add_compression_policy('telemetry.readings', %s::interval)",
        (timedelta(days=settings.telemetry_compress_after_days),),
    )
    for relation, kept in days.items():
        conn.execute("SELECT remove_retention_policy(%s::regclass, if_exists => true)", (relation,))
        conn.execute(
            "SELECT add_retention_policy(%s::regclass, %s::interval)",
            (relation, timedelta(days=kept)),
        )
    log.info(
        "telemetry maintenance: compression after %d day(s); retention raw %d, 5 min %d,"
        " 1 h %d day(s)",
        settings.telemetry_compress_after_days,
        *days.values(),
    )


def run_policy_jobs(conn: Connection[Any]) -> int:
    """Run the telemetry policies' jobs now (servers without a scheduler); the number run.
    Refresh policies first, then compression, then retention."""
    rows = conn.execute(
        "SELECT job_id, proc_name FROM timescaledb_information.jobs"
        " WHERE proc_name IN ('policy_refresh_continuous_aggregate', 'policy_compression',"
        " 'policy_retention') ORDER BY CASE proc_name"
        " WHEN 'policy_refresh_continuous_aggregate' THEN 0 WHEN 'policy_compression' THEN 1"
        " ELSE 2 END, job_id"
    ).fetchall()
    autocommit = conn.autocommit
    conn.autocommit = True  # run_job commits inside
    try:
        for job_id, _ in rows:
            # A literal: PGlite's run_job takes no bound parameter (storage.md).
            conn.execute(sql.SQL("CALL run_job({})").format(sql.Literal(int(job_id))))
    finally:
        conn.autocommit = autocommit
    return len(rows)
