"""Models of energy from counters: samples in, intervals, base buckets and local figures out.

Energy is carried as integer milliwatt-hours (``*_mwh: int``) so every sum is exact on
both backends (``bigint`` in SQL); ``energy_wh`` gives the same figure as a ``Decimal``.
The rules are in :mod:`cloud.telemetry.energy`.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

#: Base bucket width: every local hour, day and month boundary of the zones we serve
#: (offsets and DST shifts in whole quarter hours) falls on a multiple of it in UTC.
BUCKET = timedelta(minutes=15)

PeriodUnit = Literal["hour", "day", "month"]


class EnergyFlag(StrEnum):
    """Why a figure needs explaining. A figure carries the union of its buckets' flags."""

    GAP = "gap"  # part of the period had no sample pair shorter than the gap threshold
    RESET = "reset"  # a counter went down: energy after it counted from zero
    METER_SWAP = "meter_swap"  # a recorded meter replacement lies inside a sample pair
    REJECTED = "rejected"  # a sample was NaN, infinite or negative and was left out
    IMPLAUSIBLE = "implausible"  # more energy than max power allows, or swap registers off


class CounterSample(BaseModel):
    """One reading of a monotonic energy counter, Wh (``value`` of a stored reading)."""

    model_config = ConfigDict(frozen=True)

    ts: AwareDatetime
    value_wh: float


class MeterSwap(BaseModel):
    """A recorded meter replacement: both registers at the swap, Wh (kWh x 1000)."""

    model_config = ConfigDict(frozen=True)

    replaced_at: AwareDatetime
    old_register_wh: Decimal = Field(ge=0, allow_inf_nan=False)
    new_register_wh: Decimal = Field(ge=0, allow_inf_nan=False)

    @field_validator("old_register_wh", "new_register_wh")
    @classmethod
    def _to_the_milliwatt_hour(cls, v: Decimal) -> Decimal:
        if v != v.quantize(Decimal("0.001")):
            raise ValueError("a register is kept to 0.001 Wh")
        return v


class CounterRules(BaseModel):
    """How one counter's samples become energy."""

    model_config = ConfigDict(frozen=True)

    gap_after: timedelta = Field(
        default=timedelta(minutes=15),
        description="a sample pair further apart than this is a gap (equal is not)",
    )
    max_power_w: int | None = Field(
        default=None, gt=0, description="energy above this power over a pair is implausible"
    )

    @field_validator("gap_after")
    @classmethod
    def _positive(cls, v: timedelta) -> timedelta:
        if v <= timedelta(0):
            raise ValueError("gap_after must be positive")
        return v


class CounterInterval(BaseModel):
    """The energy of one pair of consecutive valid samples, and how it was reckoned."""

    model_config = ConfigDict(frozen=True)

    start: datetime  # earlier sample, UTC
    end: datetime  # later sample, UTC; the energy belongs to the bucket holding it
    start_mwh: int
    end_mwh: int
    energy_mwh: int
    flags: frozenset[EnergyFlag] = frozenset()

    @property
    def energy_wh(self) -> Decimal:
        return Decimal(self.energy_mwh).scaleb(-3)


class BaseBucket(BaseModel):
    """15 minutes of one counter (device) or of a site: the unit every rollup sums.

    The bucket is ``(start, start + 15 min]``: a sample at exactly ``start + 15 min``
    closes it (readings label the interval they end, as meter reads do).
    """

    model_config = ConfigDict(frozen=True)

    start: datetime  # UTC, a multiple of 15 minutes
    energy_mwh: int = 0
    samples: int = 0  # valid samples inside the bucket
    covered: timedelta = timedelta(0)  # time inside the bucket spanned by non-gap pairs
    flags: frozenset[EnergyFlag] = frozenset()

    @property
    def end(self) -> datetime:
        return self.start + BUCKET

    @property
    def energy_wh(self) -> Decimal:
        return Decimal(self.energy_mwh).scaleb(-3)


class LocalPeriod(BaseModel):
    """A local hour, day or month of a zone, as a UTC range ``[start, end)``.

    Keyed by ``start`` (unique even for the repeated hour of a fall-back night);
    ``label`` is the local wall time with its offset, e.g. ``2025-10-26T02:00+01:00``.
    """

    model_config = ConfigDict(frozen=True)

    unit: PeriodUnit
    start: datetime
    end: datetime
    local_start: datetime  # aware, in the zone
    day: date  # the local day it belongs to (a month: its first day)
    label: str

    @property
    def length(self) -> timedelta:
        return self.end - self.start


class EnergyFigure(BaseModel):
    """The energy of one counter (device or site) in one local period."""

    model_config = ConfigDict(frozen=True)

    period: LocalPeriod
    energy_mwh: int
    samples: int
    covered: timedelta
    flags: frozenset[EnergyFlag]

    @property
    def energy_wh(self) -> Decimal:
        return Decimal(self.energy_mwh).scaleb(-3)

    @property
    def complete(self) -> bool:
        """Every moment of the period lay in a sample pair shorter than the gap threshold."""
        return self.covered == self.period.length and EnergyFlag.GAP not in self.flags


class BucketSpan(BaseModel):
    """The UTC range ``[start, end)`` of the base buckets a batch of late samples can change."""

    model_config = ConfigDict(frozen=True)

    start: datetime
    end: datetime


class Revision(BaseModel):
    """What late samples did to one counter's base buckets inside ``span``.

    ``buckets`` replaces every stored bucket whose start lies in the span; ``changed``
    are those that differ from before (new ones included); ``removed`` are starts that
    were stored and are no longer buckets.
    """

    model_config = ConfigDict(frozen=True)

    span: BucketSpan
    buckets: tuple[BaseBucket, ...]
    changed: tuple[BaseBucket, ...]
    removed: tuple[datetime, ...]

    @property
    def changed_starts(self) -> frozenset[datetime]:
        return frozenset(b.start for b in self.changed) | frozenset(self.removed)
