import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.streams import StreamProgress, advance, covered, next_seq


def test_in_order_seqs_move_the_watermark() -> None:
    up = advance(StreamProgress(), [1, 2, 3])
    assert up.progress == StreamProgress(3, ())
    assert up.progress.watermark == 3
    assert up.opened == ()
    assert up.closed == ()


def test_a_hole_opens_a_gap_and_holds_the_watermark() -> None:
    up = advance(StreamProgress(), [1, 2, 5])
    assert up.opened == ((3, 4),)
    assert up.progress.watermark == 2
    assert up.progress.high_seq == 5


def test_a_late_fill_splits_then_closes_the_gap() -> None:
    p = advance(StreamProgress(), [1, 6]).progress  # gap 2..5
    up = advance(p, [3])
    assert up.closed == ((2, 5),)
    assert set(up.opened) == {(2, 2), (4, 5)}
    assert up.progress.watermark == 1
    up2 = advance(up.progress, [2, 4, 5])
    assert up2.progress.gaps == ()
    assert up2.progress.watermark == 6


def test_repeats_are_duplicates_not_gaps() -> None:
    p = advance(StreamProgress(), [1, 2, 3]).progress
    up = advance(p, [2, 3, 3])
    assert up.duplicates == (2, 3, 3)
    assert up.progress == p


def test_gap_opened_and_filled_in_one_call_is_never_reported() -> None:
    up = advance(StreamProgress(), [3, 1, 2])
    assert up.opened == ()
    assert up.closed == ()
    assert up.progress.watermark == 3


def test_seq_helpers() -> None:
    assert next_seq(0) == 1
    assert covered(5, 5)
    assert not covered(6, 5)
    with pytest.raises(ValueError, match="never negative"):
        next_seq(-1)
    with pytest.raises(ValueError, match="starts at 1"):
        advance(StreamProgress(), [0])


@given(st.lists(st.lists(st.integers(1, 60), max_size=20), max_size=8))
def test_watermark_is_highest_seq_with_nothing_missing(batches: list[list[int]]) -> None:
    progress = StreamProgress()
    seen: set[int] = set()
    for batch in batches:
        progress = advance(progress, batch).progress
        seen.update(batch)
        expected = 0
        while expected + 1 in seen:
            expected += 1
        assert progress.watermark == expected
        missing = {s for lo, hi in progress.gaps for s in range(lo, hi + 1)}
        assert missing == set(range(1, max(seen, default=0) + 1)) - seen
