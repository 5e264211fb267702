"""Events the customers service consumes: support's ``ticket.plan_change_approved`` →
:meth:`~cloud.customers.service.CustomersService.record_plan_change` (once per event, in
a thread); :func:`run_plan_changes` applies the changes whose date has come, daily."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, date, datetime

from cloud.customers.service import CustomersService
from cloud.events.bus import Subscription, event_payload
from cloud.events.outbox import Event
from cloud.events.support import TICKET_PLAN_CHANGE_APPROVED, PlanChangeApproved

__all__ = ["PLAN_CONSUMER", "PlanChangeHandler", "event_subscriptions", "run_plan_changes"]

log = logging.getLogger(__name__)

#: The customers service's queue (``potr.customers.*`` on RabbitMQ).
PLAN_CONSUMER = "customers.plan_changes"


def _today() -> date:
    return datetime.now(UTC).date()


class PlanChangeHandler:
    """``ticket.plan_change_approved`` → the account's plan from the date it names."""

    def __init__(self, service: CustomersService, today: Callable[[], date] = _today) -> None:
        self._service = service
        self._today = today

    async def __call__(self, event: Event) -> None:
        change = event_payload(event, PlanChangeApproved)
        await asyncio.to_thread(self._service.record_plan_change, event.id, change, self._today())


def event_subscriptions(service: CustomersService) -> list[Subscription]:
    """The customers service's subscriptions, every region."""
    return [
        Subscription(
            PLAN_CONSUMER, f"*.support.{TICKET_PLAN_CHANGE_APPROVED}", PlanChangeHandler(service)
        )
    ]


async def run_plan_changes(
    service: CustomersService, stop: asyncio.Event, every_s: float = 3600.0
) -> None:
    """Apply due plan changes every ``every_s`` seconds until ``stop`` (a failure is
    logged; the next round tries again)."""
    while not stop.is_set():
        try:
            await asyncio.to_thread(service.apply_due_plan_changes, _today())
        except Exception:
            log.exception("applying due plan changes failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every_s)
