"""What a region's calendar file (``data/<region>.yaml``) may say, checked on load.

Hours are local wall-clock spans ``"HH:MM-HH:MM"`` (``24:00`` ends a day); a weekday
without spans is closed. Codes of jurisdictions are ISO 3166-2 (``AU-NSW``, ``US-CA``) or
the ISO 3166-1 country alone (``ES``: national holidays only).
"""

from __future__ import annotations

import re
from datetime import date
from itertools import pairwise
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cloud.calendars.zones import is_iana_zone
from contracts.topics import Region

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
JURISDICTION_PATTERN = r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$"
Jurisdiction = Annotated[str, Field(pattern=JURISDICTION_PATTERN, examples=["AU-NSW"])]
HoursText = Annotated[str, Field(pattern=r"^\d{2}:\d{2}-\d{2}:\d{2}$", examples=["08:00-17:00"])]
SetName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.-]{0,31}$")]
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")]
MonthDay = Annotated[str, Field(pattern=r"^(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$")]
WeekHours = dict[Weekday, list[HoursText]]

_HHMM = re.compile(r"^(\d{2}):(\d{2})$")
MINUTES_PER_DAY = 24 * 60


def minute_of_day(text: str) -> int:
    """``"HH:MM"`` → minutes after midnight; ``"24:00"`` is 1440 (the day's end)."""
    match = _HHMM.match(text)
    if not match:
        raise ValueError(f"{text!r} is not HH:MM")
    hour, minute = int(match.group(1)), int(match.group(2))
    if minute > 59 or hour > 24 or (hour == 24 and minute):
        raise ValueError(f"{text!r} is not a time of day (00:00 to 24:00)")
    return hour * 60 + minute


def parse_spans(spans: list[str]) -> tuple[tuple[int, int], ...]:
    """``["08:00-12:00", "13:00-17:00"]`` → sorted ``((480, 720), (780, 1020))``; refuses
    empty or overlapping spans."""
    parsed = []
    for span in spans:
        start, end = (minute_of_day(part) for part in span.split("-"))
        if start >= end:
            raise ValueError(f"span {span!r} ends before it starts")
        parsed.append((start, end))
    parsed.sort()
    for (_, end), (start, _) in pairwise(parsed):
        if start < end:
            raise ValueError(f"spans {spans} overlap")
    return tuple(parsed)


def _check_hours(hours: WeekHours | None) -> WeekHours | None:
    for spans in (hours or {}).values():
        parse_spans(spans)
    return hours


class JurisdictionSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    time_zone: str = Field(description="IANA zone of its business hours")
    subdivision: str | None = Field(
        default=None,
        max_length=16,
        description="the holidays package's subdivision code; null: national holidays only",
    )
    hours: WeekHours | None = Field(default=None, description="null: the region's hours")
    ignore_holidays: list[Name] = Field(
        default_factory=list, description="the package's holidays worked here, by name"
    )

    _hours = field_validator("hours")(_check_hours)

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        if not is_iana_zone(value):
            raise ValueError(f"{value!r} is not an IANA time zone")
        return value


class DayOverride(BaseModel):
    """A day the package does not know as closed (``closed_days``), or a package holiday
    the business works (``open_days``); ``jurisdictions`` null: all of the region's."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    day: date
    name: Name
    jurisdictions: list[Jurisdiction] | None = None


class HolidaySetSpec(BaseModel):
    """Holidays for another purpose than business days (a tariff's), by fixed date."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    description: Name
    fixed_dates: dict[MonthDay, Name] = Field(min_length=1)

    @field_validator("fixed_dates")
    @classmethod
    def _real_days(cls, value: dict[str, str]) -> dict[str, str]:
        for month_day in value:
            date.fromisoformat(f"2000-{month_day}")  # a leap year: 02-29 is allowed
        return value


class CalendarSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    region: Region
    country: str = Field(pattern=r"^[A-Z]{2}$")
    language: str = Field(pattern=r"^[a-z]{2}(_[A-Z]{2})?$", description="holiday names")
    default_jurisdiction: Jurisdiction
    hours: WeekHours
    jurisdictions: dict[Jurisdiction, JurisdictionSpec] = Field(min_length=1)
    closed_days: list[DayOverride] = Field(default_factory=list)
    open_days: list[DayOverride] = Field(default_factory=list)
    holiday_sets: dict[SetName, HolidaySetSpec] = Field(default_factory=dict)

    _hours = field_validator("hours")(_check_hours)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        for code in self.jurisdictions:
            if code.split("-")[0] != self.country:
                raise ValueError(f"jurisdiction {code} is not in {self.country}")
        if self.default_jurisdiction not in self.jurisdictions:
            raise ValueError(f"default_jurisdiction {self.default_jurisdiction} is not listed")
        for override in (*self.closed_days, *self.open_days):
            unknown = set(override.jurisdictions or ()) - set(self.jurisdictions)
            if unknown:
                raise ValueError(f"override {override.day} names unknown {sorted(unknown)}")
        return self
