"""ClockGuard: when readings are flagged ``clock_suspect`` and when a jump is reported
(the edge side of reliability scenario 9), with fake wall and monotonic clocks."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from edge_agent.clock import ClockGuard, ntp_synchronised

TRUE_NOW = 1_750_000_000.0  # 2025-06-15
TWO_HOURS = 7200.0


class FakeTime:
    """A monotonic clock and a wall clock ``error`` seconds off the true time."""

    def __init__(self, error: float = 0.0) -> None:
        self.mono = 1000.0
        self.error = error

    def monotonic(self) -> float:
        return self.mono

    def true_now(self) -> float:
        return TRUE_NOW + self.mono - 1000.0

    def wall(self) -> float:
        return self.true_now() + self.error

    def cloud_ts(self) -> datetime:
        """What a ``stored`` message from a cloud with a good clock carries."""
        return datetime.fromtimestamp(self.true_now(), UTC)

    def advance(self, seconds: float) -> None:
        self.mono += seconds


def _guard(t: FakeTime, os_synced: bool | None = None) -> ClockGuard:
    return ClockGuard(
        wall=t.wall,
        monotonic=t.monotonic,
        os_synced=lambda: os_synced,
        jump_threshold_s=1.0,
        max_skew_s=5.0,
    )


def test_an_unknown_clock_is_suspect_until_proven_good() -> None:
    guard = _guard(FakeTime())
    assert guard.suspect
    assert guard.take_suspect()


def test_the_os_saying_ntp_synchronised_makes_the_clock_good() -> None:
    guard = _guard(FakeTime(), os_synced=True)
    assert guard.known_good
    assert not guard.take_suspect()


def test_agreeing_with_the_clouds_time_makes_the_clock_good() -> None:
    t = FakeTime(error=0.4)
    guard = _guard(t, os_synced=False)
    guard.on_cloud_time(t.cloud_ts())
    assert guard.known_good


def test_a_clock_years_off_is_suspect_even_if_the_os_says_synchronised() -> None:
    t = FakeTime(error=-TRUE_NOW + 86_400)  # 1970-01-02: a Pi booted without RTC
    guard = _guard(t, os_synced=True)
    assert guard.suspect


@pytest.mark.parametrize("error", [TWO_HOURS, -TWO_HOURS], ids=["ahead", "behind"])
def test_a_clock_two_hours_off_is_suspect_against_the_cloud_even_if_the_os_disagrees(
    error: float,
) -> None:
    t = FakeTime(error=error)
    guard = _guard(t, os_synced=True)
    guard.on_cloud_time(t.cloud_ts())
    assert guard.suspect
    assert guard.cloud_skew_s == pytest.approx(error)


@pytest.mark.parametrize("error", [TWO_HOURS, -TWO_HOURS], ids=["ahead", "behind"])
def test_clock_off_by_two_hours_then_corrected_flags_readings_and_reports_one_jump(
    error: float,
) -> None:
    t = FakeTime(error=error)
    guard = _guard(t, os_synced=None)
    for _ in range(3):  # polls while the clock is wrong
        t.advance(1.0)
        assert guard.check() is None
        assert guard.take_suspect()
    guard.on_cloud_time(t.cloud_ts())
    assert guard.take_suspect()

    t.advance(1.0)
    t.error = 0.0  # NTP steps the clock
    jump = guard.check()
    assert jump is not None
    assert jump.delta_s == pytest.approx(-error)
    assert jump.detail().delta_s == pytest.approx(-error)
    assert guard.take_suspect()  # readings around the step stay flagged

    t.advance(1.0)
    guard.on_cloud_time(t.cloud_ts())
    assert guard.known_good
    assert guard.take_suspect()  # the batch that straddles the correction
    t.advance(1.0)
    assert guard.check() is None
    assert not guard.take_suspect()


def test_steady_clocks_and_small_slews_are_no_jump() -> None:
    t = FakeTime()
    guard = _guard(t, os_synced=True)
    for _ in range(10):
        t.advance(5.0)
        t.error += 0.05  # NTP slewing
        assert guard.check() is None


def test_a_jump_voids_the_last_cloud_comparison() -> None:
    t = FakeTime()
    guard = _guard(t, os_synced=False)
    guard.on_cloud_time(t.cloud_ts())
    assert guard.known_good
    t.error = 30.0
    assert guard.check() is not None
    assert guard.cloud_skew_s is None
    assert guard.suspect


def test_a_good_clock_turning_suspect_between_batches_flags_the_next_batch() -> None:
    t = FakeTime()
    synced: list[bool | None] = [True]
    guard = ClockGuard(wall=t.wall, monotonic=t.monotonic, os_synced=lambda: synced[0])
    assert not guard.take_suspect()
    synced[0] = False
    guard.check()
    synced[0] = True
    guard.check()
    assert guard.take_suspect()  # suspect for a while since the last batch
    assert not guard.take_suspect()


def test_the_os_probe_answers_without_blocking() -> None:
    assert ntp_synchronised() in (True, False, None)
