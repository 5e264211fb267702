"""SLA timers of a work order as pure functions: no I/O but reading the policy file, no
clock (``now`` is always passed in).

Each priority has two timers (``business.md`` §3): **arrive-by** (a technician on site)
and **resolve-by** (the MOSIE reports it fixed), both counted from the moment the work
order is created — or reopened: the lifecycle starts the timers afresh then, so the
caller passes the reopening time as ``created_at``. The policy is data
(``sla_policy.yaml``, :class:`SlaPolicy`): per priority, two durations and a clock —
``around_the_clock`` (every hour counts) or ``business`` (only the business hours of the
site's jurisdiction on the region's :class:`~cloud.calendars.BusinessCalendar`: its
hours, its public holidays).

Time the job spends in :data:`~cloud.dispatch.lifecycle.SLA_PAUSED_STATES` (on hold for
parts, cannot complete for want of access) is given as :class:`Pause` intervals and does
not count: a pause moves every due time that it starts before by the business (or wall)
time it covers. A timer stops when its event happens (the first arrival, the
resolution); it is breached when ``now`` is past its due time and the event had not
happened by then. A due time itself is met: breached means strictly later.

Instants are timezone-aware; due times come back in the jurisdiction's zone, computed in
UTC so a day of 23 or 25 hours (DST) counts what really elapses.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Annotated, Self

import yaml
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from cloud.calendars import JURISDICTION_PATTERN, BusinessCalendar
from cloud.dispatch.lifecycle import SlaTimer
from cloud.events.workorders import Priority
from contracts.topics import Region

__all__ = [
    "POLICY_FILE",
    "Clock",
    "Due",
    "JobFacts",
    "Pause",
    "SlaPolicy",
    "Target",
    "breaches",
    "builtin_policy",
    "deadline",
    "due",
    "due_for",
    "elapsed",
    "elapsed_business",
    "load_policy",
    "parse_duration",
    "priority_name",
    "remaining",
]

POLICY_FILE = Path(__file__).resolve().parent / "sla_policy.yaml"

PriorityName = Priority  # the work order's (events' ``"P1"``-``"P4"``)
PRIORITIES: tuple[PriorityName, ...] = ("P1", "P2", "P3", "P4")
#: ``<n><unit>``: minutes, hours, 24-hour days, business days; n from 1 to 9999.
DURATION_PATTERN = r"^[1-9][0-9]{0,3}(m|h|d|bd)$"
DurationText = Annotated[str, Field(pattern=DURATION_PATTERN, examples=["4h", "10bd"])]
Jurisdiction = Annotated[str, Field(pattern=JURISDICTION_PATTERN)]
_DURATION = re.compile(r"^([0-9]+)(m|h|d|bd)$")
_MINUTES = {"m": 1, "h": 60, "d": 24 * 60}


class Clock(StrEnum):
    AROUND_THE_CLOCK = "around_the_clock"
    BUSINESS = "business"


def parse_duration(text: str) -> tuple[int, str]:
    """``"10bd"`` → ``(10, "bd")``; ``ValueError`` for anything else."""
    match = _DURATION.match(text)
    if not match or not re.match(DURATION_PATTERN, text):
        raise ValueError(f"{text[:16]!r} is not a duration like 4h, 30m, 2d or 10bd")
    return int(match.group(1)), match.group(2)


def _budget(text: str, calendar: BusinessCalendar, jurisdiction: str) -> timedelta:
    """The duration as the time the timer's clock must count: business days become
    business time at the jurisdiction's mean business day."""
    amount, unit = parse_duration(text)
    if unit == "bd":
        return amount * calendar.business_day_length(jurisdiction)
    return timedelta(minutes=amount * _MINUTES[unit])


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Target(_Frozen):
    """One priority's service level."""

    arrive_by: DurationText
    resolve_by: DurationText
    clock: Clock

    @model_validator(mode="after")
    def _units_fit_clock(self) -> Self:
        units = {parse_duration(t)[1] for t in (self.arrive_by, self.resolve_by)}
        if self.clock is Clock.AROUND_THE_CLOCK and "bd" in units:
            raise ValueError("business days (bd) need clock: business")
        if self.clock is Clock.BUSINESS and "d" in units:
            # A "day" of business time is ambiguous (24 h of it is almost three days).
            raise ValueError("with clock: business, say business days (bd), not d")
        if _comparable(self.arrive_by, self.resolve_by) > 0:
            raise ValueError(f"arrive_by {self.arrive_by} is after resolve_by {self.resolve_by}")
        return self


def _comparable(a: str, b: str) -> int:
    """-1, 0 or 1 comparing two durations when that needs no calendar (both wall units or
    both business days); 0 when it would."""
    (na, ua), (nb, ub) = parse_duration(a), parse_duration(b)
    if (ua == "bd") != (ub == "bd"):
        return 0
    if ua != "bd":
        na, nb = na * _MINUTES[ua], nb * _MINUTES[ub]
    return (na > nb) - (na < nb)


PriorityTargets = dict[PriorityName, Target]


class SlaPolicy(_Frozen):
    """``default``: a target for each of P1-P4; ``regions``: a region's own targets for
    the priorities where it differs."""

    default: PriorityTargets
    regions: dict[Region, PriorityTargets] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _every_priority(self) -> Self:
        missing = [p for p in PRIORITIES if p not in self.default]
        if missing:
            raise ValueError(f"default has no target for {', '.join(missing)}")
        return self

    def target(self, priority: int | str, region: Region | str) -> Target:
        """The target of ``priority`` (1 most urgent … 4, or ``"P1"`` … ``"P4"``) in
        ``region``."""
        name = priority_name(priority)
        own = self.regions.get(Region(region), {})
        return own.get(name) or self.default[name]


def priority_name(priority: int | str) -> PriorityName:
    """``1`` (assignment's) or ``"P1"`` (the work order's) → ``"P1"``."""
    for index, name in enumerate(PRIORITIES, start=1):
        if priority in (index, name):
            return name
    raise ValueError(f"priority {str(priority)[:8]!r} is not 1-4 or P1-P4")


def load_policy(path: Path) -> SlaPolicy:
    """A policy from a YAML file; ``pydantic.ValidationError`` names what is wrong."""
    return SlaPolicy.model_validate(yaml.safe_load(path.read_text("utf-8")))


@cache
def builtin_policy() -> SlaPolicy:
    """The company's policy shipped beside this module, read on first use."""
    return load_policy(POLICY_FILE)


class Pause(_Frozen):
    """An interval the job spent in an SLA-paused state; ``ends`` None: paused still."""

    starts: AwareDatetime
    ends: AwareDatetime | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.ends is not None and self.ends < self.starts:
            raise ValueError("a pause ends before it starts")
        return self


class JobFacts(_Frozen):
    """What the timers need of a work order. ``created_at``: created, or last reopened;
    ``arrived_at``: the first arrival since then; ``resolved_at``: reported fixed."""

    created_at: AwareDatetime
    priority: PriorityName | Annotated[int, Field(ge=1, le=4)]
    region: Region
    jurisdiction: Jurisdiction
    arrived_at: AwareDatetime | None = None
    resolved_at: AwareDatetime | None = None
    pauses: tuple[Pause, ...] = Field(default=(), max_length=1000)


@dataclass(frozen=True, slots=True)
class Due:
    """Both due times, aware, in the jurisdiction's zone."""

    arrive_by: datetime
    resolve_by: datetime

    def of(self, timer: SlaTimer) -> datetime:
        return self.arrive_by if timer is SlaTimer.ARRIVE_BY else self.resolve_by


# -- measuring -----------------------------------------------------------------------------

_Span = tuple[datetime, datetime]


def _measure(
    start: datetime, end: datetime, clock: Clock, calendar: BusinessCalendar, jurisdiction: str
) -> timedelta:
    if end <= start:
        return timedelta(0)
    if clock is Clock.BUSINESS:
        return calendar.business_time_between(start, end, jurisdiction)
    return end.astimezone(UTC) - start.astimezone(UTC)


def _add(
    start: datetime,
    amount: timedelta,
    clock: Clock,
    calendar: BusinessCalendar,
    jurisdiction: str,
) -> datetime:
    if clock is Clock.BUSINESS:
        return calendar.add_business_time(start, amount, jurisdiction)
    return (start.astimezone(UTC) + amount).astimezone(calendar.time_zone(jurisdiction))


def _merged(pauses: Iterable[Pause], now: datetime | None) -> list[_Span]:
    """Pauses as sorted, disjoint spans, an open one ending at ``now``."""
    spans: list[_Span] = []
    for pause in pauses:
        if pause.ends is None and now is None:
            raise ValueError("an open pause needs now")
        ends = pause.ends if pause.ends is not None else now
        assert ends is not None
        if ends > pause.starts:
            spans.append((pause.starts.astimezone(UTC), ends.astimezone(UTC)))
    spans.sort()
    merged: list[_Span] = []
    for starts, ends in spans:
        if merged and starts <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], ends))
        else:
            merged.append((starts, ends))
    return merged


def elapsed(
    start: datetime,
    end: datetime,
    pauses: Iterable[Pause],
    *,
    clock: Clock,
    calendar: BusinessCalendar,
    jurisdiction: str,
    now: datetime | None = None,
) -> timedelta:
    """Time counted by ``clock`` from ``start`` to ``end`` less what ``pauses`` cover
    (overlapping pauses count once; an open pause ends at ``now``). Zero when ``end`` is
    not after ``start``."""
    total = _measure(start, end, clock, calendar, jurisdiction)
    for p_start, p_end in _merged(pauses, now):
        total -= _measure(max(p_start, start), min(p_end, end), clock, calendar, jurisdiction)
    return total


def elapsed_business(
    start: datetime,
    end: datetime,
    pauses: Iterable[Pause],
    calendar: BusinessCalendar,
    jurisdiction: str,
    *,
    now: datetime | None = None,
) -> timedelta:
    """Business time from ``start`` to ``end`` in ``jurisdiction`` less the pauses."""
    return elapsed(
        start,
        end,
        pauses,
        clock=Clock.BUSINESS,
        calendar=calendar,
        jurisdiction=jurisdiction,
        now=now,
    )


def deadline(
    start: datetime,
    budget: timedelta,
    pauses: Iterable[Pause],
    *,
    clock: Clock,
    calendar: BusinessCalendar,
    jurisdiction: str,
    now: datetime | None = None,
) -> datetime:
    """The first instant by which ``budget`` (> 0) has elapsed since ``start`` on
    ``clock``, the pauses not counting: ``elapsed(start, deadline) == budget``."""
    if budget <= timedelta(0):
        raise ValueError("budget must be positive")
    cursor, left = start, budget
    for p_start, p_end in _merged(pauses, now):
        if p_end <= cursor:
            continue
        candidate = _add(cursor, left, clock, calendar, jurisdiction)
        if candidate <= p_start:
            return candidate
        # Spent up to the pause; the clock resumes when it ends. ``left`` stays > 0: the
        # candidate is the earliest instant the budget is spent, and it is past p_start.
        left -= _measure(cursor, p_start, clock, calendar, jurisdiction)
        cursor = max(cursor, p_end)
    return _add(cursor, left, clock, calendar, jurisdiction)


# -- the timers ------------------------------------------------------------------------


def _checked(calendar: BusinessCalendar, region: Region | str) -> None:
    if calendar.region != Region(region):
        raise ValueError(f"the calendar is region {calendar.region.value}'s, not {region}'s")


def due(
    created_at: datetime,
    priority: int | str,
    region: Region | str,
    jurisdiction: str,
    policy: SlaPolicy,
    calendar: BusinessCalendar,
    *,
    pauses: Iterable[Pause] = (),
    now: datetime | None = None,
) -> Due:
    """Arrive-by and resolve-by of a job created (or reopened) at ``created_at`` on the
    site's ``jurisdiction`` (its zone and holidays), moved by ``pauses`` (an open one ends
    at ``now``: the due times then move on for as long as it stays open)."""
    _checked(calendar, region)
    target = policy.target(priority, region)
    spans = [Pause(starts=s, ends=e) for s, e in _merged(pauses, now)]

    def one(text: str) -> datetime:
        budget = _budget(text, calendar, jurisdiction)
        return deadline(
            created_at,
            budget,
            spans,
            clock=target.clock,
            calendar=calendar,
            jurisdiction=jurisdiction,
        )

    return Due(arrive_by=one(target.arrive_by), resolve_by=one(target.resolve_by))


def due_for(facts: JobFacts, now: datetime, policy: SlaPolicy, calendar: BusinessCalendar) -> Due:
    """:func:`due` of a job's facts as known at ``now``."""
    return due(
        facts.created_at,
        facts.priority,
        facts.region,
        facts.jurisdiction,
        policy,
        calendar,
        pauses=_until(facts.pauses, now),
        now=now,
    )


def _until(pauses: Iterable[Pause], now: datetime) -> list[Pause]:
    """What is known at ``now``: pauses begun by then, one still running ending at now."""
    known = []
    for pause in pauses:
        if pause.starts >= now:
            continue
        ends = now if pause.ends is None or pause.ends > now else pause.ends
        known.append(Pause(starts=pause.starts, ends=ends))
    return known


def _stopped_at(facts: JobFacts, timer: SlaTimer) -> datetime | None:
    return facts.arrived_at if timer is SlaTimer.ARRIVE_BY else facts.resolved_at


def remaining(
    timer: SlaTimer | str,
    facts: JobFacts,
    now: datetime,
    policy: SlaPolicy,
    calendar: BusinessCalendar,
) -> timedelta:
    """What is left of ``timer``'s budget at ``now``, in the time its clock counts
    (business time for a business clock); negative: overdue by that much. A stopped timer
    (arrived, resolved) keeps what it had left when it stopped."""
    timer = SlaTimer(timer)
    _checked(calendar, facts.region)
    target = policy.target(facts.priority, facts.region)
    text = target.arrive_by if timer is SlaTimer.ARRIVE_BY else target.resolve_by
    stop = _stopped_at(facts, timer)
    end = now if stop is None else min(stop, now)
    spent = elapsed(
        facts.created_at,
        end,
        _until(facts.pauses, end),
        clock=target.clock,
        calendar=calendar,
        jurisdiction=facts.jurisdiction,
    )
    return _budget(text, calendar, facts.jurisdiction) - spent


def breaches(
    now: datetime, facts: JobFacts, policy: SlaPolicy, calendar: BusinessCalendar
) -> frozenset[SlaTimer]:
    """The timers breached at ``now``: past due, and the arrival (arrive-by) or the
    resolution (resolve-by) had not happened by the due time."""
    dues = due_for(facts, now, policy, calendar)
    found: set[SlaTimer] = set()
    for timer in SlaTimer:
        at = dues.of(timer)
        stop = _stopped_at(facts, timer)
        if now > at and (stop is None or stop > at):
            found.add(timer)
    return frozenset(found)
