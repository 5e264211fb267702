"""Events the support service consumes, and its sweep: dispatch's ``workorder.created``
of a work order raised for a ticket links it to the ticket
(:meth:`~cloud.support.service.SupportService.record_work_order`, once per event, in a
thread); :func:`run_support_sweeps` closes resolved tickets whose reopen window is over."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from cloud.events.bus import Subscription, event_payload
from cloud.events.outbox import Event
from cloud.events.workorders import WORKORDER_CREATED, WorkOrderChanged
from cloud.support.service import SupportService
from contracts.topics import Region

__all__ = ["WORKORDER_CONSUMER", "WorkOrderCreatedHandler", "event_subscriptions"]

log = logging.getLogger(__name__)

#: The support service's queue (``potr.support.*`` on RabbitMQ).
WORKORDER_CONSUMER = "support.workorders"


class WorkOrderCreatedHandler:
    """``workorder.created`` → the ticket it was raised for, if any, links it."""

    def __init__(self, service: SupportService) -> None:
        self._service = service

    async def __call__(self, event: Event) -> None:
        order = event_payload(event, WorkOrderChanged)
        if order.ticket_id is None:
            return
        await asyncio.to_thread(self._service.record_work_order, event.id, order)


def event_subscriptions(service: SupportService) -> list[Subscription]:
    """The support service's subscriptions, every region."""
    return [
        Subscription(
            WORKORDER_CONSUMER,
            f"*.dispatch.{WORKORDER_CREATED}",
            WorkOrderCreatedHandler(service),
        )
    ]


async def run_support_sweeps(service: SupportService, stop: asyncio.Event, every_s: float) -> None:
    """Close expired resolved tickets of every region every ``every_s`` seconds until
    ``stop``; a failed sweep is logged and the next one tries again."""
    while not stop.is_set():
        for region in Region:
            try:
                closed = await asyncio.to_thread(service.close_expired, region)
                if closed:
                    log.info("support: closed %d resolved tickets in %s", closed, region.value)
            except Exception:
                log.exception("support sweep of %s failed", region.value)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every_s)
