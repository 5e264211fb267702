"""Ingest: the single consumer of everything gateways send (see ``worker``).

Published interface: :class:`IngestWorker` and its :class:`IngestSettings`, the
:class:`DeviceDirectory` protocol (what it reads from the registry), the batch pipeline, and the
read side (:class:`CompletenessReader`, :func:`create_router` for the portal).
"""

from cloud.ingest.api import create_router
from cloud.ingest.coalesce import StoredNotice
from cloud.ingest.completeness import CompletenessReader, DayCompleteness, DeviceCompleteness
from cloud.ingest.pipeline import BatchOutcome, DeviceDirectory, IngestPipeline
from cloud.ingest.settings import IngestSettings
from cloud.ingest.worker import IngestStats, IngestWorker, subscriptions

__all__ = [
    "BatchOutcome",
    "CompletenessReader",
    "DayCompleteness",
    "DeviceCompleteness",
    "DeviceDirectory",
    "IngestPipeline",
    "IngestSettings",
    "IngestStats",
    "IngestWorker",
    "StoredNotice",
    "create_router",
    "subscriptions",
]
