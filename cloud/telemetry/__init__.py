"""Telemetry store: readings per (device, metric, ts); partitions; the read interface."""

from cloud.telemetry.api import create_router
from cloud.telemetry.models import ReadingPoint, ReadingRow, ReadingSeries, UnknownMetricError
from cloud.telemetry.store import RowTuple, TelemetryReader, TelemetryStore, partition_days

__all__ = [
    "ReadingPoint",
    "ReadingRow",
    "ReadingSeries",
    "RowTuple",
    "TelemetryReader",
    "TelemetryStore",
    "UnknownMetricError",
    "create_router",
    "partition_days",
]
