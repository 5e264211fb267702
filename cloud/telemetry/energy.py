"""Energy from monotonic counters, per device and per site, in the site's local time.

Pure functions; the SQL layer feeds them stored readings and stores what they return,
and the property tests use them as the oracle for the SQL rollups. Billing bills from
these figures, so every rule below is exact and every figure explains itself.

Values
    A sample's float Wh becomes integer milliwatt-hours exactly as PostgreSQL would:
    15 significant digits (``float8::numeric``), rounded half up to 0.001 Wh
    (``round(value::numeric, 3)``). From there on everything is integer arithmetic, so
    sums are exact and the same on both backends. A NaN, infinite or negative value is
    left out and flags its bucket ``rejected``. Of several samples with one timestamp
    the first wins (the store's ``ON CONFLICT DO NOTHING``).

Pairs (:func:`counter_intervals`)
    Consecutive valid samples ``(t0, v0)``, ``(t1, v1)`` give the energy of ``(t0, t1]``:
    - a recorded meter replacement at ``t0 < replaced_at <= t1`` (a sample exactly at
      the swap is the new meter's): ``(old - v0) + (v1 - new)``, chained through several
      swaps, flag ``meter_swap``; a negative part means the recorded registers do not fit
      the readings: ``implausible`` (the figure still follows the records);
    - else ``v1 < v0`` is a reset (restart from ~0, rollover): the energy is ``v1``, flag
      ``reset``; what the device made between ``t0`` and the restart is unknown and
      not guessed (a rollover's modulus is not known either);
    - else ``v1 - v0``.
    More energy than ``max_power_w`` over ``t1 - t0`` flags ``implausible`` (a ``reset``
    that is really a jump, a swap recorded wrongly). A pair longer than ``gap_after`` is a
    gap (equal is not).

Base buckets (:func:`base_buckets`)
    15 minutes in UTC, ``(start, start + 15 min]``: a sample at a boundary closes the
    bucket before it, as a meter read at midnight closes the day. All UTC offsets and DST
    shifts of the zones we serve are whole quarter hours (Adelaide and Darwin +9:30, Eucla
    +8:45, Lord Howe's 30-minute DST), so every local hour, day and month is a whole
    number of base buckets; :func:`local_periods` refuses a zone where that fails. The
    buckets do not depend on the zone: a site's zone can be corrected without re-reading
    raw data.

    A pair's whole energy goes to the bucket holding its later sample; nothing is ever
    interpolated. A pair that straddles a bucket boundary therefore moves at most one
    pair's energy (at most ``gap_after`` of production) to the later bucket; that is the
    price of not interpolating, and it is not flagged, or every bucket of a device that
    reports off the quarter hour would be. What is flagged ``gap``: every bucket a gap
    pair overlaps (so the bucket that receives its energy says "includes energy from a
    gap", and the earlier ones say "no data; the energy is reported later"), and every
    bucket that a shorter pair covers whole without a sample closing it (possible only
    when ``gap_after`` exceeds 15 minutes). ``covered`` is the time of the bucket inside
    non-gap pairs; time before the first and after the last sample is not covered.
    A bucket exists when a sample (valid or rejected) lies in it or a pair overlaps it.

Local figures (:func:`local_periods`, :func:`aggregate`)
    A local period is a UTC range ``[start, end)``. Days and months start at the first
    instant whose local date is theirs (23, 24 or 25 hours; 23.5 and 24.5 on Lord Howe).
    Hours start wherever the wall clock shows a whole hour or the offset changes, so
    fall-back's repeated hour is two periods with distinct UTC starts and labels
    (``02:00+02:00``, ``02:00+01:00``), and Lord Howe's odd half hour is its own period.
    A figure sums its buckets: energy, samples, covered time, the union of flags.
    A site's bucket (:func:`site_buckets`) sums its devices' buckets of one metric; its
    covered time is the least of its devices' (a device without the bucket covers none).

Late samples (:func:`revision_span`, :func:`revise`, :func:`revised_days`)
    A late sample splits the pair around it: the energy of that pair's later bucket
    changes, a bucket (maybe another day's) gains the first half, and the gap flags and
    coverage of every bucket the old pair overlapped may change. For late samples in
    ``[a, b]`` with the last valid stored sample ``p < a`` and the first ``n > b``,
    only buckets in ``[floor(p), ceil(n))`` can change (see :func:`revision_span`).
    The revised local days are the days of the buckets that changed: the hours billing
    prices may have moved even where a day's total did not.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from itertools import pairwise
from typing import NamedTuple
from zoneinfo import ZoneInfo

from cloud.telemetry.energy_models import (
    BUCKET,
    BaseBucket,
    BucketSpan,
    CounterInterval,
    CounterRules,
    CounterSample,
    EnergyFigure,
    EnergyFlag,
    LocalPeriod,
    MeterSwap,
    PeriodUnit,
    Revision,
)

__all__ = [
    "aggregate",
    "base_buckets",
    "bucket_of",
    "buckets_of_rows",
    "counter_intervals",
    "local_periods",
    "register_mwh",
    "revise",
    "revised_days",
    "revision_span",
    "site_buckets",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TICK = timedelta(microseconds=1)  # timestamptz and datetime resolution
_MILLI = Decimal("0.001")
_NO_FLAGS: frozenset[EnergyFlag] = frozenset()
#: Whole Wh below this are exact in a float and in mWh (2**53 / 1000).
_EXACT_WH = 2**53 // 1000
#: mWh x this > W x microseconds means more energy than the power allows.
_MWH_PER_W_US = 3_600_000


# -- values and instants ------------------------------------------------------------------
def register_mwh(value_wh: float) -> int | None:
    """A counter value in integer mWh, as ``round(value::numeric, 3) * 1000`` gives it in
    PostgreSQL; ``None`` when it is NaN, infinite or negative."""
    if not math.isfinite(value_wh) or value_wh < 0:
        return None
    if value_wh.is_integer() and value_wh < _EXACT_WH:
        return int(value_wh) * 1000  # a whole Wh (the common register): no rounding
    as_sql = Decimal(format(value_wh, ".15g")).quantize(_MILLI, rounding=ROUND_HALF_UP)
    return int(as_sql * 1000)


def _swap_mwh(register_wh: Decimal) -> int:
    return int(register_wh * 1000)


def _utc(ts: datetime) -> datetime:
    return ts if ts.tzinfo is UTC else ts.astimezone(UTC)


def _floor(ts: datetime) -> datetime:
    """The grid instant at or before ``ts``: the bucket that ``(ts, ...]`` begins in."""
    return ts - (ts - _EPOCH) % BUCKET


def bucket_of(ts: datetime) -> datetime:
    """Start of the base bucket holding the sample at ``ts`` (buckets are right-closed).

    SQL: ``date_bin('15 minutes', ts - interval '1 microsecond', 'epoch')``."""
    return _floor(_utc(ts) - _TICK)


def _on_grid(ts: datetime) -> bool:
    return (ts - _EPOCH) % BUCKET == timedelta(0)


# -- samples to intervals -----------------------------------------------------------------
@dataclass(frozen=True)
class _Prepared:
    valid: list[tuple[datetime, int]]  # (UTC ts, mWh), time order, one per ts
    rejected: list[datetime]


def _pairs(samples: Iterable[CounterSample]) -> list[tuple[datetime, float]]:
    return [(s.ts, s.value_wh) for s in samples]


def _prepare(samples: Iterable[tuple[datetime, float]]) -> _Prepared:
    """``(ts, Wh)`` pairs: valid ones as UTC mWh in time order, one per instant."""
    seen: set[datetime] = set()
    valid: list[tuple[datetime, int]] = []
    rejected: list[datetime] = []
    # sorted() is stable: of equal timestamps the first given wins.
    for ts, value_wh in sorted(((_utc(t), v) for t, v in samples), key=_first):
        if ts in seen:
            continue
        seen.add(ts)
        mwh = register_mwh(value_wh)
        if mwh is None:
            rejected.append(ts)
        else:
            valid.append((ts, mwh))
    return _Prepared(valid, rejected)


def _first(pair: tuple[datetime, float]) -> datetime:
    return pair[0]


class _Interval(NamedTuple):
    """:class:`CounterInterval` on the hot path (a pair a sample: no validation)."""

    start: datetime
    end: datetime
    start_mwh: int
    end_mwh: int
    energy_mwh: int
    flags: frozenset[EnergyFlag]


def _pair(
    t0: datetime,
    v0: int,
    t1: datetime,
    v1: int,
    swaps: Sequence[MeterSwap],
    rules: CounterRules,
) -> _Interval:
    flags: set[EnergyFlag] = set()
    inside = [s for s in swaps if t0 < _utc(s.replaced_at) <= t1] if swaps else swaps
    if inside:
        flags.add(EnergyFlag.METER_SWAP)
        parts, level = [], v0
        for s in inside:
            parts.append(_swap_mwh(s.old_register_wh) - level)
            level = _swap_mwh(s.new_register_wh)
        parts.append(v1 - level)
        if any(p < 0 for p in parts):
            flags.add(EnergyFlag.IMPLAUSIBLE)
        energy = sum(parts)
    elif v1 < v0:
        flags.add(EnergyFlag.RESET)
        energy = v1
    else:
        energy = v1 - v0
    span = t1 - t0
    if span > rules.gap_after:
        flags.add(EnergyFlag.GAP)
    limit = rules.max_power_w
    if limit is not None and energy * _MWH_PER_W_US > limit * (span // _TICK):
        flags.add(EnergyFlag.IMPLAUSIBLE)
    return _Interval(t0, t1, v0, v1, energy, frozenset(flags) if flags else _NO_FLAGS)


def _intervals(
    valid: Sequence[tuple[datetime, int]], swaps: Iterable[MeterSwap], rules: CounterRules
) -> list[_Interval]:
    ordered = sorted(swaps, key=lambda s: _utc(s.replaced_at))
    return [_pair(t0, v0, t1, v1, ordered, rules) for (t0, v0), (t1, v1) in pairwise(valid)]


def counter_intervals(
    samples: Iterable[CounterSample],
    swaps: Iterable[MeterSwap] = (),
    rules: CounterRules | None = None,
) -> list[CounterInterval]:
    """The energy of every pair of consecutive valid samples, with the rule applied."""
    return [
        CounterInterval(**iv._asdict())
        for iv in _intervals(_prepare(_pairs(samples)).valid, swaps, rules or CounterRules())
    ]


# -- intervals to base buckets ------------------------------------------------------------
@dataclass
class _Acc:
    energy_mwh: int = 0
    samples: int = 0
    covered: timedelta = timedelta(0)
    flags: set[EnergyFlag] = field(default_factory=set)

    def bucket(self, start: datetime) -> BaseBucket:
        return BaseBucket(
            start=start,
            energy_mwh=self.energy_mwh,
            samples=self.samples,
            covered=self.covered,
            flags=frozenset(self.flags),
        )


def _acc(acc: dict[datetime, _Acc], start: datetime) -> _Acc:
    a = acc.get(start)
    if a is None:  # (not setdefault: it would build an _Acc a call)
        a = acc[start] = _Acc()
    return a


def _spread(acc: dict[datetime, _Acc], iv: _Interval) -> None:
    receiving = bucket_of(iv.end)
    gap = EnergyFlag.GAP in iv.flags
    start = _floor(iv.start)
    if start == receiving and not gap:  # the common pair: inside one bucket
        a = _acc(acc, start)
        a.covered += iv.end - max(start, iv.start)
        a.energy_mwh += iv.energy_mwh
        if iv.flags:
            a.flags |= iv.flags
        return
    while start <= receiving:
        a = _acc(acc, start)
        if gap:
            a.flags.add(EnergyFlag.GAP)
        else:
            a.covered += min(start + BUCKET, iv.end) - max(start, iv.start)
            if start != receiving and start >= iv.start:
                a.flags.add(EnergyFlag.GAP)  # covered whole, yet no sample closes it
        start += BUCKET
    r = acc[receiving]
    r.energy_mwh += iv.energy_mwh
    r.flags |= iv.flags


def _buckets(
    prepared: _Prepared, swaps: Iterable[MeterSwap], rules: CounterRules
) -> list[BaseBucket]:
    acc: dict[datetime, _Acc] = {}
    for ts, _ in prepared.valid:
        _acc(acc, bucket_of(ts)).samples += 1
    for ts in prepared.rejected:
        _acc(acc, bucket_of(ts)).flags.add(EnergyFlag.REJECTED)
    for iv in _intervals(prepared.valid, swaps, rules):
        _spread(acc, iv)
    return [acc[s].bucket(s) for s in sorted(acc)]


def base_buckets(
    samples: Iterable[CounterSample],
    swaps: Iterable[MeterSwap] = (),
    rules: CounterRules | None = None,
) -> list[BaseBucket]:
    """One counter's 15-minute UTC buckets, in time order (the rules: module docstring)."""
    return _buckets(_prepare(_pairs(samples)), swaps, rules or CounterRules())


def buckets_of_rows(
    rows: Iterable[tuple[datetime, float]],
    swaps: Iterable[MeterSwap] = (),
    rules: CounterRules | None = None,
) -> list[BaseBucket]:
    """:func:`base_buckets` of ``(ts, Wh)`` rows as the store reads them (aware times):
    the same buckets, without a model a sample."""
    return _buckets(_prepare(rows), swaps, rules or CounterRules())


def site_buckets(per_device: Mapping[int, Sequence[BaseBucket]]) -> list[BaseBucket]:
    """A site's buckets of one metric: sums over its devices (give every device the site
    has, even one without buckets); covered is the least of the devices'."""
    starts = sorted({b.start for buckets in per_device.values() for b in buckets})
    by_device = [{b.start: b for b in buckets} for buckets in per_device.values()]
    out = []
    for s in starts:
        present = [d[s] for d in by_device if s in d]
        covered = min(b.covered for b in present) if len(present) == len(by_device) else None
        out.append(
            BaseBucket(
                start=s,
                energy_mwh=sum(b.energy_mwh for b in present),
                samples=sum(b.samples for b in present),
                covered=covered if covered is not None else timedelta(0),
                flags=frozenset().union(*(b.flags for b in present)),
            )
        )
    return out


# -- local periods ------------------------------------------------------------------------
def _day_start(day: date, zone: ZoneInfo) -> datetime:
    """The first instant whose local date is ``day`` (the grid walk copes with zones whose
    midnight is skipped or repeated)."""
    t = datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)
    if not _on_grid(t):
        raise ValueError(f"{zone.key}: local midnight of {day} is not on the 15-minute grid")
    while (t - BUCKET).astimezone(zone).date() >= day:
        t -= BUCKET
    while t.astimezone(zone).date() < day:
        t += BUCKET
    return t


def _days(first: date, last: date) -> Iterable[date]:
    d = first
    while d <= last:
        yield d
        d += timedelta(days=1)


def _period(unit: PeriodUnit, start: datetime, end: datetime, zone: ZoneInfo) -> LocalPeriod:
    local = start.astimezone(zone)
    day = local.date()
    if unit == "hour":
        label = local.isoformat(timespec="minutes")
    elif unit == "day":
        label = day.isoformat()
    else:
        day = day.replace(day=1)
        label = f"{day:%Y-%m}"
    return LocalPeriod(unit=unit, start=start, end=end, local_start=local, day=day, label=label)


def _hour_starts(day_start: datetime, day_end: datetime, zone: ZoneInfo) -> list[datetime]:
    starts = [day_start]
    t = day_start + BUCKET
    while t < day_end:
        local = t.astimezone(zone)
        if local.minute == 0 or local.utcoffset() != (t - BUCKET).astimezone(zone).utcoffset():
            starts.append(t)
        t += BUCKET
    return starts


def local_periods(
    zone: ZoneInfo, first_day: date, last_day: date, unit: PeriodUnit
) -> list[LocalPeriod]:
    """The local hours, days or months of ``zone`` covering local days ``first_day`` to
    ``last_day`` (months: every month they touch), in time order."""
    if unit == "month":
        months = sorted({d.replace(day=1) for d in (first_day, last_day)})
        firsts, m = [], months[0]
        while m <= months[-1]:
            firsts.append(m)
            m = (m + timedelta(days=32)).replace(day=1)
        return [
            _period(
                "month",
                _day_start(m, zone),
                _day_start((m + timedelta(days=32)).replace(day=1), zone),
                zone,
            )
            for m in firsts
        ]
    out = []
    for d in _days(first_day, last_day):
        start, end = _day_start(d, zone), _day_start(d + timedelta(days=1), zone)
        if unit == "day":
            out.append(_period("day", start, end, zone))
            continue
        starts = _hour_starts(start, end, zone)
        out.extend(_period("hour", s, e, zone) for s, e in pairwise([*starts, end]))
    return out


def aggregate(buckets: Iterable[BaseBucket], periods: Iterable[LocalPeriod]) -> list[EnergyFigure]:
    """Each period's figure from the buckets inside it (a period without buckets: zero
    energy, nothing covered)."""
    by_start: dict[datetime, BaseBucket] = {}
    for b in buckets:
        if not _on_grid(b.start):
            raise ValueError(f"bucket start {b.start} is not on the 15-minute grid")
        by_start[b.start] = b
    out = []
    for p in periods:
        acc, t = _Acc(), p.start
        while t < p.end:
            inside = by_start.get(t)
            if inside is not None:
                acc.energy_mwh += inside.energy_mwh
                acc.samples += inside.samples
                acc.covered += inside.covered
                acc.flags |= inside.flags
            t += BUCKET
        out.append(
            EnergyFigure(
                period=p,
                energy_mwh=acc.energy_mwh,
                samples=acc.samples,
                covered=acc.covered,
                flags=frozenset(acc.flags),
            )
        )
    return out


# -- late samples -------------------------------------------------------------------------
def revision_span(
    first_late: datetime,
    last_late: datetime,
    previous_stored: datetime | None,
    next_stored: datetime | None,
) -> BucketSpan:
    """The buckets late samples in ``[first_late, last_late]`` can change, given the last
    valid stored sample before ``first_late`` and the first after ``last_late`` (None:
    there is none). To recompute them, load every stored sample from the last valid one
    at or before ``span.start`` to the first valid one at or after ``span.end``.
    (Valid in SQL: ``value >= 0 AND value < 'Infinity'``, which also drops NaN.)"""
    start = _floor(_utc(previous_stored)) if previous_stored else bucket_of(first_late)
    end = bucket_of(next_stored if next_stored else last_late) + BUCKET
    return BucketSpan(start=start, end=end)


def revise(
    previous: Iterable[BaseBucket],
    stored: Iterable[CounterSample],
    late: Iterable[CounterSample],
    swaps: Iterable[MeterSwap] = (),
    rules: CounterRules | None = None,
) -> Revision:
    """What late samples change in one counter's buckets.

    ``stored``: the samples stored before, at least from the last valid one at or before
    the span's start to the first valid one at or after its end (:func:`revision_span`;
    the whole series will do). ``previous``: the buckets computed from them (only those
    in the span are looked at). Stored samples win over late ones with the same timestamp.
    """
    stored, late = list(stored), list(late)
    if not late:
        raise ValueError("no late samples")
    kept = _prepare(_pairs(stored))
    late_ts = sorted(_utc(s.ts) for s in late)
    before = [ts for ts, _ in kept.valid if ts < late_ts[0]]
    after = [ts for ts, _ in kept.valid if ts > late_ts[-1]]
    span = revision_span(
        late_ts[0], late_ts[-1], before[-1] if before else None, after[0] if after else None
    )
    new = [
        b
        for b in _buckets(_prepare(_pairs([*stored, *late])), swaps, rules or CounterRules())
        if span.start <= b.start < span.end
    ]
    old = {b.start: b for b in previous if span.start <= b.start < span.end}
    new_starts = {b.start for b in new}
    return Revision(
        span=span,
        buckets=tuple(new),
        changed=tuple(b for b in new if old.get(b.start) != b),
        removed=tuple(sorted(s for s in old if s not in new_starts)),
    )


def revised_days(bucket_starts: Iterable[datetime], zone: ZoneInfo) -> list[date]:
    """The local days of ``zone`` holding these buckets (a bucket never straddles a local
    day): for one site, the union over its devices' revisions."""
    return sorted({_utc(s).astimezone(zone).date() for s in bucket_starts})
