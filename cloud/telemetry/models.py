"""Telemetry models."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal, NamedTuple

from pydantic import BaseModel, Field

#: Stored quality codes.
QUALITY_CODES: dict[str, int] = {"good": 0, "suspect": 1, "bad": 2}
QUALITY_NAMES: dict[int, str] = {v: k for k, v in QUALITY_CODES.items()}


class ReadingRow(NamedTuple):
    """One stored sample: SI value of catalog metric ``metric_id``.

    A tuple in column order, so the write path hands it to ``COPY`` as it is.
    """

    ts: datetime
    device_id: int
    metric_id: int
    value: float
    quality: int = 0


class ReadingPoint(BaseModel):
    ts: datetime = Field(description="sample time, UTC")
    value: float = Field(description="value in the metric's SI unit")
    quality: str = Field(description="good, suspect or bad")


class ReadingBucket(BaseModel):
    """One rollup bucket: aggregates of the samples of quality good or suspect in
    ``[bucket, bucket + step)`` (bad samples are in no bucket)."""

    bucket: datetime = Field(description="bucket start, UTC (5 min, 1 h or UTC day)")
    avg: float = Field(description="mean of the samples, SI unit")
    min: float
    max: float
    last: float = Field(description="the bucket's latest sample")
    last_ts: datetime = Field(description="when that sample was taken, UTC")
    count: int = Field(description="samples in the bucket")


class _Series(BaseModel):
    device_id: int
    metric: str
    unit: str
    from_: datetime = Field(alias="from", serialization_alias="from")
    to: datetime
    truncated: bool = Field(description="true when more follow than `limit`")
    next_cursor: str | None = Field(
        default=None,
        description="when truncated: pass as `cursor` (same query otherwise) for the next page",
    )

    model_config = {"populate_by_name": True}


class ReadingSeries(_Series):
    """Raw samples with ``from <= ts < to``, in time order."""

    resolution: Literal["raw"] = "raw"
    points: list[ReadingPoint]


class RollupSeries(_Series):
    """Rollup buckets overlapping ``[from, to)``, in time order (whole buckets: the
    first may start before ``from``)."""

    resolution: Literal["5m", "1h", "1d"]
    buckets: list[ReadingBucket]


#: A device's series as the API answers it: ``resolution`` says which shape.
AnySeries = Annotated[ReadingSeries | RollupSeries, Field(discriminator="resolution")]


class SiteReadings(BaseModel):
    """One metric of every device of a site, one series per device (by device id)."""

    site_id: int
    metric: str
    unit: str
    resolution: Literal["raw", "5m", "1h", "1d"]
    series: list[AnySeries]


class LatestValue(BaseModel):
    device_id: int
    metric: str
    unit: str
    ts: datetime = Field(description="sample time, UTC")
    value: float = Field(description="value in the metric's SI unit")
    quality: str = Field(description="good, suspect or bad")


class SiteLatest(BaseModel):
    """The newest sample per device and metric of a site since ``since``."""

    site_id: int
    since: datetime = Field(description="samples older than this are not looked at")
    values: list[LatestValue]


class FleetLatest(BaseModel):
    """The newest sample of one metric per device in the caller's reach, by device id."""

    metric: str
    unit: str
    since: datetime = Field(description="samples older than this are not looked at")
    values: list[LatestValue]
    next_after: int | None = Field(
        description="when more devices follow: pass as `after` for the next page"
    )


class UnknownMetricError(KeyError):
    """A metric name not in the catalog."""


class EnergyPoint(BaseModel):
    """One local period's energy of a site's counter."""

    start: datetime = Field(description="the period's start, UTC")
    end: datetime = Field(description="its end, UTC (a local day is 23, 24 or 25 h)")
    label: str = Field(description="local wall time with its offset, e.g. 2026-10-25")
    energy_wh: Decimal = Field(description="exact to the milliwatt-hour (a JSON string)")
    samples: int
    covered_s: float = Field(description="seconds of the period inside sample pairs")
    complete: bool = Field(description="the whole period covered and no gap in it")
    flags: list[str] = Field(description="gap, reset, meter_swap, rejected, implausible")


class SiteEnergyOut(BaseModel):
    """A site's energy of one Wh counter per local hour, day or month, in its zone."""

    site_id: int
    metric: str
    unit: Literal["hour", "day", "month"]
    time_zone: str
    periods: list[EnergyPoint]
