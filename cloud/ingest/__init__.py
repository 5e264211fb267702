"""Ingest: the single consumer of everything gateways send (see ``worker``).

Published interface: :class:`IngestWorker`, :func:`run_ingest`, the
:class:`DeviceDirectory` protocol it needs from the registry, and the batch pipeline.
"""

from cloud.ingest.coalesce import StoredNotice
from cloud.ingest.pipeline import BatchOutcome, DeviceDirectory, IngestPipeline
from cloud.ingest.worker import IngestStats, IngestWorker, run_ingest, subscriptions

__all__ = [
    "BatchOutcome",
    "DeviceDirectory",
    "IngestPipeline",
    "IngestStats",
    "IngestWorker",
    "StoredNotice",
    "run_ingest",
    "subscriptions",
]
