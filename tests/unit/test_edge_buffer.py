"""The SQLite outbox: one seq space, crash-safe stream, stored watermark, resend."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID, uuid4

import orjson

from edge_agent.buffer import AsyncOutbox, Outbox


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
    assert box.counts() == {"rows": 3, "unsent": 2}


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
        assert await box.counts() == {"rows": 0, "unsent": 0}
