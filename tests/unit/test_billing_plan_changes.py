"""A plan change inside a billing period (decision 150): each local day is billed on
the plan in effect that day, the ledger's energy split exactly at the change's local
midnight (a DST day, a half-hour zone), each segment priced on its own plan's periods,
prices and escalator (anniversaries from the contract start), and a true-up crediting
and debiting each revised day at its own plan.

The plans are written here (not the shipped price lists), and every figure is computed
by hand in the comments.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from cloud.billing import (
    BillingPeriod,
    LedgerLine,
    PeriodEnergy,
    Plan,
    PlanEnergy,
    RatedInvoice,
    RatingError,
    TouSchedule,
    ZoneTaxes,
    energy_difference,
    issued_payload,
    plan_parts,
    plans_within,
    rate_plans,
    segment_difference,
    segment_energy,
)
from cloud.bootstrap import plan_history
from cloud.customers import PlanChange

UNVERIFIED = {"source": "test price list", "verified": False}
GST = ZoneTaxes.model_validate(
    {
        "region": "au",
        "zone": "NSW",
        "tax": [{"effective_from": "2000-07-01", "tax": "GST", "rate_percent": "10", **UNVERIFIED}],
    }
)
NJ = ZoneTaxes.model_validate(
    {
        "region": "us",
        "zone": "NJ",
        "tax": [
            {
                "effective_from": "2020-01-01",
                "tax": "sales tax",
                "rate_percent": "6.625",
                **UNVERIFIED,
            }
        ],
    }
)
#: Peak 3-9 pm every day of the year, off-peak otherwise.
TOU = TouSchedule.model_validate(
    {
        "name": "test-tou",
        "description": "peak 3-9 pm every day",
        "periods": ["peak", "offpeak"],
        "versions": [
            {
                "effective_from": "2020-01-01",
                **UNVERIFIED,
                "rules": [
                    {
                        "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                        "months": list(range(1, 13)),
                        "windows": {
                            "peak": ["15:00-21:00"],
                            "offpeak": ["00:00-15:00", "21:00-24:00"],
                        },
                    }
                ],
            }
        ],
    }
)


def _plan(code: str, region: str, escalator: str, tou: str | None, **prices: str) -> Plan:
    basis = {"au": "au_pv_consumed_and_pv_battery", "us": "us_production"}[region]
    body: dict[str, Any] = {
        "code": code,
        "region": region,
        "currency": {"au": "AUD", "us": "USD"}[region],
        "description": f"test plan {code}",
        "billable_basis": basis,
        "billing_cycle": "monthly",
        "tou_schedule": tou,
        "escalator": {"percent_per_year": escalator, **UNVERIFIED},
        "prices": [{"effective_from": "2020-01-01", "per_kwh": prices, **UNVERIFIED}],
    }
    return Plan.model_validate(body)


#: AU: flat 0.16000 + 3 %/yr; TOU peak 0.22000, off-peak 0.14000 + 2 %/yr; flat 0.20000.
AU_FLAT = _plan("au-flat", "au", "3", None, flat="0.16000")
AU_TOU = _plan("au-tou", "au", "2", "test-tou", peak="0.22000", offpeak="0.14000")
AU_FLAT_2 = _plan("au-flat-2", "au", "0", None, flat="0.20000")
#: US: 0.15000 + 2.9 %/yr; 0.18500 fixed.
US_ESC = _plan("us-esc", "us", "2.9", None, flat="0.15000")
US_FIXED = _plan("us-fixed", "us", "0", None, flat="0.18500")
SYDNEY = ZoneInfo("Australia/Sydney")


def _hours(zone: ZoneInfo, first: date, last: date, mwh: int) -> list[LedgerLine]:
    """A ledger line of ``mwh`` billable for every UTC hour of local days first..last."""
    start = datetime.combine(first, datetime.min.time(), zone).astimezone(UTC)
    end = datetime.combine(last + timedelta(days=1), datetime.min.time(), zone).astimezone(UTC)
    hours = int((end - start) / timedelta(hours=1))
    return [_line(start + timedelta(hours=k), mwh) for k in range(hours)]


def _line(start: datetime, mwh: int) -> LedgerLine:
    return LedgerLine(start, start + timedelta(hours=1), mwh, 0, 0, 0, mwh, False)


def _rate(
    plans: list[tuple[date, Plan]],
    zone: ZoneInfo,
    taxes: ZoneTaxes,
    period: BillingPeriod,
    lines: list[LedgerLine],
    contract_start: date,
) -> RatedInvoice:
    schedules = {None: None, "test-tou": TOU}
    energy = segment_energy(
        lines,
        time_zone=zone,
        segments=[(day, schedules[p.tou_schedule]) for day, p in plans],
        tariff_zone=taxes.zone,
    )
    return rate_plans(
        plan_parts(plans, period, energy), taxes, contract_start=contract_start, period=period
    )


def _summary(invoice: RatedInvoice) -> list[tuple[object, ...]]:
    """Each line as (days, plan, period, kWh, unit price, net)."""
    return [
        (f"{x.first_day:%d}-{x.last_day:%d}", x.plan, x.period, x.kwh, x.unit_price, x.net)
        for x in invoice.lines
    ]


def test_a_change_on_the_15th_prorates_a_sydney_month() -> None:
    # January 2026 in Sydney (AEDT all month), 0.5 kWh billable every hour: 12 kWh a
    # day, of which 3 kWh peak (15-21 h) and 9 kWh off-peak on the TOU plan. The
    # contract started 20 January 2024: one completed year until the 19th, two from the
    # 20th. au-flat until the 14th, au-tou from the 15th.
    # au-flat 1-14: 168 kWh at 0.16 * 1.03 = 0.16480 → 27.6864 → 27.69.
    # au-tou 15-19 (one year): peak 15 kWh at 0.22 * 1.02 = 0.22440 → 3.366 → 3.37;
    #   off-peak 45 kWh at 0.14 * 1.02 = 0.14280 → 6.426 → 6.43.
    # au-tou 20-31 (two years): peak 36 kWh at 0.22 * 1.0404 = 0.228888 → 0.22889
    #   → 8.24004 → 8.24; off-peak 108 kWh at 0.14 * 1.0404 = 0.145656 → 0.14566
    #   → 15.73128 → 15.73.
    # Net 27.69 + 3.37 + 6.43 + 8.24 + 15.73 = 61.46; GST 6.146 → 6.15; gross 67.61.
    january = BillingPeriod(date(2026, 1, 1), date(2026, 1, 31))
    lines = _hours(SYDNEY, january.first_day, january.last_day, 500_000)
    plans = [(date(2026, 1, 1), AU_FLAT), (date(2026, 1, 15), AU_TOU)]
    invoice = _rate(plans, SYDNEY, GST, january, lines, date(2024, 1, 20))
    d = Decimal
    assert _summary(invoice) == [
        ("01-14", "au-flat", "flat", d(168), d("0.16480"), d("27.69")),
        ("15-19", "au-tou", "peak", d(15), d("0.22440"), d("3.37")),
        ("15-19", "au-tou", "offpeak", d(45), d("0.14280"), d("6.43")),
        ("20-31", "au-tou", "peak", d(36), d("0.22889"), d("8.24")),
        ("20-31", "au-tou", "offpeak", d(108), d("0.14566"), d("15.73")),
    ]
    assert (invoice.net, invoice.tax, invoice.gross) == (d("61.46"), d("6.15"), d("67.61"))
    assert [(t.tax, t.base, t.amount) for t in invoice.taxes] == [("GST", d("61.46"), d("6.15"))]
    assert invoice.plan_code == "au-tou"
    assert invoice.plans == ((date(2026, 1, 1), "au-flat"), (date(2026, 1, 15), "au-tou"))
    # The lines bill the ledger's energy exactly: 744 hours of 0.5 kWh.
    assert sum(x.kwh or 0 for x in invoice.lines) == d(372) == d(len(lines)) / 2
    # The invoice.issued payload names each line's plan.
    issued = issued_payload(
        invoice,
        kind="invoice",
        number="AU-2026-0000001",
        account_id="acc_" + "0" * 32,
        issue_date=date(2026, 2, 2),
        due_date=date(2026, 2, 16),
    )
    assert issued.lines[0].description == "energy flat plan au-flat 2026-01-01..2026-01-14"


def test_a_single_plan_period_is_rated_as_before_without_plan_labels() -> None:
    january = BillingPeriod(date(2026, 1, 1), date(2026, 1, 31))
    lines = _hours(SYDNEY, january.first_day, january.last_day, 500_000)
    invoice = _rate([(january.first_day, AU_FLAT_2)], SYDNEY, GST, january, lines, date(2024, 2, 1))
    # No anniversary in January: 372 kWh at 0.20000 = 74.40; GST 7.44; gross 81.84.
    assert _summary(invoice) == [
        ("01-31", None, "flat", Decimal(372), Decimal("0.20000"), Decimal("74.40"))
    ]
    assert (invoice.gross, invoice.plans, invoice.plan_code) == (Decimal("81.84"), (), "au-flat-2")


@pytest.mark.parametrize(
    ("zone", "change", "hours"),
    [
        # Los Angeles springs forward on Sunday 8 March 2026 (23 hours).
        ("America/Los_Angeles", date(2026, 3, 8), 23),
        # Madrid falls back on Sunday 25 October 2026 (25 hours).
        ("Europe/Madrid", date(2026, 10, 25), 25),
    ],
)
def test_a_change_on_a_dst_day_starts_at_that_local_midnight(
    zone: str, change: date, hours: int
) -> None:
    tz = ZoneInfo(zone)
    first = change - timedelta(days=2)
    lines = _hours(tz, first, change + timedelta(days=1), 1_000_000)  # 1 kWh an hour
    before, after = segment_energy(
        lines, time_zone=tz, segments=[(first, None), (change, None)], tariff_zone="NJ"
    )
    assert before == (
        PeriodEnergy(first, "flat", Decimal(24)),
        PeriodEnergy(first + timedelta(days=1), "flat", Decimal(24)),
    )
    assert after == (
        PeriodEnergy(change, "flat", Decimal(hours)),
        PeriodEnergy(change + timedelta(days=1), "flat", Decimal(24)),
    )


def test_a_us_month_with_a_change_on_the_spring_forward_day() -> None:
    # March 2026 in Los Angeles, 1 kWh every hour; us-esc until the 7th, us-fixed from
    # the 8th (a 23-hour day). Contract from 1 June 2024: one completed year in March.
    # us-esc 1-7: 168 kWh at 0.15 * 1.029 = 0.15435 → 25.9308 → 25.93.
    # us-fixed 8-31: 23 + 23 * 24 = 575 kWh at 0.18500 = 106.375 → 106.38.
    # Net 132.31; NJ sales tax 6.625 %: 8.7655375 → 8.77; gross 141.08.
    la = ZoneInfo("America/Los_Angeles")
    march = BillingPeriod(date(2026, 3, 1), date(2026, 3, 31))
    lines = _hours(la, march.first_day, march.last_day, 1_000_000)
    plans = [(march.first_day, US_ESC), (date(2026, 3, 8), US_FIXED)]
    invoice = _rate(plans, la, NJ, march, lines, date(2024, 6, 1))
    d = Decimal
    assert _summary(invoice) == [
        ("01-07", "us-esc", "flat", d(168), d("0.15435"), d("25.93")),
        ("08-31", "us-fixed", "flat", d(575), d("0.18500"), d("106.38")),
    ]
    assert (invoice.net, invoice.tax, invoice.gross) == (d("132.31"), d("8.77"), d("141.08"))
    assert len(lines) == 743  # 31 days less the hour skipped on the 8th


def test_an_hour_across_the_change_in_a_half_hour_zone_is_shared_exactly() -> None:
    # Adelaide in January is UTC+10:30: the UTC hour 13:00-14:00 of 14 January is local
    # 23:30-00:30, across the change at midnight. 1,000,001 mWh shared half and half by
    # time: 500,000.5 each, the odd mWh to the earlier piece (a tie) → 500,001 / 500,000.
    adelaide = ZoneInfo("Australia/Adelaide")
    line = _line(datetime(2026, 1, 14, 13, tzinfo=UTC), 1_000_001)
    before, after = segment_energy(
        [line],
        time_zone=adelaide,
        segments=[(date(2026, 1, 1), None), (date(2026, 1, 15), None)],
        tariff_zone="SA",
    )
    assert before == (PeriodEnergy(date(2026, 1, 14), "flat", Decimal("0.500001")),)
    assert after == (PeriodEnergy(date(2026, 1, 15), "flat", Decimal("0.500000")),)


def test_a_true_up_credits_and_debits_each_day_at_its_own_plan() -> None:
    # Sydney, au-flat until 14 January, au-flat-2 from the 15th (both price "flat").
    # Billed: 10 kWh at noon on the 14th and on the 15th; revised: 12 kWh on the 14th,
    # 8 kWh on the 15th. The same tariff period's total did not move, but the days are
    # on different plans: a debit of 2 kWh at au-flat, a credit of 2 kWh at au-flat-2.
    # Debit: 2 * 0.16480 (one contract year) = 0.3296 → 0.33; GST 0.033 → 0.03; 0.36.
    # Credit: 2 * 0.20000 = 0.40; GST 0.04; 0.44.
    noon_14 = datetime(2026, 1, 14, 1, tzinfo=UTC)  # 12:00 AEDT
    noon_15 = noon_14 + timedelta(days=1)
    old = [_line(noon_14, 10_000_000), _line(noon_15, 10_000_000)]
    new = [_line(noon_14, 12_000_000), _line(noon_15, 8_000_000)]
    january = BillingPeriod(date(2026, 1, 1), date(2026, 1, 31))
    plans = [(january.first_day, AU_FLAT), (date(2026, 1, 15), AU_FLAT_2)]
    segments = [(day, None) for day, _ in plans]
    before = segment_energy(old, time_zone=SYDNEY, segments=segments, tariff_zone="NSW")
    after = segment_energy(new, time_zone=SYDNEY, segments=segments, tariff_zone="NSW")
    # Netted by tariff period over the whole period, the revision would bill nothing.
    whole = energy_difference([*after[0], *after[1]], [*before[0], *before[1]])
    assert (whole.more, whole.less) == ((), ())
    differences = segment_difference(after, before)
    more = [x.more for x in differences]
    less = [x.less for x in differences]
    assert more == [(PeriodEnergy(date(2026, 1, 14), "flat", Decimal(2)),), ()]
    assert less == [(), (PeriodEnergy(date(2026, 1, 15), "flat", Decimal(2)),)]
    start = date(2024, 1, 20)
    debit = rate_plans(plan_parts(plans, january, more), GST, contract_start=start, period=january)
    credit = rate_plans(plan_parts(plans, january, less), GST, contract_start=start, period=january)
    assert _summary(debit) == [
        ("01-14", "au-flat", "flat", Decimal(2), Decimal("0.16480"), Decimal("0.33"))
    ]
    assert (debit.net, debit.tax, debit.gross) == (
        Decimal("0.33"),
        Decimal("0.03"),
        Decimal("0.36"),
    )
    # (The contract anniversary on the 20th still cuts au-flat-2's days, escalator 0 %.)
    assert _summary(credit) == [
        ("15-19", "au-flat-2", "flat", Decimal(2), Decimal("0.20000"), Decimal("0.40"))
    ]
    assert credit.gross == Decimal("0.44")


def test_plan_segments_must_tile_the_period_and_hold_their_own_days() -> None:
    january = BillingPeriod(date(2026, 1, 1), date(2026, 1, 31))
    gap = [
        PlanEnergy(AU_FLAT, date(2026, 1, 1), date(2026, 1, 13), ()),
        PlanEnergy(AU_TOU, date(2026, 1, 15), date(2026, 1, 31), ()),
    ]
    with pytest.raises(RatingError, match="does not follow on 2026-01-14"):
        rate_plans(gap, GST, contract_start=date(2024, 1, 1), period=january)
    stray = [
        PlanEnergy(AU_FLAT, date(2026, 1, 1), date(2026, 1, 14), ()),
        PlanEnergy(
            AU_FLAT_2,
            date(2026, 1, 15),
            date(2026, 1, 31),
            (PeriodEnergy(date(2026, 1, 3), "flat", Decimal(1)),),
        ),
    ]
    with pytest.raises(RatingError, match=r"outside 2026-01-15\.\.2026-01-31"):
        rate_plans(stray, GST, contract_start=date(2024, 1, 1), period=january)


def test_plans_within_a_period() -> None:
    history = [(date.min, "a"), (date(2026, 1, 15), "b"), (date(2026, 3, 1), "a")]
    jan, feb = date(2026, 1, 1), date(2026, 2, 1)
    assert plans_within(history, jan, date(2026, 1, 31)) == ((jan, "a"), (date(2026, 1, 15), "b"))
    assert plans_within(history, feb, date(2026, 2, 28)) == ((feb, "b"),)
    assert plans_within(history, jan, date(2026, 3, 31)) == (
        (jan, "a"),
        (date(2026, 1, 15), "b"),
        (date(2026, 3, 1), "a"),
    )
    # A second change from the same day wins; one that keeps the plan starts nothing.
    same_day = [(date.min, "a"), (date(2026, 1, 10), "b"), (date(2026, 1, 10), "a")]
    assert plans_within(same_day, jan, date(2026, 1, 31)) == ((jan, "a"),)


def _change(code: str, day: date, applied: bool, replaced: str | None = None) -> PlanChange:
    return PlanChange(
        plan_code=code,
        effective_from=day,
        source=f"ticket:{day.day}",
        approved_by="desk",
        recorded_at=datetime(2026, 1, 1, tzinfo=UTC),
        applied_at=datetime(2026, 1, 2, tzinfo=UTC) if applied else None,
        replaced_plan_code=replaced,
    )


def test_the_plan_history_from_the_accounts_changes() -> None:
    d15, m1 = date(2026, 1, 15), date(2026, 3, 1)
    assert plan_history("a", []) == ()
    # Applied (it replaced "a"), then one to come: its date counts already.
    changes = [_change("b", d15, True, "a"), _change("c", m1, False)]
    assert plan_history("b", changes) == ((date.min, "a"), (d15, "b"), (m1, "c"))
    # None applied yet: the account's plan is the first.
    assert plan_history("a", [_change("b", d15, False)]) == ((date.min, "a"), (d15, "b"))
    # Applied before replaced plans were kept: the change's own plan from the start.
    assert plan_history("b", [_change("b", d15, True)]) == ((date.min, "b"),)
    # The plan set on the account directly since the last applied change stands for it.
    assert plan_history("x", [_change("b", d15, True, "a")]) == ((date.min, "a"), (d15, "x"))
