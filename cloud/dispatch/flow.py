"""From an alarm to a verified repair: the pure pieces the dispatch service's consumers
and sweeps use (issue 17). No I/O, no clock: the service reads the facts, asks here, and
stores what comes back.

* :class:`FlowSettings` — the verification policy (watch window, fraction of the
  clear-sky expectation), how long a job is expected to take, and what each work-order
  type needs of a technician (:data:`LICENCES`, :data:`SKILLS`);
* :func:`site_jurisdiction` — the site's jurisdiction on its region's business calendar,
  from the site's time zone (the registry announces no jurisdiction);
* :func:`first_window` — the window auto-assignment judges technicians for: the first
  span of the site's business hours, from now, long enough for the job;
* :func:`visit_window` — the job's time for eligibility and scoring: its confirmed
  appointment's booking when the customer has one, else :func:`first_window`;
* :func:`build_job` / :func:`with_workload` — a work order and the technicians as
  :func:`cloud.dispatch.assignment.assign` sees them;
* :func:`why_none` — an operator's sentence for a job nobody could take;
* :func:`merge_counters` — pv_wh readings since a resolve, first and last per inverter.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from cloud.calendars import BusinessCalendar
from cloud.dispatch.assignment import Job, Location, NoneEligible, OpenJob, Technician
from cloud.dispatch.lifecycle import MAX_REASON, SLA_PAUSED_STATES
from cloud.dispatch.sla import JobFacts, Pause
from cloud.dispatch.verification import VerificationPolicy
from contracts.topics import Region

__all__ = [
    "LICENCES",
    "PRODUCTION_COUNTER",
    "SKILLS",
    "FlowSettings",
    "OpenOrder",
    "build_job",
    "first_window",
    "merge_counters",
    "site_jurisdiction",
    "sla_facts",
    "visit_window",
    "why_none",
    "with_workload",
]

#: The inverters' lifetime AC energy counter ingest announces (``telemetry.received``).
PRODUCTION_COUNTER = "pv_wh"
#: Licence kinds (``cloud/employees/catalogue.yaml``) any field job of the region needs:
#: work on a PV system's AC and DC side is licensed electrical work (AU: the state's
#: licence and the SAA accreditation; the US: the state's; Spain: instalador autorizado).
LICENCES: Mapping[Region, tuple[str, ...]] = {
    Region.AU: ("au-electrical", "au-saa-accreditation"),
    Region.US: ("us-state-electrical",),
    Region.ES: ("es-instalador-autorizado",),
}
#: Extra licence kinds per work-order type and region (a battery asks its endorsement).
TYPE_LICENCES: Mapping[tuple[Region, str], tuple[str, ...]] = {
    (Region.AU, "battery_fault"): ("au-battery-endorsement",),
}
#: Skills per work-order type: every job that opens an isolator or a battery isolates
#: and tests for dead first (the safety pre-start).
SKILLS: Mapping[str, tuple[str, ...]] = {
    "isolator_fault": ("dc_isolation",),
    "inverter_fault": ("dc_isolation",),
    "battery_fault": ("dc_isolation",),
    "production_shortfall": ("dc_isolation",),
    "meter_replacement": ("meter_install",),
    "inspection": (),
}
_PRIORITY = {"P1": 1, "P2": 2, "P3": 3, "P4": 4}
#: How far ahead a business-hours span is looked for (two weeks cover every holiday run).
_LOOKAHEAD_DAYS = 14


class FlowSettings(BaseSettings):
    """``POTR_DISPATCH_*``: verification and auto-assignment. The window is how long a
    repaired site is watched before it can be verified (30 minutes by default; the demo
    and tests set it short)."""

    model_config = SettingsConfigDict(
        env_prefix="POTR_DISPATCH_", extra="ignore", hide_input_in_errors=True
    )

    verify_window_s: float = Field(default=1800.0, ge=0, le=7 * 86400)
    verify_min_fraction: float = Field(default=0.5, gt=0, le=1)
    verify_min_expected_wh: float = Field(default=200.0, ge=0)
    #: The estimate auto-assignment books a technician for.
    job_duration_s: float = Field(default=2 * 3600.0, gt=0, le=12 * 3600)
    #: How often the sweeps run (policies due, SLA breaches, verification).
    sweep_s: float = Field(default=30.0, gt=0)
    #: How long a technician's location fixes are kept (privacy: days, not months).
    location_retention_days: float = Field(default=7.0, gt=0, le=90)
    #: How old a fix may be and still say where a technician is for assignment.
    location_fresh_s: float = Field(default=3600.0, gt=0, le=86400)

    def verification(self) -> VerificationPolicy:
        return VerificationPolicy(
            window=timedelta(seconds=self.verify_window_s),
            min_fraction=self.verify_min_fraction,
            min_expected_wh=self.verify_min_expected_wh,
        )

    @property
    def job_duration(self) -> timedelta:
        return timedelta(seconds=self.job_duration_s)


def site_jurisdiction(calendar: BusinessCalendar, time_zone: str | None) -> str:
    """The calendar's jurisdiction for a site in ``time_zone``: the region's default when
    its zone is the site's (or the zone is unknown), else the first, by code, of those in
    that zone. A zone several states share (America/New_York) picks one of them: the
    registry names no jurisdiction, and a wrong state's holidays or licence would show
    in the job's eligibility reasons."""
    default = calendar.default_jurisdiction
    if time_zone is None or str(calendar.time_zone(default)) == time_zone:
        return default
    same = sorted(j for j in calendar.jurisdictions if str(calendar.time_zone(j)) == time_zone)
    return same[0] if same else default


def first_window(
    calendar: BusinessCalendar, jurisdiction: str, now: datetime, duration: timedelta
) -> tuple[datetime, datetime]:
    """The first ``duration`` within one business-hours span of the site from ``now``
    (a job raised at night is judged for the next morning); ``now`` onwards when no span
    fits in :data:`_LOOKAHEAD_DAYS` (nobody is then on shift, and the job says so)."""
    zone = calendar.time_zone(jurisdiction)
    day = now.astimezone(zone).date()
    for offset in range(_LOOKAHEAD_DAYS):
        for starts, ends in calendar.business_hours(day + timedelta(days=offset), jurisdiction):
            begin = max(starts, now)
            if ends - begin >= duration:
                return begin, begin + duration
    return now, now + duration


def visit_window(
    booked: tuple[datetime, datetime] | None,
    calendar: BusinessCalendar,
    jurisdiction: str,
    now: datetime,
    duration: timedelta,
) -> tuple[datetime, datetime]:
    """When the job is done, as assignment judges a technician for it: with a confirmed
    appointment (``booked``: its arrival window), from the window's start to its end plus
    the job's ``duration`` — the booking the customer agreed to, whoever takes the job —
    else the :func:`first_window` from ``now``."""
    if booked is not None:
        starts, ends = booked
        return starts, ends + duration
    return first_window(calendar, jurisdiction, now, duration)


class OpenOrder(BaseModel):
    """A technician's open work order, as their workload: where, and whether they are on
    its site now."""

    model_config = ConfigDict(frozen=True)

    id: int
    assignee: str
    site: Location | None
    on_site: bool
    #: The booking of a confirmed appointment (assignment's clash filter), if any.
    starts: datetime | None = None
    ends: datetime | None = None


def build_job(
    *,
    order_id: int,
    region: Region,
    type: str,
    priority: str,
    jurisdiction: str,
    site: Location,
    window: tuple[datetime, datetime],
    sla_due: datetime,
    duration: timedelta | None = None,
) -> Job:
    """The work order as assignment judges it: the region's and the type's licences and
    skills, the window (``duration``: the work within it; the whole window by default),
    its arrive-by as the SLA due time."""
    starts, ends = window
    return Job(
        id=str(order_id),
        region=region,
        jurisdiction=jurisdiction,
        licences=LICENCES.get(region, ()) + TYPE_LICENCES.get((region, type), ()),
        skills=SKILLS.get(type, ()),
        priority=_PRIORITY[priority],
        sla_due=sla_due,
        site=site,
        starts=starts,
        ends=ends,
        duration=duration or ends - starts,
    )


def with_workload(
    records: Iterable[Mapping[str, Any]],
    open_orders: Iterable[OpenOrder],
    positions: Mapping[str, Location] | None = None,
) -> list[Technician]:
    """Technicians from their stored records (``employee.changed`` payloads), each with
    their open work orders as workload and, when on a site, that site as where they are
    — else their latest on-duty location fix in ``positions`` (employee number → place;
    the caller passes fresh ones only). An open job whose site's place is unknown counts
    at the technician's base."""
    held: dict[str, list[OpenOrder]] = {}
    for order in open_orders:
        held.setdefault(order.assignee, []).append(order)
    out: list[Technician] = []
    for record in records:
        try:
            tech = Technician.model_validate(record)
        except ValidationError:
            continue  # a record assignment cannot read is nobody it may choose
        mine = held.get(tech.employee_no, [])
        jobs = tuple(
            OpenJob(id=str(o.id), site=o.site or tech.base, starts=o.starts, ends=o.ends)
            for o in mine
        )
        current = next((o.site for o in mine if o.on_site and o.site is not None), None)
        if current is None and positions is not None:
            current = positions.get(tech.employee_no)
        out.append(tech.model_copy(update={"open_jobs": jobs, "current": current}))
    return out


def why_none(outcome: NoneEligible) -> str:
    """Why no technician could take the job, one clause each, within the history's
    reason length: what the operator reads on the board before assigning by hand."""
    if not outcome.verdicts:
        return "no eligible technician: the region has no technician records"
    parts = [
        f"{v.employee_no}: " + ", ".join(f"{r.reason.value} ({r.detail})" for r in v.refusals)
        for v in outcome.verdicts
    ]
    text = "no eligible technician — " + "; ".join(parts)
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 1] + "…"


def merge_counters(
    counters: Mapping[str, Mapping[str, Any]],
    samples: Sequence[tuple[str, str, datetime, float]],
    since: datetime,
) -> dict[str, dict[str, Any]]:
    """``counters`` ({device: {first, first_at, last, last_at}}) with the pv_wh samples
    read at or after ``since``: the earliest reading is the first, the latest the last.
    A redelivered batch changes nothing (same readings, same first and last)."""
    out = {device: dict(c) for device, c in counters.items()}
    for device, metric, at, value in samples:
        if metric != PRODUCTION_COUNTER or at < since:
            continue
        stamp = at.isoformat()
        c = out.get(device)
        if c is None:
            out[device] = {"first": value, "first_at": stamp, "last": value, "last_at": stamp}
            continue
        if at < datetime.fromisoformat(c["first_at"]):
            c["first"], c["first_at"] = value, stamp
        if at > datetime.fromisoformat(c["last_at"]):
            c["last"], c["last_at"] = value, stamp
    return out


def sla_facts(
    *,
    created_at: datetime,
    priority: str,
    region: Region,
    jurisdiction: str,
    history: Iterable[tuple[datetime, str, str]],
) -> JobFacts:
    """The SLA timers' facts from a job's history (at, action, to_state), oldest first:
    the timers start at creation or the last reopen; the first arrival and resolve since
    then stop them; spells in a paused state (on hold, cannot complete) do not count."""
    rows = list(history)
    start = max((at for at, action, _ in rows if action == "reopen"), default=created_at)
    arrived = resolved = paused_at = None
    pauses: list[Pause] = []
    paused = {s.value for s in SLA_PAUSED_STATES}
    for at, action, to in rows:
        if at < start:
            continue
        if action == "arrive" and arrived is None:
            arrived = at
        if action == "resolve" and resolved is None:
            resolved = at
        if to in paused and paused_at is None:
            paused_at = at
        elif to not in paused and paused_at is not None:
            pauses.append(Pause(starts=paused_at, ends=at))
            paused_at = None
    if paused_at is not None:
        pauses.append(Pause(starts=paused_at))
    return JobFacts(
        created_at=start,
        priority=priority,
        region=region,
        jurisdiction=jurisdiction,
        arrived_at=arrived,
        resolved_at=resolved,
        pauses=tuple(pauses),
    )
