"""The world the billing account and settlement tests share: a private database with
billing's schemas (plain telemetry store), US sites in Los Angeles on plan
``us-ppa-esc29`` with their meters' rows written, and the reads of what billing issued.

Plain functions and a context manager; each test module keeps its own module-scoped
``world`` fixture (the tests read the world, as they did). Nothing here holds state
from one test to the next.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any, Protocol

from cloud.adapters.postgres import create_pool
from cloud.customers import CustomersService
from cloud.migrate import migrate
from cloud.registry import RegistryService
from contracts.topics import Region
from tests.integration.api_world import private_database
from tests.integration.telemetry_world import Row, Store, add_devices, add_gateway
from tests.integration.test_billing_cycle import SCHEMAS, _site

__all__ = ["billing_store", "db_rows", "document_numbers", "seed_us_sites", "site_accounts"]

#: (rows written now, rows withheld) of a site's meter, from its name and device id.
MeterRows = Callable[[str, int], tuple[list[Row], list[Row]]]


class HasAccounts(Protocol):
    store: Store
    accounts: dict[str, str]


@contextmanager
def billing_store(server_url: str, name: str) -> Iterator[tuple[str, Store]]:
    """A private database on ``server_url`` with billing's schemas migrated (plain
    store) and a pool of 4 named ``name``: (its URL, the store)."""
    with private_database(server_url) as url:
        migrate(url, backend="plain", schemas=SCHEMAS)
        pool = create_pool(url, name=name, max_size=4)
        try:
            yield url, Store(pool, "plain")
        finally:
            pool.close()


def seed_us_sites(
    store: Store, names: Sequence[str], first_device: int, rows: MeterRows
) -> tuple[dict[str, int], dict[str, list[Row]]]:
    """A site per name (system meter ``SYS-<NAME>``, device ``first_device`` + its
    index, gateway ``gw-<name>``, installed 29 October 2026), its rows written on
    2 December and the store caught up then: (site ids, withheld rows) by name."""
    registry, customers = RegistryService(store.pool), CustomersService(store.pool)
    sites: dict[str, int] = {}
    withheld: dict[str, list[Row]] = {}
    for k, name in enumerate(names):
        serial = f"SYS-{name.upper()}"
        sites[name] = _site(
            registry, customers, Region.US, "America/Los_Angeles", "us-ppa-esc29", "CA",
            (serial, None), "2026-10-29",
        )  # fmt: skip
        with store.pool.connection() as conn:
            add_gateway(conn, f"gw-{name}", sites[name], "us", "America/Los_Angeles")
            add_devices(conn, f"gw-{name}", {serial: first_device + k})
        now, withheld[name] = rows(name, first_device + k)
        store.write(now, date(2026, 12, 2))
    store.catch_up(now=datetime(2026, 12, 2, tzinfo=UTC))
    return sites, withheld


def db_rows(store: Store, query: str, *args: Any) -> list[tuple[Any, ...]]:
    with store.pool.connection() as conn:
        return conn.execute(query, args).fetchall()


def site_accounts(store: Store, sites: Mapping[str, int]) -> dict[str, str]:
    """The account billed for each site (from its first invoice), by name."""
    return {
        name: db_rows(
            store, "SELECT account_id FROM billing.invoices WHERE site_id = %s LIMIT 1", site
        )[0][0]
        for name, site in sites.items()
    }


def document_numbers(world: HasAccounts, name: str, kind: str = "invoice") -> list[str]:
    """The account's documents of ``kind``, oldest first."""
    return [
        r[0]
        for r in db_rows(
            world.store,
            "SELECT number FROM billing.invoices WHERE account_id = %s AND kind = %s ORDER BY id",
            world.accounts[name],
            kind,
        )
    ]
