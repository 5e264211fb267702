"""SLA clocks of a support ticket as pure functions: no I/O, no clock (``now`` is passed in).

A ticket has two clocks (``business.md`` §5): **first response** (stops at the first
reply staff write to the customer) and **resolution** (stops when it is resolved). Both
count from the ticket's creation, in business time only: the business hours of the
customer's jurisdiction on the region's :class:`~cloud.calendars.BusinessCalendar`
(its hours, its public holidays). Time the ticket waits on the customer (``pending``) or
sits resolved before a reopening is a :class:`Pause` and does not count: a pause that
starts before the due time moves the due time by the business time it covers. An open
pause (no end yet) means the clock is stopped: no due time until it ends.

The targets are data (``data/policy.yaml``, loaded by :mod:`cloud.support.policy`), per
region and priority. Instants are timezone-aware; due times come back in the
jurisdiction's zone, computed in UTC so a day of 23 or 25 hours (DST) counts what really
elapses.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cloud.calendars import BusinessCalendar

__all__ = ["Clock", "Pause", "business_elapsed", "clock", "due_at"]


@dataclass(frozen=True)
class Pause:
    """An interval the clock stands still: ``end`` None while it lasts."""

    start: datetime
    end: datetime | None = None


@dataclass(frozen=True)
class Clock:
    """One clock's state at ``now``: its due time (None while paused), when its event
    happened (None: not yet), the business time it has used, and whether it is breached
    (the event not done by the due time; a due time itself is met)."""

    due: datetime | None
    stopped_at: datetime | None
    used: timedelta
    breached: bool


def _sorted(pauses: Iterable[Pause]) -> list[Pause]:
    return sorted(pauses, key=lambda p: p.start)


def due_at(
    calendar: BusinessCalendar,
    jurisdiction: str,
    start: datetime,
    target: timedelta,
    pauses: Sequence[Pause] = (),
) -> datetime | None:
    """When ``target`` business time after ``start`` is used up, not counting
    ``pauses``; None while a pause that began before then has not ended."""
    cursor, remaining = start, target
    for pause in _sorted(pauses):
        candidate = calendar.add_business_time(cursor, remaining, jurisdiction)
        if pause.start >= candidate:
            return candidate
        if pause.end is not None and pause.end <= cursor:
            continue  # inside an earlier pause, or before the start
        if pause.start > cursor:
            remaining -= calendar.business_time_between(cursor, pause.start, jurisdiction)
        if pause.end is None:
            return None
        cursor = max(cursor, pause.end)
    return calendar.add_business_time(cursor, remaining, jurisdiction)


def business_elapsed(
    calendar: BusinessCalendar,
    jurisdiction: str,
    start: datetime,
    end: datetime,
    pauses: Sequence[Pause] = (),
) -> timedelta:
    """Business time from ``start`` to ``end`` outside ``pauses`` (an open pause lasts
    to ``end``)."""
    total = calendar.business_time_between(start, end, jurisdiction)
    covered_until = start
    for pause in _sorted(pauses):
        first = max(pause.start, covered_until)
        last = min(pause.end or end, end)
        if last > first:
            total -= calendar.business_time_between(first, last, jurisdiction)
            covered_until = last
    return total


def clock(
    calendar: BusinessCalendar,
    jurisdiction: str,
    start: datetime,
    target: timedelta,
    now: datetime,
    *,
    stopped_at: datetime | None = None,
    pauses: Sequence[Pause] = (),
) -> Clock:
    """The clock at ``now``: stopped at ``stopped_at`` (its event) when given."""
    until = stopped_at if stopped_at is not None else now
    counted = [p for p in pauses if p.start <= until]
    used = business_elapsed(calendar, jurisdiction, start, until, counted)
    due = due_at(calendar, jurisdiction, start, target, counted)
    breached = used > target if stopped_at is None else (due is not None and stopped_at > due)
    return Clock(due=due, stopped_at=stopped_at, used=used, breached=breached)
