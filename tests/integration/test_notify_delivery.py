"""Notifications delivered through real servers: PostgreSQL (inbox and outbox), an
aiosmtpd sink, and a webhook receiver on loopback (allowed by the settings, as only
tests do) that checks every signature by the documented recipe.

Times: the service and the worker take ``now`` from the test (retries, quiet hours);
signatures carry the real time, as receivers check them against their own clock.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest

from broker_config import pki
from cloud.adapters.postgres import Connection, ConnectionPool, create_pool
from cloud.notify import (
    Category,
    DeliveryWorker,
    InboxService,
    InvalidError,
    Notification,
    NotificationService,
    NotifySettings,
    PreferencesIn,
    QuietHours,
    Recipient,
    Severity,
    WebhookEndpointIn,
)
from cloud.notify import repository as repo
from cloud.notify.webhooks import IPAddress
from contracts.topics import Region
from tests.integration.notify_harness import (
    MailSink,
    WebhookReceiver,
    mail_sink,
    notify_database,
    webhook_receiver,
)
from tests.waiting import until

pytestmark = pytest.mark.integration

ANA = "usr_" + "a" * 32  # a customer in Madrid
ORG = "usr_" + "c" * 32  # an organisation with a webhook
NOON = datetime(2025, 7, 1, 10, 0, tzinfo=UTC)  # 12:00 in Madrid
NIGHT = datetime(2025, 7, 1, 21, 0, tzinfo=UTC)  # 23:00 in Madrid


@dataclass
class Clock:
    now: datetime = NOON

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Resolver:
    """Names the tests invent (``hooks.test``), answered from a table; counts calls."""

    table: dict[str, list[str]] = field(default_factory=dict)
    calls: int = 0

    def __call__(self, host: str, port: int) -> Sequence[IPAddress]:
        self.calls += 1
        if host in self.table:
            return [ip_address(a) for a in self.table[host]]
        return [ip_address(host)]  # IP literals only: no real DNS in these tests


@pytest.fixture(scope="module")
def notify_db(postgres_server_url: str) -> Iterator[str]:
    with notify_database(postgres_server_url) as url:
        yield url


@pytest.fixture
def pool(notify_db: str) -> Iterator[ConnectionPool[Connection[Any]]]:
    with psycopg.connect(notify_db, autocommit=True) as conn:
        conn.execute(
            "TRUNCATE notify.inbox, notify.inbox_feed, notify.deliveries,"
            " notify.delivery_attempts, notify.webhook_endpoints, notify.preferences"
        )
    p = create_pool(notify_db, max_size=8, name="test-notify")
    try:
        yield p
    finally:
        p.close()


@pytest.fixture
def sink() -> Iterator[tuple[MailSink, int]]:
    with mail_sink() as running:
        yield running


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with webhook_receiver(WebhookReceiver()) as running:
        yield running


@dataclass
class Stack:
    service: NotificationService
    inbox: InboxService
    worker: DeliveryWorker
    clock: Clock
    resolver: Resolver
    pool: ConnectionPool[Connection[Any]]

    def attempts(self, delivery_id: uuid.UUID) -> list[tuple[int, str | None, int | None]]:
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT attempt, outcome, status_code FROM notify.delivery_attempts"
                " WHERE delivery_id = %s ORDER BY attempt",
                (delivery_id,),
            ).fetchall()
        return [(r[0], r[1], r[2]) for r in rows]


@pytest.fixture
async def make_stack(
    pool: ConnectionPool[Connection[Any]], notify_db: str, sink: tuple[MailSink, int]
) -> AsyncIterator[Callable[..., Awaitable[Stack]]]:
    """Builds a stack with settings changed as given; closes its worker's client."""
    async with AsyncExitStack() as running:

        async def make(**settings: Any) -> Stack:
            values: dict[str, Any] = {
                "env": "test",
                "database_url": notify_db,
                "smtp_host": "127.0.0.1",
                "smtp_port": sink[1],
                "notify_portal_url": "https://portal.example",
                "notify_webhook_allow_http": True,
                "notify_webhook_allowed_networks": "127.0.0.0/8,::1",
                "notify_attempt_timeout_s": 5,
                "notify_lease_s": 60,
                "notify_webhook_timeout_s": 5,
            }
            config = NotifySettings(**(values | settings))
            clock, resolver = Clock(), Resolver()
            service = NotificationService(pool, config, clock=clock, resolver=resolver)
            worker = await running.enter_async_context(
                DeliveryWorker.open(pool, config, resolver=resolver, rng=random.Random(7))
            )
            return Stack(service, InboxService(pool, clock=clock), worker, clock, resolver, pool)

        yield make


@pytest.fixture
async def stack(make_stack: Callable[..., Awaitable[Stack]]) -> Stack:
    return await make_stack()


def _alarm(at: datetime = NOON, **fields: Any) -> Notification:
    data: dict[str, Any] = {
        "id": uuid.uuid4(),
        "kind": "alarm_raised",
        "category": Category.ALARM,
        "severity": Severity.WARNING,
        "region": Region.ES,
        "account_id": "acc_" + "9" * 32,
        "link": "/es/sites/41",
        "params": {"site": "Calle Mayor 1", "alarm": "Fallo de red", "raised_at": at},
        "created_at": at,
    }
    return Notification.model_validate(data | fields)


def _madrid_customer(s: Stack) -> Recipient:
    s.service.set_preferences(
        ANA,
        PreferencesIn(
            language="es",
            time_zone="Europe/Madrid",
            quiet_hours=QuietHours(start=time(22), end=time(7)),
        ),
    )
    return Recipient(user_id=ANA, email="ana@example.es")


def _organisation(s: Stack, receiver: WebhookReceiver, url: str | None = None) -> Recipient:
    created = s.service.add_webhook(
        ORG, Region.ES, WebhookEndpointIn(url=url or f"http://127.0.0.1:{receiver.port}/hooks")
    )
    receiver.secret = created.secret
    s.service.set_preferences(
        ORG, PreferencesIn(email=frozenset(), webhook=frozenset({Category.ALARM}))
    )
    return Recipient(user_id=ORG, email="ops@org.example")


# -- end to end --------------------------------------------------------------------------
async def test_an_alarm_reaches_inbox_mail_and_webhook_in_each_readers_language(
    stack: Stack, sink: tuple[MailSink, int], receiver: WebhookReceiver
) -> None:
    notification = _alarm()
    result = stack.service.notify(
        notification, [_madrid_customer(stack), _organisation(stack, receiver)]
    )
    assert (result.inbox_posted, result.queued) == (2, 2)  # ORG chose no e-mail

    report = await stack.worker.deliver_due(NOON)
    assert (report.claimed, report.sent, report.failed) == (2, 2, 0)

    [mail] = sink[0].messages
    [by_mail] = stack.service.deliveries(notification.id, user_id=ANA)
    assert mail["To"] == "ana@example.es"
    assert mail["Subject"] == "Alarma en Calle Mayor 1: Fallo de red"
    assert mail["Message-ID"] == f"<{by_mail.id}@notify.potr>"
    text = mail.get_content().replace("\r\n", "\n")
    assert text.startswith(
        "Se activó la alarma «Fallo de red» en Calle Mayor 1 el 1 jul 2025, 12:00.\n\n"
        "Detalles: https://portal.example/es/sites/41\n"
    )

    [call] = receiver.requests
    [by_hook] = stack.service.deliveries(notification.id, user_id=ORG)
    assert call.signature_ok
    assert (call.path, call.headers["x-potr-delivery"]) == ("/hooks", str(by_hook.id))
    body = orjson.loads(call.body)
    assert (body["notification_id"], body["kind"], body["language"]) == (
        str(notification.id),
        "alarm_raised",
        "en",
    )
    assert body["title"] == "Alarm at Calle Mayor 1: Fallo de red"
    assert body["link"] == "https://portal.example/es/sites/41"
    assert body["params"]["raised_at"] == "2025-07-01T10:00:00Z"

    [anas] = stack.inbox.list(ANA).entries
    [orgs] = stack.inbox.list(ORG).entries
    assert (anas.title, orgs.title) == (
        "Alarma en Calle Mayor 1: Fallo de red",
        "Alarm at Calle Mayor 1: Fallo de red",
    )
    assert {(d.status, d.attempts) for d in stack.service.deliveries(notification.id)} == {
        ("sent", 1)
    }
    assert stack.attempts(by_hook.id) == [(1, "sent", 200)]


async def test_the_same_notification_twice_reaches_nobody_twice(
    stack: Stack, receiver: WebhookReceiver
) -> None:
    notification = _alarm()
    recipients = [_madrid_customer(stack), _organisation(stack, receiver)]
    stack.service.notify(notification, recipients)
    again = stack.service.notify(notification, recipients)
    assert (again.inbox_posted, again.queued) == (0, 0)
    assert (await stack.worker.deliver_due(NOON)).sent == 2
    assert len(stack.inbox.list(ANA).entries) == 1


def test_a_notification_its_template_cannot_render_is_refused(stack: Stack) -> None:
    broken = _alarm(params={"site": "Calle Mayor 1"})
    with pytest.raises(InvalidError, match="missing"):
        stack.service.notify(broken, [Recipient(user_id=ANA)])
    assert stack.inbox.list(ANA).entries == ()


# -- quiet hours -------------------------------------------------------------------------
async def test_mail_waits_for_the_end_of_quiet_hours_but_urgent_safety_does_not(
    stack: Stack, sink: tuple[MailSink, int]
) -> None:
    stack.clock.now = NIGHT
    customer = _madrid_customer(stack)
    stack.service.notify(_alarm(NIGHT), [customer])
    assert (await stack.worker.deliver_due(NIGHT)).claimed == 0
    assert len(stack.inbox.list(ANA).entries) == 1  # the inbox has it at once
    seven = datetime(2025, 7, 2, 5, 0, tzinfo=UTC)  # 07:00 CEST
    assert (await stack.worker.deliver_due(seven - timedelta(seconds=1))).claimed == 0

    urgent = Notification(
        id=uuid.uuid4(),
        kind="isolator_open",
        category=Category.SAFETY,
        severity=Severity.URGENT,
        region=Region.ES,
        params={"site": "Calle Mayor 1", "detected_at": NIGHT},
        created_at=NIGHT,
    )
    stack.service.notify(urgent, [customer])
    assert (await stack.worker.deliver_due(NIGHT)).sent == 1
    assert [m["Subject"] for m in sink[0].messages] == [
        "Aviso de seguridad: el seccionador de CC de Calle Mayor 1 está abierto"
    ]
    assert (await stack.worker.deliver_due(seven)).sent == 1
    assert len(sink[0].messages) == 2


# -- webhooks: retries, refusals, pinning -----------------------------------------------
async def test_a_failing_receiver_is_retried_with_back_off_until_it_answers(
    stack: Stack, receiver: WebhookReceiver
) -> None:
    receiver.fail_first = 2
    notification = _alarm()
    stack.service.notify(notification, [_organisation(stack, receiver)])

    assert (await stack.worker.deliver_due(NOON)).retried == 1
    [first] = stack.service.deliveries(notification.id)
    # after one failure: between 15 and 30 s (base 30 s, equal jitter)
    assert NOON + timedelta(seconds=15) <= first.next_attempt_at <= NOON + timedelta(seconds=30)
    assert (await stack.worker.deliver_due(NOON + timedelta(seconds=14))).claimed == 0

    assert (await stack.worker.deliver_due(first.next_attempt_at)).retried == 1
    [second] = stack.service.deliveries(notification.id)
    wait = second.next_attempt_at - first.next_attempt_at
    assert timedelta(seconds=30) <= wait <= timedelta(seconds=60)

    assert (await stack.worker.deliver_due(second.next_attempt_at)).sent == 1
    calls = receiver.requests
    assert [c.status for c in calls] == [503, 503, 200]
    assert all(c.signature_ok for c in calls)
    assert len({c.body for c in calls}) == 1  # the same bytes every time
    assert {c.headers["x-potr-delivery"] for c in calls} == {str(first.id)}
    assert stack.attempts(first.id) == [(1, "retry", 503), (2, "retry", 503), (3, "sent", 200)]


async def test_a_refusing_receiver_fails_at_once_and_410_disables_the_endpoint(
    stack: Stack, receiver: WebhookReceiver
) -> None:
    receiver.status = 410
    notification = _alarm()
    stack.service.notify(notification, [_organisation(stack, receiver)])
    assert (await stack.worker.deliver_due(NOON)).failed == 1
    [delivery] = stack.service.deliveries(notification.id)
    assert (delivery.status, delivery.last_error) == ("failed", "HTTP 410")
    [endpoint] = stack.service.webhooks(ORG)
    assert endpoint.disabled_at is not None
    # a disabled endpoint gets no more calls
    assert stack.service.notify(_alarm(), [Recipient(user_id=ORG)]).queued == 0


async def test_loopback_is_refused_unless_the_settings_allow_it(
    make_stack: Callable[..., Awaitable[Stack]], receiver: WebhookReceiver
) -> None:
    strict: Stack = await make_stack(notify_webhook_allowed_networks="")
    with pytest.raises(InvalidError, match=r"loopback address \(127\.0\.0\.1\)"):
        _organisation(strict, receiver)
    with pytest.raises(InvalidError, match="https"):
        (await make_stack(notify_webhook_allow_http=False)).service.add_webhook(
            ORG, Region.ES, WebhookEndpointIn(url="http://example.com/hooks")
        )


async def test_the_address_is_checked_again_at_every_call_and_connected_to_as_resolved(
    stack: Stack, receiver: WebhookReceiver
) -> None:
    stack.resolver.table["hooks.test"] = ["127.0.0.1"]
    org = _organisation(stack, receiver, url=f"http://hooks.test:{receiver.port}/in")
    stack.service.notify(_alarm(), [org])
    calls_before = stack.resolver.calls
    assert (await stack.worker.deliver_due(NOON)).sent == 1
    assert stack.resolver.calls == calls_before + 1  # resolved once for the attempt
    [call] = receiver.requests
    assert call.headers["host"] == f"hooks.test:{receiver.port}"  # no DNS knows hooks.test

    stack.resolver.table["hooks.test"] = ["127.0.0.1", "10.0.0.5"]  # rebinding
    later = _alarm()
    stack.service.notify(later, [org])
    assert (await stack.worker.deliver_due(NOON)).failed == 1
    [refused] = stack.service.deliveries(later.id)
    assert refused.last_error == "hooks.test resolves to a private address (10.0.0.5)"
    assert len(receiver.requests) == 1


async def test_https_connects_to_the_pinned_address_and_verifies_the_name(
    make_stack: Callable[..., Awaitable[Stack]], tmp_path: Path
) -> None:
    pki.init(tmp_path / "ca")
    good = pki.issue_server(tmp_path / "ca", "hooks", ["hooks.test"], tmp_path / "good")
    wrong = pki.issue_server(tmp_path / "ca", "other", ["other.test"], tmp_path / "wrong")
    for files, outcome in ((good, "sent"), (wrong, "retry")):
        s: Stack = await make_stack(
            notify_webhook_allow_http=False, notify_webhook_ca_file=files.ca_file
        )
        s.resolver.table["hooks.test"] = ["127.0.0.1"]
        with psycopg.connect(s.worker.settings.database_url, autocommit=True) as conn:
            conn.execute("TRUNCATE notify.webhook_endpoints, notify.deliveries CASCADE")
        with webhook_receiver(WebhookReceiver(), cert=(files.cert_file, files.key_file)) as tls:
            org = _organisation(s, tls, url=f"https://hooks.test:{tls.port}/in")
            notification = _alarm()
            s.service.notify(notification, [org])
            await s.worker.deliver_due(NOON)
            [delivery] = s.service.deliveries(notification.id)
            [(_, got, _)] = s.attempts(delivery.id)
            assert got == outcome, delivery.last_error
            if outcome == "sent":
                [call] = tls.requests
                assert call.signature_ok
                assert call.headers["host"] == f"hooks.test:{tls.port}"
            else:
                assert tls.requests == []
                assert "CERTIFICATE_VERIFY_FAILED" in (delivery.last_error or "")


# -- bounds: concurrency, timeouts -------------------------------------------------------
async def test_one_destination_gets_at_most_its_concurrency_at_once(
    make_stack: Callable[..., Awaitable[Stack]], receiver: WebhookReceiver
) -> None:
    s: Stack = await make_stack(notify_webhook_concurrency=2)
    org = _organisation(s, receiver)
    for _ in range(5):
        s.service.notify(_alarm(), [org])
    receiver.hold = True
    first = asyncio.create_task(s.worker.deliver_due(NOON))
    await until(lambda: receiver.in_flight, 10, "two calls in flight", at_least=2)
    receiver.release.set()
    report = await first
    assert (report.claimed, report.sent) == (2, 2)  # the other three wait their turn
    assert [(await s.worker.deliver_due(NOON)).sent for _ in range(2)] == [2, 1]
    assert receiver.max_in_flight == 2


async def test_an_attempt_that_hangs_is_cut_off_and_retried(
    make_stack: Callable[..., Awaitable[Stack]], receiver: WebhookReceiver
) -> None:
    s: Stack = await make_stack(notify_attempt_timeout_s=0.3, notify_lease_s=31)
    try:
        receiver.hold = True
        notification = _alarm()
        s.service.notify(notification, [_organisation(s, receiver)])
        assert (await s.worker.deliver_due(NOON)).retried == 1
        [delivery] = s.service.deliveries(notification.id)
        assert (delivery.status, delivery.last_error) == ("pending", "timed out")
    finally:
        receiver.release.set()


# -- mail refusals -----------------------------------------------------------------------
async def test_a_mailbox_refused_for_good_fails_and_one_refused_for_now_is_retried(
    stack: Stack, sink: tuple[MailSink, int]
) -> None:
    sink[0].refuse = {
        "gone@example.es": "550 5.1.1 no such mailbox",
        "full@example.es": "452 4.2.2 mailbox full",
    }
    gone = Recipient(user_id=ANA, email="gone@example.es")
    full = Recipient(user_id=ORG, email="full@example.es")
    notification = _alarm()
    stack.service.notify(notification, [gone, full])
    report = await stack.worker.deliver_due(NOON)
    assert (report.failed, report.retried) == (1, 1)
    outcome = {
        d.destination: (d.status, d.last_error) for d in stack.service.deliveries(notification.id)
    }
    assert outcome == {
        "gone@example.es": ("failed", "550 recipient refused"),
        "full@example.es": ("pending", "452 recipient refused"),
    }


async def test_the_worker_runs_until_stopped(stack: Stack, sink: tuple[MailSink, int]) -> None:
    stack.service.notify(_alarm(), [_madrid_customer(stack)])  # due since 2025
    stop = asyncio.Event()
    running = asyncio.create_task(stack.worker.run(stop, idle_s=0.05))
    await until(lambda: len(sink[0].messages), 10, "the mail")
    stop.set()
    async with asyncio.timeout(10):
        await running


async def test_an_idle_worker_woken_by_a_filing_sends_at_once(
    stack: Stack, sink: tuple[MailSink, int]
) -> None:
    worker, rounds = stack.worker, []
    deliver_due = worker.deliver_due

    async def counted(now: Any = None) -> Any:  # the worker's own method, rounds noted
        report = await deliver_due(now)
        rounds.append(report.claimed)
        return report

    worker.deliver_due = counted  # type: ignore[method-assign]
    stop, wake = asyncio.Event(), asyncio.Event()
    # An hour's idle wait: without the wake-up the mail could not arrive within the bound.
    running = asyncio.create_task(worker.run(stop, idle_s=3600, wake=wake))
    # Idle: a round found nothing, and the next one waits for a wake-up (or the hour).
    await until(lambda: rounds and rounds[-1] == 0, 10, "the worker to idle")
    stack.service.notify(_alarm(), [_madrid_customer(stack)])
    wake.set()
    await until(lambda: len(sink[0].messages), 10, "the mail")
    stop.set()
    async with asyncio.timeout(10):
        await running


# -- crashes -----------------------------------------------------------------------------
async def test_a_worker_that_dies_mid_attempt_loses_no_record_and_moves_nothing_later(
    stack: Stack, receiver: WebhookReceiver
) -> None:
    notification = _alarm()
    stack.service.notify(notification, [_organisation(stack, receiver)])
    with stack.pool.connection() as conn:  # a worker claims, then dies before sending
        [dead], _ = repo.claim_due(
            conn,
            NOON,
            lease_until=NOON + timedelta(seconds=60),
            batch=10,
            per_destination=lambda key: 4,
            max_attempts=8,
        )
    assert (await stack.worker.deliver_due(NOON + timedelta(seconds=59))).claimed == 0
    assert (await stack.worker.deliver_due(NOON + timedelta(seconds=60))).sent == 1
    assert stack.attempts(dead.id) == [(1, "lost", None), (2, "sent", 200)]

    with stack.pool.connection() as conn:  # the dead worker wakes and reports
        moved = repo.finish_attempt(
            conn, dead, outcome="retry", now=NOON, next_attempt_at=NOON, error="late"
        )
    assert moved is False
    [delivery] = stack.service.deliveries(notification.id)
    assert (delivery.status, delivery.attempts) == ("sent", 2)
    assert stack.attempts(dead.id)[0] == (1, "retry", None)  # its own record, completed


async def test_a_delivery_that_kills_every_worker_fails_after_its_attempts(
    make_stack: Callable[..., Awaitable[Stack]], receiver: WebhookReceiver
) -> None:
    s: Stack = await make_stack(notify_max_attempts=2)
    notification = _alarm()
    s.service.notify(notification, [_organisation(s, receiver)])
    at = NOON
    for _ in range(2):
        with s.pool.connection() as conn:
            repo.claim_due(
                conn,
                at,
                lease_until=at + timedelta(seconds=60),
                batch=10,
                per_destination=lambda key: 4,
                max_attempts=2,
            )
        at += timedelta(seconds=60)
    assert (await s.worker.deliver_due(at)).failed == 1
    [delivery] = s.service.deliveries(notification.id)
    assert delivery.status == "failed"
    assert [o for _, o, _ in s.attempts(delivery.id)] == ["lost", "lost"]
    assert receiver.requests == []
