"""Pure validation of one inbound MQTT message: accept it or say why not.

No I/O: whether the gateway is registered (and enabled) is decided later, by the
pipeline. The :class:`Bounds` are what the broker cannot check (issue 12): message size,
readings per message, and the time window a reading must fall in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
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
#: Where an oversized payload's stream and seq are looked for: the agent writes
#: ``{"v":1,"stream_id":…,"seq":…`` first, and the rest is never parsed.
_SALVAGE_PREFIX_BYTES = 1_024
_PREFIX_STREAM = re.compile(rb'"stream_id"\s*:\s*"([0-9a-fA-F-]{32,36})"')
_PREFIX_SEQ = re.compile(rb'"seq"\s*:\s*([0-9]{1,19})(?![0-9.eE])')


@dataclass(frozen=True, slots=True)
class Bounds:
    """What one message may hold; the defaults are :class:`IngestSettings`' defaults."""

    #: Readings further in the future are quarantined (the gateway has no RTC).
    future_skew_s: float = 300.0
    #: Payload bytes (the broker's ``max_packet_size``): larger is refused unparsed.
    max_bytes: int = 256 * 1024
    #: Readings per telemetry batch.
    max_readings: int = 5_000
    #: Readings before 00:00 UTC this many days ago are quarantined: no partition is
    #: ever created for them.
    past_days: int = 400

    def earliest(self, now: datetime) -> datetime:
        """The oldest reading time accepted at ``now``: midnight UTC ``past_days`` ago."""
        day = now.astimezone(UTC).date() - timedelta(days=self.past_days)
        return datetime.combine(day, time(), UTC)


@dataclass(frozen=True, slots=True)
class Accepted:
    """A valid message; for telemetry, ``readings`` are the ones to store."""

    source: GatewayTopic
    message: GatewayMessage
    readings: tuple[Reading, ...] = ()
    #: Why readings of the message were left out of ``readings`` (outside the time
    #: window, over the new-device cap): its dead letter's reason.
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


DEFAULT_BOUNDS = Bounds()


def validate(
    topic: str, payload: bytes, *, now: datetime, bounds: Bounds = DEFAULT_BOUNDS
) -> Accepted | Rejected:
    """Check topic, size, schema, readings and timestamps of one message received at
    ``now``."""
    try:
        source = parse_topic(topic)
    except TopicError as exc:
        return Rejected(f"bad topic: {exc}")
    if source.kind not in GATEWAY_TO_CLOUD:
        return Rejected(f"kind {source.kind.value!r} is not sent by gateways", source)
    if len(payload) > bounds.max_bytes:
        return Rejected(
            f"message of {len(payload)} bytes exceeds the limit of {bounds.max_bytes} bytes",
            source,
            salvage_stream_seq_prefix(payload),
        )
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
        if len(message.readings) > bounds.max_readings:
            return Rejected(
                f"{len(message.readings)} readings exceed the limit of "
                f"{bounds.max_readings} per message",
                source,
                (message.stream_id, message.seq),
            )
        return _split_window(source, message, now, bounds)
    return Accepted(source, message)


def _split_window(
    source: GatewayTopic, batch: TelemetryBatch, now: datetime, bounds: Bounds
) -> Accepted:
    """Readings inside [earliest, now + skew] are kept; the others quarantined."""
    latest = now + timedelta(seconds=bounds.future_skew_s)
    earliest = bounds.earliest(now)
    ok = tuple(r for r in batch.readings if earliest <= r.ts <= latest)
    future = [r for r in batch.readings if r.ts > latest]
    past = [r for r in batch.readings if r.ts < earliest]
    n = len(batch.readings)
    reasons = []
    if future:
        reasons.append(
            f"{len(future)} of {n} readings more than {bounds.future_skew_s:g} s in the "
            f"future (limit {to_wire(latest)}; first: {_first(future)})"
        )
    if past:
        reasons.append(
            f"{len(past)} of {n} readings older than {bounds.past_days} days (limit "
            f"{to_wire(earliest)}, outside the partition window; first: {_first(past)})"
        )
    return Accepted(source, batch, ok, "; ".join(reasons) or None)


def _first(readings: list[Reading]) -> str:
    return f"device {readings[0].device!r} at {to_wire(readings[0].ts)}"


def salvage_stream_seq(payload: bytes) -> StreamSeq | None:
    """(stream_id, seq) of a payload that failed validation, when both are well-formed."""
    try:
        raw: Any = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(raw, dict):
        return None
    return _stream_seq(raw.get("stream_id"), raw.get("seq"))


def salvage_stream_seq_prefix(payload: bytes) -> StreamSeq | None:
    """(stream_id, seq) from the start of a payload too large to parse, where the agent
    puts them; None when they are not there."""
    head = payload[:_SALVAGE_PREFIX_BYTES]
    stream, seq = _PREFIX_STREAM.search(head), _PREFIX_SEQ.search(head)
    if stream is None or seq is None:
        return None
    return _stream_seq(stream.group(1).decode("ascii"), int(seq.group(1)))


def _stream_seq(stream: object, seq: object) -> StreamSeq | None:
    if not isinstance(seq, int) or isinstance(seq, bool) or not 1 <= seq < 2**63:
        return None
    if not isinstance(stream, str):
        return None
    try:
        return UUID(stream), seq
    except ValueError:
        return None
