"""Employee records: bounds of every field, licence validity at its edge dates,
availability from hours, absences and the home state's holidays."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time
from typing import Any, cast
from zoneinfo import ZoneInfo

import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from cloud.employees import (
    Absence,
    AbsenceIn,
    Employee,
    EmployeeIn,
    EmployeePatch,
    EmployeeService,
    LicenceIn,
    WorkingHours,
    available,
    builtin_catalogue,
    create_router,
    licence_valid_on,
    qualified,
)
from potr.cli_employees import parse_hours, parse_licence

SYDNEY = ZoneInfo("Australia/Sydney")
MELBOURNE = ZoneInfo("Australia/Melbourne")
NOW = datetime(2025, 1, 1, tzinfo=UTC)


def _employee_in(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "employee_no": "E00042",
        "user_id": "usr_" + "a" * 32,
        "name": "Ada Sparks",
        "region": "au",
        "jurisdiction": "AU-NSW",
        "base": {"latitude": -33.87, "longitude": 151.21, "address": "1 George St, Sydney"},
        "time_zone": "Australia/Sydney",
        "skills": [{"code": "pv_install"}],
        "licences": [
            {
                "kind": "au-electrical",
                "jurisdiction": "AU-NSW",
                "number": "123456C",
                "valid_from": "2024-07-01",
                "expires_on": "2027-06-30",
            }
        ],
        "hours": [{"weekday": d, "starts": "07:00", "ends": "15:30"} for d in range(1, 6)],
    }
    data.update(changes)
    return data


def _employee(absences: list[Absence] | None = None, **changes: Any) -> Employee:
    record = EmployeeIn.model_validate(_employee_in(**changes))
    return Employee(
        **record.model_dump(exclude={"licences"}),
        licences=[{**x.model_dump(), "id": n + 1} for n, x in enumerate(record.licences)],
        absences=absences or [],
        created_at=NOW,
        updated_at=NOW,
    )


# -- licences ------------------------------------------------------------------------------
NSW_LICENCE = LicenceIn(
    kind="au-electrical",
    jurisdiction="AU-NSW",
    number="123456C",
    valid_from=date(2024, 7, 1),
    expires_on=date(2027, 6, 30),
)


@pytest.mark.parametrize(
    ("day", "valid"),
    [
        (date(2024, 6, 30), False),  # the day before it starts
        (date(2024, 7, 1), True),  # its first day
        (date(2027, 6, 30), True),  # its last day
        (date(2027, 7, 1), False),  # the day after it expires
    ],
)
def test_a_licence_is_valid_from_its_first_to_its_last_day(day: date, valid: bool) -> None:
    assert licence_valid_on([NSW_LICENCE], "au-electrical", "AU-NSW", day) is valid


def test_a_licence_counts_for_its_kind_and_jurisdiction_only() -> None:
    day = date(2025, 1, 1)
    assert not licence_valid_on([NSW_LICENCE], "au-electrical", "AU-VIC", day)
    assert not licence_valid_on([NSW_LICENCE], "au-battery-endorsement", "AU-NSW", day)
    assert not licence_valid_on([], "au-electrical", "AU-NSW", day)


def test_a_country_wide_licence_covers_each_subdivision_but_not_the_reverse() -> None:
    day = date(2025, 1, 1)
    spain = LicenceIn(
        kind="es-instalador-autorizado",
        jurisdiction="ES",
        number="IBT-1",
        valid_from=date(2020, 1, 1),
    )
    madrid = spain.model_copy(update={"jurisdiction": "ES-MD"})
    assert licence_valid_on([spain], "es-instalador-autorizado", "ES-CN", day)
    assert licence_valid_on([spain], "es-instalador-autorizado", "ES", day)
    assert not licence_valid_on([madrid], "es-instalador-autorizado", "ES-CN", day)
    assert not licence_valid_on([madrid], "es-instalador-autorizado", "ES", day)
    # No expiry date: valid on any later day.
    assert licence_valid_on([spain], "es-instalador-autorizado", "ES-CN", date(2099, 12, 31))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"expires_on": "2024-06-30"}, "before valid_from"),
        ({"jurisdiction": "AU"}, "subdivision"),  # state licences name their state
        ({"jurisdiction": "US-CA"}, "issued in AU"),
        ({"kind": "au-plumbing"}, "unknown licence kind"),
        ({"number": "12\x0034"}, "pattern"),
        ({"valid_from": "1900-01-01"}, "greater than or equal"),
        ({"expires_on": "2101-01-01"}, "less than or equal"),
    ],
)
def test_a_bad_licence_is_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        LicenceIn.model_validate({**NSW_LICENCE.model_dump(), **changes})


def test_a_country_licence_names_the_country_only() -> None:
    with pytest.raises(ValidationError, match="all of AU"):
        LicenceIn(
            kind="au-saa-accreditation",
            jurisdiction="AU-NSW",
            number="S1",
            valid_from=date(2024, 1, 1),
        )


# -- the record's bounds ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"employee_no": "42"}, "pattern"),
        ({"employee_no": "E1234567890"}, "pattern"),
        ({"user_id": "u_123"}, "pattern"),
        ({"name": ""}, "at least 1"),
        ({"name": "Ada\x00Sparks"}, "pattern"),
        ({"name": "x" * 201}, "at most 200"),
        ({"time_zone": "Mars/Olympus"}, "IANA"),
        ({"time_zone": "localtime"}, "IANA"),
        ({"jurisdiction": "AU-XX"}, "no jurisdiction"),
        ({"jurisdiction": "ES-CN"}, "not in region au"),
        ({"region": "uk"}, "Input should be"),
        ({"base": {"latitude": math.nan, "longitude": 0}}, "finite"),
        ({"base": {"latitude": 0, "longitude": math.inf}}, "finite"),
        ({"base": {"latitude": 91, "longitude": 0}}, "less than or equal"),
        ({"base": {"latitude": 0, "longitude": 0, "address": "a\nb"}}, "pattern"),
        ({"skills": [{"code": "juggling"}]}, "unknown skill"),
        ({"skills": [{"code": "pv_install"}, {"code": "pv_install"}]}, "skill repeated"),
        ({"hours": [{"weekday": 8, "starts": "07:00", "ends": "15:00"}]}, "less than or equal"),
        ({"hours": [{"weekday": 1, "starts": "15:00", "ends": "07:00"}]}, "after starts"),
        ({"hours": [{"weekday": 1, "starts": "07:00:30", "ends": "15:00"}]}, "whole minutes"),
        (
            {
                "hours": [
                    {"weekday": 1, "starts": "07:00", "ends": "12:00"},
                    {"weekday": 1, "starts": "11:00", "ends": "15:00"},
                ]
            },
            "overlap",
        ),
        ({"surprise": True}, "Extra inputs"),
    ],
)
def test_an_employee_record_out_of_bounds_is_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        EmployeeIn.model_validate(_employee_in(**changes))


def test_absences_are_whole_days_in_order_and_at_most_two_years() -> None:
    AbsenceIn(starts_on=date(2025, 1, 1), ends_on=date(2025, 1, 1), kind="sick_leave")
    with pytest.raises(ValidationError, match="before starts_on"):
        AbsenceIn(starts_on=date(2025, 1, 2), ends_on=date(2025, 1, 1), kind="sick_leave")
    with pytest.raises(ValidationError, match="at most 731"):
        AbsenceIn(starts_on=date(2025, 1, 1), ends_on=date(2027, 1, 2), kind="parental_leave")
    with pytest.raises(ValidationError, match="Input should be"):
        AbsenceIn(starts_on=date(2025, 1, 1), ends_on=date(2025, 1, 1), kind="holiday")


def test_a_patch_may_unlink_the_user_but_not_null_a_required_field() -> None:
    assert EmployeePatch.model_validate({"user_id": None}).model_fields_set == {"user_id"}
    with pytest.raises(ValidationError, match="name cannot be null"):
        EmployeePatch.model_validate({"name": None})


def test_the_catalogue_names_the_licences_of_each_country() -> None:
    catalogue = builtin_catalogue()
    assert {"pv_install", "battery_install", "roof_work", "hv_switching"} <= set(catalogue.skills)
    countries = {kind.country for kind in catalogue.licences.values()}
    assert countries == {"AU", "US", "ES"}


# -- availability ----------------------------------------------------------------------------
def test_available_inside_working_hours_on_a_working_day() -> None:
    ada = _employee()
    # Tue 4 Nov 2025 (Melbourne Cup: a VIC holiday, not NSW's) 10:00 AEDT = 23:00 UTC Mon.
    assert available(ada, datetime(2025, 11, 3, 23, 0, tzinfo=UTC))
    assert available(ada, datetime(2025, 11, 4, 7, 0, tzinfo=SYDNEY))  # from 07:00
    assert available(ada, datetime(2025, 11, 4, 15, 29, tzinfo=SYDNEY))
    assert not available(ada, datetime(2025, 11, 4, 15, 30, tzinfo=SYDNEY))  # to 15:30
    assert not available(ada, datetime(2025, 11, 8, 10, 0, tzinfo=SYDNEY))  # a Saturday


def test_not_available_on_a_holiday_of_the_home_state() -> None:
    vic = _employee(jurisdiction="AU-VIC", time_zone="Australia/Melbourne")
    assert not available(vic, datetime(2025, 11, 4, 10, 0, tzinfo=MELBOURNE))  # Cup day
    assert available(vic, datetime(2025, 11, 5, 10, 0, tzinfo=MELBOURNE))
    nsw = _employee()
    assert not available(nsw, datetime(2025, 10, 6, 10, 0, tzinfo=SYDNEY))  # NSW Labour Day


def test_not_available_when_absent_or_inactive() -> None:
    leave = Absence(
        id=1, starts_on=date(2025, 11, 3), ends_on=date(2025, 11, 4), kind="annual_leave"
    )
    assert not available(_employee([leave]), datetime(2025, 11, 4, 10, 0, tzinfo=SYDNEY))
    assert available(_employee([leave]), datetime(2025, 11, 5, 10, 0, tzinfo=SYDNEY))
    assert not available(_employee(active=False), datetime(2025, 11, 5, 10, 0, tzinfo=SYDNEY))


def test_weekend_hours_make_a_weekend_available() -> None:
    saturday = WorkingHours(weekday=6, starts=time(8), ends=time(12))
    ada = _employee(hours=[saturday.model_dump()])
    assert available(ada, datetime(2025, 11, 8, 9, 0, tzinfo=SYDNEY))


def test_availability_needs_an_instant_with_an_offset() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        available(_employee(), datetime(2025, 11, 4, 10, 0))


def test_qualified_needs_every_licence_and_skill_valid_where_the_work_is() -> None:
    ada = _employee()
    when = datetime(2025, 11, 4, 10, 0, tzinfo=SYDNEY)
    assert qualified(ada, when, "AU-NSW", licences=["au-electrical"], skills=["pv_install"])
    assert not qualified(ada, when, "AU-VIC", licences=["au-electrical"])
    assert not qualified(ada, when, "AU-NSW", skills=["battery_install"])
    expired = datetime(2027, 7, 1, 10, 0, tzinfo=SYDNEY)  # a Thursday, licence ended 30 Jun
    assert not qualified(ada, expired, "AU-NSW", licences=["au-electrical"])


# -- the CLI's shorthand ----------------------------------------------------------------------
def test_cli_hours_and_licences_shorthand() -> None:
    assert parse_hours("mon-wed 07:00-15:30") == [
        {"weekday": d, "starts": "07:00", "ends": "15:30"} for d in (1, 2, 3)
    ]
    assert parse_hours("sat 08:00-12:00") == [{"weekday": 6, "starts": "08:00", "ends": "12:00"}]
    for bad in ("fri-mon 08:00-12:00", "someday 08:00-12:00", "mon"):
        with pytest.raises(ValueError, match=r"expected|comes after"):
            parse_hours(bad)
    assert parse_licence("au-electrical:AU-NSW:1:2024-07-01") == {
        "kind": "au-electrical",
        "jurisdiction": "AU-NSW",
        "number": "1",
        "valid_from": "2024-07-01",
    }
    with pytest.raises(ValueError, match="expected"):
        parse_licence("au-electrical:AU-NSW")


# -- the routes' documentation ------------------------------------------------------------------
def test_every_route_documents_every_status() -> None:
    app = FastAPI()
    # Only described, never called: no service behind it, no authorisation either.
    router = create_router(cast(EmployeeService, None), access=lambda route: lambda: None)
    app.include_router(router, prefix="/api/v1/{region}")
    for path, operations in app.openapi()["paths"].items():
        for method, operation in operations.items():
            codes = set(operation["responses"])
            assert {"401", "403", "422"} <= codes, (method, path)
            assert codes & {"200", "201", "204"}, (method, path)
            if "{employee_no}" in path:
                assert "404" in codes, (method, path)
            if method in ("post", "patch"):
                assert "409" in codes, (method, path)
