"""Ingest: the single consumer of everything gateways send (see ``worker``).

Published interface: :class:`IngestWorker`, :func:`run_ingest`, the
:class:`DeviceDirectory` protocol (what it reads from the registry), the batch pipeline, and the
read side (:class:`CompletenessReader`, :func:`create_router` for the portal).
"""

from cloud.ingest.api import create_router
from cloud.ingest.coalesce import StoredNotice
from cloud.ingest.completeness import CompletenessReader, DayCompleteness, DeviceCompleteness
from cloud.ingest.pipeline import BatchOutcome, DeviceDirectory, IngestPipeline
from cloud.ingest.worker import IngestStats, IngestWorker, run_ingest, subscriptions

__all__ = [
    "BatchOutcome",
    "CompletenessReader",
    "DayCompleteness",
    "DeviceCompleteness",
    "DeviceDirectory",
    "IngestPipeline",
    "IngestStats",
    "IngestWorker",
    "StoredNotice",
    "create_router",
    "run_ingest",
    "subscriptions",
]
