"""Which stored level answers a reading query, and the opaque page cursor (pure, no I/O).

A query names a window ``[from, to)`` and a resolution: ``raw`` (the samples), one of
the rollup levels (``5m``, ``1h``, ``1d``: whole UTC-aligned buckets overlapping the
window), or ``auto`` — the coarsest level that still gives the requested number of
points, so a chart of a year asks for 300 points and reads days, not 100,000 samples.

A page ends with a cursor naming the level and the last instant returned (a sample's
``ts`` or a bucket's start); the next page is what comes strictly after it. Samples and
buckets are unique per (device, metric, instant), so the order is total and stable.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime, timedelta
from typing import Literal

from cloud.telemetry.rollups import LEVELS, Level, floor_to

__all__ = [
    "CURSOR_MAX_LEN",
    "CURSOR_PATTERN",
    "MAX_POINTS",
    "CursorError",
    "Resolution",
    "bucket_count",
    "choose_level",
    "decode_cursor",
    "encode_cursor",
    "level_named",
]

Resolution = Literal["auto", "raw", "5m", "1h", "1d"]
#: What ``auto`` may be asked for: a chart's width, not a bulk export.
MAX_POINTS = 5000
#: Cursors are base64url without padding of ``<level>:<microseconds since 1970>``.
CURSOR_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
CURSOR_MAX_LEN = 64
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAMES = {"raw", *(level.name for level in LEVELS)}


class CursorError(ValueError):
    """A cursor this API did not issue, or issued for another resolution."""


def level_named(name: str) -> Level | None:
    """The rollup level called ``name``; None for ``raw``."""
    return next((level for level in LEVELS if level.name == name), None)


def bucket_count(start: datetime, end: datetime, step: timedelta) -> int:
    """Buckets of width ``step`` (aligned like the rollups) overlapping ``[start, end)``;
    ``start < end``."""
    last = floor_to(end - timedelta(microseconds=1), step)
    return (last - floor_to(start, step)) // step + 1


def choose_level(
    resolution: Resolution, start: datetime, end: datetime, points: int
) -> Level | None:
    """The level answering the query (None: raw samples). ``auto``: the coarsest level
    whose bucket count over the window is at least ``points``; raw when even 5 min
    buckets are fewer (a short window: the samples are what there is)."""
    if resolution != "auto":
        return level_named(resolution)
    for level in reversed(LEVELS):  # 1d, 1h, 5m
        if bucket_count(start, end, level.step) >= points:
            return level
    return None


def encode_cursor(level: Level | None, after: datetime) -> str:
    """The cursor of a page whose last sample (or bucket start) is ``after``."""
    micros = (after - _EPOCH) // timedelta(microseconds=1)
    text = f"{level.name if level else 'raw'}:{micros}".encode()
    return base64.urlsafe_b64encode(text).rstrip(b"=").decode()


def decode_cursor(cursor: str, level: Level | None) -> datetime:
    """The instant a page continues after; :class:`CursorError` when ``cursor`` is not
    one of ours or belongs to another level than the query's."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        name, _, micros = raw.partition(":")
        after = _EPOCH + timedelta(microseconds=int(micros))
    except (binascii.Error, UnicodeDecodeError, ValueError, OverflowError):
        raise CursorError("not a cursor of this API") from None
    if name not in _NAMES or not micros.lstrip("-").isdigit():
        raise CursorError("not a cursor of this API")
    if name != (level.name if level else "raw"):
        raise CursorError(f"a cursor of resolution {name!r}, not of this query's")
    return after
