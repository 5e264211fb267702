"""Seqs a gateway reports as dropped (its ``data_dropped`` event): they will never come, so
ingest counts them as accounted for, and the ``stored`` watermark can move past them.

Only seqs below the event's own seq count (they were allocated before it), and a bounded
number per event, so a faulty report cannot claim the future or cost unbounded work.
"""

from __future__ import annotations

from typing import Any

from contracts.messages import EventMsg

DATA_DROPPED = "data_dropped"
MAX_DROPPED_SEQS_PER_EVENT = 1_000_000


def dropped_seqs(event: EventMsg) -> list[int]:
    """The seqs a ``data_dropped`` event accounts for (empty for any other event)."""
    if event.event != DATA_DROPPED:
        return []
    ranges: Any = event.detail.get("seq_ranges")
    if not isinstance(ranges, list):
        return []
    seqs: list[int] = []
    for item in ranges:
        if not (isinstance(item, list) and len(item) == 2 and all(type(x) is int for x in item)):
            continue
        lo, hi = max(item[0], 1), min(item[1], event.seq - 1)
        if lo > hi or len(seqs) + (hi - lo + 1) > MAX_DROPPED_SEQS_PER_EVENT:
            continue
        seqs.extend(range(lo, hi + 1))
    return seqs
