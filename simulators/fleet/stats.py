"""Fleet counters and latency histograms: cheap to update, mergeable across workers.

Counts are of *unique* batches (a resend is counted under ``resends``, not again under
``sent``); ``values`` are non-null metric values, i.e. the rows the telemetry store gets.
Control messages (``cmd_ack``, ``config_state``) share the gateway's stream but have
their own counters, so the telemetry counts stay those of telemetry batches.
Latencies are real seconds, kept in log-spaced buckets (≈ 2.5 % resolution).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

#: Reconnect times kept per worker (a 10,000-gateway storm fits; beyond, they are counted).
RECONNECT_TIMES_MAX = 100_000
_RATIO = 1.05
_MIN_S = 1e-5
_BUCKETS = 400  # 10 µs … ≈ 3 h


@dataclass
class LatencyHistogram:
    counts: list[int] = field(default_factory=lambda: [0] * _BUCKETS)
    n: int = 0
    total_s: float = 0.0
    max_s: float = 0.0

    def add(self, seconds: float) -> None:
        s = max(seconds, 0.0)
        i = 0 if s <= _MIN_S else min(_BUCKETS - 1, int(math.log(s / _MIN_S, _RATIO)) + 1)
        self.counts[i] += 1
        self.n += 1
        self.total_s += s
        self.max_s = max(self.max_s, s)

    def merge(self, other: LatencyHistogram) -> None:
        for i, c in enumerate(other.counts):
            self.counts[i] += c
        self.n += other.n
        self.total_s += other.total_s
        self.max_s = max(self.max_s, other.max_s)

    def quantile(self, q: float) -> float | None:
        """Upper edge of the bucket holding the ``q`` quantile (seconds), None if empty."""
        if self.n == 0:
            return None
        rank = q * self.n
        seen = 0
        for i, c in enumerate(self.counts):
            seen += c
            if seen >= rank and c:
                return min(_MIN_S * _RATIO**i, self.max_s)
        return self.max_s

    def summary_ms(self) -> dict[str, float | int | None]:
        def ms(v: float | None) -> float | None:
            return None if v is None else round(v * 1000, 3)

        return {
            "n": self.n,
            "mean": ms(self.total_s / self.n) if self.n else None,
            "p50": ms(self.quantile(0.5)),
            "p90": ms(self.quantile(0.9)),
            "p99": ms(self.quantile(0.99)),
            "max": ms(self.max_s) if self.n else None,
        }

    def to_wire(self) -> dict[str, Any]:
        nz = {i: c for i, c in enumerate(self.counts) if c}
        return {"nz": nz, "n": self.n, "total_s": self.total_s, "max_s": self.max_s}

    @classmethod
    def from_wire(cls, raw: dict[str, Any]) -> LatencyHistogram:
        h = cls()
        for i, c in raw["nz"].items():
            h.counts[int(i)] = c
        h.n, h.total_s, h.max_s = raw["n"], raw["total_s"], raw["max_s"]
        return h


COUNTERS = (
    "gateways",
    "connected",
    "connects",
    "connect_failures",
    "disconnects",
    "batches",
    "readings",
    "values",
    "sent",
    "resends",
    "backfilled",
    "refused",
    "acked",
    "acked_values",
    "stored",
    "stored_readings",
    "stored_values",
    "unstored",
    "outage_gateways",
    "commands",
    "configs",
    "cmd_acks",
    "config_states",
    "control_unanswered",
    "control_stored",
    "cpu_s",
)


@dataclass
class WorkerStats:
    """One worker's counters (cumulative) and histograms; ``connected`` is a gauge."""

    gateways: int = 0
    connected: int = 0
    connects: int = 0
    connect_failures: int = 0
    disconnects: int = 0
    batches: int = 0
    readings: int = 0
    values: int = 0
    sent: int = 0
    resends: int = 0
    backfilled: int = 0
    refused: int = 0
    acked: int = 0
    acked_values: int = 0
    stored: int = 0
    stored_readings: int = 0
    stored_values: int = 0
    unstored: int = 0
    outage_gateways: int = 0
    #: ``cmd`` / ``config`` documents received, acks and config states produced, commands
    #: that could not be answered (no id), and control messages ``stored`` covered.
    commands: int = 0
    configs: int = 0
    cmd_acks: int = 0
    config_states: int = 0
    control_unanswered: int = 0
    control_stored: int = 0
    #: CPU seconds the worker process has used (user + system).
    cpu_s: float = 0.0
    puback_latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    stored_latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    #: Wall-clock times (epoch s) of CONNACKs after a gateway's first: reconnects, to
    #: measure their spread after a broker outage (reliability scenario 1).
    reconnect_times: list[float] = field(default_factory=list)

    def count_reconnect(self, at: float) -> None:
        if len(self.reconnect_times) < RECONNECT_TIMES_MAX:
            self.reconnect_times.append(round(at, 3))

    def count_produced(self, readings: int, values: int) -> None:
        self.batches += 1
        self.readings += readings
        self.values += values

    def count_sent(self) -> None:
        self.sent += 1

    def count_resend(self) -> None:
        self.resends += 1

    def count_acked(self, readings: int, values: int) -> None:
        del readings
        self.acked += 1
        self.acked_values += values

    def count_stored(self, readings: int, values: int) -> None:
        self.stored += 1
        self.stored_readings += readings
        self.stored_values += values

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: getattr(self, k) for k in COUNTERS}
        out["puback_latency"] = self.puback_latency.to_wire()
        out["stored_latency"] = self.stored_latency.to_wire()
        out["reconnect_times"] = self.reconnect_times
        return out

    @classmethod
    def from_wire(cls, raw: dict[str, Any]) -> WorkerStats:
        s = cls(**{k: raw[k] for k in COUNTERS})
        s.puback_latency = LatencyHistogram.from_wire(raw["puback_latency"])
        s.stored_latency = LatencyHistogram.from_wire(raw["stored_latency"])
        s.reconnect_times = list(raw.get("reconnect_times", ()))
        return s

    def merge(self, other: WorkerStats) -> None:
        for k in COUNTERS:
            setattr(self, k, getattr(self, k) + getattr(other, k))
        self.puback_latency.merge(other.puback_latency)
        self.stored_latency.merge(other.stored_latency)
        self.reconnect_times.extend(other.reconnect_times)


def most_in_window(times: list[float], window_s: float = 1.0) -> int:
    """The most of ``times`` (seconds) falling in any window ``window_s`` long."""
    ordered = sorted(times)
    best = lo = 0
    for hi, t in enumerate(ordered):
        while ordered[lo] < t - window_s:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def merged(parts: list[WorkerStats]) -> WorkerStats:
    total = WorkerStats()
    for p in parts:
        total.merge(p)
    return total
