"""The portal's authorisation policy, without sockets: the role table, the scope of each
kind of caller, the order of refusals (401, 403, 404, 422), and identity's tokens as callers."""

# No ``from __future__ import annotations``: the route in ``_app`` depends on a local
# function, and FastAPI resolves string annotations in the module's globals only.

from datetime import UTC, datetime, timedelta
from typing import Annotated

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from cloud.identity import Role, TokenError, verify_access_token
from cloud.portal.auth import access_dependencies
from cloud.portal.authz import ROUTES, CallerData, may_call, scope_for
from cloud.portal.errors import add_error_handlers
from cloud.scope import Access, GatewayReach, Scope
from contracts.signing import SigningKey
from contracts.topics import Region
from tests.api_tokens import KEY, mint_token

ACC = "acc_" + "a" * 32
STAFF = (Role.OPERATOR, Role.SUPPORT, Role.MOSIE)


def _caller(role: Role, region: Region = Region.AU, account: str | None = None) -> CallerData:
    return CallerData(subject=f"usr_{role.value}", role=role, region=region, account_id=account)


# -- who may call what ------------------------------------------------------------------------
#: The technician's phone's own routes: what only the assigned MOSIE records on site
#: (an admin is no job's technician), and their own job list.
TECHNICIAN_ONLY = frozenset(
    {"jobs.mine", "checklist.tick", "photos.create", "parts_used.create", "signatures.create"}
    | {"ui.jobs", "ui.workorder.tick", "ui.workorder.photo", "ui.workorder.part"}
    | {"ui.workorder.sign", "incidents.create", "location.record", "location_notice.get"}
    | {"location_notice.acknowledge", "location_notice.withdraw", "ui.workorder.incident"}
    | {"ui.location_notice", "ui.location_notice.acknowledge", "ui.location_notice.withdraw"}
    | {"ui.location.control", "ui.location.record", "ui.workorder.grid_code"}
)

#: A customer's own pages: its account's visits (staff see jobs on the board instead) and
#: bills (staff see a customer's through support's audited view).
CUSTOMER_ONLY = frozenset(
    {
        "ui.visits",
        "ui.bills",
        "ui.bill",
        "ui.bill.pdf",
        # support tickets (issue 20): a customer raises and reopens its own requests in
        # the portal (the desk raises for a caller over REST: support.tickets.create).
        "support.tickets.reopen",
        "ui.support.tickets.new",
        "ui.support.tickets.create",
        "ui.support.ticket.reopen",
        # the account at a glance (issue 20)
        "ui.overview",
    }
)

#: Who is at the door (issue 20): the two ends of a visit, the job's customer and its
#: MOSIE — no one else, not even an admin (the code proves who the MOSIE is).
VISIT_ENDS_ONLY = frozenset(
    {"ui.workorder.door", "ui.workorder.door_photo", "workorders.door_code"}
)


@pytest.mark.parametrize(
    "route", sorted(set(ROUTES) - TECHNICIAN_ONLY - CUSTOMER_ONLY - VISIT_ENDS_ONLY)
)
def test_an_admin_may_call_every_route(route: str) -> None:
    assert may_call(Role.ADMIN, route)


@pytest.mark.parametrize("route", sorted(TECHNICIAN_ONLY))
def test_only_a_mosie_calls_the_technicians_own_routes(route: str) -> None:
    assert [role for role in Role if may_call(role, route)] == [Role.MOSIE]


@pytest.mark.parametrize("route", sorted(CUSTOMER_ONLY))
def test_only_a_customer_calls_the_customers_own_routes(route: str) -> None:
    assert [role for role in Role if may_call(role, route)] == [Role.CUSTOMER]


@pytest.mark.parametrize("route", sorted(VISIT_ENDS_ONLY))
def test_only_a_visits_customer_and_mosie_call_the_door_routes(route: str) -> None:
    assert {role for role in Role if may_call(role, route)} == {Role.CUSTOMER, Role.MOSIE}


@pytest.mark.parametrize("route", [r for r in ROUTES if r.startswith(("commands.", "config."))])
@pytest.mark.parametrize("role", [Role.SUPPORT, Role.MOSIE, Role.CUSTOMER])
def test_only_operators_and_admins_reach_device_control(route: str, role: Role) -> None:
    assert not may_call(role, route)
    assert may_call(Role.OPERATOR, route)


@pytest.mark.parametrize("route", ["sites.create", "gateways.create"])
@pytest.mark.parametrize("role", [Role.SUPPORT, Role.MOSIE, Role.CUSTOMER])
def test_only_operators_and_admins_change_the_fleet(route: str, role: Role) -> None:
    assert not may_call(role, route)


@pytest.mark.parametrize("role", list(Role))
def test_every_role_reads_the_fleet_it_may_see(role: Role) -> None:
    reads = [r for r in ROUTES if r.startswith(("sites.", "gateways.", "devices."))]
    assert all(may_call(role, r) for r in reads if not r.endswith(".create"))


def test_a_route_not_in_the_table_is_an_error_not_an_open_door() -> None:
    with pytest.raises(KeyError):
        may_call(Role.ADMIN, "sites.delete")
    with pytest.raises(KeyError):
        access_dependencies(lambda _t: _caller(Role.ADMIN))("sites.delete")


# -- what each caller reaches -------------------------------------------------------------------
def test_an_admin_reaches_every_region() -> None:
    scope = scope_for(_caller(Role.ADMIN))
    assert scope == Scope.everything()
    assert scope.within(Region.ES) == Scope.of_region(Region.ES)


@pytest.mark.parametrize("role", list(Role))
def test_the_reports_across_regions_are_for_every_region_scopes_only(role: Role) -> None:
    """``reports.all`` reads each region's tables: a role may call it exactly when its
    scope is every region (an admin's), whatever its home region."""
    everywhere = all(scope_for(_caller(role, r, ACC)).region is None for r in Region)
    for route in ("reports.all", "ui.reports.all"):
        assert may_call(role, route) is everywhere, (route, role)


@pytest.mark.parametrize("role", STAFF)
def test_staff_reach_their_region_only(role: Role) -> None:
    scope = scope_for(_caller(role, Region.US))
    assert scope.within(Region.US) == Scope.of_region(Region.US)
    assert scope.within(Region.AU) is None


def test_a_customer_reaches_its_account_in_its_region() -> None:
    scope = scope_for(_caller(Role.CUSTOMER, Region.ES, ACC))
    assert scope.within(Region.ES) == Scope(Region.ES, ACC, by_account=True)
    assert scope.within(Region.AU) is None
    assert scope.sql_params() == {
        "scope_region": "es",
        "scope_by_account": True,
        "scope_account": ACC,
    }


def test_a_customer_without_an_account_reaches_nothing_not_everything() -> None:
    """``account_id = NULL`` is never true in SQL: the filter stays on."""
    params = scope_for(_caller(Role.CUSTOMER, Region.AU, None)).sql_params()
    assert params["scope_by_account"] is True
    assert params["scope_account"] is None


def test_a_customers_reach_is_its_gateways_and_staffs_the_region() -> None:
    customer = Scope.of_account(Region.AU, ACC)
    assert GatewayReach.of(customer, ["gw-b", "gw-a"]) == GatewayReach(Region.AU, ("gw-a", "gw-b"))
    assert GatewayReach.of(customer, []).sql_params()["reach_gateways"] == []
    staff = Scope.of_region(Region.AU)
    assert GatewayReach.of(staff, ["ignored"]) == GatewayReach(Region.AU, None)


# -- the dependency: order of refusals ----------------------------------------------------------
def _app(*, api_region: Region | None = None) -> TestClient:
    """One regional route keyed ``config.get`` (operators and admins); the token is the
    role's name, optionally ``role:region``."""

    def verify(token: str) -> CallerData:
        role, _, region = token.partition(":")
        try:
            return _caller(Role(role), Region(region or "au"), ACC)
        except ValueError:
            raise TokenError("unknown token") from None

    access = access_dependencies(verify, api_region=api_region)
    app = FastAPI()
    add_error_handlers(app)

    @app.get("/api/v1/{region}/things/{n}")
    async def thing(
        n: int, who: Annotated[Access, Depends(access("config.get"))]
    ) -> dict[str, str]:
        return {"region": str(who.scope.region), "subject": who.subject}

    return TestClient(app)


def _get(client: TestClient, path: str, token: str | None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    status: int = client.get(path, headers=headers).status_code
    return status


def test_no_or_a_bad_token_is_401_before_anything_else() -> None:
    client = _app()
    assert _get(client, "/api/v1/xx/things/no", None) == 401
    assert _get(client, "/api/v1/xx/things/no", "nobody") == 401


def test_a_role_that_may_not_call_is_403_whatever_the_parameters() -> None:
    client = _app()
    assert _get(client, "/api/v1/au/things/1", "support") == 403
    assert _get(client, "/api/v1/xx/things/no", "customer") == 403


def test_a_region_outside_the_callers_scope_is_404() -> None:
    client = _app()
    assert _get(client, "/api/v1/au/things/1", "operator:au") == 200
    assert _get(client, "/api/v1/es/things/1", "operator:au") == 404
    assert _get(client, "/api/v1/es/things/1", "admin") == 200


def test_a_region_this_process_does_not_serve_is_404_even_for_an_admin() -> None:
    client = _app(api_region=Region.US)
    assert _get(client, "/api/v1/au/things/1", "admin") == 404
    assert _get(client, "/api/v1/us/things/1", "admin") == 200


def test_malformed_parameters_of_an_allowed_caller_are_422() -> None:
    client = _app()
    assert _get(client, "/api/v1/xx/things/1", "operator") == 422
    assert _get(client, "/api/v1/au/things/no", "operator") == 422


# -- identity's access tokens as callers -----------------------------------------------------
def test_a_token_names_its_region_account_and_subject() -> None:
    caller = verify_access_token(
        mint_token("customer", region="es", account_id=ACC, subject="usr_1"), [KEY.public_key]
    )
    assert (caller.subject, caller.role, caller.region, caller.account_id) == (
        "usr_1",
        Role.CUSTOMER,
        Region.ES,
        ACC,
    )


def test_a_customer_token_without_an_account_reaches_no_site() -> None:
    caller = verify_access_token(mint_token("customer", region="au"), [KEY.public_key])
    scope = scope_for(caller).within(Region.AU)
    assert scope is not None
    assert (scope.by_account, scope.account_id) == (True, None)


@pytest.mark.parametrize(
    "token",
    [
        mint_token("admin", key=SigningKey.generate()),  # forged
        mint_token("admin", now=datetime.now(UTC) - timedelta(hours=1), ttl_s=60),  # expired
        mint_token("admin", audience="potr-elsewhere"),  # another service's
    ],
)
def test_tokens_that_must_be_refused_are(token: str) -> None:
    with pytest.raises(TokenError):
        verify_access_token(token, [KEY.public_key])
