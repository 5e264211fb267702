"""The portal's app factory: the regional REST API under ``/api/v1/{region}`` plus
``/healthz``.

Authorisation: every regional route has one dependency from
:func:`cloud.portal.auth.access_dependencies`, keyed by the route's ``operationId`` in
the policy table (:mod:`cloud.portal.authz`): 401 without a valid token, 403 for a role
that may not call the route, 404 for a region outside the caller's scope or not served
by this process; the services filter by the caller's scope in SQL. Malformed input is
refused before routing (:mod:`cloud.portal.guard`) or by the routes' bounded parameters
(:mod:`cloud.apitypes`); domain errors become HTTP answers in one place
(:mod:`cloud.portal.errors`). Every route documents every status it answers.
"""

# No ``from __future__ import annotations``: the dependencies below are local to
# ``create_app`` and FastAPI resolves string annotations in the module's globals only.

from collections.abc import Callable, Mapping
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Response, status
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from cloud.apitypes import problem
from cloud.billing import (
    BillCustomer,
    BillPdfs,
    BillsReader,
    CycleRunner,
    UsageReader,
    create_cycles_router,
)
from cloud.billing import create_router as billing_router
from cloud.config import ConfigService
from cloud.config import create_router as config_router
from cloud.customers import CustomersService
from cloud.customers import create_router as customers_router
from cloud.dispatch import UPLOAD_PATH, DispatchService
from cloud.dispatch import create_router as dispatch_router
from cloud.employees import EmployeeService
from cloud.employees import NotFoundError as EmployeesNotFound
from cloud.employees import create_router as employees_router
from cloud.identity import Principal, load_verifying_keys, verify_access_token
from cloud.ingest import CompletenessReader
from cloud.ingest import create_router as ingest_router
from cloud.portal.auth import Verify, access_dependencies
from cloud.portal.authz import ROUTES
from cloud.portal.errors import add_error_handlers
from cloud.portal.guard import InputGuard
from cloud.portal.routes import record_routes, served_routes
from cloud.portal.settings import ApiSettings
from cloud.portal.web import WebUi, mount_web
from cloud.portal.web.i18n import load_translations
from cloud.portal.web.pages_dispatch import UI_UPLOAD_PATH, UPLOAD_FORM_SLACK
from cloud.portal.web.report_words import words_in
from cloud.registry import RegistryService
from cloud.registry import create_router as registry_router
from cloud.reports import RemoteReports, ReportsReader
from cloud.reports import create_cross_region_router as cross_region_reports
from cloud.reports import create_router as reports_router
from cloud.scope import Access, GatewayReach, Scope
from cloud.support import SupportService
from cloud.support import create_router as support_router
from cloud.support.privacy import PrivacyDesk
from cloud.telemetry import TelemetryReader
from cloud.telemetry import create_router as telemetry_router
from contracts.topics import Region

API_PREFIX = "/api/v1"
#: Every route but ``/healthz`` is regional: the region is in its URL.
REGIONAL_PREFIX = API_PREFIX + "/{region}"
#: The web UI's regional pages.
UI_REGIONAL_PREFIX = "/ui/{region}"

#: What every regional route may answer besides its own codes.
COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: problem("no valid bearer token"),
    403: problem("the caller's role may not use this route"),
    404: problem("not found in the caller's reach (or a region this process does not serve)"),
    422: problem("malformed request: detail lists each field and why"),
}


class Health(BaseModel):
    status: str
    checks: dict[str, str]


def create_app(
    settings: ApiSettings,
    registry: RegistryService,
    telemetry_reader: TelemetryReader,
    *,
    health_checks: Mapping[str, Callable[[], None]] | None = None,
    completeness: CompletenessReader | None = None,
    config: ConfigService | None = None,
    customers: CustomersService | None = None,
    employees: EmployeeService | None = None,
    dispatch: DispatchService | None = None,
    bills: BillsReader | None = None,
    usage: UsageReader | None = None,
    bill_customer: Callable[[str], BillCustomer | None] | None = None,
    cycles: CycleRunner | None = None,
    reports: ReportsReader | None = None,
    regional_reports: Mapping[Region, ReportsReader] | None = None,
    remote_reports: Mapping[Region, RemoteReports] | None = None,
    support: SupportService | None = None,
    privacy: PrivacyDesk | None = None,
    verify: Verify | None = None,
    web: WebUi | None = None,
) -> FastAPI:
    """Wire the routers to the given services; no connections are opened here (a process
    builds it with :func:`cloud.bootstrap.create_api`). ``verify(token) -> Caller``
    (raising ``TokenError``) authenticates; by default identity's access tokens, checked
    with its public key(s) from ``POTR_IDENTITY_PUBLIC_KEY_FILE`` (missing or unusable:
    :class:`cloud.identity.KeyFileError`). ``dispatch``: the work-order routes (with
    ``employees``, a technician's performance is asked of the region's staff only).
    ``bills``: billing's read-only routes (documents, balance, payments); with
    ``usage`` also usage by period and each document's PDF, in the language
    ``bill_customer(account_id)`` names (the customers side's answer).
    ``cycles``: the billing-cycle routes (list, inspect, start in the background); its
    owner closes it before the pool. ``reports``: the reports' routes (issue 20), read-only;
    ``regional_reports``: one reader per region (each over its region's data), for the
    reports across every region (``/reports/all/{name}``, admins); ``remote_reports``: the
    regions not in ``regional_reports``, over their reports APIs (a process pinned to a
    region: its own reader in ``regional_reports``, the others here).
    ``web``: also serve the web UI
    (:mod:`cloud.portal.web`) on the same services and policy."""
    app = FastAPI(
        title="PoTR portal API",
        version="1.0.0",
        description="Fleet registry, telemetry and device control of Power on the Roof. "
        "Regional routes are under `/api/v1/{region}` (au, us, es) and need "
        "`Authorization: Bearer <access token>`; SI units throughout.",
    )
    if verify is None:
        verify = _identity_verifier(settings)
    access = access_dependencies(verify, api_region=settings.api_region)
    reach = _reach_dependencies(access, registry)
    checks = dict(health_checks or {"database": registry.ping})
    add_error_handlers(app)
    # The web UI's job page uploads photos and signatures through its own forms.
    screens = (web.dispatch or dispatch) if web is not None else None
    app.add_middleware(
        InputGuard,
        streamed=UPLOAD_PATH.match if dispatch is not None else None,
        uploads=UI_UPLOAD_PATH.match if screens is not None else None,
        upload_max_bytes=screens.max_photo_bytes + UPLOAD_FORM_SLACK if screens else 0,
    )

    def mount(router: Any) -> None:
        record_routes(app, router, REGIONAL_PREFIX)
        app.include_router(router, prefix=REGIONAL_PREFIX, responses=COMMON_RESPONSES)

    mount(registry_router(registry, access=access))
    mount(telemetry_router(telemetry_reader, reach=reach))
    if completeness is not None:
        mount(ingest_router(completeness, reach=reach))
    if config is not None:
        mount(config_router(config, access=access))
    if customers is not None:
        mount(customers_router(customers, access=access, site_in_scope=_site_in(registry)))
    if employees is not None:
        mount(employees_router(employees, access=access))
    if dispatch is not None:
        on_staff = _employee_in(employees) if employees is not None else None
        mount(dispatch_router(dispatch, access=access, employee_in_region=on_staff))
    pdfs = None
    if bills is not None and usage is not None:
        pdfs = BillPdfs(bills, usage, load_translations(), customer=bill_customer)
    if bills is not None:
        in_reach = _account_in(customers) if customers is not None else None
        mount(billing_router(bills, access=access, account_in_scope=in_reach, pdfs=pdfs))
    if cycles is not None:
        mount(create_cycles_router(cycles, access=access))
    if reports is not None:
        mount(reports_router(reports, access=access, words_for=words_in))
    if regional_reports:
        mount(
            cross_region_reports(
                regional_reports, access=access, words_for=words_in, remote=remote_reports
            )
        )
    if support is not None:
        mount(support_router(support, access=access, privacy=privacy))
    if web is not None:
        mount_web(
            app, web, verify=verify, registry=registry, telemetry=telemetry_reader,
            customers=customers, config=config, api_region=settings.api_region,
            dispatch=dispatch, employees=employees, bills=bills, usage=usage, pdfs=pdfs,
            cycles=cycles, reports=reports, regional_reports=regional_reports,
            remote_reports=remote_reports, support=support, privacy=privacy,
        )  # fmt: skip
    _check_every_route_is_in_the_policy(app)

    @app.get(
        "/healthz",
        response_model=Health,
        tags=["ops"],
        summary="Liveness and database",
        responses={503: {"model": Health, "description": "a dependency is down"}},
    )
    async def healthz(response: Response) -> Health:
        results: dict[str, str] = {}
        for name, check in checks.items():
            try:
                await run_in_threadpool(check)
                results[name] = "ok"
            except Exception as exc:
                results[name] = f"failed: {type(exc).__name__}"
        ok = all(v == "ok" for v in results.values())
        if not ok:
            response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return Health(status="ok" if ok else "degraded", checks=results)

    return app


def _identity_verifier(settings: ApiSettings) -> Callable[[str], Principal]:
    keys = load_verifying_keys(
        settings.identity_public_key_file, production=settings.env == "production"
    )

    def verify(token: str) -> Principal:
        return verify_access_token(token, keys)

    return verify


def _site_in(registry: RegistryService) -> Callable[[Scope, int], bool]:
    """Whether a site exists within a scope: the registry knows which account owns a site
    (asked through its published interface, filtered by the same scope in SQL)."""

    def site_in_scope(scope: Scope, site_id: int) -> bool:
        return registry.get_site(site_id, scope=scope) is not None

    return site_in_scope


def _account_in(customers: CustomersService) -> Callable[[Scope, str], bool]:
    """Whether an account exists within a scope (the customers service's answer, filtered
    by the same scope in SQL)."""

    def account_in_scope(scope: Scope, account_id: str) -> bool:
        return customers.get_account(account_id, scope.region, scope=scope) is not None

    return account_in_scope


def _employee_in(employees: EmployeeService) -> Callable[[Region, str], bool]:
    """Whether an employee is on a region's staff (the employees service's answer)."""

    def on_staff(region: Region, employee_no: str) -> bool:
        try:
            employees.get(employee_no, region=region)
        except EmployeesNotFound:
            return False
        return True

    return on_staff


def _reach_dependencies(
    access: Callable[[str], Callable[..., Any]], registry: RegistryService
) -> Callable[[str], Callable[..., Any]]:
    """``reach(route_key)``: the route's access, as the gateways telemetry and ingest may
    read for it — its region, and for a customer the gateways of its account's sites,
    which only the registry knows (asked through its published interface)."""

    def for_route(route: str) -> Callable[..., Any]:
        async def reach(who: Annotated[Access, Depends(access(route))]) -> GatewayReach:
            if not who.scope.by_account:
                return GatewayReach.of(who.scope)
            gateways = await run_in_threadpool(registry.gateway_ids, who.scope)
            return GatewayReach.of(who.scope, gateways)

        return reach

    return for_route


def _check_every_route_is_in_the_policy(app: FastAPI) -> None:
    """Every regional route (API and web UI) names its policy entry as its
    ``operationId``: a route added without one fails here, at start, not in production."""
    for route in served_routes(app):
        if not route.path.startswith((REGIONAL_PREFIX, UI_REGIONAL_PREFIX)):
            continue
        if route.key not in ROUTES:
            raise RuntimeError(f"route {route.path} has no entry in cloud.portal.authz.ROUTES")
