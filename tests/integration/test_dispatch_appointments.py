"""Appointments on a real PostgreSQL (issue 17 point 3): the sweep offers a job's
customer arrival windows from its technician's diary, the customer confirms one (once
per idempotency key) and it becomes the technician's booking, which assignment's clash
filter and the next job's offer see; a reschedule offers windows away from the old one;
reminders go once per lead as an injected clock passes them. The events dispatch stores
are the ones notify plans from.

Worked by hand: E1001 works 08:00-17:00 Sydney (AEDT, UTC+11) every day; a window is 2 h
of arrival plus the 2 h job, so a start fits from 08:00 to 13:00. Asked on Wednesday
4 March 2026 at 11:00 (two hours' lead: 13:00, taken by the clock's seconds, so 14:00
and later do not fit), the first windows are Thursday 08-10, 10-12, 12-14.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest

from cloud.adapters.postgres import Connection, ConnectionPool
from cloud.dispatch import AppointmentRefused, DispatchService, FilesystemPhotoStorage
from cloud.dispatch import flow_repository as flow_repo
from cloud.dispatch.errors import RefusedError
from cloud.dispatch.models import AppointmentView
from cloud.events.employees import (
    EmployeeAbsence,
    EmployeeBase,
    EmployeeChange,
    EmployeeChanged,
    EmployeeHours,
    EmployeeLicence,
    EmployeeSkill,
    employee_event,
)
from cloud.events.outbox import Event
from cloud.events.types import GatewayRegistration
from cloud.events.workorders import WorkOrderChanged
from cloud.notify import plan_workorder_notices
from cloud.scope import Scope
from contracts.topics import Region
from tests.integration.dispatch_world import TickingClock, clock_fixture, database_fixtures

pytestmark = pytest.mark.integration

Pool = ConnectionPool[Connection[Any]]
#: Wednesday 4 March 2026, 11:00 in Sydney.
T0 = datetime(2026, 3, 4, 0, 0, tzinfo=UTC)
SITE, ACCOUNT, CUSTOMER = 7, "acc_" + "d" * 32, "usr_" + "d" * 32
TABLES = (
    "dispatch.work_orders, dispatch.history, dispatch.idempotency_keys, dispatch.sites,"
    " dispatch.site_gateways, dispatch.outbox, dispatch.inbox, dispatch.technicians,"
    " dispatch.appointment_offers, dispatch.appointments, dispatch.appointment_reminders"
)


def _sydney(day: int, hour: int) -> datetime:
    """``hour``:00 AEDT on ``day`` March 2026, in UTC."""
    return datetime(2026, 3, day, hour, tzinfo=UTC) - timedelta(hours=11)


clock = clock_fixture(TickingClock, T0)
migrated_url, pool = database_fixtures(
    "dispatch", TABLES, max_size=2, name="test-dispatch-appointments"
)


@pytest.fixture
def service(pool: Pool, clock: TickingClock, tmp_path: Path) -> DispatchService:
    service = DispatchService(pool, clock=clock, photos=FilesystemPhotoStorage(tmp_path))
    reg = GatewayRegistration(
        gateway_id="gw-au-7",
        site_id=SITE,
        region=Region.AU,
        time_zone="Australia/Sydney",
        account_id=ACCOUNT,
        latitude=-33.87,
        longitude=151.21,
    )
    service.record_gateway(uuid.uuid4(), reg, T0 - timedelta(days=1))
    _technician(service, "E1001")
    return service


def _technician(
    service: DispatchService,
    employee_no: str,
    *,
    weekdays: range = range(1, 8),
    away: tuple[EmployeeAbsence, ...] = (),
    licence_expires: date = date(2030, 1, 1),
) -> None:
    """An AU technician dispatch hears of: licensed for NSW isolator work until
    ``licence_expires``, 08:00-17:00 Sydney on ``weekdays``, away on ``away``."""
    at = T0 - timedelta(days=30)
    tech = EmployeeChanged(
        change=EmployeeChange.CREATED,
        employee_no=employee_no,
        user_id=None,
        name=f"Tech {employee_no}",
        region=Region.AU,
        jurisdiction="AU-NSW",
        base=EmployeeBase(latitude=-33.70, longitude=151.10),
        time_zone="Australia/Sydney",
        active=True,
        skills=(EmployeeSkill(code="dc_isolation"),),
        licences=tuple(
            EmployeeLicence(
                id=i,
                kind=kind,
                jurisdiction=where,
                number=f"L{i}",
                valid_from=date(2020, 1, 1),
                expires_on=licence_expires,
            )
            for i, (kind, where) in enumerate(
                (("au-electrical", "AU-NSW"), ("au-saa-accreditation", "AU")), start=1
            )
        ),
        hours=tuple(EmployeeHours(weekday=d, starts=time(8), ends=time(17)) for d in weekdays),
        absences=away,
        created_at=at,
        updated_at=at,
    )
    service.record_technician(uuid.uuid4(), employee_event(tech).payload, Region.AU, at)


def _job(service: DispatchService) -> int:
    """A P4 job (no SLA noise within the test's days) assigned to E1001 by the office."""
    order = service.create(Region.AU, SITE, "isolator_fault", "P4", "isolator", "", "E9")
    service.act(
        order.id, "assign", "E9", "operator", idempotency_key=uuid.uuid4().hex, technician="E1001"
    )
    return order.id


def _starts(view: AppointmentView) -> list[datetime]:
    return [w.starts.astimezone(UTC) for w in view.windows]


def _events(pool: Pool, name: str) -> list[Event]:
    with pool.connection() as conn:
        rows = conn.execute(
            "SELECT event_id, name, region, source, occurred_at, payload FROM dispatch.outbox"
            " WHERE name = %s ORDER BY id",
            (name,),
        ).fetchall()
    return [
        Event(id=r[0], name=r[1], region=r[2], source=r[3], occurred_at=r[4], payload=r[5])
        for r in rows
    ]


def test_offer_confirm_book_reschedule_and_remind(
    pool: Pool, service: DispatchService, clock: TickingClock
) -> None:
    job = _job(service)

    # The sweep offers the job without a live offer; a second sweep leaves it be.
    assert service.sweep().offered == 1
    assert service.sweep().offered == 0
    view = service.appointment(job, Scope.everything())
    thursday = [_sydney(5, 8), _sydney(5, 10), _sydney(5, 12)]
    assert _starts(view) == thursday
    assert [w.label for w in view.windows][1] == "Thu 5 Mar 2026, 10:00-12:00 AEDT"
    assert view.offered_at is not None
    assert view.offer_expires_at == view.offered_at + timedelta(hours=24)
    [offered] = _events(pool, "workorder.appointment_offered")
    payload = WorkOrderChanged.model_validate(offered.payload)
    assert (payload.status, payload.action) == ("assigned", "offer")
    assert [w.start for w in payload.offered] == thursday
    [told] = plan_workorder_notices(offered, payload, None, T0)
    assert (told.audience, told.notification.link) == ("customer", f"/ui/au/workorders/{job}")

    # The customer confirms Thursday 10:00; a retry with the same key applies once.
    key = uuid.uuid4().hex
    first = service.confirm_appointment(job, _sydney(5, 10), CUSTOMER, "customer", key)
    again = service.confirm_appointment(job, _sydney(5, 10), CUSTOMER, "customer", key)
    assert first == again
    assert first.appointment is not None
    assert first.appointment.starts == _sydney(5, 10)
    [confirmed] = _events(pool, "workorder.appointment_confirmed")
    payload = WorkOrderChanged.model_validate(confirmed.payload)
    assert (payload.appointment_start, payload.appointment_end) == (_sydney(5, 10), _sydney(5, 12))
    audiences = {n.audience for n in plan_workorder_notices(confirmed, payload, None, T0)}
    assert audiences == {"customer", "assignee"}

    # Booked: E1001 is taken 10:00-14:00 (the window, then the job). Assignment's clash
    # filter sees it, so the next job's windows skip Thursday: Friday 08, 10, 12.
    with pool.connection() as conn:
        [booked] = [o for o in flow_repo.open_orders(conn, ["E1001"]) if o.id == job]
    assert (booked.starts, booked.ends) == (_sydney(5, 10), _sydney(5, 14))
    other = _job(service)
    assert _starts(service.offer(other)) == [_sydney(6, 8), _sydney(6, 10), _sydney(6, 12)]

    # Rescheduled: the old window is freed and avoided; Thursday 08 and 12 fit around it.
    moved = service.reschedule_appointment(job, CUSTOMER, "customer", uuid.uuid4().hex)
    assert moved.appointment is None
    assert _starts(moved) == [_sydney(5, 8), _sydney(5, 12), _sydney(6, 8)]
    with pytest.raises(AppointmentRefused) as refused:  # the old window is no longer offered
        service.confirm_appointment(job, _sydney(5, 10), CUSTOMER, "customer", uuid.uuid4().hex)
    assert refused.value.code == "not_offered"
    service.confirm_appointment(job, _sydney(5, 12), "E9", "operator", uuid.uuid4().hex)

    # Reminders: a day before (Wednesday 12:00) and an hour before (Thursday 11:00), once.
    assert service.sweep(_sydney(4, 12) + timedelta(seconds=30)).reminded == 1
    assert service.sweep(_sydney(4, 12) + timedelta(seconds=40)).reminded == 0
    assert service.sweep(_sydney(5, 11) + timedelta(seconds=30)).reminded == 1
    assert service.sweep(_sydney(5, 11) + timedelta(minutes=5)).reminded == 0
    assert service.sweep(_sydney(5, 13)).reminded == 0
    reminders = _events(pool, "workorder.appointment_reminder")
    leads = [WorkOrderChanged.model_validate(e.payload).reminder_lead_s for e in reminders]
    assert leads == [86_400, 3_600]


def test_a_confirmation_too_close_to_the_window_is_refused(
    service: DispatchService, clock: TickingClock
) -> None:
    job = _job(service)
    service.offer(job)
    clock.now = _sydney(5, 6) + timedelta(minutes=1)  # past 08:00's confirm-by (06:00)
    with pytest.raises(AppointmentRefused) as refused:
        service.confirm_appointment(job, _sydney(5, 8), CUSTOMER, "customer", uuid.uuid4().hex)
    assert (refused.value.code, refused.value.invalid) == ("too_late", False)


def test_a_reassignment_judges_the_new_technician_for_the_confirmed_window(
    pool: Pool, service: DispatchService
) -> None:
    # Booked for Thursday 10:00-12:00 (with the job, 10:00-14:00); asked on Wednesday.
    job = _job(service)
    service.offer(job)
    service.confirm_appointment(job, _sydney(5, 10), CUSTOMER, "customer", uuid.uuid4().hex)
    # Each would pass on Wednesday; for the booked Thursday E2001 is away, E2002's licence
    # has lapsed (it ended on Wednesday), E2003 works Thursdays only.
    thursday = date(2026, 3, 5)
    leave = EmployeeAbsence(id=1, starts_on=thursday, ends_on=thursday, kind="leave")
    _technician(service, "E2001", away=(leave,))
    _technician(service, "E2002", licence_expires=date(2026, 3, 4))
    _technician(service, "E2003", weekdays=range(4, 5))

    def reassign(technician: str) -> object:
        return service.act(
            job, "reassign", "E9", "operator", idempotency_key=uuid.uuid4().hex,
            reason="E1001 is needed elsewhere", technician=technician,
        )  # fmt: skip

    for refused, why in (("E2001", "absent (away on 2026-03-05)"), ("E2002", "licence (no au-")):
        with pytest.raises(RefusedError) as caught:
            reassign(refused)
        assert (caught.value.field, why in caught.value.reason) == ("technician", True)
    assert service.get(job, Scope.everything()).assignee == "E1001"

    # E2003 fits the booked window: no override recorded, and the appointment stays.
    reassign("E2003")
    assert service.get(job, Scope.everything()).assignee == "E2003"
    actions = [str(h.action) for h in service.history(job, Scope.everything())]
    assert "override" not in actions
    view = service.appointment(job, Scope.everything())
    assert view.appointment is not None
    assert view.appointment.starts == _sydney(5, 10)
    with pool.connection() as conn:
        [booked] = flow_repo.open_orders(conn, ["E2003"])
    assert (booked.id, booked.starts, booked.ends) == (job, _sydney(5, 10), _sydney(5, 14))

    # Someone off shift then is allowed (overtime is the operator's call), and recorded.
    _technician(service, "E2004", weekdays=range(3, 4))  # Wednesdays only
    reassign("E2004")
    last = service.history(job, Scope.everything())[-1]
    assert (str(last.action), last.actor) == ("override", "E9")
    assert (last.reason or "").startswith("E2004 assigned outside eligibility: off_shift")
