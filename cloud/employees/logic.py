"""Pure rules over employee records: licence and skill validity, availability.

Dates are local calendar days; a licence or skill is valid on its first and its last day
(``valid_from``, ``expires_on`` both included). Jurisdictions are ISO codes: one held for
a whole country (``ES``) covers work in each of its subdivisions (``ES-CN``); one of a
subdivision covers that subdivision only.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from zoneinfo import ZoneInfo

from cloud.calendars import BusinessCalendar, builtin_calendar
from cloud.employees.models import Absence, Employee, LicenceIn, Skill


def covers(held: str, wanted: str) -> bool:
    """A credential of jurisdiction ``held`` counts for work in ``wanted``."""
    return held == wanted or ("-" not in held and wanted.startswith(held + "-"))


def licence_valid_on(
    licences: Iterable[LicenceIn], kind: str, jurisdiction: str, day: date
) -> bool:
    """Some licence of ``kind`` covering ``jurisdiction`` is valid on ``day``."""
    return any(
        lic.kind == kind
        and covers(lic.jurisdiction, jurisdiction)
        and lic.valid_from <= day
        and (lic.expires_on is None or day <= lic.expires_on)
        for lic in licences
    )


def skill_valid_on(skills: Iterable[Skill], code: str, jurisdiction: str, day: date) -> bool:
    """The skill ``code`` is held, counts in ``jurisdiction`` and has not expired by ``day``."""
    return any(
        s.code == code
        and (s.jurisdiction is None or covers(s.jurisdiction, jurisdiction))
        and (s.expires_on is None or day <= s.expires_on)
        for s in skills
    )


def absent_on(absences: Iterable[Absence], day: date) -> bool:
    return any(a.starts_on <= day <= a.ends_on for a in absences)


def available(employee: Employee, when: datetime, calendar: BusinessCalendar | None = None) -> bool:
    """At work at the instant ``when`` (timezone-aware): active, inside one of their
    working-hours spans (local time in their zone), not absent that local day, and that
    day no holiday of their home jurisdiction (``calendar``: default the region's shipped
    one). Weekends are whatever their hours say."""
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError("when must be timezone-aware")
    if not employee.active:
        return False
    local = when.astimezone(ZoneInfo(employee.time_zone))
    day = local.date()
    if absent_on(employee.absences, day):
        return False
    if (calendar or builtin_calendar(employee.region)).is_holiday(day, employee.jurisdiction):
        return False
    now = local.time().replace(tzinfo=None)
    weekday = day.isoweekday()
    return any(h.weekday == weekday and h.starts <= now < h.ends for h in employee.hours)


def qualified(
    employee: Employee,
    when: datetime,
    jurisdiction: str,
    *,
    licences: Iterable[str] = (),
    skills: Iterable[str] = (),
    calendar: BusinessCalendar | None = None,
) -> bool:
    """Available at ``when`` and holding every licence kind in ``licences`` and every
    skill in ``skills``, valid for work in ``jurisdiction`` on that day (its local date
    in the employee's zone): dispatch's hard filter."""
    if not available(employee, when, calendar):
        return False
    day = when.astimezone(ZoneInfo(employee.time_zone)).date()
    return all(
        licence_valid_on(employee.licences, kind, jurisdiction, day) for kind in licences
    ) and all(skill_valid_on(employee.skills, code, jurisdiction, day) for code in skills)
