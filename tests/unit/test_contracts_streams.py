import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.streams import Gap, StreamProgress, StreamUpdate, advance, covered, next_seq


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


def test_filling_an_edge_shrinks_the_gap_in_place() -> None:
    p = advance(StreamProgress(), [1, 6]).progress  # gap 2..5
    up = advance(p, [2])
    assert up.shrunk == (((2, 5), (3, 5)),)
    assert (up.opened, up.closed, up.split_off) == ((), (), ())
    assert up.progress.watermark == 2
    up = advance(up.progress, [5, 4])
    assert up.shrunk == (((3, 5), (3, 3)),)
    assert up.progress.gaps == ((3, 3),)


def test_a_fill_in_the_middle_shrinks_to_the_lower_part_and_splits_off_the_rest() -> None:
    p = advance(StreamProgress(), [1, 10]).progress  # gap 2..9
    up = advance(p, [4, 7])
    assert up.shrunk == (((2, 9), (2, 3)),)
    assert up.split_off == (((2, 9), (5, 6)), ((2, 9), (8, 9)))
    assert (up.opened, up.closed) == ((), ())
    assert up.progress.gaps == ((2, 3), (5, 6), (8, 9))
    assert up.progress.watermark == 1


def test_a_gap_is_closed_only_when_empty() -> None:
    p = advance(StreamProgress(), [1, 6]).progress  # gap 2..5
    up = advance(p, [3])
    assert up.closed == ()
    up2 = advance(up.progress, [2, 4, 5])
    assert set(up2.closed) == {(2, 2), (4, 5)}
    assert up2.shrunk == up2.split_off == ()
    assert up2.progress.gaps == ()
    assert up2.progress.watermark == 6


def test_a_backfill_touches_one_row_per_message() -> None:
    progress = advance(StreamProgress(), [1, 100]).progress  # gap 2..99
    for seq in range(2, 100):
        up = advance(progress, [seq])
        assert len(up.shrunk) + len(up.closed) + len(up.opened) + len(up.split_off) == 1
        progress = up.progress
    assert progress == StreamProgress(100, ())


def test_a_new_hole_partly_filled_in_the_same_call_is_opened_as_it_remains() -> None:
    up = advance(StreamProgress(1, ()), [6, 3])
    assert up.opened == ((2, 2), (4, 5))
    assert (up.closed, up.shrunk, up.split_off) == ((), (), ())


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


def _apply(stored: tuple[Gap, ...], up: StreamUpdate) -> set[Gap]:
    """What storage holds after writing ``up`` the way ingest does (rows, not seqs)."""
    rows = set(stored)
    for gap in up.closed:
        rows.remove(gap)
    for old, new in up.shrunk:
        assert old[0] <= new[0] <= new[1] <= old[1]
        assert new != old
        rows.remove(old)
        rows.add(new)
    for origin, piece in up.split_off:
        assert origin in stored
        assert origin[0] < piece[0] <= piece[1] <= origin[1]
        rows.add(piece)
    rows.update(up.opened)
    return rows


@given(st.lists(st.lists(st.integers(1, 60), max_size=20), max_size=8))
def test_watermark_is_highest_seq_with_nothing_missing(batches: list[list[int]]) -> None:
    progress = StreamProgress()
    seen: set[int] = set()
    for batch in batches:
        up = advance(progress, batch)
        touched = [*up.closed, *(old for old, _ in up.shrunk)]
        assert len(touched) == len(set(touched))  # each stored gap ends one way
        assert _apply(progress.gaps, up) == set(up.progress.gaps)
        progress = up.progress
        seen.update(batch)
        expected = 0
        while expected + 1 in seen:
            expected += 1
        assert progress.watermark == expected
        missing = {s for lo, hi in progress.gaps for s in range(lo, hi + 1)}
        assert missing == set(range(1, max(seen, default=0) + 1)) - seen
        assert all(lo <= hi for lo, hi in progress.gaps)
