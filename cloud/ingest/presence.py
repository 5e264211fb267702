"""Offline detection: gateways and devices going offline and coming back, told once.

:func:`decide` is pure: from what ingest knows (sessions, device reports) and what it last
announced (``ingest.presence``) it returns the transitions. :func:`check_presence` runs
it in one transaction that first takes a PostgreSQL advisory lock (``try``: a worker that
does not get it skips this round), writes the new presence rows and emits
``gateway.offline`` / ``gateway.online`` and ``device.online`` / ``device.offline`` /
``device.asleep`` / ``device.faulty`` (:mod:`cloud.events.types`) into the outbox in that
same transaction — so several workers, or a restart, never announce one transition twice.

A gateway is offline when its retained ``state`` says so (the LWT), or when it has sent
nothing for ``silence_factor`` times its declared publish interval (from ``birth``). A
device has the status its gateway last reported (birth status, the ``device_reachable``
/ ``device_asleep`` / ``device_unreachable`` / ``device_faulty`` events): ``online``;
``asleep`` (a PV device at night — neither offline nor an alarm); ``unreachable``
(announced as ``device.offline``); ``faulty`` (it answers, with errors). A device is
presumed online: its first sighting is announced only in another status.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cloud.adapters.postgres import Connection, ConnectionPool
from cloud.events.outbox import Event, emit_many
from cloud.events.types import (
    DevicePresence,
    GatewayPresence,
    device_presence_event,
    gateway_presence_event,
)
from contracts.messages import DeviceStatus

log = logging.getLogger(__name__)
#: Arbitrary, fixed: the advisory lock of the offline check ("potroffl").
PRESENCE_LOCK_KEY = 0x706F74726F66666C
SOURCE = "ingest"


@dataclass(frozen=True, slots=True)
class GatewaySeen:
    gateway_id: str
    region: str
    state_online: bool | None
    publish_interval_s: float | None
    last_message_at: datetime | None


@dataclass(frozen=True, slots=True)
class DeviceSeen:
    gateway_id: str
    local_id: str
    region: str
    status: DeviceStatus
    device_id: int | None


@dataclass(frozen=True, slots=True)
class Announced:
    """What the offline check last announced: gateways online or not, device statuses."""

    gateways: Mapping[str, bool]
    devices: Mapping[str, DeviceStatus]


@dataclass(frozen=True, slots=True)
class Transition:
    kind: str  # gateway | device
    key: str
    online: bool
    #: ``online``/``offline`` for a gateway, the device status entered for a device.
    status: str
    reason: str
    event: Event

    @property
    def event_name(self) -> str:
        return self.event.name


def device_online(status: DeviceStatus) -> bool:
    """Reachable, in the sense ``ingest.presence.online`` kept before statuses: only an
    unreachable device is offline (asleep and faulty ones are not)."""
    return status != "unreachable"


def gateway_online(g: GatewaySeen, now: datetime, silence_factor: float) -> tuple[bool, str]:
    """Whether ``g`` counts as online at ``now``, and why not."""
    if g.state_online is False:
        return False, "state offline"
    if g.publish_interval_s is not None and g.last_message_at is not None:
        silent_s = (now - g.last_message_at).total_seconds()
        limit = silence_factor * g.publish_interval_s
        if silent_s > limit:
            return False, f"silent for {silent_s:.0f} s (limit {limit:g} s)"
    if g.state_online is None and g.last_message_at is None:
        return False, "never heard from"
    return True, ""


def decide(
    gateways: Iterable[GatewaySeen],
    devices: Iterable[DeviceSeen],
    announced: Announced,
    now: datetime,
    silence_factor: float,
) -> list[Transition]:
    """Transitions to announce: everything whose state differs from the announced one
    (a gateway's first sighting counts when it is online, or offline after having been
    online; a device's when it is in another status than ``online``)."""
    out: list[Transition] = []
    for g in gateways:
        online, reason = gateway_online(g, now, silence_factor)
        before = announced.gateways.get(g.gateway_id)
        if before is None and not online and g.last_message_at is None:
            continue  # nothing to report about a gateway never heard from
        if before != online:
            told = GatewayPresence(
                gateway_id=g.gateway_id, reason=reason, last_message_at=g.last_message_at
            )
            event = gateway_presence_event(g.region, online, told, occurred_at=now)
            status = "online" if online else "offline"
            out.append(Transition("gateway", g.gateway_id, online, status, reason, event))
    for d in devices:
        key = f"{d.gateway_id}/{d.local_id}"
        # A device is presumed online: a first sighting is told only in another status.
        previous = announced.devices.get(key)
        if (previous or "online") == d.status:
            continue
        presence = DevicePresence(
            gateway_id=d.gateway_id,
            device=d.local_id,
            device_id=d.device_id,
            status=d.status,
            previous=previous,
        )
        event = device_presence_event(d.region, presence, occurred_at=now)
        reason = "" if d.status == "online" else f"reported {d.status}"
        out.append(Transition("device", key, device_online(d.status), d.status, reason, event))
    return out


def check_presence(
    pool: ConnectionPool[Connection[Any]], now: datetime, *, silence_factor: float = 3.0
) -> list[Transition] | None:
    """One round of the offline check; None when another worker holds the lock."""
    with pool.connection() as conn:
        row = conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (PRESENCE_LOCK_KEY,)).fetchone()
        if not row or not row[0]:
            return None
        gateways = [
            GatewaySeen(*r)
            for r in conn.execute(
                "SELECT gateway_id, region, online, publish_interval_s, last_message_at"
                " FROM ingest.sessions"
            ).fetchall()
        ]
        devices = [
            DeviceSeen(*r)
            for r in conn.execute(
                "SELECT d.gateway_id, d.local_id, s.region, d.status, k.device_id"
                " FROM ingest.device_reports d"
                " JOIN ingest.sessions s USING (gateway_id)"
                " LEFT JOIN ingest.device_keys k"
                " ON k.gateway_id = d.gateway_id AND k.local_id = d.local_id"
            ).fetchall()
        ]
        transitions = decide(gateways, devices, _announced(conn), now, silence_factor)
        if transitions:
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO ingest.presence (kind, key, online, status, reason, changed_at)"
                    " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (kind, key) DO UPDATE SET"
                    " online = EXCLUDED.online, status = EXCLUDED.status,"
                    " reason = EXCLUDED.reason, changed_at = EXCLUDED.changed_at",
                    [(t.kind, t.key, t.online, t.status, t.reason, now) for t in transitions],
                )
            emit_many(conn, SOURCE, [t.event for t in transitions])
            for t in transitions:
                log.info("%s %s (%s)", t.event_name, t.key, t.reason or "ok")
    return transitions


def _announced(conn: Connection[Any]) -> Announced:
    gateways: dict[str, bool] = {}
    devices: dict[str, DeviceStatus] = {}
    for kind, key, online, status in conn.execute(
        "SELECT kind, key, online, status FROM ingest.presence"
    ).fetchall():
        if kind == "gateway":
            gateways[key] = bool(online)
        else:
            devices[key] = status
    return Announced(gateways, devices)
