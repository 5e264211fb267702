"""A narrow, plain snapshot of the agent for ``/healthz`` and ``/metrics``.

The health endpoint reads only this (values copied at the moment of asking), never the
agent's parts, so it needs no import of the agent and cannot change it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

__all__ = ["AgentStatus", "BufferStats", "DeviceStatus", "StatusSource"]


@dataclass(frozen=True, slots=True)
class BufferStats:
    rows: int = 0
    unsent: int = 0
    bytes: int = 0
    oldest_age_s: float | None = None


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    device_id: str
    endpoint: str
    unit_id: int
    status: str
    last_error: str | None


@dataclass(frozen=True, slots=True)
class AgentStatus:
    gateway_id: str
    region: str
    stream_id: str
    mqtt_connected: bool
    stored_upto_seq: int | None
    devices: tuple[DeviceStatus, ...]
    published: int
    resent: int
    sessions: int
    #: ``stored`` messages refused for claiming seqs the stream never allocated.
    stored_refused: int
    #: Buffered messages over the broker's packet limit (cut again or dead-ended), and
    #: readings dropped because no packet could hold them.
    too_large: int
    too_large_readings: int
    batches: int
    dropped_batches: int
    #: Events and answers held in memory while the disk is full, and those lost.
    held: int
    held_lost: int
    #: Control counters by status / code / outcome.
    commands: Mapping[str, int]
    configs: Mapping[str, int]
    refusals: Mapping[str, int]
    writes: Mapping[str, int]


class StatusSource(Protocol):
    def status(self) -> AgentStatus: ...

    async def buffer_stats(self) -> BufferStats:
        """The buffer's figures (read on the outbox thread)."""
        ...
