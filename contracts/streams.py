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
    """What one :func:`advance` changed, stated against the gaps ingest had stored.

    Each stored gap ends in exactly one state, so storage writes one row per gap touched,
    not one per seq filled:

    * untouched — not mentioned;
    * ``closed`` — every seq in it arrived: the gap is empty (only then is it closed);
    * ``shrunk`` — ``(stored gap, its lowest remaining part)``: the row is updated in
      place and keeps its ``opened_at``. Filling an edge only shrinks the gap;
    * ``split_off`` — ``(stored gap, piece)``: a fill in the middle shrinks the gap to
      its lower part and splits off each higher part as a new row that inherits the
      stored gap's ``opened_at`` (the hole is as old as the gap it came from).

    ``opened`` are holes new in this call (above the previous ``high_seq``), as they
    remain after this call's own fills; a hole opened and filled in one call is never
    reported. ``duplicates`` are seqs already committed (or repeated within the call).
    """

    progress: StreamProgress
    opened: tuple[Gap, ...]
    closed: tuple[Gap, ...]
    duplicates: tuple[int, ...]
    shrunk: tuple[tuple[Gap, Gap], ...] = ()
    split_off: tuple[tuple[Gap, Gap], ...] = ()


def advance(progress: StreamProgress, seqs: Iterable[int]) -> StreamUpdate:
    """Apply committed ``seqs`` (any order, repeats allowed) to ``progress``."""
    high = progress.high_seq
    # The current holes, sorted, each with the stored gap it is part of (None: new here).
    pieces: list[tuple[Gap, Gap | None]] = [(g, g) for g in sorted(progress.gaps)]
    duplicates: list[int] = []
    for seq in sorted(seqs):
        if seq < 1:
            raise ValueError("seq starts at 1")
        if seq > high:
            if seq > high + 1:
                pieces.append(((high + 1, seq - 1), None))
            high = seq
            continue
        for i, ((lo, hi), origin) in enumerate(pieces):
            if lo <= seq <= hi:
                rest = [(a, b) for a, b in ((lo, seq - 1), (seq + 1, hi)) if a <= b]
                pieces[i : i + 1] = [(part, origin) for part in rest]
                break
        else:
            duplicates.append(seq)

    remaining: dict[Gap, list[Gap]] = {g: [] for g in progress.gaps}
    opened: list[Gap] = []
    for part, origin in pieces:
        (opened if origin is None else remaining[origin]).append(part)
    closed: list[Gap] = []
    shrunk: list[tuple[Gap, Gap]] = []
    split_off: list[tuple[Gap, Gap]] = []
    for gap, parts in remaining.items():
        if not parts:
            closed.append(gap)
        elif parts[0] != gap:
            shrunk.append((gap, parts[0]))
            split_off.extend((gap, part) for part in parts[1:])
    return StreamUpdate(
        StreamProgress(high, tuple(part for part, _ in pieces)),
        tuple(opened),
        tuple(closed),
        tuple(duplicates),
        tuple(shrunk),
        tuple(split_off),
    )
