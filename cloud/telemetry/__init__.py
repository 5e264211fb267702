"""Telemetry store: readings per (device, metric, ts); partitions; the read interface;
:class:`MeterHourReader` (a meter's hourly register deltas, for billing);
:func:`event_subscriptions` (its handlers of other services' events, for the
composition root)."""

from cloud.telemetry.api import create_router
from cloud.telemetry.energy_models import EnergyFlag
from cloud.telemetry.handlers import event_subscriptions
from cloud.telemetry.meter_hours import (
    MeterHourFigure,
    MeterHourReader,
    MeterHours,
    MeterNotFoundError,
    RegisterReading,
)
from cloud.telemetry.models import (
    EnergyPoint,
    LatestValue,
    ReadingPoint,
    ReadingRow,
    ReadingSeries,
    RollupSeries,
    SiteEnergyOut,
    UnknownMetricError,
)
from cloud.telemetry.resolution import level_named
from cloud.telemetry.site_meters import DeviceMatch
from cloud.telemetry.store import RowTuple, TelemetryReader, TelemetryStore, partition_days

__all__ = [
    "DeviceMatch",
    "EnergyFlag",
    "EnergyPoint",
    "LatestValue",
    "MeterHourFigure",
    "MeterHourReader",
    "MeterHours",
    "MeterNotFoundError",
    "ReadingPoint",
    "ReadingRow",
    "ReadingSeries",
    "RegisterReading",
    "RollupSeries",
    "RowTuple",
    "SiteEnergyOut",
    "TelemetryReader",
    "TelemetryStore",
    "UnknownMetricError",
    "create_router",
    "event_subscriptions",
    "level_named",
    "partition_days",
]
