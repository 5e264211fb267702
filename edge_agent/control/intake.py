"""The control queue: raw ``cmd``/``config`` payloads wait here for the control task.

Bounded (``control_queue_size``): a document arriving while it is full is answered
"busy" at once instead of waiting, so a slow write never blocks the MQTT session.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any
from uuid import UUID

import orjson

from contracts.control import document_id
from edge_agent.config_report import refused_body
from edge_agent.control.answers import Answers
from edge_agent.control.stats import ControlStats

__all__ = ["Intake"]

log = logging.getLogger(__name__)


class Intake:
    def __init__(
        self,
        size: int,
        answers: Answers,
        stats: ControlStats,
        handled_state: Callable[[], dict[str, Any] | None],
        gateway_id: str,
    ) -> None:
        self._queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(size)
        self._answers = answers
        self._stats = stats
        self._handled_state = handled_state
        self._gateway_id = gateway_id

    async def submit(self, kind: str, payload: bytes) -> None:
        """Queue a raw ``cmd``/``config``; a full queue answers "busy" at once."""
        try:
            self._queue.put_nowait((kind, payload))
        except asyncio.QueueFull:
            await self._refuse_busy(kind, payload)

    async def get(self) -> tuple[str, bytes]:
        return await self._queue.get()

    async def _refuse_busy(self, kind: str, payload: bytes) -> None:
        reason = f"busy: {self._queue.qsize()} control documents are waiting"
        self._stats.refusals["busy"] += 1
        if kind == "config":
            log.warning("gateway %s: config refused: %s", self._gateway_id, reason)
            await self._answers.publish_state(refused_body(self._handled_state(), reason))
            return
        # No ack: the id of an unverified payload cannot be trusted (a redelivered copy
        # of a queued command, or a forgery, would close the genuine one as rejected).
        # The cloud sees no final ack and expires the command: visible, never wrong.
        log.error(
            "gateway %s: command %s dropped unanswered: %s",
            self._gateway_id,
            _payload_id(payload),
            reason,
        )


def _payload_id(payload: bytes) -> UUID | None:
    try:
        return document_id(orjson.loads(payload))
    except orjson.JSONDecodeError:
        return None
