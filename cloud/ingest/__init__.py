"""Ingest: the single consumer of everything gateways send (see ``worker``).

Published interface: :class:`IngestWorker` and its :class:`IngestSettings`, the batch
pipeline, :func:`event_subscriptions` (its handlers of the registry's gateway events, for
the composition root), and the read side (:class:`CompletenessReader`,
:func:`create_router` for the portal). Ingest calls no other service: it learns gateways
from the registry's events (``ingest.gateways``).
"""

from cloud.ingest.api import create_router
from cloud.ingest.coalesce import StoredNotice
from cloud.ingest.completeness import CompletenessReader, DayCompleteness, DeviceCompleteness
from cloud.ingest.handlers import event_subscriptions
from cloud.ingest.pipeline import BatchOutcome, IngestPipeline
from cloud.ingest.settings import IngestSettings
from cloud.ingest.worker import IngestStats, IngestWorker, subscriptions

__all__ = [
    "BatchOutcome",
    "CompletenessReader",
    "DayCompleteness",
    "DeviceCompleteness",
    "IngestPipeline",
    "IngestSettings",
    "IngestStats",
    "IngestWorker",
    "StoredNotice",
    "create_router",
    "event_subscriptions",
    "subscriptions",
]
