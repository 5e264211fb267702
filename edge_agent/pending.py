"""Messages a full disk could not buffer, held in memory until it takes them again.

Events, command acks and config states are never dropped to make room in the buffer
(only telemetry is), but a disk that refuses every write leaves them nowhere to go. They
wait here — one bounded queue for all of them, oldest first, so the order they were
produced in is the order they are buffered in — and are buffered as soon as the disk
takes a write. The bound keeps a gateway with 1 GB of RAM alive through a disk that
never recovers: past it one held message is lost, logged and counted — the oldest
*event* while any is held, since a lost ``cmd_ack`` or ``config_state`` leaves the cloud
waiting for an answer (it would expire the command), while a device's status comes again
with its next change and its telemetry.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque

from edge_agent.buffer import AsyncOutbox, BufferFullError, PayloadFactory

__all__ = ["HELD_MAX", "HeldMessages"]

log = logging.getLogger(__name__)

#: Messages held at most (each a closure of a few hundred bytes: well under 1 MiB).
HELD_MAX = 1000


class HeldMessages:
    """Appends to ``outbox`` that survive a full disk: :meth:`append` buffers at once
    when it can, else holds the message; :meth:`flush` buffers what is held."""

    def __init__(
        self, outbox: AsyncOutbox, wake: asyncio.Event, gateway_id: str, *, maxlen: int = HELD_MAX
    ) -> None:
        self._outbox = outbox
        self._wake = wake
        self._gateway_id = gateway_id
        self._held: deque[tuple[str, PayloadFactory]] = deque(maxlen=maxlen)
        # Two tasks flushing at once would both append the head: one flush at a time.
        self._flushing = asyncio.Lock()
        #: Held messages lost because more than ``maxlen`` were waiting.
        self.lost = 0

    def __len__(self) -> int:
        return len(self._held)

    async def append(self, kind: str, make: PayloadFactory) -> bool:
        """Buffer one message (after any held ones); True when it is buffered now,
        False when it is held for lack of disk."""
        # One lock for the whole step: two appends that both found nothing held could
        # otherwise buffer in the wrong order (one held, the later one written).
        async with self._flushing:
            await self._flush_held()
            if not self._held:
                try:
                    await self._outbox.append(kind, make)
                except BufferFullError as exc:
                    log.error("gateway %s: %s kept in memory: %s", self._gateway_id, kind, exc)
                else:
                    self._wake.set()
                    return True
            self._hold(kind, make)
            return False

    def _hold(self, kind: str, make: PayloadFactory) -> None:
        if len(self._held) == self._held.maxlen:
            lost = self._evict()
            self.lost += 1
            log.error(
                "gateway %s: held %s lost (%d held at most)",
                self._gateway_id,
                lost,
                self._held.maxlen,
            )
        self._held.append((kind, make))

    def _evict(self) -> str:
        """Drop the oldest held event, else (only answers held) the oldest message."""
        for i, (kind, _) in enumerate(self._held):
            if kind == "event":
                del self._held[i]
                return kind
        return self._held.popleft()[0]

    async def flush(self) -> None:
        """Buffer held messages, oldest first, until the disk refuses one."""
        async with self._flushing:
            await self._flush_held()

    async def _flush_held(self) -> None:
        while self._held:
            kind, make = self._held[0]
            try:
                await self._outbox.append(kind, make)
            except BufferFullError:
                return
            self._held.popleft()
            self._wake.set()
