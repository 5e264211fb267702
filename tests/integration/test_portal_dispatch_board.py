"""The operators' dispatch board (filters, the live feed), rebooking and closing from a
job's page, and the performance screen — over ``api_world`` (accounts A and B in au, E
in es; each site with a job on site). Jobs are made through :class:`DispatchService`
as the flow makes them; the live feed is read from a real uvicorn with httpx, bounded
by its read timeout. Every expected figure is counted from the jobs a test makes.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import date, time, timedelta
from pathlib import Path

import httpx
import orjson
import pytest

from cloud.dispatch import DispatchService
from cloud.dispatch.checklists import load_checklists
from cloud.events.employees import (
    EmployeeBase,
    EmployeeChange,
    EmployeeChanged,
    EmployeeHours,
    EmployeeLicence,
    EmployeeSkill,
    employee_event,
)
from cloud.events.types import GatewayRegistration
from cloud.identity import Role
from cloud.scope import Scope
from contracts.timeutil import utc_now
from contracts.topics import Region
from tests.api_tokens import mint_token
from tests.browser.live import serve_asgi
from tests.integration.api_world import (
    PNG,
    ZONES,
    World,
    api_world,
    form_fields,
    page_client,
    private_database,
    seed_job,
)
from tests.integration.sse_frames import frames_of, next_event
from tests.waiting import until_sync

pytestmark = pytest.mark.integration

AU = Scope.of_region(Region.AU)
_KEY = re.compile(r'name="key" value="([A-Za-z0-9_-]+)"')


@pytest.fixture(scope="module")
def world(postgres_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with private_database(postgres_server_url) as url:
        key_dir: Path = tmp_path_factory.mktemp("ui-board")
        with api_world(url, key_dir) as built:
            assert built.dispatch is not None
            _technicians_and_place(built)
            yield built


def _technician(employee_no: str, *, expires: date, hours: bool) -> EmployeeChanged:
    at = utc_now() - timedelta(days=30)
    licences = (("au-electrical", "AU-NSW"), ("au-saa-accreditation", "AU"))
    return EmployeeChanged(
        change=EmployeeChange.CREATED, employee_no=employee_no, user_id=None,
        name=f"Tech {employee_no}", region=Region.AU, jurisdiction="AU-NSW",
        base=EmployeeBase(latitude=-33.70, longitude=151.10), time_zone="Australia/Sydney",
        active=True, skills=(EmployeeSkill(code="dc_isolation"),),
        licences=tuple(
            EmployeeLicence(
                id=i, kind=kind, jurisdiction=where, number=f"L{i}",
                valid_from=date(2020, 1, 1), expires_on=expires,
            )
            for i, (kind, where) in enumerate(licences, start=1)
        ),
        hours=tuple(
            EmployeeHours(weekday=d, starts=time(0), ends=time(23, 59)) for d in range(1, 8)
        ) if hours else (),
        absences=(), created_at=at, updated_at=at,
    )  # fmt: skip


#: A's MOSIE: licensed and on shift at any hour; B's: their licences expired (binding);
#: a third: licensed but with no working hours (off shift: an override may choose them).
OFF_SHIFT = "E00077"


def _technicians_and_place(world: World) -> None:
    """The region's technicians as dispatch hears of them (employees' events), and A's
    site where it is (the registry's gateway event), so assignment can judge the jobs."""
    service = _service(world)
    a, b = world.tenants["A"], world.tenants["B"]
    people = (
        _technician(a.employee, expires=date(2099, 1, 1), hours=True),
        _technician(b.employee, expires=date(2021, 1, 1), hours=True),
        _technician(OFF_SHIFT, expires=date(2099, 1, 1), hours=False),
    )
    for person in people:
        payload = employee_event(person).payload
        service.record_technician(uuid.uuid4(), payload, Region.AU, utc_now())
    reg = GatewayRegistration(
        gateway_id=a.gateway, site_id=a.site, region=Region.AU, time_zone=ZONES[Region.AU],
        account_id=a.account, latitude=-33.87, longitude=151.21,
    )  # fmt: skip
    service.record_gateway(uuid.uuid4(), reg, utc_now())


def _service(world: World) -> DispatchService:
    assert world.dispatch is not None
    return world.dispatch


def _key() -> str:
    return uuid.uuid4().hex


def _rows(html: str) -> set[int]:
    return {int(n) for n in re.findall(r'<tr data-workorder="([0-9]+)"', html)}


def test_the_board_filters_by_state_priority_technician_and_breach(world: World) -> None:
    service = _service(world)
    a = world.tenants["A"]
    urgent = service.create(Region.AU, a.site, "inspection", "P1", "urgent", "", "ops").id
    late = seed_job(service, a, to="assigned")  # P2, with A's MOSIE
    service.act(
        late, "sla", "system", "system", idempotency_key=_key(), sla_timer="arrive_by"
    )  # its arrive-by passed
    mine = {urgent, late}
    with page_client(world, Role.OPERATOR) as client:

        def shown(query: str) -> set[int]:
            page = client.get(f"/ui/au/dispatch{query}")
            assert page.status_code == 200, page.text[:300]
            return _rows(page.text) & mine

        assert shown("") == mine
        assert shown("?priority=P1") == {urgent}
        assert shown("?priority=P1&priority=P2") == mine
        assert shown(f"?technician={a.employee}") == {late}
        assert shown("?breached=yes") == {late}
        assert shown("?breached=no") == {urgent}
        assert shown("?status=scheduled") == {urgent}
        assert shown("?status=assigned&breached=yes&priority=P2") == {late}
        assert shown("?status=closed") == set()
        # The empty choices of the GET form mean "any".
        assert shown("?status=&priority=&technician=&breached=") == mine
        page = client.get("/ui/au/dispatch?priority=P1")
        assert 'option value="P1" selected' in page.text  # the filter stays chosen
        assert "/ui/au/dispatch/events?priority=P1&amp;digest=" in page.text
        # Values out of form: the 422 page, never a 500.
        too_many = "&".join(["status=scheduled"] * 13)  # more than the states and ""
        for bad in (
            "status=bogus", "priority=P9", "technician=X1", "technician=E1234567890",
            "breached=maybe", too_many,
        ):  # fmt: skip
            refused = client.get(f"/ui/au/dispatch?{bad}")
            assert refused.status_code == 422, bad
            assert "Not understood" in refused.text


def test_the_live_board_follows_a_change_made_through_the_service(world: World) -> None:
    service = _service(world)
    a = world.tenants["A"]
    job = seed_job(service, a, to="scheduled")
    cookies = {"potr_session": mint_token(Role.OPERATOR, region=Region.AU)}
    with serve_asgi(world.app) as port:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, cookies=cookies, timeout=httpx.Timeout(30.0)) as client:
            page = client.get("/ui/au/dispatch?status=assigned")
            digest = re.search(r'data-digest="([0-9a-f]+)"', page.text)
            assert digest is not None
            assert job not in _rows(page.text)
            url = f"/ui/au/dispatch/events?status=assigned&digest={digest.group(1)}"
            with client.stream("GET", url) as answer:
                assert answer.headers["content-type"].startswith("text/event-stream")
                frames = frames_of(answer.iter_lines())
                next_event(frames, "ready")
                # The page's board is the stream's: nothing is sent until a job changes.
                service.act(
                    job, "assign", "E09", "operator", idempotency_key=_key(),
                    technician=a.employee,
                )  # fmt: skip
                board = next_event(frames, "board")
                update = orjson.loads(board["data"])
                assert job in _rows(update["html"])
                assert board["id"] == update["digest"] != digest.group(1)
    # The client gone, its stream ends (and stops watching) at once.
    feed = world.web.board if world.web is not None else None
    assert feed is not None
    until_sync(lambda: feed.open_streams == 0, 10, "the board's stream to end with its client")


def test_the_operator_rebooks_to_a_listed_technician_with_a_reason_once(world: World) -> None:
    service = _service(world)
    a, b = world.tenants["A"], world.tenants["B"]
    job = seed_job(service, a, to="assigned")
    url = f"/ui/au/workorders/{job}/act"
    with page_client(world, Role.OPERATOR) as client:
        page = client.get(f"/ui/au/workorders/{job}")
        form = re.search(r'data-action-form="reassign".*?</form>', page.text, re.S)
        assert form is not None
        # Offered: whom an override may choose (off shift), not the one it is with, nor
        # one whose licence expired — listed with why.
        offered = re.findall(r'<option value="(E[0-9]+)">', form.group(0))
        assert offered == [OFF_SHIFT]
        fits = dict(re.findall(r'data-candidate="(E[0-9]+)" data-fit="([a-z]+)"', page.text))
        assert fits == {a.employee: "eligible", OFF_SHIFT: "override", b.employee: "binding"}
        listed = re.search(rf'data-candidate="{b.employee}".*?</li>', page.text, re.S)
        assert listed is not None
        assert "not eligible" in listed.group(0)
        assert "no au-electrical valid" in listed.group(0)
        assert 'data-action-form="cancel"' in page.text
        assert 'data-action-form="close"' not in page.text  # only a verified job closes
        bare = client.post(
            url, data=form_fields(client, action="reassign", key=_key(), technician=b.employee)
        )
        assert bare.status_code == 422  # an override names its reason
        assert service.get(job, AU).assignee == a.employee
        rebook = form_fields(
            client, action="reassign", key=_key(), technician=OFF_SHIFT, reason="A is off sick"
        )
        first = client.post(url, data=rebook, follow_redirects=False)
        again = client.post(url, data=rebook, follow_redirects=False)
        assert (first.status_code, again.status_code) == (303, 303)
    assert service.get(job, AU).assignee == OFF_SHIFT
    rebooked = [h for h in service.history(job, AU) if h.action == "reassign"]
    assert [(h.assignee, h.reason) for h in rebooked] == [(OFF_SHIFT, "A is off sick")]


def _resolved(service: DispatchService, job: int, mosie: str) -> None:
    for action in ("accept", "start_travel", "arrive"):
        service.act(job, action, mosie, "mosie", idempotency_key=_key())
    order = service.get(job, AU)
    for task in load_checklists()[order.type].tasks:
        photo = service.add_photo(job, PNG, "image/png", mosie, _key()) if task.photo else None
        service.tick(job, task.id, mosie, _key(), photo.storage_key if photo else None)
    service.act(job, "resolve", mosie, "mosie", idempotency_key=_key())


def test_performance_for_the_desk_and_for_a_mosie(world: World) -> None:
    """Two jobs of A's MOSIE resolved here: one by its resolve-by time and verified in one
    visit (then closed from its page), one after its resolve-by time. By hand: A did
    2 jobs, met the SLA on 1 of 2 (50 %), 1 verified, first-time fix 1 of 1 (100 %);
    B did none. The only jobs resolved in this module: the region's total is A's."""
    service = _service(world)
    a, b = world.tenants["A"], world.tenants["B"]
    now = utc_now()
    met = service.create(
        Region.AU, a.site, "isolator_fault", "P2", "on time", "", "ops",
        resolve_by=now + timedelta(days=1),
    ).id  # fmt: skip
    missed = service.create(
        Region.AU, a.site, "isolator_fault", "P2", "late", "", "ops",
        resolve_by=now - timedelta(hours=1),
    ).id  # fmt: skip
    for job in (met, missed):
        service.act(job, "assign", "ops", "operator", idempotency_key=_key(), technician=a.employee)
        _resolved(service, job, a.employee)
    service.act(met, "verify", "system", "system", idempotency_key=_key(), reason="cleared")

    with page_client(world, Role.OPERATOR) as client:
        page = client.get(f"/ui/au/workorders/{met}")
        assert 'data-action-form="close"' in page.text
        url = f"/ui/au/workorders/{met}/act"
        closed = client.post(
            url, data=form_fields(client, action="close", key=_key(), reason="customer happy"),
            follow_redirects=False,
        )  # fmt: skip
        assert closed.status_code == 303
        assert service.get(met, AU).status == "closed"

        board = client.get("/ui/au/dispatch")
        assert 'href="/ui/au/performance"' in board.text
        seen = client.get("/ui/au/performance")
        assert seen.status_code == 200
        text = seen.text

        def row(who: str) -> str:
            found = re.search(rf'<tr data-employee="{who}">.*?</tr>', text, re.S)
            assert found is not None, who
            return re.sub(r"\s+", " ", found.group(0))

        for who in ("region", a.employee):
            assert 'data-metric="jobs_done">2<' in row(who)
            assert 'data-metric="sla_met">1 / 2<' in row(who)
            assert 'data-metric="sla_rate">50 %<' in row(who)
            assert 'data-metric="verified">1<' in row(who)
            assert 'data-metric="ftf_rate">100 %<' in row(who)
        assert 'data-metric="jobs_done">0<' in row(b.employee)
        assert 'data-metric="ftf_rate">n/a<' in row(b.employee)
        for bad in ("days=0", "days=367", "days=abc"):
            assert client.get(f"/ui/au/performance?{bad}").status_code == 422

    with page_client(world, Role.MOSIE) as client:
        jobs = client.get("/ui/au/jobs")
        assert 'href="/ui/au/performance"' in jobs.text
        own = client.get("/ui/au/performance?days=7")
        assert own.status_code == 200
        assert f'data-employee="{a.employee}"' in own.text
        assert 'data-employee="region"' not in own.text
        assert f'data-employee="{b.employee}"' not in own.text


@pytest.mark.parametrize("role", [Role.SUPPORT, Role.MOSIE, Role.CUSTOMER])
def test_only_the_desk_opens_the_boards_stream(world: World, role: Role) -> None:
    """Refused before the stream starts: 403 for a role the board is not for, 404 for
    another region's board (an operator of au); bad filters 422."""
    with page_client(world, role) as client:
        assert client.get("/ui/au/dispatch/events").status_code == 403
    with page_client(world, Role.OPERATOR) as client:
        assert client.get("/ui/es/dispatch/events").status_code == 404
        assert client.get("/ui/au/dispatch/events?priority=P0").status_code == 422
        assert client.get("/ui/au/dispatch/events?digest=XYZ").status_code == 422
