"""The agent's events (``event`` messages): buffered in the same seq space as telemetry
and never dropped; a full disk holds them in memory (:class:`HeldMessages`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from uuid import UUID

from contracts.events import GatewayEvent
from contracts.timeutil import utc_now
from edge_agent.buffer import PayloadFactory
from edge_agent.pending import HeldMessages

__all__ = ["EventSink", "EventWriter", "event_factory"]

#: Where the poller, control and the agent hand a typed event to be buffered.
EventSink = Callable[[GatewayEvent], Awaitable[None]]


def event_factory(event: GatewayEvent) -> PayloadFactory:
    """The payload of one event, stamped now (when it happened, even if buffered later)."""
    ts = utc_now()

    def make(stream_id: UUID, seq: int) -> bytes:
        return event.message(stream_id, seq, ts).to_json()

    return make


class EventWriter:
    def __init__(self, held: HeldMessages) -> None:
        self._held = held

    async def emit(self, event: GatewayEvent) -> None:
        """Buffer one event (held in memory while the disk is full)."""
        await self._held.append("event", event_factory(event))
