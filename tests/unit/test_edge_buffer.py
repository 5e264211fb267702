"""The SQLite outbox: one seq space, crash-safe stream, stored watermark, resend."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID, uuid4

import orjson

from edge_agent.buffer import AsyncOutbox, Dropped, Outbox


def _payload(kind: str):
    def make(stream_id: UUID, seq: int) -> bytes:
        return orjson.dumps({"kind": kind, "stream_id": str(stream_id), "seq": seq})

    return make


def test_seqs_are_one_space_for_every_kind(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "b.sqlite")
    seqs = [box.append(k, _payload(k)) for k in ("telemetry", "event", "cmd_ack", "telemetry")]
    assert seqs == [1, 2, 3, 4]
    rows = box.rows()
    assert [orjson.loads(r.payload)["seq"] for r in rows] == [1, 2, 3, 4]
    assert {orjson.loads(r.payload)["stream_id"] for r in rows} == {str(box.stream_id)}


def test_stream_and_seq_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    box = Outbox(path)
    stream = box.stream_id
    box.append("telemetry", _payload("telemetry"))
    box.close()
    again = Outbox(path)
    assert again.stream_id == stream
    assert again.append("telemetry", _payload("telemetry")) == 2
    assert [r.seq for r in again.unsent(10)] == [1, 2]
    assert again.integrity_ok()


def test_a_new_database_is_a_new_stream(tmp_path: Path) -> None:
    assert Outbox(tmp_path / "a.sqlite").stream_id != Outbox(tmp_path / "b.sqlite").stream_id


def test_events_and_acks_are_sent_before_telemetry(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "b.sqlite")
    for kind in ("telemetry", "telemetry", "event", "cmd_ack"):
        box.append(kind, _payload(kind))
    assert [r.seq for r in box.unsent(10)] == [3, 4, 1, 2]
    assert [r.seq for r in box.unsent(10, exclude=[3, 1])] == [4, 2]
    assert [r.seq for r in box.unsent(1)] == [3]


def test_stored_deletes_everything_up_to_the_watermark(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "b.sqlite")
    for _ in range(5):
        box.append("telemetry", _payload("telemetry"))
    box.mark_sent([1, 2, 3])
    assert box.apply_stored(box.stream_id, 3) == 3
    assert [r.seq for r in box.rows()] == [4, 5]


def test_stored_beyond_the_last_allocated_seq_is_refused_and_deletes_nothing(
    tmp_path: Path,
) -> None:
    """A watermark claiming seqs never allocated (forged, or meant for another gateway)
    would delete rows the cloud never got: refused whole, not clamped."""
    box = Outbox(tmp_path / "b.sqlite")
    for _ in range(3):
        box.append("telemetry", _payload("telemetry"))
    assert box.apply_stored(box.stream_id, 4) is None
    assert [r.seq for r in box.rows()] == [1, 2, 3]
    assert box.apply_stored(box.stream_id, 3) == 3  # the last seq itself is fine


def test_stored_for_another_stream_is_ignored(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "b.sqlite")
    box.append("telemetry", _payload("telemetry"))
    assert box.apply_stored(uuid4(), 10) == 0
    assert len(box.rows()) == 1


def test_sent_but_not_stored_rows_are_resent_after_the_timeout(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "b.sqlite")
    for _ in range(3):
        box.append("telemetry", _payload("telemetry"))
    box.mark_sent([1, 2], now=100.0)
    box.mark_sent([3], now=200.0)
    assert box.unsent(10) == []
    assert box.requeue_stale(50.0, now=150.0) == 2
    assert [r.seq for r in box.unsent(10)] == [1, 2]
    assert box.counts()["rows"] == 3
    assert box.counts()["unsent"] == 2


def test_resends_back_off_exponentially_per_row(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "b.sqlite")
    box.append("telemetry", _payload("telemetry"))
    box.mark_sent([1], now=0.0)  # first send: resend after 10 s
    assert box.requeue_stale(10.0, now=9.9) == 0
    assert box.requeue_stale(10.0, now=10.0) == 1
    box.mark_sent([1], now=10.0)  # second send: wait 20 s
    assert box.requeue_stale(10.0, now=29.9) == 0
    assert box.requeue_stale(10.0, now=30.0) == 1
    for _ in range(10):  # many resends: capped at max_backoff x timeout
        box.mark_sent([1], now=1000.0)
        box.requeue_all()
    box.mark_sent([1], now=1000.0)
    assert box.requeue_stale(10.0, now=1000.0 + 319.0, max_backoff=32) == 0
    assert box.requeue_stale(10.0, now=1000.0 + 320.0, max_backoff=32) == 1


def test_a_buffer_from_an_older_agent_gains_the_attempts_column(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE meta (id INTEGER PRIMARY KEY, stream_id TEXT NOT NULL,"
        " last_seq INTEGER NOT NULL);"
        "CREATE TABLE outbox (seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, payload BLOB NOT NULL,"
        " created_at REAL NOT NULL, sent_at REAL, priority INTEGER NOT NULL);"
    )
    db.close()
    box = Outbox(path)
    box.append("telemetry", _payload("telemetry"))
    box.mark_sent([1], now=0.0)
    assert box.requeue_stale(1.0, now=1.0) == 1


def test_buffer_uses_wal_and_full_sync(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "b.sqlite")
    db = box._db
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


async def test_async_outbox_runs_off_the_loop(tmp_path: Path) -> None:
    async with AsyncOutbox(tmp_path / "sub" / "b.sqlite") as box:
        seq = await box.append("event", _payload("event"))
        assert seq == 1
        rows = await box.unsent(5)
        assert rows[0].kind == "event"
        await box.mark_sent([1])
        assert await box.apply_stored(box.stream_id, 1) == 1
        assert await box.counts() == {"rows": 0, "unsent": 0, "bytes": 0}


def _sized(kind: str, size: int):
    def make(stream_id: UUID, seq: int) -> bytes:
        head = orjson.dumps({"kind": kind, "seq": seq})
        return head + b" " * (size - len(head))

    return make


def test_a_full_buffer_drops_the_oldest_telemetry_first_and_reports_it(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "b.sqlite", max_bytes=1000)
    for i in range(4):  # 4 x 200 bytes of telemetry, one event in the middle
        box.append(
            "telemetry",
            _sized("telemetry", 200),
            span=(f"2026-01-01T00:00:0{i}.000Z", f"2026-01-01T00:00:0{i}.500Z"),
        )
        if i == 1:
            box.append("event", _sized("event", 150))
    assert box.bytes == 950
    box.append("telemetry", _sized("telemetry", 200))  # needs 150 more: oldest batch goes
    box.append("cmd_ack", _sized("cmd_ack", 300))  # acks are never dropped: two more go
    assert [(r.seq, r.kind) for r in box.rows()] == [
        (3, "event"),
        (5, "telemetry"),
        (6, "telemetry"),
        (7, "cmd_ack"),
    ]
    assert box.bytes == 850
    drops = box.pending_drops()
    assert len(drops) == 1
    detail = drops[0].detail().wire()
    assert detail["seq_ranges"] == [[1, 2], [4, 4]]
    assert detail["batches"] == 3
    assert detail["bytes"] == 600
    assert detail["from"] == "2026-01-01T00:00:00.000Z"
    assert detail["to"] == "2026-01-01T00:00:02.500Z"
    reported = box.report_drops(lambda d: _sized("event", 100))
    assert reported == drops
    assert box.pending_drops() == []
    assert box.rows()[-1].kind == "event"
    assert box.rows()[-1].seq == 8  # after every seq it names
    assert box.report_drops(lambda d: _sized("event", 100)) == []


def test_events_are_kept_even_beyond_the_cap(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "b.sqlite", max_bytes=300)
    for _ in range(3):
        box.append("event", _sized("event", 200))
    assert [r.kind for r in box.rows()] == ["event"] * 3
    seq = box.append("telemetry", _sized("telemetry", 100))  # no older telemetry to drop
    assert seq == 4
    assert [r.seq for r in box.rows()] == [1, 2, 3]
    assert box.pending_drops()[0].ranges() == [(4, 4)]


def test_unreported_drops_survive_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    box = Outbox(path, max_bytes=300)
    for _ in range(3):
        box.append("telemetry", _sized("telemetry", 200))
    assert box.dropped_total == 2
    box.close()  # no report was made before the "crash"
    again = Outbox(path, max_bytes=300)
    assert [d.ranges() for d in again.pending_drops()] == [[(1, 2)]]
    again.report_drops(lambda d: _sized("event", 50))
    assert again.pending_drops() == []


def test_drops_are_reported_once_per_reason_however_many_batches(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "b.sqlite", max_bytes=1000)
    for _ in range(50):
        box.append("telemetry", _sized("telemetry", 200))
    reports = box.report_drops(lambda d: _sized("event", 100))
    assert len(reports) == 1
    assert reports[0].ranges() == [(1, 45)]
    assert sum(1 for r in box.rows() if r.kind == "event") == 1


def test_byte_count_survives_restart_and_stored(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    box = Outbox(path, max_bytes=10_000)
    for _ in range(3):
        box.append("telemetry", _sized("telemetry", 100))
    box.close()
    again = Outbox(path, max_bytes=10_000)
    assert again.bytes == 300
    again.apply_stored(again.stream_id, 2)
    assert again.bytes == 100


def test_a_corrupt_buffer_is_moved_aside_and_a_new_stream_starts(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    box = Outbox(path)
    old_stream = box.stream_id
    for _ in range(50):
        box.append("telemetry", _sized("telemetry", 2000))
    box.close()
    raw = bytearray(path.read_bytes())
    raw[4096:8192] = b"\xde\xad\xbe\xef" * 1024  # trash a page of the table
    path.write_bytes(bytes(raw))
    again = Outbox(path)
    assert again.recovered is not None
    assert again.recovered.moved_to.exists()
    assert again.stream_id != old_stream
    assert again.rows() == []
    assert again.integrity_ok()
    assert again.append("telemetry", _sized("telemetry", 10)) == 1


def test_garbage_instead_of_a_database_is_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    box = Outbox(path)
    assert box.recovered is not None
    assert "not a database" in box.recovered.reason
    assert box.append("event", _sized("event", 10)) == 1


def test_a_drop_report_with_an_unreadable_span_still_names_its_seqs() -> None:
    """A recorded drop whose span no longer validates must still reach ingest with its
    seqs (else its gap never closes), without the span."""
    drop = Dropped("buffer full")
    drop.add(3, 100, ("not a time", "nor this"))
    drop.add(4, 100, ("not a time", "nor this"))
    detail = drop.detail()
    assert detail.seq_ranges == [(3, 4)]
    assert (detail.from_, detail.to) == (None, None)
    assert detail.batches == 2
