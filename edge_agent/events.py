"""The agent's events (``event`` messages): buffered in the same seq space as telemetry
and never dropped; a full disk holds them in memory (:class:`HeldMessages`)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from contracts.messages import EventMsg
from contracts.timeutil import utc_now
from edge_agent.buffer import PayloadFactory
from edge_agent.pending import HeldMessages

__all__ = ["EventWriter", "event_factory"]


def event_factory(
    event: str, severity: str, device: str | None, detail: dict[str, Any]
) -> PayloadFactory:
    """The payload of one event, stamped now (when it happened, even if buffered later)."""
    ts = utc_now()

    def make(stream_id: UUID, seq: int) -> bytes:
        return EventMsg(
            stream_id=stream_id,
            seq=seq,
            ts=ts,
            event=event,
            severity=severity,
            device=device,
            detail=detail,
        ).to_json()

    return make


class EventWriter:
    def __init__(self, held: HeldMessages) -> None:
        self._held = held

    async def emit(
        self, event: str, severity: str, device: str | None, detail: dict[str, Any]
    ) -> None:
        """Buffer one event (held in memory while the disk is full)."""
        await self._held.append("event", event_factory(event, severity, device, detail))
