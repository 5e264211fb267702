"""Production over a window from inverters' hourly counter marks (cloud.alerts.production):
every figure below is a hand subtraction of the counter values fed in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from cloud.alerts.production import RETAIN, ProductionMarks, ProductionState, hour_of

H = timedelta(hours=1)
T0 = datetime(2026, 1, 10, 0, 0, tzinfo=UTC)


def test_an_hours_mark_is_its_first_sample_and_windows_difference_the_marks() -> None:
    m = ProductionMarks()
    m.add("inv1", T0 + timedelta(minutes=1), 1_000.0)
    m.add("inv1", T0 + timedelta(minutes=30), 1_400.0)  # same hour: the first one stays
    m.add("inv1", T0 + 3 * H + timedelta(minutes=2), 4_000.0)
    m.add("inv2", T0 + timedelta(minutes=5), 50.0)
    m.add("inv2", T0 + 3 * H + timedelta(minutes=4), 2_050.0)
    # (4000 - 1000) + (2050 - 50)
    assert m.produced(T0, T0 + 3 * H) == 5_000.0
    # A mark in a zone offset by half an hour is still its UTC hour.
    adelaide = (T0 + 3 * H + timedelta(minutes=1)).astimezone(ZoneInfo("Australia/Adelaide"))
    m.add("inv1", adelaide, 3_990.0)  # earlier in the same UTC hour: it becomes the mark
    assert m.produced(T0, T0 + 3 * H) == 4_990.0


def test_a_night_without_samples_loses_nothing_the_counter_kept() -> None:
    m = ProductionMarks()
    m.add("inv1", T0 + 8 * H, 10_000.0)  # last sample of the evening
    m.add("inv1", T0 + 21 * H, 10_000.0)  # asleep until the morning: no marks between
    m.add("inv1", T0 + 23 * H, 12_500.0)
    # From 20:00 to 23:00 the latest mark at or before the start is 08:00's.
    assert m.produced(T0 + 20 * H, T0 + 23 * H) == 2_500.0


def test_windows_that_cannot_be_judged_fairly_answer_none() -> None:
    m = ProductionMarks()
    m.add("inv1", T0 + 5 * H, 100.0)
    assert m.produced(T0, T0 + 5 * H) is None  # no history that far back
    assert m.produced(T0 + 5 * H, T0 + 6 * H) is None  # no mark at the end
    m.add("inv1", T0 + 6 * H, 50.0)  # the counter went back: replaced or reset
    assert m.produced(T0 + 5 * H, T0 + 6 * H) is None
    m.add("inv2", T0 + 7 * H, 10.0)  # a new inverter beside an old one
    m.add("inv1", T0 + 7 * H, 60.0)
    assert m.produced(T0 + 6 * H, T0 + 7 * H) is None


def test_each_hour_is_due_once_after_the_gateway_moved_past_it() -> None:
    m = ProductionMarks()
    m.add("inv1", T0, 0.0)
    assert m.due() == []  # the newest hour is not due: other inverters may still report
    m.add("inv1", T0 + 2 * H, 10.0)
    assert m.due() == [T0]
    assert m.due() == []
    m.add("inv2", T0 + timedelta(minutes=9), 5.0)  # late, in the hour judged: not again
    m.add("inv1", T0 + 3 * H, 20.0)
    assert m.due() == [T0 + 2 * H]


def test_marks_older_than_the_retention_are_dropped() -> None:
    m = ProductionMarks()
    m.add("inv1", T0, 0.0)
    m.add("inv1", T0 + RETAIN + 2 * H, 100.0)
    assert [mark.hour for mark in m.snapshot().marks] == [T0 + RETAIN + 2 * H]


@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b"]), st.integers(0, 400), st.integers(0, 10**6)),
        max_size=40,
    )
)
def test_restoring_a_snapshot_answers_as_the_original(
    feed: list[tuple[str, int, int]],
) -> None:
    m = ProductionMarks()
    for device, minutes, wh in feed:
        m.add(device, T0 + timedelta(minutes=minutes), float(wh))
    restored = ProductionMarks(ProductionState.model_validate_json(m.snapshot().model_dump_json()))
    for start in range(0, 7):
        for end in range(start, 7):
            a, b = T0 + start * H, T0 + end * H
            assert restored.produced(a, b) == m.produced(a, b)
    assert restored.due() == m.due()
    assert hour_of(T0 + timedelta(minutes=59)) == T0


def test_only_a_new_mark_or_a_judged_hour_needs_writing() -> None:
    m = ProductionMarks()
    m.add("inv1", T0 + timedelta(minutes=1), 10.0)
    assert m.changed
    m.saved()
    m.add("inv1", T0 + timedelta(minutes=20), 12.0)  # later in the same hour: no new mark
    assert not m.changed
    m.add("inv1", T0 + H, 20.0)
    assert m.changed
    m.saved()
    assert m.due() == [T0]
    assert m.changed  # the judged hour moved
    restored = ProductionMarks(m.snapshot())
    assert not restored.changed
