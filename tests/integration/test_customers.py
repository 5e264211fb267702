"""The customers service against a real PostgreSQL: accounts, contacts, installation
records, warranties, meter replacements with both registers, the schema's own CHECKs,
the routes with the portal's error answers, and a site linked to an account (the
registry's ``sites.account_id`` and the ``gateway.updated`` events that carry it)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from cloud.adapters.postgres import Connection, ConnectionPool, create_pool
from cloud.bootstrap import link_site
from cloud.customers import (
    AccountIn,
    AccountPatch,
    ConflictError,
    ContactIn,
    CustomersService,
    InstallationIn,
    MeterReplacementIn,
    NotFoundError,
    RefusedError,
    WarrantyIn,
    create_router,
)
from cloud.events.types import GatewayRegistration
from cloud.identity import Role
from cloud.portal.auth import access_dependencies
from cloud.portal.authz import CallerData
from cloud.portal.errors import add_error_handlers
from cloud.registry import GatewayIn, RegistryService, SiteIn
from cloud.registry import NotFoundError as SiteNotFound
from contracts.topics import Region
from potr.cli import app as cli
from tests.integration.api_world import migrated_database

pytestmark = pytest.mark.integration

Pool = ConnectionPool[Connection[Any]]
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
USER = "usr_" + "a" * 32


#: What a test writes, emptied before the next one (ids start at 1 again).
TABLES = (
    "customers.accounts, customers.contacts, customers.installations,"
    " customers.device_warranties, customers.meter_replacements, customers.outbox,"
    " registry.sites, registry.gateways, registry.devices, registry.outbox"
)


@pytest.fixture(scope="module")
def migrated_url(postgres_server_url: str) -> Iterator[str]:
    """One migrated database for the module (migrating every service costs ~1 s)."""
    with migrated_database(postgres_server_url) as url:
        yield url


@pytest.fixture
def database_url(migrated_url: str) -> str:
    """The module's database, emptied of what earlier tests wrote."""
    with psycopg.connect(migrated_url) as conn:
        conn.execute(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE")
    return migrated_url


@pytest.fixture
def pool(database_url: str) -> Iterator[Pool]:
    pool = create_pool(database_url, max_size=2, name="test-customers")
    yield pool
    pool.close()


@pytest.fixture
def customers(pool: Pool) -> CustomersService:
    return CustomersService(pool, clock=lambda: NOW)


def _query(database_url: str, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(sql, params).fetchall()


def _outbox(database_url: str, schema: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        (name, payload)
        for name, payload in _query(
            database_url, f"SELECT name, payload FROM {schema}.outbox ORDER BY id"
        )
    ]


def _installation(**changes: Any) -> InstallationIn:
    fields: dict[str, Any] = {
        "pv_kwp": "6.645",
        "tilt_deg": "22.5",
        "azimuth_deg": "5",
        "battery_kwh": "13.5",
        "network_operator": "Ausgrid",
        "tariff_zone": "nsw",
        "installed_on": "2025-11-03",
        "warranty_until": "2035-11-03",
        "billing_meter": "MTR-0001",
        "grid_meter": "GRID-0001",
    }
    return InstallationIn.model_validate(fields | changes)


def _swap(**changes: Any) -> MeterReplacementIn:
    fields: dict[str, Any] = {
        "old_serial": "MTR-0001",
        "new_serial": "MTR-0002",
        "replaced_at": "2026-02-10T09:30:00+11:00",
        "old_register_kwh": "123456789.123",
        "new_register_kwh": "0.007",
    }
    return MeterReplacementIn.model_validate(fields | changes)


# -- accounts and contacts ------------------------------------------------------------------
def test_accounts_are_created_read_changed_and_closed_in_their_region(
    customers: CustomersService, database_url: str
) -> None:
    jo = customers.add_account(
        Region.AU, AccountIn(name="Jo", email="Jo@Example.com", user_id=USER)
    )
    assert (jo.region, jo.email, jo.status, jo.plan_code) == (
        Region.AU,
        "jo@example.com",
        "active",
        None,
    )
    assert customers.get_account(jo.id, Region.AU) == jo
    assert customers.get_account(jo.id, Region.ES) is None  # another region's API: not found
    with pytest.raises(ConflictError, match="already has an account"):
        customers.add_account(
            Region.AU, AccountIn(name="Jo 2", email="jo@example.com", user_id=USER)
        )
    customers.add_account(Region.ES, AccountIn(name="Ana", email="ana@example.es"))
    assert [a.id for a in customers.list_accounts(Region.AU)] == [jo.id]
    assert len(customers.list_accounts()) == 2

    gold = customers.update_account(jo.id, AccountPatch(plan_code="ppa-gold"), Region.AU)
    assert (gold.plan_code, gold.name) == ("ppa-gold", "Jo")
    with pytest.raises(NotFoundError):
        customers.update_account(jo.id, AccountPatch(plan_code="x"), Region.US)
    closed = customers.update_account(jo.id, AccountPatch.model_validate({"status": "closed"}))
    assert closed.status == "closed"
    with pytest.raises(ConflictError, match="reopened"):
        customers.update_account(jo.id, AccountPatch.model_validate({"status": "active"}))

    events = _outbox(database_url, "customers")
    assert [n for n, _ in events] == [
        "customer.created",
        "customer.created",
        "customer.updated",
        "customer.updated",
    ]
    assert events[2][1]["plan_code"] == "ppa-gold"
    assert events[3][1]["status"] == "closed"


def test_contacts_have_one_primary_and_are_removed_by_id(customers: CustomersService) -> None:
    acc = customers.add_account(Region.US, AccountIn(name="Kai", email="kai@example.com"))
    first = customers.add_contact(
        Region.US, acc.id, ContactIn(name="Kai", phone="+18085550100", primary=True)
    )
    with pytest.raises(ConflictError, match="primary"):
        customers.add_contact(
            Region.US, acc.id, ContactIn(name="Lee", email="l@x.com", primary=True)
        )
    second = customers.add_contact(
        Region.US, acc.id, ContactIn(name="Lee", email="l@x.com", role="billing")
    )
    assert [c.id for c in customers.list_contacts(Region.US, acc.id)] == [first.id, second.id]
    with pytest.raises(NotFoundError):
        customers.list_contacts(Region.AU, acc.id)
    customers.remove_contact(Region.US, acc.id, first.id)
    with pytest.raises(NotFoundError):
        customers.remove_contact(Region.US, acc.id, first.id)
    assert [c.name for c in customers.list_contacts(Region.US, acc.id)] == ["Lee"]


# -- installation, warranties, meter replacements -------------------------------------------
def test_an_installation_record_keeps_exact_decimals_and_its_billing_meter(
    customers: CustomersService,
) -> None:
    record, created = customers.put_installation(Region.AU, 7, _installation())
    assert created
    assert (record.pv_kwp, record.tilt_deg, record.battery_kwh) == (
        Decimal("6.645"),
        Decimal("22.5"),
        Decimal("13.500"),  # numeric(8, 3): the same number, at the column's scale
    )
    assert (record.tariff_zone, record.grid_meter) == ("NSW", "GRID-0001")
    again, created = customers.put_installation(Region.AU, 7, _installation(pv_kwp="8.2"))
    assert (created, again.pv_kwp) == (False, Decimal("8.200"))
    with pytest.raises(ConflictError, match="meter replacement"):
        customers.put_installation(Region.AU, 7, _installation(billing_meter="MTR-0009"))
    with pytest.raises(RefusedError):
        customers.put_installation(Region.AU, 8, _installation(tariff_zone="HI"))
    with pytest.raises(RefusedError) as same_meter:
        customers.put_installation(Region.AU, 8, _installation(grid_meter="MTR-0001"))
    assert same_meter.value.field == "grid_meter"
    assert customers.get_installation(Region.AU, 8) is None
    # The grid meter changes by a plain update; a us site (billing production) has none.
    moved, _ = customers.put_installation(Region.AU, 7, _installation(grid_meter="GRID-0002"))
    assert moved.grid_meter == "GRID-0002"
    us_site, _ = customers.put_installation(
        Region.US, 7, _installation(tariff_zone="CA", grid_meter=None)
    )
    assert us_site.grid_meter is None
    assert customers.get_installation(Region.ES, 7) is None  # (region, site id) names a site


def test_a_regions_installations_are_listed_by_site_in_keyset_pages(
    customers: CustomersService,
) -> None:
    for site in (9, 3, 5):
        customers.put_installation(Region.AU, site, _installation(billing_meter=f"MTR-{site}"))
    customers.put_installation(Region.US, 4, _installation(tariff_zone="CA", grid_meter=None))
    first = customers.list_installations(Region.AU, limit=2)
    assert [(r.site_id, r.billing_meter) for r in first] == [(3, "MTR-3"), (5, "MTR-5")]
    rest = customers.list_installations(Region.AU, after_site=5, limit=2)
    assert [r.site_id for r in rest] == [9]
    assert customers.list_installations(Region.AU, after_site=9) == []


def test_device_warranties_belong_to_a_recorded_installation(customers: CustomersService) -> None:
    with pytest.raises(NotFoundError):
        customers.put_warranty(
            Region.AU, 7, "INV-1", WarrantyIn(kind="inverter", warranty_until="2036-01-01")
        )
    customers.put_installation(Region.AU, 7, _installation())
    customers.put_warranty(
        Region.AU, 7, "INV-1", WarrantyIn(kind="inverter", warranty_until="2036-01-01")
    )
    customers.put_warranty(
        Region.AU, 7, "BAT-1", WarrantyIn(kind="battery", warranty_until="2035-06-30")
    )
    customers.put_warranty(
        Region.AU, 7, "INV-1", WarrantyIn(kind="inverter", warranty_until="2037-01-01")
    )
    found = customers.list_warranties(Region.AU, 7)
    assert [(w.serial, w.kind, str(w.warranty_until)) for w in found] == [
        ("BAT-1", "battery", "2035-06-30"),
        ("INV-1", "inverter", "2037-01-01"),
    ]


def test_a_meter_replacement_records_both_registers_and_moves_the_billing_meter(
    customers: CustomersService, database_url: str
) -> None:
    with pytest.raises(NotFoundError):
        customers.record_meter_replacement(Region.AU, 7, _swap())
    customers.put_installation(Region.AU, 7, _installation())
    swap = customers.record_meter_replacement(Region.AU, 7, _swap())
    assert (swap.old_register_kwh, swap.new_register_kwh) == (
        Decimal("123456789.123"),
        Decimal("0.007"),
    )
    assert swap.replaced_at == datetime(2026, 2, 9, 22, 30, tzinfo=UTC)  # 09:30 at +11:00
    installation = customers.get_installation(Region.AU, 7)
    assert installation is not None
    assert (installation.billing_meter, installation.grid_meter) == ("MTR-0002", "GRID-0001")
    with pytest.raises(ConflictError, match="grid meter"):
        customers.record_meter_replacement(
            Region.AU, 7, _swap(old_serial="MTR-0002", new_serial="GRID-0001",
                                replaced_at="2026-02-20T00:00:00Z")
        )  # fmt: skip

    # The old meter is no longer in place; the next swap starts from the new one.
    with pytest.raises(ConflictError, match="MTR-0002"):
        customers.record_meter_replacement(Region.AU, 7, _swap(new_serial="MTR-0003"))
    with pytest.raises(RefusedError, match="previous meter replacement"):
        customers.record_meter_replacement(
            Region.AU, 7, _swap(old_serial="MTR-0002", new_serial="MTR-0003",
                                replaced_at="2026-01-01T00:00:00Z")
        )  # fmt: skip
    customers.record_meter_replacement(
        Region.AU, 7, _swap(old_serial="MTR-0002", new_serial="MTR-0003",
                            replaced_at="2026-02-28T00:00:00Z", old_register_kwh="812.5",
                            new_register_kwh="0")
    )  # fmt: skip
    chain = customers.list_meter_replacements(Region.AU, 7)
    assert [(r.old_serial, r.new_serial) for r in chain] == [
        ("MTR-0001", "MTR-0002"),
        ("MTR-0002", "MTR-0003"),
    ]

    [(recorded, array), (name, payload), _] = _outbox(database_url, "customers")
    # The installation record went out first (for alerts' clear-sky expectation).
    assert recorded == "site.installation_changed"
    assert (array["site_id"], array["pv_kwp"], array["tilt_deg"]) == (
        7, str(_installation().pv_kwp), str(_installation().tilt_deg)
    )  # fmt: skip
    assert name == "site.meter_replaced"
    # Exact in the event too: decimals travel as strings, never through a float.
    assert (payload["old_register_kwh"], payload["new_register_kwh"]) == ("123456789.123", "0.007")
    assert (payload["site_id"], payload["region"], payload["new_serial"]) == (7, "au", "MTR-0002")


def test_the_schema_refuses_what_the_api_would_whatever_path_writes(
    customers: CustomersService, database_url: str
) -> None:
    acc = customers.add_account(Region.AU, AccountIn(name="Jo", email="jo@example.com"))
    customers.put_installation(Region.AU, 7, _installation())
    good = (
        "INSERT INTO customers.installations (region, site_id, pv_kwp, tilt_deg, azimuth_deg,"
        " battery_kwh, network_operator, tariff_zone, installed_on, warranty_until,"
        " billing_meter, grid_meter)"
        " VALUES ('au', %s, %s, %s, %s, %s, 'Ausgrid', 'NSW', %s, %s, %s, %s)"
    )
    row = [9, "6.6", "20", "0", "0", "2025-01-01", "2035-01-01", "M1", "G1"]
    refused = [
        (2, "0"),  # pv_kwp must be > 0
        (2, "NaN"),  # numeric takes NaN unless checked
        (3, "90.5"),  # tilt
        (4, "360.5"),  # azimuth
        (5, "-1"),  # battery
        (6, "1989-12-31"),  # installed_on
        (7, "2024-12-31"),  # warranty before installation
        (8, "../x"),  # billing meter
        (9, "../x"),  # grid meter
        (9, "M1"),  # the grid meter is another meter than the billing meter
    ]
    for index, value in refused:
        with pytest.raises(psycopg.errors.CheckViolation):
            _query(database_url, good, [*row[: index - 1], value, *row[index:]])
    accepted = good + " RETURNING grid_meter"
    assert _query(database_url, accepted, [*row[:8], None]) == [(None,)]  # no grid meter
    for statement, params in [
        (
            "INSERT INTO customers.meter_replacements (region, site_id, old_serial, new_serial,"
            " replaced_at, old_register_kwh, new_register_kwh)"
            " VALUES ('au', 7, 'A', 'A', now(), 1, 0)",
            (),
        ),
        (
            "INSERT INTO customers.meter_replacements (region, site_id, old_serial, new_serial,"
            " replaced_at, old_register_kwh, new_register_kwh)"
            " VALUES ('au', 7, 'A', 'B', now(), -1, 0)",
            (),
        ),
        (
            "INSERT INTO customers.contacts (id, account_id, name, role)"
            " VALUES (5, %s, 'X', 'owner')",
            (acc.id,),
        ),
        ("UPDATE customers.accounts SET id = 'acc_1' WHERE id = %s", (acc.id,)),
        ("UPDATE customers.accounts SET status = 'gone' WHERE id = %s", (acc.id,)),
    ]:
        with pytest.raises(psycopg.errors.CheckViolation):
            _query(database_url, statement, params)


# -- the routes over the database -----------------------------------------------------------
def _caller(token: str) -> CallerData:
    """A stand-in token: ``operator``, ``mosie`` (of au) or ``customer:<account id>``."""
    role, _, account = token.partition(":")
    return CallerData(token, Role(role), Region.AU, account_id=account or None)


def test_the_routes_answer_with_the_portals_error_statuses(customers: CustomersService) -> None:
    known_sites = {(Region.AU, 7)}  # the registry's answer: site 7 of au, no account's
    app = FastAPI()
    add_error_handlers(app)
    router = create_router(
        customers,
        access=access_dependencies(_caller),
        site_in_scope=lambda scope, site: (
            not scope.by_account and (scope.region, site) in known_sites
        ),
    )
    app.include_router(router, prefix="/api/v1/{region}")
    http = TestClient(app, headers={"Authorization": "Bearer operator"})
    body = _installation().model_dump(mode="json")

    created = http.post("/api/v1/au/accounts", json={"name": "Jo", "email": "jo@example.com"})
    assert created.status_code == 201
    account = created.json()["id"]
    assert http.get(f"/api/v1/au/accounts/{account}").json()["email"] == "jo@example.com"
    assert http.get(f"/api/v1/es/accounts/{account}").status_code == 404
    assert http.put("/api/v1/au/sites/8/installation", json=body).status_code == 404
    assert http.put("/api/v1/au/sites/7/installation", json=body).status_code == 201
    assert http.put("/api/v1/au/sites/7/installation", json=body).status_code == 200
    moved = http.put("/api/v1/au/sites/7/installation", json=body | {"billing_meter": "M9"})
    assert moved.status_code == 409
    zone = http.put("/api/v1/au/sites/7/installation", json=body | {"tariff_zone": "HI"})
    assert zone.status_code == 422
    assert zone.json()["detail"]["field"] == "tariff_zone"
    same = http.put("/api/v1/au/sites/7/installation", json=body | {"grid_meter": "MTR-0001"})
    assert same.status_code == 422
    assert same.json()["detail"]["field"] == "grid_meter"
    bad = http.put("/api/v1/au/sites/7/installation", json=body | {"grid_meter": "G 1"})
    assert bad.status_code == 422
    assert http.get("/api/v1/au/sites/7/installation").json()["grid_meter"] == "GRID-0001"
    swap = _swap().model_dump(mode="json")
    answer = http.post("/api/v1/au/sites/7/meter-replacements", json=swap)
    assert answer.status_code == 201
    assert answer.json()["old_register_kwh"] == "123456789.123"
    listed = http.get("/api/v1/au/sites/7/meter-replacements").json()
    assert [r["new_serial"] for r in listed] == ["MTR-0002"]
    assert http.delete(f"/api/v1/au/accounts/{account}/contacts/1").status_code == 404

    # The portal's policy: a customer reads its own account only, writes nothing, and
    # reaches no site that is not its account's; a MOSIE reads no account.
    other = http.post("/api/v1/au/accounts", json={"name": "Al", "email": "al@example.com"})
    as_jo = {"Authorization": f"Bearer customer:{account}"}
    assert http.get(f"/api/v1/au/accounts/{account}", headers=as_jo).status_code == 200
    assert http.get(f"/api/v1/au/accounts/{other.json()['id']}", headers=as_jo).status_code == 404
    assert http.get(f"/api/v1/au/accounts/{account}/contacts", headers=as_jo).status_code == 200
    assert http.get("/api/v1/au/sites/7/installation", headers=as_jo).status_code == 404
    assert http.get("/api/v1/au/accounts", headers=as_jo).status_code == 403
    refused = http.patch(f"/api/v1/au/accounts/{account}", json={"name": "J"}, headers=as_jo)
    assert refused.status_code == 403
    as_mosie = {"Authorization": "Bearer mosie"}
    assert http.get(f"/api/v1/au/accounts/{account}", headers=as_mosie).status_code == 403
    assert TestClient(app).get(f"/api/v1/au/accounts/{account}").status_code == 401


# -- linking a site to its account (registry + customers, composed) --------------------------
def test_linking_a_site_sets_its_account_and_tells_its_gateways(
    pool: Pool, customers: CustomersService, database_url: str
) -> None:
    registry = RegistryService(pool)
    site = registry.add_site(SiteIn(name="Manly", region="au", time_zone="Australia/Sydney"))
    for gw in ("gw-cust-1", "gw-cust-2"):
        registry.add_gateway(GatewayIn(id=gw, site_id=site.id))
    jo = customers.add_account(Region.AU, AccountIn(name="Jo", email="jo@example.com"))
    ana = customers.add_account(Region.ES, AccountIn(name="Ana", email="ana@example.es"))

    with pytest.raises(ConflictError, match="region"):
        link_site(registry, customers, site.id, ana.id)
    with pytest.raises(SiteNotFound):
        link_site(registry, customers, 999, jo.id)
    with pytest.raises(NotFoundError):
        link_site(registry, customers, site.id, "acc_" + "f" * 32)
    linked = link_site(registry, customers, site.id, jo.id)
    assert linked.account_id == jo.id
    assert _query(
        database_url, "SELECT account_id FROM registry.sites WHERE id = %s", [site.id]
    ) == [(jo.id,)]
    registrations = [
        (name, GatewayRegistration.model_validate(payload))
        for name, payload in _outbox(database_url, "registry")
    ]
    assert [(n, r.gateway_id, r.account_id) for n, r in registrations] == [
        ("gateway.registered", "gw-cust-1", None),
        ("gateway.registered", "gw-cust-2", None),
        ("gateway.updated", "gw-cust-1", jo.id),
        ("gateway.updated", "gw-cust-2", jo.id),
    ]
    # A gateway added later is registered with the account already.
    registry.add_gateway(GatewayIn(id="gw-cust-3", site_id=site.id))
    name, payload = _outbox(database_url, "registry")[-1]
    assert (name, payload["account_id"]) == ("gateway.registered", jo.id)


def test_potr_customer_add_list_and_link_site(
    pool: Pool, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POTR_DATABASE_URL", database_url)
    site = RegistryService(pool).add_site(
        SiteIn(name="Hilo", region="us", time_zone="Pacific/Honolulu")
    )
    runner = CliRunner()
    added = runner.invoke(
        cli, ["customer", "add", "--name", "Kai", "--email", "kai@example.com", "--region", "us"]
    )
    assert added.exit_code == 0, added.output
    account = added.output.split()[1]
    assert account.startswith("acc_")
    listed = runner.invoke(cli, ["customer", "list", "--region", "us"])
    assert account in listed.output
    assert "kai@example.com" in listed.output
    linked = runner.invoke(
        cli, ["customer", "link-site", "--account", account, "--site", str(site.id)]
    )
    assert linked.exit_code == 0, linked.output
    assert _query(database_url, "SELECT account_id FROM registry.sites") == [(account,)]
    bad = runner.invoke(
        cli, ["customer", "add", "--name", "Kai", "--email", "nope", "--region", "us"]
    )
    assert bad.exit_code == 2
    assert "email" in bad.output
    missing = runner.invoke(cli, ["customer", "link-site", "--account", account, "--site", "999"])
    assert missing.exit_code == 1
    assert "999" in missing.output


def test_installation_records_are_announced_again_with_their_meters(
    customers: CustomersService, database_url: str
) -> None:
    for site in (7, 8, 9):
        customers.put_installation(
            Region.AU, site, _installation(billing_meter=f"SYS-{site}", grid_meter=f"G-{site}")
        )
    customers.put_installation(Region.ES, 10, _installation(tariff_zone="peninsula"))
    _query(database_url, "DELETE FROM customers.outbox RETURNING id")

    assert customers.announce_installations(Region.AU, page=2) == 3  # two pages
    announced = _outbox(database_url, "customers")
    assert [name for name, _ in announced] == ["site.installation_changed"] * 3
    assert [(p["site_id"], p["billing_meter"], p["grid_meter"]) for _, p in announced] == [
        (7, "SYS-7", "G-7"),
        (8, "SYS-8", "G-8"),
        (9, "SYS-9", "G-9"),
    ]
