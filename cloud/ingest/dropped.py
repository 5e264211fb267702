"""Seqs a gateway reports as dropped (its ``data_dropped`` event): they will never come, so
ingest counts them as accounted for, and the ``stored`` watermark can move past them.

The event is read through its typed detail (:class:`contracts.events.DataDropped`), which
also parses the two older shapes agents in the field send (the poller's has no seqs, so it
accounts for none). Only seqs below the event's own seq count (they were allocated before
it), and a bounded number per event, so a faulty report cannot claim the future or cost
unbounded work. A detail whose other fields do not parse still accounts for its
well-formed ranges, read one by one from the raw ``seq_ranges`` (each malformed range is
skipped): those seqs will never come, and a gap left open would stop the watermark and
with it the agent's buffer.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from contracts.events import DataDropped, EventType, event_type, parse_detail
from contracts.messages import EventMsg, MessageError

log = logging.getLogger(__name__)
MAX_DROPPED_SEQS_PER_EVENT = 1_000_000


def dropped_seqs(event: EventMsg) -> list[int]:
    """The seqs a ``data_dropped`` event accounts for (empty for any other event)."""
    if event_type(event.event) is not EventType.DATA_DROPPED:
        return []
    try:
        detail = parse_detail(event)
    except MessageError as exc:
        log.warning("stream %s seq %d: %s", event.stream_id, event.seq, exc.reason)
        return _accounted(_wellformed_ranges(event.detail.get("seq_ranges")), event.seq)
    assert isinstance(detail, DataDropped)  # the catalogue's model for DATA_DROPPED
    return accounted_seqs(detail, event.seq)


def _wellformed_ranges(raw: object) -> list[tuple[int, int]]:
    """The ``[first, last]`` pairs of whole numbers in ``raw``; anything else is skipped."""
    if not isinstance(raw, list):
        return []
    return [
        (r[0], r[1])
        for r in raw
        if isinstance(r, list | tuple)
        and len(r) == 2
        and all(type(v) is int for v in r)  # not bool, not float
    ]


def accounted_seqs(detail: DataDropped, event_seq: int) -> list[int]:
    """The seqs of ``detail``'s ranges that lie before the event's own seq (bounded)."""
    return _accounted(detail.seq_ranges, event_seq)


def _accounted(ranges: Iterable[tuple[int, int]], event_seq: int) -> list[int]:
    seqs: list[int] = []
    for first, last in ranges:
        lo, hi = max(first, 1), min(last, event_seq - 1)
        if lo > hi or len(seqs) + (hi - lo + 1) > MAX_DROPPED_SEQS_PER_EVENT:
            continue
        seqs.extend(range(lo, hi + 1))
    return seqs
