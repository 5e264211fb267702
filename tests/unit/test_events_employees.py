"""``employee.changed`` (cloud.events.employees) and the demo's MOSIEs as dispatch sees
them: the event carries the employees API's record (an absence's note left out) and
loads as dispatch's technician; the demo's MOSIE records make the AU one with valid
licences the only choice for an NSW job at any hour, for the reasons written by hand."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from cloud.dispatch.assignment import (
    Assignment,
    Job,
    Location,
    Reason,
    Technician,
    assign,
    judge,
)
from cloud.events.employees import EmployeeChange, EmployeeChanged, employee_event
from contracts.topics import Region
from potr.demo_people import MOSIE_LOGINS, mosie_records

SYDNEY = ZoneInfo("Australia/Sydney")

#: An employee as ``GET /api/v1/au/employees/E00042`` answers it (JSON).
RECORD: dict[str, Any] = {
    "employee_no": "E00042",
    "user_id": None,
    "name": "Ada Sparks",
    "region": "au",
    "jurisdiction": "AU-NSW",
    "base": {"latitude": -33.87, "longitude": 151.21, "address": "1 George St"},
    "time_zone": "Australia/Sydney",
    "active": True,
    "skills": [{"code": "dc_isolation", "jurisdiction": None, "expires_on": None}],
    "licences": [
        {
            "id": 5,
            "kind": "au-electrical",
            "jurisdiction": "AU-NSW",
            "number": "123456C",
            "valid_from": "2024-07-01",
            "expires_on": "2027-06-30",
        }
    ],
    "hours": [{"weekday": 1, "starts": "07:00:00", "ends": "15:30:00"}],
    "absences": [
        {"id": 9, "starts_on": "2025-11-03", "ends_on": "2025-11-07", "kind": "sick_leave",
         "note": "private"}
    ],
    "created_at": "2025-10-01T00:00:00Z",
    "updated_at": "2025-11-01T02:03:04Z",
}  # fmt: skip


def test_the_event_carries_the_record_without_notes() -> None:
    change = EmployeeChanged.model_validate(RECORD | {"change": "absence_added"})
    event = employee_event(change)
    assert (event.name, event.region, event.source) == ("employee.changed", Region.AU, "employees")
    assert event.occurred_at == datetime(2025, 11, 1, 2, 3, 4, tzinfo=ZoneInfo("UTC"))
    expected = RECORD | {"change": "absence_added", "fields_changed": []}
    expected["absences"] = [{k: v for k, v in RECORD["absences"][0].items() if k != "note"}]
    assert event.payload == expected
    parsed = EmployeeChanged.model_validate(event.payload)
    assert parsed.change is EmployeeChange.ABSENCE_ADDED
    tech = Technician.model_validate(parsed.model_dump())
    assert (tech.employee_no, tech.licences[0].expires_on) == ("E00042", date(2027, 6, 30))
    assert (tech.absences[0].starts_on, tech.hours[0].ends.hour) == (date(2025, 11, 3), 15)


#: Saturday 5 December 2026 in Sydney (no NSW holiday that week): the demo's "today".
TODAY = date(2026, 12, 5)


def _technicians() -> list[Technician]:
    return [
        Technician.model_validate(
            record.model_dump() | {"absences": [a.model_dump() for a in away]}
        )
        for record, away in mosie_records(TODAY)
    ]


@pytest.mark.parametrize(
    ("starts", "e1005"),
    [
        # Saturday, today: E1005 is on leave and has no hours on Saturdays.
        (datetime(2026, 12, 5, 0, 5, tzinfo=SYDNEY), [Reason.OFF_SHIFT, Reason.ABSENT]),
        (datetime(2026, 12, 5, 22, 30, tzinfo=SYDNEY), [Reason.OFF_SHIFT, Reason.ABSENT]),
        # Monday 10:00, inside E1005's office hours: only the leave refuses them.
        (datetime(2026, 12, 7, 10, tzinfo=SYDNEY), [Reason.ABSENT]),
    ],
)
def test_the_demo_au_job_goes_to_the_licensed_mosie_at_any_hour(
    starts: datetime, e1005: list[Reason]
) -> None:
    job = Job(
        id="wo-demo",
        region=Region.AU,
        jurisdiction="AU-NSW",
        licences=("au-electrical", "au-saa-accreditation"),
        skills=("dc_isolation", "inverter_commissioning"),
        priority=2,
        sla_due=starts + timedelta(hours=8),
        site=Location(latitude=-33.87, longitude=151.21),  # the Sydney demo site
        starts=starts,
        ends=starts + timedelta(hours=1),
        duration=timedelta(hours=1),
    )
    techs = _technicians()
    assert [t.employee_no for t in techs[:2]] == list(MOSIE_LOGINS)
    outcome = assign(job, techs)
    assert isinstance(outcome, Assignment)
    assert outcome.employee_no == "E1001"
    refused = {
        t.employee_no: [r.reason for r in judge(job, t).refusals]
        for t in techs
        if t.employee_no != "E1001"
    }
    assert refused == {
        "E2001": [Reason.REGION],
        "E1004": [Reason.LICENCE, Reason.LICENCE],  # both expired yesterday (4 Dec)
        "E1005": e1005,
        "E1006": [Reason.OFF_SHIFT],  # weekends 07:00-15:30 only
    }
