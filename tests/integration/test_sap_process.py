"""The SAP integration as its process runs it (``potr sap run``'s parts: ``cloud_events``
with ``sap_wake`` and ``run_sap``), on real PostgreSQL and the fake SAP over HTTP: an
account the customers service creates becomes one SAP business partner through the
customers outbox, the event bus, the SAP consumer and the exporter; ``potr sap status``
shows the queue.

What SAP holds is read from the fake directly (plain HTTP), not through the adapter.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from cloud.adapters.postgres import Connection, ConnectionPool, create_pool
from cloud.bootstrap import cloud_events, run_sap
from cloud.customers import AccountIn, CustomersService
from cloud.migrate import migrate
from cloud.sap import SapSettings
from cloud.sap.documents import partner_external_id
from contracts.topics import Region
from potr.cli import app
from tests.fakes.fake_sap import FakeSap, running_fake_sap
from tests.waiting import until

pytestmark = pytest.mark.integration
Pool = ConnectionPool[Connection[Any]]


@pytest.fixture
def pool(database_url: str) -> Iterator[Pool]:
    migrate(database_url, schemas={"customers", "sap"})
    pool = create_pool(database_url, max_size=6, name="sap-process-test")
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture
def fake() -> Iterator[FakeSap]:
    with running_fake_sap("--seed", "5") as fake:
        yield fake


def _partners(fake: FakeSap, account_id: str) -> list[dict[str, Any]]:
    return fake.odata(
        "API_BUSINESS_PARTNER",
        "A_BusinessPartner",
        **{"$filter": f"BusinessPartnerIDByExtSystem eq '{partner_external_id(account_id)}'"},
    )


async def test_a_new_customer_becomes_one_sap_business_partner(
    pool: Pool, fake: FakeSap, database_url: str
) -> None:
    settings = SapSettings(base_url=fake.base_url, poll_s=0.05, retry_first_s=0.05)
    stop = asyncio.Event()
    wake = asyncio.Event()
    async with cloud_events(pool, sap_wake=wake.set, outboxes=("customers",)):
        runner = asyncio.create_task(run_sap(settings, pool, stop, wake))
        try:
            account = await asyncio.to_thread(
                CustomersService(pool).add_account,
                Region.AU,
                AccountIn(name="Harbour View Strata", email="strata@example.com"),
            )
            await until(
                lambda: asyncio.to_thread(lambda: len(_partners(fake, account.id)) == 1),
                within_s=20,
                what="the customer as an SAP business partner",
                poll_s=0.1,
            )
        finally:
            stop.set()
            await asyncio.wait_for(runner, 15)
    held = _partners(fake, account.id)
    assert len(held) == 1
    assert "Harbour View Strata" in str(held[0])

    status = CliRunner().invoke(app, ["sap", "status"], env={"POTR_DATABASE_URL": database_url})
    assert status.exit_code == 0, status.output
    assert "partners" in status.output
    assert "exported" in status.output
