"""Events the billing service consumes: telemetry's ``energy.revised`` (late data for a
site's local days) trues up the invoices of those days
(:meth:`~cloud.billing.service.BillingService.true_up`, once per event, in a thread);
dispatch's ``workorder.chargeable_completed`` (a job the customer pays for) issues its
service invoice (:meth:`~cloud.billing.service.BillingService.charge_work_order`, once
per event and work order)."""

from __future__ import annotations

import asyncio

from cloud.billing.service import BillingService
from cloud.events.bus import Subscription, event_payload
from cloud.events.outbox import Event
from cloud.events.types import ENERGY_REVISED, EnergyRevised
from cloud.events.workorders import WORKORDER_CHARGEABLE_COMPLETED, WorkOrderChargeable

__all__ = [
    "CHARGEABLE_CONSUMER",
    "REVISED_CONSUMER",
    "ChargeableCompletedHandler",
    "EnergyRevisedHandler",
    "event_subscriptions",
]

#: The billing service's queues (``potr.billing.*`` on RabbitMQ).
REVISED_CONSUMER = "billing.energy_revised"
CHARGEABLE_CONSUMER = "billing.chargeable_jobs"


class EnergyRevisedHandler:
    """``energy.revised`` → credit or debit notes for the invoiced days it names."""

    def __init__(self, service: BillingService) -> None:
        self._service = service

    async def __call__(self, event: Event) -> None:
        revised = event_payload(event, EnergyRevised)
        await asyncio.to_thread(self._service.true_up, event.id, event.region, revised)


class ChargeableCompletedHandler:
    """``workorder.chargeable_completed`` → the job's service invoice."""

    def __init__(self, service: BillingService) -> None:
        self._service = service

    async def __call__(self, event: Event) -> None:
        charge = event_payload(event, WorkOrderChargeable)
        await asyncio.to_thread(self._service.charge_work_order, event.id, event.region, charge)


def event_subscriptions(service: BillingService) -> list[Subscription]:
    """The billing service's subscriptions, every region."""
    return [
        Subscription(
            REVISED_CONSUMER, f"*.telemetry.{ENERGY_REVISED}", EnergyRevisedHandler(service)
        ),
        Subscription(
            CHARGEABLE_CONSUMER,
            f"*.dispatch.{WORKORDER_CHARGEABLE_COMPLETED}",
            ChargeableCompletedHandler(service),
        ),
    ]
