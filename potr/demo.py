"""The demo: a small fleet on embedded defaults, on one machine, with no servers needed.

Embedded PostgreSQL (or ``POTR_DATABASE_URL``) → migrations → registry with one site and
gateway per region → simulated sites over Modbus TCP → one agent per site → amqtt (or a
private Mosquitto, or ``POTR_MQTT_URL``) → ingest → REST API on a free port.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from rich.console import Console

from broker_config.amqtt_demo import AMQTT_LIMITS
from cloud.adapters.postgres import Connection, ConnectionPool
from cloud.bootstrap import (
    create_api,
    create_cycle_runner,
    create_dispatch_service,
    create_support_service,
    create_web_ui,
    open_pool,
    run_services,
)
from cloud.config import ConfigService, ConfigSettings, public_key_path, write_key_file
from cloud.customers import CustomersError, CustomersService, InstallationIn
from cloud.dispatch import DispatchSettings, FlowSettings
from cloud.employees import EmployeeService
from cloud.identity import IdentitySettings, create_identity_service, issue_access_token
from cloud.identity import create_router as identity_router
from cloud.ingest import IngestSettings
from cloud.ingest.stats import stored_readings_by_region
from cloud.migrate import migrate
from cloud.notify import NotifySettings
from cloud.portal import PortalSettings
from cloud.registry import ConflictError, GatewayIn, RegistryService, SiteIn
from cloud.sap import SapSettings
from cloud.settings import DatabaseSettings, MqttSettings, redact_url
from contracts.signing import SigningKey
from contracts.topics import Region
from edge_agent.app import run_agent
from edge_agent.settings import AgentSettings, EndpointSettings
from potr.demo_broker import CONFIG_USER, INGEST_USER, BrokerKind, DemoBroker, start_demo_broker
from potr.demo_people import DemoLogin, NoMail, create_people
from potr.runtime import serve_http
from potr.servers.ports import free_port
from potr.servers.postgres import EmbeddedPostgres
from simulators.device_site import SYSTEM_METER_UNIT, DeviceSite, DeviceSiteSettings, DeviceSpec
from simulators.regions import REGIONS

log = logging.getLogger(__name__)
Pool = ConnectionPool[Connection[Any]]


@dataclass(frozen=True)
class DemoSite:
    region: Literal["au", "us", "es"]
    name: str
    time_zone: str
    utility: str
    latitude: float
    longitude: float
    pv_capacity_w: float

    @property
    def gateway_id(self) -> str:
        return f"demo-{self.region}-01"


DEMO_SITES = (
    DemoSite("au", "Demo Sydney", "Australia/Sydney", "Ausgrid", -33.87, 151.21, 6600),
    DemoSite("us", "Demo Los Angeles", "America/Los_Angeles", "LADWP", 34.05, -118.24, 8000),
    DemoSite("es", "Demo Madrid", "Europe/Madrid", "i-DE", 40.42, -3.70, 5000),
)
_DEMO_NAMES = {d.name for d in DEMO_SITES}
#: The demo feeders' voltage rise at full sun, percent.
DEMO_GRID_RISE_PCT = 3.0
#: Each agent polls (and publishes) this often.
POLL_INTERVAL_S = 2.0


def demo_dispatch_flow() -> FlowSettings:
    """Dispatch in a demo's life: a repaired site watched for a minute, not thirty, and
    judged at any real hour — the simulated sun is always at late morning (see
    :func:`_local_late_morning`) while the clear-sky expectation follows the real one, so
    with nothing expected the inverters need only have produced (ARCHITECTURE 106)."""
    return FlowSettings(verify_window_s=60.0, verify_min_expected_wh=0.0, sweep_s=5.0)


def _local_late_morning(tz: str) -> datetime:
    """Today 10:30 at the site, so the PV curve is visible whatever the real hour."""
    local = datetime.now(ZoneInfo(tz)).replace(hour=10, minute=30, second=0, microsecond=0)
    return local.astimezone(UTC)


def provision(registry: RegistryService) -> None:
    """One site and gateway per region; existing ones (an external database) are kept."""
    existing = {s.name: s for s in registry.list_sites()}
    for demo in DEMO_SITES:
        site = existing.get(demo.name) or registry.add_site(
            SiteIn(
                name=demo.name,
                region=demo.region,
                time_zone=demo.time_zone,
                utility=demo.utility,
                latitude=demo.latitude,
                longitude=demo.longitude,
            )
        )
        if registry.get_gateway(demo.gateway_id) is None:
            with contextlib.suppress(ConflictError):  # another demo got there first
                registry.add_gateway(GatewayIn(id=demo.gateway_id, site_id=site.id))


async def _start_database(stack: AsyncExitStack, workdir: Path) -> str:
    url = os.environ.get("POTR_DATABASE_URL")
    if url:
        return url
    pg = EmbeddedPostgres(data_root=workdir / "pg", fsync=True)  # the demo keeps fsync on
    await asyncio.to_thread(pg.start)
    stack.callback(pg.stop)
    return pg.url


@dataclass
class DemoStack:
    """A running demo: where its portal answers, its people, and the pieces tests and
    the launcher look into."""

    url: str
    people: list[DemoLogin]
    pool: Pool
    registry: RegistryService
    config: ConfigService
    identity_key: SigningKey
    identity_key_file: Path
    sims: dict[str, DeviceSite]
    #: Region → the demo site's id.
    sites: dict[str, int]
    #: How often each agent polls and publishes (the live views refresh as often).
    publish_interval_s: float


@asynccontextmanager
async def demo_stack(
    *,
    broker: BrokerKind,
    console: Console,
    database_url: str | None = None,
    smtp: tuple[str, int] | None = None,
    dispatch_flow: FlowSettings | None = None,
    sap: SapSettings | None = None,
) -> AsyncIterator[DemoStack]:
    """Start the whole demo — database, broker, simulated sites, agents, ingest, the
    config service, identity with one person per role, the API and the portal on a free
    port, alerts and notifications — and stop it all when the block ends.
    ``database_url``: an existing server's database (else ``POTR_DATABASE_URL``, else an
    embedded PostgreSQL); ``smtp``: the mail relay notifications go to (else
    ``POTR_SMTP_*``); ``dispatch_flow``: verification and sweeps (else
    :func:`demo_dispatch_flow`); ``sap``: the SAP system work orders go to as service
    orders (else none: the demo has no SAP)."""
    async with AsyncExitStack() as stack:
        workdir = Path(tempfile.mkdtemp(prefix="potr-demo-", dir="/tmp"))
        os.chmod(workdir, 0o755)
        stack.callback(shutil.rmtree, workdir, True)  # runs last: after PostgreSQL stopped
        db_url = database_url or await _start_database(stack, workdir)
        applied = await asyncio.to_thread(migrate, db_url)
        console.print(f"database {redact_url(db_url)} ({len(applied)} migrations applied)")
        gateways = {d.gateway_id: Region(d.region) for d in DEMO_SITES}
        mq = await start_demo_broker(stack, broker, gateways, workdir)
        console.print(f"MQTT broker {redact_url(mq.url)} ({mq.secured})")
        if mq.kind == "amqtt":
            console.print(f"[yellow]{AMQTT_LIMITS}[/yellow]")

        database = DatabaseSettings(database_url=db_url)
        # One process runs every service (consumers, relays, loops, the portal): 8 starved
        # under load once config gained its registry and identity consumers.
        pool = await asyncio.to_thread(open_pool, database, "demo", max_size=16)
        stack.callback(pool.close)
        registry = RegistryService(pool)
        await asyncio.to_thread(provision, registry)
        sims: dict[str, DeviceSite] = {}
        for demo in DEMO_SITES:
            sims[demo.region] = await stack.enter_async_context(DeviceSite(_site_settings(demo)))
            console.print(f"site {demo.region}: Modbus TCP 127.0.0.1:{sims[demo.region].port}")

        # The demo's signing key: marked as such, so production mode refuses it.
        key_file = workdir / "demo-signing-key.pem"
        key = write_key_file(key_file, demo=True)
        trusted = public_key_path(key_file)
        console.print(f"signing key {key.kid} (demo key; agents trust {trusted.name})")
        # One database and one broker for every service: the pieces each settings class shares.
        common = {
            **database.model_dump(),
            **MqttSettings(
                mqtt_url=mq.url, mqtt_protocol=mq.protocol, mqtt_ca_file=mq.ca_file
            ).model_dump(),
        }
        ingest = IngestSettings(
            **(common | _identity(mq, INGEST_USER)),
            mqtt_shared_subscription=mq.shared,
            mqtt_client_id=f"potr-demo-ingest-{os.getpid()}",
            # Rollups and energy within a short demo's life (production: every minute).
            telemetry_maintenance_interval_s=10.0,
            telemetry_open_bucket_wait_s=0.0,  # ... the open bucket's too (production: 300 s)
        )
        config = ConfigSettings(**(common | _identity(mq, CONFIG_USER)), signing_key_file=key_file)
        # The identity demo key pair: access tokens are signed with the private half, the
        # API verifies them with the public half (demo keys: refused in production).
        identity_key_file = workdir / "demo-identity-key.pem"
        identity_key = write_key_file(identity_key_file, demo=True)
        api_settings = PortalSettings(
            **database.model_dump(),
            identity_public_key_file=public_key_path(identity_key_file),
            api_port=free_port(),
            portal_live_interval_s=POLL_INTERVAL_S,
        )

        # Notifications: mail through the POTR_SMTP_* relay (default localhost:25; without
        # one the deliveries retry, then fail: notify.deliveries shows them).
        notify = NotifySettings(
            **database.model_dump(),
            notify_portal_url=f"http://127.0.0.1:{api_settings.api_port}",
        )
        if smtp is not None:
            notify = notify.model_copy(update={"smtp_host": smtp[0], "smtp_port": smtp[1]})
        photos = DispatchSettings(dispatch_photo_dir=workdir / "dispatch-photos")
        # Ingest, the config service and its loops, the registry's and the config
        # service's consumers and the outbox relays (in-process bus here).
        services = await stack.enter_async_context(
            run_services(
                pool,
                registry,
                ingest=ingest,
                config=config,
                notify=notify,
                dispatch=create_dispatch_service(
                    photos, pool, flow=dispatch_flow or demo_dispatch_flow()
                ),
                support=create_support_service(pool),
                sap=sap,
            )
        )
        # Identity (in this one process; production runs it behind the API gateway) and
        # one person per role, each with a login printed below; the MOSIEs' staff records
        # (two AU ones without a login, for dispatch to refuse: potr/demo_people.py).
        identity = create_identity_service(
            IdentitySettings(**database.model_dump(), identity_signing_key_file=identity_key_file),
            pool,
        )
        sites = {s.region.value: s.id for s in registry.list_sites() if s.name in _DEMO_NAMES}
        customers = CustomersService(pool)
        people = await asyncio.to_thread(
            create_people, identity, customers, EmployeeService(pool), registry, sites
        )
        for demo in DEMO_SITES:
            meters = _meter_serials(sims[demo.region])
            site_id = sites[demo.region]
            await asyncio.to_thread(record_installation, customers, demo, site_id, meters)
            console.print(
                f"site {demo.region}: billing meter {meters[0]} (system), grid meter {meters[1]}"
            )
        services_stop = asyncio.Event()
        async with asyncio.TaskGroup() as tg:
            web = create_web_ui(api_settings, pool, identity=identity)
            stack.push_async_callback(web.aclose)  # the inbox feed's LISTEN connection
            # Billing cycles an admin starts: stopped and waited for before the pool closes.
            cycles = create_cycle_runner(pool)
            stack.push_async_callback(asyncio.to_thread, cycles.close)
            app = create_api(
                api_settings, pool, config=services.config, web=web, dispatch=photos,
                billing_cycles=cycles,
            )  # fmt: skip
            app.include_router(
                identity_router(
                    identity, mailer=NoMail(), mail_from="demo@potr.example", reset_url=""
                )
            )
            tg.create_task(
                serve_http(
                    app,
                    "127.0.0.1",
                    api_settings.api_port,
                    services_stop,
                    log_level="warning",
                    lifespan="off",
                )
            )
            for demo in DEMO_SITES:
                tg.create_task(
                    run_agent(
                        _agent_settings(demo, mq, workdir, sims[demo.region].port, trusted),
                        services_stop,
                    )
                )
            try:
                yield DemoStack(
                    url=f"http://127.0.0.1:{api_settings.api_port}",
                    people=people,
                    pool=pool,
                    registry=registry,
                    config=services.config,
                    identity_key=identity_key,
                    identity_key_file=identity_key_file,
                    sims=sims,
                    sites=sites,
                    publish_interval_s=POLL_INTERVAL_S,
                )
            finally:
                services_stop.set()


async def run_demo(
    stop: asyncio.Event,
    *,
    duration_s: float | None,
    broker: BrokerKind,
    console: Console,
    report_every_s: float = 5.0,
) -> list[dict[str, int]]:
    """Run until ``stop`` or ``duration_s``; return every stored-reading report."""
    async with demo_stack(broker=broker, console=console) as demo, asyncio.TaskGroup() as tg:
        token = issue_access_token(
            demo.identity_key, subject="demo-admin", role="admin", region="au",
            scopes=("read", "write", "admin"),
        )  # fmt: skip
        api = demo.url
        console.print(f"\n[bold]portal[/bold] {api}/login   (sign in with a login below)")
        console.print(f"[bold]API[/bold] {api}   (OpenAPI: {api}/docs)")
        console.print(
            f"[bold]token[/bold] (admin, 15 min; another: POTR_IDENTITY_SIGNING_KEY_FILE="
            f"{demo.identity_key_file} potr token create --role admin --region au):",
            soft_wrap=True,
            highlight=False,
        )
        console.print(f"export TOKEN={token}", soft_wrap=True, highlight=False)
        console.print(f'try: curl -H "Authorization: Bearer $TOKEN" {api}/api/v1/au/sites')
        _print_logins(demo.people, api, console)
        printer = tg.create_task(_print_command_when_ready(demo.config, api, console))
        reports = await _report_until(
            stop,
            duration_s,
            report_every_s,
            console,
            lambda: stored_readings_by_region(demo.pool),
        )
        printer.cancel()
    return reports


def _print_logins(people: list[DemoLogin], api: str, console: Console) -> None:
    """The demo's people: email + password for everyone, employee number + PIN for staff."""
    console.print(
        "[bold]logins[/bold] (the portal's sign-in page; or POST /api/v1/auth/login or /pin-login):"
    )
    for p in people:
        pin = f"   employee {p.employee_no} PIN {p.pin}" if p.employee_no else ""
        console.print(
            f"  {p.role:<9} {p.region}  {p.email}  {p.password}{pin}",
            soft_wrap=True,
            highlight=False,
        )
    console.print(
        f"  e.g. curl -X POST {api}/api/v1/auth/login -H 'content-type: application/json'"
        f""" -d '{{"email": "{people[0].email}", "password": "{people[0].password}"}}'""",
        soft_wrap=True,
        highlight=False,
    )


async def _print_command_when_ready(config: ConfigService, api: str, console: Console) -> None:
    """Print a ready-to-run command once the config service knows the au inverter (from
    its gateway's birth): printed earlier, it would only get a 404."""
    au = DEMO_SITES[0]
    device = _inverter_id(au)
    try:
        async with asyncio.timeout(60):
            # The birth arrives in another service's table: nothing here to await.
            while device not in await asyncio.to_thread(config.known_devices, au.gateway_id):  # noqa: ASYNC110
                await asyncio.sleep(0.2)
    except TimeoutError:
        console.print(f"[red]{device} not seen within 60 s: no command to show[/red]")
        return
    body = {"name": "set_power_limit", "device": device, "args": {"pct": 50}, "reason": "demo"}
    url = f"{api}/api/v1/{au.region}/gateways/{au.gateway_id}/commands"
    console.print(
        f'command: curl -X POST -H "Authorization: Bearer $TOKEN"'
        f" -H 'content-type: application/json' {url} -d '{json.dumps(body)}'",
        soft_wrap=True,
        highlight=False,
    )
    console.print(
        f'then:    curl -H "Authorization: Bearer $TOKEN" {url}\n',
        soft_wrap=True,
        highlight=False,
    )


#: Each demo site: a DER inverter (SunSpec 70x: limits and curves), a grid meter and a
#: DC isolator (its trips and openings become alarms and notices); PoTR's system meter
#: (the billing meter, ARCHITECTURE 119) joins them on :data:`SYSTEM_METER_UNIT`.
_DEMO_DEVICES = {1: "sim-der-inverter", 2: "sim-meter-203", 5: "sim-isolator"}
#: The grid meter's Modbus unit (at the site's grid connection).
GRID_METER_UNIT = 2
#: The isolator's Modbus unit (a fault ``{"kind": "isolator_trip", "unit": 5}`` trips it).
ISOLATOR_UNIT = 5
#: What the agents poll: the site's devices and its system meter.
_POLLED = {**_DEMO_DEVICES, SYSTEM_METER_UNIT: "sim-meter-203"}
#: The demo sites' tariff zones (a state, or the Spanish peninsula).
_TARIFF_ZONES = {"au": "NSW", "us": "CA", "es": "peninsula"}


def _meter_serials(sim: DeviceSite) -> tuple[str, str]:
    """(billing meter, grid meter): the serials the simulated meters serve (model 1 SN)."""
    return sim.device(SYSTEM_METER_UNIT).serial, sim.device(GRID_METER_UNIT).serial


def demo_installation(demo: DemoSite, billing_meter: str, grid_meter: str) -> InstallationIn:
    """The demo site's installation record: its PV facing the equator, no battery, and
    both meters by serial (billing reads them; site sums tell them apart by it)."""
    return InstallationIn(
        pv_kwp=Decimal(int(demo.pv_capacity_w)) / 1000,
        tilt_deg=Decimal(20),
        azimuth_deg=Decimal(0 if demo.latitude < 0 else 180),
        battery_kwh=Decimal(0),
        network_operator=demo.utility,
        tariff_zone=_TARIFF_ZONES[demo.region],
        installed_on=date(2025, 1, 6),
        warranty_until=date(2035, 1, 6),
        billing_meter=billing_meter,
        grid_meter=grid_meter,
    )


def record_installation(
    customers: CustomersService, demo: DemoSite, site_id: int, meters: tuple[str, str]
) -> None:
    """Record (or refresh) the demo site's installation record; a record an external
    database already holds with another billing meter is kept (and logged): changing
    it takes a meter replacement."""
    try:
        customers.put_installation(Region(demo.region), site_id, demo_installation(demo, *meters))
    except CustomersError as exc:
        log.warning("demo site %s keeps its installation record: %s", demo.name, exc)


def _site_settings(demo: DemoSite) -> DeviceSiteSettings:
    grid = REGIONS[demo.region]  # the region's nominal volts and hertz (120 V 60 Hz in us)
    return DeviceSiteSettings(
        site_id=demo.gateway_id,
        latitude=demo.latitude,
        longitude=demo.longitude,
        tz=demo.time_zone,
        nominal_v=grid.nominal_v,
        nominal_hz=grid.nominal_hz,
        # A healthy feeder: the rise stays inside the region's supply limits (us: 126 V
        # of ANSI C84.1 range A is 5 % over 120 V), so the demo raises no grid alarm.
        grid_rise_pct=DEMO_GRID_RISE_PCT,
        start_time=_local_late_morning(demo.time_zone),
        pv_capacity_w=demo.pv_capacity_w,
        devices=[DeviceSpec(profile=p, unit_id=u) for u, p in _DEMO_DEVICES.items()],
        system_meter=True,  # PoTR's billing meter at the system's AC output
    )


def _inverter_id(demo: DemoSite) -> str:
    """The inverter's local device id: its SunSpec serial, as the simulator makes it."""
    return f"INV-{demo.gateway_id}-1"


def _identity(mq: DemoBroker, username: str) -> dict[str, Any]:
    """The MQTT identity of a demo service (none for an external broker: its env's)."""
    password = mq.password(username)
    return {} if password is None else {"mqtt_username": username, "mqtt_password": password}


def _agent_settings(
    demo: DemoSite, mq: DemoBroker, workdir: Path, port: int, trusted: Path
) -> AgentSettings:
    return AgentSettings(
        gateway_id=demo.gateway_id,
        region=demo.region,
        mqtt_url=mq.url,
        mqtt_protocol=mq.protocol,
        mqtt_ca_file=mq.ca_file,
        **_identity(mq, demo.gateway_id),
        buffer_path=workdir / f"{demo.gateway_id}.sqlite",
        poll_interval_s=POLL_INTERVAL_S,
        stored_timeout_s=10.0,
        trusted_key_files=[trusted],
        endpoints=[
            EndpointSettings(
                name=f"{demo.region}-site",
                host="127.0.0.1",
                port=port,
                unit_ids=list(_POLLED),
                unit_profiles=_POLLED,
            )
        ],
    )


async def _report_until(
    stop: asyncio.Event,
    duration_s: float | None,
    every_s: float,
    console: Console,
    count: Callable[[], dict[str, int]],
) -> list[dict[str, int]]:
    deadline = None if duration_s is None else time.monotonic() + duration_s
    reports: list[dict[str, int]] = []
    while not stop.is_set():
        wait = every_s if deadline is None else min(every_s, deadline - time.monotonic())
        if wait > 0:
            try:
                async with asyncio.timeout(wait):
                    await stop.wait()
            except TimeoutError:
                pass
        counts = await asyncio.to_thread(count)
        reports.append(counts)
        line = "  ".join(f"{r}: {counts.get(r, 0):>7}" for r in ("au", "us", "es"))
        console.print(f"{datetime.now().strftime('%H:%M:%S')}  stored readings  {line}")
        if deadline is not None and time.monotonic() >= deadline:
            break
    return reports
