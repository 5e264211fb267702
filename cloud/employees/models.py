"""Employee records: what the API accepts (``*In``, ``*Patch``) and what it answers.

Every field is bounded: ids by pattern, numbers by range (no NaN or infinity), dates to
1950..2100, text by length and free of control characters (NUL included); time zones are
IANA names. Skills and licence kinds come from the catalogue (``catalogue.yaml``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time
from enum import StrEnum
from itertools import pairwise
from typing import Annotated, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from cloud.calendars import (
    JURISDICTION_PATTERN,
    builtin_calendar,
    is_iana_zone,
    known_jurisdiction,
)
from cloud.employees.catalogue import LICENCE_KIND_PATTERN, SKILL_PATTERN, builtin_catalogue
from contracts.topics import Region

EMPLOYEE_NO_PATTERN = r"^E[0-9]{1,9}$"
USER_ID_PATTERN = r"^usr_[0-9a-f]{32}$"
#: No control characters (NUL, newlines, escapes) in any text field.
_PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
MIN_DAY = date(1950, 1, 1)
MAX_DAY = date(2100, 12, 31)
MAX_ABSENCE_DAYS = 731
MAX_SKILLS = 64
MAX_LICENCES = 32
MAX_HOURS = 28


def _known_skill(code: str) -> str:
    if code not in builtin_catalogue().skills:
        raise ValueError(f"unknown skill {code!r} (see the catalogue)")
    return code


def _known_licence_kind(kind: str) -> str:
    if kind not in builtin_catalogue().licences:
        raise ValueError(f"unknown licence kind {kind!r} (see the catalogue)")
    return kind


def _calendar_jurisdiction(code: str) -> str:
    if not known_jurisdiction(code):
        raise ValueError(f"{code!r} is no jurisdiction of the business calendars")
    return code


def _iana(name: str) -> str:
    if not is_iana_zone(name):
        raise ValueError(f"{name!r} is not an IANA time zone")
    return name


def _whole_minute(value: time) -> time:
    if value.tzinfo is not None:
        raise ValueError("a local time carries no offset")
    if value.second or value.microsecond:
        raise ValueError("whole minutes only")
    return value


EmployeeNo = Annotated[
    str, Field(pattern=EMPLOYEE_NO_PATTERN, examples=["E00042"], description="HR's number")
]
UserId = Annotated[
    str,
    Field(pattern=USER_ID_PATTERN, description="the identity service's user (opaque)"),
]
Jurisdiction = Annotated[
    str, Field(pattern=JURISDICTION_PATTERN, examples=["AU-NSW", "ES", "US-CA"])
]
CalendarJurisdiction = Annotated[Jurisdiction, AfterValidator(_calendar_jurisdiction)]
SkillCode = Annotated[str, Field(pattern=SKILL_PATTERN), AfterValidator(_known_skill)]
LicenceKindCode = Annotated[
    str, Field(pattern=LICENCE_KIND_PATTERN), AfterValidator(_known_licence_kind)
]
TimeZone = Annotated[
    str,
    Field(min_length=1, max_length=64, examples=["Australia/Sydney"]),
    AfterValidator(_iana),
]
Day = Annotated[date, Field(ge=MIN_DAY, le=MAX_DAY)]
LocalTime = Annotated[time, AfterValidator(_whole_minute)]
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=_PRINTABLE)]
Address = Annotated[str, Field(min_length=1, max_length=500, pattern=_PRINTABLE)]
Note = Annotated[str, Field(min_length=1, max_length=500, pattern=_PRINTABLE)]
LicenceNumber = Annotated[
    str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9 ./-]{0,63}$", examples=["123456C"])
]
RowId = Annotated[int, Field(ge=1, le=2**63 - 1)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class BaseLocation(_Model):
    """Where the employee starts work from (depot or home); WGS 84 degrees."""

    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    address: Address | None = None


class Skill(_Model):
    code: SkillCode
    jurisdiction: Jurisdiction | None = Field(
        default=None, description="where it counts; null: anywhere"
    )
    expires_on: Day | None = Field(default=None, description="last valid day; null: no expiry")


class LicenceIn(_Model):
    kind: LicenceKindCode
    jurisdiction: Jurisdiction = Field(description="who issued it (ISO 3166-1 or 3166-2)")
    number: LicenceNumber
    valid_from: Day = Field(description="first valid day")
    expires_on: Day | None = Field(
        default=None, description="last valid day (included); null: no expiry date"
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.expires_on is not None and self.expires_on < self.valid_from:
            raise ValueError("expires_on is before valid_from")
        why = builtin_catalogue().licences[self.kind].refusal(self.jurisdiction)
        if why:
            raise ValueError(f"a {self.kind} licence {why}")
        return self


class Licence(LicenceIn):
    id: RowId


class WorkingHours(_Model):
    """One span of a week's working time, local wall clock in the employee's zone."""

    weekday: int = Field(ge=1, le=7, description="ISO weekday: 1 Monday … 7 Sunday")
    starts: LocalTime = Field(examples=["07:30"])
    ends: LocalTime = Field(examples=["16:00"], description="after starts (same day)")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.ends <= self.starts:
            raise ValueError("ends must be after starts")
        return self


class AbsenceKind(StrEnum):
    ANNUAL_LEAVE = "annual_leave"
    SICK_LEAVE = "sick_leave"
    PARENTAL_LEAVE = "parental_leave"
    TRAINING = "training"
    PUBLIC_DUTY = "public_duty"
    OTHER = "other"


class AbsenceIn(_Model):
    """Whole local days away, ``starts_on`` to ``ends_on`` included."""

    starts_on: Day
    ends_on: Day
    kind: AbsenceKind
    note: Note | None = None

    @model_validator(mode="after")
    def _span(self) -> Self:
        if self.ends_on < self.starts_on:
            raise ValueError("ends_on is before starts_on")
        if (self.ends_on - self.starts_on).days + 1 > MAX_ABSENCE_DAYS:
            raise ValueError(f"an absence spans at most {MAX_ABSENCE_DAYS} days")
        return self


class Absence(AbsenceIn):
    id: RowId


def _no_overlap(hours: Iterable[WorkingHours]) -> None:
    spans = sorted((h.weekday, h.starts, h.ends) for h in hours)
    for (day_a, _, ends), (day_b, starts, _) in pairwise(spans):
        if day_a == day_b and starts < ends:
            raise ValueError(f"working hours overlap on weekday {day_a}")


def _unique(values: Iterable[object], what: str) -> None:
    seen = list(values)
    if len(seen) != len(set(seen)):
        raise ValueError(f"{what} repeated")


class EmployeeIn(_Model):
    employee_no: EmployeeNo
    user_id: UserId | None = None
    name: Name
    region: Region = Field(description="home region: whose database keeps the record")
    jurisdiction: CalendarJurisdiction = Field(
        description="home state/territory/community: its business calendar and holidays"
    )
    base: BaseLocation
    time_zone: TimeZone = Field(description="IANA zone of the working hours")
    active: bool = True
    skills: list[Skill] = Field(default_factory=list, max_length=MAX_SKILLS)
    licences: list[LicenceIn] = Field(default_factory=list, max_length=MAX_LICENCES)
    hours: list[WorkingHours] = Field(default_factory=list, max_length=MAX_HOURS)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        check_home(self.region, self.jurisdiction)
        _unique((s.code for s in self.skills), "skill")
        _unique(((x.kind, x.jurisdiction, x.number) for x in self.licences), "licence")
        _no_overlap(self.hours)
        return self


class EmployeePatch(_Model):
    """Fields to change; those left out stay. ``skills`` and ``hours`` replace the lists;
    ``user_id: null`` unlinks the user."""

    user_id: UserId | None = None
    name: Name | None = None
    jurisdiction: CalendarJurisdiction | None = None
    base: BaseLocation | None = None
    time_zone: TimeZone | None = None
    active: bool | None = None
    skills: list[Skill] | None = Field(default=None, max_length=MAX_SKILLS)
    hours: list[WorkingHours] | None = Field(default=None, max_length=MAX_HOURS)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        for field in ("name", "base", "time_zone", "active", "jurisdiction"):
            if field in self.model_fields_set and getattr(self, field) is None:
                raise ValueError(f"{field} cannot be null")
        if self.skills is not None:
            _unique((s.code for s in self.skills), "skill")
        if self.hours is not None:
            _no_overlap(self.hours)
        return self


class Employee(_Model):
    """A staff record. ``absences``: those not ended before yesterday (the full history
    is ``GET …/absences``)."""

    employee_no: str
    user_id: str | None
    name: str
    region: Region
    jurisdiction: str
    base: BaseLocation
    time_zone: str
    active: bool
    skills: list[Skill]
    licences: list[Licence]
    hours: list[WorkingHours]
    absences: list[Absence]
    created_at: datetime
    updated_at: datetime


class HolidayOut(_Model):
    day: date
    name: str


class BusinessDays(_Model):
    """A jurisdiction's business days and holidays from ``from`` to ``to`` (included)."""

    region: Region
    jurisdiction: str
    time_zone: str
    first: date = Field(serialization_alias="from")
    last: date = Field(serialization_alias="to")
    business_days: list[date]
    holidays: list[HolidayOut]


def check_home(region: Region, jurisdiction: str) -> None:
    """``ValueError`` unless ``jurisdiction`` is in ``region``'s calendar."""
    if jurisdiction not in builtin_calendar(region).jurisdictions:
        raise ValueError(f"jurisdiction {jurisdiction} is not in region {region.value}")


class LocationConsent(_Model):
    """An employee's standing on the location notice: its current ``notice_version``,
    the version they last acknowledged and when (None: never, or withdrawn since), and
    whether that is the current one (``current``: their location may be recorded)."""

    employee_no: str
    notice_version: int
    notice_text: str
    acknowledged_version: int | None = None
    acknowledged_at: datetime | None = None
    current: bool = False


class LocationDuty(_Model):
    """What dispatch asks before storing a location fix: the notice's current version,
    whether the employee has acknowledged it, and whether ``at`` is inside their working
    hours (active, not absent, no holiday of their home jurisdiction, inside a span)."""

    employee_no: str
    notice_version: int
    acknowledged: bool
    in_working_hours: bool
