"""Events the dispatch service consumes, each parsed with its producer's model and
handed to :class:`~cloud.dispatch.service.DispatchService` in a thread:

* the registry's ``gateway.registered`` / ``gateway.updated`` keep ``dispatch.sites`` and
  ``dispatch.site_gateways`` (a site's region, account, location, zone and gateways);
* the employees service's ``employee.changed`` keeps ``dispatch.technicians`` (the whole
  record, as :class:`~cloud.dispatch.assignment.Technician` loads it);
* the alerts service's ``alert.*``: the site's alarms (verification), the alert policies
  (work orders raised and assigned) and reopening a job whose fault returned;
* the customers service's ``site.installation_changed`` keeps ``dispatch.installations``
  (the array the clear-sky expectation of a repaired site is computed for);
* the SAP integration's ``service_order.changed``: a service order rejected or completed
  in SAP, shown with its work order (:mod:`cloud.dispatch.sap_status`);
* ingest's ``telemetry.received``: pv_wh readings of sites with a resolved job awaiting
  verification (a batch without them needs no transaction);
* support's ``ticket.work_requested``: a customer's fault report's work order (raised
  and assigned like an alert policy's; its ``workorder.created`` names the ticket).

:func:`event_subscriptions` gives the bus subscriptions the composition root registers;
:func:`run_dispatch_sweeps` runs the service's timers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from cloud.dispatch.service import DispatchService
from cloud.events.alerts import AlarmChanged
from cloud.events.bus import Subscription, event_payload
from cloud.events.employees import EMPLOYEE_CHANGED, EmployeeChanged
from cloud.events.outbox import Event
from cloud.events.service_orders import SERVICE_ORDER_CHANGED, ServiceOrderChanged
from cloud.events.support import TICKET_WORK_REQUESTED, TicketWorkRequested
from cloud.events.types import (
    GATEWAY_REGISTERED,
    GATEWAY_UPDATED,
    SITE_INSTALLATION_CHANGED,
    TELEMETRY_RECEIVED,
    GatewayRegistration,
    InstallationChanged,
    TelemetryReceived,
)

__all__ = [
    "ALERT_CONSUMER",
    "EMPLOYEE_CONSUMER",
    "INSTALLATION_CONSUMER",
    "REGISTERED_CONSUMER",
    "SAP_CONSUMER",
    "SUPPORT_CONSUMER",
    "TELEMETRY_CONSUMER",
    "UPDATED_CONSUMER",
    "AlarmHandler",
    "EmployeeHandler",
    "GatewayRegistrationHandler",
    "InstallationHandler",
    "SapStatusHandler",
    "TelemetryHandler",
    "WorkRequestHandler",
    "event_subscriptions",
    "run_dispatch_sweeps",
]

log = logging.getLogger(__name__)

#: The dispatch service's queues (``potr.dispatch.*`` on RabbitMQ).
REGISTERED_CONSUMER = "dispatch.gateway_registered"
UPDATED_CONSUMER = "dispatch.gateway_updated"
EMPLOYEE_CONSUMER = "dispatch.employees"
ALERT_CONSUMER = "dispatch.alerts"
INSTALLATION_CONSUMER = "dispatch.installations"
TELEMETRY_CONSUMER = "dispatch.telemetry"
SAP_CONSUMER = "dispatch.sap_service_orders"
SUPPORT_CONSUMER = "dispatch.support"


class GatewayRegistrationHandler:
    """``gateway.registered`` / ``gateway.updated`` → the site's record."""

    def __init__(self, service: DispatchService) -> None:
        self._service = service

    async def __call__(self, event: Event) -> None:
        reg = event_payload(event, GatewayRegistration)
        await asyncio.to_thread(self._service.record_gateway, event.id, reg, event.occurred_at)


class EmployeeHandler:
    """``employee.changed`` → the technician's record (the newest wins)."""

    def __init__(self, service: DispatchService) -> None:
        self._service = service

    async def __call__(self, event: Event) -> None:
        changed = event_payload(event, EmployeeChanged)
        await asyncio.to_thread(
            self._service.record_technician,
            event.id,
            changed.model_dump(mode="json"),
            changed.region,
            changed.updated_at,
        )


class AlarmHandler:
    """``alert.*`` → :meth:`DispatchService.handle_alarm`."""

    def __init__(self, service: DispatchService) -> None:
        self._service = service

    async def __call__(self, event: Event) -> None:
        alarm = event_payload(event, AlarmChanged)
        await asyncio.to_thread(
            self._service.handle_alarm, event.id, event.name, alarm, event.region
        )


class SapStatusHandler:
    """``service_order.changed`` → SAP's status beside the work order."""

    def __init__(self, service: DispatchService) -> None:
        self._service = service

    async def __call__(self, event: Event) -> None:
        changed = event_payload(event, ServiceOrderChanged)
        await asyncio.to_thread(self._service.record_sap_status, event.id, changed)


class InstallationHandler:
    """``site.installation_changed`` → the site's array."""

    def __init__(self, service: DispatchService) -> None:
        self._service = service

    async def __call__(self, event: Event) -> None:
        installation = event_payload(event, InstallationChanged)
        await asyncio.to_thread(self._service.record_installation, event.id, installation)


class WorkRequestHandler:
    """Support's ``ticket.work_requested`` → :meth:`DispatchService.handle_work_request`."""

    def __init__(self, service: DispatchService) -> None:
        self._service = service

    async def __call__(self, event: Event) -> None:
        request = event_payload(event, TicketWorkRequested)
        await asyncio.to_thread(self._service.handle_work_request, event.id, request)


class TelemetryHandler:
    """``telemetry.received`` → :meth:`DispatchService.record_samples` (when it carries
    values of announced metrics)."""

    def __init__(self, service: DispatchService) -> None:
        self._service = service

    async def __call__(self, event: Event) -> None:
        received = event_payload(event, TelemetryReceived)
        if not received.samples:
            return
        await asyncio.to_thread(self._service.record_samples, received.gateway_id, received.samples)


def event_subscriptions(service: DispatchService) -> list[Subscription]:
    """The dispatch service's subscriptions, every region."""
    handler = GatewayRegistrationHandler(service)
    return [
        Subscription(REGISTERED_CONSUMER, f"*.registry.{GATEWAY_REGISTERED}", handler),
        Subscription(UPDATED_CONSUMER, f"*.registry.{GATEWAY_UPDATED}", handler),
        Subscription(
            EMPLOYEE_CONSUMER, f"*.employees.{EMPLOYEE_CHANGED}", EmployeeHandler(service)
        ),
        Subscription(ALERT_CONSUMER, "*.alerts.alert.*", AlarmHandler(service)),
        Subscription(
            INSTALLATION_CONSUMER,
            f"*.customers.{SITE_INSTALLATION_CHANGED}",
            InstallationHandler(service),
        ),
        Subscription(
            TELEMETRY_CONSUMER, f"*.ingest.{TELEMETRY_RECEIVED}", TelemetryHandler(service)
        ),
        Subscription(SAP_CONSUMER, f"*.sap.{SERVICE_ORDER_CHANGED}", SapStatusHandler(service)),
        Subscription(
            SUPPORT_CONSUMER, f"*.support.{TICKET_WORK_REQUESTED}", WorkRequestHandler(service)
        ),
    ]


async def run_dispatch_sweeps(
    service: DispatchService, stop: asyncio.Event, every_s: float
) -> None:
    """:meth:`DispatchService.sweep` every ``every_s`` seconds (in a thread) until
    ``stop``; a failed sweep is logged and the next one tries again."""
    while not stop.is_set():
        try:
            result = await asyncio.to_thread(service.sweep)
            if result.created or result.breached or result.verified:
                log.info(
                    "dispatch sweep: %d raised, %d SLA breaches, %d verified",
                    result.created,
                    result.breached,
                    result.verified,
                )
        except Exception:
            log.exception("dispatch sweep failed; trying again in %.0f s", every_s)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s)
