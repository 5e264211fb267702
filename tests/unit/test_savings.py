"""The savings estimate against the utility (issue 20): figures computed by hand."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from cloud.billing.savings import EnergyLine, estimate_savings

D = Decimal


def _price(zone: str, day: date) -> Decimal | None:
    if zone != "NSW":
        return None
    return D("0.29") if day < date(2025, 7, 1) else D("0.30")


def test_savings_are_the_kwh_times_the_price_difference_per_line_rounded_once() -> None:
    lines = [
        EnergyLine("AUD", "NSW", date(2025, 6, 1), D("100"), D("0.16")),
        EnergyLine("AUD", "NSW", date(2025, 7, 1), D("0.333"), D("0.16")),
        EnergyLine("AUD", "NSW", date(2025, 7, 1), D("0.333"), D("0.16")),
        EnergyLine("AUD", "seed", date(2025, 7, 1), D("50"), D("0.16")),  # no price
    ]
    [aud] = estimate_savings(lines, _price)
    # 100 x 0.13 + 2 x 0.333 x 0.14 = 13 + 0.09324 = 13.09324 -> 13.09 (not 13.00 + 0.05 + 0.05)
    assert aud.savings == D("13.09")
    assert aud.kwh == D("100.666")
    assert aud.ppa_cost == D("16.11")  # 16.10656
    assert aud.utility_cost == D("29.20")  # 29.1998
    assert aud.lines_unpriced == 1


def test_a_plan_dearer_than_the_utility_shows_negative_savings_per_currency() -> None:
    lines = [
        EnergyLine("USD", "NSW", date(2025, 1, 1), D("10"), D("0.35")),
        EnergyLine("AUD", "NSW", date(2025, 1, 1), D("10"), D("0.10")),
    ]
    aud, usd = estimate_savings(lines, _price)
    assert (aud.currency, aud.savings) == ("AUD", D("1.90"))
    assert (usd.currency, usd.savings) == ("USD", D("-0.60"))


def test_nothing_billed_estimates_nothing() -> None:
    assert estimate_savings([], _price) == []
