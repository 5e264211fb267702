"""When a fleet retries a connection it lost: one random phase, then plain doubling.

A broker that dies drops every gateway at the same instant, so every retry sequence of
the fleet starts together. The first retry waits a uniform draw in ``[0, window_s)``:
that one draw gives each gateway its own phase. Later retries wait ``window_s``,
``2 * window_s``, … up to ``max_s`` with no jitter: each failure happens at the
gateway's own attempt time, so nothing brings the phases back together, and fixed
waits keep them apart. For an outage shorter than ``window_s`` the first attempts after
the broker is back are then exactly uniform over the ``window_s`` after it — ``1 /
window_s`` of the fleet per second. Jitter on every retry does worse: the remaining
wait of a uniform draw has twice that density just after the broker returns (full
jitter), 4/3 of it with equal jitter (docs/ARCHITECTURE.md, decision 36, has the
figures).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from pacing.backoff import Backoff

__all__ = ["RECONNECT_MAX_S", "RECONNECT_WINDOW_S", "Reconnect"]

#: Default window of the first retry's random phase, seconds: 50 gateways that lose the
#: broker together come back at 50/30 ≈ 1.7 a second on average (decision 36).
RECONNECT_WINDOW_S = 30.0
#: Default longest wait between two attempts, seconds.
RECONNECT_MAX_S = 60.0


@dataclass(frozen=True)
class Reconnect:
    """Retry ``n`` (from 1) after a lost or refused connection; ``rng`` injectable for tests."""

    window_s: float = RECONNECT_WINDOW_S
    max_s: float = RECONNECT_MAX_S
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not 0 < self.window_s <= self.max_s:
            raise ValueError(
                f"reconnect needs 0 < window_s <= max_s ({self.window_s}, {self.max_s})"
            )

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry ``retry`` (1 or less: the first, the random phase)."""
        if retry <= 1:
            return self.rng.uniform(0, self.window_s)
        return Backoff(self.window_s, self.max_s, jitter="none").delay(retry - 1)
