"""The one back-off policy and the one token bucket (pure; no sockets, no waiting)."""

from __future__ import annotations

import random

import pytest

from pacing import Backoff, Reconnect, TokenBucket


def test_backoff_ceiling_doubles_from_first_up_to_max() -> None:
    policy = Backoff(0.5, 3.0, jitter="none")
    # 0.5, 1, 2, then capped at 3 (hand-computed)
    assert [policy.delay(n) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_backoff_treats_retry_zero_like_the_first() -> None:
    assert Backoff(0.2, 10, jitter="none").delay(0) == 0.2


def test_backoff_never_overflows_on_a_huge_retry_count() -> None:
    assert Backoff(0.2, 30, jitter="none").delay(10_000) == 30


def test_full_jitter_draws_below_the_ceiling_and_spreads() -> None:
    policy = Backoff(1.0, 60.0, rng=random.Random(7))
    draws = [policy.delay(4) for _ in range(2_000)]  # ceiling 8 s
    assert all(0 <= d <= 8.0 for d in draws)
    assert min(draws) < 0.5  # spread over the whole range
    assert max(draws) > 7.5


def test_equal_jitter_keeps_at_least_half_the_ceiling() -> None:
    policy = Backoff(0.05, 5.0, jitter="equal", rng=random.Random(1))
    draws = [policy.delay(3) for _ in range(500)]  # ceiling 0.2 s
    assert all(0.1 <= d <= 0.2 for d in draws)


def test_backoff_refuses_negative_bounds() -> None:
    with pytest.raises(ValueError, match="first_s"):
        Backoff(-1, 5)


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_bucket_starts_full_and_refills_at_its_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=10, burst=5, clock=clock)
    assert bucket.available() == 5
    bucket.take(5)
    assert bucket.available() == 0
    clock.t += 0.25  # 2.5 tokens at 10/s
    assert bucket.available() == 2
    clock.t += 10
    assert bucket.available() == 5  # never above burst


def test_bucket_debt_is_waited_off() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=4, burst=2, clock=clock)
    bucket.take(4)  # 2 borrowed
    assert bucket.wait_s() == pytest.approx(0.75)  # (1 - -2) / 4


def test_bucket_on_a_callers_own_time_line() -> None:
    bucket = TokenBucket(rate=2, burst=1, start=0.0)
    assert bucket.try_take(0.0)
    assert not bucket.try_take(0.1)
    assert bucket.ready_at() == pytest.approx(0.5)
    assert bucket.try_take(0.5)


def test_bucket_ignores_a_clock_going_back() -> None:
    bucket = TokenBucket(rate=1, burst=1, start=10.0)
    assert bucket.try_take(10.0)
    assert not bucket.try_take(5.0)  # earlier time: no refill, no negative refill
    assert bucket.try_take(11.0)


def test_reconnect_draws_its_first_wait_below_the_window_then_doubles_without_jitter() -> None:
    policy = Reconnect(30.0, 60.0, rng=random.Random(3))
    firsts = [policy.delay(1) for _ in range(2_000)]
    assert all(0 <= d < 30.0 for d in firsts)
    assert min(firsts) < 1.0
    assert max(firsts) > 29.0
    assert policy.delay(0) < 30.0  # 0 counts as the first
    # then 30, 60, 60 (hand-computed): no draw, so the phases drawn first stay apart
    assert [policy.delay(n) for n in (2, 3, 4, 10_000)] == [30.0, 60.0, 60.0, 60.0]


def test_reconnect_spreads_a_fleet_that_lost_its_broker_together() -> None:
    """50 gateways dropped at once, the broker back after 10 s: each gateway's first
    attempt after that is uniform over the 30 s window (the phase drawn once, then fixed
    waits), so a second holds 50/30 = 1.7 reconnects on average and 11 or more (over 20 %
    of the fleet) only in a run in a thousand or so."""
    policy = Reconnect(30.0, 60.0, rng=random.Random(11))
    outage, runs = 10.0, 400
    per_second = [0] * 30
    crowded = 0
    for _ in range(runs):
        back = []
        for _gateway in range(50):
            t, retry = policy.delay(1), 1
            while t < outage:
                retry += 1
                t += policy.delay(retry)
            back.append(t)
            per_second[int(t - outage)] += 1
        back.sort()
        first = 0
        for last, at in enumerate(back):
            while back[first] <= at - 1.0:
                first += 1
            if last - first + 1 > 10:
                crowded += 1
                break
    assert all(0.7 * runs * 50 / 30 < n < 1.3 * runs * 50 / 30 for n in per_second)
    assert crowded <= runs // 100


def test_reconnect_refuses_a_window_beyond_the_maximum() -> None:
    with pytest.raises(ValueError, match="window_s <= max_s"):
        Reconnect(10.0, 5.0)
