"""A token bucket: ``rate`` tokens per second, at most ``burst`` saved up.

Time comes from an injectable clock (monotonic seconds by default), or is passed to each
call as ``now`` by a caller that runs its own schedule (the fleet simulator drives many
buckets from one event loop and its tests from synthetic times). Either way pacing is
tested without waiting.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["TokenBucket"]

#: A float refill must not leave 0.999… tokens forever.
_EPSILON = 1e-9


class TokenBucket:
    """Starts full at ``start`` (default: now); ``take`` may borrow (tokens go negative),
    and later takes wait the debt off."""

    __slots__ = ("_at", "_clock", "_tokens", "burst", "rate")

    def __init__(
        self,
        rate: float,
        burst: float,
        clock: Callable[[], float] = time.monotonic,
        *,
        start: float | None = None,
    ) -> None:
        if rate <= 0 or burst <= 0:
            raise ValueError(f"token bucket needs rate > 0 and burst > 0 ({rate}, {burst})")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._at = clock() if start is None else start

    def _refill(self, now: float | None) -> float:
        now = self._clock() if now is None else now
        self._tokens = min(self.burst, self._tokens + max(0.0, now - self._at) * self.rate)
        self._at = max(self._at, now)
        return now

    def available(self, now: float | None = None) -> int:
        """Whole tokens that may be taken now."""
        self._refill(now)
        return int(self._tokens + _EPSILON)

    def take(self, n: int = 1, now: float | None = None) -> None:
        """Take ``n`` tokens, borrowing if fewer are there."""
        self._refill(now)
        self._tokens -= n

    def try_take(self, now: float | None = None) -> bool:
        """Take one token if one is there; False (nothing taken) otherwise."""
        if self.available(now) >= 1:
            self._tokens -= 1
            return True
        return False

    def wait_s(self, tokens: float = 1.0, now: float | None = None) -> float:
        """Seconds until ``tokens`` (capped at ``burst``) are available."""
        self._refill(now)
        return max(0.0, (min(tokens, self.burst) - self._tokens) / self.rate)

    def ready_at(self) -> float:
        """When one token will be there, on the bucket's own time line (no refill)."""
        return self._at + max(0.0, 1.0 - self._tokens) / self.rate
