"""A region's business calendar: business days, business hours and business time per
jurisdiction (state, territory, autonomous community), from one :class:`CalendarSpec`.

Pure: no I/O but the ``holidays`` package's tables (in memory). Local days and hours are
wall-clock times in the jurisdiction's IANA zone; every span is measured in UTC, so a day
of 23 or 25 hours (DST) counts what really elapses. A local time a clock skips (spring
forward) moves on by the gap (02:30 becomes 03:30); a repeated one (fall back) is its
first instant.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from cloud.calendars.holiday_source import public_holidays
from cloud.calendars.spec import (
    MINUTES_PER_DAY,
    WEEKDAYS,
    CalendarSpec,
    DayOverride,
    parse_spans,
)
from contracts.topics import Region

#: Years a calendar answers for; outside them it refuses rather than guess.
MIN_YEAR = 1990
MAX_YEAR = 2100
#: ``add_business_time`` gives up after this many days without reaching its total.
MAX_SCAN_DAYS = 3 * 366
#: Longest span a listing (business days, holidays) may cover.
MAX_SPAN_DAYS = 3 * 366

Spans = tuple[tuple[int, int], ...]


class CalendarError(ValueError):
    """An unknown jurisdiction or holiday set, a date out of range, a naive time."""


@dataclass(frozen=True, slots=True)
class Holiday:
    day: date
    name: str


class BusinessCalendar:
    """Business days and hours of one region's jurisdictions; immutable once built
    (holiday tables are computed per jurisdiction and year on first use)."""

    def __init__(self, spec: CalendarSpec) -> None:
        self._spec = spec
        self._zones = {code: ZoneInfo(j.time_zone) for code, j in spec.jurisdictions.items()}
        default = {WEEKDAYS.index(d): parse_spans(s) for d, s in spec.hours.items()}
        self._hours: dict[str, dict[int, Spans]] = {}
        for code, j in spec.jurisdictions.items():
            own = j.hours
            self._hours[code] = (
                default
                if own is None
                else {WEEKDAYS.index(d): parse_spans(s) for d, s in own.items()}
            )
        self._days_off: dict[tuple[str, int], dict[date, str]] = {}
        # A day's business hours in UTC, per (day, jurisdiction): SLA clocks walk the same
        # days for every ticket of a month (a few hundred entries a month).
        self._utc_days: dict[tuple[date, str], tuple[tuple[datetime, datetime], ...]] = {}

    # -- what it covers -------------------------------------------------------------
    @property
    def region(self) -> Region:
        return self._spec.region

    @property
    def country(self) -> str:
        return self._spec.country

    @property
    def default_jurisdiction(self) -> str:
        return self._spec.default_jurisdiction

    @property
    def jurisdictions(self) -> tuple[str, ...]:
        return tuple(self._spec.jurisdictions)

    @property
    def holiday_sets(self) -> tuple[str, ...]:
        return tuple(self._spec.holiday_sets)

    def time_zone(self, jurisdiction: str) -> ZoneInfo:
        self._check(jurisdiction)
        return self._zones[jurisdiction]

    # -- days -----------------------------------------------------------------------
    def is_holiday(self, day: date, jurisdiction: str) -> bool:
        """A day off for everyone there: a public holiday (less those the business works)
        or a closure the calendar file adds. Weekends are not holidays."""
        return day in self._year_off(jurisdiction, day)

    def is_business_day(self, day: date, jurisdiction: str) -> bool:
        """Open that day: the weekday has business hours and it is no holiday."""
        self._check(jurisdiction)
        return bool(self._hours[jurisdiction].get(day.weekday())) and not self.is_holiday(
            day, jurisdiction
        )

    def business_days_between(self, first: date, last: date, jurisdiction: str) -> list[date]:
        """Business days from ``first`` to ``last``, both included."""
        return [d for d in _days(first, last) if self.is_business_day(d, jurisdiction)]

    def holidays_between(
        self, first: date, last: date, jurisdiction: str, *, holiday_set: str | None = None
    ) -> list[Holiday]:
        """Holidays from ``first`` to ``last``, both included, in date order: the days off
        of ``jurisdiction`` (see :meth:`is_holiday`), or with ``holiday_set`` that named
        set of the calendar file (e.g. ``tariff-2.0td``: Spain's fixed-date national
        holidays that make a day all valle, where ``holidays`` would add Good Friday)."""
        days = _days(first, last)
        self._check(jurisdiction)
        if holiday_set is None:
            return [
                Holiday(d, self._year_off(jurisdiction, d)[d])
                for d in days
                if self.is_holiday(d, jurisdiction)
            ]
        named = self._spec.holiday_sets.get(holiday_set)
        if named is None:
            raise CalendarError(f"no holiday set {holiday_set!r} in region {self.region.value}")
        fixed = named.fixed_dates
        return [Holiday(d, fixed[key]) for d in days if (key := d.strftime("%m-%d")) in fixed]

    # -- hours ----------------------------------------------------------------------
    def business_hours(self, day: date, jurisdiction: str) -> list[tuple[datetime, datetime]]:
        """The day's business hours as (opens, closes) instants in the jurisdiction's
        zone; empty on a day that is not a business day."""
        if not self.is_business_day(day, jurisdiction):
            return []
        zone = self._zones[jurisdiction]
        return [
            (_instant(day, start, zone), _instant(day, end, zone))
            for start, end in self._hours[jurisdiction][day.weekday()]
        ]

    def business_day_length(self, jurisdiction: str) -> timedelta:
        """What "one business day" of business time is worth there: the mean length of
        the business hours of the weekdays that have any (wall clock; AU 08:00-17:00 is
        9 h, Spain's split 09:00-14:00 + 15:00-18:00 is 8 h). An SLA of N business days
        is N of these, so it lands at the same time of day N business days on when every
        business day has the same hours."""
        self._check(jurisdiction)
        days = [spans for spans in self._hours[jurisdiction].values() if spans]
        if not days:
            raise CalendarError(f"{jurisdiction} has no business hours")
        minutes = sum(end - start for spans in days for start, end in spans)
        return timedelta(minutes=minutes) / len(days)

    def add_business_time(
        self, start: datetime, duration: timedelta, jurisdiction: str
    ) -> datetime:
        """The instant ``duration`` of business time after ``start`` (timezone-aware), in
        the jurisdiction's zone: only business hours count (an SLA's due time). A zero
        duration outside business hours gives the next opening; a total that ends exactly
        at a closing gives the closing."""
        cursor = _utc(start, "start")
        if duration < timedelta(0):
            raise CalendarError("duration must not be negative")
        zone = self.time_zone(jurisdiction)
        remaining = duration
        day = start.astimezone(zone).date()
        for _ in range(MAX_SCAN_DAYS):
            for opens, closes in self._utc_hours(day, jurisdiction):
                if closes <= cursor:
                    continue
                cursor = max(cursor, opens)
                if remaining <= closes - cursor:
                    return (cursor + remaining).astimezone(zone)
                remaining -= closes - cursor
                cursor = closes
            day += timedelta(days=1)
        raise CalendarError(f"no {duration} of business time within {MAX_SCAN_DAYS} days")

    def business_time_between(self, start: datetime, end: datetime, jurisdiction: str) -> timedelta:
        """Business time elapsed from ``start`` to ``end`` (both timezone-aware); zero when
        ``end`` is not after ``start``."""
        first, last = _utc(start, "start"), _utc(end, "end")
        zone = self.time_zone(jurisdiction)
        total = timedelta(0)
        for day in _days(start.astimezone(zone).date(), end.astimezone(zone).date()):
            for opens, closes in self._utc_hours(day, jurisdiction):
                overlap = min(closes, last) - max(opens, first)
                if overlap > timedelta(0):
                    total += overlap
        return total

    # -- inside ---------------------------------------------------------------------
    def _check(self, jurisdiction: str) -> None:
        if jurisdiction not in self._zones:
            raise CalendarError(
                f"jurisdiction {jurisdiction[:16]!r} is not in region {self.region.value}"
            )

    def _utc_hours(self, day: date, jurisdiction: str) -> tuple[tuple[datetime, datetime], ...]:
        key = (day, jurisdiction)
        found = self._utc_days.get(key)
        if found is None:
            found = self._utc_days[key] = tuple(
                (a.astimezone(UTC), b.astimezone(UTC))
                for a, b in self.business_hours(day, jurisdiction)
            )
        return found

    def _year_off(self, jurisdiction: str, day: date) -> dict[date, str]:
        self._check(jurisdiction)
        if not MIN_YEAR <= day.year <= MAX_YEAR:
            raise CalendarError(f"{day} is outside {MIN_YEAR}..{MAX_YEAR}")
        key = (jurisdiction, day.year)
        found = self._days_off.get(key)
        if found is None:
            found = self._days_off[key] = self._compute_year(jurisdiction, day.year)
        return found

    def _compute_year(self, jurisdiction: str, year: int) -> dict[date, str]:
        spec = self._spec.jurisdictions[jurisdiction]
        ignored = set(spec.ignore_holidays)
        days: dict[date, str] = {}
        package = public_holidays(
            self.country, spec.subdivision, year, language=self._spec.language
        )
        for day, names in package.items():
            kept = [n for n in names.split("; ") if n not in ignored]
            if kept:
                days[day] = "; ".join(kept)
        for worked in _applying(self._spec.open_days, jurisdiction, year):
            days.pop(worked.day, None)
        for closed in _applying(self._spec.closed_days, jurisdiction, year):
            days[closed.day] = closed.name
        return days


def _applying(overrides: list[DayOverride], jurisdiction: str, year: int) -> list[DayOverride]:
    return [
        o
        for o in overrides
        if o.day.year == year and (o.jurisdictions is None or jurisdiction in o.jurisdictions)
    ]


def _days(first: date, last: date) -> list[date]:
    if last < first:
        raise CalendarError(f"{last} is before {first}")
    span = (last - first).days + 1
    if span > MAX_SPAN_DAYS:
        raise CalendarError(f"{span} days is more than {MAX_SPAN_DAYS}")
    return [first + timedelta(days=n) for n in range(span)]


def _instant(day: date, minute: int, zone: ZoneInfo) -> datetime:
    """Local ``day`` + ``minute`` (1440: the next midnight) as an instant in ``zone``."""
    day += timedelta(days=minute // MINUTES_PER_DAY)
    minute %= MINUTES_PER_DAY
    local = datetime.combine(day, time(minute // 60, minute % 60), tzinfo=zone)
    # Round-tripping through UTC moves a wall time in a DST gap to the real instant.
    return local.astimezone(UTC).astimezone(zone)


def _utc(moment: datetime, what: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise CalendarError(f"{what} must be timezone-aware")
    return moment.astimezone(UTC)
