"""Who does a work order: hard filters, then a score (pure: no database, no clock).

Hard filters (every one must pass; :func:`eligible` names each that fails):

- ``region``: the technician's home region is the job's (another region is another
  database, employer and law; the only reason given for a technician of another region);
- ``inactive``: the record is active;
- ``licence`` / ``skill``: every licence kind and skill the job needs is held, covers the
  job's jurisdiction and is valid on the job's local date there (:mod:`cloud.workforce`,
  the rules employees uses: ``valid_from`` and ``expires_on`` both included, a country's
  credential covering its subdivisions);
- ``off_shift``: the job's window, in the technician's own zone, lies on one local day
  inside one of their weekly working spans;
- ``holiday``: that day is no public holiday of their home jurisdiction (the regional
  business calendar, as :func:`cloud.employees.available` judges it);
- ``absent``: they are not away that day;
- ``busy``: the window overlaps none of their open jobs' windows.

Score, lower is better (:class:`Weights`, data with documented defaults): travel —
haversine km from the technician's current job, or else their base, to the site, the
priority's factor applied — plus a cost per open job. SLA due time and priority are the
job's, the same for every candidate, so they order the jobs (:func:`assign_many`
assigns the soonest due first) rather than the technicians. Ties: employee number.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Annotated, Self
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from cloud.calendars import JURISDICTION_PATTERN, BusinessCalendar, builtin_calendar, is_iana_zone
from cloud.workforce import absent_on, licence_valid_on, skill_valid_on, span_within_shift
from contracts.topics import Region

#: Mean Earth radius (IUGG), km: the haversine's sphere.
EARTH_RADIUS_KM = 6371.0088
MAX_REASON_LEN = 500
MAX_BY_LEN = 64
_PRINTABLE = r"^[^\x00-\x1f\x7f]*$"

CalendarFor = Callable[[Region], BusinessCalendar]


def _iana(name: str) -> str:
    if not is_iana_zone(name):
        raise ValueError(f"{name[:64]!r} is not an IANA time zone")
    return name


JobId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]
EmployeeNo = Annotated[str, Field(pattern=r"^E[0-9]{1,9}$")]
Jurisdiction = Annotated[str, Field(pattern=JURISDICTION_PATTERN)]
Code = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{1,43}$")]
TimeZone = Annotated[str, Field(max_length=64), AfterValidator(_iana)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class _Snapshot(BaseModel):
    """Part of a technician as employees' API answers it: fields dispatch does not use
    (licence numbers, row ids, names) are ignored, so an employee record fits as is."""

    model_config = ConfigDict(extra="ignore", frozen=True, allow_inf_nan=False)


class Location(_Snapshot):
    """WGS 84 degrees."""

    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)


class Job(_Model):
    """An open work order as assignment sees it. ``priority``: 1 most urgent … 4.
    ``starts``..``ends``: the window the technician must be there and working;
    ``duration``: the estimate, within the window."""

    id: JobId
    region: Region
    jurisdiction: Jurisdiction
    licences: tuple[Code, ...] = Field(default=(), max_length=16, description="kinds")
    skills: tuple[Code, ...] = Field(default=(), max_length=16)
    priority: int = Field(ge=1, le=4)
    sla_due: AwareDatetime
    site: Location
    starts: AwareDatetime
    ends: AwareDatetime
    duration: timedelta = Field(gt=timedelta(0))

    @model_validator(mode="after")
    def _window(self) -> Self:
        if self.ends <= self.starts:
            raise ValueError("ends must be after starts")
        if self.duration > self.ends - self.starts:
            raise ValueError("duration is longer than the window")
        return self


class HeldLicence(_Snapshot):
    kind: str
    jurisdiction: Jurisdiction
    valid_from: date
    expires_on: date | None = None


class HeldSkill(_Snapshot):
    code: str
    jurisdiction: Jurisdiction | None = None
    expires_on: date | None = None


class Shift(_Snapshot):
    """A weekly working span, local wall clock in the technician's zone."""

    weekday: int = Field(ge=1, le=7, description="ISO weekday")
    starts: time
    ends: time


class Away(_Snapshot):
    """Whole local days away, both included."""

    starts_on: date
    ends_on: date


class OpenJob(_Model):
    """A job the technician already holds: its site and, once booked, its window."""

    id: JobId
    site: Location
    starts: AwareDatetime | None = None
    ends: AwareDatetime | None = None

    @model_validator(mode="after")
    def _window(self) -> Self:
        if (self.starts is None) != (self.ends is None):
            raise ValueError("a window has both starts and ends, or neither")
        if self.starts is not None and self.ends is not None and self.ends <= self.starts:
            raise ValueError("ends must be after starts")
        return self


class Technician(_Snapshot):
    """A MOSIE as assignment needs them: employees' record (same field names) plus the
    workload dispatch knows — open jobs and where they are working now, if anywhere."""

    employee_no: EmployeeNo
    region: Region
    jurisdiction: Jurisdiction = Field(description="home: whose public holidays apply")
    time_zone: TimeZone = Field(description="zone of the working hours")
    base: Location
    active: bool = True
    licences: tuple[HeldLicence, ...] = ()
    skills: tuple[HeldSkill, ...] = ()
    hours: tuple[Shift, ...] = ()
    absences: tuple[Away, ...] = ()
    open_jobs: tuple[OpenJob, ...] = ()
    current: Location | None = Field(default=None, description="the site worked on now")


class Reason(StrEnum):
    REGION = "region"
    INACTIVE = "inactive"
    LICENCE = "licence"
    SKILL = "skill"
    OFF_SHIFT = "off_shift"
    HOLIDAY = "holiday"
    ABSENT = "absent"
    BUSY = "busy"


#: Refusals an operator's override may not set aside: law and safety (region, licence,
#: skill), a person who is not there to ask (absent) or no longer works (inactive).
#: Hours, holidays and a clash are the operator's call (overtime, a call-out, a re-plan).
BINDING: frozenset[Reason] = frozenset(
    {Reason.REGION, Reason.INACTIVE, Reason.LICENCE, Reason.SKILL, Reason.ABSENT}
)


class Refusal(_Model):
    reason: Reason
    detail: str


class Verdict(_Model):
    """One technician judged for one job; eligible when nothing refused them."""

    employee_no: str
    refusals: tuple[Refusal, ...]

    @property
    def eligible(self) -> bool:
        return not self.refusals


class Weights(_Model):
    """What a candidate costs, in km of travel. Defaults: one open job costs as much as
    25 km of driving (≈ 20-30 minutes in suburbs), so a nearer technician wins unless they
    already carry more work; a P1 job counts each km double, a P2 one and a half times,
    since there the technician who gets there soonest matters most."""

    per_km: float = Field(default=1.0, ge=0)
    per_open_job: float = Field(default=25.0, ge=0)
    priority_travel_factor: dict[int, float] = Field(
        default_factory=lambda: {1: 2.0, 2: 1.5, 3: 1.0, 4: 1.0}
    )

    def travel_factor(self, priority: int) -> float:
        return self.priority_travel_factor.get(priority, 1.0)


class Score(_Model):
    """A candidate's cost and its parts (the operator screen shows them)."""

    employee_no: str
    distance_km: float
    from_current_job: bool
    open_jobs: int
    travel: float
    workload: float
    total: float


class Override(_Model):
    """A person's choice over the ranking, kept with the assignment (audit)."""

    replaced: str = Field(description="the employee the ranking chose")
    by: str
    reason: str
    skipped_eligibility: bool
    refusals: tuple[Refusal, ...] = Field(description="what the filters said (set aside)")


class Assignment(_Model):
    job: Job
    employee_no: str
    score: Score
    shortlist: tuple[Score, ...] = Field(description="eligible candidates, best first")
    override: Override | None = None


class NoneEligible(_Model):
    """Nobody passes the filters; ``verdicts`` say why, technician by technician."""

    job: Job
    verdicts: tuple[Verdict, ...]


class OverrideRefused(ValueError):
    """An override the rules forbid: a binding refusal, or a bad reason or author."""

    def __init__(self, message: str, refusals: Sequence[Refusal] = ()) -> None:
        super().__init__(message)
        self.refusals = tuple(refusals)


class BatchResult(_Model):
    outcomes: tuple[Assignment | NoneEligible, ...] = Field(description="in SLA order")
    technicians: tuple[Technician, ...] = Field(description="workloads after the batch")


# -- filters ---------------------------------------------------------------------------


def judge(job: Job, tech: Technician, calendars: CalendarFor = builtin_calendar) -> Verdict:
    """Every hard filter ``tech`` fails for ``job`` (none: eligible)."""
    return Verdict(employee_no=tech.employee_no, refusals=tuple(_refusals(job, tech, calendars)))


def eligible(
    job: Job, technicians: Iterable[Technician], calendars: CalendarFor = builtin_calendar
) -> list[Verdict]:
    """A verdict per technician, in their order: eligible, or every reason why not."""
    return [judge(job, tech, calendars) for tech in technicians]


def _refusals(job: Job, tech: Technician, calendars: CalendarFor) -> Iterable[Refusal]:
    if tech.region != job.region:
        # Nothing else is comparable across regions (another calendar, law, employer),
        # and most pairs of a fleet fail here: stop at the first gate.
        yield Refusal(reason=Reason.REGION, detail=f"works in {tech.region.value}")
        return
    if not tech.active:
        yield Refusal(reason=Reason.INACTIVE, detail="record inactive")
    yield from _credentials(job, tech, _job_day(job, calendars))
    yield from _time(job, tech, calendars)


def _job_day(job: Job, calendars: CalendarFor) -> date:
    """The job's local date where the work is: the day the law looks at."""
    return job.starts.astimezone(calendars(job.region).time_zone(job.jurisdiction)).date()


def _credentials(job: Job, tech: Technician, day: date) -> Iterable[Refusal]:
    for kind in job.licences:
        if not licence_valid_on(tech.licences, kind, job.jurisdiction, day):
            yield Refusal(
                reason=Reason.LICENCE, detail=f"no {kind} valid in {job.jurisdiction} on {day}"
            )
    for code in job.skills:
        if not skill_valid_on(tech.skills, code, job.jurisdiction, day):
            yield Refusal(
                reason=Reason.SKILL, detail=f"no {code} valid in {job.jurisdiction} on {day}"
            )


def _time(job: Job, tech: Technician, calendars: CalendarFor) -> Iterable[Refusal]:
    zone = ZoneInfo(tech.time_zone)
    starts, ends = job.starts.astimezone(zone), job.ends.astimezone(zone)
    day = starts.date()
    if not span_within_shift(tech.hours, starts, ends):
        yield Refusal(
            reason=Reason.OFF_SHIFT,
            detail=f"{starts:%a %H:%M}-{ends:%H:%M} {tech.time_zone} is outside their hours",
        )
    if calendars(tech.region).is_holiday(day, tech.jurisdiction):
        yield Refusal(reason=Reason.HOLIDAY, detail=f"{day} is a holiday in {tech.jurisdiction}")
    if absent_on(tech.absences, day):
        yield Refusal(reason=Reason.ABSENT, detail=f"away on {day}")
    for held in tech.open_jobs:
        if _overlaps(held, job):
            yield Refusal(reason=Reason.BUSY, detail=f"booked on {held.id} then")


def _overlaps(held: OpenJob, job: Job) -> bool:
    """A booked window meets the job's (half-open: one may end as the other starts)."""
    if held.starts is None or held.ends is None:
        return False
    return held.starts < job.ends and job.starts < held.ends


# -- score -----------------------------------------------------------------------------


def haversine_km(a: Location, b: Location) -> float:
    """Great-circle distance on a sphere of :data:`EARTH_RADIUS_KM`."""
    lat1, lat2 = math.radians(a.latitude), math.radians(b.latitude)
    dlat = lat2 - lat1
    dlon = math.radians(b.longitude - a.longitude)
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def score(job: Job, tech: Technician, weights: Weights) -> Score:
    start = tech.current or tech.base
    distance = haversine_km(start, job.site)
    travel = distance * weights.per_km * weights.travel_factor(job.priority)
    workload = len(tech.open_jobs) * weights.per_open_job
    return Score(
        employee_no=tech.employee_no,
        distance_km=distance,
        from_current_job=tech.current is not None,
        open_jobs=len(tech.open_jobs),
        travel=travel,
        workload=workload,
        total=travel + workload,
    )


def _ranked(scores: Iterable[Score]) -> tuple[Score, ...]:
    return tuple(sorted(scores, key=lambda s: (s.total, s.employee_no)))


# -- choosing --------------------------------------------------------------------------


def assign(
    job: Job,
    technicians: Sequence[Technician],
    weights: Weights | None = None,
    calendars: CalendarFor = builtin_calendar,
) -> Assignment | NoneEligible:
    """The best eligible technician for ``job`` with the ranked shortlist, or why none."""
    weights = weights or Weights()
    verdicts = eligible(job, technicians, calendars)
    shortlist = _ranked(
        score(job, tech, weights)
        for tech, verdict in zip(technicians, verdicts, strict=True)
        if verdict.eligible
    )
    if not shortlist:
        return NoneEligible(job=job, verdicts=tuple(verdicts))
    return Assignment(
        job=job, employee_no=shortlist[0].employee_no, score=shortlist[0], shortlist=shortlist
    )


def job_order(job: Job) -> tuple[datetime, int, str]:
    """Soonest SLA due first, then the more urgent priority, then the id."""
    return (job.sla_due, job.priority, job.id)


def assign_many(
    jobs: Iterable[Job],
    technicians: Iterable[Technician],
    weights: Weights | None = None,
    calendars: CalendarFor = builtin_calendar,
) -> BatchResult:
    """Assign ``jobs`` one by one in :func:`job_order`, each chosen technician taking the
    job into their open jobs (its site and window) before the next is judged — so a later
    job sees the workload and the clash."""
    weights = weights or Weights()
    crew = {tech.employee_no: tech for tech in technicians}
    outcomes: list[Assignment | NoneEligible] = []
    for job in sorted(jobs, key=job_order):
        outcome = assign(job, list(crew.values()), weights, calendars)
        outcomes.append(outcome)
        if isinstance(outcome, Assignment):
            chosen = crew[outcome.employee_no]
            taken = OpenJob(id=job.id, site=job.site, starts=job.starts, ends=job.ends)
            crew[chosen.employee_no] = chosen.model_copy(
                update={"open_jobs": (*chosen.open_jobs, taken)}
            )
    return BatchResult(outcomes=tuple(outcomes), technicians=tuple(crew.values()))


def override(
    assignment: Assignment,
    technician: Technician,
    reason: str,
    by: str,
    *,
    weights: Weights | None = None,
    calendars: CalendarFor = builtin_calendar,
) -> Assignment:
    """``assignment`` given to ``technician`` instead, by the person ``by`` for ``reason``
    (trimmed; 1 to :data:`MAX_REASON_LEN` printable characters). Refused
    (:class:`OverrideRefused`) when a :data:`BINDING` filter fails; allowed over hours,
    holidays and clashes (recorded: ``skipped_eligibility``) and over the score."""
    why = _checked_text(reason, MAX_REASON_LEN, "reason")
    who = _checked_text(by, MAX_BY_LEN, "by")
    if technician.employee_no == assignment.employee_no:
        raise OverrideRefused(f"{technician.employee_no} is already assigned")
    refusals = judge(assignment.job, technician, calendars).refusals
    binding = [r for r in refusals if r.reason in BINDING]
    if binding:
        raise OverrideRefused("; ".join(f"{r.reason.value}: {r.detail}" for r in binding), binding)
    return assignment.model_copy(
        update={
            "employee_no": technician.employee_no,
            "score": score(assignment.job, technician, weights or Weights()),
            "override": Override(
                replaced=assignment.employee_no,
                by=who,
                reason=why,
                skipped_eligibility=bool(refusals),
                refusals=refusals,
            ),
        }
    )


def _checked_text(text: str, limit: int, what: str) -> str:
    trimmed = text.strip()
    if not trimmed:
        raise OverrideRefused(f"{what} is empty")
    if len(trimmed) > limit:
        raise OverrideRefused(f"{what} is longer than {limit} characters")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in trimmed):
        raise OverrideRefused(f"{what} holds control characters")
    return trimmed
