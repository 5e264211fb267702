"""Billing's documents reach the customer (issue 19 point 4: "overdue reminders with
notifications"), on real servers: a real billing cycle and the real reminder run write
``invoice.issued`` and ``invoice.overdue`` to billing's outbox; the relay carries them
over the in-process bus to notify's handlers as the composition root wires them
(``cloud_events``); the customer's account arrives the same way from the customers
service's outbox; mail reaches an aiosmtpd sink through the delivery worker.

By hand (the accounts test's figures): a Los Angeles site from 29 October 2026 at
0.15000 USD/kWh, 0 % tax, 1000 Wh an hour: October is 72 kWh = 10.80, issued on
2 November, due 16 November; 7 days overdue on 23 November.

The Spanish customer's credit note is built here as billing publishes it
(``InvoiceIssued``): what notify says in Spanish is the subject, not billing's cycle.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from cloud.adapters.postgres import Connection, ConnectionPool, create_pool
from cloud.billing import BillingService
from cloud.bootstrap import cloud_events, create_billing_service
from cloud.customers import CustomersService
from cloud.events.bus import InProcessBus
from cloud.events.invoices import InvoiceIssued, invoice_issued_event
from cloud.events.outbox import Event
from cloud.events.runtime import EventRuntime
from cloud.events.types import CustomerAccount, customer_account_event
from cloud.events.users import USER_CREATED, UserChanged, user_event
from cloud.migrate import migrate
from cloud.notify import (
    DeliveryWorker,
    InboxService,
    NotificationService,
    NotifyHandlers,
    NotifySettings,
)
from cloud.registry import RegistryService
from contracts.topics import Region
from tests.integration.api_world import private_database
from tests.integration.notify_harness import MailSink, mail_sink
from tests.integration.telemetry_world import Store, add_devices, add_gateway
from tests.integration.test_billing_cycle import SCHEMAS, _site
from tests.integration.test_billing_settlement import Clock, _rows
from tests.waiting import until

pytestmark = pytest.mark.integration

Pool = ConnectionPool[Connection[Any]]
CAROL = "usr_" + "c" * 32  # the Los Angeles site's customer
ANA, ANA_ACC = "usr_" + "a" * 32, "acc_" + "a" * 32  # a customer in Spain


@dataclass
class World:
    pool: Pool
    bus: InProcessBus
    runtime: EventRuntime
    billing: BillingService
    clock: Clock
    inbox: InboxService
    worker: DeliveryWorker
    sink: MailSink
    account: str

    def titles(self, user_id: str) -> list[str]:
        return [e.title for e in self.inbox.list(user_id).entries]

    async def relayed(self, user_id: str, count: int) -> None:
        """Until ``user_id`` has ``count`` inbox entries (billing's relay woken)."""
        self.runtime.kick("billing")
        await until(lambda: len(self.titles(user_id)), 10, f"{count} entries", at_least=count)


def _count(pool: Pool, query: str) -> int:
    with pool.connection() as conn:
        row = conn.execute(query).fetchone()
    assert row is not None
    return int(row[0])


def _customer(user_id: str, region: Region, account_id: str) -> Event:
    changed = UserChanged(user_id=user_id, role="customer", home_region=region,
                          account_id=account_id)  # fmt: skip
    return user_event(USER_CREATED, changed, occurred_at=datetime(2026, 10, 1, tzinfo=UTC))


@pytest.fixture(scope="module")
def database(postgres_server_url: str) -> Iterator[str]:
    """Billing's and notify's schemas with one Los Angeles site and its meter's readings."""
    with private_database(postgres_server_url) as url:
        migrate(url, backend="plain", schemas=SCHEMAS | {"notify"})
        pool = create_pool(url, name="test-notify-bills-setup", max_size=2)
        try:
            store = Store(pool, "plain")
            registry, customers = RegistryService(pool), CustomersService(pool)
            site = _site(registry, customers, Region.US, "America/Los_Angeles",
                         "us-ppa-esc29", "CA", ("SYS-CAROL", None), "2026-10-29")  # fmt: skip
            with pool.connection() as conn:
                add_gateway(conn, "gw-carol", site, "us", "America/Los_Angeles")
                add_devices(conn, "gw-carol", {"SYS-CAROL": 900})
            store.write(_rows(900, None)[0], date(2026, 12, 2))
            store.catch_up(now=datetime(2026, 12, 2, tzinfo=UTC))
        finally:
            pool.close()
        yield url


@pytest.fixture
async def w(database: str) -> AsyncIterator[World]:
    pool = create_pool(database, name="test-notify-bills", max_size=6)
    try:
        with mail_sink() as (sink, port):
            async with _world(pool, database, port, sink) as world:
                yield world
    finally:
        pool.close()


@asynccontextmanager
async def _world(pool: Pool, url: str, port: int, sink: MailSink) -> AsyncIterator[World]:
    with pool.connection() as conn:
        row = conn.execute("SELECT id FROM customers.accounts").fetchone()
    assert row is not None
    clock = Clock(datetime(2026, 11, 2, 12, tzinfo=UTC))
    settings = NotifySettings(
        env="test",
        database_url=url,
        smtp_host="127.0.0.1",
        smtp_port=port,
        notify_attempt_timeout_s=5,
        notify_lease_s=60,
    )
    service = NotificationService(pool, settings, clock=clock)
    bus = InProcessBus()
    async with (
        cloud_events(
            pool,
            notify=NotifyHandlers(pool, service, clock=clock),
            bus=bus,
            outboxes=("billing", "customers"),
        ) as runtime,  # fmt: skip
        DeliveryWorker.open(pool, settings, rng=random.Random(5)) as worker,
    ):
        await bus.publish([_customer(CAROL, Region.US, row[0])])
        await until(lambda: _count(pool, "SELECT count(*) FROM notify.accounts"), 10,
                    "the customer's account in notify")  # fmt: skip
        billing = create_billing_service(pool, clock=clock)
        yield World(pool, bus, runtime, billing, clock, InboxService(pool, clock=clock),
                    worker, sink, row[0])  # fmt: skip
        assert bus.dead_letters == []


async def test_an_invoice_and_its_overdue_reminder_reach_the_customer_once(w: World) -> None:
    cycle = await asyncio.to_thread(
        w.billing.run_cycle, Region.US, date(2026, 10, 1), run_by="test"
    )
    (number,) = cycle.numbers
    await w.relayed(CAROL, 1)
    issued = f"Your invoice {number}: $10.80 due on Nov 16, 2026"
    assert w.titles(CAROL) == [issued]
    assert w.inbox.list(CAROL).entries[0].link == f"/ui/us/bills/{number}"

    w.clock.at = datetime(2026, 11, 23, 17, tzinfo=UTC)
    await asyncio.to_thread(w.billing.send_reminders, Region.US, date(2026, 11, 23))
    await w.relayed(CAROL, 2)
    overdue = f"Reminder: invoice {number} is overdue, $10.80 still owed"
    assert w.titles(CAROL) == [overdue, issued]

    # Redelivered (as after a lost ack): nobody is told twice.
    with w.pool.connection() as conn:
        rows = conn.execute("SELECT event_id, name, region, source, occurred_at, payload"
                            " FROM billing.outbox ORDER BY id").fetchall()  # fmt: skip
    again = [Event(id=r[0], name=r[1], region=r[2], source=r[3], occurred_at=r[4], payload=r[5])
             for r in rows]  # fmt: skip
    await w.bus.publish(again)
    assert len(w.titles(CAROL)) == 2

    report = await w.worker.deliver_due(w.clock.at + timedelta(minutes=1))
    assert (report.sent, report.failed) == (2, 0)
    mails = {m["Subject"]: m for m in w.sink.messages}
    assert set(mails) == {issued, overdue}
    body = mails[overdue].get_body(preferencelist=("plain",))
    assert body is not None
    assert "was due on Nov 16, 2026, 7 days ago, and $10.80 of it is still unpaid" in " ".join(
        body.get_content().split()
    )


async def test_a_credit_note_reaches_a_spanish_customer_in_spanish(w: World) -> None:
    account = CustomerAccount(account_id=ANA_ACC, region=Region.ES, name="Ana",
                              email="ana@example.es", plan_code="p", status="active")  # fmt: skip
    await w.bus.publish(
        [customer_account_event(account, created=True), _customer(ANA, Region.ES, ANA_ACC)]
    )
    note = InvoiceIssued.model_validate(
        {
            "kind": "credit_note", "number": "ES-2026-0000007", "region": "es",
            "account_id": ANA_ACC, "issue_date": "2026-12-05", "due_date": "2026-12-19",
            "currency": "EUR", "net": "2.85", "tax": "0.60", "gross": "3.45",
            "reference_number": "ES-2026-0000003",
            "lines": [{"description": "energy P1", "kwh": "19", "unit_price": "0.15",
                       "net": "2.85", "tax_rate": "0.21", "tax": "0.60"}],
        }
    )  # fmt: skip
    await w.bus.publish([invoice_issued_event(note)])
    (entry,) = w.inbox.list(ANA).entries
    assert entry.title == "Su nota de abono ES-2026-0000007: 3,45 € a su favor"
    assert entry.body.startswith(
        "Su nota de abono ES-2026-0000007 abona 3,45\xa0€ sobre ES-2026-0000003."
    )
    assert entry.link == "/ui/es/bills/ES-2026-0000007"
    assert not any("ES-2026" in title for title in w.titles(CAROL))
