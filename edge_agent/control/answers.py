"""What the agent says back: ``cmd_ack`` and ``config_state``, always through the buffer.

An answer the full disk cannot take waits in the agent's :class:`HeldMessages` with its
events (bounded, in order) and is buffered once space returns: never dropped for lack
of disk while the queue has room.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any
from uuid import UUID

from contracts.control import ControlRefusal
from contracts.messages import AckStatus, CmdAck, ConfigState
from contracts.timeutil import utc_now
from device_profiles.setpoints import SetpointRefusal
from edge_agent.control.stats import ControlStats
from edge_agent.pending import HeldMessages

__all__ = ["Answers"]

log = logging.getLogger(__name__)

#: Longest ``detail`` sent (a refusal quoting a huge document must not bloat the ack).
ACK_DETAIL_MAX = 2000
STATE_DETAIL_MAX = 4000


class Answers:
    def __init__(self, held: HeldMessages, stats: ControlStats, gateway_id: str) -> None:
        self._held = held
        self._stats = stats
        self._gateway_id = gateway_id

    async def ack(self, command_id: UUID, status: AckStatus, detail: str) -> None:
        self._stats.commands[status.value] += 1
        ts = utc_now()
        detail = detail.replace("\x00", "?")[:ACK_DETAIL_MAX]

        def make(stream_id: UUID, seq: int) -> bytes:
            return CmdAck(
                stream_id=stream_id, seq=seq, id=command_id, status=status, detail=detail, ts=ts
            ).to_json()

        await self._held.append("cmd_ack", make)

    async def reject(self, command_id: UUID, code: str, reason: str) -> None:
        """Refuse a verified command: counted under ``code``, logged, acked ``rejected``."""
        self._stats.refusals[code] += 1
        log.warning("gateway %s: command %s refused: %s", self._gateway_id, command_id, reason)
        await self.ack(command_id, AckStatus.REJECTED, reason)

    async def publish_state(self, body: Mapping[str, Any]) -> None:
        self._stats.configs[str(body.get("status"))] += 1
        ts = utc_now()
        detail = str(body.get("detail", "")).replace("\x00", "?")[:STATE_DETAIL_MAX]
        body = {**body, "detail": detail}

        def make(stream_id: UUID, seq: int) -> bytes:
            return ConfigState.model_validate(
                {**body, "stream_id": stream_id, "seq": seq, "ts": ts}
            ).to_json()

        await self._held.append("config_state", make)

    def refused(self, what: str, refusal: ControlRefusal | SetpointRefusal, ident: object) -> str:
        """Count and log a refused document; the reason to answer with."""
        code = refusal.code.value if isinstance(refusal, ControlRefusal) else "setpoint"
        reason = refusal.reason if isinstance(refusal, ControlRefusal) else str(refusal)
        self._stats.refusals[code] += 1
        log.warning("gateway %s: %s %s refused: %s", self._gateway_id, what, ident, reason)
        return reason
