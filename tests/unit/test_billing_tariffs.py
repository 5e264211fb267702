"""Billing money and tariff data: rounding, the shipped plans, taxes and TOU schedules,
the refusals of bad data files, and the escalator.

Expected figures are worked out by hand in the comments, never by the code under test.
"""

from __future__ import annotations

import shutil
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from cloud.billing import (
    DATA_DIR,
    PLAN_CODE_PATTERN,
    CurrencyError,
    Money,
    TariffDataError,
    TariffError,
    Tariffs,
    contract_anniversary,
    contract_years,
    currency_for,
    format_money,
    load_tariffs,
    round_money,
)
from cloud.calendars.holiday_source import public_holidays
from cloud.customers.models import PLAN_CODE_PATTERN as CUSTOMERS_PLAN_CODE_PATTERN
from cloud.customers.zones import TARIFF_ZONES
from contracts.topics import Region

# --- money -----------------------------------------------------------------------------


def test_each_region_invoices_in_its_currency() -> None:
    assert [currency_for(r) for r in (Region.AU, Region.US, Region.ES)] == ["AUD", "USD", "EUR"]


@pytest.mark.parametrize(
    ("amount", "rounded"),
    [
        ("0.005", "0.01"),  # a tie goes up ...
        ("-0.005", "-0.01"),  # ... away from zero, so a credit note mirrors its invoice
        ("0.0049999", "0.00"),
        ("2.675", "2.68"),  # the float 2.675 is 2.67499999..., Decimal is exact
        ("26.2395", "26.24"),
        ("10", "10.00"),
    ],
)
def test_money_rounds_half_up_to_the_cent(amount: str, rounded: str) -> None:
    result = round_money(Decimal(amount), "EUR")
    assert result == Decimal(rounded)
    assert str(result) == rounded


def test_money_refuses_floats_unknown_currencies_and_mixing() -> None:
    with pytest.raises(CurrencyError, match="Decimal"):
        round_money(0.1, "AUD")  # type: ignore[arg-type]
    with pytest.raises(CurrencyError, match="unknown currency"):
        round_money(Decimal(1), "JPY")
    with pytest.raises(CurrencyError, match="Decimal"):
        Money(1.5, "USD")  # type: ignore[arg-type]
    with pytest.raises(CurrencyError, match="cannot mix"):
        _ = Money(Decimal(1), "USD") + Money(Decimal(1), "EUR")
    total = Money(Decimal("1.005"), "USD") + Money(Decimal("2"), "USD")
    assert total.rounded() == Money(Decimal("3.01"), "USD")


def test_money_is_displayed_in_the_customers_locale() -> None:
    # Babel's CLDR patterns; the separator before € is a non-breaking space.
    assert format_money(Decimal("1234.50"), "EUR", "es_ES") == "1.234,50\xa0€"
    assert format_money(Decimal("1234.5"), "AUD", "en_AU") == "$1,234.50"
    assert format_money(Decimal("-3.1"), "USD", "en_US") == "-$3.10"


# --- the shipped data ------------------------------------------------------------------


def _tariffs(region: Region) -> Tariffs:
    return load_tariffs(region, TARIFF_ZONES[region])


def test_billing_uses_the_customers_plan_code_pattern() -> None:
    assert PLAN_CODE_PATTERN == CUSTOMERS_PLAN_CODE_PATTERN


@pytest.mark.parametrize(
    ("region", "plans", "basis"),
    [
        (Region.AU, {"au-ppa-flat", "au-ppa-tou"}, "au_pv_consumed_and_pv_battery"),
        (Region.US, {"us-ppa-esc29", "us-ppa-fixed"}, "us_production"),
        (Region.ES, {"es-ppa-flat", "es-ppa-20td"}, "es_onsite"),
    ],
)
def test_shipped_plans_load_with_their_regions_basis(
    region: Region, plans: set[str], basis: str
) -> None:
    tariffs = _tariffs(region)
    assert set(tariffs.plans) == plans
    assert {plan.billable_basis for plan in tariffs.plans.values()} == {basis}
    assert {plan.currency for plan in tariffs.plans.values()} == {currency_for(region)}


def test_every_au_and_es_zone_has_taxes_and_us_states_without_a_row_are_refused() -> None:
    assert set(_tariffs(Region.AU).taxes) == set(TARIFF_ZONES[Region.AU])
    assert set(_tariffs(Region.ES).taxes) == set(TARIFF_ZONES[Region.ES])
    with pytest.raises(TariffError, match="no taxes for tariff zone 'TX'"):
        _tariffs(Region.US).zone_taxes("TX")


@pytest.mark.parametrize(
    ("region", "zone", "day", "tax", "percent"),
    [
        (Region.AU, "NSW", date(2026, 1, 1), "GST", "10"),
        (Region.AU, "SA", date(2026, 1, 1), "GST", "10"),
        (Region.US, "CA", date(2026, 1, 1), "sales tax", "0"),
        (Region.ES, "peninsula", date(2021, 6, 25), "IVA", "21"),
        (Region.ES, "peninsula", date(2021, 6, 26), "IVA", "10"),
        (Region.ES, "baleares", date(2022, 7, 1), "IVA", "5"),
        (Region.ES, "peninsula", date(2024, 12, 31), "IVA", "10"),
        (Region.ES, "peninsula", date(2025, 1, 1), "IVA", "21"),
        (Region.ES, "canarias", date(2026, 1, 1), "IGIC", "0"),
        (Region.ES, "ceuta", date(2026, 1, 1), "IPSI", "1"),
    ],
)
def test_taxes_are_found_by_zone_and_date(
    region: Region, zone: str, day: date, tax: str, percent: str
) -> None:
    version = _tariffs(region).zone_taxes(zone).tax_on(day)
    assert (version.tax, version.rate_percent) == (tax, Decimal(percent))


def test_unverified_taxes_say_so_and_the_spanish_electricity_tax_is_off() -> None:
    es = _tariffs(Region.ES)
    assert not es.zone_taxes("canarias").tax_on(date(2026, 1, 1)).verified
    assert not es.zone_taxes("ceuta").tax_on(date(2026, 1, 1)).verified
    assert not _tariffs(Region.US).zone_taxes("CA").tax_on(date(2026, 1, 1)).verified
    peninsula = es.zone_taxes("peninsula")
    assert peninsula.electricity_tax  # listed, with its rates ...
    assert peninsula.electricity_tax_on(date(2026, 1, 1)) is None  # ... but not applied
    assert all(not v.applies and "DGT" in (v.note or "") for v in peninsula.electricity_tax)


def test_a_day_before_any_tax_version_is_refused() -> None:
    with pytest.raises(TariffError, match="no tax in force on 2021-05-31"):
        _tariffs(Region.ES).zone_taxes("peninsula").tax_on(date(2021, 5, 31))


def test_the_20td_holidays_are_the_packages_national_ones_without_good_friday() -> None:
    """Independent source: the holidays package (through its adapter). Its national list
    omits a fixed holiday that falls on a Sunday (regions move it), and adds Good Friday,
    which 2.0TD does not count."""
    version = _tariffs(Region.ES).schedules["es-2.0td"].versions[0]
    ours = set(version.holidays)
    for year in range(2021, 2031):
        package = public_holidays("ES", None, year, language="en_US")
        theirs = {d.strftime("%m-%d") for d, name in package.items() if name != "Good Friday"}
        assert theirs <= ours, year
        for month_day in ours - theirs:
            assert date.fromisoformat(f"{year}-{month_day}").weekday() == 6, (year, month_day)
    assert "04-03" not in ours  # Good Friday 2026


# --- escalator -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "day", "years"),
    [
        (date(2025, 3, 15), date(2026, 3, 14), 0),
        (date(2025, 3, 15), date(2026, 3, 15), 1),
        (date(2025, 3, 15), date(2028, 3, 16), 3),
        (date(2024, 2, 29), date(2025, 2, 27), 0),
        (date(2024, 2, 29), date(2025, 2, 28), 1),  # 29 Feb → 28 Feb in a common year
        (date(2024, 2, 29), date(2028, 2, 28), 3),
        (date(2024, 2, 29), date(2028, 2, 29), 4),
        (date(2025, 3, 15), date(2025, 1, 1), 0),
    ],
)
def test_contract_years_count_anniversaries(start: date, day: date, years: int) -> None:
    assert contract_years(start, day) == years


def test_an_anniversary_of_29_february_in_a_common_year_is_28_february() -> None:
    assert contract_anniversary(date(2024, 2, 29), 1) == date(2025, 2, 28)
    assert contract_anniversary(date(2024, 2, 29), 4) == date(2028, 2, 29)


@pytest.mark.parametrize(
    ("day", "price"),
    [
        (date(2026, 3, 14), "0.15000"),  # before the first anniversary
        (date(2026, 3, 15), "0.15435"),  # 0.15 * 1.029 = 0.15435
        (date(2027, 3, 15), "0.15883"),  # 0.15 * 1.058841 = 0.15882615 → 0.15883
        (date(2028, 3, 15), "0.16343"),  # 0.15 * 1.089547389 = 0.16343210835 → 0.16343
    ],
)
def test_the_escalator_compounds_on_each_anniversary(day: date, price: str) -> None:
    plan = _tariffs(Region.US).plan("us-ppa-esc29")
    assert plan.unit_price("flat", day, date(2025, 3, 15)) == Decimal(price)


def test_an_unknown_plan_or_period_is_refused() -> None:
    us = _tariffs(Region.US)
    with pytest.raises(TariffError, match="no plan 'us-ppa-gold'"):
        us.plan("us-ppa-gold")
    with pytest.raises(TariffError, match="no period 'peak'"):
        us.plan("us-ppa-esc29").base_price("peak", date(2026, 1, 1))
    with pytest.raises(TariffError, match="no price in force on 2022-12-31"):
        us.plan("us-ppa-esc29").base_price("flat", date(2022, 12, 31))


# --- refusals of bad data files ---------------------------------------------------------


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A private copy of the shipped data, to break."""
    copy = tmp_path / "data"
    shutil.copytree(DATA_DIR, copy)
    return copy


def _edit(data_dir: Path, file: str, old: str, new: str) -> None:
    path = data_dir / file
    text = path.read_text("utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), "utf-8")


_OVERLAP = "effective_from: 2021-06-20\n        effective_until: 2022-07-01"
_GAP = "effective_from: 2022-07-02\n        effective_until: 2024-01-01"


@pytest.mark.parametrize(
    ("region", "file", "old", "new", "message"),
    [
        (
            Region.ES,
            "taxes/es.yaml",
            "effective_from: 2021-06-26\n        effective_until: 2022-07-01",
            _OVERLAP,
            "taxes/es.yaml: zones.peninsula: version 1 (from 2021-06-20) overlaps "
            "version 0 (until 2021-06-26)",
        ),
        (
            Region.ES,
            "taxes/es.yaml",
            "effective_from: 2022-07-01\n        effective_until: 2024-01-01",
            _GAP,
            "taxes/es.yaml: zones.peninsula: gap between version 1 (until 2022-07-01) "
            "and version 2 (from 2022-07-02)",
        ),
        (
            Region.US,
            "taxes/us.yaml",
            "  MA:",
            "  XX:",
            "taxes/us.yaml: zones: unknown tariff zones ['XX']",
        ),
        (
            Region.ES,
            "tou/es.yaml",
            "          melilla: *ceuta_melilla",
            "          tenerife: *ceuta_melilla",
            "tou/es.yaml: schedules: es-2.0td.versions[0].zone_rules: unknown tariff "
            "zones ['tenerife']",
        ),
        (
            Region.AU,
            "plans/au.yaml",
            '{flat: "0.16000"}',
            "{flat: 0.16}",
            "plans/au.yaml: plans.au-ppa-flat.prices[0].per_kwh.flat: 0.16 is a float: "
            'quote it ("0.16")',
        ),
        (
            Region.AU,
            "plans/au.yaml",
            "tou_schedule: ausgrid-like-2024",
            "tou_schedule: ausgrid-2099",
            "plans/au.yaml: plans: au-ppa-tou: unknown tou_schedule 'ausgrid-2099'",
        ),
        (
            Region.AU,
            "plans/au.yaml",
            "  au-ppa-flat:",
            "  AU PPA:",
            "plans/au.yaml: plans.AU PPA (the key): String should match pattern",
        ),
        (
            Region.US,
            "plans/us.yaml",
            "billable_basis: us_production",
            "billable_basis: es_onsite",
            "plans/us.yaml: plans.us-ppa-esc29: billable_basis es_onsite is not region us's",
        ),
        (
            Region.ES,
            "plans/es.yaml",
            'per_kwh: {P1: "0.13000", P2: "0.10000", P3: "0.07000"}',
            'per_kwh: {P1: "0.13000", P2: "0.10000"}',
            "plans/es.yaml: plans: es-ppa-20td: prices periods ['P1', 'P2'], but its "
            "schedule has ['P1', 'P2', 'P3']",
        ),
        (
            Region.US,
            "plans/us.yaml",
            '{flat: "0.15000"}',
            '{flat: "0.150001"}',
            "plans/us.yaml: plans.us-ppa-esc29: prices[0].flat: 0.150001 has more than 5 "
            "decimal places",
        ),
        (
            Region.ES,
            "tou/es.yaml",
            'P3: ["00:00-08:00"]\n        zone',
            'P3: ["00:00-07:00"]\n        zone',
            "tou/es.yaml: schedules.es-2.0td.versions[0].rules[1]: windows leave a gap at 07:00",
        ),
        (
            Region.AU,
            "tou/au.yaml",
            "months: [4, 5, 9, 10]",
            "months: [4, 5, 9]",
            "tou/au.yaml: schedules.ausgrid-like-2024.versions[0]: no rule for a tue in month 10",
        ),
        (
            Region.AU,
            "taxes/au.yaml",
            "region: au",
            "region: us",
            "taxes/au.yaml: region: is us, the file is au's",
        ),
    ],
)
def test_a_bad_data_file_is_refused_naming_file_key_and_problem(
    data_dir: Path, region: Region, file: str, old: str, new: str, message: str
) -> None:
    _edit(data_dir, file, old, new)
    with pytest.raises(TariffDataError) as refused:
        load_tariffs(region, TARIFF_ZONES[region], data_dir=data_dir)
    assert message in str(refused.value)
    assert refused.value.file == file


def test_a_missing_data_file_is_refused(data_dir: Path) -> None:
    (data_dir / "taxes" / "au.yaml").unlink()
    with pytest.raises(TariffDataError, match=r"taxes/au\.yaml: .*cannot read"):
        load_tariffs(Region.AU, TARIFF_ZONES[Region.AU], data_dir=data_dir)
