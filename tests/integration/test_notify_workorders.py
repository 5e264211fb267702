"""Work orders become notifications (issue 17: "notifications reached the customer and
the MOSIE"), on real servers: people and accounts arrive as identity's and the customers
service's events, work-order transitions as dispatch's ``workorder.*`` events, all
through the in-process bus to notify's handlers as the composition root wires them
(``cloud_events``); mail reaches an aiosmtpd sink through the delivery worker.

The events are built here as dispatch publishes them (``WorkOrderChanged``): what notify
makes of them is the subject, not dispatch's lifecycle (tested with dispatch).
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from cloud.adapters.postgres import Connection, ConnectionPool, create_pool
from cloud.bootstrap import cloud_events
from cloud.events.bus import InProcessBus
from cloud.events.outbox import Event
from cloud.events.types import CustomerAccount, customer_account_event
from cloud.events.users import (
    USER_CREATED,
    UserChanged,
    UserContact,
    contact_event,
    user_event,
)
from cloud.events.workorders import (
    WORKORDER_APPOINTMENT_CONFIRMED,
    WORKORDER_CREATED,
    WorkOrderChanged,
    workorder_event_name,
)
from cloud.notify import (
    DeliveryWorker,
    InboxService,
    NotificationService,
    NotifyHandlers,
    NotifySettings,
)
from contracts.topics import Region
from tests.integration.notify_harness import MailSink, mail_sink, notify_database

pytestmark = pytest.mark.integration

Pool = ConnectionPool[Connection[Any]]
NOON = datetime(2026, 7, 1, 10, 0, tzinfo=UTC)

ANA, ANA_ACC = "usr_" + "a" * 32, "acc_" + "a" * 32  # the Spanish site's customer
BEA, BEA_ACC = "usr_" + "b" * 32, "acc_" + "b" * 32  # another Spanish customer
ROSA = "usr_" + "1" * 32  # MOSIE E-7 in Spain, with a work address
PACO = "usr_" + "2" * 32  # MOSIE E-8 in Spain
KYLIE = "usr_" + "3" * 32  # MOSIE E-7 in Australia (employee numbers are not global)
OPS = "usr_" + "4" * 32  # an operator in Spain
EVERYONE = (ANA, BEA, ROSA, PACO, KYLIE, OPS)
SITE, JOB = 41, 1234


@dataclass
class Clock:
    now: datetime = NOON

    def __call__(self) -> datetime:
        return self.now


@dataclass
class World:
    pool: Pool
    bus: InProcessBus
    inbox: InboxService
    worker: DeliveryWorker
    sink: MailSink

    async def publish(self, *events: Event) -> None:
        """Hand events to the bus as dispatch's relay would; returns once handled."""
        await self.bus.publish(list(events))

    def titles(self, user_id: str) -> list[str]:
        return [e.title for e in self.inbox.list(user_id).entries]

    def count(self, query: str) -> int:
        with self.pool.connection() as conn:
            row = conn.execute(query).fetchone()
        assert row is not None
        return int(row[0])


@pytest.fixture(scope="module")
def database(postgres_server_url: str) -> Iterator[str]:
    with notify_database(postgres_server_url) as url:
        yield url


@pytest.fixture
async def w(database: str) -> AsyncIterator[World]:
    tables = (
        "inbox, inbox_feed, deliveries, delivery_attempts, preferences, accounts, people,"
        " handled_events, work_orders"
    )
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("TRUNCATE " + ", ".join(f"notify.{t}" for t in tables.split(", ")))
    pool = create_pool(database, max_size=4, name="test-notify-workorders")
    clock = Clock()
    try:
        with mail_sink() as (sink, port):
            settings = NotifySettings(
                env="test",
                database_url=database,
                smtp_host="127.0.0.1",
                smtp_port=port,
                notify_attempt_timeout_s=5,
                notify_lease_s=60,
            )
            service = NotificationService(pool, settings, clock=clock)
            bus = InProcessBus()
            async with (
                cloud_events(
                    pool, notify=NotifyHandlers(pool, service, clock=clock), bus=bus, outboxes=()
                ),
                DeliveryWorker.open(pool, settings, rng=random.Random(3)) as worker,
            ):
                w = World(pool, bus, InboxService(pool, clock=clock), worker, sink)
                await _people(w)
                yield w
                assert bus.dead_letters == []
    finally:
        pool.close()


async def _people(w: World) -> None:
    def account(acc: str, email: str) -> Event:
        payload = CustomerAccount(
            account_id=acc, region=Region.ES, name=acc, email=email, plan_code="p", status="active"
        )
        return customer_account_event(payload, created=True)

    def user(user_id: str, role: str, region: Region, *, acc: str = "", emp: str = "") -> Event:
        changed = UserChanged(
            user_id=user_id,
            role=role,
            home_region=region,
            account_id=acc or None,
            employee_no=emp or None,
        )
        return user_event(USER_CREATED, changed, occurred_at=NOON - timedelta(days=1))

    await w.publish(
        account(ANA_ACC, "ana@example.es"),
        account(BEA_ACC, "bea@example.es"),
        user(ANA, "customer", Region.ES, acc=ANA_ACC),
        user(BEA, "customer", Region.ES, acc=BEA_ACC),
        user(ROSA, "mosie", Region.ES, emp="E-7"),
        user(PACO, "mosie", Region.ES, emp="E-8"),
        user(KYLIE, "mosie", Region.AU, emp="E-7"),
        user(OPS, "operator", Region.ES),
        contact_event(UserContact(user_id=ROSA, home_region=Region.ES, email="rosa@potr.example")),
    )


def _workorder(
    status: str, action: str | None, *, minutes: int, assignee: str | None = "E-7"
) -> Event:
    """A ``workorder.*`` event as dispatch emits it (``action`` None: created)."""
    at = NOON + timedelta(minutes=minutes)
    order = WorkOrderChanged(
        work_order_id=JOB,
        region="es",
        site_id=SITE,
        gateway_ids=["gw-es-41"],
        account_id=ANA_ACC,
        type="isolator_fault",
        priority="P2",
        status=status,
        action=action,
        actor="E-100" if action else "system",
        at=at,
        assignee=assignee,
        on_site=status == "on_site",
    )
    name = WORKORDER_CREATED if action is None else workorder_event_name(status)
    return Event(
        name=name,
        region=Region.ES,
        source="dispatch",
        occurred_at=at,
        payload=order.model_dump(mode="json"),
    )


async def test_an_assignment_reaches_only_the_assigned_mosie(w: World) -> None:
    await w.publish(
        _workorder("scheduled", None, minutes=0, assignee=None),
        _workorder("assigned", "assign", minutes=1),
    )
    # E-7 in Spain; not the other Spanish MOSIE, nor Australia's E-7 (the event's region).
    assigned = "Trabajo 1234 asignado: Avería del seccionador de CC en instalación 41 (P2)"
    assert w.titles(ROSA) == [assigned]
    assert w.titles(PACO) == w.titles(KYLIE) == w.titles(OPS) == []
    # The customer heard that a technician is being arranged, not who.
    assert w.titles(ANA) == ["Estamos organizando la visita de un técnico a instalación 41"]
    assert w.titles(BEA) == []
    entry = w.inbox.list(ROSA).entries[0]
    assert entry.link == "/ui/es/workorders/1234"

    # Reassigned to E-8: they are told it is theirs, E-7 that it no longer is (notify
    # remembered whom the job was with; the event names only the new technician).
    await w.publish(_workorder("assigned", "reassign", minutes=2, assignee="E-8"))
    assert w.titles(PACO) == [assigned]
    assert w.titles(ROSA)[0] == "El trabajo 1234 de instalación 41 ya no es suyo"


async def test_a_technician_on_the_way_reaches_the_customer_in_their_language(w: World) -> None:
    await w.publish(_workorder("en_route", "start_travel", minutes=5))
    subject = "Su técnico está en camino a instalación 41"
    assert w.titles(ANA) == [subject]
    assert w.inbox.list(ANA).entries[0].link == "/ui/es/sites/41"
    assert all(w.titles(u) == [] for u in EVERYONE if u != ANA)

    report = await w.worker.deliver_due(NOON + timedelta(minutes=5))
    assert (report.sent, report.failed) == (1, 0)
    (mail,) = w.sink.messages
    assert (mail["To"], mail["Subject"]) == ("ana@example.es", subject)
    body = mail.get_body(preferencelist=("plain",))
    assert body is not None
    assert "Motivo: Avería del seccionador de CC." in body.get_content()


async def test_a_redelivered_event_tells_nobody_twice(w: World) -> None:
    cancelled = _workorder("cancelled", "cancel", minutes=9)
    await w.publish(cancelled)
    await w.publish(cancelled)  # as after a lost ack
    with w.pool.connection() as conn:
        conn.execute("DELETE FROM notify.handled_events")  # notify's unique keys still hold
    await w.publish(cancelled)

    assert w.titles(ROSA) == ["El trabajo 1234 de instalación 41 se ha cancelado"]
    assert w.titles(ANA) == ["La visita del técnico a instalación 41 se ha cancelado"]
    # One mail each: the MOSIE's work address and the customer's account address.
    assert w.count("SELECT count(*) FROM notify.deliveries") == 2


async def test_internal_states_tell_nobody(w: World) -> None:
    handled = w.count("SELECT count(*) FROM notify.handled_events")
    await w.publish(
        _workorder("accepted", "accept", minutes=3),
        _workorder("assigned", "sla", minutes=4),  # an SLA breach re-announces the state
        _workorder("on_site", "arrive", minutes=6),
        _workorder("closed", "close", minutes=90),
    )
    # Handled (recorded), and nobody told.
    assert w.count("SELECT count(*) FROM notify.handled_events") == handled + 4
    assert all(w.titles(u) == [] for u in EVERYONE)
    assert w.count("SELECT count(*) FROM notify.deliveries") == 0


async def test_a_confirmed_appointment_reaches_the_customer_and_the_mosie_with_its_window(
    w: World,
) -> None:
    # 10:00-12:00 UTC on 2 July: the MOSIE has saved no time zone, so reads UTC (the
    # e-mail's footer names it).
    start, end = NOON + timedelta(days=1), NOON + timedelta(days=1, hours=2)
    base = _workorder("assigned", "confirm", minutes=7)
    payload = base.payload | {
        "from_status": "assigned",
        "appointment_start": start.isoformat(),
        "appointment_end": end.isoformat(),
    }
    confirmed = base.model_copy(
        update={"name": WORKORDER_APPOINTMENT_CONFIRMED, "payload": payload}
    )
    await w.publish(confirmed)
    assert w.titles(ANA) == ["La visita del técnico a instalación 41 está reservada"]
    assert w.inbox.list(ANA).entries[0].link == "/ui/es/workorders/1234"
    assert w.titles(ROSA) == [
        "Trabajo 1234 en instalación 41: el cliente le espera desde 2 jul 2026, 10:00"
    ]
    assert w.titles(PACO) == w.titles(BEA) == w.titles(OPS) == []
