"""Support search against the real PostgreSQL (issue 15): customers by account name or
email (the customers service), sites by id, name, or a device's serial or local id (the
registry) — any case, the caller's ``%`` and ``_`` taken literally, one answer per site
with what matched, and only within the caller's scope."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from cloud.adapters.postgres import Connection, ConnectionPool, create_pool
from cloud.customers import AccountIn, CustomersService, RefusedError
from cloud.migrate import migrate
from cloud.registry import GatewayIn, RegistryService, Site, SiteIn, SiteMatch
from cloud.scope import Scope
from cloud.search import SearchRefused
from contracts.messages import DeviceInfo
from contracts.topics import Region
from tests.integration.api_world import private_database

pytestmark = pytest.mark.integration

Pool = ConnectionPool[Connection[Any]]
AU, ES = Scope.of_region(Region.AU), Scope.of_region(Region.ES)
#: Device keys as ingest would hand them out (au: 4n + 1, es: 4n + 3).
KEYS = {"SN-INV-1001": 5, "SN-BAT-7": 9, "SN-INV-2002": 13, "SN-INV-3003": 7}


@dataclass(frozen=True)
class World:
    customers: CustomersService
    registry: RegistryService
    accounts: dict[str, str]
    sites: dict[str, Site]


def _devices(registry: RegistryService, gateway: str, serials: dict[str, str]) -> None:
    """The devices a gateway's birth describes (local id -> serial), as the registry
    learns them from ingest's ``gateway.birth`` event."""
    devices = [
        DeviceInfo(device=local, endpoint="e", unit_id=1, models=[1], serial=serial)
        for local, serial in serials.items()
    ]
    assert registry.apply_gateway_birth(
        uuid.uuid4(), gateway, devices, {local: KEYS[local] for local in serials}
    )


def _build(pool: Pool) -> World:
    customers, registry = CustomersService(pool), RegistryService(pool)
    accounts = {
        name: customers.add_account(region, AccountIn(name=full, email=email)).id
        for name, region, full, email in (
            ("A", Region.AU, "Jane Citizen", "jane.citizen@example.com"),
            ("B", Region.AU, "Bob 100% Solar_Pty", "bob@solar.example"),
            ("C", Region.AU, "Mary Jane Watson", "mj1000@example.com"),
            ("E", Region.ES, "José Núñez", "jose@ejemplo.es"),
        )
    }
    sites: dict[str, Site] = {}
    for key, name, region, account in (
        ("bondi", "Bondi Beach House", Region.AU, "A"),
        ("manly", "Manly 100% Solar", Region.AU, "C"),
        ("madrid", "Madrid Centro", Region.ES, "E"),
        ("bare", "SN-INV", Region.AU, None),
    ):
        site = registry.add_site(SiteIn(name=name, region=region, time_zone="UTC"))
        if account is not None:
            site = registry.set_site_account(site.id, accounts[account])
        registry.add_gateway(GatewayIn(id=f"gw-{key}", site_id=site.id))
        sites[key] = site
    _devices(registry, "gw-bondi", {"SN-INV-1001": "INV1001X", "SN-BAT-7": "BAT-7-AB"})
    _devices(registry, "gw-manly", {"SN-INV-2002": "inv_2002"})
    _devices(registry, "gw-madrid", {"SN-INV-3003": "ES3003"})
    return World(customers, registry, accounts, sites)


@pytest.fixture(scope="module")
def world(postgres_server_url: str) -> Iterator[World]:
    with private_database(postgres_server_url) as url:
        migrate(url, schemas={"registry", "customers"})
        pool = create_pool(url, max_size=2, name="test-search")
        try:
            yield _build(pool)
        finally:
            pool.close()


def _found(matches: list[SiteMatch]) -> list[tuple[str, str, str]]:
    """(site name, field matched, value matched) of each answer."""
    return [(m.site.name, m.matched, m.value) for m in matches]


# -- accounts ------------------------------------------------------------------------------
def test_accounts_are_found_by_name_or_email_in_any_case(world: World) -> None:
    names = [a.name for a in world.customers.find_accounts(AU, "JANE")]
    assert names == ["Jane Citizen", "Mary Jane Watson"]  # the one starting with it first
    [exact] = world.customers.find_accounts(AU, "MJ1000@example.com")
    assert exact.id == world.accounts["C"]
    [jose] = world.customers.find_accounts(Scope.everything(), "núñez")
    assert jose.id == world.accounts["E"]


def test_percent_and_underscore_in_the_text_match_only_themselves(world: World) -> None:
    # As wildcards, "100%" would also find mj1000@ and "e_c" jane.citizen@.
    assert [a.name for a in world.customers.find_accounts(AU, "100%")] == ["Bob 100% Solar_Pty"]
    assert [a.name for a in world.customers.find_accounts(AU, "r_p")] == ["Bob 100% Solar_Pty"]
    assert world.customers.find_accounts(AU, "e_c") == []


def test_accounts_outside_the_scope_are_not_found(world: World) -> None:
    assert world.customers.find_accounts(ES, "jane") == []
    mine = Scope.of_account(Region.AU, world.accounts["A"])
    assert [a.id for a in world.customers.find_accounts(mine, "jane")] == [world.accounts["A"]]
    assert world.customers.find_accounts(Scope.of_account(Region.AU, None), "jane") == []


def test_account_search_is_bounded(world: World) -> None:
    assert len(world.customers.find_accounts(AU, "example", limit=1)) == 1
    with pytest.raises(RefusedError) as refused:
        world.customers.find_accounts(AU, "  ")
    assert refused.value.field == "text"
    with pytest.raises(RefusedError, match="limit"):
        world.customers.find_accounts(AU, "jane", limit=51)


# -- sites ---------------------------------------------------------------------------------
def test_a_site_is_found_by_a_devices_serial_with_its_account(world: World) -> None:
    [match] = world.registry.find_sites(AU, "inv1001")
    assert match == SiteMatch(
        site=world.sites["bondi"],
        matched="device_serial",
        value="INV1001X",
        device_id=KEYS["SN-INV-1001"],
    )
    assert match.site.account_id == world.accounts["A"]


def test_a_site_is_found_by_local_id_by_name_and_by_id(world: World) -> None:
    assert _found(world.registry.find_sites(AU, "sn-bat")) == [
        ("Bondi Beach House", "device_local_id", "SN-BAT-7")
    ]
    assert _found(world.registry.find_sites(AU, "BEACH")) == [
        ("Bondi Beach House", "site_name", "Bondi Beach House")
    ]
    manly = world.sites["manly"]
    [by_id, *_] = world.registry.find_sites(AU, f" {manly.id} ")
    assert (by_id.site, by_id.matched, by_id.value) == (manly, "site_id", str(manly.id))


def test_exact_matches_come_first_then_by_field_and_each_site_once(world: World) -> None:
    # "SN-INV" is one site's whole name and part of other sites' devices' local ids.
    assert _found(world.registry.find_sites(AU, "sn-inv")) == [
        ("SN-INV", "site_name", "SN-INV"),
        ("Bondi Beach House", "device_local_id", "SN-INV-1001"),
        ("Manly 100% Solar", "device_local_id", "SN-INV-2002"),
    ]
    # A serial ranks before a local id; Bondi's two devices make one answer.
    assert _found(world.registry.find_sites(Scope.everything(), "inv")) == [
        ("Bondi Beach House", "device_serial", "INV1001X"),
        ("Manly 100% Solar", "device_serial", "inv_2002"),
        ("Madrid Centro", "device_local_id", "SN-INV-3003"),
        ("SN-INV", "site_name", "SN-INV"),
    ]


def test_site_search_takes_percent_and_underscore_literally(world: World) -> None:
    assert _found(world.registry.find_sites(AU, "100%")) == [
        ("Manly 100% Solar", "site_name", "Manly 100% Solar")
    ]
    assert world.registry.find_sites(AU, "1_0") == []  # "_" as a wildcard finds INV1001X


def test_sites_outside_the_scope_are_not_found(world: World) -> None:
    assert world.registry.find_sites(ES, "bondi") == []
    assert _found(world.registry.find_sites(ES, "inv")) == [
        ("Madrid Centro", "device_local_id", "SN-INV-3003")
    ]
    account_c = Scope.of_account(Region.AU, world.accounts["C"])
    assert world.registry.find_sites(account_c, "bondi") == []
    assert [m.site.id for m in world.registry.find_sites(account_c, "sn-")] == [
        world.sites["manly"].id
    ]


def test_site_search_is_bounded(world: World) -> None:
    assert len(world.registry.find_sites(AU, "sn-", limit=1)) == 1
    with pytest.raises(SearchRefused, match="text"):
        world.registry.find_sites(AU, "x" * 101)
    with pytest.raises(ValueError, match="limit"):
        world.registry.find_sites(AU, "sn-", limit=0)
