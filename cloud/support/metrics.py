"""Support's figures (issue 20 points 1 and 2) as pure functions: no I/O, no clock.

**SLA attainment.** Each ticket has two clocks (:mod:`cloud.support.sla`); a clock is
*decided* once its outcome can no longer change: **met** when its event (the first
response, the resolution) happened at or before its due time — decided at the event —
or **breached** when its due time passed without the event — decided at the due time
(a late event later does not move it). A region's attainment for a local month counts
the clocks decided in that month, per priority: *measured* (decided), *met*, and their
ratio. A clock still running inside its target, or paused, is not decided. A resolved
ticket that is reopened runs its resolution clock again, so a month's figure can move
when a ticket resolved in it is reopened later.

**Tickets per 1,000 customers** (what self-service avoids): per local month and kind,
the tickets raised in the month (their creation, in the region's zone) per 1,000 of the
region's customers at the month's end — the customer accounts created before the month
ended and not closed now (the account holds no closing date, so a closed account leaves
every month's count). Rounded half up to 0.1; no figure where there were no customers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from cloud.calendars import month_bounds
from cloud.support.lifecycle import Kind, Priority
from cloud.support.models import TicketRate
from cloud.support.sla import Clock

__all__ = [
    "PRIORITY_ORDER",
    "Attainment",
    "Decided",
    "attainment",
    "decided",
    "month_bounds",
    "months_up_to",
    "per_thousand",
    "ticket_rates",
]

#: The report's rows, the most urgent first.
PRIORITY_ORDER = (Priority.URGENT, Priority.HIGH, Priority.NORMAL, Priority.LOW)
_TENTH = Decimal("0.1")


@dataclass(frozen=True)
class Decided:
    """A clock's outcome and the instant it was decided."""

    at: datetime
    met: bool


@dataclass(frozen=True)
class Attainment:
    """One priority's clocks decided in a month: measured and met, per clock."""

    priority: Priority
    first_response_measured: int = 0
    first_response_met: int = 0
    resolution_measured: int = 0
    resolution_met: int = 0


def decided(c: Clock, now: datetime) -> Decided | None:
    """``c``'s outcome at ``now`` (module docstring), None while undecided."""
    if c.stopped_at is not None:
        if c.breached and c.due is not None:
            return Decided(c.due, met=False)
        return Decided(c.stopped_at, met=True)
    if c.due is not None and now > c.due:
        return Decided(c.due, met=False)
    return None


def attainment(
    clocks: Iterable[tuple[Priority, Decided | None, Decided | None]],
    since: datetime,
    until: datetime,
) -> list[Attainment]:
    """Per priority (:data:`PRIORITY_ORDER`, every one), the first-response and
    resolution outcomes of ``clocks`` decided in ``[since, until)``."""
    counts = {p: [0, 0, 0, 0] for p in PRIORITY_ORDER}
    for priority, first, resolution in clocks:
        row = counts[priority]
        for offset, outcome in ((0, first), (2, resolution)):
            if outcome is not None and since <= outcome.at < until:
                row[offset] += 1
                row[offset + 1] += int(outcome.met)
    return [Attainment(p, *counts[p]) for p in PRIORITY_ORDER]


def per_thousand(tickets: int, customers: int) -> Decimal | None:
    """``tickets`` per 1,000 ``customers``, half up to 0.1; None without customers."""
    if customers <= 0:
        return None
    return (Decimal(tickets) * 1000 / Decimal(customers)).quantize(_TENTH, rounding=ROUND_HALF_UP)


def months_up_to(last: date, count: int) -> list[date]:
    """The ``count`` months ending with ``last``'s, oldest first (first days)."""
    out = [last.replace(day=1)]
    while len(out) < count:
        out.append((out[-1] - timedelta(days=1)).replace(day=1))
    return out[::-1]


def ticket_rates(
    months: Sequence[date],
    raised: Mapping[tuple[date, Kind], int],
    customers: Mapping[date, int],
) -> list[TicketRate]:
    """For each month (in order) and each kind, then all kinds together: the tickets
    ``raised`` (by month and kind; none given: 0) per 1,000 of the month's
    ``customers``."""
    out: list[TicketRate] = []
    for month in months:
        base = customers.get(month, 0)
        total = 0
        for kind in Kind:
            n = raised.get((month, kind), 0)
            total += n
            out.append(_rate(month, kind.value, n, base))
        out.append(_rate(month, "all", total, base))
    return out


def _rate(month: date, kind: str, tickets: int, customers: int) -> TicketRate:
    return TicketRate(
        month=f"{month:%Y-%m}",
        kind=kind,
        tickets=tickets,
        customers=customers,
        per_thousand=per_thousand(tickets, customers),
    )
