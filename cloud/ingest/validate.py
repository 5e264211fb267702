"""Pure validation of one inbound MQTT message: accept it or say why not.

No I/O: whether the gateway is registered is decided later, by the pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import orjson

from contracts.messages import (
    BirthMsg,
    CmdAck,
    ConfigState,
    EventMsg,
    MessageError,
    Reading,
    StateMsg,
    TelemetryBatch,
    decode,
)
from contracts.timeutil import to_wire
from contracts.topics import GATEWAY_TO_CLOUD, GatewayTopic, TopicError, parse_topic

GatewayMessage = StateMsg | BirthMsg | TelemetryBatch | EventMsg | CmdAck | ConfigState
BufferedGatewayMessage = TelemetryBatch | EventMsg | CmdAck | ConfigState
StreamSeq = tuple[UUID, int]


@dataclass(frozen=True, slots=True)
class Accepted:
    """A valid message; for telemetry, ``readings`` are the ones to store."""

    source: GatewayTopic
    message: GatewayMessage
    readings: tuple[Reading, ...] = ()
    #: Readings too far in the future: quarantined as a dead letter with this reason.
    quarantine_reason: str | None = None


@dataclass(frozen=True, slots=True)
class Rejected:
    """A message that goes to the dead letters with ``reason``.

    ``stream_seq`` is the (stream_id, seq) read from the raw payload when it has them, so
    the stream's seq still advances: a dead letter is committed too, and without it the
    agent would resend the same bad message forever.
    """

    reason: str
    source: GatewayTopic | None = None
    stream_seq: StreamSeq | None = field(default=None)


def validate(
    topic: str, payload: bytes, *, now: datetime, future_skew_s: float
) -> Accepted | Rejected:
    """Check topic, schema and timestamps of one message received at ``now``."""
    try:
        source = parse_topic(topic)
    except TopicError as exc:
        return Rejected(f"bad topic: {exc}")
    if source.kind not in GATEWAY_TO_CLOUD:
        return Rejected(f"kind {source.kind.value!r} is not sent by gateways", source)
    try:
        message = decode(source.kind, payload)
    except MessageError as exc:
        return Rejected(exc.reason, source, salvage_stream_seq(payload))
    assert isinstance(message, GatewayMessage)
    if isinstance(message, BirthMsg):
        if message.gateway_id != source.gateway_id:
            return Rejected(
                f"birth names gateway {message.gateway_id!r} but came on topic "
                f"of {source.gateway_id!r}",
                source,
            )
        if message.region != source.region:
            return Rejected(
                f"birth names region {message.region.value!r} but came on topic "
                f"of region {source.region.value!r}",
                source,
            )
    if isinstance(message, TelemetryBatch):
        return _split_future(source, message, now + timedelta(seconds=future_skew_s), future_skew_s)
    return Accepted(source, message)


def _split_future(
    source: GatewayTopic, batch: TelemetryBatch, limit: datetime, future_skew_s: float
) -> Accepted:
    ok = tuple(r for r in batch.readings if r.ts <= limit)
    future = [r for r in batch.readings if r.ts > limit]
    reason = None
    if future:
        first = future[0]
        reason = (
            f"{len(future)} of {len(batch.readings)} readings more than "
            f"{future_skew_s:g} s in the future (limit {to_wire(limit)}; first: device "
            f"{first.device!r} at {to_wire(first.ts)})"
        )
    return Accepted(source, batch, ok, reason)


def salvage_stream_seq(payload: bytes) -> StreamSeq | None:
    """(stream_id, seq) of a payload that failed validation, when both are well-formed."""
    try:
        raw: Any = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(raw, dict):
        return None
    seq, stream = raw.get("seq"), raw.get("stream_id")
    if not isinstance(seq, int) or isinstance(seq, bool) or not 1 <= seq < 2**63:
        return None
    if not isinstance(stream, str):
        return None
    try:
        return UUID(stream), seq
    except ValueError:
        return None
