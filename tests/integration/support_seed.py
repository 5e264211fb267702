"""Support tickets with known timestamps, made through the support service on the test's
clock, and customer accounts written as customers stores them — with the figures the
support report and tickets per 1,000 customers must show, worked out by hand below
(never by the code under test).

Region au, September 2026: Sydney is AEST +10 all month (DST starts 4 October); NSW's
business hours are 08:00-17:00 on weekdays; no NSW holiday falls between 28 August and
1 October (Labour Day is 5 October). Targets (support policy, au): urgent 1 h / 9 h,
high 4 h / 18 h, normal 9 h / 45 h, low 18 h / 90 h (first response / resolution).
Tuesday is 1 September.

**SLA attainment** (a clock counts in the month it was decided: a met one at its event,
a late one at its due time):

* T1 high question, raised Tue 1 Sep 09:00, answered 10:00 (due 13:00: met), resolved
  12:00 (due Wed 2 Sep 18 h later: met).
* T2 high complaint, raised Tue 1 Sep 09:00, answered 15:00 (due 13:00: late), resolved
  Thu 3 Sep 12:00 (18 h = Tue 8 + Wed 9 + Thu 08:00-09:00: due Thu 09:00, late).
* T3 urgent question, raised Wed 2 Sep 09:00, answered 09:30 (due 10:00: met), pending
  10:00 until the customer answers Fri 4 Sep 10:00, resolved Fri 16:00: 1 h + 6 h = 7 h
  of 9 h, met (counting the pending time it would be late: due Thu 09:00).
* T4 normal change request (a move), raised Wed 30 Sep 16:00, answered Thu 1 Oct 10:00
  (due Thu 16:00): decided in October, nothing in September.
* T5 low question, raised Mon 7 Sep 09:00, never answered: first response due Wed 9 Sep
  09:00 (8 + 9 + 1 h), late; resolution due Mon 21 Sep 09:00 (8 + 4 x 9 + 5 x 9 + 1 h
  = 90 h), late. Both decided in September.
* T6 normal complaint, raised Fri 28 Aug 09:00, answered 10:00 (August), resolved Tue 1
  Sep 10:00 (45 h: due Fri 4 Sep 09:00, met): its resolution counts in September.
* T7 question (normal), raised Thu 1 Oct 00:30 local (30 Sep 14:30Z): October.
* T8 urgent question, raised Wed 30 Sep 16:00, answered Thu 1 Oct 09:00: its first
  response was due Wed 17:00 — late, and decided in September although the answer came
  in October. Its resolution (due Thu 1 Oct 16:00, 1 + 8 h) is October's.
* An es ticket, high, answered and resolved in September: es's, not au's.

au September: urgent first response 2 measured, 1 met (50.0), resolution 1 of 1
(100.0); high 2 / 1 (50.0) and 2 / 1 (50.0); normal none measured, resolution 1 / 1
(100.0); low 1 / 0 (0.0) and 1 / 0 (0.0). Total: 5 / 2 (40.0), 5 / 3 (60.0).

**Tickets per 1,000 customers** (au accounts: c1 opened 10 Jan, c2 2 May, c3 31 Aug
23:00 local, c4 1 Sep 00:30 local, c5 1 Mar but closed since — never counted; the world's
own accounts are opened today, after these months). Customers at the end of April: 1;
May to July: 2; August: 3; September: 4. Raised in August: 1 complaint (T6) → 1 x 1000
/ 3 = 333.3, all 333.3. September: 4 questions (T1, T3, T5, T8) → 1000.0; 1 complaint
(T2) → 250.0; 1 change request (T4) → 250.0; all 6 → 1500.0. Other kinds and months
0.0.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from cloud.adapters.postgres import Connection, ConnectionPool
from cloud.scope import Scope
from cloud.support import Actor, Change, Kind, Priority, StaffMove, State, SupportService, TicketIn
from contracts.topics import Region

Pool = ConnectionPool[Connection[Any]]
AEST = timezone(timedelta(hours=10))
MADRID = ZoneInfo("Europe/Madrid")
AU = Scope.of_region(Region.AU)
ES = Scope.of_region(Region.ES)
STAFF = Actor("E09001", "support")
ACCOUNTS = {
    # name: (opened, closed since)
    "c1": (datetime(2026, 1, 10, tzinfo=UTC), False),
    "c2": (datetime(2026, 5, 2, tzinfo=UTC), False),
    "c3": (datetime(2026, 8, 31, 23, tzinfo=AEST), False),
    "c4": (datetime(2026, 9, 1, 0, 30, tzinfo=AEST), False),
    "c5": (datetime(2026, 3, 1, tzinfo=UTC), True),
}

#: The support report's cells for au, September 2026 (page, CSV and PDF).
SUPPORT = [
    ["urgent", "2", "1", "50.0", "1", "1", "100.0"],
    ["high", "2", "1", "50.0", "2", "1", "50.0"],
    ["normal", "0", "0", "", "1", "1", "100.0"],
    ["low", "1", "0", "0.0", "1", "0", "0.0"],
]
SUPPORT_TOTAL = ["total", "5", "2", "40.0", "5", "3", "60.0"]
_KINDS = ("complaint", "question", "change_request", "fault_report", "data_export")
#: Tickets per 1,000 customers, au: month → customers and (kind → tickets, per 1,000).
RATES: dict[str, tuple[int, dict[str, tuple[int, str]]]] = {
    "2026-04": (1, {k: (0, "0.0") for k in (*_KINDS, "data_erasure", "all")}),
    "2026-05": (2, {k: (0, "0.0") for k in (*_KINDS, "data_erasure", "all")}),
    "2026-06": (2, {k: (0, "0.0") for k in (*_KINDS, "data_erasure", "all")}),
    "2026-07": (2, {k: (0, "0.0") for k in (*_KINDS, "data_erasure", "all")}),
    "2026-08": (
        3,
        {
            **{k: (0, "0.0") for k in (*_KINDS, "data_erasure")},
            "complaint": (1, "333.3"),
            "all": (1, "333.3"),
        },
    ),
    "2026-09": (
        4,
        {
            **{k: (0, "0.0") for k in (*_KINDS, "data_erasure")},
            "question": (4, "1000.0"),
            "complaint": (1, "250.0"),
            "change_request": (1, "250.0"),
            "all": (6, "1500.0"),
        },
    ),
}


class SteppedClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 8, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def _accounts(pool: Pool) -> str:
    with pool.connection() as conn:
        for n, (name, (opened, closed)) in enumerate(ACCOUNTS.items()):
            conn.execute(
                "INSERT INTO customers.accounts (id, region, name, email, status, created_at,"
                " updated_at) VALUES (%s, 'au', %s, %s, %s, %s, %s)",
                (f"acc_{n + 1:032x}", name, f"{name}@example.com",
                 "closed" if closed else "active", opened, opened),
            )  # fmt: skip
    return f"acc_{1:032x}"


def seed_support(pool: Pool) -> None:
    """The accounts and tickets above."""
    account = _accounts(pool)
    clock = SteppedClock()
    service = SupportService(
        pool,
        site_facts=lambda region, site_id: None,
        account_known=lambda region, account_id: True,
        clock=clock,
    )
    customer = Actor("user-c1", "customer")

    def at(when: datetime, act: Callable[[], Any]) -> Any:
        clock.now = when
        return act()

    def raise_(region: Region, when: datetime, kind: Kind, priority: Priority, **more: Any) -> int:
        given = TicketIn(kind=kind, priority=priority, subject=f"{kind} {when:%d %H:%M}", **more)
        return int(at(when, lambda: service.create(region, account, given, customer)).id)

    def reply(ticket: int, when: datetime, scope: Scope = AU) -> None:
        at(when, lambda: service.reply(ticket, scope, STAFF, "looking"))

    def move(ticket: int, when: datetime, state: State, scope: Scope = AU) -> None:
        given = StaffMove(state=state, outcome="done", reasons="because")
        at(when, lambda: service.move(ticket, scope, STAFF, given))

    def d(day: int, hour: int, minute: int = 0, month: int = 9) -> datetime:
        return datetime(2026, month, day, hour, minute, tzinfo=AEST)

    t1 = raise_(Region.AU, d(1, 9), Kind.QUESTION, Priority.HIGH)
    reply(t1, d(1, 10))
    move(t1, d(1, 12), State.RESOLVED)
    t2 = raise_(Region.AU, d(1, 9), Kind.COMPLAINT, Priority.HIGH)
    reply(t2, d(1, 15))
    move(t2, d(3, 12), State.RESOLVED)
    t3 = raise_(Region.AU, d(2, 9), Kind.QUESTION, Priority.URGENT)
    reply(t3, d(2, 9, 30))
    move(t3, d(2, 10), State.PENDING)
    at(d(4, 10), lambda: service.reply(t3, Scope.of_account(Region.AU, account), customer, "ok"))
    move(t3, d(4, 16), State.RESOLVED)
    t4 = raise_(Region.AU, d(30, 16), Kind.CHANGE_REQUEST, Priority.NORMAL, change=Change.MOVE)
    reply(t4, d(1, 10, month=10))
    raise_(Region.AU, d(7, 9), Kind.QUESTION, Priority.LOW)  # T5, never answered
    t6 = raise_(Region.AU, d(28, 9, month=8), Kind.COMPLAINT, Priority.NORMAL)
    reply(t6, d(28, 10, month=8))
    move(t6, d(1, 10), State.RESOLVED)
    raise_(Region.AU, d(1, 0, 30, month=10), Kind.QUESTION, Priority.NORMAL)  # T7
    t8 = raise_(Region.AU, d(30, 16), Kind.QUESTION, Priority.URGENT)
    reply(t8, d(1, 9, month=10))
    es = raise_(Region.ES, datetime(2026, 9, 1, 10, tzinfo=MADRID), Kind.QUESTION, Priority.HIGH)
    reply(es, datetime(2026, 9, 1, 10, 30, tzinfo=MADRID), ES)
    move(es, datetime(2026, 9, 1, 11, tzinfo=MADRID), State.RESOLVED, ES)
