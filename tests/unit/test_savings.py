"""The savings estimate against the utility (issue 20) and its reference price data:
figures computed by hand; every region's file loads, and a file with a gap is refused."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from cloud.billing.dated import TariffDataError
from cloud.billing.savings import EnergyLine, estimate_savings
from cloud.billing.utility_prices import load_utility_prices
from contracts.topics import Region

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


@pytest.mark.parametrize("region", list(Region))
def test_every_regions_reference_prices_load(region: Region) -> None:
    prices = load_utility_prices(region)
    assert prices.region == region
    zone = next(iter(prices.zones))
    assert prices.price(zone, date(2026, 10, 1)) is not None
    assert prices.price(zone, date(2000, 1, 1)) is None
    assert prices.price("nowhere", date(2026, 10, 1)) is None


def test_a_reference_price_file_with_a_gap_is_refused(tmp_path: Path) -> None:
    (tmp_path / "utility").mkdir()
    (tmp_path / "utility" / "au.yaml").write_text(
        "region: au\ncurrency: AUD\nzones:\n  NSW:\n    price:\n"
        "      - {effective_from: 2024-01-01, effective_until: 2024-06-01, per_kwh: '0.3',"
        " source: test, verified: false}\n"
        "      - {effective_from: 2024-07-01, per_kwh: '0.3', source: test, verified: false}\n",
        "utf-8",
    )
    with pytest.raises(TariffDataError, match="gap"):
        load_utility_prices(Region.AU, data_dir=tmp_path)


def test_a_float_price_is_refused(tmp_path: Path) -> None:
    (tmp_path / "utility").mkdir()
    (tmp_path / "utility" / "au.yaml").write_text(
        "region: au\ncurrency: AUD\nzones:\n  NSW:\n    price:\n"
        "      - {effective_from: 2024-01-01, per_kwh: 0.3, source: test, verified: false}\n",
        "utf-8",
    )
    with pytest.raises(TariffDataError, match="float"):
        load_utility_prices(Region.AU, data_dir=tmp_path)
