"""Employees (employee management): staff records linked to identity's users, their
skills and licences (with jurisdiction and expiry), working hours and absences; and the
regional business calendar's days for the API (the calendar itself is the shared
:mod:`cloud.calendars`).

Published interface: :class:`EmployeeService`, its models and errors, the location
notice (:data:`LOCATION_NOTICE`), the badge photo (:class:`BadgePhoto`), the pure rules
(:func:`licence_valid_on`, :func:`available`, :func:`qualified`), and
:func:`create_router` for the portal. Other services import nothing else from here.
"""

from cloud.employees.api import create_router
from cloud.employees.catalogue import Catalogue, builtin_catalogue
from cloud.employees.location_notice import LOCATION_NOTICE, LocationNotice
from cloud.employees.logic import (
    available,
    covers,
    licence_valid_on,
    qualified,
    skill_valid_on,
)
from cloud.employees.models import (
    Absence,
    AbsenceIn,
    AbsenceKind,
    BaseLocation,
    BusinessDays,
    Employee,
    EmployeeIn,
    EmployeePatch,
    Licence,
    LicenceIn,
    LocationConsent,
    LocationDuty,
    Skill,
    WorkingHours,
)
from cloud.employees.photos import MAX_BADGE_BYTES, BadgePhoto
from cloud.employees.service import (
    SCHEMA,
    ConflictError,
    EmployeesError,
    EmployeeService,
    InvalidError,
    NotFoundError,
)

__all__ = [
    "LOCATION_NOTICE",
    "MAX_BADGE_BYTES",
    "SCHEMA",
    "Absence",
    "AbsenceIn",
    "AbsenceKind",
    "BadgePhoto",
    "BaseLocation",
    "BusinessDays",
    "Catalogue",
    "ConflictError",
    "Employee",
    "EmployeeIn",
    "EmployeePatch",
    "EmployeeService",
    "EmployeesError",
    "InvalidError",
    "Licence",
    "LicenceIn",
    "LocationConsent",
    "LocationDuty",
    "LocationNotice",
    "NotFoundError",
    "Skill",
    "WorkingHours",
    "available",
    "builtin_catalogue",
    "covers",
    "create_router",
    "licence_valid_on",
    "qualified",
    "skill_valid_on",
]
