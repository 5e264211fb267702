"""The employees service's events (``employee.*``): the name and the payload, shared by
producer and consumer like :mod:`cloud.events.types` (kept apart so each service's
catalogue grows in its own module). The employees service emits them; dispatch keeps
its technicians from them, importing nothing of employees.

One event, ``employee.changed``, per committed change to a staff record (added; fields,
skills or hours changed; deactivated; a licence or an absence added or removed). Its
payload is the whole record as it is after the change, in the field names of the
employees API's ``Employee``, so a consumer replaces its copy rather than applying a
difference — a lost or repeated event then leaves nothing inconsistent once the next one
arrives — and dispatch's ``Technician`` loads it as it loads an API answer.
``change`` and ``fields_changed`` say what the change was, for audit and for consumers that
react to one kind (e.g. a deactivation).

Left out of the record: an absence's free-text ``note`` (it may say why someone is on
sick leave; no consumer needs it).
"""

from __future__ import annotations

from datetime import date, datetime, time
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from cloud.events.outbox import Event
from contracts.topics import Region

__all__ = [
    "EMPLOYEE_CHANGED",
    "EmployeeAbsence",
    "EmployeeBase",
    "EmployeeChange",
    "EmployeeChanged",
    "EmployeeHours",
    "EmployeeLicence",
    "EmployeeSkill",
    "employee_event",
]

#: A staff record changed (any change the employees service commits): the record after it.
EMPLOYEE_CHANGED = "employee.changed"
#: The emitting service (the ``source`` of its events).
SOURCE = "employees"


class EmployeeChange(StrEnum):
    """What the change was. ``updated`` covers every field of the record itself,
    skills and weekly hours (one request replaces those lists); ``fields_changed`` names them."""

    CREATED = "created"
    UPDATED = "updated"
    LICENCE_ADDED = "licence_added"
    LICENCE_REMOVED = "licence_removed"
    ABSENCE_ADDED = "absence_added"
    ABSENCE_REMOVED = "absence_removed"


class _Part(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class EmployeeBase(_Part):
    """Where the employee starts work from; WGS 84 degrees."""

    latitude: float
    longitude: float
    address: str | None = None


class EmployeeSkill(_Part):
    code: str
    jurisdiction: str | None = None
    expires_on: date | None = None


class EmployeeLicence(_Part):
    """``valid_from`` and ``expires_on`` both valid days (null: no expiry)."""

    id: int
    kind: str
    jurisdiction: str
    number: str
    valid_from: date
    expires_on: date | None = None


class EmployeeHours(_Part):
    """A weekly span, local wall clock in the record's ``time_zone``; ISO weekday."""

    weekday: int
    starts: time
    ends: time


class EmployeeAbsence(_Part):
    """Whole local days away, both included."""

    id: int
    starts_on: date
    ends_on: date
    kind: str


class EmployeeChanged(_Part):
    """Payload of ``employee.changed``: the record after the change (``absences``: those
    not ended before the day before the change, as the API answers) and what changed."""

    change: EmployeeChange
    fields_changed: tuple[str, ...] = ()
    employee_no: str
    user_id: str | None
    name: str
    region: Region
    jurisdiction: str
    base: EmployeeBase
    time_zone: str
    active: bool
    skills: tuple[EmployeeSkill, ...]
    licences: tuple[EmployeeLicence, ...]
    hours: tuple[EmployeeHours, ...]
    absences: tuple[EmployeeAbsence, ...]
    created_at: datetime
    updated_at: datetime


def employee_event(change: EmployeeChanged) -> Event:
    """The ``employee.changed`` event for ``change``, in the employee's home region, at
    the record's ``updated_at``. Its id is random: a record has no version to derive one
    from, and the outbox relays each row once (consumers dedupe by id)."""
    return Event(
        name=EMPLOYEE_CHANGED,
        region=change.region,
        source=SOURCE,
        occurred_at=change.updated_at,
        payload=change.model_dump(mode="json"),
    )
