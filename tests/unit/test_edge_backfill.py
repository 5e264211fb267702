"""Paced backfill's pure parts: the token bucket, and the outbox queries it drains by."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

import pytest

from edge_agent.buffer import Outbox
from pacing import TokenBucket


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_starts_full_and_refills_at_its_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=10, burst=5, clock=clock)
    assert bucket.available() == 5
    bucket.take(5)
    assert bucket.available() == 0
    assert bucket.wait_s() == pytest.approx(0.1)
    clock.now = 0.35
    assert bucket.available() == 3


def test_a_bucket_never_saves_more_than_its_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=10, burst=5, clock=clock)
    clock.now = 100.0
    assert bucket.available() == 5
    assert bucket.wait_s(50) == 0.0  # asks for more than the burst: capped


def test_a_paced_drain_averages_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=20, burst=4, clock=clock)
    sent = 0
    while clock.now < 10.0:
        n = bucket.available()
        bucket.take(n)
        sent += n
        clock.now += max(bucket.wait_s(), 0.01)
    assert sent == pytest.approx(4 + 20 * 10, abs=2)


def _telemetry(stream_id: UUID, seq: int) -> bytes:
    return b'{"seq": %d}' % seq


def test_the_outbox_serves_one_priority_and_a_seq_range_oldest_first(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "b.sqlite")
    for i in range(1, 11):
        box.append("event" if i in (3, 7) else "telemetry", _telemetry)
    backlog = box.unsent_of(2, 3, upto_seq=6)
    assert [r.seq for r in backlog] == [1, 2, 4]
    live = box.unsent_of(2, 10, exclude=[9], after_seq=6)
    assert [r.seq for r in live] == [8, 10]
    assert [r.seq for r in box.unsent_of(0, 10)] == [3, 7]
    box.mark_sent([8])
    assert [r.seq for r in box.unsent_of(2, 10, after_seq=6)] == [9, 10]
    assert box.last_seq == 10
    box.close()
