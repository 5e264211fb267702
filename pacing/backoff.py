"""Exponential back-off with a choice of jitter.

Retry ``n`` (counted from 1) waits up to ``min(max_s, first_s * 2 ** (n - 1))``. Full
jitter (a uniform draw below that ceiling) is what a fleet reconnecting after a broker
restart needs: it spreads the reconnects instead of synchronising them. ``equal`` keeps
at least half the ceiling (a handler retry that must not hammer a sick dependency);
``none`` is the plain doubling a single process uses for its own restarts and polls.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["Backoff", "Jitter"]

Jitter = Literal["full", "equal", "none"]


@dataclass(frozen=True)
class Backoff:
    """``first_s`` then doubling up to ``max_s`` seconds; ``rng`` is injectable for tests."""

    first_s: float
    max_s: float
    jitter: Jitter = "full"
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.first_s < 0 or self.max_s < 0:
            raise ValueError(f"back-off needs first_s, max_s >= 0 ({self.first_s}, {self.max_s})")

    def ceiling(self, retry: int) -> float:
        """The longest wait before retry ``retry`` (1 = the first retry; 0 or less: 1)."""
        exponent = max(0, retry - 1)
        # 2 ** exponent overflows a float near 1024: past max_s it no longer matters.
        if exponent >= 64:
            return self.max_s
        return min(self.max_s, self.first_s * float(2**exponent))

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry ``retry``, jittered by the policy."""
        cap = self.ceiling(retry)
        if self.jitter == "full":
            return self.rng.uniform(0, cap)
        if self.jitter == "equal":
            return self.rng.uniform(cap / 2, cap)
        return cap
