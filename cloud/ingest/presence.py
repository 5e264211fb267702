"""Offline detection: gateways and devices going offline and coming back, told once.

:func:`decide` is pure: from what ingest knows (sessions, device reports) and what it last
announced (``ingest.presence``) it returns the transitions. :func:`check_presence` runs
it in one transaction that first takes a PostgreSQL advisory lock (``try``: a worker that
does not get it skips this round), writes the new presence rows and emits
``gateway.offline`` / ``gateway.online`` / ``device.offline`` / ``device.online`` into the
outbox in that same transaction — so several workers, or a restart, never announce one
transition twice.

A gateway is offline when its retained ``state`` says so (the LWT), or when it has sent
nothing for ``silence_factor`` times its declared publish interval (from ``birth``). A
device is offline while its gateway last reported it ``unreachable`` (birth status,
``device_unreachable``/``device_reachable`` events).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cloud.adapters.postgres import Connection, ConnectionPool
from cloud.events.outbox import Event, emit_many
from contracts.topics import Region

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
    status: str
    device_id: int | None


@dataclass(frozen=True, slots=True)
class Transition:
    kind: str  # gateway | device
    key: str
    online: bool
    reason: str
    region: str
    payload: dict[str, Any]

    @property
    def event_name(self) -> str:
        return f"{self.kind}.{'online' if self.online else 'offline'}"


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
    announced: Mapping[tuple[str, str], bool],
    now: datetime,
    silence_factor: float,
) -> list[Transition]:
    """Transitions to announce: everything whose state differs from the announced one
    (a first sighting counts when it is online, or offline after having been online)."""
    out: list[Transition] = []
    for g in gateways:
        online, reason = gateway_online(g, now, silence_factor)
        before = announced.get(("gateway", g.gateway_id))
        if before is None and not online and g.last_message_at is None:
            continue  # nothing to report about a gateway never heard from
        if before != online:
            out.append(
                Transition(
                    "gateway",
                    g.gateway_id,
                    online,
                    reason,
                    g.region,
                    {
                        "gateway_id": g.gateway_id,
                        "reason": reason,
                        "last_message_at": g.last_message_at,
                    },
                )
            )
    for d in devices:
        online = d.status != "unreachable"
        key = f"{d.gateway_id}/{d.local_id}"
        before = announced.get(("device", key))
        if before is None and online:
            before = True  # a device is presumed online: announce only going offline
        if before != online:
            out.append(
                Transition(
                    "device",
                    key,
                    online,
                    "" if online else "reported unreachable",
                    d.region,
                    {
                        "gateway_id": d.gateway_id,
                        "device": d.local_id,
                        "device_id": d.device_id,
                        "status": d.status,
                    },
                )
            )
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
        announced = {
            (kind, key): bool(online)
            for kind, key, online in conn.execute(
                "SELECT kind, key, online FROM ingest.presence"
            ).fetchall()
        }
        transitions = decide(gateways, devices, announced, now, silence_factor)
        if transitions:
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO ingest.presence (kind, key, online, reason, changed_at)"
                    " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (kind, key) DO UPDATE SET"
                    " online = EXCLUDED.online, reason = EXCLUDED.reason,"
                    " changed_at = EXCLUDED.changed_at",
                    [(t.kind, t.key, t.online, t.reason, now) for t in transitions],
                )
            emit_many(
                conn,
                SOURCE,
                [
                    Event(
                        name=t.event_name,
                        region=Region(t.region),
                        source=SOURCE,
                        occurred_at=now,
                        payload=t.payload,
                    )
                    for t in transitions
                ],
            )
            for t in transitions:
                log.info("%s %s (%s)", t.event_name, t.key, t.reason or "ok")
    return transitions
