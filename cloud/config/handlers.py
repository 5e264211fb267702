"""Events the config service consumes, from ingest in every region.

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
    CommandAcked,
    ConfigReported,
    GatewayBirth,
)

__all__ = ["ACK_CONSUMER", "BIRTH_CONSUMER", "REPORT_CONSUMER", "subscriptions"]

log = logging.getLogger(__name__)

BIRTH_CONSUMER = "config.gateway_birth"
ACK_CONSUMER = "config.command_acked"
REPORT_CONSUMER = "config.config_reported"


def _birth_handler(tracker: ConfigTracker) -> Handler:
    async def handle(event: Event) -> None:
        birth = event_payload(event, GatewayBirth)
        await asyncio.to_thread(
            tracker.apply_birth, event.id, event.region.value, event.occurred_at, birth
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


def subscriptions(tracker: ConfigTracker) -> list[Subscription]:
    """The config service's subscriptions: births, acks and config reports from ingest."""
    return [
        Subscription(BIRTH_CONSUMER, f"*.ingest.{GATEWAY_BIRTH}", _birth_handler(tracker)),
        Subscription(ACK_CONSUMER, f"*.ingest.{COMMAND_ACKED}", _ack_handler(tracker)),
        Subscription(REPORT_CONSUMER, f"*.ingest.{CONFIG_REPORTED}", _report_handler(tracker)),
    ]
