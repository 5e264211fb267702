"""Events the alerts service consumes, each parsed with its producer's model
(:mod:`cloud.events.types`) and handed to :class:`~cloud.alerts.service.AlertService`
in a thread:

* the registry's ``gateway.registered`` / ``gateway.updated`` keep ``alerts.gateways``
  (site, region, the site's account): the only way alerts learns who a gateway belongs to;
* ingest's gateway events (``gateway.isolator_opened`` …) and gateway presence
  (``gateway.offline`` / ``gateway.online``), ingest's device presence (``device.offline``
  / ``online`` / ``asleep`` / ``faulty``) and the config service's outcomes
  (``config.applied`` / ``failed`` / ``drifted``) become rule inputs. Events no enabled
  rule names (``gateway.birth``, ``gateway.data_dropped`` …) are dropped without a
  transaction;
* ingest's ``gateway.birth`` keeps the kinds of each gateway's devices (``alerts.devices``,
  classified as the registry does) for rules that name kinds; its
  ``device.day_completeness`` (a device's closed local day) feeds the completeness rules;
* dispatch's ``workorder.*``: a site is out of service for alarms while a technician is
  on it (``alerts.work_orders``);
* the customers service's ``site.installation_changed`` keeps ``alerts.installations``
  (each site's array: kWp, tilt, azimuth);
* ingest's ``telemetry.received`` (one per gateway per batch, carrying the announced
  metrics' stored values) feeds the threshold and battery-health rules, per gateway
  (ARCHITECTURE 76); a batch without such values needs no transaction.

:func:`event_subscriptions` gives the bus subscriptions the composition root registers.
"""

from __future__ import annotations

import asyncio

from cloud.alerts.service import AlertService, KnownGateway
from cloud.events.bus import Subscription, event_payload
from cloud.events.outbox import Event
from cloud.events.types import (
    DEVICE_DAY_COMPLETENESS,
    GATEWAY_BIRTH,
    GATEWAY_OFFLINE,
    GATEWAY_ONLINE,
    GATEWAY_REGISTERED,
    GATEWAY_UPDATED,
    SITE_INSTALLATION_CHANGED,
    TELEMETRY_RECEIVED,
    ConfigOutcome,
    DeviceDayCompleteness,
    DevicePresence,
    GatewayBirth,
    GatewayEventReported,
    GatewayPresence,
    GatewayRegistration,
    InstallationChanged,
    TelemetryReceived,
)
from cloud.events.workorders import WORKORDER_PREFIX, WorkOrderChanged
from device_profiles.kinds import device_kind

__all__ = [
    "BIRTH_CONSUMER",
    "CONFIG_CONSUMER",
    "DAY_CONSUMER",
    "DEVICE_CONSUMER",
    "GATEWAY_CONSUMER",
    "INSTALLATION_CONSUMER",
    "REGISTERED_CONSUMER",
    "TELEMETRY_CONSUMER",
    "UPDATED_CONSUMER",
    "WORK_ORDER_CONSUMER",
    "AlertEventHandler",
    "BirthHandler",
    "DayHandler",
    "GatewayRegistrationHandler",
    "InstallationHandler",
    "TelemetryHandler",
    "WorkOrderHandler",
    "event_subscriptions",
]

#: The alerts service's queues (``potr.alerts.*`` on RabbitMQ).
REGISTERED_CONSUMER = "alerts.gateway_registered"
UPDATED_CONSUMER = "alerts.gateway_updated"
GATEWAY_CONSUMER = "alerts.gateway_events"
DEVICE_CONSUMER = "alerts.device_presence"
CONFIG_CONSUMER = "alerts.config_outcomes"
TELEMETRY_CONSUMER = "alerts.telemetry"
INSTALLATION_CONSUMER = "alerts.installations"
BIRTH_CONSUMER = "alerts.gateway_births"
WORK_ORDER_CONSUMER = "alerts.work_orders"
DAY_CONSUMER = "alerts.device_days"


class GatewayRegistrationHandler:
    """``gateway.registered`` / ``gateway.updated`` → ``alerts.gateways``."""

    def __init__(self, service: AlertService) -> None:
        self._service = service

    async def __call__(self, event: Event) -> None:
        reg = event_payload(event, GatewayRegistration)
        gateway = KnownGateway(
            reg.gateway_id,
            reg.region,
            reg.site_id,
            reg.account_id,
            reg.time_zone,
            reg.site_name,
            reg.latitude,
            reg.longitude,
        )
        await asyncio.to_thread(self._service.record_gateway, event.id, gateway, event.occurred_at)


class AlertEventHandler:
    """A gateway's, a device's or a config's event → :meth:`AlertService.handle`."""

    def __init__(self, service: AlertService) -> None:
        self._service = service

    async def __call__(self, event: Event) -> None:
        if not self._service.listens(event.region, event.name):
            return
        gateway_id, device = _about(event)
        await asyncio.to_thread(
            self._service.handle, event.id, gateway_id, event.name, event.occurred_at, device
        )


class InstallationHandler:
    """``site.installation_changed`` → ``alerts.installations`` (the array the clear-sky
    expectation of shortfall rules is computed for)."""

    def __init__(self, service: AlertService) -> None:
        self._service = service

    async def __call__(self, event: Event) -> None:
        installation = event_payload(event, InstallationChanged)
        await asyncio.to_thread(self._service.record_installation, event.id, installation)


class BirthHandler:
    """``gateway.birth`` → the kinds of the gateway's devices (``alerts.devices``)."""

    def __init__(self, service: AlertService) -> None:
        self._service = service

    async def __call__(self, event: Event) -> None:
        birth = event_payload(event, GatewayBirth)
        kinds = {d.device: device_kind(d.models, d.profile) for d in birth.devices}
        await asyncio.to_thread(
            self._service.record_devices, event.id, birth.gateway_id, kinds, event.occurred_at
        )


class DayHandler:
    """``device.day_completeness`` → :meth:`AlertService.handle_day`."""

    def __init__(self, service: AlertService) -> None:
        self._service = service

    async def __call__(self, event: Event) -> None:
        day = event_payload(event, DeviceDayCompleteness)
        await asyncio.to_thread(self._service.handle_day, event.id, day, event.occurred_at)


class WorkOrderHandler:
    """Dispatch's ``workorder.*`` → the site out of service while a technician is on it."""

    def __init__(self, service: AlertService) -> None:
        self._service = service

    async def __call__(self, event: Event) -> None:
        order = event_payload(event, WorkOrderChanged)
        await asyncio.to_thread(self._service.record_work_order, event.id, order)


class TelemetryHandler:
    """``telemetry.received`` → :meth:`AlertService.handle_samples` (when it carries
    values of announced metrics)."""

    def __init__(self, service: AlertService) -> None:
        self._service = service

    async def __call__(self, event: Event) -> None:
        received = event_payload(event, TelemetryReceived)
        if not received.samples:
            return
        await asyncio.to_thread(
            self._service.handle_samples, event.id, received.gateway_id, received.samples
        )


def _about(event: Event) -> tuple[str, str | None]:
    """The gateway (and device) an event is about, by its producer's payload model."""
    if event.source == "config":
        return event_payload(event, ConfigOutcome).gateway_id, None
    if event.name.startswith("device."):
        presence = event_payload(event, DevicePresence)
        return presence.gateway_id, presence.device
    if event.name in (GATEWAY_OFFLINE, GATEWAY_ONLINE):
        return event_payload(event, GatewayPresence).gateway_id, None
    reported = event_payload(event, GatewayEventReported)
    return reported.gateway_id, reported.device


def event_subscriptions(service: AlertService) -> list[Subscription]:
    """The alerts service's subscriptions, every region."""
    registration = GatewayRegistrationHandler(service)
    events = AlertEventHandler(service)
    telemetry = TelemetryHandler(service)
    return [
        Subscription(REGISTERED_CONSUMER, f"*.registry.{GATEWAY_REGISTERED}", registration),
        Subscription(UPDATED_CONSUMER, f"*.registry.{GATEWAY_UPDATED}", registration),
        Subscription(GATEWAY_CONSUMER, "*.ingest.gateway.*", events),
        Subscription(DEVICE_CONSUMER, "*.ingest.device.*", events),
        Subscription(CONFIG_CONSUMER, "*.config.config.*", events),
        Subscription(TELEMETRY_CONSUMER, f"*.ingest.{TELEMETRY_RECEIVED}", telemetry),
        Subscription(
            WORK_ORDER_CONSUMER,
            f"*.dispatch.{WORKORDER_PREFIX}*",
            WorkOrderHandler(service),
        ),
        Subscription(BIRTH_CONSUMER, f"*.ingest.{GATEWAY_BIRTH}", BirthHandler(service)),
        Subscription(DAY_CONSUMER, f"*.ingest.{DEVICE_DAY_COMPLETENESS}", DayHandler(service)),
        Subscription(
            INSTALLATION_CONSUMER,
            f"*.customers.{SITE_INSTALLATION_CHANGED}",
            InstallationHandler(service),
        ),
    ]
