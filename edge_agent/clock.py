"""Can the gateway's wall clock be trusted? (A Pi has no RTC: it may be years off at boot.)

:class:`ClockGuard` is pure logic over injected time sources. The clock is *known good*
when the cloud's time agrees with it (the ``ts`` of a ``stored`` message, within
``max_skew_s``), or — with no cloud comparison since the last jump — when the OS says it
is NTP-synchronised. Anything else is suspect, and readings taken meanwhile are flagged
``clock_suspect``; they are never re-timestamped.

A *jump* is the wall clock moving against the monotonic clock by more than
``jump_threshold_s`` between two checks (NTP stepping it, or an operator): it is reported
so a ``clock_jump`` event can name it, and it voids the last cloud comparison.

:func:`ntp_synchronised` is the OS adapter: the kernel's NTP state via ``adjtimex(2)`` —
the same test ``timedatectl``'s ``NTPSynchronized`` makes, without a subprocess or D-Bus,
so it never blocks the event loop.
"""

from __future__ import annotations

import ctypes
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from contracts.events import ClockJumped

log = logging.getLogger(__name__)

WallClock = Callable[[], float]  # epoch seconds
Monotonic = Callable[[], float]  # seconds, only differences matter
SyncProbe = Callable[[], bool | None]  # True synchronised, False not, None unknown

#: Before this (2023-11) the clock is certainly wrong, whatever anyone says.
CLOCK_SANE_AFTER = 1_700_000_000.0

_TIME_ERROR = 5  # adjtimex(2): clock not synchronised
_STA_UNSYNC = 0x0040


@dataclass(frozen=True, slots=True)
class ClockJump:
    """The wall clock moved by ``delta_s`` seconds against the monotonic clock
    (positive: forward), between wall times ``before`` and ``after`` (epoch seconds)."""

    delta_s: float
    before: float
    after: float

    def detail(self) -> ClockJumped:
        """The ``clock_jump`` event's detail."""
        return ClockJumped(
            delta_s=round(self.delta_s, 3),
            from_=datetime.fromtimestamp(self.before, UTC),
            to=datetime.fromtimestamp(self.after, UTC),
        )


class ClockGuard:
    """Tracks whether the wall clock is trustworthy; call :meth:`check` between polls."""

    def __init__(
        self,
        *,
        wall: WallClock = time.time,
        monotonic: Monotonic = time.monotonic,
        os_synced: SyncProbe | None = None,
        jump_threshold_s: float = 1.0,
        max_skew_s: float = 5.0,
    ) -> None:
        self._wall = wall
        self._monotonic = monotonic
        self._probe = os_synced if os_synced is not None else ntp_synchronised
        self.jump_threshold_s = jump_threshold_s
        self.max_skew_s = max_skew_s
        self._offset = wall() - monotonic()
        self.os_synced: bool | None = self._probe()
        #: Local wall clock minus the cloud's, at the last ``stored`` (None: none since
        #: start or since the last jump).
        self.cloud_skew_s: float | None = None
        self._suspect_seen = not self.known_good

    @property
    def known_good(self) -> bool:
        if self._wall() < CLOCK_SANE_AFTER:
            return False
        if self.cloud_skew_s is not None:
            # A stored message queued while offline looks like a clock ahead: flagging a
            # few readings until the next one arrives errs on the safe side.
            return abs(self.cloud_skew_s) <= self.max_skew_s
        return self.os_synced is True

    @property
    def suspect(self) -> bool:
        return not self.known_good

    def check(self) -> ClockJump | None:
        """Compare the wall clock with the monotonic clock and re-read the OS state;
        return the jump, if the wall clock moved by more than the threshold."""
        wall = self._wall()
        offset = wall - self._monotonic()
        delta = offset - self._offset
        self._offset = offset
        self.os_synced = self._probe()
        jump = None
        if abs(delta) > self.jump_threshold_s:
            jump = ClockJump(delta, wall - delta, wall)
            self.cloud_skew_s = None  # it vouched for the clock before the jump
        self._note()
        return jump

    def on_cloud_time(self, cloud_ts: datetime) -> None:
        """Compare with a timestamp from the cloud's clock (a ``stored`` message's ``ts``)."""
        was_good = self.known_good
        self.cloud_skew_s = self._wall() - cloud_ts.timestamp()
        if self.known_good != was_good:
            log.info(
                "clock %s: %.3fs from the cloud's",
                "known good" if self.known_good else "suspect",
                self.cloud_skew_s,
            )
        self._note()

    def take_suspect(self) -> bool:
        """Whether readings taken since the previous call may carry a wrong time: the
        clock was suspect at some point since then, or is now."""
        suspect = self._suspect_seen or self.suspect
        self._suspect_seen = self.suspect
        return suspect

    def _note(self) -> None:
        if self.suspect:
            self._suspect_seen = True


class _Timex(ctypes.Structure):
    # The head of struct timex (adjtimex(2)); the tail is padding, never read.
    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("_rest", ctypes.c_byte * 512),
    ]


@cache
def _libc() -> Any:
    return ctypes.CDLL(None, use_errno=True)


def ntp_synchronised() -> bool | None:
    """The kernel's NTP state (read-only ``adjtimex``): None where it cannot be read."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        timex = _Timex()  # modes = 0: read only, no privilege needed
        state = int(_libc().adjtimex(ctypes.byref(timex)))
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return state != _TIME_ERROR and not timex.status & _STA_UNSYNC


__all__ = ["CLOCK_SANE_AFTER", "ClockGuard", "ClockJump", "ntp_synchronised"]
