"""The parts stock's pure core (:mod:`cloud.dispatch.stock`): valuation exact to the
cent, and a reorder asked once per crossing of the level — figures by hand."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from cloud.dispatch.models import PartStock
from cloud.dispatch.stock import crosses_reorder_level, is_low, value_stock
from contracts.topics import Region


def _line(
    part_no: str, quantity: int, cost: str | None = None, level: int = 0, again: int = 0
) -> PartStock:
    return PartStock(
        region=Region.AU, part_no=part_no, description="", quantity=quantity,
        unit_value=None if cost is None else Decimal(cost),
        currency=None if cost is None else "AUD",
        reorder_level=level, reorder_quantity=again,
    )  # fmt: skip


def test_the_value_is_quantity_times_unit_cost_and_the_total_their_sum() -> None:
    lines = [_line("A", 3, "0.10"), _line("B", 7, "189.95"), _line("C", 2)]
    value = value_stock(lines, "AUD")
    # 3 x 0.10 = 0.30 (never 0.30000000000000004); 7 x 189.95 = 1329.65.
    assert [v.value for v in value.lines] == [Decimal("0.30"), Decimal("1329.65"), None]
    assert value.total == Decimal("1329.95")
    assert value.unvalued == 1


def test_an_empty_stock_is_worth_nothing() -> None:
    value = value_stock([], "EUR")
    assert (value.total, value.unvalued, value.lines) == (Decimal("0.00"), 0, ())


def test_a_part_is_low_at_or_below_its_level_only_when_it_is_reordered() -> None:
    assert is_low(_line("A", 2, level=2, again=5))
    assert not is_low(_line("A", 3, level=2, again=5))
    assert not is_low(_line("A", 0, level=2, again=0))  # not reordered


def test_only_a_use_from_above_the_level_to_at_or_below_it_crosses() -> None:
    assert crosses_reorder_level(_line("A", 2, level=2, again=5), taken=1)  # 3 -> 2
    assert crosses_reorder_level(_line("A", 0, level=2, again=5), taken=5)  # 5 -> 0
    assert not crosses_reorder_level(_line("A", 3, level=2, again=5), taken=1)  # 4 -> 3
    assert not crosses_reorder_level(_line("A", 1, level=2, again=5), taken=1)  # 2 -> 1
    assert not crosses_reorder_level(_line("A", 1, level=2, again=0), taken=4)  # not reordered


@given(
    start=st.integers(0, 50),
    level=st.integers(0, 20),
    uses=st.lists(st.integers(1, 5), max_size=30),
)
def test_uses_without_a_restock_cross_the_level_at_most_once(
    start: int, level: int, uses: list[int]
) -> None:
    quantity, crossings = start, 0
    for taken in uses:
        if taken > quantity:
            continue  # refused: nothing taken
        quantity -= taken
        crossings += crosses_reorder_level(_line("A", quantity, level=level, again=1), taken)
    assert crossings == (1 if start > level >= quantity else 0)
