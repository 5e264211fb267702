"""Events the config service consumes: ingest's (gateways' answers), dispatch's
(``workorder.*``: a technician on site holds the site's gateways; who is assigned where
judges technicians' pushes) and identity's (``user.*``: which broker identity is which
employee), in every region.

:func:`subscriptions` gives the bus subscriptions a composition root registers; each
handler runs the :class:`~cloud.config.tracker.ConfigTracker` in a thread.
"""

from __future__ import annotations

import asyncio
import logging

from cloud.config.tracker import ConfigTracker
from cloud.events.bus import Handler, Subscription, event_payload
from cloud.events.outbox import Event
from cloud.events.types import (
    COMMAND_ACKED,
    CONFIG_REPORTED,
    GATEWAY_BIRTH,
    GATEWAY_REGISTERED,
    GATEWAY_UPDATED,
    CommandAcked,
    ConfigReported,
    GatewayBirth,
    GatewayRegistration,
)
from cloud.events.users import (
    USER_CREATED,
    USER_DISABLED,
    USER_ENABLED,
    USER_UPDATED,
    UserChanged,
)
from cloud.events.workorders import WORKORDER_PREFIX, WorkOrderChanged

__all__ = [
    "ACK_CONSUMER",
    "BIRTH_CONSUMER",
    "REGISTERED_CONSUMER",
    "REPORT_CONSUMER",
    "UPDATED_CONSUMER",
    "USER_CONSUMER",
    "WORKORDER_CONSUMER",
    "subscriptions",
]

log = logging.getLogger(__name__)

BIRTH_CONSUMER = "config.gateway_birth"
ACK_CONSUMER = "config.command_acked"
REPORT_CONSUMER = "config.config_reported"
WORKORDER_CONSUMER = "config.workorders"
REGISTERED_CONSUMER = "config.gateway_registered"
UPDATED_CONSUMER = "config.gateway_updated"
USER_CONSUMER = "config.users"


def _birth_handler(tracker: ConfigTracker) -> Handler:
    async def handle(event: Event) -> None:
        birth = event_payload(event, GatewayBirth)
        await asyncio.to_thread(
            tracker.apply_birth, event.id, event.region.value, event.occurred_at, birth
        )

    return handle


def _registration_handler(tracker: ConfigTracker) -> Handler:
    async def handle(event: Event) -> None:
        registration = event_payload(event, GatewayRegistration)
        await asyncio.to_thread(
            tracker.apply_registration, event.id, event.occurred_at, registration
        )

    return handle


def _ack_handler(tracker: ConfigTracker) -> Handler:
    async def handle(event: Event) -> None:
        ack = event_payload(event, CommandAcked)
        status = await asyncio.to_thread(tracker.apply_command_ack, event.id, ack)
        if status is not None:
            log.info("command %s on %s: %s", ack.command_id, ack.gateway_id, status)

    return handle


def _report_handler(tracker: ConfigTracker) -> Handler:
    async def handle(event: Event) -> None:
        report = event_payload(event, ConfigReported)
        name = await asyncio.to_thread(
            tracker.apply_config_report, event.id, event.region.value, event.occurred_at, report
        )
        if name is not None:
            log.info("gateway %s config v%s: %s", report.gateway_id, report.version, name)

    return handle


def _workorder_handler(tracker: ConfigTracker) -> Handler:
    # Holds and releases only change rows: the service's loop publishes what a release
    # frees within its interval. This consumer may run where no publisher is (``potr
    # ingest`` runs the config consumers), and the loop also survives a crash between the
    # release's commit and a publish.
    async def handle(event: Event) -> None:
        change = event_payload(event, WorkOrderChanged)
        step = await asyncio.to_thread(tracker.apply_work_order, event.id, change)
        if step is not None and (step.hold or step.release):
            log.info(
                "work order %s %s: holds %s, releases %s",
                change.work_order_id,
                change.status,
                sorted(step.hold),
                sorted(step.release),
            )

    return handle


#: The ``user.*`` events carrying the user as they are (:class:`UserChanged`).
_USER_EVENTS = frozenset({USER_CREATED, USER_UPDATED, USER_DISABLED, USER_ENABLED})


def _user_handler(tracker: ConfigTracker) -> Handler:
    # Which broker identity is which employee: technicians' pushes are judged by it.
    async def handle(event: Event) -> None:
        if event.name not in _USER_EVENTS:
            return  # user.contact_changed: notify's alone (a mail address, no identity)
        user = event_payload(event, UserChanged)
        await asyncio.to_thread(tracker.apply_user, event.id, event.occurred_at, user)

    return handle


def subscriptions(tracker: ConfigTracker) -> list[Subscription]:
    """The config service's subscriptions: births, acks and config reports from ingest,
    work orders from dispatch, where gateways stand from the registry, users
    (technicians' broker identities) from identity."""
    registration = _registration_handler(tracker)
    return [
        Subscription(BIRTH_CONSUMER, f"*.ingest.{GATEWAY_BIRTH}", _birth_handler(tracker)),
        Subscription(ACK_CONSUMER, f"*.ingest.{COMMAND_ACKED}", _ack_handler(tracker)),
        Subscription(REPORT_CONSUMER, f"*.ingest.{CONFIG_REPORTED}", _report_handler(tracker)),
        Subscription(
            WORKORDER_CONSUMER, f"*.dispatch.{WORKORDER_PREFIX}*", _workorder_handler(tracker)
        ),
        Subscription(REGISTERED_CONSUMER, f"*.registry.{GATEWAY_REGISTERED}", registration),
        Subscription(UPDATED_CONSUMER, f"*.registry.{GATEWAY_UPDATED}", registration),
        Subscription(USER_CONSUMER, "*.identity.user.*", _user_handler(tracker)),
    ]
