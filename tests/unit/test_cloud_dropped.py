import uuid

from cloud.ingest.dropped import dropped_seqs
from contracts.messages import EventMsg
from contracts.timeutil import utc_now


def _event(seq: int, event: str = "data_dropped", **detail: object) -> EventMsg:
    return EventMsg(stream_id=uuid.uuid4(), seq=seq, ts=utc_now(), event=event, detail=detail)


def test_dropped_ranges_below_the_event_count() -> None:
    assert dropped_seqs(_event(10, seq_ranges=[[2, 3], [5, 5]])) == [2, 3, 5]


def test_claims_at_or_beyond_the_event_are_cut_off() -> None:
    assert dropped_seqs(_event(4, seq_ranges=[[2, 9], [4, 4], [0, 1]])) == [2, 3, 1]


def test_malformed_or_other_events_account_for_nothing() -> None:
    assert dropped_seqs(_event(9, seq_ranges="2-3")) == []
    assert dropped_seqs(_event(9, seq_ranges=[[2], ["a", 3], [3.0, 4], [5, 4]])) == []
    assert dropped_seqs(_event(9, event="isolator_open", seq_ranges=[[1, 2]])) == []
    assert dropped_seqs(_event(9)) == []
