"""Appointment windows offered to the customer, confirmed, rescheduled and reminded of
(pure: no database, no clock — ``now`` is passed in).

A window is when the technician **arrives** (2 hours by default). Arriving at its very
end, they must still finish, so a window is offered only when some technician passes
every assignment filter (:func:`cloud.dispatch.assignment.judge`: region, licences and
skills valid that day, one working span of their own zone, no holiday of their home
jurisdiction, not away, no clash with a booked job) for the block from the window's start
to its end plus the job's estimated duration. The caller passes the technicians it
judged eligible for the job; their bookings of this same job are ignored (rescheduling
frees them).

Windows start on the site's local wall clock at whole multiples of ``step`` (08:00,
09:00 …), no earlier than ``now + lead``, earliest first, never overlapping one another
or an excluded window. Those ending by the SLA's arrive-by come first by construction;
when too few do, the earliest later ones fill the offer, flagged ``past_sla``. Instants
are in the site's zone; a wall time the clock skips (spring forward) is no start, a
repeated one (fall back) starts once, at its first occurrence.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Self
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from cloud.calendars import builtin_calendar
from cloud.dispatch.assignment import (
    CalendarFor,
    Code,
    Job,
    JobId,
    Jurisdiction,
    Location,
    Technician,
    TimeZone,
    judge,
)
from cloud.workforce import span_within_shift
from contracts.topics import Region

__all__ = [
    "REMINDER_LEADS",
    "Appointment",
    "AppointmentJob",
    "ConfirmRefusal",
    "Offer",
    "OfferSettings",
    "RefusalCode",
    "Window",
    "confirm",
    "label",
    "next_reminder_at",
    "offer_windows",
    "reminder_due",
    "reschedule",
]

#: Reminders before a window starts: the day before, and as the technician sets out.
REMINDER_LEADS: tuple[timedelta, ...] = (timedelta(hours=24), timedelta(hours=1))
_DAY = timedelta(days=1)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AppointmentJob(_Model):
    """A work order as appointments sees it: where (site and its zone), what it needs
    (the assignment filters' licences and skills), how long it takes and its arrive-by
    (:func:`cloud.dispatch.sla.due`; None: no SLA)."""

    id: JobId
    region: Region
    jurisdiction: Jurisdiction
    site_zone: TimeZone
    site: Location
    priority: int = Field(ge=1, le=4)
    licences: tuple[Code, ...] = Field(default=(), max_length=16)
    skills: tuple[Code, ...] = Field(default=(), max_length=16)
    duration: timedelta = Field(gt=timedelta(0), le=timedelta(hours=12))
    arrive_by: AwareDatetime | None = None


class OfferSettings(_Model):
    """How windows are offered. Defaults: 3 windows of 2 h starting on the hour, at least
    2 h ahead (a technician can get there), looked for up to 4 weeks ahead; the offer is
    good for 24 h."""

    count: int = Field(default=3, ge=1, le=10)
    length: timedelta = Field(default=timedelta(hours=2), ge=timedelta(minutes=30))
    step: timedelta = Field(default=timedelta(hours=1), ge=timedelta(minutes=15))
    lead: timedelta = Field(default=timedelta(hours=2), ge=timedelta(0))
    horizon: timedelta = Field(default=timedelta(days=28), gt=timedelta(0), le=timedelta(days=92))
    valid_for: timedelta = Field(default=timedelta(hours=24), gt=timedelta(0))

    @model_validator(mode="after")
    def _fits_a_day(self) -> Self:
        if self.length > timedelta(hours=12):
            raise ValueError("a window is at most 12 hours")
        if _DAY % self.step or self.step % timedelta(minutes=1):
            raise ValueError("step must divide a day into whole minutes")
        return self


class Window(_Model):
    """An arrival window, ``starts`` < ``ends``, in the site's zone. ``label``: for
    people, in the site's local time; ``technicians``: who could take it when offered;
    ``confirm_by``: the last instant it can be confirmed (``starts`` less the lead)."""

    starts: AwareDatetime
    ends: AwareDatetime
    label: str = Field(max_length=80)
    past_sla: bool = False
    technicians: tuple[str, ...] = ()
    confirm_by: AwareDatetime

    def same_time(self, other: Window) -> bool:
        return self.starts == other.starts and self.ends == other.ends

    def overlaps(self, other: Window) -> bool:
        return self.starts < other.ends and other.starts < self.ends


class Offer(_Model):
    job_id: JobId
    offered_at: AwareDatetime
    expires_at: AwareDatetime
    windows: tuple[Window, ...]


class Appointment(_Model):
    job_id: JobId
    window: Window
    confirmed_at: AwareDatetime


class RefusalCode(StrEnum):
    NOT_OFFERED = "not_offered"
    OFFER_EXPIRED = "offer_expired"
    TOO_LATE = "too_late"


class ConfirmRefusal(_Model):
    code: RefusalCode
    reason: str


# -- offering --------------------------------------------------------------------------


def offer_windows(
    job: AppointmentJob,
    technicians: Sequence[Technician],
    now: datetime,
    settings: OfferSettings | None = None,
    *,
    exclude: Iterable[Window] = (),
    calendars: CalendarFor = builtin_calendar,
) -> Offer:
    """Up to ``settings.count`` windows for ``job`` (fewer, maybe none, when the
    technicians have no room within the horizon)."""
    settings = settings or OfferSettings()
    zone = ZoneInfo(job.site_zone)
    crew = [_without_job(tech, job.id) for tech in technicians]
    excluded = tuple(exclude)
    earliest = now + settings.lead
    chosen: list[Window] = []
    for starts in _starts(earliest, now + settings.horizon, settings.step, zone):
        ends = (starts.astimezone(UTC) + settings.length).astimezone(zone)
        if chosen and starts < chosen[-1].ends:
            continue
        if any(starts < w.ends and w.starts < ends for w in excluded):
            continue
        able = _able(job, crew, starts, ends + job.duration, calendars)
        if not able:
            continue
        chosen.append(
            Window(
                starts=starts,
                ends=ends,
                label=label(starts, ends),
                past_sla=job.arrive_by is not None and ends > job.arrive_by,
                technicians=able,
                confirm_by=(starts.astimezone(UTC) - settings.lead).astimezone(zone),
            )
        )
        if len(chosen) == settings.count:
            break
    return Offer(
        job_id=job.id,
        offered_at=now,
        expires_at=now + settings.valid_for,
        windows=tuple(chosen),
    )


def _without_job(tech: Technician, job_id: str) -> Technician:
    kept = tuple(held for held in tech.open_jobs if held.id != job_id)
    if len(kept) == len(tech.open_jobs):
        return tech
    return tech.model_copy(update={"open_jobs": kept})


def _starts(
    earliest: datetime, latest: datetime, step: timedelta, zone: ZoneInfo
) -> Iterable[datetime]:
    """Local wall-clock starts at multiples of ``step`` from each local midnight, as
    instants in ``zone``, from ``earliest`` to ``latest``, in order, each once."""
    day = earliest.astimezone(zone).date()
    last_day = latest.astimezone(zone).date()
    per_day = _DAY // step
    previous: datetime | None = None
    while day <= last_day:
        for n in range(per_day):
            instant = _wall(day, n * step, zone)
            if instant is None or instant < earliest or instant > latest:
                continue
            if previous is not None and instant <= previous:
                continue
            previous = instant
            yield instant
        day += _DAY


def _wall(day: date, offset: timedelta, zone: ZoneInfo) -> datetime | None:
    """``day`` + ``offset`` on the local wall clock as an instant (its first occurrence),
    or None when the clock skips it."""
    naive = datetime.combine(day, time()) + offset
    local = naive.replace(tzinfo=zone)
    back = local.astimezone(UTC).astimezone(zone)
    return back if back.replace(tzinfo=None) == naive else None


def _able(
    job: AppointmentJob,
    crew: Sequence[Technician],
    starts: datetime,
    ends: datetime,
    calendars: CalendarFor,
) -> tuple[str, ...]:
    """Employee numbers of those who pass every assignment filter for ``starts``..``ends``."""
    as_assigned: Job | None = None
    able: list[str] = []
    for tech in crew:
        tz = ZoneInfo(tech.time_zone)
        # Cheap first: most candidate starts fall outside everyone's hours.
        if not span_within_shift(tech.hours, starts.astimezone(tz), ends.astimezone(tz)):
            continue
        if as_assigned is None:
            as_assigned = Job(
                id=job.id,
                region=job.region,
                jurisdiction=job.jurisdiction,
                licences=job.licences,
                skills=job.skills,
                priority=job.priority,
                sla_due=job.arrive_by or ends,
                site=job.site,
                starts=starts,
                ends=ends,
                duration=job.duration,
            )
        if judge(as_assigned, tech, calendars).eligible:
            able.append(tech.employee_no)
    return tuple(able)


def label(starts: datetime, ends: datetime) -> str:
    """``"Tue 6 Oct 2026, 08:00-10:00 AEDT"``; both zone names when DST changes inside."""
    first, last = starts.tzname() or "", ends.tzname() or ""
    day = f"{starts:%a} {starts.day} {starts:%b %Y}"
    if first == last:
        return f"{day}, {starts:%H:%M}-{ends:%H:%M} {first}".rstrip()
    return f"{day}, {starts:%H:%M} {first}-{ends:%H:%M} {last}"


# -- the customer's answer -------------------------------------------------------------


def confirm(window: Window, offer: Offer, now: datetime) -> Appointment | ConfirmRefusal:
    """The customer's choice of ``window`` from ``offer`` at ``now``: the appointment, or
    why not — not one of the offered windows, the offer expired, or too close to (or
    past) the window's start for a technician to get there."""
    offered = next((w for w in offer.windows if w.same_time(window)), None)
    if offered is None:
        return ConfirmRefusal(code=RefusalCode.NOT_OFFERED, reason="not one of the windows offered")
    if now >= offer.expires_at:
        return ConfirmRefusal(
            code=RefusalCode.OFFER_EXPIRED, reason=f"the offer expired at {offer.expires_at}"
        )
    if now > offered.confirm_by:
        return ConfirmRefusal(
            code=RefusalCode.TOO_LATE,
            reason=f"{offered.label} can be confirmed until {offered.confirm_by}",
        )
    return Appointment(job_id=offer.job_id, window=offered, confirmed_at=now)


def reschedule(
    old: Window,
    job: AppointmentJob,
    technicians: Sequence[Technician],
    now: datetime,
    settings: OfferSettings | None = None,
    *,
    exclude: Iterable[Window] = (),
    calendars: CalendarFor = builtin_calendar,
) -> Offer:
    """A new offer for a customer who cannot keep ``old``: windows overlapping neither it
    nor ``exclude`` (windows turned down before)."""
    return offer_windows(
        job, technicians, now, settings, exclude=(old, *exclude), calendars=calendars
    )


# -- reminders -------------------------------------------------------------------------


def reminder_due(
    window: Window,
    now: datetime,
    *,
    leads: Iterable[timedelta] = REMINDER_LEADS,
    sent: Iterable[timedelta] = (),
) -> timedelta | None:
    """The reminder to send at ``now``, by its lead, or None. Of the leads whose moment
    has come before the window starts, only the latest (shortest lead) counts: a missed
    day-before reminder is not sent once the hour-before one is due."""
    started = [lead for lead in leads if window.starts - lead <= now < window.starts]
    if not started:
        return None
    latest = min(started)
    return None if latest in set(sent) else latest


def next_reminder_at(
    window: Window, now: datetime, *, leads: Iterable[timedelta] = REMINDER_LEADS
) -> datetime | None:
    """When the next reminder falls due after ``now`` (to schedule a wake-up), or None."""
    upcoming = [window.starts - lead for lead in leads if window.starts - lead > now]
    return min(upcoming) if upcoming else None
