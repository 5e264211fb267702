"""The portal's web UI: server-rendered pages (Jinja2) with htmx for the live parts, on
the same app, services, token check and authorisation policy as the REST API.

:func:`mount_web` adds it to an app built by :func:`cloud.portal.create_app`. Browser
sessions are identity's tokens in HttpOnly, SameSite=Strict cookies (:mod:`cookies`,
:mod:`session`); every state-changing request is CSRF-checked (:mod:`csrf`); pages are
in English or Spanish (:mod:`i18n`, :mod:`formatting`), with cache-busted static assets
(:mod:`assets`) and a strict Content Security Policy (:mod:`security_headers`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from fastapi import FastAPI

from cloud.alerts import Alarm, AlarmStatus, AlarmStore
from cloud.alerts.alarms import OPEN_STATES
from cloud.billing import BillPdfs, BillsReader, CycleRunner, UsageReader
from cloud.config import ConfigService, TechnicianPushes
from cloud.customers import CustomersService, NotFoundError
from cloud.dispatch import DispatchService
from cloud.employees import EmployeeService
from cloud.ingest import FleetStatusReader
from cloud.portal.audit import ViewAudit
from cloud.portal.authz import Caller
from cloud.portal.form_keys import FormKeys
from cloud.portal.routes import record_routes
from cloud.portal.web.assets import STATIC_PREFIX, Assets, HashedStaticFiles
from cloud.portal.web.board_feed import BoardFeed
from cloud.portal.web.cookies import CookieJar, PendingCookies
from cloud.portal.web.errors import add_page_error_handlers
from cloud.portal.web.grid_push import GridPushDesk
from cloud.portal.web.i18n import load_translations
from cloud.portal.web.identity_gate import (
    HttpIdentityGate,
    IdentityGate,
    LocalIdentityGate,
)
from cloud.portal.web.inbox_feed import InboxFeed
from cloud.portal.web.pages_alarms import create_alarm_pages
from cloud.portal.web.pages_auth import create_auth_pages
from cloud.portal.web.pages_billing_cycles import create_cycle_pages
from cloud.portal.web.pages_bills import create_bills_pages
from cloud.portal.web.pages_dispatch import create_dispatch_pages
from cloud.portal.web.pages_dispatch_board import create_board_pages
from cloud.portal.web.pages_door import DoorPanels, create_door_pages
from cloud.portal.web.pages_field import create_field_pages
from cloud.portal.web.pages_grid_codes import create_grid_code_pages
from cloud.portal.web.pages_inbox import create_inbox_pages
from cloud.portal.web.pages_overview import Overview, UtilityPrice, create_overview_pages
from cloud.portal.web.pages_parts import create_parts_pages
from cloud.portal.web.pages_reports import create_report_pages
from cloud.portal.web.pages_rollouts import create_rollout_pages
from cloud.portal.web.pages_sites import SitePages, create_site_pages
from cloud.portal.web.pages_staff import create_staff_pages
from cloud.portal.web.pages_support import create_support_pages
from cloud.portal.web.pages_tickets import create_ticket_pages
from cloud.portal.web.render import Renderer
from cloud.portal.web.security_headers import SecurityHeaders
from cloud.portal.web.session import Sessions
from cloud.portal.web.site_data import SiteData
from cloud.registry import RegistryService, Site
from cloud.reports import Reference, RemoteReports, ReportsReader, load_reference
from cloud.scope import GatewayReach, Scope
from cloud.support import SupportService
from cloud.support.privacy import PrivacyDesk
from cloud.telemetry import TelemetryReader
from contracts.topics import Region
from device_profiles import builtin_grid_codes

__all__ = [
    "BoardFeed",
    "HttpIdentityGate",
    "IdentityGate",
    "InboxFeed",
    "LocalIdentityGate",
    "WebUi",
    "mount_web",
]


@dataclass(frozen=True)
class WebUi:
    """What the web UI needs beyond the API's services: the identity service to sign
    people in through, ingest's fleet states, the portal's audit of support's views,
    the alarm store (the alarm board, the site pages' alarms) and the inbox with its
    live feed (None: those pages are not served)."""

    gate: IdentityGate
    fleet: FleetStatusReader
    audit: ViewAudit
    cookie_secure: bool = True
    live_interval_s: float = 5.0
    alarms: AlarmStore | None = None
    inbox: InboxFeed | None = None
    #: The dispatch screens' service (None: the API's, when it serves work orders).
    dispatch: DispatchService | None = None
    #: The dispatch board's live feed (None: one that asks on its timer alone).
    board: BoardFeed | None = None
    #: Done forms of actions whose service takes no idempotency key (the rollouts'; None:
    #: those forms answer 503).
    form_keys: FormKeys | None = None
    #: The rollout pages' live feed (None: one that asks every ``live_interval_s``).
    rollouts: BoardFeed | None = None
    #: Technicians' grid-code pushes from a job's page (None: not offered).
    tech_pushes: TechnicianPushes | None = None

    async def aclose(self) -> None:
        """Close the identity client's connections (an HTTP gate has some) and the
        inbox feed's LISTEN connection."""
        close = getattr(self.gate, "aclose", None)
        if close is not None:
            await close()
        if self.inbox is not None:
            await self.inbox.aclose()
        if self.board is not None:
            await self.board.aclose()
        if self.rollouts is not None:
            await self.rollouts.aclose()


def mount_web(
    app: FastAPI,
    web: WebUi,
    *,
    verify: Callable[[str], Caller],
    registry: RegistryService,
    telemetry: TelemetryReader,
    customers: CustomersService | None,
    config: ConfigService | None,
    api_region: Region | None,
    dispatch: DispatchService | None = None,
    employees: EmployeeService | None = None,
    bills: BillsReader | None = None,
    usage: UsageReader | None = None,
    pdfs: BillPdfs | None = None,
    cycles: CycleRunner | None = None,
    reports: ReportsReader | None = None,
    regional_reports: Mapping[Region, ReportsReader] | None = None,
    remote_reports: Mapping[Region, RemoteReports] | None = None,
    support: SupportService | None = None,
    privacy: PrivacyDesk | None = None,
) -> None:
    jar = CookieJar(secure=web.cookie_secure)
    assets = Assets()
    renderer = Renderer(load_translations(), assets, jar, live_interval_s=web.live_interval_s)
    unread = web.inbox.inbox.unread_count if web.inbox is not None else None
    sessions = Sessions(verify, web.gate, jar, api_region, unread)
    data = SiteData(registry, telemetry, device_states=_device_states(web.fleet))
    pages = SitePages(
        data, renderer, live_interval_s=web.live_interval_s, meter_swaps=_swaps(customers),
        alarms=_site_alarms(web.alarms),
    )  # fmt: skip
    app.mount(STATIC_PREFIX, HashedStaticFiles(assets), name="static")
    routers = [
        create_auth_pages(sessions, renderer, jar),
        create_site_pages(sessions, pages),
        create_staff_pages(sessions, renderer, data, registry, web.fleet, config),
        create_grid_code_pages(sessions, renderer, builtin_grid_codes),
    ]
    if config is not None:
        # Rollouts send no notification: their stream re-reads on the live interval.
        progress = web.rollouts or BoardFeed(None, wait_s=web.live_interval_s)
        routers.append(create_rollout_pages(sessions, renderer, config, web.form_keys, progress))
    if customers is not None:
        routers.append(
            create_support_pages(sessions, renderer, pages, registry, customers, web.audit)
        )
    if bills is not None:
        routers.append(
            create_bills_pages(
                sessions, renderer, bills, customers, web.audit, usage=usage, pdfs=pdfs
            )
        )
    if cycles is not None:
        routers.append(create_cycle_pages(sessions, renderer, cycles))
    if reports is not None:
        routers.append(
            create_report_pages(
                sessions, renderer, reports, regions=regional_reports, remote=remote_reports
            )
        )
    if support is not None:
        routers.append(create_ticket_pages(sessions, renderer, support, registry, privacy))
    overview = Overview(
        data, alarms=_site_alarms(web.alarms), bills=bills,
        utility_price=_utility_price(load_reference()), dispatch=web.dispatch or dispatch,
    )  # fmt: skip
    routers.append(create_overview_pages(sessions, renderer, overview))
    if web.alarms is not None:
        routers.append(create_alarm_pages(sessions, renderer, data, web.alarms))
    if web.inbox is not None:
        routers.append(create_inbox_pages(sessions, renderer, web.inbox))
    work_orders = web.dispatch or dispatch
    if work_orders is not None:
        grid = (
            GridPushDesk(web.tech_pushes, config)
            if web.tech_pushes is not None and config is not None
            else None
        )
        doors = DoorPanels(work_orders, employees)
        routers.append(
            create_dispatch_pages(sessions, renderer, data, work_orders, grid=grid, doors=doors)
        )
        routers.append(create_door_pages(sessions, renderer, doors))
        routers.append(create_field_pages(sessions, renderer, work_orders, employees))
        feed = web.board if web.board is not None else BoardFeed(None)
        routers.append(create_board_pages(sessions, renderer, data, work_orders, feed))
        routers.append(create_parts_pages(sessions, renderer, work_orders))
    for router in routers:
        record_routes(app, router)
        app.include_router(router)
    add_page_error_handlers(app, sessions, renderer)
    app.add_middleware(PendingCookies)
    app.add_middleware(SecurityHeaders)


def _device_states(
    fleet: FleetStatusReader,
) -> Callable[[GatewayReach, int], dict[int, tuple[str, datetime | None]]]:
    def states(reach: GatewayReach, site_id: int) -> dict[int, tuple[str, datetime | None]]:
        return {d.device_id: (d.status, d.since) for d in fleet.site_device_states(reach, site_id)}

    return states


def _swaps(customers: CustomersService | None) -> Callable[[Site], list[Any]]:
    def swaps(site: Site) -> list[Any]:
        if customers is None:
            return []
        try:
            return list(customers.list_meter_replacements(site.region, site.id, limit=20))
        except NotFoundError:  # no installation record: no swaps to tell
            return []

    return swaps


#: The alarms a site page tells of: every open one but those suppressed by design (the
#: consequence of another alarm the page shows, its gateway's being offline).
SITE_ALARM_STATES = OPEN_STATES - {AlarmStatus.SUPPRESSED}
_SITE_ALARMS = 50


def _utility_price(reference: Reference) -> UtilityPrice:
    """The reports' utility reference prices as the overview asks for them (one source
    for the customer's savings and the reports' savings delivered)."""

    def price(region: Region, zone: str, day: date) -> Decimal | None:
        found = reference.utility_price(region.value, zone, day)
        return found.price if found is not None else None

    return price


def _site_alarms(store: AlarmStore | None) -> Callable[[Scope, Site], list[Alarm]]:
    def alarms(scope: Scope, site: Site) -> list[Alarm]:
        if store is None:
            return []
        page = store.list_alarms(
            scope, site.region, SITE_ALARM_STATES, limit=_SITE_ALARMS, site_id=site.id
        )
        return page.items

    return alarms
