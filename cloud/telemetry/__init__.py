"""Telemetry store: readings per (device, metric, ts); partitions; the read interface."""

from cloud.telemetry.api import create_router
from cloud.telemetry.models import ReadingPoint, ReadingRow, ReadingSeries, UnknownMetricError
from cloud.telemetry.store import TelemetryReader, TelemetryStore, partition_days

__all__ = [
    "ReadingPoint",
    "ReadingRow",
    "ReadingSeries",
    "TelemetryReader",
    "TelemetryStore",
    "UnknownMetricError",
    "create_router",
    "partition_days",
]
