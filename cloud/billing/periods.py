"""Time-of-use calendars as data, and the allocation of metered energy to their periods.

A schedule (``data/tou/<region>.yaml``) names its periods (``P1``, ``peak``) and, per
effective-dated version, rules that give each local day its windows: on one of the
version's holidays (fixed dates, ``MM-DD``) the first rule whose ``days`` name
``holiday``, otherwise the first naming the weekday, among those whose ``months`` include
the day's; a rule's windows tile the local day from 00:00 to 24:00 exactly. Tariff zones
with other hours (Ceuta and Melilla under Spain's 2.0TD) have their own rules under
``zone_rules``.

Energy comes per UTC interval ``[start, end)`` of any length. It is cut wherever the
site's local wall clock (its IANA zone, so days of 23 and 25 hours are what they are)
crosses a window edge or midnight, and shared among the (local day, period) pieces in
proportion to their duration. Each interval's shares are whole multiples of the register
resolution (0.001 kWh) chosen by largest remainder, so they add up to the interval's
energy exactly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from itertools import pairwise
from typing import Annotated, Any, Literal, Self
from zoneinfo import ZoneInfo

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from cloud.billing.dated import Dated, check_contiguous, in_force
from cloud.calendars import iana_zone
from contracts.topics import Region

__all__ = [
    "FLAT",
    "REGISTER_RESOLUTION",
    "DayRule",
    "EnergyInterval",
    "IntervalAllocation",
    "PeriodEnergy",
    "PeriodError",
    "TouFile",
    "TouSchedule",
    "TouVersion",
    "Window",
    "allocate",
    "energy_totals",
    "largest_remainder",
]

#: The one period of a plan without a time-of-use schedule.
FLAT = "flat"
#: Resolution of the billing meters' energy registers, kWh.
REGISTER_RESOLUTION = Decimal("0.001")

DayKind = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun", "holiday"]
_WEEKDAYS: tuple[DayKind, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
PeriodName = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,15}$")]
ScheduleName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.-]{0,39}$")]
HoursText = Annotated[str, Field(pattern=r"^\d{2}:\d{2}-\d{2}:\d{2}$", examples=["10:00-14:00"])]
MonthDay = Annotated[str, Field(pattern=r"^(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$")]
Month = Annotated[int, Field(ge=1, le=12)]

_MINUTES_PER_DAY = 24 * 60
_HHMM = re.compile(r"^(\d{2}):(\d{2})$")
_MICROSECOND = timedelta(microseconds=1)
#: Offsets are compared every this often; two DST switches are never this close.
_OFFSET_PROBE = timedelta(hours=6)


class PeriodError(ValueError):
    """Energy that cannot be allocated: a naive time, an empty interval, energy finer than
    the register resolution, or a day no schedule version covers."""


@dataclass(frozen=True, slots=True)
class Window:
    """Local minutes ``[start, end)`` of a day (``end`` 1440 is midnight) in ``period``."""

    start: int
    end: int
    period: str


def _minute(text: str) -> int:
    match = _HHMM.match(text)
    hour, minute = (int(match.group(1)), int(match.group(2))) if match else (99, 99)
    if minute > 59 or hour > 24 or (hour == 24 and minute):
        raise ValueError(f"{text!r} is not a time of day (00:00 to 24:00)")
    return hour * 60 + minute


def _tiles(windows: Mapping[str, Sequence[str]]) -> tuple[Window, ...]:
    """The windows sorted; refused unless they cover 00:00-24:00 once, without gaps."""
    found = []
    for period, spans in windows.items():
        for span in spans:
            start, end = (_minute(part) for part in span.split("-"))
            if start >= end:
                raise ValueError(f"{period} window {span!r} ends before it starts")
            found.append(Window(start, end, period))
    found.sort(key=lambda w: w.start)
    if not found or found[0].start != 0 or found[-1].end != _MINUTES_PER_DAY:
        raise ValueError("windows must cover the whole day, 00:00-24:00")
    for before, after in pairwise(found):
        if after.start != before.end:
            edge = f"{before.end // 60:02d}:{before.end % 60:02d}"
            problem = "overlap" if after.start < before.end else "leave a gap"
            raise ValueError(f"windows {problem} at {edge} ({before.period}, {after.period})")
    return tuple(found)


class DayRule(BaseModel):
    """The windows of the days it matches: a weekday in ``days`` in one of ``months``;
    a rule naming ``holiday`` also matches the version's holidays, and wins on them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    days: tuple[DayKind, ...] = Field(min_length=1)
    months: tuple[Month, ...] = tuple(range(1, 13))
    windows: dict[PeriodName, tuple[HoursText, ...]] = Field(min_length=1)
    _tiled: tuple[Window, ...] = PrivateAttr(default=())

    @model_validator(mode="after")
    def _tile(self) -> Self:
        self._tiled = _tiles(self.windows)
        return self

    def matches(self, day: date, kind: DayKind) -> bool:
        return day.month in self.months and kind in self.days

    @property
    def tiled(self) -> tuple[Window, ...]:
        return self._tiled


def _rule_for(rules: Sequence[DayRule], day: date, holiday: bool) -> DayRule | None:
    """On a holiday the first rule naming ``holiday`` (for the month), else the first
    naming the day's weekday: listing order never lets a weekday rule hide a holiday."""
    if holiday:
        found = next((rule for rule in rules if rule.matches(day, "holiday")), None)
        if found is not None:
            return found
    weekday = _WEEKDAYS[day.weekday()]
    return next((rule for rule in rules if rule.matches(day, weekday)), None)


def _check_coverage(rules: Sequence[DayRule]) -> None:
    """Every weekday of every month must match some rule."""
    for month in range(1, 13):
        # 2024 starts on a Monday: days 1-7 of any of its months give every weekday.
        for offset in range(7):
            day = date(2024, month, 1 + offset)
            if _rule_for(rules, day, holiday=False) is None:
                raise ValueError(f"no rule for a {_WEEKDAYS[day.weekday()]} in month {month}")


class TouVersion(Dated):
    """One version of a schedule: its fixed-date holidays, its rules, and the rules of
    tariff zones whose hours differ."""

    holidays: tuple[MonthDay, ...] = ()
    rules: tuple[DayRule, ...]
    zone_rules: dict[str, tuple[DayRule, ...]] = Field(default_factory=dict)

    @field_validator("holidays")
    @classmethod
    def _real_dates(cls, holidays: tuple[str, ...]) -> tuple[str, ...]:
        for month_day in holidays:
            try:
                date.fromisoformat(f"2024-{month_day}")  # a leap year: 02-29 may be listed
            except ValueError:
                raise ValueError(f"holiday {month_day!r} is not a day of the year") from None
        return holidays

    @model_validator(mode="after")
    def _covered(self) -> Self:
        _check_coverage(self.rules)
        for zone, rules in self.zone_rules.items():
            try:
                _check_coverage(rules)
            except ValueError as error:
                raise ValueError(f"zone_rules.{zone}: {error}") from None
        return self

    def day_windows(self, day: date, tariff_zone: str) -> tuple[Window, ...]:
        holiday = day.strftime("%m-%d") in self.holidays
        rule = _rule_for(self.zone_rules.get(tariff_zone, self.rules), day, holiday)
        assert rule is not None  # _covered guarantees a match
        return rule.tiled

    def periods_used(self) -> set[str]:
        rules = list(self.rules) + [r for z in self.zone_rules.values() for r in z]
        return {period for rule in rules for period in rule.windows}


class TouSchedule(BaseModel):
    """A named time-of-use schedule: its periods (in display order) and its versions."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: ScheduleName
    description: str = Field(min_length=3, max_length=500)
    periods: tuple[PeriodName, ...] = Field(min_length=1)
    versions: tuple[TouVersion, ...]

    @field_validator("periods")
    @classmethod
    def _unique(cls, periods: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(periods)) != len(periods):
            raise ValueError(f"periods {list(periods)} repeat a name")
        if FLAT in periods:
            raise ValueError(f"{FLAT!r} is the period of plans without a schedule")
        return periods

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        check_contiguous(self.versions)
        for index, version in enumerate(self.versions):
            unknown = version.periods_used() - set(self.periods)
            if unknown:
                raise ValueError(f"version {index} uses periods {sorted(unknown)} not listed")
        return self

    def day_windows(self, day: date, tariff_zone: str) -> tuple[Window, ...]:
        """The local windows of ``day`` in ``tariff_zone``; :class:`PeriodError` when no
        version of the schedule is in force that day."""
        version = in_force(self.versions, day)
        if version is None:
            raise PeriodError(f"schedule {self.name} has no version in force on {day}")
        return version.day_windows(day, tariff_zone)


class TouFile(BaseModel):
    """``data/tou/<region>.yaml``; the validation context's ``zones`` are the region's
    tariff zones, which ``zone_rules`` may name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    region: Region
    schedules: dict[ScheduleName, TouSchedule]

    @model_validator(mode="before")
    @classmethod
    def _name_schedules(cls, data: Any) -> Any:
        schedules = data.get("schedules") if isinstance(data, dict) else None
        if isinstance(schedules, dict):
            named = {
                name: {**body, "name": name} if isinstance(body, dict) else body
                for name, body in schedules.items()
            }
            data = {**data, "schedules": named}
        return data

    @field_validator("schedules")
    @classmethod
    def _known_zones(
        cls, schedules: dict[str, TouSchedule], info: ValidationInfo
    ) -> dict[str, TouSchedule]:
        zones = set((info.context or {}).get("zones", ()))
        for name, schedule in schedules.items():
            for index, version in enumerate(schedule.versions):
                unknown = sorted(set(version.zone_rules) - zones)
                if unknown:
                    raise ValueError(
                        f"{name}.versions[{index}].zone_rules: unknown tariff zones "
                        f"{unknown} (known: {sorted(zones)})"
                    )
        return schedules


_FLAT_DAY = (Window(0, _MINUTES_PER_DAY, FLAT),)


@dataclass(frozen=True, slots=True)
class EnergyInterval:
    """Energy metered over ``[start, end)``: aware datetimes, kWh as a Decimal at the
    register's resolution (negative for a correction)."""

    start: datetime
    end: datetime
    kwh: Decimal

    def __post_init__(self) -> None:
        if self.start.utcoffset() is None or self.end.utcoffset() is None:
            raise PeriodError(f"interval {self.start}..{self.end}: times must be aware")
        if self.end <= self.start:
            raise PeriodError(f"interval {self.start}..{self.end} is empty")
        if not isinstance(self.kwh, Decimal) or not self.kwh.is_finite():
            raise PeriodError(f"interval {self.start}: energy must be a finite Decimal")


@dataclass(frozen=True, slots=True)
class PeriodEnergy:
    """Energy of one tariff period on one local day, kWh."""

    day: date
    period: str
    kwh: Decimal


@dataclass(frozen=True, slots=True)
class IntervalAllocation:
    """One interval and its shares; the shares' kWh add up to the interval's exactly."""

    interval: EnergyInterval
    parts: tuple[PeriodEnergy, ...]


def _offset(zone: ZoneInfo, instant: datetime) -> timedelta:
    offset = instant.astimezone(zone).utcoffset()
    assert offset is not None  # a ZoneInfo always answers
    return offset


def _switch(zone: ZoneInfo, before: datetime, after: datetime, new: timedelta) -> datetime:
    """The first instant in ``[before, after]`` whose offset is ``new`` (``after``'s):
    a DST switch, found to the microsecond by bisection."""
    if _offset(zone, before) == new:
        return before
    low, high = 0, (after - before) // _MICROSECOND
    while high - low > 1:
        mid = (low + high) // 2
        if _offset(zone, before + mid * _MICROSECOND) == new:
            high = mid
        else:
            low = mid
    return before + high * _MICROSECOND


def _constant_offset_pieces(
    start: datetime, end: datetime, zone: ZoneInfo
) -> list[tuple[datetime, datetime, timedelta]]:
    """``[start, end)`` in UTC cut at the zone's offset changes: (from, to, offset)."""
    pieces = []
    piece_start, offset = start, _offset(zone, start)
    probe = start
    while probe < end:
        probe_end = min(probe + _OFFSET_PROBE, end)
        last = _offset(zone, probe_end - _MICROSECOND)
        if last != offset:
            switch = _switch(zone, probe, probe_end - _MICROSECOND, last)
            pieces.append((piece_start, switch, offset))
            piece_start, offset = switch, last
        probe = probe_end
    pieces.append((piece_start, end, offset))
    return pieces


class _Windows:
    """A day's windows, each day looked up once per allocation."""

    def __init__(self, schedule: TouSchedule | None, tariff_zone: str) -> None:
        self._schedule, self._zone = schedule, tariff_zone
        self._days: dict[date, tuple[Window, ...]] = {}

    def of(self, day: date) -> tuple[Window, ...]:
        found = self._days.get(day)
        if found is None:
            found = (
                _FLAT_DAY if self._schedule is None else self._schedule.day_windows(day, self._zone)
            )
            self._days[day] = found
        return found


def _durations(
    interval: EnergyInterval, zone: ZoneInfo, windows: _Windows
) -> dict[tuple[date, str], int]:
    """Microseconds of the interval in each (local day, period), in order of time."""
    spent: dict[tuple[date, str], int] = {}
    start, end = interval.start.astimezone(UTC), interval.end.astimezone(UTC)
    for piece_start, piece_end, offset in _constant_offset_pieces(start, end, zone):
        local = (piece_start + offset).replace(tzinfo=None)
        local_end = (piece_end + offset).replace(tzinfo=None)
        while local < local_end:
            midnight = datetime.combine(local.date(), time())
            minute = (local - midnight) // timedelta(minutes=1)
            window = next(w for w in windows.of(local.date()) if w.start <= minute < w.end)
            cut = min(midnight + timedelta(minutes=window.end), local_end)
            key = (local.date(), window.period)
            spent[key] = spent.get(key, 0) + (cut - local) // _MICROSECOND
            local = cut
    return spent


def largest_remainder(units: int, weights: Sequence[int]) -> list[int]:
    """``units`` shared in proportion to ``weights``: whole shares adding up to ``units``
    exactly; leftover units go to the largest remainders, earlier first on a tie."""
    if len(weights) == 1:  # the common case: an interval inside one window
        return [units]
    total, size = sum(weights), abs(units)
    shares = [size * w // total for w in weights]
    remainders = [size * w % total for w in weights]
    leftover = size - sum(shares)
    for index in sorted(range(len(weights)), key=lambda i: (-remainders[i], i))[:leftover]:
        shares[index] += 1
    return [-s for s in shares] if units < 0 else shares


def _units(interval: EnergyInterval, resolution: Decimal) -> int:
    units = interval.kwh / resolution
    if units != units.to_integral_value():
        raise PeriodError(
            f"interval {interval.start}: {interval.kwh} kWh is not a multiple of the "
            f"register resolution {resolution} kWh"
        )
    return int(units)


def allocate(
    intervals: Iterable[EnergyInterval],
    *,
    time_zone: ZoneInfo | str,
    schedule: TouSchedule | None,
    tariff_zone: str,
    resolution: Decimal = REGISTER_RESOLUTION,
) -> tuple[IntervalAllocation, ...]:
    """Each interval's energy shared among the (local day, period) pieces it spans in the
    site's IANA ``time_zone``, in proportion to time (no schedule: the one period
    :data:`FLAT`, still cut at local midnight). Shares are multiples of ``resolution``
    (kWh) and add up to the interval's energy exactly; the interval's energy must itself
    be a multiple of ``resolution``. ``tariff_zone`` picks zone rules (``ceuta``)."""
    zone = time_zone if isinstance(time_zone, ZoneInfo) else iana_zone(time_zone)
    windows = _Windows(schedule, tariff_zone)
    allocated = []
    for interval in intervals:
        units = _units(interval, resolution)
        spent = _durations(interval, zone, windows)
        shares = largest_remainder(units, list(spent.values()))
        parts = tuple(
            PeriodEnergy(day, period, share * resolution)
            for (day, period), share in zip(spent, shares, strict=True)
        )
        allocated.append(IntervalAllocation(interval, parts))
    return tuple(allocated)


def energy_totals(allocations: Iterable[IntervalAllocation]) -> tuple[PeriodEnergy, ...]:
    """The allocations summed per (local day, period), by day then first appearance."""
    totals: dict[tuple[date, str], Decimal] = {}
    for allocation in allocations:
        for part in allocation.parts:
            key = (part.day, part.period)
            totals[key] = totals.get(key, Decimal(0)) + part.kwh
    ordered = sorted(totals.items(), key=lambda item: item[0][0])
    return tuple(PeriodEnergy(day, period, kwh) for (day, period), kwh in ordered)
