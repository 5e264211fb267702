"""What ingest tells the other services, as :class:`cloud.events.outbox.Event` values.

Pure builders; the pipeline emits them with ``emit_many(conn, "ingest", …)`` in the
transaction that stores what they describe. Ids are derived from what the event is
about (stream + seq, gateway + boot + birth time), so a redelivered message that slips
past the other checks still lands on the same outbox row (``ON CONFLICT (event_id) DO
NOTHING``).

Names: ``telemetry.received`` (one per gateway per batch, with the announced metrics'
values for the alerts service), ``gateway.birth``,
``device.discovered`` (a key allocated for a device no birth of the batch lists),
``gateway.<event>`` for each gateway event (``gateway.isolator_tripped``,
``gateway.device_faulty``, ``gateway.data_dropped`` … — the catalogue is
:class:`contracts.events.EventType`; a name outside it, from a newer agent, is announced
too; the gateway's own name stays in the payload), ``command.acked``, ``config.reported``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from cloud.events.outbox import Event
from cloud.events.types import (
    COMMAND_ACKED,
    CONFIG_REPORTED,
    DEVICE_DISCOVERED,
    GATEWAY_BIRTH,
    DeviceDiscovered,
    gateway_event_name,
)
from contracts.events import event_type
from contracts.messages import BirthMsg, CmdAck, ConfigState, EventMsg
from contracts.metrics import BY_NAME, MetricKind
from contracts.topics import Region

SOURCE = "ingest"
_NAMESPACE = uuid.UUID("8d5c3f3e-4b0e-4a43-9a57-6f1e0c1d2b7a")
_NOT_NAME = re.compile(r"[^a-z0-9_]+")


def _id(*parts: object) -> UUID:
    return uuid.uuid5(_NAMESPACE, "/".join(str(p) for p in parts))


def _gateway_event_name(name: str) -> str:
    """``gateway.<event>``: by its catalogue type, or made name-safe for an event outside
    the catalogue (a newer agent's)."""
    known = event_type(name)
    return gateway_event_name(known) if known else f"gateway.{event_suffix(name)}"


def event_suffix(gateway_event: str) -> str:
    """A gateway event's name as the last part of a bus event name (``[a-z][a-z0-9_]*``)."""
    name = _NOT_NAME.sub("_", gateway_event.lower()).strip("_") or "unnamed"
    return name if name[0].isalpha() else f"e_{name}"


#: A stored value of an announced metric: (local device id, metric, reading time, value).
AnnouncedSample = tuple[str, str, datetime, float]


@dataclass(frozen=True, slots=True)
class TelemetryStored:
    """One accepted telemetry message whose seq was new for its stream; ``samples``: its
    values of the announced metrics (readings not marked bad), in message order."""

    region: str
    gateway_id: str
    stream_id: UUID
    seq: int
    readings: int
    values: int
    device_ids: frozenset[int]
    first_ts: datetime | None
    last_ts: datetime | None
    samples: tuple[AnnouncedSample, ...] = ()


def announced_samples(items: Sequence[TelemetryStored]) -> list[list[object]]:
    """The samples of a gateway's messages as ``telemetry.received`` carries them:
    ``[device, metric, ts, value]`` in time order; a counter only as each device's newest
    value (rules read counters as differences over hours, not sample by sample)."""
    gauges: list[AnnouncedSample] = []
    newest: dict[tuple[str, str], AnnouncedSample] = {}
    for item in items:
        for sample in item.samples:
            device, metric, ts, _ = sample
            if BY_NAME[metric].kind is MetricKind.COUNTER:
                known = newest.get((device, metric))
                if known is None or known[2] <= ts:
                    newest[(device, metric)] = sample
            else:
                gauges.append(sample)
    ordered = sorted([*gauges, *newest.values()], key=lambda s: (s[2], s[0], s[1]))
    return [[device, metric, ts, value] for device, metric, ts, value in ordered]


def telemetry_received(items: Sequence[TelemetryStored], now: datetime) -> list[Event]:
    """One ``telemetry.received`` per gateway of a batch (its messages summed)."""
    by_gateway: dict[tuple[str, str], list[TelemetryStored]] = {}
    for item in items:
        by_gateway.setdefault((item.region, item.gateway_id), []).append(item)
    out: list[Event] = []
    for (region, gw), group in sorted(by_gateway.items()):
        firsts = [i.first_ts for i in group if i.first_ts is not None]
        lasts = [i.last_ts for i in group if i.last_ts is not None]
        seqs = sorted((str(i.stream_id), i.seq) for i in group)
        out.append(
            Event(
                id=_id("telemetry", *(f"{s}:{q}" for s, q in seqs)),
                name="telemetry.received",
                region=Region(region),
                source=SOURCE,
                occurred_at=now,
                payload={
                    "gateway_id": gw,
                    "messages": len(group),
                    "readings": sum(i.readings for i in group),
                    "values": sum(i.values for i in group),
                    "device_ids": sorted(set().union(*(i.device_ids for i in group))),
                    "from": min(firsts) if firsts else None,
                    "to": max(lasts) if lasts else None,
                    "seqs": [{"stream_id": s, "seq": q} for s, q in seqs],
                    "samples": announced_samples(group),
                },
            )
        )
    return out


def gateway_birth(region: str, gateway_id: str, birth: BirthMsg, ids: Mapping[str, int]) -> Event:
    return Event(
        id=_id("birth", gateway_id, birth.boot_id, birth.stream_id, birth.ts.isoformat()),
        name=GATEWAY_BIRTH,
        region=Region(region),
        source=SOURCE,
        occurred_at=birth.ts,
        payload={
            "gateway_id": gateway_id,
            "boot_id": birth.boot_id,
            "stream_id": birth.stream_id,
            "agent_version": birth.agent_version,
            "poll_interval_s": birth.poll_interval_s,
            "publish_interval_s": birth.publish_interval_s,
            "config_version": birth.config_version,
            # The shape of cloud.events.types.GatewayBirth (the registry parses it):
            # the devices and the keys ingest allocated for them.
            "devices": [d.model_dump(mode="json") for d in birth.devices],
            "device_ids": {d.device: ids[d.device] for d in birth.devices},
        },
    )


def device_discovered(region: str, gateway_id: str, local_id: str, device_id: int) -> Event:
    """``device.discovered`` (:class:`DeviceDiscovered`); one id per allocated key."""
    return Event(
        id=_id("device", gateway_id, local_id, device_id),
        name=DEVICE_DISCOVERED,
        region=Region(region),
        source=SOURCE,
        payload=DeviceDiscovered(
            gateway_id=gateway_id, device=local_id, device_id=device_id
        ).model_dump(mode="json"),
    )


def gateway_event(region: str, gateway_id: str, e: EventMsg, device_id: int | None) -> Event:
    return Event(
        id=_id("event", e.stream_id, e.seq),
        name=_gateway_event_name(e.event),
        region=Region(region),
        source=SOURCE,
        occurred_at=e.ts,
        # The shape of cloud.events.types.GatewayEventReported (what consumers parse).
        payload={
            "gateway_id": gateway_id,
            "event": e.event,
            "severity": e.severity,
            "device": e.device,
            "device_id": device_id,
            "detail": e.detail,
            "stream_id": e.stream_id,
            "seq": e.seq,
        },
    )


def command_acked(region: str, gateway_id: str, a: CmdAck) -> Event:
    return Event(
        id=_id("cmd_ack", a.stream_id, a.seq),
        name=COMMAND_ACKED,
        region=Region(region),
        source=SOURCE,
        occurred_at=a.ts,
        payload={
            "gateway_id": gateway_id,
            "command_id": a.id,
            "status": a.status.value,
            "detail": a.detail,
        },
    )


def config_reported(region: str, gateway_id: str, c: ConfigState) -> Event:
    return Event(
        id=_id("config_state", c.stream_id, c.seq),
        name=CONFIG_REPORTED,
        region=Region(region),
        source=SOURCE,
        occurred_at=c.ts,
        payload={
            "gateway_id": gateway_id,
            "version": c.version,
            "hash": c.hash,
            "status": c.status,
            "devices": c.devices,
            "points": c.points,
            "drift": c.drift,
            "detail": c.detail,
        },
    )
