"""The web UI's authorisation matrix: every page of ``/ui/{region}`` as every role, on
its own object, another tenant's, and under another region's URL — 200 (or 303 after a
post), 403 for a role the page is not for, 404 outside the caller's reach; never a 500,
never another tenant's data. A hand-written table, not the policy's own; the test first
checks that it names every UI route the app serves.

The fleet is ``api_world``'s: accounts A and B in au, E in es. Staff are of au; "own" is
A's object, "other" B's for a customer and E's (under the au URL) for staff.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cloud.bootstrap import create_privacy_desk
from cloud.config.rollout_models import RolloutIn, RolloutTarget
from cloud.employees import EmployeeService
from cloud.identity import Role
from cloud.portal.routes import served_routes
from cloud.scope import Scope
from contracts.topics import Region
from tests.api_tokens import mint_token
from tests.integration.api_world import (
    PNG,
    Tenant,
    World,
    api_world,
    private_database,
    profile,
    seed_ticket,
)

pytestmark = [pytest.mark.integration, pytest.mark.security]

ALL = frozenset(Role)
CONTROL = frozenset({Role.ADMIN, Role.OPERATOR})
OFFICE = frozenset({Role.ADMIN, Role.OPERATOR, Role.SUPPORT})
ADMINS = frozenset({Role.ADMIN})
STAFF = frozenset({Role.ADMIN, Role.OPERATOR, Role.SUPPORT, Role.MOSIE})
MOSIES = frozenset({Role.MOSIE})
CUSTOMERS = frozenset({Role.CUSTOMER})
DOOR = frozenset({Role.CUSTOMER, Role.MOSIE})


@dataclass(frozen=True)
class Page:
    roles: frozenset[Role]
    #: The URL for tenant ``t`` under region ``r`` (the route's own path as the key).
    url: Callable[[str, Tenant], str]
    #: Whether the page shows one tenant's object (else only the region's).
    tenant_object: bool = True


def _site(suffix: str = "") -> Callable[[str, Tenant], str]:
    return lambda r, t: f"/ui/{r}/sites/{t.site}{suffix}"


def _as(suffix: str = "") -> Callable[[str, Tenant], str]:
    return lambda r, t: f"/ui/{r}/customers/{t.account}{suffix}"


TABLE: dict[str, Page] = {
    "/ui/{region}/": Page(ALL, lambda r, t: f"/ui/{r}/", tenant_object=False),
    "/ui/{region}/sites/{site_id}": Page(ALL, _site()),
    "/ui/{region}/sites/{site_id}/live": Page(ALL, _site("/live")),
    "/ui/{region}/sites/{site_id}/today.json": Page(ALL, _site("/today.json")),
    "/ui/{region}/sites/{site_id}/energy": Page(ALL, _site("/energy?view=month")),
    "/ui/{region}/fleet": Page(CONTROL, lambda r, t: f"/ui/{r}/fleet", tenant_object=False),
    "/ui/{region}/gateways/{gateway_id}": Page(
        CONTROL, lambda r, t: f"/ui/{r}/gateways/{t.gateway}"
    ),
    "/ui/{region}/support": Page(
        OFFICE, lambda r, t: f"/ui/{r}/support?q=site", tenant_object=False
    ),
    "/ui/{region}/customers/{account_id}": Page(OFFICE, _as()),
    "/ui/{region}/customers/{account_id}/sites/{site_id}": Page(
        OFFICE, lambda r, t: f"/ui/{r}/customers/{t.account}/sites/{t.site}"
    ),
    "/ui/{region}/customers/{account_id}/sites/{site_id}/live": Page(
        OFFICE, lambda r, t: f"/ui/{r}/customers/{t.account}/sites/{t.site}/live"
    ),
    "/ui/{region}/customers/{account_id}/sites/{site_id}/today.json": Page(
        OFFICE, lambda r, t: f"/ui/{r}/customers/{t.account}/sites/{t.site}/today.json"
    ),
    "/ui/{region}/customers/{account_id}/sites/{site_id}/energy": Page(
        OFFICE, lambda r, t: f"/ui/{r}/customers/{t.account}/sites/{t.site}/energy"
    ),
    "/ui/{region}/audit": Page(ADMINS, lambda r, t: f"/ui/{r}/audit", tenant_object=False),
    "/ui/{region}/alarms": Page(STAFF, lambda r, t: f"/ui/{r}/alarms", tenant_object=False),
    "/ui/{region}/alarms/{alarm_id}": Page(STAFF, lambda r, t: f"/ui/{r}/alarms/{t.alarm}"),
    "/ui/{region}/inbox": Page(ALL, lambda r, t: f"/ui/{r}/inbox", tenant_object=False),
    "/ui/{region}/jobs": Page(MOSIES, lambda r, t: f"/ui/{r}/jobs", tenant_object=False),
    "/ui/{region}/visits": Page(CUSTOMERS, lambda r, t: f"/ui/{r}/visits", tenant_object=False),
    # A customer's account at a glance (issue 20): its own account only.
    "/ui/{region}/overview": Page(CUSTOMERS, lambda r, t: f"/ui/{r}/overview", tenant_object=False),
    # Bills (issue 19): a customer's own, and support's audited view of a customer's.
    "/ui/{region}/bills": Page(CUSTOMERS, lambda r, t: f"/ui/{r}/bills", tenant_object=False),
    "/ui/{region}/bills/{number}": Page(CUSTOMERS, lambda r, t: f"/ui/{r}/bills/{t.bill}"),
    "/ui/{region}/customers/{account_id}/bills": Page(OFFICE, _as("/bills")),
    "/ui/{region}/customers/{account_id}/bills/{number}": Page(
        OFFICE, lambda r, t: f"/ui/{r}/customers/{t.account}/bills/{t.bill}"
    ),
    # A bill's PDF, the customer's and support's (audited like the page).
    "/ui/{region}/bills/{number}/pdf": Page(CUSTOMERS, lambda r, t: f"/ui/{r}/bills/{t.bill}/pdf"),
    "/ui/{region}/customers/{account_id}/bills/{number}/pdf": Page(
        OFFICE, lambda r, t: f"/ui/{r}/customers/{t.account}/bills/{t.bill}/pdf"
    ),
    "/ui/{region}/dispatch": Page(CONTROL, lambda r, t: f"/ui/{r}/dispatch", tenant_object=False),
    "/ui/{region}/performance": Page(
        CONTROL | MOSIES, lambda r, t: f"/ui/{r}/performance", tenant_object=False
    ),
    "/ui/{region}/parts": Page(CONTROL, lambda r, t: f"/ui/{r}/parts", tenant_object=False),
    # Billing cycles (issue 19): a region's, started by admins, followed by operators too.
    "/ui/{region}/billing/cycles": Page(
        CONTROL, lambda r, t: f"/ui/{r}/billing/cycles", tenant_object=False
    ),
    "/ui/{region}/billing/cycles/{cycle_id}": Page(
        CONTROL, lambda r, t: f"/ui/{r}/billing/cycles/{t.cycle}"
    ),
    "/ui/{region}/billing/cycles/{cycle_id}/progress": Page(
        CONTROL, lambda r, t: f"/ui/{r}/billing/cycles/{t.cycle}/progress"
    ),
    # Reports (issue 20): a region's; operators fleet, alerts and MOSIE, admins revenue too;
    # the office support's SLA attainment (the index lists each role's own).
    "/ui/{region}/reports": Page(
        OFFICE, lambda r, t: f"/ui/{r}/reports?month=2026-09", tenant_object=False
    ),
    "/ui/{region}/reports/support": Page(
        OFFICE, lambda r, t: f"/ui/{r}/reports/support?month=2026-09", tenant_object=False
    ),
    "/ui/{region}/reports/fleet": Page(
        CONTROL, lambda r, t: f"/ui/{r}/reports/fleet?month=2026-09", tenant_object=False
    ),
    "/ui/{region}/reports/alerts": Page(
        CONTROL,
        lambda r, t: f"/ui/{r}/reports/alerts?month=2026-09&format=csv",
        tenant_object=False,
    ),
    "/ui/{region}/reports/mosie": Page(
        CONTROL, lambda r, t: f"/ui/{r}/reports/mosie?month=2026-09", tenant_object=False
    ),
    "/ui/{region}/reports/revenue": Page(
        ADMINS,
        lambda r, t: f"/ui/{r}/reports/revenue?month=2026-09&format=pdf",
        tenant_object=False,
    ),
    # Across every region: only roles whose scope is every region (admins), 403 for others.
    "/ui/{region}/reports/all/{name}": Page(
        ADMINS, lambda r, t: f"/ui/{r}/reports/all/revenue?month=2026-09", tenant_object=False
    ),
    "/ui/{region}/workorders/{order_id}": Page(
        ALL, lambda r, t: f"/ui/{r}/workorders/{t.work_order}"
    ),
    "/ui/{region}/workorders/{order_id}/photos/{photo_id}": Page(
        STAFF, lambda r, t: f"/ui/{r}/workorders/{t.work_order}/photos/{t.photo}"
    ),
    # Who is at the door (issue 20): the on-site job's customer and its MOSIE only.
    "/ui/{region}/workorders/{order_id}/door": Page(
        DOOR, lambda r, t: f"/ui/{r}/workorders/{t.work_order}/door"
    ),
    "/ui/{region}/workorders/{order_id}/door/photo": Page(
        DOOR, lambda r, t: f"/ui/{r}/workorders/{t.work_order}/door/photo"
    ),
    # The signed-in MOSIE's own location notice and the jobs page's location part.
    "/ui/{region}/location-notice": Page(
        MOSIES, lambda r, t: f"/ui/{r}/location-notice", tenant_object=False
    ),
    "/ui/{region}/location/control": Page(
        MOSIES, lambda r, t: f"/ui/{r}/location/control", tenant_object=False
    ),
    # Grid-code profiles (the region's, not a tenant's) and staged rollouts (issue 18).
    "/ui/{region}/grid-codes": Page(
        CONTROL, lambda r, t: f"/ui/{r}/grid-codes", tenant_object=False
    ),
    "/ui/{region}/grid-codes/{profile_id}": Page(
        CONTROL, lambda r, t: f"/ui/{r}/grid-codes/{GRID_CODES[r][0]}", tenant_object=False
    ),
    "/ui/{region}/grid-codes/diff": Page(
        CONTROL,
        lambda r, t: f"/ui/{r}/grid-codes/diff?a={GRID_CODES[r][0]}&b={GRID_CODES[r][1]}",
        tenant_object=False,
    ),
    "/ui/{region}/rollouts": Page(CONTROL, lambda r, t: f"/ui/{r}/rollouts", tenant_object=False),
    # Support tickets (issue 20): a customer's own (raised by it alone), the region's
    # queue for staff; the list is scoped in SQL, a ticket of another account is 404.
    "/ui/{region}/support/tickets": Page(
        OFFICE | CUSTOMERS, lambda r, t: f"/ui/{r}/support/tickets", tenant_object=False
    ),
    "/ui/{region}/support/tickets/new": Page(
        CUSTOMERS, lambda r, t: f"/ui/{r}/support/tickets/new", tenant_object=False
    ),
    "/ui/{region}/support/tickets/{ticket_id}": Page(
        OFFICE | CUSTOMERS, lambda r, t: f"/ui/{r}/support/tickets/{t.ticket}"
    ),
    # A data export's archive (issue 20 point 6): the account's and the desk's.
    "/ui/{region}/support/tickets/{ticket_id}/export": Page(
        OFFICE | CUSTOMERS, lambda r, t: f"/ui/{r}/support/tickets/{_EXPORTS[t.name]}/export"
    ),
    "/ui/{region}/rollouts/{rollout_id}": Page(
        CONTROL, lambda r, t: f"/ui/{r}/rollouts/{t.rollout}"
    ),
}
#: The state-changing page routes (the command form below; the alarms' and the inbox's
#: in test_portal_alarms_inbox.py).
POSTS = {
    "/ui/{region}/gateways/{gateway_id}/commands",
    "/ui/{region}/alarms/{alarm_id}/acknowledge",
    "/ui/{region}/alarms/{alarm_id}/shelve",
    "/ui/{region}/alarms/{alarm_id}/unshelve",
    "/ui/{region}/inbox/{entry_id}/read",
    "/ui/{region}/inbox/read-all",
    # a job's forms: test_portal_dispatch_pages.py
    "/ui/{region}/workorders/{order_id}/act",
    "/ui/{region}/workorders/{order_id}/checklist/{task_id}",
    "/ui/{region}/workorders/{order_id}/notes",
    "/ui/{region}/workorders/{order_id}/photos",
    "/ui/{region}/workorders/{order_id}/parts",
    "/ui/{region}/workorders/{order_id}/signature",
    "/ui/{region}/workorders/{order_id}/appointment",
    "/ui/{region}/workorders/{order_id}/appointment/reschedule",
    "/ui/{region}/workorders/{order_id}/charge",
    # the incident form and location sharing: tests/browser/test_portal_field.py
    "/ui/{region}/workorders/{order_id}/incidents",
    "/ui/{region}/location-notice/withdraw",
    "/ui/{region}/location",
    # the grid-code push from a MOSIE's job: test_portal_grid_push.py
    "/ui/{region}/workorders/{order_id}/grid-code",
    # a rollout's action form: test_portal_rollouts.py
    "/ui/{region}/rollouts/{rollout_id}/act",
    # a part's settings form (admins): test_parts_stock.py
    "/ui/{region}/parts",
    # the start form of a billing cycle (admins): test_billing_cycles_portal.py
    "/ui/{region}/billing/cycles",
    # a ticket's forms: test_portal_tickets.py
    "/ui/{region}/support/tickets",
    "/ui/{region}/support/tickets/{ticket_id}/reply",
    "/ui/{region}/support/tickets/{ticket_id}/reopen",
    "/ui/{region}/support/tickets/{ticket_id}/act",
}
#: The event streams: answers without end, tested over a real server (the inbox's in
#: test_portal_alarms_inbox.py, the dispatch board's in test_portal_dispatch_board.py,
#: with who may open them below).
STREAMS = {
    "/ui/{region}/inbox/events",
    "/ui/{region}/dispatch/events",
    "/ui/{region}/rollouts/{rollout_id}/events",
}
#: Two shipped grid-code profiles of each region the table's URLs name.
GRID_CODES = {
    "au": ("au-a-2020", "au-b-2020"),
    "es": ("es-en50549-1", "es-en50549-1-sin-excedentes"),
}


@pytest.fixture(scope="module")
def world(postgres_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with private_database(postgres_server_url) as url:
        key_dir: Path = tmp_path_factory.mktemp("ui-authz")
        with api_world(url, key_dir) as built:
            with_exports(built)
            yield with_badge_photos(with_rollouts(built))


#: Each tenant's data-export ticket, carried out (its archive ready), by tenant name.
_EXPORTS: dict[str, int] = {}


def with_exports(world: World) -> None:
    """A data export of each tenant's account, raised and carried out as support would."""
    desk = create_privacy_desk(world.pool)
    for t in world.tenants.values():
        ticket = seed_ticket(world.pool, t, kind="data_export", subject="my data")
        desk.export(ticket, Scope.of_region(t.region), t.employee)
        _EXPORTS[t.name] = ticket


def with_badge_photos(world: World) -> World:
    """Each tenant's MOSIE with a badge photo (the door panel shows it)."""
    staff = EmployeeService(world.pool)
    for t in world.tenants.values():
        staff.set_badge_photo(t.employee, PNG, "image/png", "authz table")
    return world


def with_rollouts(world: World) -> World:
    """A rollout over each tenant's gateway, made through the config service."""
    assert world.config is not None
    tenants = {}
    for name, t in world.tenants.items():
        body = RolloutIn(
            profile=profile(t.region), settings={"sim-inverter-103": {"v_ref": 233}},
            target=RolloutTarget(gateways=[t.gateway]), reason="authz table",
        )  # fmt: skip
        made = world.config.rollouts.create(t.region.value, body, "seed")
        tenants[name] = replace(t, rollout=made.id)
    return replace(world, tenants=tenants)


def _client(world: World, role: Role) -> TestClient:
    account = world.tenants["A"].account if role == Role.CUSTOMER else None
    # A MOSIE signs in with their employee number: account A's employee (A's job is theirs).
    employee = world.tenants["A"].employee if role == Role.MOSIE else None
    client = TestClient(world.app, base_url="https://testserver", raise_server_exceptions=False)
    token = mint_token(role, region=Region.AU, account_id=account, employee_no=employee)
    client.cookies.set("potr_session", token)
    return client


def test_the_table_names_every_page_the_app_serves(world: World) -> None:
    served = {r.path for r in served_routes(world.app) if r.path.startswith("/ui/")}
    assert served == set(TABLE) | POSTS | STREAMS


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("path", sorted(TABLE))
def test_every_page_as_every_role(world: World, role: Role, path: str) -> None:
    page = TABLE[path]
    own, other, far = world.tenants["A"], world.tenants["B"], world.tenants["E"]
    with _client(world, role) as client:
        mine = client.get(page.url("au", own), follow_redirects=False)
        if role not in page.roles:
            assert mine.status_code == 403, mine.text[:200]
            return
        assert mine.status_code == 200, mine.text[:300]
        if page.tenant_object:
            # A customer's "other" is B (same region); staff's is E's object under au.
            theirs = other if role == Role.CUSTOMER else far
            if role != Role.ADMIN:
                assert client.get(page.url("au", theirs)).status_code == 404
            assert (
                client.get(page.url("au", theirs if role == Role.ADMIN else far)).status_code == 404
                or role == Role.ADMIN
            )
        # Another region's URL: nothing there for anyone but admins.
        elsewhere = client.get(page.url("es", far), follow_redirects=False)
        assert elsewhere.status_code == (200 if role == Role.ADMIN else 404), elsewhere.text[:200]


def test_a_customer_sees_only_their_own_sites_listed(world: World) -> None:
    with _client(world, Role.CUSTOMER) as client:
        page = client.get("/ui/au/").text
    assert "site A" in page
    assert "site B" not in page
    assert "site E" not in page


def test_without_a_session_pages_lead_to_sign_in(world: World) -> None:
    own = world.tenants["A"]
    with TestClient(world.app, base_url="https://testserver") as client:
        page = client.get(f"/ui/au/sites/{own.site}", follow_redirects=False)
        assert page.status_code == 303
        assert page.headers["location"] == f"/login?next=%2Fui%2Fau%2Fsites%2F{own.site}"
        part = client.get(
            f"/ui/au/sites/{own.site}/live", headers={"HX-Request": "true"}, follow_redirects=False
        )
        assert part.status_code == 401
        assert part.headers["hx-redirect"].startswith("/login")


def _commands(world: World, gateway: str) -> int:
    with world.pool.connection() as conn:
        row = conn.execute(
            "SELECT count(*) FROM config.commands WHERE gateway_id = %s", (gateway,)
        ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize("role", list(Role))
def test_the_command_form_as_every_role(world: World, role: Role) -> None:
    own, far = world.tenants["A"], world.tenants["E"]
    with _client(world, role) as client:
        token = client.get("/login").cookies.get("potr_csrf") or client.cookies.get("potr_csrf")
        assert token
        before = {t.gateway: _commands(world, t.gateway) for t in (own, far)}
        form = {"name": "ping", "csrf_token": token}
        url = f"/ui/au/gateways/{own.gateway}/commands"
        sent = client.post(url, data=form, follow_redirects=False)
        if role in CONTROL:
            assert sent.status_code == 303
            assert _commands(world, own.gateway) == before[own.gateway] + 1
        else:
            assert sent.status_code == 403
            assert _commands(world, own.gateway) == before[own.gateway]
        # Another region's gateway under the au URL: not found, nothing sent.
        other = client.post(f"/ui/au/gateways/{far.gateway}/commands", data=form)
        assert other.status_code == (404 if role in CONTROL else 403)
        assert _commands(world, far.gateway) == before[far.gateway]
        # Without the CSRF token: refused, nothing sent.
        forged = client.post(url, data={"name": "ping"})
        assert forged.status_code == 403
        sent_ok = 1 if role in CONTROL else 0
        assert _commands(world, own.gateway) == before[own.gateway] + sent_ok
        # A malformed form: a page saying so, never a 500.
        bad = client.post(
            f"/ui/au/gateways/{own.gateway}/commands",
            data={"name": "x" * 5000, "csrf_token": token},
        )
        assert bad.status_code in ((422,) if role in CONTROL else (403,))
