"""What fits in one MQTT packet, and cutting readings into telemetry payloads that fit.

A broker disconnects a client that sends a packet above its ``max_packet_size``; a
buffered message above it would be resent on every reconnect, forever. So every
telemetry batch is cut when it is formed (one seq per buffered message, as
``protocol.md`` wants), and a reading too large to fit even alone is never buffered.

A QoS 1 PUBLISH is: 1 byte of fixed header, the remaining length (a 1-4 byte varint),
the topic (2-byte length + UTF-8), the packet id (2 bytes), under MQTT 5 the length of
its properties (1 byte: the agent sends none), then the payload.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

import orjson

from contracts.messages import INT8_MAX, Reading, TelemetryBatch
from contracts.timeutil import to_wire

__all__ = ["PacketLimit", "ReadingCutter", "publish_size", "span_of"]

#: A stream id to size envelopes with (every uuid has the same 36-character form).
_ANY_STREAM = UUID(int=0)


def _varint_len(n: int) -> int:
    return 1 if n < 128 else 2 if n < 16_384 else 3 if n < 2_097_152 else 4


def publish_size(topic: str, payload_bytes: int, *, v5: bool = True) -> int:
    """Bytes of a QoS 1 PUBLISH of ``payload_bytes`` on ``topic``, headers included."""
    remaining = 2 + len(topic.encode()) + 2 + (1 if v5 else 0) + payload_bytes
    return 1 + _varint_len(remaining) + remaining


@dataclass
class PacketLimit:
    """The largest packet to send: the agent's setting, or the broker's own limit (MQTT 5
    CONNACK ``Maximum Packet Size``) when that is smaller. ``broker`` is set on connect."""

    configured: int
    v5: bool = True
    broker: int | None = None

    @property
    def bytes(self) -> int:
        return self.configured if self.broker is None else min(self.configured, self.broker)

    def fits(self, topic: str, payload_bytes: int) -> bool:
        return publish_size(topic, payload_bytes, v5=self.v5) <= self.bytes

    def room(self, topic: str) -> int:
        """The largest payload that fits on ``topic`` (negative: not even an empty one)."""
        fixed = publish_size(topic, 0, v5=self.v5)
        room = self.bytes - fixed
        while room > 0 and publish_size(topic, room, v5=self.v5) > self.bytes:
            room -= 1  # a longer payload may need a longer remaining-length varint
        return room


def span_of(readings: Sequence[Reading]) -> tuple[str, str]:
    """First and last reading time (RFC 3339), as the buffer records a batch's span."""
    stamps = [r.ts for r in readings]
    return to_wire(min(stamps)), to_wire(max(stamps))


class ReadingCutter:
    """Cuts readings, in order, into ``TelemetryBatch`` payloads of at most ``room`` bytes.

    Sizes are counted, not guessed: a batch's JSON is its envelope (stream id, seq and the
    brackets around one reading) plus each reading's own JSON and a comma between two.
    """

    def __init__(self, readings: Sequence[Reading], room: int) -> None:
        self.readings = list(readings)
        self.room = room
        self._sizes = [len(orjson.dumps(r.model_dump(mode="json"))) for r in self.readings]
        widest = self._envelope(_ANY_STREAM, INT8_MAX) if self.readings else 0
        #: Readings that fit no batch, whatever its seq: never to be buffered.
        self.too_large = [
            r for r, size in zip(self.readings, self._sizes, strict=True) if widest + size > room
        ]
        if self.too_large:
            keep = [
                (r, size)
                for r, size in zip(self.readings, self._sizes, strict=True)
                if widest + size <= room
            ]
            self.readings = [r for r, _ in keep]
            self._sizes = [size for _, size in keep]

    def _envelope(self, stream_id: UUID, seq: int) -> int:
        one = TelemetryBatch(stream_id=stream_id, seq=seq, readings=self.readings[:1])
        return len(one.to_json()) - self._sizes[0]

    def bytes_of(self, stream_id: UUID, seq: int, start: int, end: int) -> int:
        """Payload bytes of ``readings[start:end]`` as one batch with this seq."""
        body = sum(self._sizes[start:end]) + (end - start - 1)
        return self._envelope(stream_id, seq) + body

    def cut(self, stream_id: UUID, seq: int, start: int) -> int:
        """The end of the next batch from ``start``: as many readings as fit (at least
        one, which always fits: the too-large ones are gone)."""
        total = self._envelope(stream_id, seq) + self._sizes[start]
        end = start + 1
        while end < len(self.readings) and total + 1 + self._sizes[end] <= self.room:
            total += 1 + self._sizes[end]
            end += 1
        return end

    def payload(self, stream_id: UUID, seq: int, start: int, end: int) -> bytes:
        return TelemetryBatch(
            stream_id=stream_id, seq=seq, readings=self.readings[start:end]
        ).to_json()
