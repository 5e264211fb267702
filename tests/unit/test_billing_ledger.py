"""The pure ledger (cloud.billing.ledger): billable energy per basis from hand-written
register deltas, the AU grid pool, estimates for hours without data, and the sums the
ledger promises (hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.billing.ledger import MeterHour, hour_profile, reckon

SYDNEY = ZoneInfo("Australia/Sydney")
T0 = datetime(2026, 3, 1, 13, tzinfo=UTC)  # 00:00 in Sydney (AEDT, +11)


def _hours(*registers: tuple[int | None, int | None, int | None]) -> list[MeterHour]:
    return [
        MeterHour(T0 + timedelta(hours=i), T0 + timedelta(hours=i + 1), f, r, e)
        for i, (f, r, e) in enumerate(registers)
    ]


def test_us_production_bills_the_forward_register_whatever_was_exported() -> None:
    hours = _hours((1_500, 0, 900), (2_250, 10, 2_000))
    got = reckon(hours, "us_production", SYDNEY, {})
    assert [line.billable_mwh for line in got.lines] == [1_500, 2_250]
    assert got.billable_mwh == 3_750


def test_spain_bills_energy_consumed_on_site_never_below_zero() -> None:
    # 1 500 - 900 = 600; 2 000 - 2 250 < 0 -> 0 (the site exported more than the
    # system delivered: none of PoTR's energy was consumed on site that hour).
    hours = _hours((1_500, 0, 900), (2_000, 0, 2_250))
    got = reckon(hours, "es_onsite", SYDNEY, {})
    assert [line.billable_mwh for line in got.lines] == [600, 0]


def test_australia_never_resells_what_the_system_drew() -> None:
    # Hour 1: the battery charges 3 000 from the grid (reverse), delivers nothing.
    # Hour 2: delivers 2 000, exports 0: all of it deemed grid energy (pool 3 000 -> 1 000).
    # Hour 3: delivers 5 000, exports 1 000: on site 4 000, 1 000 of it pool, bills 3 000.
    hours = _hours((0, 3_000, 0), (2_000, 0, 0), (5_000, 0, 1_000))
    got = reckon(hours, "au_pv_consumed_and_pv_battery", SYDNEY, {}, pool_mwh=0)
    assert [(x.pool_used_mwh, x.billable_mwh) for x in got.lines] == [
        (0, 0),
        (2_000, 0),
        (1_000, 3_000),
    ]
    assert got.pool_mwh == 0
    # A pool carried in from the last period is spent first too.
    carried = reckon(_hours((800, 0, 0)), "au_pv_consumed_and_pv_battery", SYDNEY, {}, pool_mwh=500)
    assert (carried.lines[0].billable_mwh, carried.pool_mwh) == (300, 0)


def test_an_hour_without_data_is_estimated_from_the_same_local_hour_and_flagged() -> None:
    # Three earlier days' 00:00-01:00 (Sydney): forward 1 000, 1 200, 1 301 -> mean
    # 3 501 / 3 = 1 167 (half up); export 100, 100, 101 -> 100.33 -> 100.
    history = [
        MeterHour(T0 - timedelta(days=d), T0 - timedelta(days=d) + timedelta(hours=1), f, 0, e)
        for d, f, e in ((1, 1_000, 100), (2, 1_200, 100), (3, 1_301, 101))
    ]
    profile = hour_profile(history, SYDNEY)
    got = reckon(_hours((None, None, None), (2_000, 0, 0)), "es_onsite", SYDNEY, profile)
    first, second = got.lines
    assert (first.forward_mwh, first.export_mwh, first.billable_mwh) == (1_167, 100, 1_067)
    assert first.estimated
    assert not second.estimated
    assert got.estimated_mwh == 1_067
    # No history for that hour: estimated at zero (never a guess from other hours).
    bare = reckon(_hours((None, 0, 0)), "us_production", SYDNEY, {})
    assert (bare.lines[0].billable_mwh, bare.lines[0].estimated) == (0, True)


def test_a_negative_delta_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        reckon(_hours((-1, 0, 0)), "us_production", SYDNEY, {})


_register = st.integers(min_value=0, max_value=10_000_000)


@settings(max_examples=200, deadline=None)
@given(
    regs=st.lists(st.tuples(_register, _register, _register), min_size=1, max_size=48),
    pool=st.integers(min_value=0, max_value=10_000_000),
    cut=st.integers(min_value=0, max_value=48),
)
def test_the_ledger_adds_up_across_any_split_of_its_hours(
    regs: list[tuple[int, int, int]], pool: int, cut: int
) -> None:
    hours = _hours(*regs)
    basis = "au_pv_consumed_and_pv_battery"
    whole = reckon(hours, basis, SYDNEY, {}, pool_mwh=pool)
    first = reckon(hours[:cut], basis, SYDNEY, {}, pool_mwh=pool)
    rest = reckon(hours[cut:], basis, SYDNEY, {}, pool_mwh=first.pool_mwh)
    # Billing two periods with the pool carried equals billing them as one.
    assert first.billable_mwh + rest.billable_mwh == whole.billable_mwh
    assert rest.pool_mwh == whole.pool_mwh
    # Energy is conserved: on-site = billed + taken from the pool; the pool is what came
    # in, plus the draws, less what it gave.
    on_site = sum(max(f - e, 0) for f, _r, e in regs)
    used = sum(x.pool_used_mwh for x in whole.lines)
    assert whole.billable_mwh + used == on_site
    assert whole.pool_mwh == pool + sum(r for _f, r, _e in regs) - used
    # US production bills exactly the forward register's delta.
    assert reckon(hours, "us_production", SYDNEY, {}).billable_mwh == sum(f for f, _r, _e in regs)
