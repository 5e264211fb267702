"""Alarms and notices become notifications (issue 16, point 4), end to end on real
servers: people and accounts arrive as identity's and the customers service's events,
alarms as the alarm store's ``alert.*`` events relayed from its outbox, all through the
in-process bus to notify's handlers as the composition root wires them; mail reaches an
aiosmtpd sink through the delivery worker.

Clocks are the test's: the alarm store's and notify's (a notification is made two
seconds after the alarm was raised, so the recorded latency is 2,000 ms).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from cloud.adapters.postgres import Connection, ConnectionPool, create_pool
from cloud.alerts.alarms import AlarmCondition, AlarmSubject
from cloud.alerts.store import AlarmStore
from cloud.bootstrap import cloud_events
from cloud.events.bus import InProcessBus
from cloud.events.outbox import Event
from cloud.events.relay import OutboxRelay
from cloud.events.types import CustomerAccount, customer_account_event
from cloud.events.users import (
    USER_CREATED,
    UserChanged,
    UserContact,
    contact_event,
    user_event,
)
from cloud.migrate import migrate
from cloud.notify import (
    Category,
    DeliveryWorker,
    InboxService,
    LocalText,
    NoticeIn,
    NotificationService,
    NotifyHandlers,
    NotifySettings,
    PreferencesIn,
    QuietHours,
)
from contracts.topics import Region
from potr.cli import app
from tests.integration.api_world import private_database
from tests.integration.notify_harness import MailSink, mail_sink

pytestmark = pytest.mark.integration

Pool = ConnectionPool[Connection[Any]]
NOON = datetime(2026, 7, 1, 10, 0, tzinfo=UTC)  # 12:00 in Madrid
NIGHT = datetime(2026, 7, 1, 21, 0, tzinfo=UTC)  # 23:00 in Madrid
LAG = timedelta(seconds=2)

ANA, ANA_ACC = "usr_" + "a" * 32, "acc_" + "a" * 32  # a customer in Spain
BEA, BEA_ACC = "usr_" + "b" * 32, "acc_" + "b" * 32  # another customer in Spain
CAL, CAL_ACC = "usr_" + "c" * 32, "acc_" + "c" * 32  # a third, on another plan
DAN, DAN_ACC = "usr_" + "d" * 32, "acc_" + "d" * 32  # a customer in Australia
OPS = "usr_" + "1" * 32  # an operator in Spain, with a work address
OPS_AU = "usr_" + "2" * 32  # an operator in Australia
MOSIE = "usr_" + "3" * 32  # a technician in Spain, no address known
BOSS = "usr_" + "4" * 32  # an admin in Spain
SITE = 41


@dataclass
class Clock:
    now: datetime = NOON

    def __call__(self) -> datetime:
        return self.now


@dataclass
class World:
    pool: Pool
    bus: InProcessBus
    store: AlarmStore
    alarms_clock: Clock
    notify_clock: Clock
    service: NotificationService
    inbox: InboxService
    worker: DeliveryWorker
    sink: MailSink

    async def publish(self, *events: Event) -> None:
        """Hand events to the bus as a relay would; returns once handled."""
        await self.bus.publish(list(events))

    async def relay_alarms(self) -> int:
        """The alarm store's pending events onto the bus (handled when this returns)."""
        self.notify_clock.now = self.alarms_clock.now + LAG
        return await OutboxRelay(self.pool, "alerts", self.bus).relay_once()

    def titles(self, user_id: str) -> list[str]:
        return [e.title for e in self.inbox.list(user_id).entries]

    def mail(self) -> list[tuple[str, str]]:
        return sorted((str(m["To"]), str(m["Subject"])) for m in self.sink.messages)


@pytest.fixture(scope="module")
def database(postgres_server_url: str) -> Iterator[str]:
    with private_database(postgres_server_url) as url:
        migrate(url, schemas={"notify", "alerts"})
        yield url


@pytest.fixture
async def w(database: str) -> AsyncIterator[World]:
    with psycopg.connect(database, autocommit=True) as conn:
        notify_tables = (
            "inbox, inbox_feed, deliveries, delivery_attempts, preferences, accounts, people,"
            " handled_events, alarm_notifications"
        )
        conn.execute("TRUNCATE " + ", ".join(f"notify.{t}" for t in notify_tables.split(", ")))
        conn.execute(
            "TRUNCATE alerts.alarms, alerts.alarm_history, alerts.outbox RESTART IDENTITY CASCADE"
        )
    pool = create_pool(database, max_size=6, name="test-notify-alarms")
    alarms_clock, notify_clock = Clock(), Clock()
    try:
        with mail_sink() as (sink, port):
            settings = NotifySettings(
                env="test",
                database_url=database,
                smtp_host="127.0.0.1",
                smtp_port=port,
                notify_portal_url="https://portal.example",
                notify_attempt_timeout_s=5,
                notify_lease_s=60,
            )
            service = NotificationService(pool, settings, clock=notify_clock)
            handlers = NotifyHandlers(pool, service, clock=notify_clock)
            bus = InProcessBus()
            async with (
                cloud_events(pool, notify=handlers, outboxes=(), bus=bus),
                DeliveryWorker.open(pool, settings, rng=random.Random(3)) as worker,
            ):
                w = World(
                    pool,
                    bus,
                    AlarmStore(pool, clock=alarms_clock),
                    alarms_clock,
                    notify_clock,
                    service,
                    InboxService(pool, clock=notify_clock),
                    worker,
                    sink,
                )
                await _people(w)
                yield w
                assert bus.dead_letters == []
    finally:
        pool.close()


async def _people(w: World) -> None:
    """Accounts (customers service), users (identity) and the operator's work address."""

    def account(acc: str, region: Region, email: str, plan: str) -> Event:
        payload = CustomerAccount(
            account_id=acc, region=region, name=acc, email=email, plan_code=plan, status="active"
        )
        return customer_account_event(payload, created=True)

    def user(user_id: str, role: str, region: Region, acc: str | None = None) -> Event:
        changed = UserChanged(user_id=user_id, role=role, home_region=region, account_id=acc)
        return user_event(USER_CREATED, changed, occurred_at=NOON - timedelta(days=1))

    await w.publish(
        account(ANA_ACC, Region.ES, "ana@example.es", "solar-20"),
        account(BEA_ACC, Region.ES, "bea@example.es", "solar-20"),
        account(CAL_ACC, Region.ES, "cal@example.es", "solar-40"),
        account(DAN_ACC, Region.AU, "dan@example.au", "solar-20"),
        user(ANA, "customer", Region.ES, ANA_ACC),
        user(BEA, "customer", Region.ES, BEA_ACC),
        user(CAL, "customer", Region.ES, CAL_ACC),
        user(DAN, "customer", Region.AU, DAN_ACC),
        user(OPS, "operator", Region.ES),
        user(OPS_AU, "operator", Region.AU),
        user(MOSIE, "mosie", Region.ES),
        user(BOSS, "admin", Region.ES),
        contact_event(UserContact(user_id=OPS, home_region=Region.ES, email="ops@potr.example")),
        contact_event(UserContact(user_id=OPS_AU, home_region=Region.AU, email="au@potr.example")),
    )


def _condition(rule: str, severity: str, to: list[str], *, safety: bool = False) -> AlarmCondition:
    """An alarm as the alerts service raises it: its rule's audiences in the detail."""
    return AlarmCondition.model_validate(
        {
            "region": "es",
            "rule_id": rule,
            "site_id": SITE,
            "gateway_id": "gw-es-41",
            "severity": severity,
            "account_id": ANA_ACC,
            "title": {"dc-isolator-open": "DC isolator open in daylight"}.get(
                rule, "Gateway offline"
            ),
            "detail": {
                "notify": {"to": to, "safety_notice": safety},
                "site_name": "Calle Mayor 1",
                "time_zone": "Europe/Madrid",
            },
        }
    )


def _subject(rule: str) -> AlarmSubject:
    return AlarmSubject(rule_id=rule, site_id=SITE, gateway_id="gw-es-41")


# -- alarms ------------------------------------------------------------------------------
async def test_a_raised_alarm_reaches_the_customer_and_the_regions_operators(w: World) -> None:
    w.store.raise_condition(_condition("gateway-offline", "high", ["customer", "operators"]))
    assert await w.relay_alarms() == 1

    # Spanish people read Spanish (the region's language until they choose): the
    # customer and the Spanish operator; not the Australian one, nor the MOSIE or other
    # customers (the rule names neither).
    subject = "Alarma en Calle Mayor 1: Gateway offline"
    assert w.titles(ANA) == [subject]
    assert w.titles(OPS) == [subject]
    assert w.titles(OPS_AU) == w.titles(MOSIE) == w.titles(BEA) == w.titles(BOSS) == []

    report = await w.worker.deliver_due(NOON + LAG)
    assert (report.sent, report.failed) == (2, 0)
    # The customer's mail goes to their account's address; the operator's to theirs.
    assert w.mail() == [("ana@example.es", subject), ("ops@potr.example", subject)]
    # Times on the site's clock (the zone the alarm gives) for the customer.
    to_ana = next(m for m in w.sink.messages if m["To"] == "ana@example.es")
    body = to_ana.get_body(preferencelist=("plain",))
    assert body is not None
    assert "Calle Mayor 1 el 1 jul 2026, 12:00." in body.get_content()

    # The time from the raise to the notification, per audience.
    with w.pool.connection() as conn:
        rows = conn.execute(
            "SELECT audience, recipients, latency_ms FROM notify.alarm_notifications"
            " ORDER BY audience"
        ).fetchall()
    assert rows == [("customer", 1, 2000), ("staff", 1, 2000)]


async def test_a_safety_notice_ignores_quiet_hours_and_an_alarm_waits_for_them(w: World) -> None:
    quiet = PreferencesIn(
        language="es",
        time_zone="Europe/Madrid",
        quiet_hours=QuietHours(start=time(22), end=time(7)),
    )
    w.service.set_preferences(ANA, quiet)
    w.alarms_clock.now = NIGHT
    w.store.raise_condition(_condition("gateway-offline", "high", ["customer"]))
    w.store.raise_condition(
        _condition("dc-isolator-open", "urgent", ["customer", "operators", "mosie"], safety=True)
    )
    assert await w.relay_alarms() == 2

    safety = "Aviso de seguridad: el seccionador de CC de Calle Mayor 1 está abierto"
    assert w.titles(ANA) == [safety, "Alarma en Calle Mayor 1: Gateway offline"]
    staff = "Alarma en Calle Mayor 1: DC isolator open in daylight"
    assert w.titles(OPS) == w.titles(MOSIE) == [staff]

    # 23:00 in Madrid: the safety notice goes now, the alarm at 07:00 Madrid (05:00 UTC).
    report = await w.worker.deliver_due(NIGHT + LAG)
    assert (
        report.sent == 2
    )  # the customer's safety notice, the operator's (the MOSIE has no address)
    assert w.mail() == [("ana@example.es", safety), ("ops@potr.example", staff)]
    with w.pool.connection() as conn:
        waiting = conn.execute(
            "SELECT destination, next_attempt_at FROM notify.deliveries WHERE status = 'pending'"
        ).fetchall()
    assert waiting == [("ana@example.es", datetime(2026, 7, 2, 5, 0, tzinfo=UTC))]


async def test_a_redelivered_alarm_event_notifies_nobody_twice(w: World) -> None:
    w.store.raise_condition(_condition("gateway-offline", "high", ["customer", "operators"]))
    assert await w.relay_alarms() == 1
    # The same event again, as after a lost ack; then once more with notify's record of
    # handling it gone (its unique keys still hold).
    with w.pool.connection() as conn:
        conn.execute("UPDATE alerts.outbox SET published_at = NULL")
    assert await w.relay_alarms() == 1
    with w.pool.connection() as conn:
        conn.execute("UPDATE alerts.outbox SET published_at = NULL")
        conn.execute("DELETE FROM notify.handled_events")
    assert await w.relay_alarms() == 1

    assert len(w.titles(ANA)) == len(w.titles(OPS)) == 1
    with w.pool.connection() as conn:
        assert conn.execute("SELECT count(*) FROM notify.deliveries").fetchone() == (2,)
        assert conn.execute("SELECT count(*) FROM notify.alarm_notifications").fetchone() == (2,)


async def test_a_cleared_alarm_tells_the_customer_it_cleared(w: World) -> None:
    w.store.raise_condition(_condition("gateway-offline", "high", ["customer", "operators"]))
    w.alarms_clock.now = NOON + timedelta(minutes=30)
    assert w.store.clear_condition(_subject("gateway-offline")) is not None
    assert await w.relay_alarms() == 2

    cleared = "Resuelta en Calle Mayor 1: Gateway offline"
    assert w.titles(ANA) == [cleared, "Alarma en Calle Mayor 1: Gateway offline"]
    assert w.titles(OPS) == ["Alarma en Calle Mayor 1: Gateway offline"]  # the board shows it
    await w.worker.deliver_due(NOON + timedelta(minutes=31))
    assert ("ana@example.es", cleared) in w.mail()


async def test_an_unacknowledged_alarm_escalates_to_the_regions_admins(w: World) -> None:
    w.store.raise_condition(_condition("gateway-offline", "high", ["operators"]))
    w.alarms_clock.now = NOON + timedelta(minutes=16)  # high: escalated after 15 minutes
    assert len(w.store.escalate_due()) == 1
    assert await w.relay_alarms() == 2

    assert w.titles(BOSS) == ["Alarma en Calle Mayor 1: Gateway offline"]
    assert w.titles(ANA) == []  # the rule does not name the customer


# -- notices and offers ------------------------------------------------------------------
async def test_a_notice_reaches_only_the_chosen_customers_once(w: World) -> None:
    campaign = uuid.uuid4()
    notice = NoticeIn(
        kind="notice",
        region=Region.ES,
        account_ids=(ANA_ACC, BEA_ACC, DAN_ACC),  # DAN's account is Australian: not here
        params={
            "title": LocalText(en="Maintenance on Monday", es="Mantenimiento el lunes"),
            "text": "-",
        },
        campaign_id=campaign,
    )
    result = w.service.send_notice(notice)
    assert (result.chosen, result.notified, result.inbox_posted) == (2, 2, 2)
    assert w.titles(ANA) == w.titles(BEA) == ["Mantenimiento el lunes"]
    assert w.titles(CAL) == w.titles(DAN) == w.titles(OPS) == []

    again = w.service.send_notice(notice)  # the same campaign again: nobody twice
    assert (again.notified, again.inbox_posted, again.queued) == (2, 0, 0)
    await w.worker.deliver_due(NOON)
    assert w.mail() == [
        ("ana@example.es", "Mantenimiento el lunes"),
        ("bea@example.es", "Mantenimiento el lunes"),
    ]


async def test_an_offer_reaches_only_customers_who_opted_in(w: World) -> None:
    offers = frozenset({Category.NOTICE, Category.OFFER})
    w.service.set_preferences(BEA, PreferencesIn(language="es", email=offers))
    w.service.set_preferences(CAL, PreferencesIn(language="es"))  # saved, offers not chosen
    offer = NoticeIn(
        kind="offer",
        region=Region.ES,
        plan_code="solar-20",  # ANA and BEA; of them only BEA agreed to offers
        params={"title": "Batería -20 %", "text": "-"},
        campaign_id=uuid.uuid4(),
    )
    result = w.service.send_notice(offer)
    assert (result.chosen, result.notified, result.inbox_posted, result.queued) == (2, 1, 1, 1)
    assert w.titles(BEA) == ["Batería -20 %"]
    assert w.titles(ANA) == w.titles(CAL) == []
    await w.worker.deliver_due(NOON)
    assert w.mail() == [("bea@example.es", "Batería -20 %")]


async def test_potr_notify_send_tells_a_plan_change_to_the_accounts_named(
    w: World, database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POTR_DATABASE_URL", database)
    monkeypatch.setenv("COLUMNS", "200")
    args = ["notify", "send", "plan_change", "--region", "es", "--account", CAL_ACC]
    args += ["--param", "effective_on=2026-08-01", "--param", "plan=Solar 40"]
    args += ["--param", "details=-", "--param", "details:es=-"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "1 of 1 accounts told, 1 inbox entries, 1 mails queued" in result.output
    assert w.titles(CAL) == ["Su plan cambia el 1 ago 2026"]
    assert w.titles(ANA) == []

    refused = CliRunner().invoke(app, ["notify", "send", "plan_change", "--region", "es"])
    assert refused.exit_code == 1  # no parameters: the template cannot be filled
    assert "parameters missing" in refused.output
