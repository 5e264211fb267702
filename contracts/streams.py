"""Stream bookkeeping shared by agent and ingest, as pure functions.

A stream is one agent buffer: ``stream_id`` plus a ``seq`` that grows by one per
buffered message (first seq = 1). Ingest keeps the highest seq seen and the open gaps;
the ``stored`` watermark is the highest seq below which nothing is missing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

Gap = tuple[int, int]  # inclusive seq range known to be missing


def next_seq(last_seq: int) -> int:
    """The seq after ``last_seq`` (0 = nothing allocated yet)."""
    if last_seq < 0:
        raise ValueError("seq is never negative")
    return last_seq + 1


def covered(seq: int, upto_seq: int) -> bool:
    """True when a ``stored`` watermark of ``upto_seq`` covers ``seq``."""
    return seq <= upto_seq


@dataclass(frozen=True)
class StreamProgress:
    """What ingest knows of one stream: highest seq committed and the open gaps."""

    high_seq: int = 0
    gaps: tuple[Gap, ...] = field(default=())

    @property
    def watermark(self) -> int:
        """Highest seq with nothing missing at or below it."""
        return self.gaps[0][0] - 1 if self.gaps else self.high_seq


@dataclass(frozen=True)
class StreamUpdate:
    progress: StreamProgress
    opened: tuple[Gap, ...]
    closed: tuple[Gap, ...]
    duplicates: tuple[int, ...]


def _fill(gaps: list[Gap], seq: int) -> tuple[list[Gap], Gap | None, list[Gap]]:
    """Remove ``seq`` from the gap containing it; return (gaps, closed gap, new parts)."""
    for i, (lo, hi) in enumerate(gaps):
        if lo <= seq <= hi:
            parts = [(a, b) for a, b in ((lo, seq - 1), (seq + 1, hi)) if a <= b]
            return gaps[:i] + parts + gaps[i + 1 :], (lo, hi), parts
    return gaps, None, []


def advance(progress: StreamProgress, seqs: Iterable[int]) -> StreamUpdate:
    """Apply committed ``seqs`` (any order, repeats allowed) to ``progress``."""
    high = progress.high_seq
    gaps = list(progress.gaps)
    opened: list[Gap] = []
    closed: list[Gap] = []
    duplicates: list[int] = []
    for seq in sorted(seqs):
        if seq < 1:
            raise ValueError("seq starts at 1")
        if seq > high:
            if seq > high + 1:
                gap = (high + 1, seq - 1)
                gaps.append(gap)
                opened.append(gap)
            high = seq
            continue
        gaps, was, parts = _fill(gaps, seq)
        if was is None:
            duplicates.append(seq)
            continue
        # A gap opened in this same call and filled again never reached storage.
        if was in opened:
            opened.remove(was)
        else:
            closed.append(was)
        opened.extend(parts)
    return StreamUpdate(
        StreamProgress(high, tuple(sorted(gaps))), tuple(opened), tuple(closed), tuple(duplicates)
    )
