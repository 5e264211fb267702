"""A small fleet behind the whole API, for the authorisation matrix (scenario 14) and
the OpenAPI fuzzing: three customer accounts — A and B in au, E in es — each with a
contact, a site with its installation record and a device warranty, a gateway, a device
with readings, a command and two config versions, and an employee of the account's
region; the API over it with every router (registry, telemetry, completeness, config,
customers, employees) as ``potr api`` builds it.

Everything goes through the services' own paths (registry, ingest's pipeline and
events, the config service and its birth handler); only the site's owning account is
written in SQL, until the customers service's ``RegistryService.set_site_account``
arrives.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import psycopg
from fastapi import FastAPI
from fastapi.testclient import TestClient
from psycopg import sql

from cloud.adapters.mqtt import InboundMessage
from cloud.adapters.postgres import Connection, ConnectionPool, Jsonb, create_pool
from cloud.alerts import AlarmCondition, AlarmStore, Severity
from cloud.billing import CycleRunner
from cloud.bootstrap import (
    create_api,
    create_config_service,
    create_cycle_runner,
    create_support_service,
    create_tracker,
    create_web_ui,
)
from cloud.config import CommandIn, ConfigIn, ConfigService, ConfigSettings, write_key_file
from cloud.customers import AccountIn, ContactIn, CustomersService, InstallationIn, WarrantyIn
from cloud.dispatch import DispatchService, DispatchSettings, FilesystemPhotoStorage
from cloud.dispatch.appointment_repository import insert_offer
from cloud.dispatch.appointments import Offer, Window
from cloud.employees import EmployeeIn, EmployeeService
from cloud.events.types import GatewayBirth, GatewayRegistration
from cloud.identity import (
    IdentityService,
    IdentitySettings,
    Role,
    create_identity_service,
)
from cloud.ingest import IngestPipeline
from cloud.migrate import migrate
from cloud.portal import PortalSettings
from cloud.portal.web import WebUi
from cloud.registry import GatewayIn, RegistryService, SiteIn
from cloud.scope import Scope
from cloud.support import Actor, TicketIn
from cloud.telemetry import TelemetryStore
from contracts.messages import DeviceInfo, ProfileRef
from contracts.timeutil import to_wire, utc_now
from contracts.topics import Region
from tests.api_tokens import KEY, api_settings, bearer, mint_token
from tests.integration.registry_events import deliver_gateway_events, deliver_ingest_events

Pool = ConnectionPool[Connection[Any]]

#: The config service's known device on every gateway (and its profile's settings).
INVERTER = "SN-INV-1"
#: The device that sends readings.
DEVICE = "SN-1"
T0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=2)
READINGS = 10
ZONES = {Region.AU: "Australia/Sydney", Region.US: "America/Denver", Region.ES: "Europe/Madrid"}
#: A home jurisdiction and a tariff zone per region (employees; installation records).
JURISDICTIONS = {Region.AU: "AU-NSW", Region.US: "US-CA", Region.ES: "ES-MD"}
TARIFF_ZONES = {Region.AU: "NSW", Region.US: "CA", Region.ES: "peninsula"}


@dataclass(frozen=True)
class Tenant:
    """One customer account's objects."""

    name: str
    region: Region
    account: str
    site: int
    gateway: str
    device: int
    command: uuid.UUID
    employee: str
    #: An open alarm of the account's site.
    alarm: int = 0
    #: A work order of the site on site with the tenant's employee (a MOSIE), and its photo.
    work_order: int = 0
    photo: int = 0
    #: A rollout over the tenant's gateway (seeded by the tests that need one).
    rollout: int = 0
    #: The number of an invoice of the account (with a line, a tax and a payment).
    bill: str = ""
    #: A billed cycle of the tenant's region (seeded by the tests that need one).
    cycle: int = 0
    #: A support ticket of the account (a question, open: support replied to it).
    ticket: int = 0


@dataclass(frozen=True)
class World:
    app: FastAPI
    pool: Pool
    tenants: dict[str, Tenant]
    #: The identity service the web UI signs people in through.
    identity: IdentityService | None = None
    #: The web UI's own parts (its inbox feed: close it where a stream started it).
    web: WebUi | None = None
    #: The dispatch service over the world's photo directory (work orders, parts).
    dispatch: DispatchService | None = None
    #: The config service behind the API (rollouts are seeded through it).
    config: ConfigService | None = None
    #: The billing cycles the API starts in the background (closed before the pool).
    cycles: CycleRunner | None = None

    def headers(self, role: Role | str) -> dict[str, str]:
        """A caller of ``role``: staff of au, or account A's customer (au); the MOSIE is
        account A's employee (signed in with their employee number)."""
        account = self.tenants["A"].account if Role(role) == Role.CUSTOMER else None
        employee = self.tenants["A"].employee if Role(role) == Role.MOSIE else None
        return bearer(role, region=Region.AU, account_id=account, employee_no=employee, ttl_s=900)


@contextmanager
def private_database(server_url: str) -> Iterator[str]:
    """A fresh database on ``server_url`` for a module's tests, dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    info = psycopg.conninfo.conninfo_to_dict(server_url)
    info["dbname"] = name
    url = psycopg.conninfo.make_conninfo("", **{k: v for k, v in info.items() if v is not None})
    try:
        yield url
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@contextmanager
def migrated_database(server_url: str, *schemas: str) -> Iterator[str]:
    """:func:`private_database` with ``schemas`` migrated (none named: every service's)."""
    with private_database(server_url) as url:
        migrate(url, schemas=set(schemas) if schemas else None)
        yield url


def profile(region: Region) -> ProfileRef:
    return ProfileRef(id=f"{region.value}-s14", region=region, version=1)


def _birth(gateway_id: str) -> GatewayBirth:
    return GatewayBirth(
        gateway_id=gateway_id,
        stream_id=uuid.uuid4(),
        boot_id="boot-1",
        agent_version="test",
        publish_interval_s=5,
        devices=[
            DeviceInfo(
                device=INVERTER,
                endpoint="127.0.0.1:15020",
                unit_id=1,
                models=[1, 103, 120, 121, 122, 123, 126, 132, 160],
                profile="sim-inverter-103",
                nameplate={"w_rtg": 4000.0},
            )
        ],
    )


def _telemetry(region: Region, gateway_id: str) -> InboundMessage:
    payload = orjson.dumps(
        {
            "v": 1,
            "stream_id": str(uuid.uuid4()),
            "seq": 1,
            "readings": [
                {
                    "device": DEVICE,
                    "ts": to_wire(T0 + timedelta(minutes=i)),
                    "values": {"pv_w": 100.0 * i},
                }
                for i in range(READINGS)
            ],
        }
    )
    return InboundMessage(
        f"potr/v1/{region.value}/{gateway_id}/telemetry", payload, 1, 1, datetime.now(UTC)
    )


def installation_in(region: Region, billing_meter: str = "MTR-0") -> InstallationIn:
    """A site's record; au and es sites (which bill energy consumed on site) with a grid
    meter, us sites without."""
    return InstallationIn.model_validate(
        {
            "pv_kwp": "6.6",
            "tilt_deg": "20",
            "azimuth_deg": "0",
            "battery_kwh": "0",
            "network_operator": "Grid Co",
            "tariff_zone": TARIFF_ZONES[region],
            "installed_on": "2025-01-06",
            "warranty_until": "2035-01-06",
            "billing_meter": billing_meter,
            "grid_meter": None if region is Region.US else "GRID-0",
        }
    )


def employee_in(employee_no: str, region: Region) -> EmployeeIn:
    return EmployeeIn.model_validate(
        {
            "employee_no": employee_no,
            "name": f"staff {employee_no}",
            "region": region.value,
            "jurisdiction": JURISDICTIONS[region],
            "base": {"latitude": 0, "longitude": 0},
            "time_zone": ZONES[region],
        }
    )


def _customer(customers: CustomersService, region: Region, name: str, site_id: int) -> str:
    """Account ``name`` with a contact, and its site's installation record and warranty."""
    account = customers.add_account(region, AccountIn(name=name, email=f"{name}@example.com"))
    customers.add_contact(region, account.id, ContactIn(name=name, email=f"{name}@example.com"))
    customers.put_installation(region, site_id, installation_in(region))
    warranty = WarrantyIn.model_validate({"kind": "inverter", "warranty_until": "2035-01-06"})
    customers.put_warranty(region, site_id, INVERTER, warranty)
    return account.id


def identity_service(database_url: str, key_dir: Path, pool: Pool) -> IdentityService:
    """The identity service the web UI signs people in through, with the test
    deployment's key (tests.api_tokens.KEY), which the world's API verifies."""
    key_file = key_dir / "identity.pem"
    key_file.write_bytes(KEY.private_pem())  # signs what the world's API verifies
    key_file.chmod(0o600)
    settings = IdentitySettings(
        env="test", database_url=database_url, identity_signing_key_file=key_file
    )
    return create_identity_service(settings, pool)


#: A PNG's signature and a few bytes: what the photo check accepts as a PNG.
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
#: The part every region stocks (plenty: each scenario-14 call uses one).
PART = "PN-ISO-1"


def dispatch_settings(key_dir: Path) -> DispatchSettings:
    return DispatchSettings(dispatch_photo_dir=key_dir / "photos", dispatch_photo_max_bytes=4096)


def seed_job(dispatch: DispatchService, t: Tenant, to: str = "on_site") -> int:
    """A work order of ``t``'s site, taken as far as ``to`` (scheduled, assigned, on_site)
    with ``t``'s employee as its MOSIE; its id."""
    order = dispatch.create(t.region, t.site, "isolator_fault", "P2", "seeded job", "", "seed")
    if to == "scheduled":
        return order.id
    key = uuid.uuid4().hex
    dispatch.act(order.id, "assign", "seed", "operator", idempotency_key=key, technician=t.employee)
    if to == "assigned":
        return order.id
    for action in ("accept", "start_travel", "arrive"):
        dispatch.act(order.id, action, t.employee, "mosie", idempotency_key=uuid.uuid4().hex)
    return order.id


def seed_offer(
    pool: Pool, job: int, starts: datetime, *, offered_at: datetime | None = None
) -> None:
    """An offer of one 2-hour window from ``starts`` for ``job``, good for 24 h from
    ``offered_at`` (default now), stored as the service stores one (the seeded sites
    have no place for the service to judge travel by)."""
    at = offered_at or utc_now()
    window = Window(
        starts=starts,
        ends=starts + timedelta(hours=2),
        label="the seeded window",
        confirm_by=starts - timedelta(hours=2),
    )
    offer = Offer(
        job_id=str(job), offered_at=at, expires_at=at + timedelta(hours=24), windows=(window,)
    )
    with pool.connection() as conn:
        insert_offer(conn, offer, "UTC", "offer")


def _dispatch_world(dispatch: DispatchService, tenants: dict[str, Tenant]) -> dict[str, Tenant]:
    """Each tenant's site known to dispatch (as the registry's ``gateway.registered``
    handler records it), the parts stock of each region, and a job on site with a photo."""
    for t in tenants.values():
        reg = GatewayRegistration(
            gateway_id=t.gateway, site_id=t.site, region=t.region,
            time_zone=ZONES[t.region], account_id=t.account,
        )  # fmt: skip
        dispatch.record_gateway(uuid.uuid4(), reg, utc_now())
    for region in {t.region for t in tenants.values()}:
        dispatch.add_stock(region, PART, 100_000, "DC isolator")
    seeded = {}
    for name, t in tenants.items():
        job = seed_job(dispatch, t)
        photo = dispatch.add_photo(job, PNG, "image/png", t.employee, uuid.uuid4().hex)
        seeded[name] = replace(t, work_order=job, photo=photo.id)
    return seeded


@contextmanager
def api_world(database_url: str, key_dir: Path) -> Iterator[World]:
    migrate(database_url)
    pool = create_pool(database_url, max_size=8, name="test-api-world")
    # No account of the world is on a plan: a cycle started here bills nothing, at once.
    cycles = create_cycle_runner(pool)
    try:
        registry = RegistryService(pool)
        accounts = {"A": Region.AU, "B": Region.AU, "E": Region.ES}
        sites: dict[str, tuple[int, str, str]] = {}
        for name, region in accounts.items():
            site = registry.add_site(
                SiteIn(name=f"site {name}", region=region, time_zone=ZONES[region])
            )
            account = _customer(CustomersService(pool), region, name, site.id)
            with pool.connection() as conn:  # RegistryService.set_site_account, later
                conn.execute(
                    "UPDATE registry.sites SET account_id = %s WHERE id = %s", (account, site.id)
                )
            gateway = f"gw-{name.lower()}-{uuid.uuid4().hex[:6]}"
            registry.add_gateway(GatewayIn(id=gateway, site_id=site.id))
            sites[name] = (site.id, account, gateway)
        deliver_gateway_events(pool)  # ingest learns the gateways
        pipeline = IngestPipeline(pool, TelemetryStore(pool))
        outcome = pipeline.process([_telemetry(accounts[n], sites[n][2]) for n in accounts])
        assert outcome.readings_added == READINGS * len(accounts)
        deliver_ingest_events(pool, registry)  # the registry learns the devices

        key_file = key_dir / "cloud.pem"
        write_key_file(key_file, demo=True)
        settings = ConfigSettings(database_url=database_url, signing_key_file=key_file)
        config: ConfigService = create_config_service(settings, pool)
        tracker = create_tracker(settings, pool)
        tenants: dict[str, Tenant] = {}
        for name, region in accounts.items():
            site_id, account, gateway = sites[name]
            tracker.apply_birth(uuid.uuid4(), region.value, utc_now(), _birth(gateway))
            command = config.send_command(gateway, CommandIn(name="ping", reason="seed"), "seed")
            for v_ref in (230, 235):  # two versions: a rollback has somewhere to go
                config.set_config(
                    gateway,
                    ConfigIn(
                        profile=profile(region), devices={INVERTER: {"v_ref": v_ref}}, reason="s"
                    ),
                    "seed",
                )
            device = registry.device_id_for(gateway, DEVICE)
            assert device is not None
            employee = f"E0000{len(tenants) + 1}"
            EmployeeService(pool).add(employee_in(employee, region))
            alarm = AlarmStore(pool).raise_condition(
                AlarmCondition(
                    rule_id="isolator_open", site_id=site_id, gateway_id=gateway,
                    region=region, severity=Severity.HIGH, account_id=account,
                    title=f"Isolator open at site {name}",
                )
            )  # fmt: skip
            tenants[name] = Tenant(
                name, region, account, site_id, gateway, device, command.id, employee, alarm.id
            )
        portal = PortalSettings(**api_settings(database_url).model_dump())
        identity = identity_service(database_url, key_dir, pool)
        web = create_web_ui(portal, pool, identity=identity)
        dispatch = dispatch_settings(key_dir)
        app = create_api(
            portal, pool, config=config, web=web, dispatch=dispatch, billing_cycles=cycles
        )
        service = DispatchService(pool, photos=FilesystemPhotoStorage(dispatch.dispatch_photo_dir))
        tenants = _dispatch_world(service, tenants)
        tenants = {
            n: replace(
                t,
                bill=seed_bill(pool, t, k),
                cycle=seed_cycle(pool, t.region),
                ticket=seed_ticket(pool, t),
            )
            for k, (n, t) in enumerate(tenants.items())
        }
        yield World(app, pool, tenants, identity, web, service, config, cycles)
    finally:
        cycles.close(timeout_s=30)
        pool.close()


def seed_ticket(pool: Pool, t: Tenant, **given: Any) -> int:
    """A support ticket of ``t``'s account (a question unless ``given`` says otherwise),
    raised by the customer and answered once by support (state open). Its id."""
    service = create_support_service(pool)
    fields = {"kind": "question", "subject": f"s14 ticket of {t.name}", **given}
    ticket = service.create(
        t.region, t.account, TicketIn.model_validate(fields), Actor(f"user-{t.name}", "customer")
    )
    service.reply(ticket.id, Scope.of_region(t.region), Actor(t.employee, "support"), "hello")
    return ticket.id


def seed_cycle(pool: Pool, region: Region, first_day: str = "2020-01-01") -> int:
    """A billed monthly cycle of ``region`` (no invoice, one skipped site) — the pages' and
    the authorisation tests need a cycle to name, the billing tests run real ones. Its id."""
    with pool.connection() as conn:
        conn.execute(
            "INSERT INTO billing.cycles (region, first_day, last_day, state, run_by,"
            " finished_at, sites_total, sites_done, skipped) VALUES (%s, %s::date,"
            " (%s::date + interval '1 month' - interval '1 day')::date, 'billed', 'seed',"
            " now(), 1, 1, %s) ON CONFLICT (region, first_day, last_day) DO NOTHING",
            (region.value, first_day, first_day, Jsonb([{"site_id": 1, "reason": "seeded"}])),
        )
        row = conn.execute(
            "SELECT id FROM billing.cycles WHERE region = %s AND first_day = %s"
            " AND state = 'billed'",
            (region.value, first_day),
        ).fetchone()
    assert row is not None
    return int(row[0])


def seed_bill(pool: Pool, t: Tenant, k: int) -> str:
    """An invoice of ``t``'s account (:func:`insert_invoice`) with 10.00 of it paid."""
    number = f"{t.region.name}-2026-{k + 1:07d}"
    invoice_id = insert_invoice(pool, t.region, t.account, t.site, number)
    currency = CURRENCY[t.region]
    with pool.connection() as conn:
        pay = conn.execute(
            "INSERT INTO billing.payments (region, account_id, amount, currency,"
            " received_at, provider, provider_reference) VALUES"
            " (%s, %s, 10.00, %s, '2026-11-10T00:00Z', 'bank', %s) RETURNING id",
            (t.region.value, t.account, currency, f"seed-{number}"),
        ).fetchone()
        assert pay is not None
        conn.execute(
            "INSERT INTO billing.allocations (payment_id, invoice_id, amount, allocated_at)"
            " VALUES (%s, %s, 10.00, '2026-11-10T00:00Z')",
            (pay[0], invoice_id),
        )
    return number


CURRENCY = {Region.AU: "AUD", Region.US: "USD", Region.ES: "EUR"}


def insert_invoice(pool: Pool, region: Region, account: str, site: int, number: str) -> int:
    """An October 2026 invoice of ``account``'s ``site`` written as the billing service
    stores one (the pages' and the authorisation tests need a document, not a rating:
    the billing tests rate real ones): 100 kWh at 0.25 = 25.00 net, 10 % tax 2.50,
    27.50 gross, issued 2 November, due 16 November. Its id."""
    with pool.connection() as conn:
        row = conn.execute(
            "INSERT INTO billing.invoices (number, kind, region, account_id, site_id,"
            " first_day, last_day, plan_code, tariff_zone, time_zone, contract_start,"
            " currency, net, tax, gross, issued_at, issue_date, due_date) VALUES"
            " (%s, 'invoice', %s, %s, %s, '2026-10-01', '2026-10-31', 'seed', 'seed',"
            " %s, '2026-01-01', %s, 25.00, 2.50, 27.50, '2026-11-02T03:00Z',"
            " '2026-11-02', '2026-11-16') RETURNING id",
            (number, region.value, account, site, ZONES[region], CURRENCY[region]),
        ).fetchone()
        assert row is not None
        conn.execute(
            "INSERT INTO billing.invoice_lines (invoice_id, line_no, description_key,"
            " first_day, last_day, period, kwh, unit_price, net, tax, tax_percent) VALUES"
            " (%s, 1, 'energy', '2026-10-01', '2026-10-31', 'flat', 100, 0.25, 25.00,"
            " 'gst', 10)",
            (row[0],),
        )
        conn.execute(
            "INSERT INTO billing.invoice_taxes (invoice_id, tax, percent, base, amount)"
            " VALUES (%s, 'gst', 10, 25.00, 2.50)",
            (row[0],),
        )
    return int(row[0])


@contextmanager
def private_world(server_url: str, key_dir: Path) -> Iterator[World]:
    """:func:`api_world` on a private database of the tests' server, dropped afterwards."""
    with private_database(server_url) as url, api_world(url, key_dir) as built:
        yield built


def page_client(world: World, role: Role, *, subject: str | None = None) -> TestClient:
    """A web-UI client signed in as ``role`` in au — account A's customer, account A's
    employee as the MOSIE — holding the CSRF cookie (see :func:`form_fields`)."""
    a = world.tenants["A"]
    token = mint_token(
        role,
        region=Region.AU,
        subject=subject,
        account_id=a.account if role == Role.CUSTOMER else None,
        employee_no=a.employee if role == Role.MOSIE else None,
    )
    client = TestClient(world.app, base_url="https://testserver", raise_server_exceptions=False)
    client.cookies.set("potr_session", token)
    client.get("/login")  # the CSRF cookie
    return client


def form_fields(client: TestClient, **fields: object) -> dict[str, object]:
    """A page form's fields with the client's CSRF token."""
    return {"csrf_token": client.cookies.get("potr_csrf"), **fields}
