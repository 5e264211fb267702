"""A gateway's production over a window, from its inverters' energy counters.

Ingest's ``telemetry.received`` carries each inverter's newest ``pv_wh`` (lifetime AC
energy, Wh) of every stored batch. :class:`ProductionMarks` keeps, per device and UTC
hour, the first such value seen in that hour (a *mark*), for eight days; production over
``[start, end)`` is the difference between each device's mark at ``end``'s hour and its
latest mark at or before ``start``'s hour. Counters are cumulative, so a night without
samples (inverters asleep) or a dropped batch loses nothing: the difference still holds
everything produced between the two marks. The error is what was produced between an
hour's start and its first sample (one poll interval), at each end.

A window is judged only when it can be judged fairly (:meth:`ProductionMarks.produced`
answers None otherwise): some device has a mark at its end, and every such device has
one at or before its start (a new inverter has no history yet) with a counter that did
not go backwards (reset or replaced). An hour is judged once the gateway's samples have
moved past it (:meth:`ProductionMarks.due`), so every inverter of a gateway has had its
chance to report in it.

Pure and deterministic; the state serialises to JSON (:class:`ProductionState`) and is
persisted with the gateway's series state.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["RETAIN", "CounterMark", "ProductionMarks", "ProductionState"]

#: How far back marks are kept: the longest shortfall window (a week) and a day.
RETAIN = timedelta(days=8)
#: Hours judged at most per call (a gateway back after days catches up on the last day).
MAX_DUE = 24
_HOUR = timedelta(hours=1)


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CounterMark(_Frozen):
    """A device's first counter value seen in the UTC ``hour`` (read at ``ts``)."""

    device: str
    hour: datetime
    ts: datetime
    wh: float


class ProductionState(_Frozen):
    """Everything :class:`ProductionMarks` remembers (JSON-ready)."""

    v: Literal[1] = 1
    marks: list[CounterMark] = Field(default_factory=list)
    #: The newest hour already judged (windows ending there or earlier are done).
    judged: datetime | None = None


def hour_of(ts: datetime) -> datetime:
    """The start of ``ts``'s UTC hour (aware)."""
    return ts.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


class ProductionMarks:
    """Hourly counter marks of a gateway's inverters; see the module's docstring."""

    def __init__(self, state: ProductionState | None = None) -> None:
        #: device -> hour -> (ts, wh)
        self._marks: dict[str, dict[datetime, tuple[datetime, float]]] = {}
        self._judged: datetime | None = None
        self._newest: datetime | None = None
        #: Whether anything changed since the state was restored or :meth:`saved`.
        self.changed = False
        if state is not None:
            for m in state.marks:
                self._put(m.device, m.hour, m.ts, m.wh)
            self._judged = state.judged
        self.changed = False

    def add(self, device: str, ts: datetime, wh: float) -> None:
        """A counter value of ``device`` read at ``ts``."""
        self._put(device, hour_of(ts), ts, wh)
        assert self._newest is not None
        horizon = self._newest - RETAIN
        for hours in self._marks.values():
            for old in [h for h in hours if h < horizon]:
                del hours[old]
                self.changed = True

    def _put(self, device: str, hour: datetime, ts: datetime, wh: float) -> None:
        hours = self._marks.setdefault(device, {})
        known = hours.get(hour)
        if known is None or ts < known[0]:
            hours[hour] = (ts, wh)
            self.changed = True
        if self._newest is None or hour > self._newest:
            self._newest = hour

    def due(self) -> list[datetime]:
        """Hours to judge now (oldest first, at most :data:`MAX_DUE`): those with a mark,
        newer than the last judged and older than the newest hour seen. Each is
        returned once."""
        if self._newest is None:
            return []
        newest, judged = self._newest, self._judged
        hours = sorted(
            {
                h
                for hours in self._marks.values()
                for h in hours
                if h < newest and (judged is None or h > judged)
            }
        )[-MAX_DUE:]
        if hours:
            self._judged = hours[-1]
            self.changed = True
        return hours

    def produced(self, start: datetime, end: datetime) -> float | None:
        """Wh produced from ``start``'s hour to ``end``'s hour by the devices with a mark
        at ``end``'s hour; None when the window cannot be judged fairly."""
        end_hour, start_hour = hour_of(end), hour_of(start)
        total = 0.0
        counted = False
        for hours in self._marks.values():
            at_end = hours.get(end_hour)
            if at_end is None:
                continue
            before = [h for h in hours if h <= start_hour]
            if not before:
                return None  # no history this far back (a new inverter): not judged
            delta = at_end[1] - hours[max(before)][1]
            if delta < 0:
                return None  # the counter went back (reset or replaced)
            total += delta
            counted = True
        return total if counted else None

    def saved(self) -> None:
        """The current state is stored: :attr:`changed` starts afresh (a mark is new
        about once an hour per inverter; most batches change nothing here)."""
        self.changed = False

    def snapshot(self) -> ProductionState:
        return ProductionState(
            marks=[
                CounterMark(device=device, hour=hour, ts=ts, wh=wh)
                for device, hours in sorted(self._marks.items())
                for hour, (ts, wh) in sorted(hours.items())
            ],
            judged=self._judged,
        )
