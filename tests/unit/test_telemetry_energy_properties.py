"""Energy from counters, as properties: buckets and local days add up to the counter
differences with resets and swaps, and late samples revise exactly what they change.

The expected totals are reckoned here from how each series was generated, not by the
code under test.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud.telemetry.energy import aggregate, base_buckets, local_periods, revise, revised_days
from cloud.telemetry.energy_models import CounterRules, CounterSample, MeterSwap

BOUNDED = settings(
    max_examples=60,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
ZONES = [
    "Europe/Madrid",
    "Atlantic/Canary",
    "Australia/Adelaide",
    "Australia/Darwin",
    "Australia/Eucla",
    "Australia/Lord_Howe",
    "Australia/Sydney",
    "America/Denver",
    "America/Phoenix",
    "UTC",
]
#: Starts a few hours before DST changes, so many series cross one.
STARTS = [
    datetime(2025, 3, 29, 20, tzinfo=UTC),  # Madrid spring forward (30 Mar)
    datetime(2025, 10, 25, 20, tzinfo=UTC),  # Madrid fall back (26 Oct)
    datetime(2025, 4, 5, 10, tzinfo=UTC),  # Adelaide, Sydney, Lord Howe fall back (6 Apr)
    datetime(2025, 10, 4, 10, tzinfo=UTC),  # ... spring forward (5 Oct)
    datetime(2025, 3, 9, 4, tzinfo=UTC),  # Denver spring forward
    datetime(2025, 11, 2, 4, tzinfo=UTC),  # Denver fall back
    datetime(2025, 1, 31, 12, tzinfo=UTC),  # a month end
]


@dataclass
class Series:
    samples: list[CounterSample] = field(default_factory=list)
    swaps: list[MeterSwap] = field(default_factory=list)
    expected_mwh: int = 0  # (last - first) + resets' v0 + swaps' (old - new)


@st.composite
def series(draw: st.DrawFn, max_steps: int = 40) -> Series:
    t = draw(st.sampled_from(STARTS)) + timedelta(seconds=draw(st.integers(0, 3600)))
    value = draw(st.integers(0, 10**9))  # mWh
    out = Series(samples=[CounterSample(ts=t, value_wh=value / 1000)])
    first, corrections = value, 0
    for _ in range(draw(st.integers(0, max_steps))):
        step = timedelta(seconds=draw(st.sampled_from([1, 60, 300, 299, 301, 900, 901, 3600])))
        if draw(st.booleans()):
            step = timedelta(seconds=draw(st.integers(1, 4 * 3600)))
        t += step
        kind = draw(st.sampled_from(["up", "up", "up", "flat", "reset", "swap"]))
        if kind == "reset" and value > 0:
            corrections += value
            value = draw(st.integers(0, value - 1))
        elif kind == "swap":
            at = t - timedelta(seconds=draw(st.integers(0, int(step.total_seconds()) - 1)))
            old = value + draw(st.integers(0, 10**6))
            new = draw(st.integers(0, 10**6)) // 1000 * 1000  # registers in whole Wh
            old = old // 1000 * 1000 if old // 1000 * 1000 >= value else old + 1000 - old % 1000
            out.swaps.append(
                MeterSwap(
                    replaced_at=at,
                    old_register_wh=Decimal(old) / 1000,
                    new_register_wh=Decimal(new) / 1000,
                )
            )
            corrections += old - new
            value = new + draw(st.integers(0, 10**6))
        elif kind == "up":
            value += draw(st.integers(0, 2 * 10**6))
        out.samples.append(CounterSample(ts=t, value_wh=value / 1000))
    out.expected_mwh = value - first + corrections
    return out


RULES = st.builds(
    CounterRules, gap_after=st.sampled_from([timedelta(minutes=m) for m in (10, 15, 30)])
)


@BOUNDED
@given(series(), RULES)
def test_buckets_add_up_to_the_counter_difference_with_resets_and_swaps(
    s: Series, rules: CounterRules
) -> None:
    buckets = base_buckets(s.samples, s.swaps, rules)
    assert sum(b.energy_mwh for b in buckets) == s.expected_mwh
    assert sum(b.samples for b in buckets) == len(s.samples)


def _days_of(buckets_first: datetime, buckets_last: datetime, zone: ZoneInfo) -> tuple[date, date]:
    return buckets_first.astimezone(zone).date(), buckets_last.astimezone(zone).date()


@BOUNDED
@given(series(), RULES, st.sampled_from(ZONES))
def test_local_hours_days_and_months_partition_the_total(
    s: Series, rules: CounterRules, zone_name: str
) -> None:
    zone = ZoneInfo(zone_name)
    buckets = base_buckets(s.samples, s.swaps, rules)
    first, last = _days_of(buckets[0].start, buckets[-1].start, zone)
    for unit in ("hour", "day", "month"):
        periods = local_periods(zone, first, last, unit)  # type: ignore[arg-type]
        figures = aggregate(buckets, periods)
        assert sum(f.energy_mwh for f in figures) == s.expected_mwh
        assert sum(f.samples for f in figures) == len(s.samples)
        assert sum((f.covered for f in figures), timedelta(0)) == sum(
            (b.covered for b in buckets), timedelta(0)
        )
        assert all(a.end == b.start for a, b in itertools.pairwise(periods))
        assert all(f.covered <= f.period.length for f in figures)


@st.composite
def late_split(draw: st.DrawFn) -> tuple[Series, list[CounterSample], list[CounterSample]]:
    s = draw(series(max_steps=30))
    samples = list(s.samples)
    # redelivered copies, conflicting duplicates and a rejected value now and then
    for _ in range(draw(st.integers(0, 3))):
        pick = draw(st.sampled_from(samples))
        value = draw(st.sampled_from([pick.value_wh, pick.value_wh + 1, float("nan")]))
        samples.append(CounterSample(ts=pick.ts, value_wh=value))
    late_mask = draw(st.lists(st.booleans(), min_size=len(samples), max_size=len(samples)))
    if not any(late_mask):
        late_mask[draw(st.integers(0, len(samples) - 1))] = True
    early = [x for x, is_late in zip(samples, late_mask, strict=True) if not is_late]
    late = [x for x, is_late in zip(samples, late_mask, strict=True) if is_late]
    return s, early, late


@BOUNDED
@given(late_split(), RULES, st.sampled_from(ZONES))
def test_late_samples_revise_exactly_the_buckets_and_days_that_change(
    split: tuple[Series, list[CounterSample], list[CounterSample]],
    rules: CounterRules,
    zone_name: str,
) -> None:
    s, early, late = split
    zone = ZoneInfo(zone_name)
    before = {b.start: b for b in base_buckets(early, s.swaps, rules)}
    at_once = {b.start: b for b in base_buckets([*early, *late], s.swaps, rules)}

    rev = revise(before.values(), early, late, s.swaps, rules)

    kept = {k: b for k, b in before.items() if not rev.span.start <= k < rev.span.end}
    assert {**kept, **{b.start: b for b in rev.buckets}} == at_once
    differing = {k for k in before.keys() | at_once.keys() if before.get(k) != at_once.get(k)}
    assert rev.changed_starts == differing
    assert revised_days(rev.changed_starts, zone) == sorted(
        {k.astimezone(zone).date() for k in differing}
    )
