import uuid
from typing import cast

from cloud.ingest.dropped import dropped_seqs
from contracts.events import DataDropped, DropReason, EventType, GatewayEvent
from contracts.messages import EventMsg, decode
from contracts.timeutil import utc_now
from contracts.topics import Kind
from edge_agent.buffer import Dropped


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


# -- the shapes agents send ------------------------------------------------------------
#: What the buffer of agents already in the field sends (no ``readings``).
OLD_BUFFER_SHAPE = {
    "reason": "buffer full",
    "seq_ranges": [[3, 7], [9, 9]],
    "batches": 6,
    "bytes": 12_000,
    "from": "2026-01-01T00:00:00.000Z",
    "to": "2026-01-01T00:05:00.000Z",
}
#: What the poller of agents already in the field sends (a reading lost before batching).
OLD_POLLER_SHAPE = {
    "reason": "reading queue full",
    "from": "2026-01-01T00:00:00.000Z",
    "to": "2026-01-01T00:00:00.000Z",
    "readings": 1,
}


def test_the_older_buffer_shape_accounts_for_the_same_seqs_as_the_canonical_one() -> None:
    canonical = DataDropped.model_validate(OLD_BUFFER_SHAPE).wire()
    assert set(canonical) == {"reason", "seq_ranges", "batches", "readings", "bytes", "from", "to"}
    assert dropped_seqs(_event(10, **OLD_BUFFER_SHAPE)) == [3, 4, 5, 6, 7, 9]
    assert dropped_seqs(_event(10, **canonical)) == [3, 4, 5, 6, 7, 9]


def test_the_older_poller_shape_parses_and_accounts_for_no_seq() -> None:
    detail = DataDropped.model_validate(OLD_POLLER_SHAPE)
    assert (detail.reason, detail.readings, detail.seq_ranges, detail.batches) == (
        DropReason.READING_QUEUE_FULL,
        1,
        [],
        0,
    )
    assert dropped_seqs(_event(10, **OLD_POLLER_SHAPE)) == []
    assert dropped_seqs(_event(10, **detail.wire())) == []


def test_the_agents_drop_report_round_trips_through_the_wire() -> None:
    drop = Dropped("buffer full")
    for seq in (2, 3, 4, 8):
        drop.add(seq, 100, ("2026-01-01T00:00:00.000Z", "2026-01-01T00:00:01.000Z"))
    event = GatewayEvent(type=EventType.DATA_DROPPED, detail=drop.detail())
    wire = event.message(uuid.uuid4(), 9, utc_now()).to_json()
    assert dropped_seqs(decode_event(wire)) == [2, 3, 4, 8]


def test_a_reason_the_catalogue_does_not_know_still_accounts_for_the_seqs() -> None:
    assert dropped_seqs(_event(9, reason="cosmic rays", seq_ranges=[[1, 2]])) == [1, 2]


def test_a_detail_whose_other_fields_do_not_fit_still_accounts_for_its_ranges() -> None:
    """Those seqs will never come: an open gap would stop the watermark for good."""
    assert dropped_seqs(_event(9, reason="buffer full", seq_ranges=[[1, 2]], batches=-1)) == [1, 2]
    assert dropped_seqs(_event(9, reason="buffer full", seq_ranges=[[1, 2]], bytes="x")) == [1, 2]
    mixed = [[1, 2], ["x", 3], [True, 5], [4, 4], [9, 12]]  # bad ranges skipped one by one
    assert dropped_seqs(_event(9, reason="buffer full", seq_ranges=mixed, to=7)) == [1, 2, 4]


def decode_event(payload: bytes) -> EventMsg:
    return cast(EventMsg, decode(Kind.EVENT, payload))
