"""Pure rules over employee records: availability and qualification.

Licence, skill and absence validity are :mod:`cloud.workforce`'s (shared with dispatch,
which may not import this service); they are re-exported here unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from zoneinfo import ZoneInfo

from cloud.calendars import BusinessCalendar, builtin_calendar
from cloud.employees.models import Employee
from cloud.workforce import absent_on, covers, licence_valid_on, skill_valid_on

__all__ = [
    "absent_on",
    "available",
    "covers",
    "licence_valid_on",
    "qualified",
    "skill_valid_on",
]


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
