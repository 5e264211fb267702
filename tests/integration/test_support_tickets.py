"""The support service on a real PostgreSQL: a ticket's lifecycle with its history and
SLA clocks (pending excluded), the reopen window, scoping to the customer's account, and
the events it emits for dispatch, customers and notify. The clock is the test's: business
hours of AU-NSW (08:00-17:00 +11 in December)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from uuid import uuid4

import pytest

from cloud.adapters.postgres import create_pool
from cloud.events.workorders import WorkOrderChanged
from cloud.scope import Scope
from cloud.support import (
    Actor,
    Change,
    ConflictError,
    InvalidError,
    Kind,
    NotFoundError,
    Priority,
    QueueFilter,
    SiteFact,
    StaffMove,
    State,
    SupportService,
    TicketIn,
)
from contracts.topics import Region
from tests.integration.api_world import migrated_database

AEDT = timezone(timedelta(hours=11))
CUSTOMER = Actor("user-a", "customer")
STAFF = Actor("E00001", "support")


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def facts(region: Region, site_id: int) -> SiteFact | None:
    # Site 5 is account A's in Victoria, site 9 account B's; nothing else exists.
    known = {5: SiteFact("A", "AU-VIC"), 9: SiteFact("B", "AU-NSW")}
    return known.get(site_id) if region == Region.AU else None


def known(region: Region, account_id: str) -> bool:
    return region == Region.AU and account_id in {"A", "B"}


@pytest.fixture(scope="module")
def world(postgres_server_url: str) -> Iterator[tuple[SupportService, Clock, Any]]:
    with migrated_database(postgres_server_url, "support") as url:
        pool = create_pool(url, max_size=2)
        try:
            # Monday 7 Dec 2026 09:00 +11 (Victoria keeps Sydney's time).
            clock = Clock(datetime(2026, 12, 7, 9, tzinfo=AEDT))
            yield (
                SupportService(pool, site_facts=facts, account_known=known, clock=clock),
                clock,
                pool,
            )
        finally:
            pool.close()


def outbox(pool: Any) -> list[tuple[str, dict[str, Any]]]:
    with pool.connection() as conn:
        return [
            (n, p) for n, p in conn.execute("SELECT name, payload FROM support.outbox ORDER BY id")
        ]


World = tuple[SupportService, Clock, Any]
A = Scope.of_account(Region.AU, "A")
B = Scope.of_account(Region.AU, "B")
AU = Scope.of_region(Region.AU)


def test_complaint_lifecycle_with_pending_excluded(
    world: World,
) -> None:
    service, clock, pool = world
    clock.now = datetime(2026, 12, 7, 9, tzinfo=AEDT)
    given = TicketIn(
        kind=Kind.COMPLAINT, priority=Priority.HIGH, subject="Bill too high", site_id=5
    )
    ticket = service.create(Region.AU, "A", given, CUSTOMER)
    assert ticket.state == State.NEW
    assert ticket.jurisdiction == "AU-VIC"
    # high: first response 4 h, resolution 18 h of business time (policy.yaml, au).
    assert ticket.first_response_due == datetime(2026, 12, 7, 13, tzinfo=AEDT)
    # 18 h from Mon 09:00: Mon 8 h (to 17:00), Tue 9 h, Wed 08:00 + 1 h = 09:00.
    assert ticket.resolution_due == datetime(2026, 12, 9, 9, tzinfo=AEDT)

    clock.now = datetime(2026, 12, 7, 10, tzinfo=AEDT)
    ticket = service.reply(ticket.id, AU, STAFF, "We are looking at it")
    assert ticket.state == State.OPEN
    assert ticket.first_response_at == clock.now

    # Pending Mon 11:00 → Tue 11:00 (the customer replies): no due time meanwhile; then
    # 18 h = Mon 09-11 2 h + Tue 11-17 6 h + Wed 08-17 9 h (17 h), Thu 08:00 + 1 h.
    clock.now = datetime(2026, 12, 7, 11, tzinfo=AEDT)
    ticket = service.move(ticket.id, AU, STAFF, StaffMove(state=State.PENDING, note="photo?"))
    assert ticket.resolution_due is None  # paused
    clock.now = datetime(2026, 12, 8, 11, tzinfo=AEDT)
    ticket = service.reply(ticket.id, A, CUSTOMER, "Here is the photo")
    assert ticket.state == State.OPEN
    assert ticket.resolution_due == datetime(2026, 12, 10, 9, tzinfo=AEDT)

    # A complaint resolves only with outcome and reasons.
    clock.now = datetime(2026, 12, 8, 12, tzinfo=AEDT)
    with pytest.raises(InvalidError):
        service.move(ticket.id, AU, STAFF, StaffMove(state=State.RESOLVED, outcome="Refunded"))
    resolved = StaffMove(state=State.RESOLVED, outcome="Refunded", reasons="Meter misread")
    ticket = service.move(ticket.id, AU, STAFF, resolved)
    detail = service.detail(ticket.id, A, customer=True)
    # Used: Mon 09-11 2 h + Tue 11-12 1 h = 3 h, within 18 h.
    assert detail.resolution.used_s == 3 * 3600
    assert not detail.resolution.breached
    assert detail.first_response.used_s == 3600
    assert [(h.action, h.to_state) for h in detail.history] == [
        ("created", State.NEW),
        ("reply", None),
        ("state", State.OPEN),
        ("state", State.PENDING),
        ("reply", None),
        ("state", State.OPEN),
        ("state", State.RESOLVED),
    ]
    letters = [p for n, p in outbox(pool) if n == "ticket.resolved" and p["ticket_id"] == ticket.id]
    assert len(letters) == 1
    assert letters[0]["outcome"] == "Refunded"
    assert letters[0]["jurisdiction"] == "AU-VIC"

    # Reopen within 14 days; not after.
    clock.now = datetime(2026, 12, 9, 9, tzinfo=AEDT)
    ticket = service.reopen(ticket.id, A, CUSTOMER, "Still wrong")
    assert ticket.state == State.OPEN
    ticket = service.move(ticket.id, AU, STAFF, resolved)
    clock.now = ticket.resolved_at + timedelta(days=14)  # type: ignore[operator]
    with pytest.raises(ConflictError):
        service.reopen(ticket.id, A, CUSTOMER, "again")
    assert service.close_expired(Region.AU) == 0  # the window's end itself is inside
    clock.now += timedelta(seconds=1)
    assert service.close_expired(Region.AU) == 1
    assert service.detail(ticket.id, AU, customer=False).ticket.state == State.CLOSED
    with pytest.raises(ConflictError):
        service.move(ticket.id, AU, STAFF, StaffMove(state=State.OPEN))


def test_scoped_to_the_customer_account(world: World) -> None:
    service, clock, _ = world
    clock.now = datetime(2026, 12, 7, 9, tzinfo=AEDT)
    mine = service.create(Region.AU, "A", TicketIn(kind=Kind.QUESTION, subject="A's"), CUSTOMER)
    theirs = service.create(Region.AU, "B", TicketIn(kind=Kind.QUESTION, subject="B's"), CUSTOMER)
    seen = {t.id for t in service.list_tickets(A, QueueFilter(open_only=False))}
    assert mine.id in seen
    assert theirs.id not in seen
    with pytest.raises(NotFoundError):
        service.detail(theirs.id, A, customer=True)
    with pytest.raises(NotFoundError):
        service.reply(theirs.id, A, CUSTOMER, "hi")
    # Another region's staff do not reach it either.
    with pytest.raises(NotFoundError):
        service.detail(mine.id, Scope.of_region(Region.US), customer=False)
    # A site of another account is refused.
    with pytest.raises(InvalidError):
        service.create(
            Region.AU, "A", TicketIn(kind=Kind.FAULT_REPORT, subject="x", site_id=9), CUSTOMER
        )
    # Internal notes stay with staff.
    service.reply(mine.id, AU, STAFF, "customer called twice", internal=True)
    assert [h.action for h in service.detail(mine.id, A, customer=True).history] == ["created"]
    assert "note" in [h.action for h in service.detail(mine.id, AU, customer=False).history]


def test_requests_to_other_services(world: World) -> None:
    service, clock, pool = world
    clock.now = datetime(2026, 12, 7, 9, tzinfo=AEDT)
    plan = TicketIn(
        kind=Kind.CHANGE_REQUEST,
        change=Change.PLAN_CHANGE,
        subject="Move me to the flat plan",
        plan_code="flat-2",
        plan_from=date(2027, 1, 1),
    )
    ticket = service.create(Region.AU, "A", plan, CUSTOMER)
    service.approve(ticket.id, AU, STAFF, "ok")
    with pytest.raises(ConflictError):
        service.approve(ticket.id, AU, STAFF, "again")
    approved = [p for n, p in outbox(pool) if n == "ticket.plan_change_approved"]
    assert [(p["account_id"], p["plan_code"], p["effective_from"]) for p in approved] == [
        ("A", "flat-2", "2027-01-01")
    ]

    fault = TicketIn(
        kind=Kind.FAULT_REPORT, priority=Priority.URGENT, subject="Inverter dead", site_id=5
    )
    ticket = service.create(Region.AU, "A", fault, CUSTOMER)
    service.request_work(ticket.id, AU, STAFF, "send someone")
    with pytest.raises(ConflictError):
        service.request_work(ticket.id, AU, STAFF, "again")
    asked = [p for n, p in outbox(pool) if n == "ticket.work_requested"]
    assert [(p["ticket_id"], p["site_id"], p["priority"]) for p in asked] == [(ticket.id, 5, "P1")]
    created = WorkOrderChanged(
        work_order_id=41, region="au", site_id=5, type="repair", priority="P1",
        status="scheduled", at=datetime(2026, 12, 7, 9, 5, tzinfo=UTC), ticket_id=ticket.id,
    )  # fmt: skip
    event_id = uuid4()
    assert service.record_work_order(event_id, created)
    assert not service.record_work_order(event_id, created)
    detail = service.detail(ticket.id, A, customer=True)
    assert detail.ticket.work_order_id == 41
    assert ("work_order", "41") in [(lk.kind.value, lk.ref) for lk in detail.links]
