"""EmployeeService: the employees service's published interface (staff records, their
licences, hours and absences, and the regional business calendar's days for the API).

Staff link to identity's users by the opaque ``user_id`` only; nothing here reads another
service's schema. Every change emits one ``employee.changed`` (the record after it) into
``employees.outbox`` in the change's transaction (:mod:`cloud.events.employees`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from cloud.adapters.postgres import Connection, ConnectionPool, UniqueViolation, ping
from cloud.calendars import (
    BusinessCalendar,
    CalendarError,
    builtin_calendar,
    known_jurisdiction,
)
from cloud.employees import repository as repo
from cloud.employees.catalogue import builtin_catalogue
from cloud.employees.location_notice import LOCATION_NOTICE, LocationNotice
from cloud.employees.logic import available, qualified
from cloud.employees.models import (
    MAX_DAY,
    MIN_DAY,
    Absence,
    AbsenceIn,
    BusinessDays,
    Employee,
    EmployeeIn,
    EmployeePatch,
    HolidayOut,
    Licence,
    LicenceIn,
    LocationConsent,
    LocationDuty,
    check_home,
)
from cloud.employees.photos import BadgePhoto, BadgePhotoRefused, check_badge_photo
from cloud.events.employees import EmployeeChange, EmployeeChanged, employee_event
from cloud.events.outbox import emit
from contracts.timeutil import utc_now
from contracts.topics import Region

#: The employees service's PostgreSQL schema.
SCHEMA = "employees"
#: Most staff ``find_available`` considers (a region's whole active staff, in pages).
MAX_CANDIDATES = 10_000
_PAGE = 500


class EmployeesError(Exception):
    """Base of the service's refusals; ``str()`` is fit for an API answer."""


class NotFoundError(EmployeesError):
    pass


class ConflictError(EmployeesError):
    pass


class InvalidError(EmployeesError):
    """A request the models accept but the calendar or the record refuses (422)."""


def _today_utc() -> date:
    return datetime.now(UTC).date()


class EmployeeService:
    """Thread-safe (each call takes a pooled connection). ``today`` says which absences
    a record carries (those not ended before yesterday); ``calendars`` gives a region's
    business calendar (default: the shipped ones).

    ``region`` (the portal's: the URL's) narrows a call to staff at home there, in SQL;
    an employee of another region is not found. None: every region (CLI, tests)."""

    def __init__(
        self,
        pool: ConnectionPool[Connection[Any]],
        *,
        today: Callable[[], date] = _today_utc,
        calendars: Callable[[Region], BusinessCalendar] = builtin_calendar,
        clock: Callable[[], datetime] = utc_now,
        location_notice: LocationNotice = LOCATION_NOTICE,
    ) -> None:
        self._pool = pool
        self._today = today
        self._calendars = calendars
        self._clock = clock
        self._notice = location_notice

    def ping(self) -> None:
        ping(self._pool)

    # -- records --------------------------------------------------------------------
    def add(self, employee: EmployeeIn, *, region: Region | None = None) -> Employee:
        """Add a record with its skills, licences and hours; :class:`ConflictError` when
        its number, its user or one of its licences is taken; :class:`InvalidError` when
        it is at home outside ``region``."""
        if region is not None and employee.region != region:
            raise InvalidError(f"the employee's region is not {region.value}")
        with self._pool.connection() as conn:
            try:
                repo.insert_employee(conn, employee)
                repo.replace_skills(conn, employee.employee_no, employee.skills)
                repo.replace_hours(conn, employee.employee_no, employee.hours)
                for licence in employee.licences:
                    repo.insert_licence(conn, employee.employee_no, licence)
            except UniqueViolation as exc:
                raise _conflict(exc, employee.employee_no) from None
            return self._changed(conn, employee.employee_no, EmployeeChange.CREATED)

    def get(self, employee_no: str, *, region: Region | None = None) -> Employee:
        with self._pool.connection() as conn:
            self._lock(conn, employee_no, region, for_update=False)
            return self._load(conn, employee_no)

    def by_user(self, user_id: str) -> Employee | None:
        """The record linked to an identity user, if any."""
        with self._pool.connection() as conn:
            employee_no = repo.employee_no_of_user(conn, user_id)
            return None if employee_no is None else self._load(conn, employee_no)

    def list_employees(
        self,
        *,
        active: bool | None = None,
        jurisdiction: str | None = None,
        skill: str | None = None,
        limit: int = 100,
        offset: int = 0,
        region: Region | None = None,
    ) -> list[Employee]:
        """Records by employee number; filters: active or not, home jurisdiction, a skill."""
        with self._pool.connection() as conn:
            nos = repo.list_employee_nos(
                conn,
                active=active,
                jurisdiction=jurisdiction,
                skill=skill,
                limit=limit,
                offset=offset,
                region=region,
            )
            return repo.load_employees(conn, nos, self._absences_since())

    def update(
        self, employee_no: str, patch: EmployeePatch, *, region: Region | None = None
    ) -> Employee:
        """Change the fields the patch sets (``skills``, ``hours``: the whole list)."""
        given = patch.model_fields_set
        with self._pool.connection() as conn:
            row = repo.lock_employee(conn, employee_no, region)
            if row is None:
                raise NotFoundError(f"employee {employee_no} does not exist")
            if patch.jurisdiction is not None:
                try:
                    check_home(Region(row["region"]), patch.jurisdiction)
                except ValueError as exc:
                    raise InvalidError(str(exc)) from None
            values: dict[str, Any] = {
                f: getattr(patch, f)
                for f in ("user_id", "name", "jurisdiction", "time_zone", "active")
                if f in given
            }
            if patch.base is not None:
                values |= {
                    "base_latitude": patch.base.latitude,
                    "base_longitude": patch.base.longitude,
                    "base_address": patch.base.address,
                }
            try:
                repo.update_employee(conn, employee_no, values)
            except UniqueViolation as exc:
                raise _conflict(exc, employee_no) from None
            if patch.skills is not None:
                repo.replace_skills(conn, employee_no, patch.skills)
            if patch.hours is not None:
                repo.replace_hours(conn, employee_no, patch.hours)
            return self._changed(conn, employee_no, EmployeeChange.UPDATED, sorted(given))

    # -- licences -------------------------------------------------------------------
    def add_licence(
        self, employee_no: str, licence: LicenceIn, *, region: Region | None = None
    ) -> Licence:
        with self._pool.connection() as conn:
            self._lock(conn, employee_no, region)
            try:
                added = repo.insert_licence(conn, employee_no, licence)
            except UniqueViolation as exc:
                raise _conflict(exc, employee_no) from None
            repo.touch(conn, employee_no)
            self._changed(conn, employee_no, EmployeeChange.LICENCE_ADDED)
            return added

    def remove_licence(
        self, employee_no: str, licence_id: int, *, region: Region | None = None
    ) -> None:
        with self._pool.connection() as conn:
            self._lock(conn, employee_no, region)
            if not repo.delete_licence(conn, employee_no, licence_id):
                raise NotFoundError(f"employee {employee_no} has no licence {licence_id}")
            repo.touch(conn, employee_no)
            self._changed(conn, employee_no, EmployeeChange.LICENCE_REMOVED)

    # -- absences -------------------------------------------------------------------
    def add_absence(
        self, employee_no: str, absence: AbsenceIn, *, region: Region | None = None
    ) -> Absence:
        """Record an absence; :class:`ConflictError` when it shares a day with another."""
        with self._pool.connection() as conn:
            self._lock(
                conn, employee_no, region
            )  # two overlapping requests: the second sees the first
            clash = repo.overlapping_absence(conn, employee_no, absence)
            if clash is not None:
                raise ConflictError(f"absence overlaps absence {clash} of {employee_no}")
            added = repo.insert_absence(conn, employee_no, absence)
            repo.touch(conn, employee_no)
            self._changed(conn, employee_no, EmployeeChange.ABSENCE_ADDED)
            return added

    def list_absences(
        self,
        employee_no: str,
        first: date,
        last: date,
        *,
        limit: int = 100,
        offset: int = 0,
        region: Region | None = None,
    ) -> list[Absence]:
        """Absences sharing a day with ``first``..``last`` (both included)."""
        if last < first:
            raise InvalidError(f"{last} is before {first}")
        with self._pool.connection() as conn:
            self._lock(conn, employee_no, region, for_update=False)
            return repo.list_absences(conn, employee_no, first, last, limit, offset)

    def remove_absence(
        self, employee_no: str, absence_id: int, *, region: Region | None = None
    ) -> None:
        with self._pool.connection() as conn:
            self._lock(conn, employee_no, region)
            if not repo.delete_absence(conn, employee_no, absence_id):
                raise NotFoundError(f"employee {employee_no} has no absence {absence_id}")
            repo.touch(conn, employee_no)
            self._changed(conn, employee_no, EmployeeChange.ABSENCE_REMOVED)

    # -- dispatch's question ----------------------------------------------------------
    def find_available(
        self,
        when: datetime,
        jurisdiction: str,
        *,
        licences: Sequence[str] = (),
        skills: Sequence[str] = (),
        limit: int = 100,
        region: Region | None = None,
    ) -> list[Employee]:
        """Active staff at work at ``when`` who hold every licence kind and skill named,
        valid for work in ``jurisdiction`` that day (:func:`cloud.employees.logic.qualified`),
        by employee number."""
        _check_question(when, jurisdiction, licences, skills)
        found: list[Employee] = []
        with self._pool.connection() as conn:
            for offset in range(0, MAX_CANDIDATES, _PAGE):
                nos = repo.list_employee_nos(
                    conn,
                    active=True,
                    jurisdiction=None,
                    skill=None,
                    limit=_PAGE,
                    offset=offset,
                    region=region,
                )
                for employee in repo.load_employees(conn, nos, self._absences_since()):
                    calendar = self._calendars(employee.region)
                    if qualified(
                        employee,
                        when,
                        jurisdiction,
                        licences=licences,
                        skills=skills,
                        calendar=calendar,
                    ):
                        found.append(employee)
                        if len(found) == limit:
                            return found
                if len(nos) < _PAGE:
                    break
        return found

    # -- the business calendar --------------------------------------------------------
    def business_days(
        self, region: Region, jurisdiction: str | None, first: date, last: date
    ) -> BusinessDays:
        """Business days and holidays of a region's jurisdiction (default: the calendar's
        default jurisdiction) from ``first`` to ``last``, both included."""
        calendar = self._calendars(region)
        code = jurisdiction or calendar.default_jurisdiction
        try:
            days = calendar.business_days_between(first, last, code)
            holidays = calendar.holidays_between(first, last, code)
            zone = calendar.time_zone(code)
        except CalendarError as exc:
            raise InvalidError(str(exc)) from None
        return BusinessDays(
            region=region,
            jurisdiction=code,
            time_zone=zone.key,
            first=first,
            last=last,
            business_days=days,
            holidays=[HolidayOut(day=h.day, name=h.name) for h in holidays],
        )

    # -- the badge photo -----------------------------------------------------------------
    def set_badge_photo(
        self,
        employee_no: str,
        content: bytes,
        declared_type: str,
        by: str,
        *,
        region: Region | None = None,
    ) -> None:
        """Store (replace) the employee's badge photo; :class:`InvalidError` for one that
        is not an accepted image (:func:`~cloud.employees.photos.check_badge_photo`),
        :class:`NotFoundError` for an employee not on ``region``'s staff."""
        try:
            photo = check_badge_photo(content, declared_type)
        except BadgePhotoRefused as exc:
            raise InvalidError(str(exc)) from None
        with self._pool.connection() as conn:
            self._lock(conn, employee_no, region)
            repo.put_badge_photo(conn, employee_no, photo, by, self._clock())

    def has_badge_photo(self, employee_no: str, *, region: Region | None = None) -> bool:
        """Whether a badge photo of the employee is held (without reading it)."""
        with self._pool.connection() as conn:
            return repo.has_badge_photo(conn, employee_no, region)

    def badge_photo(self, employee_no: str, *, region: Region | None = None) -> BadgePhoto:
        """The employee's badge photo; :class:`NotFoundError` when none is held."""
        with self._pool.connection() as conn:
            photo = repo.badge_photo(conn, employee_no, region)
        if photo is None:
            raise NotFoundError(f"no badge photo of employee {employee_no}")
        return photo

    # -- inside -----------------------------------------------------------------------
    # -- the location notice -------------------------------------------------------------
    @property
    def location_notice(self) -> LocationNotice:
        return self._notice

    def location_consent(
        self, employee_no: str, *, region: Region | None = None, language: str = "en"
    ) -> LocationConsent:
        """The employee's standing on the location notice (:class:`NotFoundError` for one
        not on ``region``'s staff)."""
        with self._pool.connection() as conn:
            self._lock(conn, employee_no, region, for_update=False)
            return self._consent(conn, employee_no, language)

    def acknowledge_location_notice(
        self, employee_no: str, version: int, *, region: Region | None = None
    ) -> LocationConsent:
        """Record that the employee acknowledged ``version`` of the notice now; only the
        current version may be acknowledged (:class:`InvalidError` otherwise: they must
        read what it says now), and by an active employee only (:class:`ConflictError`).
        Acknowledging again adds another row (the record keeps every acknowledgement)."""
        if version != self._notice.version:
            raise InvalidError(
                f"the location notice is at version {self._notice.version}, not {version}:"
                " read it again"
            )
        with self._pool.connection() as conn:
            row = repo.lock_employee(conn, employee_no, region)
            if row is None:
                raise NotFoundError(f"employee {employee_no} does not exist")
            if not row["active"]:
                raise ConflictError(f"employee {employee_no} is not active: no duty to share")
            repo.insert_notice_ack(conn, employee_no, version, "acknowledge", self._clock())
            return self._consent(conn, employee_no)

    def withdraw_location_notice(
        self, employee_no: str, *, region: Region | None = None
    ) -> LocationConsent:
        """Withdraw the employee's acknowledgement: from now on nothing of their location
        is recorded until they acknowledge again."""
        with self._pool.connection() as conn:
            self._lock(conn, employee_no, region)
            repo.insert_notice_ack(
                conn, employee_no, self._notice.version, "withdraw", self._clock()
            )
            return self._consent(conn, employee_no)

    def location_duty(
        self, employee_no: str, at: datetime, *, region: Region | None = None
    ) -> LocationDuty:
        """What dispatch needs to judge a location fix taken at ``at``: whether the
        employee acknowledged the notice's current version, and whether ``at`` is inside
        their working hours (:func:`available`: hours, absences, holidays)."""
        if at.tzinfo is None or at.utcoffset() is None:
            raise InvalidError("the instant must carry its offset")
        with self._pool.connection() as conn:
            self._lock(conn, employee_no, region, for_update=False)
            consent = self._consent(conn, employee_no)
            employee = self._load(conn, employee_no)
        calendar = self._calendars(employee.region)
        return LocationDuty(
            employee_no=employee_no,
            notice_version=self._notice.version,
            acknowledged=consent.current,
            in_working_hours=available(employee, at, calendar),
        )

    def _consent(
        self, conn: Connection[Any], employee_no: str, language: str = "en"
    ) -> LocationConsent:
        consent = LocationConsent(
            employee_no=employee_no,
            notice_version=self._notice.version,
            notice_text=self._notice.in_language(language),
        )
        latest = repo.latest_notice_ack(conn, employee_no)
        if latest is None or latest[1] != "acknowledge":
            return consent
        version, _, at = latest
        return consent.model_copy(
            update={
                "acknowledged_version": version,
                "acknowledged_at": at,
                "current": version == self._notice.version,
            }
        )

    def _absences_since(self) -> date:
        return self._today() - timedelta(days=1)

    def _load(self, conn: Connection[Any], employee_no: str) -> Employee:
        found = repo.load_employees(conn, [employee_no], self._absences_since())
        if not found:
            raise NotFoundError(f"employee {employee_no} does not exist")
        return found[0]

    def _changed(
        self,
        conn: Connection[Any],
        employee_no: str,
        change: EmployeeChange,
        fields_changed: Sequence[str] = (),
    ) -> Employee:
        """The record as the change left it, told in ``employee.changed`` within the
        change's transaction (stored if and only if the change commits)."""
        employee = self._load(conn, employee_no)
        payload = EmployeeChanged.model_validate(
            employee.model_dump() | {"change": change, "fields_changed": tuple(fields_changed)}
        )
        emit(conn, SCHEMA, employee_event(payload))
        return employee

    @staticmethod
    def _lock(
        conn: Connection[Any],
        employee_no: str,
        region: Region | None = None,
        *,
        for_update: bool = True,
    ) -> None:
        """Raise :class:`NotFoundError` for an employee unknown (in ``region``); else hold
        the record until commit when ``for_update``."""
        if for_update:
            found = repo.lock_employee(conn, employee_no, region) is not None
        else:
            found = repo.employee_exists(conn, employee_no, region)
        if not found:
            raise NotFoundError(f"employee {employee_no} does not exist")


def _check_question(
    when: datetime, jurisdiction: str, licences: Sequence[str], skills: Sequence[str]
) -> None:
    """Refuse what would make every answer empty by mistake, or the calendar fail."""
    catalogue = builtin_catalogue()
    if not known_jurisdiction(jurisdiction):
        raise InvalidError(f"{jurisdiction[:16]!r} is no jurisdiction of the business calendars")
    unknown = [k for k in licences if k not in catalogue.licences]
    unknown += [c for c in skills if c not in catalogue.skills]
    if unknown:
        raise InvalidError(f"not in the catalogue: {unknown}")
    if when.tzinfo is None or when.utcoffset() is None:
        raise InvalidError("the instant must carry its offset")
    if not MIN_DAY.year < when.year < MAX_DAY.year:
        raise InvalidError(f"{when.year} is outside {MIN_DAY.year + 1}..{MAX_DAY.year - 1}")


def _conflict(exc: UniqueViolation, employee_no: str) -> ConflictError:
    constraint = exc.diag.constraint_name or ""
    if constraint == "employees_pkey":
        return ConflictError(f"employee {employee_no} already exists")
    if "user_id" in constraint:
        return ConflictError("that user is linked to another employee")
    if "licences" in constraint:
        return ConflictError("that licence (kind, jurisdiction, number) is recorded already")
    return ConflictError(f"conflict on {constraint or 'a unique value'}")
