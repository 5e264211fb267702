"""One builder per cloud process: every process (the CLI's, the demo's, the tests') is
assembled here from its services' settings, so the wiring exists once.

* API: :func:`create_api` (the portal app over one pool), with :func:`open_config_service`
  when the process also sends commands and configs;
* ingest: :func:`create_ingest_worker` / :func:`run_ingest` (one worker),
  :func:`ingest_events` (the ``potr ingest`` supervisor's relays and consumers);
* config: :func:`open_config_service` (:func:`serve_config_service` on asyncio),
  :func:`create_tracker`, :func:`config_loops`,
  :func:`run_config_service` (the whole ``potr config run`` process);
* the rest of a region's background work: :func:`background_services` (alerts, notify,
  dispatch, billing, SAP, support, the reports pack, every outbox's relay),
  :func:`run_background_services` (the whole ``potr services`` process);
* everything in one process: :func:`run_services` (the demo, end-to-end tests): ingest,
  the config service and :func:`background_services` on one event runtime;
* events: :func:`cloud_events` (which events a process handles and relays).

A process that runs ingest and the registry (the demo, ``potr ingest``) enters
``cloud_events(...)`` once: the registry's handlers subscribe (``gateway.birth``), the
config service's too when a ``config`` tracker is given (``gateway.birth``,
``command.acked``, ``config.reported``), ingest's and its telemetry store's with
``ingest=True`` (``gateway.registered``, ``gateway.updated``, ``site.meter_replaced``),
the alerts service's when an ``alerts`` service is given (gateway, device and config
events, ``telemetry.received``, ``device.day_completeness``, ``gateway.birth``,
``site.installation_changed``, ``workorder.*``), notify's when its handlers are given
(``user.*``, ``customer.*``, ``alert.*``, ``workorder.*``),
the dispatch service's when a ``dispatch`` service is given (``gateway.registered``,
``gateway.updated``, ``employee.changed``, ``alert.*``, ``site.installation_changed``,
``telemetry.received``), and every service's outbox is relayed. Services emit with
:func:`cloud.events.outbox.emit` in their own transactions and never see the bus; no
service calls another.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4, uuid5
from zoneinfo import ZoneInfo

from fastapi import FastAPI

from cloud.adapters.mqtt import MqttError, MqttPublisher
from cloud.adapters.postgres import Connection, ConnectionPool, create_pool
from cloud.alerts import AlarmStore, AlertService, run_alert_sweeps
from cloud.alerts import event_subscriptions as alert_subscriptions
from cloud.alerts.privacy import AlertsPersonalData
from cloud.billing import (
    BillableSite,
    BillCustomer,
    BillingService,
    BillingSites,
    BillsReader,
    CycleRunner,
    CyclesReader,
    MeterHours,
    MeterMissingError,
    MeterSeries,
    MeterSwap,
    Register,
    RegisterEdges,
    ReminderSettings,
    UsageReader,
    run_reminders_daily,
)
from cloud.billing import RegisterReading as BillingRegisterReading
from cloud.billing import event_subscriptions as billing_subscriptions
from cloud.billing.privacy import BillingPersonalData
from cloud.calendars import builtin_calendar
from cloud.config import SCHEMA as CONFIG_SCHEMA
from cloud.config import (
    ConfigService,
    ConfigSettings,
    ConfigTracker,
    Publisher,
    ServiceOptions,
    TechnicianPushes,
    TechRequestListener,
    load_signing_key,
    run_config_loops,
)
from cloud.config import subscriptions as config_subscriptions
from cloud.config.grid_content import GridCodeContent
from cloud.customers import (
    Account,
    AccountStatus,
    CustomersService,
    Installation,
    MeterReplacement,
    PlanChange,
    run_plan_changes,
)
from cloud.customers import event_subscriptions as customers_subscriptions
from cloud.customers.privacy import CustomersPersonalData
from cloud.customers.zones import TARIFF_ZONES
from cloud.dispatch import (
    DispatchService,
    DispatchSettings,
    DutyFacts,
    FilesystemPhotoStorage,
    FlowSettings,
    StaffDuty,
    run_dispatch_sweeps,
)
from cloud.dispatch import event_subscriptions as dispatch_subscriptions
from cloud.dispatch.privacy import DispatchPersonalData
from cloud.employees import EmployeeService
from cloud.employees import NotFoundError as EmployeesNotFound
from cloud.events.bus import EventBus, InProcessBus
from cloud.events.relay import MetricsHook, OutboxRelay
from cloud.events.runtime import BusSettings, EventRuntime, event_runtime
from cloud.identity import (
    IdentityService,
    IdentitySettings,
    SmtpMailer,
    create_identity_service,
)
from cloud.identity import create_router as identity_router
from cloud.identity.privacy import IdentityPersonalData
from cloud.ingest import CompletenessReader, FleetStatusReader, IngestSettings, IngestWorker
from cloud.ingest import event_subscriptions as ingest_subscriptions
from cloud.mqtt_options import mqtt_options
from cloud.notify import (
    Attachment,
    AttachmentSource,
    Category,
    DeliveryWorker,
    InboxService,
    MailAttachment,
    Notification,
    NotificationService,
    NotifyHandlers,
    NotifySettings,
    PreferencesReader,
)
from cloud.notify import event_subscriptions as notify_subscriptions
from cloud.notify.privacy import NotifyPersonalData
from cloud.personal_data import PersonalDataHolder
from cloud.portal import (
    ApiSettings,
    FormKeys,
    InputGuard,
    PortalSettings,
    Verify,
    ViewAudit,
    add_error_handlers,
    create_app,
)
from cloud.portal.web import (
    BoardFeed,
    HttpIdentityGate,
    IdentityGate,
    InboxFeed,
    LocalIdentityGate,
    WebUi,
)
from cloud.portal.web.report_words import words_in
from cloud.registry import NotFoundError, RegistryService, Site
from cloud.registry import subscriptions as registry_subscriptions
from cloud.registry.privacy import RegistryPersonalData
from cloud.reports import (
    Pack,
    PackSettings,
    RemoteReports,
    ReportsReader,
    ReportTable,
    build_pack,
    parse_month,
    render_pdf,
    run_monthly_packs,
    support_table,
)
from cloud.sap import SapExporter, SapSettings, reconcile_daily
from cloud.sap import subscriptions as sap_subscriptions
from cloud.sap.delta import run_delta_polling
from cloud.sap.privacy import SapPersonalData
from cloud.scope import Scope
from cloud.settings import DatabaseSettings
from cloud.support import SiteFact, SiteFacts, SupportService, run_support_sweeps
from cloud.support import event_subscriptions as support_subscriptions
from cloud.support.privacy import PrivacyDesk, SupportPersonalData
from cloud.telemetry import MeterHourReader, MeterNotFoundError, TelemetryReader, TelemetryStore
from cloud.telemetry import RegisterReading as StoredRegisterReading
from cloud.telemetry import event_subscriptions as telemetry_subscriptions
from cloud.telemetry.maintenance import StoreMaintenance
from cloud.telemetry.privacy import TelemetryPersonalData
from contracts.metrics import metric
from contracts.timeutil import utc_now
from contracts.topics import Region
from device_profiles import DeviceProfile, builtin_grid_codes, builtin_profiles

__all__ = [
    "EMITTING_SCHEMAS",
    "Background",
    "RegistryCustomersSites",
    "Services",
    "SupportSla",
    "background_services",
    "cloud_events",
    "config_loops",
    "create_api",
    "create_billing_service",
    "create_config_service",
    "create_cycle_runner",
    "create_dispatch_service",
    "create_ingest_worker",
    "create_privacy_desk",
    "create_publisher",
    "create_reports_reader",
    "create_support_service",
    "create_tech_listener",
    "create_tracker",
    "deliver_registry_events",
    "ingest_events",
    "link_site",
    "meter_hours",
    "open_config_service",
    "open_pool",
    "open_remote_reports",
    "region_zone",
    "relayed_outboxes",
    "run_background_services",
    "run_config_service",
    "run_ingest",
    "run_sap",
    "run_services",
    "serve_config_service",
    "serve_tech_requests",
    "staff_duty",
]

log = logging.getLogger(__name__)
Pool = ConnectionPool[Connection[Any]]

#: Service schemas with an outbox. ``identity`` stays: in a region's own database its
#: outbox is empty (the global identity process relays its events to each region's bus
#: itself: ARCHITECTURE decision 152), in the demo's one database this relays them.
EMITTING_SCHEMAS = (
    "ingest",
    "registry",
    "config",
    "customers",
    "identity",
    "telemetry",
    "alerts",
    "dispatch",
    "employees",
    "billing",
    "support",
)
#: The SAP integration's schema: its outbox is relayed only where the integration runs.
SAP_SCHEMA = "sap"
#: The registry's schema: its outbox carries the gateway events ingest keeps.
REGISTRY_SCHEMA = "registry"
#: How long a process that consumes them waits for the registry's pending events at start.
CATCH_UP_TIMEOUT_S = 30.0
#: How often resolved tickets past their reopen window are closed.
SUPPORT_SWEEP_S = 3600.0
#: How often the alerts service's sweeps run (offline for N minutes, escalation, shelves).
ALERT_SWEEP_S = 30.0


def relayed_outboxes(*, sap: bool) -> tuple[str, ...]:
    """The outboxes :func:`background_services` relays: every service's, and the SAP
    integration's (``service_order.changed`` from its delta poll) when this process runs
    it — without that relay, SAP's rejections would never reach dispatch."""
    return (*EMITTING_SCHEMAS, SAP_SCHEMA) if sap else EMITTING_SCHEMAS


def open_pool(
    settings: DatabaseSettings, name: str, *, min_size: int = 1, max_size: int = 4
) -> Pool:
    """A pool on the settings' database with their statement timeout (``name``: in
    ``pg_stat_activity``)."""
    return create_pool(
        settings.database_url,
        min_size=min_size,
        max_size=max_size,
        name=name,
        statement_timeout_ms=settings.db_statement_timeout_ms,
    )


# -- events ---------------------------------------------------------------------------------
@asynccontextmanager
async def cloud_events(
    pool: Pool,
    *,
    registry: RegistryService | None = None,
    config: ConfigTracker | None = None,
    ingest: bool = False,
    alerts: AlertService | None = None,
    notify: NotifyHandlers | None = None,
    dispatch: DispatchService | None = None,
    billing: BillingService | None = None,
    sap_wake: Callable[[], None] | None = None,
    support: SupportService | None = None,
    plan_changes: CustomersService | None = None,
    outboxes: Sequence[str] = EMITTING_SCHEMAS,
    settings: BusSettings | None = None,
    bus: EventBus | None = None,
    metrics: MetricsHook | None = None,
) -> AsyncIterator[EventRuntime]:
    """Bus + relays for ``outboxes`` + the registry's consumers when ``registry`` is given
    + the config service's consumers when ``config`` is given + ingest's and its
    telemetry store's when ``ingest`` + the alerts service's when ``alerts`` is given +
    notify's when ``notify`` is given + the dispatch service's (the registry's gateway
    events: sites) when ``dispatch`` is given + the billing service's (``energy.revised``:
    true-ups) when ``billing`` is given + the SAP integration's (customers and issued
    documents queued for SAP; ``sap_wake`` called after each) when ``sap_wake`` is given
    + the support service's (``workorder.created`` of a ticket's work order) when
    ``support`` is given + the customers service's (``ticket.plan_change_approved``: the
    account's plan from a date) when ``plan_changes`` is given.

    With ``ingest`` (or ``alerts``, or ``dispatch``) and the registry's outbox relayed
    here, this enters once that relay has found nothing left to publish (at most
    :data:`CATCH_UP_TIMEOUT_S`): gateways registered while the process was down are known
    before its ingest takes traffic (and before alerts and dispatch hear of them).

    With several processes (ingest workers), relay in all of them (claims skip each
    other's rows) and consume where convenient: consumers with one name share a queue.
    """
    subs = registry_subscriptions(registry) if registry is not None else []
    if config is not None:
        subs += config_subscriptions(config)
    if ingest:
        subs += ingest_subscriptions(pool) + telemetry_subscriptions(pool)
    if alerts is not None:
        subs += alert_subscriptions(alerts)
    if notify is not None:
        subs += notify_subscriptions(notify)
    if dispatch is not None:
        subs += dispatch_subscriptions(dispatch)
    if billing is not None:
        subs += billing_subscriptions(billing)
    if sap_wake is not None:
        subs += sap_subscriptions(pool, sap_wake)
    if support is not None:
        subs += support_subscriptions(support)
    if plan_changes is not None:
        subs += customers_subscriptions(plan_changes)
    async with event_runtime(
        settings or BusSettings(),
        pool,
        outboxes=outboxes,
        subscriptions=subs,
        bus=bus,
        metrics=metrics,
    ) as runtime:
        follows_gateways = ingest or alerts is not None or dispatch is not None
        if follows_gateways and REGISTRY_SCHEMA in runtime.relays:
            await _caught_up(runtime.relays[REGISTRY_SCHEMA], CATCH_UP_TIMEOUT_S)
        yield runtime


async def run_sap(
    settings: SapSettings, pool: Pool, stop: asyncio.Event, wake: asyncio.Event
) -> None:
    """The SAP exporter (woken by ``wake`` when something was queued in this process),
    the daily reconciliation and the service orders' delta poll, until ``stop``; the
    queue is filled by the consumers :func:`cloud_events` adds with ``sap_wake``."""
    from cloud.sap.odata import ODataSapGateway  # pyodata and requests load only here

    with ODataSapGateway(settings) as gateway:
        exporter = SapExporter(pool, gateway, settings, services=gateway)
        async with asyncio.TaskGroup() as tg:
            tg.create_task(exporter.run(stop, wake=wake))
            tg.create_task(reconcile_daily(pool, gateway, settings, stop, services=gateway))
            tg.create_task(run_delta_polling(pool, gateway, settings, stop))


async def _caught_up(relay: OutboxRelay, timeout_s: float) -> None:
    try:
        async with asyncio.timeout(timeout_s):
            await relay.drained.wait()
    except TimeoutError:
        log.warning(
            "outbox %s not drained within %.0f s: gateways registered meanwhile are "
            "dead-lettered until their events arrive (agents resend)",
            relay.schema,
            timeout_s,
        )


async def deliver_registry_events(pool: Pool) -> int:
    """Hand the registry's pending events to ingest's handlers now, in this process, and
    return how many: the real relay over an in-process bus, whose ``publish`` returns
    once every handler is done.

    For a process that registers gateways and then runs ingest with no event runtime of
    its own (fleets, benches, tests): its gateways are known to ingest when this returns,
    not one relay round later. It marks the events published, so use it only where no
    other consumer of the registry's events waits for them on a shared bus. ``pool``
    needs two connections (the relay's claim and a handler's). Raises ``RuntimeError``
    when a handler refused an event.
    """
    async with InProcessBus() as bus:
        for sub in ingest_subscriptions(pool):
            await bus.subscribe(sub)
        relay = OutboxRelay(pool, REGISTRY_SCHEMA, bus)
        total = 0
        while published := await relay.relay_once():
            total += published
        if bus.dead_letters:
            raise RuntimeError(f"ingest refused registry events: {bus.dead_letters}")
    return total


# -- API ------------------------------------------------------------------------------------
def create_api(
    settings: ApiSettings,
    pool: Pool,
    *,
    config: ConfigService | None = None,
    health_checks: Mapping[str, Callable[[], None]] | None = None,
    verify: Verify | None = None,
    web: WebUi | None = None,
    dispatch: DispatchSettings | None = None,
    billing_cycles: CycleRunner | None = None,
    remote_reports: Mapping[Region, RemoteReports] | None = None,
) -> FastAPI:
    """The portal API over ``pool``: registry, telemetry, completeness, customers,
    employees (and the business calendar), and the command and config routes when a
    ``config`` service is given; with ``web`` (:func:`create_web_ui`) the web UI too;
    with ``dispatch`` the work-order routes (:func:`create_dispatch_service`). Opens no
    connection. ``verify``: how a bearer token becomes a caller (default: the settings'
    tokens). With ``web`` and ``config``, a MOSIE's job page offers the grid-code push.
    With ``billing_cycles`` (:func:`create_cycle_runner`; the caller closes it before the
    pool), admins start and follow billing cycles (REST and screens). Reports (issue 20)
    are always served: read-only, over the tables the services publish; across every
    region too (admins) when the process serves every region (``api_region`` unset: its
    one database holds each region's data, :func:`regional_readers`), or when a process
    pinned to a region is given ``remote_reports`` (:func:`open_remote_reports`): its
    own region's tables from its reader, the other regions' over their reports APIs."""
    if web is not None and config is not None and web.tech_pushes is None:
        pushes = TechnicianPushes(
            pool, config, builtin_profiles(), production=settings.env == "production"
        )
        web = replace(web, tech_pushes=pushes)
    reports = create_reports_reader(pool)
    regional: Mapping[Region, ReportsReader] | None = None
    remote: dict[Region, RemoteReports] | None = None
    if settings.api_region is None:
        regional = regional_readers(pool)
    elif remote_reports:
        regional = {settings.api_region: reports}
        remote = {r: s for r, s in remote_reports.items() if r != settings.api_region}
    return create_app(
        settings,
        RegistryService(pool),
        TelemetryReader(pool),
        health_checks=health_checks,
        completeness=CompletenessReader(pool),
        config=config,
        customers=CustomersService(pool),
        employees=EmployeeService(pool),
        dispatch=create_dispatch_service(dispatch, pool) if dispatch is not None else None,
        bills=BillsReader(pool),
        usage=UsageReader(pool, zones=TARIFF_ZONES),
        bill_customer=bill_customer(CustomersService(pool), pool),
        cycles=billing_cycles,
        reports=reports,
        regional_reports=regional,
        remote_reports=remote,
        support=create_support_service(pool),
        privacy=create_privacy_desk(pool, dispatch=dispatch),
        verify=verify,
        web=web,
    )


@contextmanager
def open_remote_reports(settings: ApiSettings) -> Iterator[dict[Region, RemoteReports]]:
    """For a process pinned to a region (``POTR_API_REGION``) with
    ``POTR_REPORTS_GATEWAY_URL`` set: every other region's reports API through the
    gateway (:class:`cloud.reports.RemoteReports`, each answer bounded by
    ``reports_gateway_timeout_s``), closed when the block ends; otherwise none."""
    url, region = settings.reports_gateway_url, settings.api_region
    if url is None or region is None:
        yield {}
        return
    remote = {
        other: RemoteReports(other, url, timeout_s=settings.reports_gateway_timeout_s)
        for other in Region
        if other != region
    }
    try:
        yield remote
    finally:
        for source in remote.values():
            source.close()


def create_reports_reader(pool: Pool) -> ReportsReader:
    """The reports over ``pool`` with support SLA attainment answered by the support
    service (:class:`SupportSla`). Opens no connection."""
    return ReportsReader(pool, support=SupportSla(create_support_service(pool)))


class SupportSla:
    """Reports' :class:`~cloud.reports.SupportSlaSource` answered by support: its counts
    per priority as the ``support`` report's table (neither service imports the other)."""

    def __init__(self, support: SupportService) -> None:
        self._support = support

    def support_sla(self, region: Region, month: date) -> ReportTable:
        rows = [
            {
                "priority": a.priority.value,
                "first_response_measured": a.first_response_measured,
                "first_response_met": a.first_response_met,
                "resolution_measured": a.resolution_measured,
                "resolution_met": a.resolution_met,
            }
            for a in self._support.sla_attainment(region, month)
        ]
        return support_table(region, month, rows)


def create_support_service(pool: Pool) -> SupportService:
    """The support service with its site facts from the registry (whose a site is) and
    customers (the installation's tariff zone: the state whose calendar its clocks count
    on), the accounts customers knows (and counts, for tickets per 1,000 customers), and
    billing's documents (a linked invoice is the account's). Opens no connection."""
    customers = CustomersService(pool)

    bills = BillsReader(pool)

    def account_known(region: Region, account_id: str) -> bool:
        return customers.get_account(account_id, region) is not None

    def invoice_owned(region: Region, account_id: str, number: str) -> bool:
        return bills.document(number, scope=Scope.of_account(region, account_id)) is not None

    return SupportService(
        pool,
        site_facts=support_site_facts(RegistryService(pool), customers),
        account_known=account_known,
        invoice_owned=invoice_owned,
        customer_counts=customers.count_accounts,
    )


def create_privacy_desk(pool: Pool, *, dispatch: DispatchSettings | None = None) -> PrivacyDesk:
    """Support's privacy desk with every service that holds a customer's personal data,
    each over its own schema (:mod:`cloud.personal_data`); dispatch's photos in the
    settings' directory (default: ``POTR_DISPATCH_PHOTO_DIR`` or its default), telemetry
    told the account's sites by the registry. Opens no connection."""
    settings = dispatch if dispatch is not None else DispatchSettings()
    registry = RegistryService(pool)

    def sites_of(region: Region, account_id: str) -> list[int]:
        scope = Scope.of_account(region, account_id)
        return [s.id for s in registry.list_sites(scope=scope, limit=1000)]

    holders: list[PersonalDataHolder] = [
        CustomersPersonalData(pool, sites_of),
        IdentityPersonalData(pool),
        NotifyPersonalData(pool),
        RegistryPersonalData(pool),
        TelemetryPersonalData(pool, sites_of),
        AlertsPersonalData(pool),
        DispatchPersonalData(pool, FilesystemPhotoStorage(settings.dispatch_photo_dir)),
        BillingPersonalData(pool),
        SapPersonalData(pool),
        SupportPersonalData(pool),
    ]
    return PrivacyDesk(pool, holders)


def support_site_facts(registry: RegistryService, customers: CustomersService) -> SiteFacts:
    """Support's :data:`~cloud.support.SiteFacts`: a site's account (the registry's) and
    its jurisdiction on the region's calendar — ``AU-<state>``/``US-<state>`` from the
    installation's tariff zone, Spain's national calendar (``ES``) otherwise."""

    def facts(region: Region, site_id: int) -> SiteFact | None:
        site = registry.get_site(site_id, scope=Scope.of_region(region))
        if site is None:
            return None
        record = customers.get_installation(region, site_id)
        jurisdiction = None
        if record is not None and region != Region.ES:
            candidate = f"{region.value.upper()}-{record.tariff_zone}"
            calendar = builtin_calendar(region)
            jurisdiction = candidate if candidate in calendar.jurisdictions else None
        return SiteFact(site.account_id, jurisdiction)

    return facts


def bill_customer(customers: CustomersService, pool: Pool) -> Callable[[str], BillCustomer | None]:
    """Billing's question for a document's PDF, answered by customers (the account's
    name and person) and notify (the language that person saved, if any)."""
    # The preferences are read from the pool alone: a process without notify's
    # settings still serves.
    notify = PreferencesReader(pool)

    def customer(account_id: str) -> BillCustomer | None:
        account = customers.get_account(account_id)
        if account is None:
            return None
        language = None
        if account.user_id is not None:
            prefs = notify.preferences(account.user_id)
            language = prefs.language if prefs.saved else None
        return BillCustomer(account.name, language)

    return customer


def create_dispatch_service(
    settings: DispatchSettings, pool: Pool, *, flow: FlowSettings | None = None
) -> DispatchService:
    """The dispatch service with its photos in the settings' directory (created with the
    first photo) and their size limit, and its flow settings (``POTR_DISPATCH_*``:
    verification window, sweeps). Opens no connection."""
    return DispatchService(
        pool,
        photos=FilesystemPhotoStorage(settings.dispatch_photo_dir),
        max_photo_bytes=settings.dispatch_photo_max_bytes,
        flow=flow if flow is not None else FlowSettings(),
        staff=staff_duty(EmployeeService(pool)),
    )


def staff_duty(employees: EmployeeService) -> StaffDuty:
    """Dispatch's question before it stores a technician's location fix, answered by the
    employees service (its published interface): the location notice acknowledged, and
    the instant inside the employee's working hours. None for someone not on the
    region's staff."""

    def facts(region: Region, employee_no: str, at: datetime) -> DutyFacts | None:
        try:
            duty = employees.location_duty(employee_no, at, region=region)
        except EmployeesNotFound:
            return None
        return DutyFacts(
            notice_version=duty.notice_version,
            acknowledged=duty.acknowledged,
            in_working_hours=duty.in_working_hours,
        )

    return facts


class RegistryCustomersSites:
    """Billing's :class:`~cloud.billing.BillingSites` over the registry (a site's zone
    and owning account) and customers (the account's plan, the installation's tariff
    zone, contract start and meters). A site is billable with an installation record,
    an owning account that is active and on a plan."""

    def __init__(self, registry: RegistryService, customers: CustomersService) -> None:
        self._registry = registry
        self._customers = customers

    def billable_sites(self, region: Region) -> list[BillableSite]:
        sites = self._region_sites(region)
        swaps = self._customers.region_meter_replacements(region)
        changes = self._customers.region_plan_changes(region)
        accounts: dict[str, Account | None] = {}
        found = []
        after = 0
        while page := self._customers.list_installations(region, after_site=after):
            after = page[-1].site_id
            for record in page:
                site = sites.get(record.site_id)
                if site is None or site.account_id is None:
                    continue
                if site.account_id not in accounts:
                    accounts[site.account_id] = self._customers.get_account(site.account_id)
                billable = _billable(
                    site,
                    record,
                    accounts[site.account_id],
                    swaps.get(site.id, ()),
                    changes.get(site.account_id, ()),
                )
                if billable is not None:
                    found.append(billable)
        return found

    def billable_site(self, region: Region, site_id: int) -> BillableSite | None:
        site = self._registry.get_site(site_id, scope=Scope.of_region(region))
        record = self._customers.get_installation(region, site_id)
        if site is None or record is None or site.account_id is None:
            return None
        swaps = self._customers.list_meter_replacements(region, site_id, limit=1000)
        account = self._customers.get_account(site.account_id)
        changes = self._customers.list_plan_changes(site.account_id) if account else []
        return _billable(site, record, account, swaps, changes)

    def _region_sites(self, region: Region) -> dict[int, Site]:
        sites: dict[int, Site] = {}
        scope, limit = Scope.of_region(region), 1000
        while page := self._registry.list_sites(limit=limit, offset=len(sites), scope=scope):
            sites.update((s.id, s) for s in page)
            if len(page) < limit:
                break
        return sites


def _billable(
    site: Site,
    record: Installation,
    account: Account | None,
    swaps: Sequence[MeterReplacement],
    changes: Sequence[PlanChange],
) -> BillableSite | None:
    if account is None or account.status != AccountStatus.ACTIVE or account.plan_code is None:
        return None
    return BillableSite(
        region=record.region,
        site_id=site.id,
        account_id=account.id,
        plan_code=account.plan_code,
        tariff_zone=record.tariff_zone,
        time_zone=site.time_zone,
        contract_start=record.installed_on,
        billing_meter=record.billing_meter,
        grid_meter=record.grid_meter,
        swaps=tuple(
            MeterSwap(
                replaced_at=r.replaced_at,
                old_serial=r.old_serial,
                new_serial=r.new_serial,
                old_register_wh=r.old_register_kwh * 1000,
                new_register_wh=r.new_register_kwh * 1000,
            )
            for r in swaps
        ),
        plans=plan_history(account.plan_code, changes),
    )


def plan_history(current: str, changes: Sequence[PlanChange]) -> tuple[tuple[date, str], ...]:
    """Billing's plan history of an account on plan ``current`` with ``changes`` (by
    effective date, decision 150): the plan it started on from ``date.min`` — what the
    first change replaced, the account's plan when none is applied yet, else (a change
    applied before replaced plans were kept) the first change's own — then each change
    from its effective date. The account's plan stands for the last applied change's
    (a plan set directly on the account, undated, since). Empty without changes."""
    if not changes:
        return ()
    applied = [k for k, c in enumerate(changes) if c.applied_at is not None]
    first = changes[0].replaced_plan_code or (current if not applied else changes[0].plan_code)
    history = [(date.min, first), *((c.effective_from, c.plan_code) for c in changes)]
    if applied:
        history[applied[-1] + 1] = (changes[applied[-1]].effective_from, current)
    kept = history[:1]
    for day, code in history[1:]:
        if code != kept[-1][1]:
            kept.append((day, code))
    return tuple(kept)


def register_edges(reader: MeterHourReader) -> RegisterEdges:
    """Billing's :class:`~cloud.billing.RegisterEdges` over the telemetry store's reader
    (a meter's stored readings around a swap), translated like :func:`meter_hours`."""

    def around(
        region: Region, site_id: int, serial: str, register: Register, at: datetime
    ) -> tuple[BillingRegisterReading | None, BillingRegisterReading | None]:
        try:
            before, after = reader.around(site_id, region, serial, metric(register).id, at)
        except MeterNotFoundError as e:
            raise MeterMissingError(site_id, region, serial, e.reason.value) from e
        return _billing_reading(before), _billing_reading(after)

    return around


def _billing_reading(found: StoredRegisterReading | None) -> BillingRegisterReading | None:
    # repr: the float's shortest exact decimal (a whole-Wh register stays whole).
    return None if found is None else BillingRegisterReading(found.ts, Decimal(repr(found.wh)))


def meter_hours(reader: MeterHourReader) -> MeterHours:
    """Billing's :class:`~cloud.billing.MeterHours` over the telemetry store's reader
    (decision 123), its ``MeterNotFoundError`` translated to billing's own."""

    def hours(
        region: Region,
        site_id: int,
        serial: str,
        register: Register,
        start: datetime,
        end: datetime,
    ) -> MeterSeries:
        try:
            got = reader.hours(site_id, region, serial, metric(register).id, start, end)
        except MeterNotFoundError as e:
            raise MeterMissingError(site_id, region, serial, e.reason.value) from e
        return MeterSeries(serial, got.device_id, start, tuple(h.energy_mwh for h in got.hours))

    return hours


def region_zone(region: Region) -> ZoneInfo:
    """The zone whose date is ``region``'s "today" for billing's daily jobs: its business
    calendar's default jurisdiction's (Sydney, Los Angeles, Madrid)."""
    calendar = builtin_calendar(region)
    return calendar.time_zone(calendar.default_jurisdiction)


def create_billing_service(
    pool: Pool, *, clock: Callable[[], datetime] = utc_now, progress_interval_s: float = 1.0
) -> BillingService:
    """The billing service over ``pool``, asking the registry, customers and the
    telemetry store (on the same pool) through billing's protocols. Opens no connection."""
    sites: BillingSites = RegistryCustomersSites(RegistryService(pool), CustomersService(pool))
    reader = MeterHourReader(pool)
    return BillingService(
        pool,
        sites=sites,
        meters=meter_hours(reader),
        edges=register_edges(reader),
        zones=TARIFF_ZONES,
        clock=clock,
        progress_interval_s=progress_interval_s,
    )


def create_cycle_runner(
    pool: Pool, *, clock: Callable[[], datetime] = utc_now, progress_interval_s: float = 1.0
) -> CycleRunner:
    """Billing cycles started from the portal, run in background threads by the billing
    service over ``pool`` (:func:`create_billing_service`). Close it before the pool."""
    service = create_billing_service(pool, clock=clock, progress_interval_s=progress_interval_s)
    return CycleRunner(service, CyclesReader(pool), clock=clock)


def create_web_ui(
    settings: PortalSettings, pool: Pool, *, identity: IdentityService | None = None
) -> WebUi:
    """What the web UI needs beyond the API (hand it to :func:`create_api` as ``web``):
    the identity service to sign people in through — ``identity`` in this process (the
    one-process demo), else ``POTR_PORTAL_IDENTITY_URL`` over HTTP — ingest's view of
    each device's state, the alarm store, the inbox with its live feed and the dispatch
    board's live feed (whose LISTEN connections to the settings' database open with the
    first stream; ``WebUi.aclose`` closes them). Opens no connection."""
    if identity is not None:
        gate: IdentityGate = LocalIdentityGate(identity)
    elif settings.portal_identity_url:
        gate = HttpIdentityGate(
            settings.portal_identity_url, timeout_s=settings.portal_identity_timeout_s
        )
    else:
        raise ValueError("POTR_PORTAL_IDENTITY_URL is not set: the portal signs people in there")
    return WebUi(
        gate=gate,
        fleet=FleetStatusReader(pool),
        audit=ViewAudit(pool),
        cookie_secure=settings.portal_cookie_secure,
        live_interval_s=settings.portal_live_interval_s,
        alarms=AlarmStore(pool),
        inbox=InboxFeed(InboxService(pool), settings.database_url),
        board=BoardFeed(settings.database_url),
        form_keys=FormKeys(pool),
        rollouts=BoardFeed(None, wait_s=settings.portal_live_interval_s),
    )


def create_identity_api(
    settings: IdentitySettings, pool: Pool, *, service: IdentityService | None = None
) -> FastAPI:
    """The identity service's own API (``/api/v1/auth``) over ``pool``, as the API gateway
    reaches it; its reset mails go through the settings' SMTP relay. ``service``: the one
    the process also purges with (else one is made). Opens no connection."""
    if service is None:
        service = create_identity_service(settings, pool)
    app = FastAPI(
        title="PoTR identity API",
        version="1.0.0",
        description="Sign-in (password, employee number + PIN, API key), refresh, logout, "
        "password reset, users and API keys. Access tokens are EdDSA JWTs of 15 minutes.",
    )
    add_error_handlers(app)
    app.add_middleware(InputGuard)
    app.include_router(
        identity_router(
            service,
            mailer=SmtpMailer(settings),
            mail_from=settings.smtp_from,
            reset_url=settings.identity_reset_url,
        )
    )
    return app


# -- ingest ---------------------------------------------------------------------------------
def create_ingest_worker(
    settings: IngestSettings, *, crash_after_commit: int | None = None
) -> IngestWorker:
    """One ingest worker (not started) with its own pool. It knows the gateways that
    ingest's consumers recorded (``ingest.gateways``): run them somewhere
    (:func:`ingest_events`, :func:`cloud_events` with ``ingest=True``) or hand it the
    registry's events with :func:`deliver_registry_events`. ``crash_after_commit``: TEST
    ONLY, see :mod:`cloud.ingest.worker`."""
    return IngestWorker(settings, crash_after_commit=crash_after_commit)


def create_store_maintenance(
    settings: IngestSettings,
) -> tuple[StoreMaintenance, ConnectionPool[Connection[Any]]]:
    """The telemetry store's maintenance job with its own small pool (the job's
    connection and one for partitions), for a process of its own; close the pool after."""
    pool = create_pool(
        settings.database_url,
        min_size=1,
        max_size=2,
        name="telemetry-maintenance",
        statement_timeout_ms=settings.db_statement_timeout_ms,
    )
    store = TelemetryStore(
        pool,
        write_mode=settings.telemetry_write_mode,
        past_days=settings.ingest_partition_past_days,
    )
    return StoreMaintenance(pool, settings, store=store), pool


async def run_ingest(
    settings: IngestSettings, stop: asyncio.Event, *, ready: asyncio.Event | None = None
) -> None:
    """Run one worker until ``stop`` is set (blocking parts run in threads).

    ``ready`` is set once the worker is subscribed.
    """
    worker = await asyncio.to_thread(create_ingest_worker, settings)
    await asyncio.to_thread(worker.start)
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
    finally:
        await asyncio.to_thread(worker.stop)


@asynccontextmanager
async def ingest_events(
    settings: ConfigSettings, *, bus_settings: BusSettings | None = None
) -> AsyncIterator[EventRuntime]:
    """The ``potr ingest`` supervisor's events, on a pool of its own: it relays the
    outboxes the workers fill and runs the registry's and the config service's consumers
    (``gateway.birth``, ``command.acked``, ``config.reported``) and ingest's
    (``gateway.registered``, ``gateway.updated``: what its workers read instead of asking
    the registry) and its store's (``site.meter_replaced``: the meter swaps energy
    counts across); ``POTR_AMQP_URL`` selects RabbitMQ, else in-process."""
    pool = await asyncio.to_thread(open_pool, settings, "ingest-events")
    try:
        async with cloud_events(
            pool,
            registry=RegistryService(pool),
            config=create_tracker(settings, pool),
            ingest=True,
            settings=bus_settings,
        ) as runtime:
            yield runtime
    finally:
        await asyncio.to_thread(pool.close)


# -- config ---------------------------------------------------------------------------------
def create_config_service(
    settings: ConfigSettings,
    pool: Pool,
    *,
    publisher: Publisher | None = None,
    profiles: Mapping[str, DeviceProfile] | None = None,
) -> ConfigService:
    """The service with the settings' signing key; raises
    :class:`~cloud.config.SigningKeyError` (no key, or the demo key in production)."""
    production = settings.env == "production"
    key = load_signing_key(settings.signing_key_file, production=production)
    devices = builtin_profiles() if profiles is None else profiles
    return ConfigService(
        pool,
        key,
        devices,
        publisher=publisher,
        options=ServiceOptions(
            command_lifetime_s=settings.command_lifetime_s,
            config_lifetime_s=settings.config_lifetime_s,
        ),
        # A rollout naming a grid-code profile gets its settings; production refuses the
        # profile's unverified values unless the rollout overrides them (audited).
        content=GridCodeContent(builtin_grid_codes(), devices),
        production=production,
    )


def create_tracker(settings: ConfigSettings, pool: Pool) -> ConfigTracker:
    return ConfigTracker(pool, grace_s=settings.command_expiry_grace_s)


def create_publisher(settings: ConfigSettings) -> MqttPublisher:
    """A not yet started publisher; a unique client id (clean session) per process."""
    return MqttPublisher(
        mqtt_options(settings, f"{settings.config_mqtt_client_id}-{uuid4().hex[:8]}"),
        publish_timeout_s=settings.config_publish_timeout_s,
    )


@contextmanager
def open_config_service(
    settings: ConfigSettings, pool: Pool, *, connect_timeout_s: float = 5.0
) -> Iterator[tuple[ConfigService, bool]]:
    """The service with its publisher started, and whether the broker answered within
    ``connect_timeout_s`` (if not, the publisher keeps trying; documents are stored
    meanwhile and the loops publish them). The key is checked before any connection
    (:class:`~cloud.config.SigningKeyError`); the publisher stops when the block ends."""
    publisher = create_publisher(settings)
    try:
        service = create_config_service(settings, pool, publisher=publisher)
        yield service, _start(publisher, settings, connect_timeout_s)
    finally:
        publisher.stop()


@asynccontextmanager
async def serve_config_service(
    settings: ConfigSettings, pool: Pool, *, connect_timeout_s: float = 5.0
) -> AsyncIterator[tuple[ConfigService, bool]]:
    """:func:`open_config_service` for a process on asyncio (blocking parts in threads)."""
    publisher = create_publisher(settings)
    try:
        service = await asyncio.to_thread(
            create_config_service, settings, pool, publisher=publisher
        )
        yield service, await asyncio.to_thread(_start, publisher, settings, connect_timeout_s)
    finally:
        await asyncio.to_thread(publisher.stop)


def create_tech_listener(
    settings: ConfigSettings,
    pool: Pool,
    service: ConfigService,
    *,
    profiles: Mapping[str, DeviceProfile] | None = None,
) -> TechRequestListener:
    """The (not yet started) listener answering technicians' requests of the settings'
    regions, as its own broker identity (:meth:`ConfigSettings.tech_listener_settings`)."""
    pushes = TechnicianPushes(
        pool,
        service,
        builtin_profiles() if profiles is None else profiles,
        production=settings.env == "production",
    )
    own = settings.tech_listener_settings()
    options = mqtt_options(own, f"{own.config_mqtt_client_id}-tech-{uuid4().hex[:8]}")
    return TechRequestListener(pushes, options, settings.config_tech_regions)


@asynccontextmanager
async def serve_tech_requests(
    settings: ConfigSettings, pool: Pool, service: ConfigService
) -> AsyncIterator[TechRequestListener | None]:
    """The technician-request listener while the block runs (None: no regions, or the
    broker refused it — logged; the rest of the service runs on)."""
    if not settings.config_tech_regions:
        yield None
        return
    listener = create_tech_listener(settings, pool, service)
    try:
        await asyncio.to_thread(listener.start)
    except MqttError as exc:
        log.error("config: technician requests not answered: %s", exc)
        yield None
        return
    try:
        yield listener
    finally:
        await asyncio.to_thread(listener.stop)


def _start(publisher: MqttPublisher, settings: ConfigSettings, timeout_s: float) -> bool:
    connected = publisher.start(timeout_s)
    if not connected:
        log.warning("config: broker %s not reachable yet; publishing when it is", _where(settings))
    return connected


def _where(settings: ConfigSettings) -> str:
    return settings.mqtt.redacted  # never the URL itself: it may carry a password


async def config_loops(
    settings: ConfigSettings,
    service: ConfigService,
    tracker: ConfigTracker,
    stop: asyncio.Event,
    runtime: EventRuntime,
) -> None:
    """The config service's loops at the settings' pace until ``stop``; expiries wake the
    config outbox's relay in ``runtime``."""
    await run_config_loops(
        service,
        tracker,
        stop,
        interval_s=settings.config_republish_interval_s,
        kick=lambda: runtime.kick(CONFIG_SCHEMA),
        refresh_margin_s=settings.config_refresh_margin_s,
        provision_new=settings.config_provision_new,
    )


async def run_config_service(
    settings: ConfigSettings,
    stop: asyncio.Event,
    *,
    bus_settings: BusSettings | None = None,
    bus: EventBus | None = None,
    consume: bool = True,
) -> None:
    """The config service until ``stop``: MQTT publisher, republish and expiry loops, its
    outbox relay and (``consume``) its event consumers. Raises
    :class:`~cloud.config.SigningKeyError` at once when the key is refused."""
    load_signing_key(settings.signing_key_file, production=settings.env == "production")
    pool = await asyncio.to_thread(open_pool, settings, "config")
    try:
        async with (
            serve_config_service(settings, pool) as (service, _),
            serve_tech_requests(settings, pool, service),
        ):
            tracker = create_tracker(settings, pool)
            subs = config_subscriptions(tracker) if consume else []
            async with event_runtime(
                bus_settings or BusSettings(),
                pool,
                outboxes=(CONFIG_SCHEMA,),
                subscriptions=subs,
                bus=bus,
            ) as runtime:
                await config_loops(settings, service, tracker, stop, runtime)
    finally:
        await asyncio.to_thread(pool.close)


# -- the background services ---------------------------------------------------------------
@dataclass(frozen=True)
class Background:
    """What :func:`background_services` runs, for the process that composes it."""

    runtime: EventRuntime
    #: Events → alarms (its ``store``: the alarm board's).
    alerts: AlertService
    #: The notify service when its settings were given.
    notify: NotificationService | None
    #: Where the composing process adds its own loops (ingest, the config service's).
    tasks: asyncio.TaskGroup
    #: Set when the block ends: every loop in ``tasks`` stops on it.
    stop: asyncio.Event


@asynccontextmanager
async def background_services(
    pool: Pool,
    *,
    notify: NotifySettings | None = None,
    dispatch: DispatchService | None = None,
    billing: BillingService | None = None,
    reminders: ReminderSettings | None = None,
    sap: SapSettings | None = None,
    support: SupportService | None = None,
    report_packs: PackSettings | None = None,
    pack_region: Region | None = None,
    bus_settings: BusSettings | None = None,
    alert_sweep_s: float = ALERT_SWEEP_S,
    registry: RegistryService | None = None,
    tracker: ConfigTracker | None = None,
    ingest: bool = False,
) -> AsyncIterator[Background]:
    """The alerts service's consumers (with its sweeps every ``alert_sweep_s``) and every
    outbox's relay, in this process, until the block ends (then ``stop`` is set and every
    loop is waited for). With ``notify``: notify's consumers too, and its delivery worker
    sending through the settings' SMTP relay. With ``dispatch``: its consumers (sites,
    technicians, alarms, installations, telemetry of jobs awaiting verification) and its
    sweeps (every ``flow.sweep_s`` of the service's settings). With ``billing``: its
    consumer (true-ups on ``energy.revised``) and its daily overdue reminders per region
    at ``reminders.reminder_hour`` of the region's clock (:func:`region_zone`; default
    settings from ``POTR_BILLING_*``). With ``sap``: the SAP integration's consumers,
    exporter and daily reconciliation (:func:`run_sap`). With ``notify`` and
    ``report_packs``: the monthly reports pack to every region's admins
    (:func:`send_report_pack`) — or, with ``pack_region``, that region's own pack to its
    admins only (a process of a region's deployment, ``POTR_SERVICES_REGION``). With
    ``support`` (:func:`create_support_service`): its consumer (a ticket's work order),
    customers' plan-change consumer and daily application, and the sweep closing
    resolved tickets whose reopen window is over.

    ``registry``, ``tracker`` and ``ingest``: the registry's, the config service's and
    ingest's consumers on the same event runtime (:func:`cloud_events`), for a process
    that also runs ingest and the config service (:func:`run_services`, whose loops go
    into ``tasks``); ``potr services`` leaves them to ``potr ingest`` and
    ``potr config run`` (:func:`run_background_services`)."""
    notifier = NotificationService(pool, notify) if notify is not None else None
    filed = asyncio.Event()
    handlers = NotifyHandlers(pool, notifier, on_filed=filed.set) if notifier is not None else None
    alerts = AlertService(pool)
    stop = asyncio.Event()
    sap_wake = asyncio.Event()
    async with (
        cloud_events(
            pool,
            registry=registry,
            config=tracker,
            ingest=ingest,
            alerts=alerts,
            notify=handlers,
            dispatch=dispatch,
            billing=billing,
            sap_wake=sap_wake.set if sap is not None else None,
            support=support,
            plan_changes=CustomersService(pool) if support is not None else None,
            outboxes=relayed_outboxes(sap=sap is not None),
            settings=bus_settings,
        ) as runtime,
        asyncio.TaskGroup() as tg,
    ):
        tg.create_task(run_alert_sweeps(alerts, stop, alert_sweep_s))
        if dispatch is not None:
            tg.create_task(run_dispatch_sweeps(dispatch, stop, dispatch.flow.sweep_s))
        if billing is not None:
            tg.create_task(_remind(billing, stop, reminders))
        if notify is not None:
            tg.create_task(_deliver(pool, notify, stop, filed, pack_region))
        if sap is not None:
            tg.create_task(run_sap(sap, pool, stop, sap_wake))
        if notifier is not None and report_packs is not None:
            tg.create_task(_send_packs(pool, notifier, stop, report_packs, pack_region))
        if support is not None:
            tg.create_task(run_support_sweeps(support, stop, SUPPORT_SWEEP_S))
            tg.create_task(run_plan_changes(CustomersService(pool), stop))
        try:
            yield Background(runtime, alerts, notifier, tg, stop)
        finally:
            stop.set()


async def run_background_services(
    database: DatabaseSettings,
    stop: asyncio.Event,
    *,
    notify: NotifySettings,
    dispatch: DispatchSettings,
    flow: FlowSettings,
    reminders: ReminderSettings,
    report_packs: PackSettings,
    sap: SapSettings | None,
    bus_settings: BusSettings,
    region: Region | None = None,
) -> None:
    """The whole ``potr services`` process, until ``stop``: every background service of a
    region's deployment but ingest and the config service (``potr ingest``,
    ``potr config run``) — :func:`background_services` with notify, dispatch, billing,
    support and the monthly reports pack (``region``'s own when given), and SAP when
    ``sap`` is given — on a pool of its own."""
    pool = await asyncio.to_thread(open_pool, database, "services", max_size=8)
    try:
        async with background_services(
            pool,
            notify=notify,
            dispatch=create_dispatch_service(dispatch, pool, flow=flow),
            billing=create_billing_service(pool),
            reminders=reminders,
            sap=sap,
            support=create_support_service(pool),
            report_packs=report_packs,
            pack_region=region,
            bus_settings=bus_settings,
        ):
            await stop.wait()
    finally:
        await asyncio.to_thread(pool.close)


# -- everything in one process --------------------------------------------------------------
@dataclass(frozen=True)
class Services:
    """What :func:`run_services` runs, for the caller's API and reports."""

    config: ConfigService
    tracker: ConfigTracker
    runtime: EventRuntime
    #: Whether the config publisher reached the broker at start (else it keeps trying).
    publisher_connected: bool
    #: Events → alarms (its ``store``: the alarm board's).
    alerts: AlertService | None = None
    #: The notify service when :func:`run_services` was given its settings.
    notify: NotificationService | None = None
    #: Work orders: raised by alert policies, assigned, verified by telemetry.
    dispatch: DispatchService | None = None


@asynccontextmanager
async def run_services(
    pool: Pool,
    registry: RegistryService,
    *,
    ingest: IngestSettings,
    config: ConfigSettings,
    notify: NotifySettings | None = None,
    dispatch: DispatchService | None = None,
    billing: BillingService | None = None,
    reminders: ReminderSettings | None = None,
    sap: SapSettings | None = None,
    support: SupportService | None = None,
    bus_settings: BusSettings | None = None,
    ready_timeout_s: float = 30.0,
    alert_sweep_s: float = ALERT_SWEEP_S,
    report_packs: PackSettings | None = None,
) -> AsyncIterator[Services]:
    """Ingest (one worker), the config service with its loops, the registry's, the config
    service's and ingest's consumers and :func:`background_services` (the alerts
    service, every outbox's relay, and notify, dispatch, billing, SAP, the reports pack
    and support when given), in this process, until the block ends; enters once the
    registry's pending events were relayed (on the in-process bus: handled by ingest; on
    RabbitMQ: queued for it, so a gateway registered just before may be refused until its
    event is handled, and its agent resends) and ingest is subscribed."""
    async with serve_config_service(config, pool) as (service, connected):
        tracker = create_tracker(config, pool)
        async with background_services(
            pool,
            notify=notify,
            dispatch=dispatch,
            billing=billing,
            reminders=reminders,
            sap=sap,
            support=support,
            report_packs=report_packs,
            bus_settings=bus_settings,
            alert_sweep_s=alert_sweep_s,
            registry=registry,
            tracker=tracker,
            ingest=True,
        ) as background:
            ready = asyncio.Event()
            background.tasks.create_task(run_ingest(ingest, background.stop, ready=ready))
            background.tasks.create_task(
                config_loops(config, service, tracker, background.stop, background.runtime)
            )
            async with asyncio.timeout(ready_timeout_s):
                await ready.wait()
            yield Services(
                service,
                tracker,
                background.runtime,
                connected,
                background.alerts,
                background.notify,
                dispatch,
            )


async def _remind(
    billing: BillingService, stop: asyncio.Event, settings: ReminderSettings | None
) -> None:
    """billing's daily overdue reminders in every region until ``stop``."""
    zones = {region: region_zone(region) for region in Region}
    await run_reminders_daily(
        billing, stop, zones=zones, settings=settings or ReminderSettings(), clock=billing.clock
    )


def regional_readers(pool: Pool) -> dict[Region, ReportsReader]:
    """One reports reader per region over ``pool`` — the one database of a process that
    serves every region — for what combines the regions' tables (the monthly pack, the
    reports across every region). A deployment with a database per region hands each
    region's reader its own pool instead."""
    return {region: create_reports_reader(pool) for region in Region}


#: Namespace of the monthly reports pack's notification ids (one per month and region).
_PACK_NS = UUID("5b0c1f7e-8d2a-4e6b-9a31-7c4d2e8f1a60")


def send_report_pack(notifier: NotificationService, pack: Pack, now: datetime) -> int:
    """Tell every region's admins that ``pack`` is ready, with its figures across the
    regions and a link to the region's reports of the month; the e-mail carries the
    pack as a PDF (attachment ``reports_pack``, made by :func:`report_pack_pdf` when the
    mail is built). A pack of one region (``pack.region``) reaches that region's admins
    only, quoting its own figures (``reports_monthly_pack_region``) and linking to the
    reports across every region, which the admins read with their own token. The
    notification's id derives from the month and region, so sending again reaches
    nobody twice. How many admins were told."""
    told = 0
    month = f"{pack.month:%Y-%m}"
    for region in Region if pack.region is None else (pack.region,):
        admins = notifier.staff(region, ["admin"])
        if not admins:
            continue
        if pack.region is None:
            kind, link, extra = "reports_monthly_pack", f"/ui/{region.value}/reports", {}
        else:
            kind, link = "reports_monthly_pack_region", f"/ui/{region.value}/reports/all/fleet"
            extra = {"region": region.value.upper()}
        notification = Notification(
            id=uuid5(_PACK_NS, f"{month}/{region.value}"),
            kind=kind,
            category=Category.NOTICE,
            region=region,
            link=f"{link}?month={month}",
            params={"month": month, **extra, **pack.headline()},
            created_at=now,
            attachment=Attachment(kind=PACK_ATTACHMENT, key=f"{month}/{region.value}"),
        )
        notifier.notify(notification, admins)
        told += len(admins)
    return told


#: The attachment kind of the monthly pack's PDF (key ``YYYY-MM/<region>``).
PACK_ATTACHMENT = "reports_pack"


def report_pack_pdf(
    readers: Mapping[Region, ReportsReader], *, only: Region | None = None
) -> AttachmentSource:
    """notify's source of the monthly pack's PDF: for key ``YYYY-MM/<region>``, that
    month's pack built again from ``readers`` (every report of each region, then across
    them; with ``only``, that region's reports alone), in the recipient's language,
    named ``potr-reports-YYYY-MM-<region>.pdf``. Rendered without a timestamp, so a
    retry makes the same bytes from the same data. A key that names no month or region
    (with ``only``: another region) raises ``ValueError``."""
    regions = {region.value for region in Region} if only is None else {only.value}

    def make(key: str, language: str) -> MailAttachment:
        month_text, _, region = key.partition("/")
        month = parse_month(month_text)
        if month is None or region not in regions:
            raise ValueError(f"{key!r} is not YYYY-MM/<region>")
        pack = build_pack(readers, month, only=only)
        pdf = render_pdf(pack.tables(), words_in(language), language=language, invariant=True)
        return MailAttachment(f"potr-reports-{month:%Y-%m}-{region}.pdf", "application/pdf", pdf)

    return make


async def _send_packs(
    pool: Pool,
    notifier: NotificationService,
    stop: asyncio.Event,
    settings: PackSettings,
    region: Region | None,
) -> None:
    """The monthly reports pack (:func:`cloud.reports.run_monthly_packs`): each region's
    reader over this process's pool (its one database holds every region), sent through
    notify — or, with ``region`` (a region's own database), that region's pack alone."""
    readers = regional_readers(pool)

    def send(pack: Pack) -> None:
        send_report_pack(notifier, pack, utc_now())

    await run_monthly_packs(readers, send, stop, settings=settings, clock=utc_now, only=region)


async def _deliver(
    pool: Pool,
    settings: NotifySettings,
    stop: asyncio.Event,
    wake: asyncio.Event,
    pack_region: Region | None = None,
) -> None:
    """notify's delivery worker until ``stop``, woken when this process files mail (the
    pack's PDF: ``pack_region``'s own when given)."""
    sources = {PACK_ATTACHMENT: report_pack_pdf(regional_readers(pool), only=pack_region)}
    async with DeliveryWorker.open(pool, settings, attachments=sources) as worker:
        await worker.run(stop, wake=wake)


# -- flows across services ------------------------------------------------------------------
def link_site(
    registry: RegistryService, customers: CustomersService, site_id: int, account_id: str
) -> Site:
    """Make ``account_id`` the owner of site ``site_id``: the customers service vets the
    account (exists, the site's region, not closed), then the registry records it and
    announces it to the site's gateways (``gateway.updated`` carrying ``account_id``).
    Raises the registry's or the customers service's ``NotFoundError`` /
    ``ConflictError``; neither service calls the other."""
    site = registry.get_site(site_id)
    if site is None:
        raise NotFoundError(f"site {site_id} does not exist")
    customers.site_owner(account_id, site.region)
    return registry.set_site_account(site_id, account_id)
