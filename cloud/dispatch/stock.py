"""The region's parts stock as money and as reorders (issue 19's "billing information
for inventory management"): pure functions over :class:`PartStock` lines, no I/O.

**Valuation.** A line's value is its quantity on hand * its unit cost (``unit_value``,
the region's currency, cents); the stock's value is the sum of the lines' — exact
``Decimal`` arithmetic, never float, so the total equals the sum of the lines shown. A
line without a unit cost has no value and is counted apart (``unvalued``): the total
is then of the valued lines only, and says so.

**Reorders.** A use that takes a part's quantity on hand from *above* its reorder level
to at or below it needs ``reorder_quantity`` more: once per crossing, so further uses
below the level ask nothing more until a restock lifts the part above it again. A
reorder quantity of 0 means the part is not reordered.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from cloud.dispatch.models import PartStock

__all__ = ["LineValue", "StockValue", "crosses_reorder_level", "is_low", "value_stock"]

_CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class LineValue:
    """One part of the stock with its value (None: no unit cost known) and whether it is
    at or below its reorder level (``low``; never for a part that is not reordered)."""

    line: PartStock
    value: Decimal | None
    low: bool


@dataclass(frozen=True, slots=True)
class StockValue:
    """The region's stock valued: ``lines`` in part order, ``total`` of the valued ones
    in ``currency``, ``unvalued`` how many lines carry no unit cost."""

    lines: tuple[LineValue, ...]
    total: Decimal
    currency: str
    unvalued: int

    @property
    def low(self) -> tuple[LineValue, ...]:
        """The parts at or below their reorder level."""
        return tuple(line for line in self.lines if line.low)


def is_low(line: PartStock) -> bool:
    """Whether ``line`` is at or below its reorder level (a part that is reordered)."""
    return line.reorder_quantity > 0 and line.quantity <= line.reorder_level


def value_stock(lines: list[PartStock], currency: str) -> StockValue:
    """``lines`` (one region's, all in its ``currency``) valued: quantity * unit cost per
    line, exact to the cent, and their sum."""
    valued: list[LineValue] = []
    total = Decimal("0.00")
    unvalued = 0
    for line in lines:
        value = None
        if line.unit_value is None:
            unvalued += 1
        else:
            # Cents * an integer: exact; quantize only pins the scale at 2 places.
            value = (line.unit_value * line.quantity).quantize(_CENT)
            total += value
        valued.append(LineValue(line, value, is_low(line)))
    return StockValue(tuple(valued), total.quantize(_CENT), currency, unvalued)


def crosses_reorder_level(after: PartStock, taken: int) -> bool:
    """Whether taking ``taken`` parts, leaving the line ``after``, crossed its reorder
    level: above it before, at or below it now, and the part is reordered."""
    before = after.quantity + taken
    return after.reorder_quantity > 0 and before > after.reorder_level >= after.quantity
