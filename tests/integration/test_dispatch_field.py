"""The MOSIE in the field, over the real app and PostgreSQL (``api_world``): an incident
raised on an on-site job becomes one new work order of the site (retried: once), with its
history and one ``workorder.created``; parts used emit one ``workorder.parts_used`` with
the stock's valuation, also for a retried request; a location fix is stored only with the
location notice's current version acknowledged and while on duty (working hours, or a job
under way), else refused with its code and nothing stored, and old fixes are forgotten.
Who may call these routes is scenario 14's table."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cloud.bootstrap import staff_duty
from cloud.dispatch import DispatchService, FilesystemPhotoStorage, LocationRefused, NotFoundError
from cloud.employees import EmployeeService, WorkingHours
from cloud.identity import Role
from cloud.scope import Scope
from contracts.timeutil import utc_now
from contracts.topics import Region
from tests.integration.api_world import (
    World,
    employee_in,
    private_world,
    seed_job,
)

pytestmark = pytest.mark.integration

AU = "/api/v1/au"
#: A Wednesday, 10:00 in Sydney (AEDT, UTC+11).
WEDNESDAY_10 = datetime(2030, 1, 9, 10, 0, tzinfo=UTC) - timedelta(hours=11)


@pytest.fixture(scope="module")
def world(postgres_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with private_world(postgres_server_url, tmp_path_factory.mktemp("dispatch-field")) as built:
        yield built


@pytest.fixture(scope="module")
def client(world: World) -> Iterator[TestClient]:
    with TestClient(world.app, raise_server_exceptions=False) as c:
        yield c


def _service(world: World) -> DispatchService:
    assert world.dispatch is not None
    return world.dispatch


def _mosie(world: World, key: str | None = None) -> dict[str, str]:
    headers = world.headers(Role.MOSIE)
    return headers if key is None else {**headers, "Idempotency-Key": key}


def _outbox(world: World, name: str, work_order_id: int) -> list[dict[str, Any]]:
    with world.pool.connection() as conn:
        rows = conn.execute(
            "SELECT payload FROM dispatch.outbox WHERE name = %s"
            " AND (payload->>'work_order_id')::bigint = %s ORDER BY id",
            (name, work_order_id),
        ).fetchall()
    return [r[0] for r in rows]


def _fixes(world: World, employee_no: str) -> int:
    with world.pool.connection() as conn:
        row = conn.execute(
            "SELECT count(*) FROM dispatch.locations WHERE employee_no = %s", (employee_no,)
        ).fetchone()
    assert row is not None
    return int(row[0])


# -- incidents --------------------------------------------------------------------------------
def test_an_incident_raised_on_site_is_one_new_job_of_the_site_even_when_retried(
    world: World, client: TestClient
) -> None:
    a = world.tenants["A"]
    job = seed_job(_service(world), a)
    key = uuid.uuid4().hex
    body = {
        "type": "inspection",
        "priority": "P2",
        "title": "Cracked roof tile beside the array",
        "description": "Tile cracked under the north string; water may get in.",
    }
    url = f"{AU}/workorders/{job}/incidents"
    first = client.post(url, json=body, headers=_mosie(world, key))
    again = client.post(url, json=body, headers=_mosie(world, key))
    assert first.status_code == again.status_code == 201, first.text
    assert first.json() == again.json()
    incident = first.json()
    assert incident["id"] != job
    assert (incident["origin"], incident["found_on"]) == ("incident", job)
    assert (incident["site_id"], incident["region"]) == (a.site, "au")
    assert (incident["type"], incident["priority"]) == ("inspection", "P2")
    assert incident["created_by"] == a.employee
    # Its SLA due times are set (P2: arrive-by and resolve-by in business days).
    assert incident["arrive_by"] is not None
    assert incident["resolve_by"] is not None
    everywhere = Scope.everything()
    created = [h for h in _service(world).history(incident["id"], everywhere)]
    assert created[0].action == "create"
    assert created[0].actor == a.employee
    assert created[0].role == "mosie"
    assert created[0].reason is not None
    assert str(job) in created[0].reason
    noted = [h for h in _service(world).history(job, everywhere) if h.action == "incident"]
    assert len(noted) == 1
    assert str(incident["id"]) in (noted[0].reason or "")
    events = _outbox(world, "workorder.created", incident["id"])
    assert len(events) == 1
    assert (events[0]["origin"], events[0]["found_on"]) == ("incident", job)
    assert events[0]["actor"] == a.employee


def test_an_incident_needs_the_job_on_site_and_a_bounded_request(
    world: World, client: TestClient
) -> None:
    job = seed_job(_service(world), world.tenants["A"], "assigned")
    body = {"type": "inspection", "priority": "P3", "title": "Loose conduit"}
    url = f"{AU}/workorders/{job}/incidents"
    assert client.post(url, json=body, headers=_mosie(world, uuid.uuid4().hex)).status_code == 409
    on_site = seed_job(_service(world), world.tenants["A"])
    url = f"{AU}/workorders/{on_site}/incidents"
    for wrong in (
        {**body, "priority": "P9"},
        {**body, "type": "roof_repair"},
        {**body, "title": "x"},
        {**body, "description": "d" * 4001},
        {**body, "assignee": "E00001"},  # no mass assignment
    ):
        answer = client.post(url, json=wrong, headers=_mosie(world, uuid.uuid4().hex))
        assert answer.status_code == 422, wrong
    answer = client.post(url, json=body, headers=_mosie(world))  # no idempotency key
    assert answer.status_code == 422


# -- workorder.parts_used ---------------------------------------------------------------------
def test_parts_used_emit_one_event_with_the_valuation_even_when_retried(
    world: World, client: TestClient
) -> None:
    part = f"PN-TILE-{uuid.uuid4().hex[:6]}"
    _service(world).add_stock(Region.AU, part, 10, "Roof tile", unit_value=Decimal("12.50"))
    job = seed_job(_service(world), world.tenants["A"])
    key = uuid.uuid4().hex
    body = {"part_no": part, "quantity": 3}
    url = f"{AU}/workorders/{job}/parts"
    first = client.post(url, json=body, headers=_mosie(world, key))
    again = client.post(url, json=body, headers=_mosie(world, key))
    assert first.status_code == again.status_code == 201, first.text
    assert first.json() == again.json()
    assert first.json()["stock_left"] == 7
    events = _outbox(world, "workorder.parts_used", job)
    assert len(events) == 1
    event = events[0]
    assert event["part_use_id"] == first.json()["id"]
    assert (event["action"], event["status"], event["from_status"]) == (
        "parts_used",
        "on_site",
        "on_site",
    )
    assert event["parts"] == [
        {
            "part_no": part,
            "quantity": 3,
            "unit_value": "12.50",
            "value": "37.50",
            "currency": "AUD",
        }
    ]
    # A part the stock has no valuation for: the event says so (None), not zero.
    plain = f"PN-BOLT-{uuid.uuid4().hex[:6]}"
    _service(world).add_stock(Region.AU, plain, 5)
    answer = client.post(
        url, json={"part_no": plain, "quantity": 1}, headers=_mosie(world, uuid.uuid4().hex)
    )
    assert answer.status_code == 201
    parts = [e["parts"][0] for e in _outbox(world, "workorder.parts_used", job)]
    assert parts[-1] == {
        "part_no": plain,
        "quantity": 1,
        "unit_value": None,
        "value": None,
        "currency": None,
    }


# -- location ---------------------------------------------------------------------------------
def test_a_location_is_stored_only_with_the_notice_acknowledged_and_on_a_job(
    world: World, client: TestClient
) -> None:
    a = world.tenants["A"]  # the world's MOSIE: no working hours, a job on site
    fix = {
        "latitude": -33.87,
        "longitude": 151.21,
        "accuracy_m": 12.5,
        "at": utc_now().isoformat(),
    }
    client.delete(f"{AU}/me/location-notice", headers=_mosie(world))  # start unacknowledged
    before = _fixes(world, a.employee)
    refused = client.post(f"{AU}/me/location", json=fix, headers=_mosie(world, "k-refused-1"))
    assert refused.status_code == 409
    assert refused.json()["detail"]["code"] == "notice_not_acknowledged"
    assert _fixes(world, a.employee) == before

    notice = client.get(f"{AU}/me/location-notice", headers=_mosie(world))
    assert notice.status_code == 200
    assert notice.json()["current"] is False
    version = notice.json()["notice_version"]
    stale = client.post(
        f"{AU}/me/location-notice", json={"version": version + 1}, headers=_mosie(world)
    )
    assert stale.status_code == 422
    acked = client.post(
        f"{AU}/me/location-notice", json={"version": version}, headers=_mosie(world)
    )
    assert acked.status_code == 200
    assert (acked.json()["acknowledged_version"], acked.json()["current"]) == (version, True)

    key = uuid.uuid4().hex
    first = client.post(f"{AU}/me/location", json=fix, headers=_mosie(world, key))
    again = client.post(f"{AU}/me/location", json=fix, headers=_mosie(world, key))
    assert first.status_code == again.status_code == 201, first.text
    assert first.json() == again.json()
    assert first.json()["duty"] == "on_job"
    assert first.json()["work_order_id"] is not None
    assert "latitude" not in first.json()
    assert _fixes(world, a.employee) == before + 1

    old = {**fix, "at": (utc_now() - timedelta(hours=1)).isoformat()}
    answer = client.post(f"{AU}/me/location", json=old, headers=_mosie(world, uuid.uuid4().hex))
    assert answer.status_code == 422
    for wrong in ({**fix, "latitude": 91}, {**fix, "accuracy_m": 0}, {**fix, "at": "2030-01-01"}):
        answer = client.post(
            f"{AU}/me/location", json=wrong, headers=_mosie(world, uuid.uuid4().hex)
        )
        assert answer.status_code == 422, wrong

    withdrawn = client.delete(f"{AU}/me/location-notice", headers=_mosie(world))
    assert withdrawn.status_code == 200
    assert withdrawn.json()["current"] is False
    refused = client.post(f"{AU}/me/location", json=fix, headers=_mosie(world, uuid.uuid4().hex))
    assert refused.status_code == 409
    assert _fixes(world, a.employee) == before + 1
    with world.pool.connection() as conn:
        acks = conn.execute(
            "SELECT action, version FROM employees.location_notice_acks WHERE employee_no = %s"
            " ORDER BY id",
            (a.employee,),
        ).fetchall()
    assert acks[-2:] == [("acknowledge", version), ("withdraw", version)]


def test_off_a_job_a_location_is_stored_only_inside_working_hours_and_briefly(
    world: World, tmp_path: Path
) -> None:
    employees = EmployeeService(world.pool)
    employee_no = f"E7{uuid.uuid4().int % 10**6:06d}"
    wednesday = WorkingHours.model_validate({"weekday": 3, "starts": "08:00", "ends": "17:00"})
    record = employee_in(employee_no, Region.AU).model_copy(update={"hours": [wednesday]})
    employees.add(record)
    employees.acknowledge_location_notice(employee_no, employees.location_notice.version)
    now = [WEDNESDAY_10]
    service = DispatchService(
        world.pool,
        photos=FilesystemPhotoStorage(tmp_path),
        staff=staff_duty(employees),
        clock=lambda: now[0],
    )

    def share(at: datetime) -> Any:
        now[0] = at
        return service.record_location(
            employee_no, Region.AU, -33.9, 151.2, 20.0, at, uuid.uuid4().hex
        )

    assert share(WEDNESDAY_10).duty == "working_hours"
    evening = WEDNESDAY_10 + timedelta(hours=10)  # 20:00 local: off duty, no job
    with pytest.raises(LocationRefused) as refused:
        share(evening)
    assert refused.value.code == "off_duty"
    assert _fixes(world, employee_no) == 1
    # Two weeks later (past the 7 days kept), in hours: this write forgets the old fix.
    share(WEDNESDAY_10 + timedelta(days=14))
    assert _fixes(world, employee_no) == 1
    with pytest.raises(NotFoundError):
        service.record_location("E999999", Region.AU, 0, 0, 5, now[0], uuid.uuid4().hex)
