"""Telemetry models."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

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


class ReadingSeries(BaseModel):
    device_id: int
    metric: str
    unit: str
    from_: datetime = Field(alias="from", serialization_alias="from")
    to: datetime
    points: list[ReadingPoint]
    truncated: bool = Field(description="true when more points exist than `limit`")

    model_config = {"populate_by_name": True}


class UnknownMetricError(KeyError):
    """A metric name not in the catalog."""
