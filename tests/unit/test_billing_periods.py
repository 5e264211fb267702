"""Allocation of metered energy to time-of-use periods in the site's local time.

Each case feeds hourly UTC intervals of 1.000 kWh (or a single straddling interval) and
expects the hours of each period worked out by hand from the published windows and the
DST rules of business.md §2.4: a local day is 23, 24 or 25 hours long and each hour's
kWh goes to the period its local wall-clock time falls in.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import cache
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud.billing import (
    FLAT,
    EnergyInterval,
    PeriodEnergy,
    PeriodError,
    Tariffs,
    TouSchedule,
    allocate,
    energy_totals,
    load_tariffs,
)
from cloud.customers.zones import TARIFF_ZONES
from contracts.topics import Region

KWH = Decimal("0.001")


def _tariffs(region: Region) -> Tariffs:
    return load_tariffs(region, TARIFF_ZONES[region])


def _schedule(name: str | None) -> TouSchedule | None:
    if name is None:
        return None
    region = {"es": Region.ES, "au": Region.AU, "us": Region.US}[name[:2]]
    return _tariffs(region).schedules[name]


def _hourly(first: datetime, hours: int, kwh: str = "1.000") -> list[EnergyInterval]:
    return [
        EnergyInterval(first + timedelta(hours=h), first + timedelta(hours=h + 1), Decimal(kwh))
        for h in range(hours)
    ]


def _utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def _totals(
    intervals: list[EnergyInterval], zone: str, schedule: str | None, tariff_zone: str
) -> dict[tuple[date, str], Decimal]:
    allocated = allocate(
        intervals, time_zone=zone, schedule=_schedule(schedule), tariff_zone=tariff_zone
    )
    return {(e.day, e.period): e.kwh for e in energy_totals(allocated)}


def _day(day: date, **hours: int) -> dict[tuple[date, str], Decimal]:
    return {(day, period): Decimal(h) for period, h in hours.items()}


# (case, zone, schedule, tariff zone, first UTC hour, hours, expected kWh per day/period)
CASES: list[tuple[str, str, str | None, str, datetime, int, dict[Any, Decimal]]] = [
    # Wed 14 Oct 2026, CEST (UTC+2): local 00-24 = 13 Oct 22:00 to 14 Oct 22:00 UTC.
    # P1 10-14 + 18-22 = 8 h, P2 8-10 + 14-18 + 22-24 = 8 h, P3 0-8 = 8 h.
    (
        "madrid weekday",
        "Europe/Madrid",
        "es-2.0td",
        "peninsula",
        _utc(2026, 10, 13, 22),
        24,
        _day(date(2026, 10, 14), P1=8, P2=8, P3=8),
    ),
    # Sat 10 Oct 2026: P3 all day.
    (
        "madrid saturday",
        "Europe/Madrid",
        "es-2.0td",
        "peninsula",
        _utc(2026, 10, 9, 22),
        24,
        _day(date(2026, 10, 10), P3=24),
    ),
    # Mon 12 Oct 2026, Fiesta Nacional (fixed-date national holiday): P3 all day.
    (
        "madrid 12 october",
        "Europe/Madrid",
        "es-2.0td",
        "peninsula",
        _utc(2026, 10, 11, 22),
        24,
        _day(date(2026, 10, 12), P3=24),
    ),
    # Good Friday, Fri 3 Apr 2026 (CEST since 29 Mar): NOT a 2.0TD holiday, a weekday.
    (
        "madrid good friday",
        "Europe/Madrid",
        "es-2.0td",
        "peninsula",
        _utc(2026, 4, 2, 22),
        24,
        _day(date(2026, 4, 3), P1=8, P2=8, P3=8),
    ),
    # Ceuta, Wed 14 Oct 2026 (Africa/Ceuta, CEST): +1 h: P1 11-15 + 19-23 = 8 h,
    # P2 9-11 + 15-19 + 23-24 = 7 h, P3 0-9 = 9 h.
    (
        "ceuta weekday",
        "Africa/Ceuta",
        "es-2.0td",
        "ceuta",
        _utc(2026, 10, 13, 22),
        24,
        _day(date(2026, 10, 14), P1=8, P2=7, P3=9),
    ),
    # Canarias, Wed 14 Oct 2026 (WEST, UTC+1): the peninsula's table in local hours.
    (
        "canarias weekday",
        "Atlantic/Canary",
        "es-2.0td",
        "canarias",
        _utc(2026, 10, 13, 23),
        24,
        _day(date(2026, 10, 14), P1=8, P2=8, P3=8),
    ),
    # Sun 29 Mar 2026, Madrid springs forward at 01:00 UTC: local day = 28 Mar 23:00 UTC
    # (00:00 CET) to 29 Mar 22:00 UTC (00:00 CEST) = 23 h, all P3 (Sunday).
    (
        "madrid spring forward",
        "Europe/Madrid",
        "es-2.0td",
        "peninsula",
        _utc(2026, 3, 28, 23),
        23,
        _day(date(2026, 3, 29), P3=23),
    ),
    # Sun 25 Oct 2026, Madrid falls back: 24 Oct 22:00 UTC (00:00 CEST) to 25 Oct 23:00
    # UTC (00:00 CET) = 25 h, all P3.
    (
        "madrid fall back",
        "Europe/Madrid",
        "es-2.0td",
        "peninsula",
        _utc(2026, 10, 24, 22),
        25,
        _day(date(2026, 10, 25), P3=25),
    ),
    # Sun 5 Apr 2026, Sydney ends DST: 4 Apr 13:00 UTC (00:00 AEDT, +11) to 5 Apr 14:00
    # UTC (00:00 AEST, +10) = 25 h; April has no peak: all off-peak.
    (
        "sydney fall back",
        "Australia/Sydney",
        "ausgrid-like-2024",
        "NSW",
        _utc(2026, 4, 4, 13),
        25,
        _day(date(2026, 4, 5), offpeak=25),
    ),
    # Sun 4 Oct 2026, Sydney starts DST: 3 Oct 14:00 UTC (00:00 AEST) to 4 Oct 13:00 UTC
    # (00:00 AEDT) = 23 h, October: all off-peak.
    (
        "sydney spring forward",
        "Australia/Sydney",
        "ausgrid-like-2024",
        "NSW",
        _utc(2026, 10, 3, 14),
        23,
        _day(date(2026, 10, 4), offpeak=23),
    ),
    # Adelaide, 5 Apr 2026: 00:00 ACDT (+10:30) = 4 Apr 13:30 UTC; 00:00 ACST (+9:30) on
    # 6 Apr = 5 Apr 14:30 UTC. Hourly UTC intervals 4 Apr 13:00 to 5 Apr 15:00 (26 h):
    # the first and last straddle local midnight half and half: 4 Apr 0.5, 5 Apr
    # 0.5 + 24 + 0.5 = 25, 6 Apr 0.5.
    (
        "adelaide fall back",
        "Australia/Adelaide",
        "ausgrid-like-2024",
        "SA",
        _utc(2026, 4, 4, 13),
        26,
        {
            (date(2026, 4, 4), "offpeak"): Decimal("0.5"),
            (date(2026, 4, 5), "offpeak"): Decimal(25),
            (date(2026, 4, 6), "offpeak"): Decimal("0.5"),
        },
    ),
    # Adelaide, 4 Oct 2026: 00:00 ACST = 3 Oct 14:30 UTC; 5 Oct 00:00 ACDT = 4 Oct 13:30
    # UTC: 23 h. Intervals 3 Oct 14:00 to 4 Oct 14:00 UTC (24 h): 3 Oct 0.5,
    # 4 Oct 0.5 + 22 + 0.5 = 23, 5 Oct 0.5.
    (
        "adelaide spring forward",
        "Australia/Adelaide",
        "ausgrid-like-2024",
        "SA",
        _utc(2026, 10, 3, 14),
        24,
        {
            (date(2026, 10, 3), "offpeak"): Decimal("0.5"),
            (date(2026, 10, 4), "offpeak"): Decimal(23),
            (date(2026, 10, 5), "offpeak"): Decimal("0.5"),
        },
    ),
    # Sydney, Wed 14 Jan 2026 (AEDT, +11): January has the 15-21 peak: 6 h, off-peak 18 h.
    (
        "sydney summer weekday",
        "Australia/Sydney",
        "ausgrid-like-2024",
        "NSW",
        _utc(2026, 1, 13, 13),
        24,
        _day(date(2026, 1, 14), peak=6, offpeak=18),
    ),
    # Sun 8 Mar 2026, Los Angeles springs forward at 02:00 PST: 8 Mar 08:00 UTC (00:00
    # PST) to 9 Mar 07:00 UTC (00:00 PDT) = 23 h; peak 16-21 local = 5 h, off-peak 18 h.
    (
        "los angeles spring forward",
        "America/Los_Angeles",
        "us-peak-4to9",
        "CA",
        _utc(2026, 3, 8, 8),
        23,
        _day(date(2026, 3, 8), peak=5, offpeak=18),
    ),
    # Sun 1 Nov 2026, Los Angeles falls back: 1 Nov 07:00 UTC (00:00 PDT) to 2 Nov 08:00
    # UTC (00:00 PST) = 25 h; peak 5 h, off-peak 20 h.
    (
        "los angeles fall back",
        "America/Los_Angeles",
        "us-peak-4to9",
        "CA",
        _utc(2026, 11, 1, 7),
        25,
        _day(date(2026, 11, 1), peak=5, offpeak=20),
    ),
    # A flat plan: one period, still cut at local midnight (Madrid 25 Oct: 25 h).
    (
        "flat fall back",
        "Europe/Madrid",
        None,
        "peninsula",
        _utc(2026, 10, 24, 22),
        25,
        _day(date(2026, 10, 25), flat=25),
    ),
]


@pytest.mark.parametrize(
    ("zone", "schedule", "tariff_zone", "first", "hours", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_hourly_energy_goes_to_the_local_period(
    zone: str,
    schedule: str | None,
    tariff_zone: str,
    first: datetime,
    hours: int,
    expected: dict[tuple[date, str], Decimal],
) -> None:
    assert _totals(_hourly(first, hours), zone, schedule, tariff_zone) == expected


def test_peak_starts_at_the_local_hour_not_the_utc_one() -> None:
    # Canarias 14 Oct 2026 is UTC+1: P1 from 10:00 local = 09:00 UTC; P2 8-10 local.
    intervals = _hourly(_utc(2026, 10, 14, 8), 2)  # 09:00-10:00 and 10:00-11:00 local
    assert _totals(intervals, "Atlantic/Canary", "es-2.0td", "canarias") == _day(
        date(2026, 10, 14), P2=1, P1=1
    )


# 14 Oct 2026, CEST (UTC+2): UTC 07:30 is 09:30 local.
STRADDLING = [
    # 09:30-10:30: 30 min P2, 30 min P1; 1.001 kWh = 1001 Wh in halves of 500.5:
    # floors 500 + 500, the leftover Wh to the tie's earlier piece, P2.
    ((7, 30), (8, 30), "1.001", {"P2": "0.501", "P1": "0.500"}),
    # 09:45-10:30, 0.100 kWh: P2 15/45 → 33.3 Wh, P1 30/45 → 66.7 Wh; floors 33 + 66 =
    # 99, the leftover to the larger remainder (P1, 2/3): 33 + 67.
    ((7, 45), (8, 30), "0.100", {"P2": "0.033", "P1": "0.067"}),
    # A correction of -0.100 kWh over the same span mirrors it.
    ((7, 45), (8, 30), "-0.100", {"P2": "-0.033", "P1": "-0.067"}),
    # 13:50-14:10, 0.001 kWh: 10 min P1, 10 min P2, the one Wh to the earlier (P1).
    ((11, 50), (12, 10), "0.001", {"P1": "0.001", "P2": "0.000"}),
]


@pytest.mark.parametrize(("start", "end", "kwh", "expected"), STRADDLING)
def test_an_interval_straddling_a_boundary_is_split_in_proportion_to_time_exactly(
    start: tuple[int, int], end: tuple[int, int], kwh: str, expected: dict[str, str]
) -> None:
    interval = EnergyInterval(_utc(2026, 10, 14, *start), _utc(2026, 10, 14, *end), Decimal(kwh))
    (allocation,) = allocate(
        [interval],
        time_zone="Europe/Madrid",
        schedule=_schedule("es-2.0td"),
        tariff_zone="peninsula",
    )
    assert {p.period: str(p.kwh) for p in allocation.parts} == expected
    assert sum(p.kwh for p in allocation.parts) == Decimal(kwh)


def _gap_schedule() -> TouSchedule:
    """A schedule whose edges fall in the hours DST skips or repeats in Los Angeles."""
    return TouSchedule.model_validate(
        {
            "name": "edges-in-dst-hours",
            "description": "A until 01:30, B until 02:30, C after",
            "periods": ["A", "B", "C"],
            "versions": [
                {
                    "effective_from": date(2020, 1, 1),
                    "source": "test",
                    "verified": True,
                    "rules": [
                        {
                            "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                            "windows": {
                                "A": ["00:00-01:30"],
                                "B": ["01:30-02:30"],
                                "C": ["02:30-24:00"],
                            },
                        }
                    ],
                }
            ],
        }
    )


def test_a_window_edge_the_clock_skips_or_repeats_follows_the_wall_clock() -> None:
    schedule = _gap_schedule()
    # 8 Mar 2026 08:00-11:00 UTC = 00:00-01:00 PST (A), 01:00-02:00 PST (A 30 min,
    # B 30 min), then the clock jumps to 03:00 PDT: 03:00-04:00 PDT (C). 3 kWh, 1 per h.
    spring = allocate(
        _hourly(_utc(2026, 3, 8, 8), 3),
        time_zone="America/Los_Angeles",
        schedule=schedule,
        tariff_zone="CA",
    )
    assert {(e.period, str(e.kwh)) for e in energy_totals(spring)} == {
        ("A", "1.500"),
        ("B", "0.500"),
        ("C", "1.000"),
    }
    # 1 Nov 2026 08:00-10:00 UTC = 01:00-02:00 PDT then 01:00-02:00 PST again: each
    # hour is 30 min A and 30 min B; 2 kWh → A 1, B 1.
    autumn = allocate(
        _hourly(_utc(2026, 11, 1, 8), 2),
        time_zone="America/Los_Angeles",
        schedule=schedule,
        tariff_zone="CA",
    )
    assert {(e.period, str(e.kwh)) for e in energy_totals(autumn)} == {
        ("A", "1.000"),
        ("B", "1.000"),
    }


def test_a_long_interval_across_a_dst_switch_is_cut_by_local_day() -> None:
    # One 48 h reading from 24 Oct 22:00 UTC (00:00 CEST 25 Oct) to 26 Oct 22:00 UTC
    # (23:00 CET 26 Oct), 4.800 kWh = 0.1 kWh/h: 25 Oct is 25 h → 2.500 kWh; 26 Oct to
    # 23:00 is 23 h: a Monday, P3 0-8 (8 h) 0.8, P2 8-10, 14-18, 22-23 (7 h) 0.7,
    # P1 10-14, 18-22 (8 h) 0.8.
    interval = EnergyInterval(_utc(2026, 10, 24, 22), _utc(2026, 10, 26, 22), Decimal("4.800"))
    totals = _totals([interval], "Europe/Madrid", "es-2.0td", "peninsula")
    assert totals == {
        (date(2026, 10, 25), "P3"): Decimal("2.500"),
        (date(2026, 10, 26), "P3"): Decimal("0.800"),
        (date(2026, 10, 26), "P2"): Decimal("0.700"),
        (date(2026, 10, 26), "P1"): Decimal("0.800"),
    }


def test_bad_intervals_are_refused() -> None:
    with pytest.raises(PeriodError, match="aware"):
        EnergyInterval(datetime(2026, 1, 1), datetime(2026, 1, 1, 1), Decimal(1))
    with pytest.raises(PeriodError, match="empty"):
        EnergyInterval(_utc(2026, 1, 1), _utc(2026, 1, 1), Decimal(1))
    with pytest.raises(PeriodError, match="finite Decimal"):
        EnergyInterval(_utc(2026, 1, 1), _utc(2026, 1, 1, 1), 1.5)  # type: ignore[arg-type]
    with pytest.raises(PeriodError, match="not a multiple of the register resolution"):
        allocate(
            _hourly(_utc(2026, 1, 1), 1, "0.0005"),
            time_zone="Europe/Madrid",
            schedule=None,
            tariff_zone="peninsula",
        )
    with pytest.raises(PeriodError, match="no version in force on 2021-05-31"):
        allocate(
            _hourly(_utc(2021, 5, 31, 10), 1),
            time_zone="Europe/Madrid",
            schedule=_schedule("es-2.0td"),
            tariff_zone="peninsula",
        )
    with pytest.raises(ValueError, match="not an IANA time zone"):
        allocate([], time_zone="../etc/passwd", schedule=None, tariff_zone="NSW")


# --- properties ------------------------------------------------------------------------

# (IANA zone, schedule, tariff zone, local DST day)
DST_DAYS = [
    ("Europe/Madrid", "es-2.0td", "peninsula", date(2026, 3, 29)),
    ("Europe/Madrid", "es-2.0td", "peninsula", date(2026, 10, 25)),
    ("Africa/Ceuta", "es-2.0td", "ceuta", date(2026, 10, 25)),
    ("Africa/Ceuta", "es-2.0td", "ceuta", date(2026, 10, 26)),  # Monday after the switch
    ("Atlantic/Canary", "es-2.0td", "canarias", date(2026, 3, 30)),
    ("Australia/Sydney", "ausgrid-like-2024", "NSW", date(2026, 4, 5)),
    ("Australia/Sydney", "ausgrid-like-2024", "NSW", date(2026, 10, 4)),
    ("Australia/Adelaide", "ausgrid-like-2024", "SA", date(2026, 4, 5)),
    ("Australia/Adelaide", None, "SA", date(2026, 10, 4)),
    ("America/Los_Angeles", "us-peak-4to9", "CA", date(2026, 3, 8)),
    ("America/Los_Angeles", "us-peak-4to9", "CA", date(2026, 11, 1)),
    ("America/Los_Angeles", "edges", "CA", date(2026, 3, 8)),
    ("America/Los_Angeles", "edges", "CA", date(2026, 11, 1)),
]
PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _resolve(name: str | None) -> TouSchedule | None:
    return _gap_schedule() if name == "edges" else _schedule(name)


@cache
def _minutes_by_period(zone: str, schedule: str | None, tariff_zone: str, day: date) -> Any:
    """Oracle: walk the UTC minutes of the local day (DST-aware via zoneinfo, one minute
    at a time, no window arithmetic) and count each minute in its local period."""
    tz = ZoneInfo(zone)
    start = datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)
    end = (datetime(day.year, day.month, day.day, tzinfo=tz) + timedelta(days=1)).astimezone(UTC)
    resolved = _resolve(schedule)
    counts: dict[tuple[date, str], int] = {}
    minute = start
    while minute < end:
        local = minute.astimezone(tz)
        of_day = local.hour * 60 + local.minute
        windows = resolved.day_windows(local.date(), tariff_zone) if resolved else None
        period = next(w.period for w in windows if w.start <= of_day < w.end) if windows else FLAT
        counts[(local.date(), period)] = counts.get((local.date(), period), 0) + 1
        minute += timedelta(minutes=1)
    return start, end, counts


@PROPERTY
@given(
    case=st.sampled_from(DST_DAYS),
    cuts=st.lists(st.integers(min_value=1, max_value=25 * 60 - 1), max_size=40),
)
def test_constant_power_over_any_minute_split_of_a_dst_day_lands_exactly(
    case: tuple[str, str | None, str, date], cuts: list[int]
) -> None:
    """At 0.001 kWh per minute, every (day, period) gets exactly its minutes' worth,
    however the day is split into intervals (at whole minutes)."""
    zone, schedule, tariff_zone, day = case
    start, end, minutes = _minutes_by_period(zone, schedule, tariff_zone, day)
    length = int((end - start).total_seconds() // 60)
    edges = sorted({0, length, *(c for c in cuts if c < length)})
    intervals = [
        EnergyInterval(start + timedelta(minutes=a), start + timedelta(minutes=b), (b - a) * KWH)
        for a, b in pairwise(edges)
    ]
    allocated = allocate(
        intervals, time_zone=zone, schedule=_resolve(schedule), tariff_zone=tariff_zone
    )
    assert {(e.day, e.period): e.kwh for e in energy_totals(allocated)} == {
        key: count * KWH for key, count in minutes.items()
    }


@PROPERTY
@given(
    case=st.sampled_from(DST_DAYS),
    cuts=st.lists(st.integers(min_value=1, max_value=26 * 3600 * 1000 - 1), max_size=30),
    energies=st.lists(st.integers(min_value=-2_000, max_value=5_000_000), min_size=31),
)
def test_allocation_conserves_each_intervals_energy_exactly(
    case: tuple[str, str | None, str, date], cuts: list[int], energies: list[int]
) -> None:
    """Any split (to the millisecond) of a DST day with any energies: each interval's
    parts are whole Wh and add up to the interval's kWh exactly."""
    zone, schedule, tariff_zone, day = case
    start, end, _ = _minutes_by_period(zone, schedule, tariff_zone, day)
    length = int((end - start) / timedelta(milliseconds=1))
    edges = sorted({0, length, *(c for c in cuts if c < length)})
    intervals = [
        EnergyInterval(
            start + timedelta(milliseconds=a), start + timedelta(milliseconds=b), wh * KWH
        )
        for (a, b), wh in zip(pairwise(edges), energies, strict=False)
    ]
    allocated = allocate(
        intervals, time_zone=zone, schedule=_resolve(schedule), tariff_zone=tariff_zone
    )
    for allocation in allocated:
        assert sum((p.kwh for p in allocation.parts), Decimal(0)) == allocation.interval.kwh
        assert all(p.kwh % KWH == 0 for p in allocation.parts)
        assert all(p.kwh * allocation.interval.kwh >= 0 for p in allocation.parts)
    total = sum((e.kwh for e in energy_totals(allocated)), Decimal(0))
    assert total == sum((i.kwh for i in intervals), Decimal(0))


def test_energy_totals_add_parts_per_day_and_period() -> None:
    intervals = _hourly(_utc(2026, 10, 14, 7), 2, "0.250")  # 09-10 P2, 10-11 P1 CEST
    allocated = allocate(
        intervals + intervals,
        time_zone="Europe/Madrid",
        schedule=_schedule("es-2.0td"),
        tariff_zone="peninsula",
    )
    assert energy_totals(allocated) == (
        PeriodEnergy(date(2026, 10, 14), "P2", Decimal("0.500")),
        PeriodEnergy(date(2026, 10, 14), "P1", Decimal("0.500")),
    )
