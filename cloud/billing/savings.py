"""A customer's savings against the utility, estimated (issue 20): for each billed line
of energy, its kWh x (the utility's reference price - the PPA price the line charged).

Pure. An estimate, and said so wherever it is shown: the utility's price is a reference
(the caller's: the portal gives the reports' reference data, so the customer's figure
and the reports' savings delivered agree), the one in force on the line's first day; energy
the system supplied but the customer would not have bought is not told apart; taxes are
left out on both sides (both prices are tax-exclusive). Lines whose zone or date has no
reference price are counted, not guessed. Money stays :class:`~decimal.Decimal`; the
totals are rounded to cents once, half up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

__all__ = ["EnergyLine", "SavingsEstimate", "estimate_savings"]

_CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class EnergyLine:
    """A billed line of energy: ``kwh`` at ``unit_price`` (currency per kWh, net)."""

    currency: str
    tariff_zone: str
    first_day: date
    kwh: Decimal
    unit_price: Decimal


@dataclass(frozen=True, slots=True)
class SavingsEstimate:
    """Per currency: the energy billed with a reference price (kWh), what it cost under
    the PPA and at the utility's price, and the difference (``savings``; negative when
    the utility was cheaper); ``lines_unpriced``: lines left out for want of a price."""

    currency: str
    kwh: Decimal
    ppa_cost: Decimal
    utility_cost: Decimal
    savings: Decimal
    lines_unpriced: int


def estimate_savings(
    lines: Iterable[EnergyLine], price: Callable[[str, date], Decimal | None]
) -> list[SavingsEstimate]:
    """The estimate per currency (sorted), ``price(zone, day)`` giving the utility's."""
    sums: dict[str, list[Decimal]] = {}
    unpriced: dict[str, int] = {}
    for line in lines:
        totals = sums.setdefault(line.currency, [Decimal(0)] * 3)
        unpriced.setdefault(line.currency, 0)
        reference = price(line.tariff_zone, line.first_day)
        if reference is None:
            unpriced[line.currency] += 1
            continue
        totals[0] += line.kwh
        totals[1] += line.kwh * line.unit_price
        totals[2] += line.kwh * reference
    return [
        SavingsEstimate(
            currency=currency,
            kwh=kwh,
            ppa_cost=_cents(ppa),
            utility_cost=_cents(utility),
            savings=_cents(utility - ppa),
            lines_unpriced=unpriced[currency],
        )
        for currency, (kwh, ppa, utility) in sorted(sums.items())
    ]


def _cents(amount: Decimal) -> Decimal:
    return amount.quantize(_CENT, rounding=ROUND_HALF_UP)
