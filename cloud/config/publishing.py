"""Publishing signed documents to the gateways, without losing any.

A document is stored before it is published; ``published_at`` is set only after the
broker's PUBACK. What could not be published (broker away) is published by the service's
loop (:meth:`DocumentPublisher.publish_pending`). Each publish holds a row lock, so two
processes never publish the same command twice (a gateway would refuse the second as
replayed) and an older config version never replaces a newer retained one.

Nothing is published to a **held** gateway (a technician is on its site: ``config.holds``,
kept by :meth:`~cloud.config.tracker.ConfigTracker.apply_work_order`): its commands and
configs stay stored, and the loop's next round publishes them, oldest first, once the
last hold is lifted — a command that expired meanwhile is not published (the loop
expires it). Both paths (at once after a request, and the loop) go through the claims
below, so the check exists once per document kind.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

import orjson

from cloud.adapters.postgres import Connection, ConnectionPool
from cloud.config import repository as repo
from contracts.timeutil import utc_now
from contracts.topics import Kind, topic

__all__ = ["DocumentPublisher", "PendingPublished", "Publisher"]

log = logging.getLogger(__name__)


class Publisher(Protocol):
    """What the service needs from MQTT (``cloud.adapters.mqtt.MqttPublisher`` provides it)."""

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> bool:
        """True once the broker confirmed the publish."""
        ...


@dataclass(frozen=True, slots=True)
class PendingPublished:
    commands: int
    configs: int


class DocumentPublisher:
    """Publishes stored commands (QoS 1) and the latest config per gateway (QoS 1, retained)."""

    def __init__(self, pool: ConnectionPool[Connection[Any]], publisher: Publisher | None) -> None:
        self._pool = pool
        self._publisher = publisher

    def publish_command(self, command_id: UUID) -> bool:
        """True when published now; False when not due or the broker did not confirm."""
        if self._publisher is None:
            return False
        with self._pool.connection() as conn:
            claimed = repo.claim_unpublished_command(conn, command_id, utc_now())
            if claimed is None:
                return False
            region, gateway_id, document = claimed
            if not self._publisher.publish(
                topic(region, gateway_id, Kind.CMD), orjson.dumps(document), qos=1, retain=False
            ):
                return False
            repo.mark_command_published(conn, command_id)
        log.info("command %s published to %s", command_id, gateway_id)
        return True

    def publish_latest_config(self, gateway_id: str, *, despite_hold_of: int | None = None) -> bool:
        """Publish the gateway's latest version (retained) unless it was published already.
        ``despite_hold_of``: a work order whose own hold does not stop it (the technician
        on site pushed it); another work order's hold still does."""
        if self._publisher is None:
            return False
        with self._pool.connection() as conn:
            if repo.lock_gateway_region(conn, gateway_id) is None:
                return False
            if set(repo.gateway_holds(conn, gateway_id)) - {despite_hold_of}:
                return False  # a technician is on the site: published once released
            latest = repo.latest_unpublished(conn, gateway_id)
            if latest is None:
                return False
            version, region, document = latest
            if not self._publisher.publish(
                topic(region, gateway_id, Kind.CONFIG), orjson.dumps(document), qos=1, retain=True
            ):
                return False
            repo.mark_desired_published(conn, gateway_id, version)
        log.info("config version %d published to %s", version, gateway_id)
        return True

    def publish_pending(self, limit: int = 500) -> PendingPublished:
        """One round of publishing what is stored but not yet published."""
        if self._publisher is None:
            return PendingPublished(0, 0)
        with self._pool.connection() as conn:
            command_ids = repo.unpublished_command_ids(conn, utc_now(), limit)
            gateways = repo.gateways_with_unpublished_config(conn, limit)
        commands = sum(1 for c in command_ids if self.publish_command(c))
        configs = sum(1 for g in gateways if self.publish_latest_config(g))
        return PendingPublished(commands, configs)
