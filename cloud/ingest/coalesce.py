"""Pure rate limiting of ``stored`` notices: at most one send per gateway per interval,
and never a notice forgotten (what is held back is sent when the interval allows)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from uuid import UUID


@dataclass(frozen=True, slots=True)
class StoredNotice:
    """Everything of ``stream_id`` up to ``upto_seq`` is committed."""

    region: str
    gateway_id: str
    stream_id: UUID
    upto_seq: int


class StoredCoalescer:
    """Collects notices; :meth:`due` releases each gateway's latest ones when allowed."""

    def __init__(self, interval_s: float) -> None:
        self._interval = interval_s
        self._pending: dict[tuple[str, str], dict[UUID, int]] = {}
        self._last_sent: dict[tuple[str, str], float] = {}

    def add(self, notices: Iterable[StoredNotice]) -> None:
        for n in notices:
            streams = self._pending.setdefault((n.region, n.gateway_id), {})
            streams[n.stream_id] = max(n.upto_seq, streams.get(n.stream_id, 0))

    def due(self, now: float) -> list[StoredNotice]:
        """Notices to send at monotonic time ``now``; marks their gateways as just sent."""
        out: list[StoredNotice] = []
        for key in list(self._pending):
            last = self._last_sent.get(key)
            if last is None or now - last >= self._interval:
                out.extend(self._pop(key))
                self._last_sent[key] = now
        return out

    def drain(self) -> list[StoredNotice]:
        """Everything pending, ignoring the interval (shutdown)."""
        out: list[StoredNotice] = []
        for key in list(self._pending):
            out.extend(self._pop(key))
        return out

    def _pop(self, key: tuple[str, str]) -> list[StoredNotice]:
        region, gateway_id = key
        return [
            StoredNotice(region, gateway_id, s, upto) for s, upto in self._pending.pop(key).items()
        ]

    def __len__(self) -> int:
        return len(self._pending)
