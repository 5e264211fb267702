"""Scenario 14: the portal's authorisation matrix (BOLA/BFLA).

A hand-written table — not the policy's own — says, for every route of the OpenAPI
document, which roles may call it and whether it is scoped; the test first checks the
table against ``app.openapi()`` (a route missing here fails), then calls every route as
every role on its own object, another customer's (or another region's) object, and in
another region's URL, and asserts 403 / 404 / 2xx exactly. Every write is checked
against the database: a refused one changed nothing, an accepted one changed only its
own tenant's rows — 0 cross-tenant reads or writes.

The fleet (``api_world``): accounts A and B in au, E in es, each with an employee of its
region. Staff and customer A are of au. "Own" is A's object; "other" is B's for the
customer and E's (named under the au URL) for staff and admins; "other region" is E's
object under the es URL. A route that creates in the URL's region (an account, an
employee) names no tenant's object: "other" creates in au too.

Writes that need an object of their own each time (a contact or licence to delete, the
billing meter in place, a work order in the state the action needs) seed it through the
services as the request is built, before the footprint is taken.

Dispatch (issue 17): the MOSIE is account A's employee, signed in with their employee
number, and reaches only the jobs assigned to them. On the rows marked ``own_jobs``
their "other" is account B's job, assigned to B's employee — another MOSIE of the same
region — so the row proves that a MOSIE reaches neither another region's nor a
colleague's job. A lifecycle action differs by role (``by_role``): operators and admins
assign a scheduled job, the MOSIE accepts one assigned to them.
"""

from __future__ import annotations

import base64
import itertools
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cloud.bootstrap import create_privacy_desk, create_support_service
from cloud.customers import ContactIn, CustomersService
from cloud.dispatch import DispatchService
from cloud.employees import AbsenceIn, EmployeeService, LicenceIn
from cloud.identity import Role
from cloud.scope import Scope
from cloud.support import Actor, StaffMove, State
from contracts.timeutil import to_wire, utc_now
from contracts.topics import Region
from tests.integration.api_world import (
    INVERTER,
    JURISDICTIONS,
    PART,
    PNG,
    ZONES,
    Tenant,
    World,
    api_world,
    dispatch_settings,
    employee_in,
    installation_in,
    private_database,
    profile,
    seed_job,
    seed_offer,
    seed_ticket,
)

pytestmark = [pytest.mark.integration, pytest.mark.security]

ALL = frozenset(Role)
WRITERS = frozenset({Role.ADMIN, Role.OPERATOR})
CONTROL = frozenset({Role.ADMIN, Role.OPERATOR})
OFFICE = frozenset({Role.ADMIN, Role.OPERATOR, Role.SUPPORT})
CUSTOMER_READERS = OFFICE | {Role.CUSTOMER}
STAFF = OFFICE | {Role.MOSIE}
ACTORS = WRITERS | {Role.MOSIE}
MOSIE = frozenset({Role.MOSIE})
#: The two ends of a visit (the door code): the job's customer and its MOSIE.
DOOR = frozenset({Role.CUSTOMER, Role.MOSIE})
ADMIN = frozenset({Role.ADMIN})
_serial = itertools.count(1)
_periods = itertools.count(0)
#: The services request builders seed through (set by the ``world`` fixture).
_seed: dict[str, Any] = {}


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    params: dict[str, Any] | None = None
    body: dict[str, Any] | None = None
    headers: dict[str, str] | None = None
    #: A raw body (a photo), sent with ``headers``' Content-Type.
    content: bytes | None = None


@dataclass(frozen=True)
class Listing:
    """What a list filtered by a tenant's object must hold: that object (``seeded``),
    and nothing that is not the tenant's (``belongs``); when out of reach, nothing."""

    seeded: Callable[[Tenant], Any]
    belongs: Callable[[dict[str, Any], Tenant], bool]


@dataclass(frozen=True)
class Route:
    """One row of the table: who may call it, whether it is scoped by region/account,
    the status of success, and the request naming an object (the URL's region, the
    tenant whose object it names). A list route answers 200 for an object out of reach
    (filtered to nothing); ``listing`` says what it holds."""

    roles: frozenset[Role] | None  # None: public
    scoped: bool
    ok: int
    request: Callable[[Region, Tenant], Call]
    is_list: bool = False
    listing: Listing | None = None
    creates_in_url_region: bool = False
    #: The request differs by role (an action operators take, another the MOSIE takes).
    by_role: Callable[[Region, Tenant, Role], Call] | None = None
    #: A MOSIE reaches their own jobs only: their "other" is a colleague's (account B's).
    own_jobs: bool = False


def _r(region: Region) -> str:
    return f"/api/v1/{region.value}"


def _new_site(r: Region, t: Tenant) -> Call:
    body = {"name": f"s14 {next(_serial)}", "region": t.region.value, "time_zone": ZONES[t.region]}
    return Call("POST", f"{_r(r)}/sites", body=body)


def _config(r: Region, t: Tenant) -> Call:
    body = {
        "profile": profile(t.region).model_dump(mode="json"),
        "devices": {INVERTER: {"v_ref": 231}},
        "reason": "s14",
    }
    return Call("PUT", f"{_r(r)}/gateways/{t.gateway}/config", body=body)


def _rollout_body(t: Tenant) -> dict[str, Any]:
    return {
        "profile": profile(t.region).model_dump(mode="json"),
        "settings": {"sim-inverter-103": {"v_ref": 233}},
        "target": {"gateways": [t.gateway]},
        "reason": "s14",
    }


def _new_rollout(r: Region, t: Tenant) -> Call:
    _abort_rollouts(t)
    return Call("POST", f"{_r(r)}/rollouts", body=_rollout_body(t))


def _abort_rollouts(t: Tenant) -> None:
    """A gateway takes one active rollout at a time: end the ones a row left active."""
    rollouts = _seed["config"].rollouts
    for summary in rollouts.list(region=t.region.value):
        if summary.state in ("running", "paused"):
            rollouts.act(summary.id, "abort", "s14 reset", "s14", region=None)


def _rollout_action(action: str, *, paused: bool = False) -> Callable[[Region, Tenant], Call]:
    """A rollout of ``t``'s gateway in a state the action applies to, seeded as the
    request is built."""

    def build(r: Region, t: Tenant) -> Call:
        from cloud.config.rollout_models import RolloutIn

        _abort_rollouts(t)
        rollouts = _seed["config"].rollouts
        made = rollouts.create(t.region.value, RolloutIn.model_validate(_rollout_body(t)), "s14")
        if paused:
            rollouts.act(made.id, "pause", "s14", "s14", region=None)
        return Call("POST", f"{_r(r)}/rollouts/{made.id}/{action}", body={"reason": "s14"})

    return build


def _a_rollout(r: Region, t: Tenant) -> Call:
    rollouts = _seed["config"].rollouts
    existing = rollouts.list(region=t.region.value, limit=1)
    if existing:
        rid = existing[0].id
    else:
        from cloud.config.rollout_models import RolloutIn

        rid = rollouts.create(t.region.value, RolloutIn.model_validate(_rollout_body(t)), "s14").id
    return Call("GET", f"{_r(r)}/rollouts/{rid}")


#: A grid-code profile of each region, for a site's connection approval.
_APPROVED = {Region.AU: "au-a-2020", Region.US: "heco-a", Region.ES: "es-en50549-1"}


def _approval_body(t: Tenant) -> dict[str, Any]:
    return {"reference": f"s14-{next(_serial)}", "profile": _APPROVED[t.region]}


def _grid_code(r: Region, t: Tenant) -> Call:
    """The site's grid code; an approval on file makes the site known to the service."""
    from cloud.config.site_profiles import ConnectionApprovalIn

    sites = _seed["config"].sites
    with _seed["pool"].connection() as conn:
        known = conn.execute(
            "SELECT 1 FROM config.connection_approvals WHERE site_id = %s", (t.site,)
        ).fetchone()
    if known is None:
        body = ConnectionApprovalIn.model_validate(_approval_body(t))
        sites.set_approval(t.region.value, t.site, body, "s14")
    return Call("GET", f"{_r(r)}/sites/{t.site}/grid-code")


def _customers() -> CustomersService:
    return _seed["customers"]  # type: ignore[no-any-return]


def _employees() -> EmployeeService:
    return _seed["employees"]  # type: ignore[no-any-return]


def _meter(t: Tenant) -> str:
    """The billing meter in place at ``t``'s site now."""
    found = _customers().get_installation(t.region, t.site)
    assert found is not None
    return found.billing_meter


def _contact(r: Region, t: Tenant) -> Call:
    seeded = _customers().add_contact(
        t.region, t.account, ContactIn(name="x", phone="+61200000000")
    )
    return Call("DELETE", f"{_r(r)}/accounts/{t.account}/contacts/{seeded.id}")


def _licence_in(t: Tenant) -> LicenceIn:
    return LicenceIn.model_validate(
        {
            "kind": "au-electrical" if t.region == Region.AU else "es-instalador-autorizado",
            "jurisdiction": JURISDICTIONS[t.region],
            "number": f"S14-{next(_serial)}",
            "valid_from": "2025-01-01",
        }
    )


def _licence(r: Region, t: Tenant) -> Call:
    seeded = _employees().add_licence(t.employee, _licence_in(t))
    return Call("DELETE", f"{_r(r)}/employees/{t.employee}/licences/{seeded.id}")


def _next_day() -> date:
    return date(2030, 1, 1) + timedelta(days=next(_serial))


def _absence(r: Region, t: Tenant) -> Call:
    day = _next_day()
    seeded = _employees().add_absence(
        t.employee, AbsenceIn(starts_on=day, ends_on=day, kind="other")
    )
    return Call("DELETE", f"{_r(r)}/employees/{t.employee}/absences/{seeded.id}")


def _swap(r: Region, t: Tenant) -> Call:
    body = {
        "old_serial": _meter(t),
        "new_serial": f"MTR-{next(_serial)}",
        "replaced_at": to_wire(utc_now()),
        "old_register_kwh": "10",
        "new_register_kwh": "0",
    }
    return Call("POST", f"{_r(r)}/sites/{t.site}/meter-replacements", body=body)


def _installation(r: Region, t: Tenant) -> Call:
    body = installation_in(t.region, _meter(t)).model_dump(mode="json")
    return Call("PUT", f"{_r(r)}/sites/{t.site}/installation", body=body)


def _new_employee(r: Region, t: Tenant) -> Call:
    body = employee_in(f"E9{next(_serial):04d}", r).model_dump(mode="json")
    return Call("POST", f"{_r(r)}/employees", body=body)


def _get(path: str, **params: Any) -> Callable[[Region, Tenant], Call]:
    """A GET of ``path`` (formatted with the tenant's fields) under the URL's region."""

    def request(r: Region, t: Tenant) -> Call:
        return Call("GET", _r(r) + path.format(t=t), params=params or None)

    return request


def _dispatch() -> DispatchService:
    return _seed["dispatch"]  # type: ignore[no-any-return]


def _key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


def _wo(r: Region, t: Tenant, tail: str = "", job: int | None = None) -> str:
    return f"{_r(r)}/workorders/{t.work_order if job is None else job}{tail}"


def _action(r: Region, t: Tenant, role: Role) -> Call:
    """The MOSIE accepts a job assigned to them; the office assigns a scheduled one."""
    if role == Role.MOSIE:
        job = seed_job(_dispatch(), t, "assigned")
        return Call("POST", _wo(r, t, "/actions", job), body={"action": "accept"}, headers=_key())
    job = seed_job(_dispatch(), t, "scheduled")
    body = {"action": "assign", "technician": t.employee}
    return Call("POST", _wo(r, t, "/actions", job), body=body, headers=_key())


def _tick(r: Region, t: Tenant) -> Call:
    job = seed_job(_dispatch(), t)
    return Call("POST", _wo(r, t, "/checklist/swms-reviewed", job), body={}, headers=_key())


def _signature(r: Region, t: Tenant) -> Call:
    body = {"signer_name": "Pat Customer", "image_base64": base64.b64encode(PNG).decode()}
    job = seed_job(_dispatch(), t)
    return Call("POST", _wo(r, t, "/signature", job), body=body, headers=_key())


def _photo(r: Region, t: Tenant) -> Call:
    headers = {**_key(), "Content-Type": "image/png"}
    return Call("POST", _wo(r, t, "/photos"), headers=headers, content=PNG)


def _confirm(r: Region, t: Tenant) -> Call:
    job = seed_job(_dispatch(), t, "scheduled")
    starts = (utc_now() + timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    seed_offer(_seed["pool"], job, starts)
    body = {"start": starts.isoformat()}
    return Call("POST", _wo(r, t, "/appointment", job), body=body, headers=_key())


def _reschedule(r: Region, t: Tenant) -> Call:
    job = seed_job(_dispatch(), t, "scheduled")
    return Call("POST", _wo(r, t, "/appointment/reschedule", job), body={}, headers=_key())


def _new_job(r: Region, t: Tenant) -> Call:
    body = {"site_id": t.site, "type": "inspection", "priority": "P3", "title": "s14 job"}
    return Call("POST", f"{_r(r)}/workorders", body=body, headers=_key())


def _incident(r: Region, t: Tenant) -> Call:
    job = seed_job(_dispatch(), t)
    body = {"type": "inspection", "priority": "P3", "title": "s14 incident"}
    return Call("POST", _wo(r, t, "/incidents", job), body=body, headers=_key())


def _location(r: Region, t: Tenant) -> Call:
    """The signed-in MOSIE (account A's employee, on a job on site) acknowledged the
    notice: on duty, their fix is stored."""
    employees = _employees()
    employees.acknowledge_location_notice(_seed["mosie"], employees.location_notice.version)
    fix = {"latitude": -33.9, "longitude": 151.2, "accuracy_m": 10, "at": to_wire(utc_now())}
    return Call("POST", f"{_r(r)}/me/location", body=fix, headers=_key())


_PERIOD = {"since": "2026-01-01T00:00:00Z", "until": "2027-01-01T00:00:00Z"}

#: The dispatch routes (issue 17).
_DISPATCH_ROUTES: dict[tuple[str, str], Route] = {
    ("POST", "/api/v1/{region}/workorders"): Route(WRITERS, True, 201, _new_job),
    ("GET", "/api/v1/{region}/workorders"): Route(
        ALL,
        True,
        200,
        lambda r, t: Call("GET", f"{_r(r)}/workorders", params={"site_id": t.site}),
        is_list=True,
        listing=Listing(lambda t: t.work_order, lambda w, t: w["site_id"] == t.site),
        own_jobs=True,
    ),
    ("GET", "/api/v1/{region}/workorders/{work_order_id}"): Route(
        ALL, True, 200, lambda r, t: Call("GET", _wo(r, t)), own_jobs=True
    ),
    ("POST", "/api/v1/{region}/workorders/{work_order_id}/actions"): Route(
        ACTORS,
        True,
        200,
        lambda r, t: _action(r, t, Role.OPERATOR),
        by_role=_action,
        own_jobs=True,
    ),
    ("GET", "/api/v1/{region}/workorders/{work_order_id}/appointment"): Route(
        ALL, True, 200, lambda r, t: Call("GET", _wo(r, t, "/appointment")), own_jobs=True
    ),
    ("POST", "/api/v1/{region}/workorders/{work_order_id}/appointment"): Route(
        OFFICE | {Role.CUSTOMER}, True, 200, _confirm
    ),
    ("POST", "/api/v1/{region}/workorders/{work_order_id}/appointment/reschedule"): Route(
        OFFICE | {Role.CUSTOMER}, True, 200, _reschedule
    ),
    ("GET", "/api/v1/{region}/me/jobs"): Route(MOSIE, True, 200, _get("/me/jobs"), is_list=True),
    ("POST", "/api/v1/{region}/workorders/{work_order_id}/checklist/{task_id}"): Route(
        MOSIE, True, 201, _tick, own_jobs=True
    ),
    ("POST", "/api/v1/{region}/workorders/{work_order_id}/notes"): Route(
        STAFF,
        True,
        201,
        lambda r, t: Call("POST", _wo(r, t, "/notes"), body={"text": "s14"}, headers=_key()),
        own_jobs=True,
    ),
    ("POST", "/api/v1/{region}/workorders/{work_order_id}/photos"): Route(
        MOSIE, True, 201, _photo, own_jobs=True
    ),
    ("GET", "/api/v1/{region}/workorders/{work_order_id}/photos/{photo_id}"): Route(
        STAFF, True, 200, lambda r, t: Call("GET", _wo(r, t, f"/photos/{t.photo}")), own_jobs=True
    ),
    # The door code (issue 20): the job's customer and its MOSIE, of a job on site now.
    ("GET", "/api/v1/{region}/workorders/{work_order_id}/door-code"): Route(
        DOOR,
        True,
        200,
        lambda r, t: Call("GET", _wo(r, t, "/door-code", job=seed_job(_dispatch(), t))),
        own_jobs=True,
    ),
    ("POST", "/api/v1/{region}/workorders/{work_order_id}/charge"): Route(
        ACTORS,
        True,
        200,
        lambda r, t: Call(
            "POST",
            _wo(r, t, "/charge"),
            body={"reason": "customer_damage", "note": "s14"},
            headers=_key(),
        ),
        own_jobs=True,
    ),
    ("POST", "/api/v1/{region}/workorders/{work_order_id}/parts"): Route(
        MOSIE,
        True,
        201,
        lambda r, t: Call(
            "POST", _wo(r, t, "/parts"), body={"part_no": PART, "quantity": 1}, headers=_key()
        ),
        own_jobs=True,
    ),
    ("POST", "/api/v1/{region}/workorders/{work_order_id}/signature"): Route(
        MOSIE, True, 201, _signature, own_jobs=True
    ),
    ("POST", "/api/v1/{region}/workorders/{work_order_id}/incidents"): Route(
        MOSIE, True, 201, _incident, own_jobs=True
    ),
    # The MOSIE's own location and notice name no tenant's object: they write the
    # signed-in MOSIE's (account A's employee's) rows, in the URL's region.
    ("POST", "/api/v1/{region}/me/location"): Route(
        MOSIE, True, 201, _location, creates_in_url_region=True
    ),
    ("GET", "/api/v1/{region}/me/location-notice"): Route(
        MOSIE, True, 200, _get("/me/location-notice"), creates_in_url_region=True
    ),
    ("POST", "/api/v1/{region}/me/location-notice"): Route(
        MOSIE,
        True,
        200,
        lambda r, t: Call("POST", f"{_r(r)}/me/location-notice", body={"version": 1}),
        creates_in_url_region=True,
    ),
    ("DELETE", "/api/v1/{region}/me/location-notice"): Route(
        MOSIE,
        True,
        200,
        lambda r, t: Call("DELETE", f"{_r(r)}/me/location-notice"),
        creates_in_url_region=True,
    ),
    ("GET", "/api/v1/{region}/parts"): Route(STAFF, True, 200, _get("/parts"), is_list=True),
    ("GET", "/api/v1/{region}/parts/value"): Route(
        CONTROL, True, 200, _get("/parts/value"), is_list=True
    ),
    ("POST", "/api/v1/{region}/parts"): Route(
        ADMIN,
        True,
        200,
        lambda r, t: Call("POST", f"{_r(r)}/parts", body={"part_no": PART, "quantity": 1}),
        creates_in_url_region=True,
    ),
    ("GET", "/api/v1/{region}/employees/{employee_no}/performance"): Route(
        ACTORS, True, 200, _get("/employees/{t.employee}/performance", **_PERIOD), own_jobs=True
    ),
}

_ABSENT = {"from": "2025-01-01", "to": "2025-12-31"}
_AVAILABLE = {"at": "2025-11-05T10:00:00+11:00", "jurisdiction": "AU-NSW"}

#: The customers and employees routes (below the fleet's in :data:`TABLE`).
_OFFICE_ROUTES: dict[tuple[str, str], Route] = {
    ("GET", "/api/v1/{region}/accounts"): Route(OFFICE, True, 200, _get("/accounts"), is_list=True),
    ("POST", "/api/v1/{region}/accounts"): Route(
        WRITERS,
        True,
        201,
        lambda r, t: Call("POST", f"{_r(r)}/accounts", body={"name": "n", "email": "n@x.org"}),
        creates_in_url_region=True,
    ),
    ("GET", "/api/v1/{region}/accounts/{account_id}"): Route(
        CUSTOMER_READERS, True, 200, _get("/accounts/{t.account}")
    ),
    ("PATCH", "/api/v1/{region}/accounts/{account_id}"): Route(
        WRITERS,
        True,
        200,
        lambda r, t: Call(
            "PATCH", f"{_r(r)}/accounts/{t.account}", body={"name": f"s14 {next(_serial)}"}
        ),
    ),
    ("GET", "/api/v1/{region}/accounts/{account_id}/contacts"): Route(
        CUSTOMER_READERS, True, 200, _get("/accounts/{t.account}/contacts")
    ),
    ("POST", "/api/v1/{region}/accounts/{account_id}/contacts"): Route(
        WRITERS,
        True,
        201,
        lambda r, t: Call(
            "POST", f"{_r(r)}/accounts/{t.account}/contacts", body={"name": "c", "email": "c@x.org"}
        ),
    ),
    ("DELETE", "/api/v1/{region}/accounts/{account_id}/contacts/{contact_id}"): Route(
        WRITERS, True, 204, _contact
    ),
    ("GET", "/api/v1/{region}/sites/{site_id}/installation"): Route(
        CUSTOMER_READERS, True, 200, _get("/sites/{t.site}/installation")
    ),
    ("PUT", "/api/v1/{region}/sites/{site_id}/installation"): Route(
        WRITERS, True, 200, _installation
    ),
    ("GET", "/api/v1/{region}/sites/{site_id}/meter-replacements"): Route(
        CUSTOMER_READERS, True, 200, _get("/sites/{t.site}/meter-replacements")
    ),
    ("POST", "/api/v1/{region}/sites/{site_id}/meter-replacements"): Route(
        WRITERS, True, 201, _swap
    ),
    ("GET", "/api/v1/{region}/sites/{site_id}/warranties"): Route(
        CUSTOMER_READERS, True, 200, _get("/sites/{t.site}/warranties")
    ),
    ("PUT", "/api/v1/{region}/sites/{site_id}/warranties/{serial}"): Route(
        WRITERS,
        True,
        200,
        lambda r, t: Call(
            "PUT",
            f"{_r(r)}/sites/{t.site}/warranties/{INVERTER}",
            body={"kind": "inverter", "warranty_until": f"{2030 + next(_serial) % 50}-01-01"},
        ),
    ),
    ("GET", "/api/v1/{region}/employees"): Route(
        OFFICE, True, 200, _get("/employees"), is_list=True
    ),
    ("POST", "/api/v1/{region}/employees"): Route(
        WRITERS, True, 201, _new_employee, creates_in_url_region=True
    ),
    ("GET", "/api/v1/{region}/available-employees"): Route(
        OFFICE, True, 200, _get("/available-employees", **_AVAILABLE), is_list=True
    ),
    ("GET", "/api/v1/{region}/employees/{employee_no}"): Route(
        OFFICE, True, 200, _get("/employees/{t.employee}")
    ),
    ("PATCH", "/api/v1/{region}/employees/{employee_no}"): Route(
        WRITERS,
        True,
        200,
        lambda r, t: Call(
            "PATCH", f"{_r(r)}/employees/{t.employee}", body={"name": f"s14 {next(_serial)}"}
        ),
    ),
    # The badge photo a customer is shown of the MOSIE at the door (issue 20): admins.
    ("PUT", "/api/v1/{region}/employees/{employee_no}/photo"): Route(
        ADMIN,
        True,
        204,
        lambda r, t: Call(
            "PUT",
            f"{_r(r)}/employees/{t.employee}/photo",
            headers={"Content-Type": "image/png"},
            content=PNG + next(_serial).to_bytes(4, "big"),
        ),
    ),
    ("POST", "/api/v1/{region}/employees/{employee_no}/licences"): Route(
        WRITERS,
        True,
        201,
        lambda r, t: Call(
            "POST",
            f"{_r(r)}/employees/{t.employee}/licences",
            body=_licence_in(t).model_dump(mode="json"),
        ),
    ),
    ("DELETE", "/api/v1/{region}/employees/{employee_no}/licences/{licence_id}"): Route(
        WRITERS, True, 204, _licence
    ),
    ("GET", "/api/v1/{region}/employees/{employee_no}/absences"): Route(
        OFFICE, True, 200, _get("/employees/{t.employee}/absences", **_ABSENT)
    ),
    ("POST", "/api/v1/{region}/employees/{employee_no}/absences"): Route(
        WRITERS,
        True,
        201,
        lambda r, t: Call(
            "POST",
            f"{_r(r)}/employees/{t.employee}/absences",
            body={"starts_on": str(_next_day()), "ends_on": str(_next_day()), "kind": "other"},
        ),
    ),
    ("DELETE", "/api/v1/{region}/employees/{employee_no}/absences/{absence_id}"): Route(
        WRITERS, True, 204, _absence
    ),
    ("GET", "/api/v1/{region}/calendar/business-days"): Route(
        ALL, True, 200, _get("/calendar/business-days", **_ABSENT), is_list=True
    ),
}

#: The table: (method, OpenAPI path) → row.
#: Billing's read-only routes (issue 19): "other" is another account's (a customer) or an
#: account of another region named under the au URL (staff): 404 either way.
_BILLING_ROUTES: dict[tuple[str, str], Route] = {
    ("GET", "/api/v1/{region}/accounts/{account_id}/documents"): Route(
        CUSTOMER_READERS, True, 200, _get("/accounts/{t.account}/documents")
    ),
    ("GET", "/api/v1/{region}/documents/{number}"): Route(
        CUSTOMER_READERS, True, 200, _get("/documents/{t.bill}")
    ),
    ("GET", "/api/v1/{region}/documents/{number}/pdf"): Route(
        CUSTOMER_READERS, True, 200, _get("/documents/{t.bill}/pdf")
    ),
    ("GET", "/api/v1/{region}/accounts/{account_id}/balance"): Route(
        CUSTOMER_READERS, True, 200, _get("/accounts/{t.account}/balance")
    ),
    ("GET", "/api/v1/{region}/accounts/{account_id}/payments"): Route(
        CUSTOMER_READERS, True, 200, _get("/accounts/{t.account}/payments")
    ),
    # Billing cycles: admins start them, the operators' desk follows them. A cycle is the
    # region's: "other" is another region's cycle named under the au URL (404). A start
    # names a new period each time (the world's accounts are on no plan: it bills nothing)
    # in the URL's region.
    ("GET", "/api/v1/{region}/billing/cycles"): Route(
        WRITERS, True, 200, _get("/billing/cycles"), is_list=True
    ),
    ("GET", "/api/v1/{region}/billing/cycles/{cycle_id}"): Route(
        WRITERS, True, 200, _get("/billing/cycles/{t.cycle}")
    ),
    ("POST", "/api/v1/{region}/billing/cycles"): Route(
        ADMIN, True, 202, lambda r, t: _new_cycle(r), creates_in_url_region=True
    ),
    # Reports (issue 20): a region's aggregates, the URL's region's only. The fleet,
    # alerts and MOSIE ones are the operators' desk's too; revenue the admins' alone.
    ("GET", "/api/v1/{region}/reports/fleet"): Route(
        WRITERS, True, 200, _get("/reports/fleet", month="2026-09"), is_list=True
    ),
    ("GET", "/api/v1/{region}/reports/alerts"): Route(
        WRITERS, True, 200, _get("/reports/alerts", month="2026-09"), is_list=True
    ),
    ("GET", "/api/v1/{region}/reports/mosie"): Route(
        WRITERS, True, 200, _get("/reports/mosie", month="2026-09", format="csv"), is_list=True
    ),
    ("GET", "/api/v1/{region}/reports/revenue"): Route(
        ADMIN, True, 200, _get("/reports/revenue", month="2026-09", format="pdf"), is_list=True
    ),
    # Across every region: the roles whose scope is every region (admins) only, under any
    # region's URL (the gateway sends it to one); it names no tenant's object.
    ("GET", "/api/v1/{region}/reports/all/{name}"): Route(
        ADMIN, True, 200, _get("/reports/all/alerts", month="2026-09", format="csv"), is_list=True
    ),
    # Support's SLA attainment: the office's (support works to it).
    ("GET", "/api/v1/{region}/reports/support"): Route(
        OFFICE, True, 200, _get("/reports/support", month="2026-09"), is_list=True
    ),
}


def _new_cycle(r: Region) -> Call:
    """A start of a period no call named before: a month from January 2021 (one per call:
    a few dozen, all long ended)."""
    n = next(_periods)
    body = {"first_day": date(2021 + n // 12, n % 12 + 1, 1).isoformat(), "cycle": "monthly"}
    return Call("POST", f"{_r(r)}/billing/cycles", body=body)


#: Support tickets (issue 20): a customer's own account's, the region's for staff (the
#: desk acts; operators read). "Other" is B's ticket (customer) or E's under the au URL
#: (staff): 404. Actions that need a ticket in a state of its own get a fresh one of the
#: tenant's account, seeded as the request is built.
SUPPORT_DESK = frozenset({Role.ADMIN, Role.SUPPORT})
TICKET_WRITERS = SUPPORT_DESK | {Role.CUSTOMER}
CUSTOMER = frozenset({Role.CUSTOMER})


def _fresh_ticket(
    path: str, body: dict[str, Any], **given: Any
) -> Callable[[Region, Tenant], Call]:
    def request(r: Region, t: Tenant) -> Call:
        fields = {k: (v(t) if callable(v) else v) for k, v in given.items()}
        ticket = seed_ticket(_seed["pool"], t, **fields)
        return Call("POST", f"{_r(r)}/support/tickets/{ticket}{path}", body=body)

    return request


def _resolved_ticket(r: Region, t: Tenant) -> Call:
    ticket = seed_ticket(_seed["pool"], t)
    _seed["support"].move(
        ticket, Scope.of_region(t.region), Actor(t.employee, "support"),
        StaffMove(state=State.RESOLVED, outcome="answered"),
    )  # fmt: skip
    return Call("POST", f"{_r(r)}/support/tickets/{ticket}/reopen", body={"note": "s14"})


def _exported_ticket(r: Region, t: Tenant) -> Call:
    ticket = seed_ticket(_seed["pool"], t, kind="data_export", subject="my data")
    _seed["privacy"].export(ticket, Scope.of_region(t.region), t.employee)
    return Call("GET", f"{_r(r)}/support/tickets/{ticket}/privacy-export")


_SUPPORT_ROUTES: dict[tuple[str, str], Route] = {
    # Tickets per 1,000 customers: the region's figures, for the office (scoped in SQL to
    # the URL's region; it names no object).
    ("GET", "/api/v1/{region}/support/ticket-rates"): Route(
        OFFICE, True, 200, _get("/support/ticket-rates", months=2), is_list=True
    ),
    ("GET", "/api/v1/{region}/support/tickets"): Route(
        CUSTOMER_READERS,
        True,
        200,
        lambda r, t: Call(
            "GET",
            f"{_r(r)}/support/tickets",
            params={"account_id": t.account, "open_only": "false"},
        ),
        is_list=True,
        listing=Listing(lambda t: t.ticket, lambda i, t: i["account_id"] == t.account),
    ),
    ("POST", "/api/v1/{region}/support/tickets"): Route(
        TICKET_WRITERS,
        True,
        201,
        lambda r, t: Call(
            "POST",
            f"{_r(r)}/support/tickets",
            params={"account_id": t.account},
            body={"kind": "question", "subject": "s14 question"},
        ),
    ),
    ("GET", "/api/v1/{region}/support/tickets/{ticket_id}"): Route(
        CUSTOMER_READERS, True, 200, _get("/support/tickets/{t.ticket}")
    ),
    ("POST", "/api/v1/{region}/support/tickets/{ticket_id}/replies"): Route(
        TICKET_WRITERS,
        True,
        200,
        lambda r, t: Call(
            "POST", f"{_r(r)}/support/tickets/{t.ticket}/replies", body={"text": "s14"}
        ),
    ),
    ("POST", "/api/v1/{region}/support/tickets/{ticket_id}/reopen"): Route(
        CUSTOMER, True, 200, _resolved_ticket
    ),
    ("PUT", "/api/v1/{region}/support/tickets/{ticket_id}/assignee"): Route(
        SUPPORT_DESK,
        True,
        200,
        lambda r, t: Call(
            "PUT", f"{_r(r)}/support/tickets/{t.ticket}/assignee", body={"assignee": t.employee}
        ),
    ),
    ("POST", "/api/v1/{region}/support/tickets/{ticket_id}/state"): Route(
        SUPPORT_DESK, True, 200, _fresh_ticket("/state", {"state": "pending", "note": "s14"})
    ),
    ("POST", "/api/v1/{region}/support/tickets/{ticket_id}/approve"): Route(
        SUPPORT_DESK,
        True,
        200,
        _fresh_ticket(
            "/approve", {"note": "s14"}, kind="change_request", change="move", subject="move"
        ),
    ),
    ("POST", "/api/v1/{region}/support/tickets/{ticket_id}/work-order"): Route(
        SUPPORT_DESK,
        True,
        200,
        _fresh_ticket(
            "/work-order", {"note": "s14"}, kind="fault_report", site_id=lambda t: t.site
        ),
    ),
    ("POST", "/api/v1/{region}/support/tickets/{ticket_id}/privacy-export"): Route(
        SUPPORT_DESK,
        True,
        200,
        _fresh_ticket("/privacy-export", {}, kind="data_export", subject="my data"),
    ),
    ("GET", "/api/v1/{region}/support/tickets/{ticket_id}/privacy-export"): Route(
        CUSTOMER_READERS, True, 200, _exported_ticket
    ),
    # An erasure here would erase the tenants this world shares, so the request names a
    # question ticket: the desk, once authorised and in reach, refuses it (409). The
    # erasure itself is tests/integration/test_privacy_requests.py's.
    ("POST", "/api/v1/{region}/support/tickets/{ticket_id}/erasure"): Route(
        SUPPORT_DESK, True, 409, _fresh_ticket("/erasure", {})
    ),
}


TABLE: dict[tuple[str, str], Route] = {
    ("GET", "/healthz"): Route(None, False, 200, lambda r, t: Call("GET", "/healthz")),
    ("GET", "/api/v1/{region}/sites"): Route(
        ALL, True, 200, lambda r, t: Call("GET", f"{_r(r)}/sites"), is_list=True
    ),
    ("GET", "/api/v1/{region}/sites/{site_id}"): Route(
        ALL, True, 200, lambda r, t: Call("GET", f"{_r(r)}/sites/{t.site}")
    ),
    ("POST", "/api/v1/{region}/sites"): Route(WRITERS, True, 201, _new_site),
    ("GET", "/api/v1/{region}/gateways"): Route(
        ALL,
        True,
        200,
        lambda r, t: Call("GET", f"{_r(r)}/gateways", params={"site_id": t.site}),
        is_list=True,
        listing=Listing(lambda t: t.gateway, lambda g, t: g["site_id"] == t.site),
    ),
    ("GET", "/api/v1/{region}/gateways/{gateway_id}"): Route(
        ALL, True, 200, lambda r, t: Call("GET", f"{_r(r)}/gateways/{t.gateway}")
    ),
    ("POST", "/api/v1/{region}/gateways"): Route(
        WRITERS,
        True,
        201,
        lambda r, t: Call(
            "POST", f"{_r(r)}/gateways", body={"id": f"gw-s14-{next(_serial)}", "site_id": t.site}
        ),
    ),
    ("GET", "/api/v1/{region}/devices"): Route(
        ALL,
        True,
        200,
        lambda r, t: Call("GET", f"{_r(r)}/devices", params={"gateway_id": t.gateway}),
        is_list=True,
        listing=Listing(lambda t: t.device, lambda d, t: d["gateway_id"] == t.gateway),
    ),
    ("GET", "/api/v1/{region}/devices/{device_id}"): Route(
        ALL, True, 200, lambda r, t: Call("GET", f"{_r(r)}/devices/{t.device}")
    ),
    ("GET", "/api/v1/{region}/devices/{device_id}/readings"): Route(
        ALL,
        True,
        200,
        lambda r, t: Call("GET", f"{_r(r)}/devices/{t.device}/readings", params={"metric": "pv_w"}),
    ),
    ("GET", "/api/v1/{region}/sites/{site_id}/readings"): Route(
        ALL, True, 200, _get("/sites/{t.site}/readings", metric="pv_w", resolution="auto")
    ),
    ("GET", "/api/v1/{region}/sites/{site_id}/latest"): Route(
        ALL, True, 200, _get("/sites/{t.site}/latest")
    ),
    ("GET", "/api/v1/{region}/sites/{site_id}/energy"): Route(
        ALL,
        True,
        200,
        _get(
            "/sites/{t.site}/energy", metric="pv_wh", **{"from": "2026-01-01", "to": "2026-01-31"}
        ),
    ),
    # The fleet's newest values name no object: what it lists is checked in
    # test_telemetry_queries (a customer's holds its account's devices only).
    ("GET", "/api/v1/{region}/latest"): Route(
        ALL, True, 200, _get("/latest", metric="pv_w"), is_list=True
    ),
    ("GET", "/api/v1/{region}/devices/{device_id}/completeness"): Route(
        ALL, True, 200, lambda r, t: Call("GET", f"{_r(r)}/devices/{t.device}/completeness")
    ),
    ("POST", "/api/v1/{region}/gateways/{gateway_id}/commands"): Route(
        CONTROL,
        True,
        201,
        lambda r, t: Call(
            "POST", f"{_r(r)}/gateways/{t.gateway}/commands", body={"name": "ping", "reason": "x"}
        ),
    ),
    ("GET", "/api/v1/{region}/gateways/{gateway_id}/commands"): Route(
        CONTROL, True, 200, lambda r, t: Call("GET", f"{_r(r)}/gateways/{t.gateway}/commands")
    ),
    ("GET", "/api/v1/{region}/commands/{command_id}"): Route(
        CONTROL, True, 200, lambda r, t: Call("GET", f"{_r(r)}/commands/{t.command}")
    ),
    ("PUT", "/api/v1/{region}/gateways/{gateway_id}/config"): Route(CONTROL, True, 200, _config),
    ("GET", "/api/v1/{region}/gateways/{gateway_id}/config"): Route(
        CONTROL, True, 200, lambda r, t: Call("GET", f"{_r(r)}/gateways/{t.gateway}/config")
    ),
    ("POST", "/api/v1/{region}/gateways/{gateway_id}/config/rollback"): Route(
        CONTROL,
        True,
        201,
        lambda r, t: Call(
            "POST", f"{_r(r)}/gateways/{t.gateway}/config/rollback", body={"reason": "s14"}
        ),
    ),
    ("GET", "/api/v1/{region}/gateways/{gateway_id}/config/audit"): Route(
        CONTROL, True, 200, lambda r, t: Call("GET", f"{_r(r)}/gateways/{t.gateway}/config/audit")
    ),
    ("POST", "/api/v1/{region}/rollouts"): Route(CONTROL, True, 201, _new_rollout),
    ("GET", "/api/v1/{region}/rollouts"): Route(
        CONTROL, True, 200, lambda r, t: Call("GET", f"{_r(r)}/rollouts"), is_list=True
    ),
    ("GET", "/api/v1/{region}/rollouts/{rollout_id}"): Route(CONTROL, True, 200, _a_rollout),
    ("POST", "/api/v1/{region}/rollouts/{rollout_id}/pause"): Route(
        CONTROL, True, 200, _rollout_action("pause")
    ),
    ("POST", "/api/v1/{region}/rollouts/{rollout_id}/resume"): Route(
        CONTROL, True, 200, _rollout_action("resume", paused=True)
    ),
    ("POST", "/api/v1/{region}/rollouts/{rollout_id}/abort"): Route(
        CONTROL, True, 200, _rollout_action("abort")
    ),
    ("POST", "/api/v1/{region}/rollouts/{rollout_id}/rollback"): Route(
        CONTROL, True, 200, _rollout_action("rollback")
    ),
    ("GET", "/api/v1/{region}/sites/{site_id}/grid-code"): Route(CONTROL, True, 200, _grid_code),
    ("PUT", "/api/v1/{region}/sites/{site_id}/connection-approval"): Route(
        CONTROL,
        True,
        200,
        lambda r, t: Call(
            "PUT", f"{_r(r)}/sites/{t.site}/connection-approval", body=_approval_body(t)
        ),
    ),
    **_OFFICE_ROUTES,
    **_DISPATCH_ROUTES,
    **_BILLING_ROUTES,
    **_SUPPORT_ROUTES,
}


@pytest.fixture(scope="module")
def world(postgres_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with private_database(postgres_server_url) as url:
        key_dir: Path = tmp_path_factory.mktemp("s14")
        with api_world(url, key_dir) as built:
            _seed["customers"] = CustomersService(built.pool)
            _seed["employees"] = EmployeeService(built.pool)
            _seed["dispatch"] = built.dispatch
            _seed["pool"] = built.pool
            _seed["config"] = built.config
            _seed["mosie"] = built.tenants["A"].employee
            _seed["support"] = create_support_service(built.pool)
            _seed["privacy"] = create_privacy_desk(built.pool, dispatch=dispatch_settings(key_dir))
            yield built


@pytest.fixture(scope="module")
def client(world: World) -> Iterator[TestClient]:
    with TestClient(world.app, raise_server_exceptions=False) as c:
        yield c


def test_the_table_names_every_route_of_the_openapi_and_no_other(world: World) -> None:
    served = {
        (method.upper(), path)
        for path, operations in world.app.openapi()["paths"].items()
        for method in operations
    }
    assert served == set(TABLE), (
        f"missing from the table: {sorted(served - set(TABLE))}; "
        f"not served: {sorted(set(TABLE) - served)}"
    )
    for (_, path), route in TABLE.items():
        assert route.scoped == path.startswith("/api/v1/{region}/"), path


# -- the database footprint of writes --------------------------------------------------------
#: Rows changed in place show as their ``updated_at`` in microseconds.
_STAMP = "(extract(epoch FROM updated_at) * 1000000)::bigint"
_FOOTPRINT = {
    "sites": "SELECT region, count(*) FROM registry.sites GROUP BY 1",
    "gateways": "SELECT site_id::text, count(*) FROM registry.gateways GROUP BY 1",
    "commands": "SELECT gateway_id, count(*) FROM config.commands GROUP BY 1",
    "versions": "SELECT gateway_id, count(*) FROM config.desired GROUP BY 1",
    "audit": "SELECT gateway_id, count(*) FROM config.audit GROUP BY 1",
    "rollouts": "SELECT region, count(*) FROM config.rollout_log GROUP BY 1",
    "approvals": "SELECT site_id::text, count(*) FROM config.connection_approvals GROUP BY 1",
    "accounts": "SELECT region, count(*) FROM customers.accounts GROUP BY 1",
    "account": f"SELECT id, {_STAMP} FROM customers.accounts WHERE id = ANY(%(accounts)s)",
    "contacts": "SELECT account_id, count(*) FROM customers.contacts GROUP BY 1",
    "installation": f"SELECT site_id::text, {_STAMP} FROM customers.installations",
    "meters": "SELECT site_id::text, count(*) FROM customers.meter_replacements GROUP BY 1",
    "warranties": f"SELECT site_id::text, sum({_STAMP}) FROM customers.device_warranties"
    " GROUP BY 1",
    "employees": "SELECT region, count(*) FROM employees.employees GROUP BY 1",
    "employee": f"SELECT employee_no, {_STAMP} FROM employees.employees"
    " WHERE employee_no = ANY(%(employees)s)",
    "licences": "SELECT employee_no, count(*) FROM employees.licences GROUP BY 1",
    "absences": "SELECT employee_no, count(*) FROM employees.absences GROUP BY 1",
    "badge_photos": "SELECT employee_no, (extract(epoch FROM at) * 1000000)::bigint"
    " FROM employees.badge_photos",
    "work_orders": "SELECT site_id::text, sum(version) FROM dispatch.work_orders GROUP BY 1",
    "stock": "SELECT region, sum(quantity) FROM dispatch.parts_stock GROUP BY 1",
    "cycles": "SELECT region, count(*) FROM billing.cycles GROUP BY 1",
    "tickets": "SELECT t.account_id, count(*) FROM support.ticket_events e"
    " JOIN support.tickets t ON t.id = e.ticket_id GROUP BY 1",
    "locations": "SELECT region, count(*) FROM dispatch.locations GROUP BY 1",
    "notice_acks": "SELECT e.region, count(*) FROM employees.location_notice_acks a"
    " JOIN employees.employees e USING (employee_no) GROUP BY 1",
    **{
        f"wo_{table}": f"SELECT w.site_id::text, count(*) FROM dispatch.{table} x"
        " JOIN dispatch.work_orders w ON w.id = x.work_order_id GROUP BY 1"
        for table in ("history", "checklist_ticks", "notes", "photos", "parts_used", "signatures")
    },
}


def _footprint(world: World) -> dict[tuple[str, str], int]:
    seeded = {
        "accounts": [t.account for t in world.tenants.values()],
        "employees": [t.employee for t in world.tenants.values()],
    }
    with world.pool.connection() as conn:
        return {
            (table, str(key)): int(n)
            for table, query in _FOOTPRINT.items()
            for key, n in conn.execute(query, seeded).fetchall()
        }


def _owned_keys(t: Tenant) -> set[str]:
    """Footprint keys a write naming ``t``'s objects may change."""
    return {t.region.value, str(t.site), t.gateway, t.account, t.employee}


def _changed(before: dict[tuple[str, str], int], after: dict[tuple[str, str], int]) -> set[str]:
    return {
        key
        for table, key in before.keys() | after.keys()
        if before.get((table, key)) != after.get((table, key))
    }


# -- the matrix ----------------------------------------------------------------------------------
def _call(client: TestClient, call: Call, headers: dict[str, str]) -> Any:
    if call.content is not None:
        return client.request(
            call.method,
            call.path,
            params=call.params,
            content=call.content,
            headers={**(call.headers or {}), **headers},
        )
    return client.request(
        call.method,
        call.path,
        params=call.params,
        json=call.body,
        headers={**(call.headers or {}), **headers},
    )


def _expected(route: Route, role: Role, case: str, path: str) -> int:
    if route.roles is None:
        return route.ok
    if role not in route.roles:
        return 403
    if case == "own":
        return route.ok
    if case == "other_region":
        return route.ok if role == Role.ADMIN else 404
    # "other": another account's object (customer) or another region's under our URL.
    if route.creates_in_url_region:
        return route.ok  # it names no tenant's object: it creates in the URL's region
    if route.is_list:
        return 200  # a list filtered by an object out of reach is empty, not an error
    if path == "/api/v1/{region}/sites" and route.ok == 201:
        return 422  # a site of another region than the URL's
    return 404


CASES = ("own", "other", "other_region")


@pytest.mark.parametrize(("method", "path"), sorted(TABLE))
def test_every_role_on_own_and_other_objects_gets_exactly_its_answer(
    world: World, client: TestClient, method: str, path: str
) -> None:
    route = TABLE[(method, path)]
    a, b, e = (world.tenants[n] for n in "ABE")
    failures: list[str] = []
    if route.roles is not None:
        anonymous = _call(client, route.request(Region.AU, a), {})
        if anonymous.status_code != 401:
            failures.append(f"no token: {anonymous.status_code}, expected 401")
    for role, case in itertools.product(Role, CASES):
        colleague = role == Role.MOSIE and route.own_jobs
        other = b if role == Role.CUSTOMER or colleague else e
        url_region, tenant = {
            "own": (Region.AU, a),
            "other": (Region.AU, other),
            "other_region": (Region.ES, e),
        }[case]
        if route.by_role is not None:
            call = route.by_role(url_region, tenant, role)
        else:
            call = route.request(url_region, tenant)
        before = _footprint(world) if method != "GET" else {}
        answer = _call(client, call, world.headers(role))
        want = _expected(route, role, case, path)
        if answer.status_code != want:
            failures.append(f"{role.value} {case}: {answer.status_code}, expected {want}")
            continue
        if route.listing is not None and want == 200:
            reachable = case == "own" or (case == "other_region" and role == Role.ADMIN)
            failures += _listed(route.listing, answer.json(), tenant, reachable, f"{role} {case}")
        if path.endswith("/sites") and method == "GET" and want == 200:
            failures += _sites_reachable(world, role, url_region, answer.json())
        if method != "GET":
            changed = _changed(before, _footprint(world))
            allowed = _owned_keys(tenant) if 200 <= want < 300 else set()
            if route.creates_in_url_region and 200 <= want < 300:
                allowed.add(url_region.value)
            if not changed <= allowed:
                failures.append(
                    f"{role.value} {case}: wrote {changed - allowed} (allowed {allowed})"
                )
            if 200 <= want < 300 and not changed:
                failures.append(f"{role.value} {case}: {want} but nothing written")
    assert failures == [], "\n".join(failures)


def _listed(
    listing: Listing, items: list[dict[str, Any]], tenant: Tenant, reachable: bool, label: str
) -> list[str]:
    ids = [i["id"] for i in items]
    if not reachable:
        return [f"{label}: listed {ids} out of reach"] if items else []
    wrong = [i["id"] for i in items if not listing.belongs(i, tenant)]
    if wrong or listing.seeded(tenant) not in ids:
        return [f"{label}: listed {ids}, expected {listing.seeded(tenant)} and its kin only"]
    return []


def _sites_reachable(
    world: World, role: Role, region: Region, sites: list[dict[str, Any]]
) -> list[str]:
    """A site list holds only sites of the URL's region, and a customer's only its own
    account's (the seeded sites of other accounts, and sites made during the test, which
    have no account, never)."""
    wrong = [s["id"] for s in sites if s["region"] != region.value]
    if role == Role.CUSTOMER:
        own = {world.tenants["A"].site} if region == Region.AU else set()
        wrong += [s["id"] for s in sites if s["id"] not in own]
    elif region == Region.AU:
        seeded = {world.tenants["A"].site, world.tenants["B"].site}
        wrong += [f"missing {i}" for i in seeded - {s["id"] for s in sites}]
    return [f"{role.value} sites in {region.value}: {wrong}"] if wrong else []


def test_a_customer_sees_its_own_bills_only(world: World, client: TestClient) -> None:
    """What the billing routes hold, not only their status: customer A's documents,
    balance and payments are A's seeded ones (27.50 gross, 10.00 paid: 17.50 owed), and
    B's document, in the same region, is not there for A but is for au's support."""
    a, b, e = (world.tenants[n] for n in "ABE")
    customer, support = world.headers(Role.CUSTOMER), world.headers(Role.SUPPORT)
    base = _r(Region.AU)
    docs = client.get(f"{base}/accounts/{a.account}/documents", headers=customer).json()
    assert [(d["number"], d["gross"], d["outstanding"]) for d in docs] == [
        (a.bill, "27.50", "17.50")
    ]
    one = client.get(f"{base}/documents/{a.bill}", headers=customer).json()
    assert [(t["tax"], t["base"], t["amount"]) for t in one["taxes"]] == [("gst", "25.00", "2.50")]
    assert [(x["kwh"], x["unit_price"], x["net"]) for x in one["lines"]] == [
        ("100.000000", "0.250000", "25.00")
    ]
    balance = client.get(f"{base}/accounts/{a.account}/balance", headers=customer).json()
    assert balance == {"AUD": "17.50"}
    paid = client.get(f"{base}/accounts/{a.account}/payments", headers=customer).json()
    assert [(p["amount"], p["unallocated"]) for p in paid] == [("10.00", "0.00")]
    assert client.get(f"{base}/documents/{b.bill}", headers=customer).status_code == 404
    assert client.get(f"{base}/documents/{b.bill}", headers=support).status_code == 200
    assert client.get(f"{base}/documents/{e.bill}", headers=support).status_code == 404
