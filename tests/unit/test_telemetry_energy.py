"""Energy from counters: each rule on a hand-computed example (figures worked out here)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from cloud.telemetry.energy import (
    aggregate,
    base_buckets,
    bucket_of,
    counter_intervals,
    local_periods,
    register_mwh,
    revise,
    revised_days,
    site_buckets,
)
from cloud.telemetry.energy_models import (
    BaseBucket,
    CounterRules,
    CounterSample,
    EnergyFlag,
    MeterSwap,
)

GAP, RESET, SWAP = EnergyFlag.GAP, EnergyFlag.RESET, EnergyFlag.METER_SWAP
MIN = timedelta(minutes=1)
HOUR = timedelta(hours=1)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def s(ts: datetime, wh: float) -> CounterSample:
    return CounterSample(ts=ts, value_wh=wh)


def by_start(buckets: list[BaseBucket]) -> dict[datetime, BaseBucket]:
    return {b.start: b for b in buckets}


# -- values -------------------------------------------------------------------------------
def test_values_become_milliwatt_hours_as_postgresql_rounds_them() -> None:
    assert register_mwh(1234567.891) == 1234567891
    assert register_mwh(0.1 + 0.2) == 300  # 0.30000000000000004 -> 0.300
    assert register_mwh(0.0005) == 1  # half up, like round(numeric)
    assert register_mwh(0.0) == 0


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1.0])
def test_nan_infinite_and_negative_values_are_not_registers(bad: float) -> None:
    assert register_mwh(bad) is None


# -- pairs --------------------------------------------------------------------------------
def test_a_decrease_is_a_reset_counted_from_zero() -> None:
    samples = [s(utc(2025, 1, 1, 10, 5), 1000), s(utc(2025, 1, 1, 10, 10), 1500)]
    samples += [s(utc(2025, 1, 1, 10, 20), 200), s(utc(2025, 1, 1, 10, 25), 300)]
    b = by_start(base_buckets(samples))
    # (10:00, 10:15]: 1500 - 1000; (10:15, 10:30]: 200 after the reset + 100
    assert b[utc(2025, 1, 1, 10)].energy_mwh == 500_000
    assert b[utc(2025, 1, 1, 10)].flags == frozenset()
    assert b[utc(2025, 1, 1, 10, 15)].energy_mwh == 300_000
    assert b[utc(2025, 1, 1, 10, 15)].flags == {RESET}
    assert b[utc(2025, 1, 1, 10, 15)].energy_wh == Decimal("300.000")


def test_a_meter_swap_inside_a_pair_joins_old_and_new_registers() -> None:
    swap = MeterSwap(
        replaced_at=utc(2025, 1, 1, 10, 7),
        old_register_wh=Decimal("5100"),
        new_register_wh=Decimal("10"),
    )
    samples = [s(utc(2025, 1, 1, 10, 5), 5000), s(utc(2025, 1, 1, 10, 10), 40)]
    (iv,) = counter_intervals(samples, [swap])
    assert iv.energy_mwh == (5100 - 5000 + 40 - 10) * 1000  # 130 Wh, not a reset
    assert iv.flags == {SWAP}


def test_a_swap_at_the_later_sample_counts_that_sample_as_the_new_meters() -> None:
    swap = MeterSwap(
        replaced_at=utc(2025, 1, 1, 10, 10), old_register_wh=Decimal(5100), new_register_wh=0
    )
    samples = [s(utc(2025, 1, 1, 10, 5), 5000), s(utc(2025, 1, 1, 10, 10), 0)]
    (iv,) = counter_intervals(samples, [swap])
    assert (iv.energy_mwh, iv.flags) == (100_000, {SWAP})


def test_swap_registers_that_do_not_fit_the_readings_are_implausible() -> None:
    swap = MeterSwap(
        replaced_at=utc(2025, 1, 1, 10, 7), old_register_wh=Decimal(4000), new_register_wh=0
    )
    samples = [s(utc(2025, 1, 1, 10, 5), 5000), s(utc(2025, 1, 1, 10, 10), 40)]
    (iv,) = counter_intervals(samples, [swap])
    assert iv.energy_mwh == (4000 - 5000 + 40) * 1000  # the records, flagged
    assert iv.flags == {SWAP, EnergyFlag.IMPLAUSIBLE}


def test_more_energy_than_max_power_allows_is_implausible() -> None:
    rules = CounterRules(max_power_w=5000)  # 5 kW x 5 min = 416.667 Wh
    t0, t1 = utc(2025, 1, 1, 10), utc(2025, 1, 1, 10, 5)
    (ok,) = counter_intervals([s(t0, 0), s(t1, 416)], rules=rules)
    (too_much,) = counter_intervals([s(t0, 0), s(t1, 417)], rules=rules)
    assert ok.flags == frozenset()
    assert too_much.flags == {EnergyFlag.IMPLAUSIBLE}


def test_rejected_samples_are_left_out_and_flag_their_bucket() -> None:
    samples = [s(utc(2025, 1, 1, 10, 5), 100), s(utc(2025, 1, 1, 10, 10), float("nan"))]
    samples += [s(utc(2025, 1, 1, 10, 15), -5), s(utc(2025, 1, 1, 10, 18), 400)]
    (iv,) = counter_intervals(samples)
    assert (iv.start, iv.end, iv.energy_mwh) == (samples[0].ts, samples[3].ts, 300_000)
    b = by_start(base_buckets(samples))
    assert (b[utc(2025, 1, 1, 10)].flags, b[utc(2025, 1, 1, 10)].samples) == (
        {EnergyFlag.REJECTED},
        1,
    )
    assert (b[utc(2025, 1, 1, 10, 15)].flags, b[utc(2025, 1, 1, 10, 15)].energy_mwh) == (
        frozenset(),
        300_000,
    )


def test_of_samples_with_one_timestamp_the_first_wins() -> None:
    t = utc(2025, 1, 1, 10, 10)
    samples = [s(utc(2025, 1, 1, 10, 5), 100), s(t, 150), s(t, 999), s(t, 150)]
    assert [iv.energy_mwh for iv in counter_intervals(samples)] == [50_000]


# -- buckets and gaps ---------------------------------------------------------------------
def test_a_sample_on_a_boundary_closes_the_bucket_before_it() -> None:
    assert bucket_of(utc(2025, 1, 1, 10, 15)) == utc(2025, 1, 1, 10)
    assert bucket_of(utc(2025, 1, 1, 10, 15, 0, 1)) == utc(2025, 1, 1, 10, 15)


def test_a_gap_flags_every_bucket_it_overlaps_and_its_energy_lands_at_its_end() -> None:
    samples = [s(utc(2025, 1, 1, 10, 5), 0), s(utc(2025, 1, 1, 10, 55), 500)]
    b = base_buckets(samples)  # gap_after 15 min; the pair is 50 min
    assert [x.start for x in b] == [utc(2025, 1, 1, 10, m) for m in (0, 15, 30, 45)]
    assert all(x.flags == {GAP} and x.covered == timedelta(0) for x in b)
    assert [x.energy_mwh for x in b] == [0, 0, 0, 500_000]
    assert [x.samples for x in b] == [1, 0, 0, 1]


def test_a_pair_exactly_as_long_as_the_threshold_is_not_a_gap() -> None:
    samples = [s(utc(2025, 1, 1, 10), 0), s(utc(2025, 1, 1, 10, 15), 500)]
    (x,) = [b for b in base_buckets(samples) if b.energy_mwh]
    assert (x.start, x.flags, x.covered) == (utc(2025, 1, 1, 10), frozenset(), 15 * MIN)


def test_a_short_pair_straddling_a_boundary_is_not_flagged() -> None:
    samples = [s(utc(2025, 1, 1, 10, 10), 0), s(utc(2025, 1, 1, 10, 20), 80)]
    first, second = base_buckets(samples)
    assert (first.energy_mwh, first.covered, first.flags) == (0, 5 * MIN, frozenset())
    assert (second.energy_mwh, second.covered, second.flags) == (80_000, 5 * MIN, frozenset())


def test_a_bucket_no_sample_closes_is_a_gap_even_inside_a_short_pair() -> None:
    rules = CounterRules(gap_after=timedelta(minutes=30))
    samples = [s(utc(2025, 1, 1, 10), 0), s(utc(2025, 1, 1, 10, 30), 80)]
    b = by_start(base_buckets(samples, rules=rules))
    assert b[utc(2025, 1, 1, 10)].flags == {GAP}
    assert b[utc(2025, 1, 1, 10)].covered == 15 * MIN
    assert (b[utc(2025, 1, 1, 10, 15)].flags, b[utc(2025, 1, 1, 10, 15)].energy_mwh) == (
        frozenset(),
        80_000,
    )


# -- local periods ------------------------------------------------------------------------
def _lengths(zone: str, day: date, unit: str = "day") -> list[timedelta]:
    return [p.length for p in local_periods(ZoneInfo(zone), day, day, unit)]  # type: ignore[arg-type]


def test_madrid_spring_forward_day_has_23_hours() -> None:
    (d,) = local_periods(ZoneInfo("Europe/Madrid"), date(2025, 3, 30), date(2025, 3, 30), "day")
    assert (d.start, d.end) == (utc(2025, 3, 29, 23), utc(2025, 3, 30, 22))
    hours = local_periods(ZoneInfo("Europe/Madrid"), date(2025, 3, 30), date(2025, 3, 30), "hour")
    assert len(hours) == 23
    assert [h.label for h in hours[1:3]] == ["2025-03-30T01:00+01:00", "2025-03-30T03:00+02:00"]


def test_madrid_fall_back_day_has_25_hours_and_two_hours_labelled_two() -> None:
    assert _lengths("Europe/Madrid", date(2025, 10, 26)) == [25 * HOUR]
    hours = local_periods(ZoneInfo("Europe/Madrid"), date(2025, 10, 26), date(2025, 10, 26), "hour")
    assert len(hours) == 25
    twos = [h for h in hours if h.local_start.hour == 2]
    assert [(h.start, h.label) for h in twos] == [
        (utc(2025, 10, 26, 0), "2025-10-26T02:00+02:00"),
        (utc(2025, 10, 26, 1), "2025-10-26T02:00+01:00"),
    ]


def test_adelaide_days_start_at_half_past_in_utc() -> None:
    zone = ZoneInfo("Australia/Adelaide")
    (summer,) = local_periods(zone, date(2025, 1, 15), date(2025, 1, 15), "day")  # +10:30
    (winter,) = local_periods(zone, date(2025, 7, 15), date(2025, 7, 15), "day")  # +9:30
    assert summer.start == utc(2025, 1, 14, 13, 30)
    assert winter.start == utc(2025, 7, 14, 14, 30)
    assert _lengths("Australia/Adelaide", date(2025, 4, 6)) == [25 * HOUR]  # DST ends
    assert _lengths("Australia/Adelaide", date(2025, 10, 5)) == [23 * HOUR]  # DST starts
    hours = local_periods(zone, date(2025, 7, 15), date(2025, 7, 15), "hour")
    assert all(h.start.minute == 30 for h in hours)


def test_a_sample_at_adelaide_midnight_closes_the_previous_local_day() -> None:
    zone = ZoneInfo("Australia/Adelaide")
    midnight = utc(2025, 7, 15, 14, 30)  # 16 July 00:00 ACST
    samples = [s(midnight - 5 * MIN, 100), s(midnight, 130), s(midnight + 5 * MIN, 170)]
    days = aggregate(
        base_buckets(samples), local_periods(zone, date(2025, 7, 15), date(2025, 7, 16), "day")
    )
    assert [(f.period.day, f.energy_mwh) for f in days] == [
        (date(2025, 7, 15), 30_000),
        (date(2025, 7, 16), 40_000),
    ]


def test_darwin_eucla_and_denver_day_boundaries() -> None:
    (darwin,) = local_periods(
        ZoneInfo("Australia/Darwin"), date(2025, 1, 15), date(2025, 1, 15), "day"
    )
    (eucla,) = local_periods(
        ZoneInfo("Australia/Eucla"), date(2025, 1, 15), date(2025, 1, 15), "day"
    )
    assert darwin.start == utc(2025, 1, 14, 14, 30)  # +9:30 all year
    assert eucla.start == utc(2025, 1, 14, 15, 15)  # +8:45
    assert _lengths("America/Denver", date(2025, 3, 9)) == [23 * HOUR]
    assert _lengths("America/Denver", date(2025, 11, 2)) == [25 * HOUR]
    (fall,) = local_periods(ZoneInfo("America/Denver"), date(2025, 11, 2), date(2025, 11, 2), "day")
    assert (fall.start, fall.end) == (utc(2025, 11, 2, 6), utc(2025, 11, 3, 7))


def test_lord_howe_half_hour_fall_back() -> None:
    # 6 April 2025: 02:00 +11:00 (15:00 UTC) becomes 01:30 +10:30
    zone = ZoneInfo("Australia/Lord_Howe")
    assert _lengths("Australia/Lord_Howe", date(2025, 4, 6)) == [24 * HOUR + 30 * MIN]
    hours = local_periods(zone, date(2025, 4, 6), date(2025, 4, 6), "hour")
    around = [
        (h.label, h.length) for h in hours if utc(2025, 4, 5, 14) <= h.start < utc(2025, 4, 5, 16)
    ]
    assert around == [
        ("2025-04-06T01:00+11:00", HOUR),
        ("2025-04-06T01:30+10:30", 30 * MIN),
        ("2025-04-06T02:00+10:30", HOUR),
    ]


def test_madrid_months_of_743_and_745_hours() -> None:
    zone = ZoneInfo("Europe/Madrid")
    (march,) = local_periods(zone, date(2025, 3, 1), date(2025, 3, 31), "month")
    (october,) = local_periods(zone, date(2025, 10, 5), date(2025, 10, 5), "month")
    assert (march.label, march.length) == ("2025-03", 743 * HOUR)
    assert (october.label, october.length) == ("2025-10", 745 * HOUR)


# -- figures ------------------------------------------------------------------------------
def test_the_fall_back_figures_split_the_repeated_hour() -> None:
    zone = ZoneInfo("Europe/Madrid")
    # readings every 15 min from 23:45 UTC on the 25th to 02:00 UTC, +10 Wh each
    ts = [utc(2025, 10, 25, 23, 45) + i * 15 * MIN for i in range(10)]
    samples = [s(t, 10 * i) for i, t in enumerate(ts)]
    hours = aggregate(
        base_buckets(samples), local_periods(zone, date(2025, 10, 26), date(2025, 10, 26), "hour")
    )
    got = {h.period.label: (h.energy_mwh, h.samples, h.covered) for h in hours[:4]}
    assert got == {
        "2025-10-26T00:00+02:00": (0, 0, timedelta(0)),
        "2025-10-26T01:00+02:00": (10_000, 2, 15 * MIN),  # samples 23:45 and 00:00 UTC
        "2025-10-26T02:00+02:00": (40_000, 4, HOUR),
        "2025-10-26T02:00+01:00": (40_000, 4, HOUR),
    }
    assert not hours[1].complete
    assert hours[2].complete


def test_site_buckets_sum_devices_and_take_the_least_coverage() -> None:
    t = utc(2025, 1, 1, 10)
    a = [BaseBucket(start=t, energy_mwh=5, samples=3, covered=15 * MIN)]
    b = [BaseBucket(start=t, energy_mwh=7, samples=1, covered=5 * MIN, flags=frozenset({GAP}))]
    (site,) = site_buckets({1: a, 2: b})
    assert (site.energy_mwh, site.samples, site.covered, site.flags) == (12, 4, 5 * MIN, {GAP})
    (without,) = site_buckets({1: a, 2: []})
    assert (without.energy_mwh, without.covered) == (5, timedelta(0))


# -- late samples -------------------------------------------------------------------------
def test_a_late_sample_before_midnight_revises_both_local_days() -> None:
    zone = ZoneInfo("Europe/Madrid")  # 11 January starts at 23:00 UTC on the 10th
    rules = CounterRules(gap_after=timedelta(minutes=30))
    stored = [s(utc(2025, 1, 10, 22, 50), 100), s(utc(2025, 1, 10, 23, 10), 300)]
    late = [s(utc(2025, 1, 10, 22, 55), 150)]
    before = base_buckets(stored, rules=rules)
    rev = revise(before, stored, late, rules=rules)
    changed = {b.start: b.energy_mwh for b in rev.changed}
    assert changed == {utc(2025, 1, 10, 22, 45): 50_000, utc(2025, 1, 10, 23): 150_000}
    assert revised_days(rev.changed_starts, zone) == [date(2025, 1, 10), date(2025, 1, 11)]


def test_a_late_duplicate_changes_nothing() -> None:
    stored = [s(utc(2025, 1, 10, 22, 50), 100), s(utc(2025, 1, 10, 23, 10), 300)]
    rev = revise(base_buckets(stored), stored, [s(utc(2025, 1, 10, 23, 10), 999)])
    assert rev.changed == ()
    assert rev.removed == ()
