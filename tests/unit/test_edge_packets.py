"""What fits one MQTT packet, and cutting readings into telemetry payloads that fit; the
buffer's split and dead end that keep one seq per buffered message (issue 12)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import orjson

from contracts.events import DropReason
from contracts.messages import Reading, TelemetryBatch, decode
from contracts.topics import Kind
from edge_agent.buffer import Outbox
from edge_agent.packets import PacketLimit, ReadingCutter, publish_size, span_of

TOPIC = "potr/v1/au/gw-au-0001/telemetry"  # 31 bytes
STREAM = UUID("12345678-1234-5678-1234-567812345678")
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def _readings(n: int, *, metrics: int = 3) -> list[Reading]:
    names = ["pv_w", "pv_va", "pv_var", "pv_hz", "pv_wh"][:metrics]
    return [
        Reading(
            device=f"dev-{i}",
            ts=T0 + timedelta(seconds=i),
            values={m: float(i) for m in names},
        )
        for i in range(n)
    ]


def test_publish_size_counts_every_header_byte() -> None:
    # Hand count, MQTT 5, QoS 1: remaining = 2 (topic length) + 31 (topic) + 2 (packet
    # id) + 1 (properties length) + 100 = 136 -> a 2-byte varint; 1 + 2 + 136 = 139.
    assert publish_size(TOPIC, 100) == 139
    assert publish_size(TOPIC, 100, v5=False) == 138  # no properties: 135 -> 1 + 2 + 135
    # remaining 127 still takes a 1-byte varint: 1 + 1 + 127
    assert publish_size(TOPIC, 127 - 36) == 129


def test_the_room_is_the_largest_payload_that_fits() -> None:
    limit = PacketLimit(1024)
    room = limit.room(TOPIC)
    assert room == 1024 - 39  # 1 + 2 (varint) + 2 + 31 + 2 + 1 = 39 header bytes
    assert limit.fits(TOPIC, room)
    assert not limit.fits(TOPIC, room + 1)


def test_the_brokers_limit_wins_when_smaller() -> None:
    limit = PacketLimit(4096)
    assert limit.bytes == 4096
    limit.broker = 2048
    assert limit.bytes == 2048
    limit.broker = 1 << 20
    assert limit.bytes == 4096


def test_readings_are_cut_in_order_into_payloads_that_each_fit() -> None:
    readings = _readings(40)
    cutter = ReadingCutter(readings, room=600)
    pieces, start, seq = [], 0, 7
    while start < len(cutter.readings):
        end = cutter.cut(STREAM, seq, start)
        payload = cutter.payload(STREAM, seq, start, end)
        assert len(payload) <= 600
        assert len(payload) == cutter.bytes_of(STREAM, seq, start, end)
        if end < len(cutter.readings):  # one more reading would not have fitted
            assert len(cutter.payload(STREAM, seq, start, end + 1)) > 600
        pieces.append(payload)
        start, seq = end, seq + 1
    assert len(pieces) > 1
    back = [r for p in pieces for r in TelemetryBatch.model_validate(orjson.loads(p)).readings]
    assert back == readings
    assert cutter.too_large == []


def test_a_payload_exactly_at_the_room_is_one_batch() -> None:
    readings = _readings(5)
    exact = len(TelemetryBatch(stream_id=STREAM, seq=1, readings=readings).to_json())
    assert ReadingCutter(readings, room=exact).cut(STREAM, 1, 0) == 5
    assert ReadingCutter(readings, room=exact - 1).cut(STREAM, 1, 0) == 4


def test_a_reading_no_payload_can_hold_is_set_apart_and_the_rest_kept() -> None:
    small = _readings(4, metrics=1)
    big = Reading(device="big", ts=T0, values={"pv_w": 1.0, "pv_va": 2.0, "pv_var": 3.0})
    one_small = len(TelemetryBatch(stream_id=STREAM, seq=2**63 - 1, readings=small[:1]).to_json())
    cutter = ReadingCutter([small[0], big, *small[1:]], room=one_small + 5)
    assert cutter.too_large == [big]
    assert cutter.readings == small


def test_span_of_is_the_first_and_last_reading_time() -> None:
    assert span_of(_readings(3)[::-1]) == (
        "2025-01-01T00:00:00.000Z",
        "2025-01-01T00:00:02.000Z",
    )


def _telemetry_row(box: Outbox, readings: list[Reading]) -> int:
    return box.append(
        "telemetry",
        lambda sid, seq: TelemetryBatch(stream_id=sid, seq=seq, readings=readings).to_json(),
        span=span_of(readings),
    )


def _cut(cutter: ReadingCutter):  # type: ignore[no-untyped-def]
    def piece(stream_id: UUID, seq: int, start: int) -> tuple[bytes, int, tuple[str, str]]:
        end = cutter.cut(stream_id, seq, start)
        return cutter.payload(stream_id, seq, start, end), end, span_of(cutter.readings[start:end])

    return piece


def test_a_split_row_keeps_its_seq_for_the_first_piece_and_takes_new_seqs(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "b.sqlite")
    readings = _readings(12)
    seq = _telemetry_row(box, readings)
    box.append("event", lambda sid, s: b"{}")  # seq 2: the pieces come after it
    cutter = ReadingCutter(readings, room=500)
    seqs = box.split(seq, _cut(cutter), len(cutter.readings), reason="too large")
    assert seqs[0] == seq
    assert seqs[1:] == list(range(3, 3 + len(seqs) - 1))
    rows = {r.seq: r for r in box.rows()}
    batches = [decode(Kind.TELEMETRY, rows[s].payload) for s in seqs]
    assert [b.seq for b in batches] == seqs  # type: ignore[attr-defined]
    assert [r for b in batches for r in b.readings] == readings  # type: ignore[attr-defined]
    assert all(len(rows[s].payload) <= 500 for s in seqs)
    assert box.bytes == sum(len(r.payload) for r in rows.values())
    assert box.pending_drops() == []


def test_readings_that_fit_nowhere_get_a_seq_reported_dropped(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "b.sqlite")
    seq = _telemetry_row(box, _readings(3))
    cutter = ReadingCutter(_readings(3), room=400)
    last = box.split(seq, _cut(cutter), 2, reason="too large", lost=(("a", "b"), 99))[-1]
    [dropped] = box.pending_drops()
    assert dropped.reason == DropReason.TOO_LARGE
    assert dropped.seqs == [last + 1]
    assert (dropped.bytes, dropped.span_from, dropped.span_to) == (99, "a", "b")
    assert box.last_seq == last + 1


def test_a_message_that_can_never_fit_is_dead_ended_and_reported(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "b.sqlite")
    box.append("config_state", lambda sid, s: b"x" * 50)
    assert box.dead_end(1, "too large")
    assert box.rows() == []
    assert box.bytes == 0
    [dropped] = box.pending_drops()
    assert (dropped.reason, dropped.seqs, dropped.bytes) == ("too large", [1], 50)
    assert not box.dead_end(1, "too large")


def test_a_skipped_seq_is_recorded_dropped_without_a_row(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "b.sqlite")
    assert box.skip(("a", "b"), "too large", 12) == 1
    assert box.rows() == []
    [dropped] = box.pending_drops()
    assert (dropped.seqs, dropped.bytes) == ([1], 12)
    assert box.dropped_total == 0  # not a batch dropped to make room
