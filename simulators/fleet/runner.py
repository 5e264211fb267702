"""Spread a virtual fleet over worker processes and gather their progress.

``run_fleet(spec)`` blocks until the run ends (``spec.duration_s`` then the drain, or
``stop`` set), calling ``on_progress`` with the merged counters about every
``spec.progress_interval_s``. Workers are *spawned* (no fork of a threaded parent),
each raises its file-descriptor limit and runs :class:`~simulators.fleet.worker.WorkerLoop`.
"""

from __future__ import annotations

import bisect
import logging
import multiprocessing as mp
import queue as queue_mod
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from simulators.fleet.spec import FleetSpec, GatewayPlan, default_sim_start, plan
from simulators.fleet.stats import WorkerStats, merged, most_in_window

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FleetProgress:
    elapsed_s: float
    #: Real seconds since the fleet started publishing (negative while connecting).
    publishing_s: float
    stats: WorkerStats
    workers_done: int


@dataclass
class FleetResult:
    spec: FleetSpec
    run_id: str
    sim_start: datetime
    started_at: datetime
    elapsed_s: float
    connect_s: float
    stats: WorkerStats
    #: (seconds since start, counters) about every progress interval.
    timeline: list[tuple[float, WorkerStats]] = field(default_factory=list)
    workers_lost: int = 0

    def _at(self, t: float) -> WorkerStats:
        times = [p[0] for p in self.timeline]
        i = max(0, min(len(times) - 1, bisect.bisect_left(times, t)))
        return self.timeline[i][1] if self.timeline else self.stats

    def window_rates(self) -> dict[str, float]:
        """Messages per real second between the end of the connect ramp and the end of
        publishing (the sustained rate)."""
        start = self.connect_s
        hi = start + (self.spec.duration_s or max(self.elapsed_s - start, 0.0))
        # Skip the first batch interval: every gateway's first batch is still coming due.
        lo = start + self.spec.batch_interval_s
        if hi - lo < self.spec.batch_interval_s:
            lo = start
        a, b = self._at(lo), self._at(hi)
        t_a = self.timeline[self._index(lo)][0] if self.timeline else 0.0
        t_b = self.timeline[self._index(hi)][0] if self.timeline else self.elapsed_s
        span = max(t_b - t_a, 1e-9)
        return {
            "window_s": round(span, 3),
            "batches": (b.batches - a.batches) / span,
            "sent": (b.sent - a.sent) / span,
            "acked": (b.acked - a.acked) / span,
            "stored": (b.stored - a.stored) / span,
            "values_stored": (b.stored_values - a.stored_values) / span,
            "worker_cpu_pct": 100 * (b.cpu_s - a.cpu_s) / span,
            "cpu_us_per_acked": 1e6 * (b.cpu_s - a.cpu_s) / max(b.acked - a.acked, 1),
        }

    def _index(self, t: float) -> int:
        times = [p[0] for p in self.timeline]
        return max(0, min(len(times) - 1, bisect.bisect_left(times, t)))

    def summary(self) -> dict[str, Any]:
        s = self.stats
        rates = {k: round(v, 1) for k, v in self.window_rates().items()}
        return {
            "run_id": self.run_id,
            "started_at": self.started_at.isoformat(),
            "sim_start": self.sim_start.isoformat(),
            "gateways": self.spec.count,
            "workers": self.spec.workers,
            "regions": {r.value: w for r, w in self.spec.regions.items()},
            "cadence_s": self.spec.cadence_s,
            "samples_per_batch": self.spec.samples_per_batch,
            "speed": self.spec.speed,
            "duration_s": self.spec.duration_s,
            "nominal_rate_per_s": round(self.spec.nominal_rate, 1),
            "expect_stored": self.spec.expect_stored,
            "outages": [o.model_dump() for o in self.spec.outages],
            "connect_s": round(self.connect_s, 3),
            "elapsed_s": round(self.elapsed_s, 3),
            "connects": s.connects,
            "connect_failures": s.connect_failures,
            "disconnects": s.disconnects,
            "reconnects": len(s.reconnect_times),
            "most_reconnects_in_1s": most_in_window(s.reconnect_times, 1.0),
            "batches": s.batches,
            "readings": s.readings,
            "values": s.values,
            "sent": s.sent,
            "resends": s.resends,
            "backfilled": s.backfilled,
            "refused": s.refused,
            "acked": s.acked,
            "stored": s.stored,
            "stored_readings": s.stored_readings,
            "stored_values": s.stored_values,
            "unstored": s.unstored,
            "workers_lost": self.workers_lost,
            "control": {
                "commands": s.commands,
                "configs": s.configs,
                "cmd_acks": s.cmd_acks,
                "config_states": s.config_states,
                "unanswered": s.control_unanswered,
                "stored": s.control_stored,
                "trusted_keys": len(self.spec.trusted_key_files),
                "failing_gateways": sum(1 for p in plan(self.spec) if p.fails),
            },
            "rates_per_s": rates,
            "latency_ms": {
                "publish_to_puback": s.puback_latency.summary_ms(),
                "publish_to_stored": s.stored_latency.summary_ms(),
            },
        }


def _worker_main(
    spec: FleetSpec,
    plans: list[GatewayPlan],
    sim_start: datetime,
    run_id: str,
    worker: int,
    out: Any,
    stop: Any,
) -> None:
    from simulators.fleet.worker import WorkerLoop, raise_fd_limit

    logging.basicConfig(level=logging.WARNING, format=f"fleet-worker-{worker} %(message)s")
    raise_fd_limit()
    loop = WorkerLoop(
        spec,
        plans,
        sim_start,
        should_stop=stop.is_set,
        report=lambda stats, final: out.put((worker, stats, final)),
        run_id=run_id,
    )
    loop.run()


def run_fleet(
    spec: FleetSpec,
    *,
    sim_start: datetime | None = None,
    on_progress: Callable[[FleetProgress], None] | None = None,
    stop: threading.Event | None = None,
    run_id: str | None = None,
) -> FleetResult:
    """Run the fleet in ``spec.workers`` processes; see the module docstring."""
    ctx = mp.get_context("spawn")
    run_id = run_id or uuid.uuid4().hex[:12]
    started_at = datetime.now(UTC)
    sim_start = sim_start or spec.sim_start or default_sim_start(spec, started_at)
    plans = plan(spec)
    workers = min(spec.workers, spec.count)
    out = ctx.Queue()
    stop_flag = ctx.Event()
    procs = [
        ctx.Process(
            target=_worker_main,
            args=(spec, plans[w::workers], sim_start, run_id, w, out, stop_flag),
            name=f"fleet-worker-{w}",
            daemon=True,
        )
        for w in range(workers)
    ]
    for p in procs:
        p.start()
    # Workers import for a while; the publishing clock is theirs, so time from their
    # first report (which comes as soon as each worker's loop starts).
    t_start = time.monotonic()
    latest: dict[int, WorkerStats] = {}
    final: set[int] = set()
    timeline: list[tuple[float, WorkerStats]] = []
    ramp_s = spec.count / spec.connect_rate
    budget = 120.0 + ramp_s + (spec.duration_s or 1e9) + spec.drain_timeout_s + 10.0
    loop_started: float | None = None
    next_tick = 0.0
    lost = 0
    try:
        while len(final) < workers:
            if stop is not None and stop.is_set():
                stop_flag.set()
            try:
                w, raw, is_final = out.get(timeout=0.1)
                latest[w] = WorkerStats.from_wire(raw)
                if loop_started is None:
                    loop_started = time.monotonic()
                if is_final:
                    final.add(w)
            except queue_mod.Empty:
                pass
            now = time.monotonic()
            dead = [i for i, p in enumerate(procs) if not p.is_alive() and i not in final]
            if dead and out.empty():
                log.error("fleet workers %s ended without a final report", dead)
                lost = len(dead)
                final.update(dead)
            if now - t_start > budget:
                log.error("fleet run exceeded %.0fs; stopping workers", budget)
                stop_flag.set()
                break
            if loop_started is not None and now >= next_tick:
                next_tick = now + spec.progress_interval_s / 2
                total = merged(list(latest.values()))
                timeline.append((now - loop_started, total))
                if on_progress is not None:
                    on_progress(
                        FleetProgress(
                            now - loop_started, now - loop_started - ramp_s, total, len(final)
                        )
                    )
    finally:
        stop_flag.set()
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.terminate()
                p.join(timeout=5)
    elapsed = time.monotonic() - (loop_started or t_start)
    total = merged(list(latest.values()))
    timeline.append((elapsed, total))
    return FleetResult(
        spec=spec,
        run_id=run_id,
        sim_start=sim_start,
        started_at=started_at,
        elapsed_s=elapsed,
        connect_s=ramp_s,
        stats=total,
        timeline=timeline,
        workers_lost=lost,
    )
