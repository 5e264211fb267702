"""Employees against a real PostgreSQL: the service's CRUD and refusals, its
``employee.changed`` events in ``employees.outbox`` (one per change, the record as it now
is, loadable as dispatch's technician), the REST router over httpx's ASGI transport
(statuses, bounds, the calendar route), and ``potr employee``.

The router gets stand-in ``read``/``write`` dependencies (a role header), as the portal
passes in its own: what is tested here is the routes, not the authorisation.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from typer.testing import CliRunner

from cloud.adapters.postgres import create_pool
from cloud.dispatch.assignment import Job, Location, Reason, Technician, judge
from cloud.employees import (
    AbsenceIn,
    ConflictError,
    EmployeeIn,
    EmployeePatch,
    EmployeeService,
    LicenceIn,
    NotFoundError,
    create_router,
)
from cloud.events.employees import EmployeeChanged
from cloud.identity import Role
from cloud.portal.auth import access_dependencies
from cloud.portal.authz import CallerData
from cloud.portal.errors import add_error_handlers
from contracts.topics import Region
from potr.cli import app as cli
from tests.integration.api_world import migrated_database

pytestmark = pytest.mark.integration

USER = "usr_" + "0123456789abcdef" * 2


def _record(no: str = "E00042", **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "employee_no": no,
        "user_id": USER,
        "name": "Ada Sparks",
        "region": "au",
        "jurisdiction": "AU-NSW",
        "base": {"latitude": -33.87, "longitude": 151.21, "address": "1 George St, Sydney"},
        "time_zone": "Australia/Sydney",
        "skills": [{"code": "pv_install"}, {"code": "roof_work", "expires_on": "2026-03-31"}],
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


@pytest.fixture(scope="module")
def employees_db(postgres_server_url: str) -> Iterator[str]:
    """One migrated database for this module (each test empties the tables it uses):
    creating and migrating one per test cost about a second each."""
    with migrated_database(postgres_server_url) as url:
        yield url


@pytest.fixture
def database(employees_db: str) -> str:
    """The module's database with no employees (children go by cascade) nor events."""
    with psycopg.connect(employees_db, autocommit=True) as conn:
        conn.execute("TRUNCATE employees.employees, employees.outbox CASCADE")
    return employees_db


@pytest.fixture
def service(database: str) -> Iterator[EmployeeService]:
    pool = create_pool(database, name="test-employees", max_size=4)
    # "Today" is fixed: a record carries absences not ended before yesterday.
    yield EmployeeService(pool, today=lambda: date(2025, 11, 1))
    pool.close()


def test_service_keeps_whole_records_licences_and_absences(service: EmployeeService) -> None:
    added = service.add(EmployeeIn.model_validate(_record()))
    assert added == service.get("E00042")
    assert added.base.latitude == -33.87
    assert [s.code for s in added.skills] == ["pv_install", "roof_work"]
    assert added.skills[1].expires_on == date(2026, 3, 31)
    assert next((h.weekday, str(h.starts), str(h.ends)) for h in added.hours) == (
        1,
        "07:00:00",
        "15:30:00",
    )
    assert service.by_user(USER) == added
    with pytest.raises(ConflictError, match="already exists"):
        service.add(EmployeeIn.model_validate(_record(licences=[])))
    with pytest.raises(ConflictError, match="user is linked"):
        service.add(EmployeeIn.model_validate(_record("E00043", licences=[])))
    with pytest.raises(ConflictError, match="licence"):  # the same NSW licence number
        service.add(EmployeeIn.model_validate(_record("E00044", user_id=None)))
    with pytest.raises(NotFoundError):
        service.get("E99999")
    # The portal's region (the URL's): staff of another region are not found, nor listed.
    assert service.get("E00042", region=Region.AU) == added
    with pytest.raises(NotFoundError):
        service.get("E00042", region=Region.ES)
    with pytest.raises(NotFoundError):
        service.update("E00042", EmployeePatch(name="X"), region=Region.ES)
    assert service.list_employees(region=Region.ES) == []

    vic = service.add(
        EmployeeIn.model_validate(
            _record("E00050", user_id=None, jurisdiction="AU-VIC", licences=[], skills=[])
        )
    )
    assert [e.employee_no for e in service.list_employees()] == ["E00042", "E00050"]
    assert [e.employee_no for e in service.list_employees(skill="roof_work")] == ["E00042"]
    assert [e.employee_no for e in service.list_employees(jurisdiction="AU-VIC")] == ["E00050"]

    changed = service.update(
        "E00050",
        EmployeePatch.model_validate(
            {
                "name": "Bo Volt",
                "active": False,
                "hours": [{"weekday": 6, "starts": "08:00", "ends": "12:00"}],
            }
        ),
    )
    assert (changed.name, changed.active, len(changed.hours)) == ("Bo Volt", False, 1)
    assert changed.updated_at > vic.updated_at
    assert [e.employee_no for e in service.list_employees(active=True)] == ["E00042"]
    unlinked = service.update("E00042", EmployeePatch.model_validate({"user_id": None}))
    assert unlinked.user_id is None
    assert unlinked.name == "Ada Sparks"  # fields left out stay

    # Licences and absences.
    service.remove_licence("E00042", added.licences[0].id)
    saa = service.add_licence(
        "E00042",
        LicenceIn(
            kind="au-battery-endorsement",
            jurisdiction="AU",
            number="S1234",
            valid_from=date(2024, 1, 1),
            expires_on=date(2026, 1, 1),
        ),
    )
    assert service.get("E00042").licences == [saa]
    service.remove_licence("E00042", saa.id)
    with pytest.raises(NotFoundError, match="no licence"):
        service.remove_licence("E00042", saa.id)

    old = service.add_absence(
        "E00042", AbsenceIn(starts_on=date(2025, 10, 1), ends_on=date(2025, 10, 3), kind="training")
    )
    leave = service.add_absence(
        "E00042",
        AbsenceIn(starts_on=date(2025, 11, 3), ends_on=date(2025, 11, 7), kind="annual_leave"),
    )
    with pytest.raises(ConflictError, match="overlaps"):  # shares 7 Nov
        service.add_absence(
            "E00042",
            AbsenceIn(starts_on=date(2025, 11, 7), ends_on=date(2025, 11, 8), kind="sick_leave"),
        )
    # The record carries absences not ended before yesterday (31 Oct); history by range.
    assert service.get("E00042").absences == [leave]
    assert service.list_absences("E00042", date(2025, 1, 1), date(2025, 12, 31)) == [old, leave]
    assert service.list_absences("E00042", date(2025, 10, 3), date(2025, 10, 3)) == [old]
    service.remove_absence("E00042", old.id)
    with pytest.raises(NotFoundError):
        service.remove_absence("E00042", old.id)
    with pytest.raises(NotFoundError):
        service.add_absence(
            "E00001", AbsenceIn(starts_on=date(2025, 1, 1), ends_on=date(2025, 1, 1), kind="other")
        )


def _outbox(database: str) -> list[tuple[str, str, str, Any]]:
    with psycopg.connect(database) as conn:
        rows = conn.execute(
            "SELECT name, region, source, payload FROM employees.outbox ORDER BY id"
        ).fetchall()
    return [(r[0], r[1], r[2], r[3]) for r in rows]


def test_each_change_emits_the_record_as_it_now_is(service: EmployeeService, database: str) -> None:
    """Every committed change writes exactly one ``employee.changed`` whose payload is the
    API's record after it (an absence's note left out); a refused change writes none; the
    payload loads as dispatch's technician and is judged on what it says."""
    seen = 0

    def one_event(change: str, fields: list[str] | None = None) -> dict[str, Any]:
        nonlocal seen
        rows = _outbox(database)
        assert len(rows) == seen + 1, rows[seen:]
        seen += 1
        name, region, source, payload = rows[-1]
        assert (name, region, source) == ("employee.changed", "au", "employees")
        record = service.get("E00042").model_dump(mode="json")
        for absence in record["absences"]:
            del absence["note"]
        assert payload == record | {"change": change, "fields_changed": fields or []}
        return dict(payload)

    added = service.add(EmployeeIn.model_validate(_record()))
    one_event("created")
    service.update("E00042", EmployeePatch(name="Ada Volt"))
    assert one_event("updated", ["name"])["name"] == "Ada Volt"
    service.update("E00042", EmployeePatch.model_validate({"skills": [{"code": "dc_isolation"}]}))
    assert one_event("updated", ["skills"])["skills"] == [
        {"code": "dc_isolation", "jurisdiction": None, "expires_on": None}
    ]
    saturday = {"weekday": 6, "starts": "08:00", "ends": "12:00"}
    service.update("E00042", EmployeePatch.model_validate({"hours": [saturday]}))
    assert one_event("updated", ["hours"])["hours"] == [
        saturday | {"starts": "08:00:00", "ends": "12:00:00"}
    ]
    saa = service.add_licence(
        "E00042",
        LicenceIn(
            kind="au-saa-accreditation",
            jurisdiction="AU",
            number="A4242",
            valid_from=date(2025, 1, 1),
            expires_on=date(2025, 12, 31),
        ),
    )
    assert [x["kind"] for x in one_event("licence_added")["licences"]] == [
        "au-electrical",
        "au-saa-accreditation",
    ]
    service.remove_licence("E00042", added.licences[0].id)
    assert [x["id"] for x in one_event("licence_removed")["licences"]] == [saa.id]
    leave = service.add_absence(
        "E00042",
        AbsenceIn(
            starts_on=date(2025, 11, 8), ends_on=date(2025, 11, 9), kind="sick_leave", note="flu"
        ),
    )
    assert one_event("absence_added")["absences"] == [
        {"id": leave.id, "starts_on": "2025-11-08", "ends_on": "2025-11-09", "kind": "sick_leave"}
    ]
    # Refused changes commit nothing, so tell nothing.
    with pytest.raises(ConflictError):
        service.add_absence(
            "E00042",
            AbsenceIn(starts_on=date(2025, 11, 9), ends_on=date(2025, 11, 9), kind="other"),
        )
    with pytest.raises(NotFoundError):
        service.remove_licence("E00042", added.licences[0].id)
    assert len(_outbox(database)) == seen

    # Dispatch's technician, as loaded from the event: on leave Saturday 8 November 2025
    # (a Saturday in Sydney, 09:00-10:00 local), SAA-accredited that day, NSW licence gone.
    payload = EmployeeChanged.model_validate(_outbox(database)[-1][3])
    tech = Technician.model_validate(payload.model_dump())
    sydney = ZoneInfo("Australia/Sydney")
    job = Job(
        id="wo-1",
        region=Region.AU,
        jurisdiction="AU-NSW",
        licences=("au-electrical", "au-saa-accreditation"),
        skills=("dc_isolation",),
        priority=2,
        sla_due=datetime(2025, 11, 8, 17, tzinfo=sydney),
        site=Location(latitude=-33.87, longitude=151.21),
        starts=datetime(2025, 11, 8, 9, tzinfo=sydney),
        ends=datetime(2025, 11, 8, 10, tzinfo=sydney),
        duration=timedelta(hours=1),
    )
    assert [r.reason for r in judge(job, tech).refusals] == [Reason.LICENCE, Reason.ABSENT]

    service.remove_absence("E00042", leave.id)
    assert one_event("absence_removed")["absences"] == []
    service.update("E00042", EmployeePatch(active=False))
    assert one_event("updated", ["active"])["active"] is False
    tech = Technician.model_validate(
        EmployeeChanged.model_validate(_outbox(database)[-1][3]).model_dump()
    )
    assert [r.reason for r in judge(job, tech).refusals] == [Reason.INACTIVE, Reason.LICENCE]


# -- the REST router ----------------------------------------------------------------------------
def _caller(token: str) -> CallerData:
    """A stand-in token: the role's name, a caller of au."""
    return CallerData(token, Role(token), Region.AU)


@pytest.fixture
async def api(service: EmployeeService) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    add_error_handlers(app)
    router = create_router(service, access=access_dependencies(_caller))
    app.include_router(router, prefix="/api/v1/{region}")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://test/api/v1/au",
        headers={"Authorization": "Bearer operator"},
    ) as client:
        yield client


async def test_routes_add_read_change_and_refuse(api: httpx.AsyncClient) -> None:
    created = await api.post("/employees", json=_record())
    assert created.status_code == 201, created.text
    assert created.json()["licences"][0]["id"] >= 1
    assert (await api.post("/employees", json=_record())).status_code == 409
    got = await api.get("/employees/E00042")
    assert got.status_code == 200
    assert got.json() == created.json()
    assert (await api.get("/employees/E99999")).status_code == 404
    assert (await api.get("/employees/not-a-number")).status_code == 422
    listed = await api.get("/employees", params={"skill": "pv_install"})
    assert [e["employee_no"] for e in listed.json()] == ["E00042"]

    patched = await api.patch("/employees/E00042", json={"name": "Ada K. Sparks"})
    assert patched.json()["name"] == "Ada K. Sparks"
    moved = await api.patch("/employees/E00042", json={"jurisdiction": "ES-CN"})
    assert moved.status_code == 422
    assert "not in region au" in moved.json()["detail"]

    battery = {
        "kind": "au-battery-endorsement",
        "jurisdiction": "AU",
        "number": "S1234",
        "valid_from": "2024-01-01",
    }
    licence = await api.post("/employees/E00042/licences", json=battery)
    assert licence.status_code == 201
    assert (await api.post("/employees/E00042/licences", json=battery)).status_code == 409
    assert (await api.post("/employees/E99999/licences", json=battery)).status_code == 404
    path = f"/employees/E00042/licences/{licence.json()['id']}"
    assert (await api.delete(path)).status_code == 204
    assert (await api.delete(path)).status_code == 404

    leave = {"starts_on": "2025-11-03", "ends_on": "2025-11-07", "kind": "annual_leave"}
    absence = await api.post("/employees/E00042/absences", json=leave)
    assert absence.status_code == 201
    assert (await api.post("/employees/E00042/absences", json=leave)).status_code == 409
    history = await api.get(
        "/employees/E00042/absences", params={"from": "2025-11-01", "to": "2025-11-30"}
    )
    assert history.json() == [absence.json()]
    backwards = await api.get(
        "/employees/E00042/absences", params={"from": "2025-11-30", "to": "2025-11-01"}
    )
    assert backwards.status_code == 422
    assert (
        await api.delete(f"/employees/E00042/absences/{absence.json()['id']}")
    ).status_code == 204


async def test_out_of_bounds_input_is_422_and_authorisation_applies(api: httpx.AsyncClient) -> None:
    # Python's JSON reader accepts NaN and Infinity; the models must not, and the refusal
    # that names them must still be JSON.
    raw = httpx.Request("POST", "http://x", json={**_record(), "base": "@BASE@"}).content
    for base, where in (
        (b'{"latitude": NaN, "longitude": 0}', "latitude"),
        (b'{"latitude": 0, "longitude": -Infinity}', "longitude"),
    ):
        answer = await api.post(
            "/employees",
            content=raw.replace(b'"@BASE@"', base),
            headers={"Content-Type": "application/json"},
        )
        assert answer.status_code == 422
        assert where in answer.text
    for changes in (
        {"name": "Ada\u0000"},
        {"time_zone": "Mars/Olympus"},
        {"employee_no": "E" + "9" * 10},
    ):
        answer = await api.post("/employees", json=_record(**changes))
        assert answer.status_code == 422, changes
    assert (await api.get("/employees", params={"limit": 501})).status_code == 422
    assert (await api.delete("/employees/E00042/absences/0")).status_code == 422

    # The portal's policy: support reads, writes nothing; a customer reads no staff but
    # the calendar; another region's URL is not the caller's; nobody: 401.
    support = {"Authorization": "Bearer support"}
    assert (await api.get("/employees", headers=support)).status_code == 200
    assert (await api.post("/employees", json=_record(), headers=support)).status_code == 403
    customer = {"Authorization": "Bearer customer"}
    assert (await api.get("/employees", headers=customer)).status_code == 403
    january = {"from": "2025-01-01", "to": "2025-01-31"}
    calendar = await api.get("/calendar/business-days", params=january, headers=customer)
    assert calendar.status_code == 200
    assert (await api.get("http://test/api/v1/es/employees", headers=support)).status_code == 404
    anonymous = httpx.Headers(
        {k: v for k, v in api.headers.items() if k.lower() != "authorization"}
    )
    api.headers = anonymous
    assert (await api.get("/employees")).status_code == 401
    assert (await api.get("/calendar/business-days", params=january)).status_code == 401


async def test_who_can_take_a_job_and_the_calendar(api: httpx.AsyncClient) -> None:
    assert (await api.post("/employees", json=_record())).status_code == 201
    vic = _record("E00050", user_id=None, jurisdiction="AU-VIC", time_zone="Australia/Melbourne")
    vic["licences"][0] |= {"jurisdiction": "AU-VIC", "number": "V-77"}
    assert (await api.post("/employees", json=vic)).status_code == 201

    async def who(at: str, jurisdiction: str, **params: Any) -> list[str]:
        answer = await api.get(
            "/available-employees", params={"at": at, "jurisdiction": jurisdiction, **params}
        )
        assert answer.status_code == 200, answer.text
        return [e["employee_no"] for e in answer.json()]

    # Wed 5 Nov 2025 10:00 AEDT: both at work; each licensed in their own state only.
    assert await who("2025-11-05T10:00:00+11:00", "AU-NSW") == ["E00042", "E00050"]
    assert await who("2025-11-05T10:00:00+11:00", "AU-NSW", licence="au-electrical") == ["E00042"]
    assert await who("2025-11-05T10:00:00+11:00", "AU-VIC", licence="au-electrical") == ["E00050"]
    # Tue 4 Nov: Melbourne Cup, a holiday in Victoria only.
    assert await who("2025-11-04T10:00:00+11:00", "AU-VIC") == ["E00042"]
    for bad in (
        {"at": "2025-11-04T10:00:00", "jurisdiction": "AU-NSW"},  # no offset
        {"at": "2025-11-04T10:00:00Z", "jurisdiction": "AU-XX"},
        {"at": "2025-11-04T10:00:00Z", "jurisdiction": "AU-NSW", "licence": "au-plumbing"},
    ):
        assert (await api.get("/available-employees", params=bad)).status_code == 422, bad

    week = await api.get(
        "/calendar/business-days",
        params={"from": "2025-11-03", "to": "2025-11-09", "jurisdiction": "AU-VIC"},
    )
    assert week.status_code == 200
    assert week.json() == {
        "region": "au",
        "jurisdiction": "AU-VIC",
        "time_zone": "Australia/Melbourne",
        "from": "2025-11-03",
        "to": "2025-11-09",
        "business_days": ["2025-11-03", "2025-11-05", "2025-11-06", "2025-11-07"],
        "holidays": [{"day": "2025-11-04", "name": "Melbourne Cup Day"}],
    }
    nsw = await api.get(
        "/calendar/business-days", params={"from": "2025-11-03", "to": "2025-11-09"}
    )
    assert nsw.json()["jurisdiction"] == "AU-NSW"  # the region's default
    assert len(nsw.json()["business_days"]) == 5
    for params in (
        {"from": "2025-11-09", "to": "2025-11-03"},
        {"from": "2020-01-01", "to": "2025-01-01"},
        {"from": "2025-11-03", "to": "2025-11-09", "jurisdiction": "US-CA"},
    ):
        assert (await api.get("/calendar/business-days", params=params)).status_code == 422
    assert (
        await api.get(
            "http://test/api/v1/uk/calendar/business-days",
            params={"from": "2025-11-03", "to": "2025-11-09"},
        )
    ).status_code == 422


# -- the CLI ------------------------------------------------------------------------------------
def test_cli_adds_and_lists_employees(database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POTR_DATABASE_URL", database)
    runner = CliRunner()
    add = [
        "employee", "add", "--no", "E00077", "--name", "Carmen Ruiz", "--region", "es",
        "--jurisdiction", "ES-CN", "--time-zone", "Atlantic/Canary", "--lat", "28.12",
        "--lon", "-15.43", "--skill", "pv_install", "--skill", "battery_install",
        "--licence", "es-instalador-autorizado:ES:IBT-9:2022-01-01",
        "--hours", "mon-fri 08:00-16:00",
    ]  # fmt: skip
    done = runner.invoke(cli, add)
    assert done.exit_code == 0, done.output
    assert "E00077" in done.output
    again = runner.invoke(cli, add)
    assert again.exit_code == 1
    assert "already exists" in again.output
    bad = runner.invoke(
        cli, [*add[:2], "--no", "E1", *add[4:8], "--jurisdiction", "AU-NSW", *add[10:]]
    )
    assert bad.exit_code == 2
    listed = runner.invoke(cli, ["employee", "list"], env={"COLUMNS": "200"})
    assert listed.exit_code == 0, listed.output
    assert "E00077" in listed.output
    assert "Carmen Ruiz" in listed.output
    assert "es-instalador-autorizado:ES" in listed.output
