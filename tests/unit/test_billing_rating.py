"""Rating a billing period: lines per tariff period and price, the escalator's
anniversary and tax changes splitting lines, taxes by rate rounded once, and totals that
always agree with the lines.

Every expected figure is computed by hand in the comments (prices from the shipped
plans: us-ppa-esc29 0.15000 USD + 2.9 %/yr; au-ppa-tou peak 0.22000, off-peak 0.14000
AUD + 2 %/yr; es-ppa-flat 0.09000 EUR; es-ppa-20td P1 0.13, P2 0.10, P3 0.07 EUR + 2 %/yr).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud.billing import (
    ELECTRICITY_TAX_LINE,
    ENERGY_LINE,
    BillingPeriod,
    EnergyInterval,
    PeriodEnergy,
    RatedInvoice,
    RatingError,
    Tariffs,
    ZoneTaxes,
    allocate,
    energy_totals,
    load_tariffs,
    rate_period,
    round_money,
)
from cloud.customers.zones import TARIFF_ZONES
from contracts.topics import Region


def _tariffs(region: Region) -> Tariffs:
    return load_tariffs(region, TARIFF_ZONES[region])


def _daily(first: date, last: date, **kwh: str) -> list[PeriodEnergy]:
    days = (first + timedelta(days=n) for n in range((last - first).days + 1))
    return [PeriodEnergy(day, period, Decimal(v)) for day in days for period, v in kwh.items()]


def _summary(invoice: RatedInvoice) -> list[tuple[str, ...]]:
    """Each line as (days of the month, period, kWh, unit price, net), in text."""
    return [
        (
            f"{line.first_day:%d}-{line.last_day:%d}",
            str(line.period),
            str(line.kwh),
            str(line.unit_price),
            str(line.net),
        )
        for line in invoice.lines
    ]


def test_an_anniversary_inside_the_period_splits_the_lines() -> None:
    # Contract from 15 Mar 2025, March 2026, 10.000 kWh a day, New Jersey 6.625 %.
    # 1-14 Mar (14 days): 140.000 kWh * 0.15000 = 21.00
    # 15-31 Mar (17 days): 170.000 kWh * 0.15435 (0.15 * 1.029) = 26.2395 → 26.24
    # net 47.24; tax 47.24 * 0.06625 = 3.129650 → 3.13; gross 50.37.
    us = _tariffs(Region.US)
    invoice = rate_period(
        us.plan("us-ppa-esc29"),
        us.zone_taxes("NJ"),
        contract_start=date(2025, 3, 15),
        period=BillingPeriod(date(2026, 3, 1), date(2026, 3, 31)),
        energy=_daily(date(2026, 3, 1), date(2026, 3, 31), flat="10.000"),
    )
    assert _summary(invoice) == [
        ("01-14", "flat", "140.000", "0.15000", "21.00"),
        ("15-31", "flat", "170.000", "0.15435", "26.24"),
    ]
    assert [(t.tax, t.percent, t.base, t.amount) for t in invoice.taxes] == [
        ("sales tax", Decimal("6.625"), Decimal("47.24"), Decimal("3.13"))
    ]
    assert (invoice.net, invoice.tax, invoice.gross) == (
        Decimal("47.24"),
        Decimal("3.13"),
        Decimal("50.37"),
    )
    assert invoice.currency == "USD"


def test_an_anniversary_splits_each_tou_period_and_gst_is_added() -> None:
    # au-ppa-tou in NSW, contract from 20 Jan 2025, January 2026: peak 2.000 and
    # off-peak 5.000 kWh a day.
    # 1-19 Jan (19 days, year 0): peak 38.000 * 0.22 = 8.36; off-peak 95.000 * 0.14 = 13.30
    # 20-31 Jan (12 days, year 1, +2 %): peak 24.000 * 0.2244 = 5.3856 → 5.39;
    #   off-peak 60.000 * 0.1428 = 8.568 → 8.57
    # net 8.36 + 13.30 + 5.39 + 8.57 = 35.62; GST 10 % = 3.562 → 3.56; gross 39.18.
    au = _tariffs(Region.AU)
    invoice = rate_period(
        au.plan("au-ppa-tou"),
        au.zone_taxes("NSW"),
        contract_start=date(2025, 1, 20),
        period=BillingPeriod(date(2026, 1, 1), date(2026, 1, 31)),
        energy=_daily(date(2026, 1, 1), date(2026, 1, 31), peak="2.000", offpeak="5.000"),
    )
    assert _summary(invoice) == [
        ("01-19", "peak", "38.000", "0.22000", "8.36"),
        ("01-19", "offpeak", "95.000", "0.14000", "13.30"),
        ("20-31", "peak", "24.000", "0.22440", "5.39"),
        ("20-31", "offpeak", "60.000", "0.14280", "8.57"),
    ]
    assert [(t.tax, t.amount) for t in invoice.taxes] == [("GST", Decimal("3.56"))]
    assert (invoice.net, invoice.tax, invoice.gross) == (
        Decimal("35.62"),
        Decimal("3.56"),
        Decimal("39.18"),
    )


def test_an_iva_rate_change_splits_the_lines_and_each_rate_is_taxed_once() -> None:
    # es-ppa-flat, peninsula, 15 Jun - 14 Jul 2022, 5.000 kWh a day. IVA 10 % until
    # 30 Jun, 5 % from 1 Jul 2022 (taxes/es.yaml, ⚠ unverified).
    # 15-30 Jun (16 days): 80.000 * 0.09 = 7.20 at 10 % → 0.72
    # 1-14 Jul (14 days): 70.000 * 0.09 = 6.30 at 5 % → 0.315 → 0.32 (half up)
    # net 13.50, tax 1.04, gross 14.54.
    es = _tariffs(Region.ES)
    invoice = rate_period(
        es.plan("es-ppa-flat"),
        es.zone_taxes("peninsula"),
        contract_start=date(2021, 6, 1),
        period=BillingPeriod(date(2022, 6, 15), date(2022, 7, 14)),
        energy=_daily(date(2022, 6, 15), date(2022, 7, 14), flat="5.000"),
    )
    assert [(line.first_day, line.net, line.tax_percent) for line in invoice.lines] == [
        (date(2022, 6, 15), Decimal("7.20"), Decimal(10)),
        (date(2022, 7, 1), Decimal("6.30"), Decimal(5)),
    ]
    assert [(t.percent, t.base, t.amount) for t in invoice.taxes] == [
        (Decimal(10), Decimal("7.20"), Decimal("0.72")),
        (Decimal(5), Decimal("6.30"), Decimal("0.32")),
    ]
    assert (invoice.net, invoice.tax, invoice.gross) == (
        Decimal("13.50"),
        Decimal("1.04"),
        Decimal("14.54"),
    )
    assert "peninsula IVA 5 % from 2022-07-01" in invoice.unverified


def test_a_madrid_week_from_metered_hours_to_the_invoice() -> None:
    # 12-18 Oct 2026, hourly 1.000 kWh in Europe/Madrid (CEST, UTC+2):
    # Mon 12 Oct (Fiesta Nacional): P3 24; Tue-Fri: P1 8, P2 8, P3 8 each (32/32/32);
    # Sat, Sun: P3 48. Totals P1 32, P2 32, P3 104.
    # Contract from 10 May 2024: 2 years on 12 Oct 2026, factor 1.02^2 = 1.0404:
    # P1 0.13 * 1.0404 = 0.135252 → 0.13525; P2 0.10404; P3 0.07 * 1.0404 = 0.072828 → 0.07283
    # P1 32 * 0.13525 = 4.328 → 4.33; P2 32 * 0.10404 = 3.32928 → 3.33;
    # P3 104 * 0.07283 = 7.57432 → 7.57. net 15.23; IVA 21 % = 3.1983 → 3.20; gross 18.43.
    es = _tariffs(Region.ES)
    plan = es.plan("es-ppa-20td")
    first = datetime(2026, 10, 11, 22, tzinfo=UTC)
    hours = [
        EnergyInterval(first + timedelta(hours=h), first + timedelta(hours=h + 1), Decimal(1))
        for h in range(7 * 24)
    ]
    energy = energy_totals(
        allocate(
            hours,
            time_zone="Europe/Madrid",
            schedule=es.schedule_of(plan),
            tariff_zone="peninsula",
        )
    )
    invoice = rate_period(
        plan,
        es.zone_taxes("peninsula"),
        contract_start=date(2024, 5, 10),
        period=BillingPeriod(date(2026, 10, 12), date(2026, 10, 18)),
        energy=energy,
    )
    assert [(line.period, line.kwh, line.unit_price, line.net) for line in invoice.lines] == [
        ("P1", Decimal(32), Decimal("0.13525"), Decimal("4.33")),
        ("P2", Decimal(32), Decimal("0.10404"), Decimal("3.33")),
        ("P3", Decimal(104), Decimal("0.07283"), Decimal("7.57")),
    ]
    assert (invoice.net, invoice.tax, invoice.gross) == (
        Decimal("15.23"),
        Decimal("3.20"),
        Decimal("18.43"),
    )


def test_tax_is_rounded_once_on_the_sum_of_the_lines_at_its_rate() -> None:
    # es-ppa-20td, contract from 10 May 2024, one day in Oct 2026 (prices as above):
    # P1 0.148 * 0.13525 = 0.020017 → 0.02; P2 0.192 * 0.10404 = 0.01997568 → 0.02.
    # Per line, 21 % of 0.02 = 0.0042 → 0.00 twice; on the sum, 0.04 * 0.21 = 0.0084 → 0.01.
    es = _tariffs(Region.ES)
    invoice = rate_period(
        es.plan("es-ppa-20td"),
        es.zone_taxes("peninsula"),
        contract_start=date(2024, 5, 10),
        period=BillingPeriod(date(2026, 10, 1), date(2026, 10, 31)),
        energy=_daily(date(2026, 10, 14), date(2026, 10, 14), P1="0.148", P2="0.192"),
    )
    assert [line.net for line in invoice.lines] == [Decimal("0.02"), Decimal("0.02")]
    assert (invoice.net, invoice.tax, invoice.gross) == (
        Decimal("0.04"),
        Decimal("0.01"),
        Decimal("0.05"),
    )


def _iee_on(zone: ZoneTaxes) -> ZoneTaxes:
    """The peninsula's taxes with the electricity tax switched on from 2025."""
    return ZoneTaxes.model_validate(
        {
            "region": "es",
            "zone": zone.zone,
            "tax": [v.model_dump() for v in zone.tax],
            "electricity_tax": [
                {
                    "effective_from": date(2025, 1, 1),
                    "applies": True,
                    "rate_percent": "5.11269632",
                    "source": "test",
                    "verified": True,
                }
            ],
        }
    )


def test_the_electricity_tax_when_switched_on_is_a_line_taxed_like_the_energy() -> None:
    # es-ppa-flat, 100.000 kWh on 14 Oct 2026: energy 100 * 0.09 = 9.00;
    # IEE 9.00 * 0.0511269632 = 0.460142669 → 0.46; IVA 21 % on 9.46 = 1.9866 → 1.99;
    # net 9.46, gross 11.45.
    es = _tariffs(Region.ES)
    invoice = rate_period(
        es.plan("es-ppa-flat"),
        _iee_on(es.zone_taxes("peninsula")),
        contract_start=date(2021, 6, 1),
        period=BillingPeriod(date(2026, 10, 1), date(2026, 10, 31)),
        energy=_daily(date(2026, 10, 14), date(2026, 10, 14), flat="100.000"),
    )
    assert [(line.description_key, line.net) for line in invoice.lines] == [
        (ENERGY_LINE, Decimal("9.00")),
        (ELECTRICITY_TAX_LINE, Decimal("0.46")),
    ]
    levy = invoice.lines[1]
    assert (levy.base, levy.percent, levy.tax_percent) == (
        Decimal("9.00"),
        Decimal("5.11269632"),
        Decimal(21),
    )
    assert (invoice.net, invoice.tax, invoice.gross) == (
        Decimal("9.46"),
        Decimal("1.99"),
        Decimal("11.45"),
    )


def test_the_shipped_spanish_data_charges_no_electricity_tax() -> None:
    es = _tariffs(Region.ES)
    invoice = rate_period(
        es.plan("es-ppa-flat"),
        es.zone_taxes("peninsula"),
        contract_start=date(2021, 6, 1),
        period=BillingPeriod(date(2026, 10, 1), date(2026, 10, 31)),
        energy=_daily(date(2026, 10, 14), date(2026, 10, 14), flat="100.000"),
    )
    assert {line.description_key for line in invoice.lines} == {ENERGY_LINE}


def test_unverified_data_used_is_listed() -> None:
    us = _tariffs(Region.US)
    invoice = rate_period(
        us.plan("us-ppa-esc29"),
        us.zone_taxes("CA"),
        contract_start=date(2025, 3, 15),
        period=BillingPeriod(date(2026, 3, 1), date(2026, 3, 31)),
        energy=_daily(date(2026, 3, 1), date(2026, 3, 2), flat="1.000"),
    )
    assert invoice.unverified == (
        "plan us-ppa-esc29 prices from 2023-01-01, escalator",
        "CA sales tax 0 % from 2023-01-01",
    )
    assert invoice.tax == Decimal(0)


def test_no_energy_is_an_invoice_of_nothing() -> None:
    au = _tariffs(Region.AU)
    invoice = rate_period(
        au.plan("au-ppa-flat"),
        au.zone_taxes("SA"),
        contract_start=date(2025, 1, 1),
        period=BillingPeriod(date(2026, 1, 1), date(2026, 3, 31)),
        energy=[],
    )
    assert (invoice.lines, invoice.taxes, invoice.gross) == ((), (), Decimal(0))


@pytest.mark.parametrize(
    ("energy", "message"),
    [
        (PeriodEnergy(date(2026, 4, 1), "flat", Decimal(1)), "outside 2026-03-01..2026-03-31"),
        (PeriodEnergy(date(2026, 3, 1), "flat", Decimal(1)), "before the contract"),
        (PeriodEnergy(date(2026, 3, 20), "peak", Decimal(1)), "does not price period 'peak'"),
    ],
)
def test_energy_that_cannot_be_rated_is_refused_not_dropped(
    energy: PeriodEnergy, message: str
) -> None:
    us = _tariffs(Region.US)
    with pytest.raises(RatingError, match=message):
        rate_period(
            us.plan("us-ppa-esc29"),
            us.zone_taxes("CA"),
            contract_start=date(2026, 3, 10),
            period=BillingPeriod(date(2026, 3, 1), date(2026, 3, 31)),
            energy=[energy],
        )


def test_a_plan_and_taxes_of_different_regions_or_an_empty_period_are_refused() -> None:
    with pytest.raises(RatingError, match="is us's, zone peninsula is not"):
        rate_period(
            _tariffs(Region.US).plan("us-ppa-esc29"),
            _tariffs(Region.ES).zone_taxes("peninsula"),
            contract_start=date(2025, 1, 1),
            period=BillingPeriod(date(2026, 3, 1), date(2026, 3, 31)),
            energy=[],
        )
    with pytest.raises(RatingError, match="empty"):
        BillingPeriod(date(2026, 3, 2), date(2026, 3, 1))


# --- property: rounding never makes lines disagree with totals -------------------------

_PLANS = [
    (Region.ES, "es-ppa-20td", "peninsula"),
    (Region.ES, "es-ppa-flat", "baleares"),
    (Region.AU, "au-ppa-tou", "NSW"),
    (Region.US, "us-ppa-esc29", "NJ"),
    (Region.ES, "es-ppa-20td", "iee"),
]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    choice=st.sampled_from(_PLANS),
    first=st.dates(min_value=date(2024, 7, 1), max_value=date(2026, 12, 1)),
    days=st.integers(min_value=1, max_value=92),
    contract_back=st.integers(min_value=0, max_value=2000),
    wh=st.lists(st.integers(min_value=-50_000, max_value=2_000_000), min_size=1, max_size=60),
)
def test_lines_always_agree_with_the_totals(
    choice: tuple[Region, str, str], first: date, days: int, contract_back: int, wh: list[int]
) -> None:
    region, code, zone = choice
    tariffs = _tariffs(region)
    plan = tariffs.plan(code)
    taxes = _iee_on(tariffs.zone_taxes("peninsula")) if zone == "iee" else tariffs.zone_taxes(zone)
    period = BillingPeriod(first, first + timedelta(days=days - 1))
    contract_start = first - timedelta(days=contract_back)
    periods = plan.periods()
    energy = [
        PeriodEnergy(
            first + timedelta(days=(n * 7) % days), periods[n % len(periods)], w * Decimal("0.001")
        )
        for n, w in enumerate(wh)
    ]
    invoice = rate_period(plan, taxes, contract_start=contract_start, period=period, energy=energy)
    assert invoice.net == sum((line.net for line in invoice.lines), Decimal(0))
    assert invoice.tax == sum((t.amount for t in invoice.taxes), Decimal(0))
    assert invoice.gross == invoice.net + invoice.tax
    for tax in invoice.taxes:
        group = [
            line.net
            for line in invoice.lines
            if (line.tax, line.tax_percent) == (tax.tax, tax.percent)
        ]
        assert tax.base == sum(group, Decimal(0))
        assert tax.amount == round_money(tax.base * tax.percent / 100, invoice.currency)
    for line in invoice.lines:
        assert line.net == round_money(line.net, invoice.currency)  # whole cents
        if line.description_key == ENERGY_LINE:
            assert line.kwh is not None
            assert line.unit_price is not None
            assert line.net == round_money(line.kwh * line.unit_price, invoice.currency)
            assert period.first_day <= line.first_day <= line.last_day <= period.last_day
    billed = sum((line.kwh or Decimal(0) for line in invoice.lines), Decimal(0))
    assert billed == sum((e.kwh for e in energy), Decimal(0))
