"""Billing cycles started by a person (the admins' screen, REST) and run in the background.

:meth:`BillingService.run_cycle` is blocking and may take minutes for a large region, so
:meth:`CycleRunner.start` records the cycle (an address to follow at once) and runs it in
a thread of its own, answering straight away. What a start answers:

* ``started`` — a new cycle, now running; ``resumed`` — a cycle recorded as running that
  no thread of this process runs (an interrupted run, or one started elsewhere: the
  region's advisory lock makes a second runner wait and then find the period billed,
  so nothing is billed twice);
* ``running`` — this process runs that cycle already, or has it queued: no second run;
* ``already_billed`` — the period was billed: nothing to do.

A started cycle waits for the region's cycles started before it (one worker thread per
region runs them in order). Refused: a period that has not ended in every time zone of
the region (:class:`PeriodNotEndedError`: billing it would miss its last hours), a period
that is no month or quarter (``ValueError``), and starts after :meth:`CycleRunner.close`
(:class:`RunnerClosedError`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from cloud.billing.cycles import CyclesReader, CycleSummary
from cloud.billing.rating import BillingPeriod
from cloud.billing.readings import local_midnight
from cloud.billing.service import BillingService, period_of
from cloud.billing.tariffs import BillingCycle
from cloud.calendars import builtin_calendar
from contracts.timeutil import utc_now
from contracts.topics import Region

__all__ = [
    "CycleRunner",
    "CycleStart",
    "PeriodNotEndedError",
    "RunnerClosedError",
    "period_ends_at",
    "region_zones",
]

log = logging.getLogger(__name__)

StartOutcome = Literal["started", "resumed", "running", "already_billed"]


@dataclass(frozen=True, slots=True)
class CycleStart:
    outcome: StartOutcome
    cycle: CycleSummary


class PeriodNotEndedError(ValueError):
    """The period has not ended everywhere in the region: ``ends_at`` (UTC) it will."""

    def __init__(self, period: BillingPeriod, ends_at: datetime) -> None:
        super().__init__(
            f"the period {period.first_day}..{period.last_day} has not ended in every time"
            f" zone of the region: it ends at {ends_at.isoformat()}"
        )
        self.ends_at = ends_at


class RunnerClosedError(RuntimeError):
    """The runner is closing: no new runs."""


def region_zones(region: Region) -> tuple[ZoneInfo, ...]:
    """The IANA zones of the region's jurisdictions (its business calendar's)."""
    calendar = builtin_calendar(region)
    return tuple({str(z): z for z in map(calendar.time_zone, calendar.jurisdictions)}.values())


def period_ends_at(period: BillingPeriod, zones: Collection[ZoneInfo]) -> datetime:
    """The instant the period has ended in every zone: the latest local midnight after
    its last day (UTC-aware)."""
    after = period.last_day + timedelta(days=1)
    return max(local_midnight(after, zone) for zone in zones)


@dataclass(frozen=True, slots=True)
class _Queued:
    cycle_id: int
    first_day: date
    cycle: BillingCycle
    run_by: str


class CycleRunner:
    """Runs ``service``'s cycles in background threads: one worker per region at a time,
    taking that region's started cycles in order (a cycle waits for the region's earlier
    ones, as it would for the region's lock, without holding a connection). ``reader``
    answers what a start returns; ``zones``: each region's time zones (default: its
    business calendar's). Close it (:meth:`close`) before the pool: the run is asked to
    stop between two sites, the queued ones stay recorded (a later start resumes them)."""

    def __init__(
        self,
        service: BillingService,
        reader: CyclesReader,
        *,
        zones: Mapping[Region, Collection[ZoneInfo]] | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._service = service
        self._reader = reader
        self._zones = dict(zones) if zones is not None else {}
        self._clock = clock
        self._lock = threading.Lock()
        #: Per region, the cycles started and not yet run to their end (the first runs).
        self._queues: dict[Region, deque[_Queued]] = {}
        self._workers: dict[Region, threading.Thread] = {}
        self._stop = threading.Event()

    @property
    def reader(self) -> CyclesReader:
        return self._reader

    def period_ends_at(self, region: Region, period: BillingPeriod) -> datetime:
        zones = self._zones.get(region) or region_zones(region)
        return period_ends_at(period, zones)

    def start(
        self, region: Region, first_day: date, cycle: BillingCycle, run_by: str
    ) -> CycleStart:
        """Start (or find) ``region``'s cycle of the period starting ``first_day``
        (module docstring); blocking (a few queries), call from a thread."""
        period = period_of(first_day, cycle)  # ValueError: no month or quarter start
        ends = self.period_ends_at(region, period)
        if self._clock() < ends:
            raise PeriodNotEndedError(period, ends)
        with self._lock:
            if self._stop.is_set():
                raise RunnerClosedError("the billing-cycle runner is closing")
            found = self._reader.find(region, period.first_day, period.last_day)
            queue = self._queues.setdefault(region, deque())
            if found is not None and found.state == "billed":
                return CycleStart("already_billed", found)
            if found is not None and any(q.cycle_id == found.id for q in queue):
                return CycleStart("running", found)
            cycle_id = self._service.open_cycle(region, first_day, run_by=run_by, cycle=cycle)
            queue.append(_Queued(cycle_id, first_day, cycle, run_by))
            worker = self._workers.get(region)
            if worker is None or not worker.is_alive():
                worker = threading.Thread(
                    target=self._work,
                    args=(region,),
                    name=f"billing-cycles-{region.value}",
                    daemon=True,  # close() waits; a process that exits anyway resumes later
                )
                self._workers[region] = worker
                worker.start()
        log.info("billing cycle %s %s (%s) started by %s", region.value, first_day, cycle, run_by)
        return CycleStart("resumed" if found else "started", self._summary(region, cycle_id))

    def _summary(self, region: Region, cycle_id: int) -> CycleSummary:
        found = self._reader.summary(region, cycle_id)
        assert found is not None  # recorded before any run, never deleted
        return found

    def _work(self, region: Region) -> None:
        """Run the region's queued cycles, oldest start first, until none is left (or
        the runner closes)."""
        while not self._stop.is_set():
            with self._lock:
                queue = self._queues.get(region)
                if not queue:
                    self._workers.pop(region, None)
                    return
                job = queue[0]
            try:
                self._service.run_cycle(
                    region, job.first_day, run_by=job.run_by, cycle=job.cycle,
                    stop=self._stop.is_set,
                )  # fmt: skip
            except Exception:  # the worker's end: nobody else would hear of it
                log.exception("billing cycle %s %s failed", region.value, job.first_day)
            finally:
                with self._lock:
                    queue.popleft()

    def running(self) -> list[int]:
        """The ids of the cycles this process runs or will run, the running ones first."""
        with self._lock:
            return [q.cycle_id for queue in self._queues.values() for q in queue]

    def wait(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for every started cycle to end; whether they all did."""
        deadline = time.monotonic() + timeout_s
        while True:
            with self._lock:
                workers = [w for w in self._workers.values() if w.is_alive()]
            if not workers:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            workers[0].join(left)

    def close(self, timeout_s: float = 30.0) -> None:
        """Refuse new starts, ask the running cycle of each region to stop after its
        current site (it stays running: the next start resumes it) and wait up to
        ``timeout_s``."""
        self._stop.set()
        if not self.wait(timeout_s):
            log.warning("billing cycles still running after %.0f s: %s", timeout_s, self.running())
