"""Ingest: the single consumer of everything gateways send (see ``worker``).

Published interface: :class:`IngestWorker` and its :class:`IngestSettings`, the batch
pipeline, :func:`event_subscriptions` (its handlers of the registry's gateway events, for
the composition root), and the read side (:class:`CompletenessReader`,
:class:`FleetStatusReader` — presence per region, gateway and site, ingest health — and
:func:`create_router` for the portal). Ingest calls no other service: it learns gateways
from the registry's events (``ingest.gateways``).
"""

from cloud.ingest.api import create_router
from cloud.ingest.coalesce import StoredNotice
from cloud.ingest.completeness import (
    CompletenessReader,
    DayCompleteness,
    DeviceCompleteness,
    RegionCompleteness,
)
from cloud.ingest.fleet import (
    DeviceCounts,
    DeviceState,
    DeviceStateName,
    FleetStatus,
    FleetStatusReader,
    GatewayCounts,
    GatewayState,
    GatewayStatus,
)
from cloud.ingest.handlers import event_subscriptions
from cloud.ingest.pipeline import BatchOutcome, IngestPipeline
from cloud.ingest.settings import IngestSettings
from cloud.ingest.stats import IngestHealth
from cloud.ingest.worker import IngestStats, IngestWorker, subscriptions

__all__ = [
    "BatchOutcome",
    "CompletenessReader",
    "DayCompleteness",
    "DeviceCompleteness",
    "DeviceCounts",
    "DeviceState",
    "DeviceStateName",
    "FleetStatus",
    "FleetStatusReader",
    "GatewayCounts",
    "GatewayState",
    "GatewayStatus",
    "IngestHealth",
    "IngestPipeline",
    "IngestSettings",
    "IngestStats",
    "IngestWorker",
    "RegionCompleteness",
    "StoredNotice",
    "create_router",
    "event_subscriptions",
    "subscriptions",
]
