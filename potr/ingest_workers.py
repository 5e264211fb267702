"""``potr ingest --workers N``: N ingest worker processes on the shared subscription.

Each process runs one :class:`cloud.ingest.IngestWorker` (paho thread → writer thread →
PostgreSQL) with its own pools and its own MQTT client id,
``<POTR_MQTT_CLIENT_ID>-<n>`` (the plain id when N = 1), so each keeps a persistent
session: a worker that dies is restarted under the same id and the broker redelivers
what it had not acknowledged.

Each worker also has its own broker identity when the settings name a user
(``POTR_MQTT_USERNAME``, or the URL's): ``<user>-<n>`` for every N, e.g. ``_ingest/au``
→ ``_ingest/au-0``, ``_ingest/au-1``. The brokers bind client ids to usernames
(``use_username_as_clientid``), so two processes sharing one username would kick each
other off in a loop. Each worker reads its own password from
``POTR_MQTT_CREDENTIALS_FILE`` when it connects (:mod:`cloud.credentials`; else
``POTR_MQTT_PASSWORD``, the same for all); the supervisor checks every worker has one
before it starts any. Processes, not threads: one Python process tops out near
one core, and the per-reading work (parse, validate, build rows, ``COPY``) is CPU-bound.

The supervisor restarts a dead worker with exponential back-off (1 s … 30 s) and stops
them all with SIGTERM, then SIGKILL by pid after a timeout.

Beside the workers it runs the telemetry store's maintenance job in a process of its own
at a lower CPU priority (``POTR_TELEMETRY_MAINTENANCE_NICE``, 10), watched and restarted
like a worker: at saturation the workers come first and what the job has not computed yet
waits in ``telemetry.dirty`` (ARCHITECTURE decision 57); the workers then run no
maintenance thread.

TEST ONLY: ``POTR_INGEST_TEST_CRASH_AFTER_COMMIT=N`` makes worker 0's first process
SIGKILL itself right after its N-th committed batch, before the acknowledgement
(reliability scenario 7); its restart runs normally.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing as mp
import os
import queue as queue_mod
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from cloud.ingest import IngestSettings
from cloud.ingest.worker import CRASH_AFTER_COMMIT_ENV
from cloud.settings import CredentialsError
from pacing import Backoff

log = logging.getLogger(__name__)
RESTART_MIN_S = 1.0
RESTART_MAX_S = 30.0
#: One process restarting itself: plain doubling, nobody to spread out.
_RESTART = Backoff(RESTART_MIN_S, RESTART_MAX_S, jitter="none")


def client_id(settings: IngestSettings, index: int) -> str:
    """Worker ``index``'s MQTT client id (stable across restarts: its session)."""
    if settings.ingest_workers == 1:
        return settings.mqtt_client_id
    return f"{settings.mqtt_client_id}-{index}"


def worker_settings(settings: IngestSettings, index: int) -> IngestSettings:
    """Worker ``index``'s settings: its client id and, when a user is named, its own
    identity ``<user>-<index>`` (stable across restarts, like its session)."""
    update: dict[str, Any] = {"mqtt_client_id": client_id(settings, index)}
    user = settings.mqtt_user
    if user is not None:
        update["mqtt_username"] = f"{user}-{index}"
    return settings.model_copy(update=update)


def check_identities(settings: IngestSettings) -> list[str]:
    """Every worker's username (empty: anonymous), once each worker's password is found;
    :class:`~cloud.settings.CredentialsError` names the first one missing."""
    users = []
    for index in range(settings.ingest_workers):
        user, password = worker_settings(settings, index).mqtt_credentials()
        if user is None:
            continue
        if password is None and settings.mqtt.password is not None:
            # The URL's password is its own user's, not the workers' identities'.
            raise CredentialsError(
                f"no password for ingest worker identity {user}: put one per worker in"
                " POTR_MQTT_CREDENTIALS_FILE"
            )
        users.append(user)
    return users


def _worker_main(settings: IngestSettings, index: int, ready: Any, crash_after: int | None) -> None:
    """One worker process: serve until SIGTERM arrives."""
    from cloud.bootstrap import create_ingest_worker

    logging.basicConfig(
        level=logging.INFO, format=f"ingest-{index} %(levelname)s %(name)s: %(message)s"
    )
    # A local event, not a multiprocessing one: a sibling SIGKILLed while waiting on a
    # shared Event leaves its semaphores inconsistent and ``set()`` would hang.
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor decides
    worker = create_ingest_worker(settings, crash_after_commit=crash_after)
    try:
        worker.start(timeout_s=30)
        ready.put(index)
        while not stop.wait(0.5):
            pass
    finally:
        worker.stop()


def _maintenance_main(
    settings: IngestSettings, index: int, ready: Any, crash_after: int | None
) -> None:
    """The store's maintenance, niced, until SIGTERM arrives (between two runs)."""
    from cloud.bootstrap import create_store_maintenance

    logging.basicConfig(
        level=logging.INFO, format="ingest-maintenance %(levelname)s %(name)s: %(message)s"
    )
    os.nice(settings.telemetry_maintenance_nice)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor decides
    maintenance, pool = create_store_maintenance(settings)
    try:
        ready.put(index)
        maintenance.run_until(stop)
    finally:
        pool.close()


#: The maintenance process's slot index (workers count from 0).
MAINTENANCE = -1


@dataclass
class _Slot:
    index: int
    proc: Any = None
    starts: int = 0
    next_start: float = 0.0
    #: Restarts since the worker last ran fine for a while.
    failures: int = 0
    started_at: float = field(default=0.0)

    @property
    def label(self) -> str:
        return "maintenance" if self.index == MAINTENANCE else f"worker {self.index}"


class IngestSupervisor:
    """Start, watch and stop ``settings.ingest_workers`` worker processes; refuses
    (:class:`~cloud.settings.CredentialsError`) when a worker's password is missing."""

    def __init__(self, settings: IngestSettings) -> None:
        check_identities(settings)
        self._settings = settings
        self._ctx = mp.get_context("spawn")
        self._stopping = False
        self._ready: Any = self._ctx.Queue()
        self._slots = [_Slot(i) for i in range(settings.ingest_workers)] + [_Slot(MAINTENANCE)]
        self._ready_set: set[int] = set()
        raw = os.environ.get(CRASH_AFTER_COMMIT_ENV)
        self._crash_after = int(raw) if raw else None
        self.restarts = 0

    @property
    def pids(self) -> list[int]:
        """The live workers' process ids (not the maintenance process's)."""
        return [
            s.proc.pid
            for s in self._slots
            if s.index != MAINTENANCE and s.proc is not None and s.proc.is_alive()
        ]

    @property
    def maintenance_pid(self) -> int | None:
        proc = self._slots[-1].proc
        return proc.pid if proc is not None and proc.is_alive() else None

    def start(self) -> None:
        for slot in self._slots:
            self._spawn(slot)

    def _spawn(self, slot: _Slot) -> None:
        if slot.index == MAINTENANCE:
            target, settings, crash, name = (
                _maintenance_main,
                self._settings,
                None,
                "potr-ingest-maintenance",
            )
        else:
            target, name = _worker_main, f"potr-ingest-{slot.index}"
            settings = worker_settings(self._settings, slot.index).model_copy(
                update={"telemetry_maintenance_in_worker": False}
            )
            crash = self._crash_after if slot.index == 0 and slot.starts == 0 else None
        slot.proc = self._ctx.Process(
            target=target,
            args=(settings, slot.index, self._ready, crash),
            name=name,
            daemon=False,
        )
        slot.proc.start()
        slot.starts += 1
        slot.started_at = time.monotonic()
        log.info("ingest %s started (pid %s)", slot.label, slot.proc.pid)

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Block until every worker has subscribed once; raise on timeout."""
        deadline = time.monotonic() + timeout_s
        while len(self._ready_set) < len(self._slots):
            self.watch()
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"ingest workers ready: {sorted(self._ready_set)}")
            with contextlib.suppress(queue_mod.Empty):
                self._ready_set.add(self._ready.get(timeout=min(left, 0.2)))

    def watch(self) -> None:
        """Restart workers that died (with back-off); call it periodically."""
        if self._stopping:
            return
        now = time.monotonic()
        for slot in self._slots:
            proc = slot.proc
            if proc is None or proc.is_alive():
                if proc is not None and now - slot.started_at > 60:
                    slot.failures = 0  # ran fine for a while
                continue
            if slot.next_start == 0.0:
                slot.failures += 1
                delay = _RESTART.delay(slot.failures)
                log.error(
                    "ingest %s (pid %s) exited with %s; restarting in %.0f s",
                    slot.label,
                    proc.pid,
                    proc.exitcode,
                    delay,
                )
                slot.next_start = now + delay
            elif now >= slot.next_start:
                slot.next_start = 0.0
                self.restarts += 1
                self._spawn(slot)

    def stop(self, timeout_s: float = 20.0) -> None:
        """SIGTERM every worker (it finishes its batch and goes); SIGKILL what remains."""
        self._stopping = True
        for slot in self._slots:
            if slot.proc is not None and slot.proc.is_alive():
                slot.proc.terminate()
        deadline = time.monotonic() + timeout_s
        for slot in self._slots:
            if slot.proc is None:
                continue
            slot.proc.join(max(0.1, deadline - time.monotonic()))
            if slot.proc.is_alive():
                log.error("ingest %s did not stop; killing pid %s", slot.label, slot.proc.pid)
                slot.proc.kill()
                slot.proc.join(5)
        self._ready.close()


async def run_ingest_workers(
    settings: IngestSettings, stop: asyncio.Event, *, ready: asyncio.Event | None = None
) -> None:
    """Run the workers until ``stop`` is set, restarting any that die."""
    supervisor = IngestSupervisor(settings)
    supervisor.start()
    try:
        await asyncio.to_thread(supervisor.wait_ready)
        if ready is not None:
            ready.set()
        while not stop.is_set():
            supervisor.watch()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)
    finally:
        await asyncio.to_thread(supervisor.stop)
