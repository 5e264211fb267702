"""The telemetry store's settings (prefix ``POTR_``): how batches are written, how long
each level is kept, when TimescaleDB compresses, how often the maintenance job runs."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from cloud.settings import DatabaseSettings

__all__ = ["StoreSettings", "WriteMode"]

#: ``copy``: binary COPY (the default; fastest on a real server); ``unnest``: one
#: ``INSERT … SELECT FROM unnest(arrays)`` per batch, for servers without
#: ``COPY FROM STDIN`` (PGlite).
WriteMode = Literal["copy", "unnest"]


class StoreSettings(DatabaseSettings):
    telemetry_write_mode: WriteMode = "copy"
    #: Days raw readings are kept (partitions or chunks older are dropped).
    telemetry_raw_retention_days: int = Field(default=90, ge=1, le=3_650)
    telemetry_5m_retention_days: int = Field(default=90, ge=1, le=3_650)
    telemetry_1h_retention_days: int = Field(default=730, ge=1, le=36_500)
    #: TimescaleDB compresses chunks older than this many days (plain: no compression).
    telemetry_compress_after_days: int = Field(default=7, ge=1, le=3_650)
    #: Seconds between two maintenance runs (one runner per database: advisory lock).
    telemetry_maintenance_interval_s: float = Field(default=60.0, gt=0, le=86_400)
    #: Seconds readings of a still-open 5-minute bucket may wait for it to close before
    #: the job computes their rollups and energy anyway (``rollups.split_open``): at
    #: saturation the open bucket would otherwise be read again at every run. 0: every
    #: run computes everything noted (rollups as fresh as the interval, at that cost).
    telemetry_open_bucket_wait_s: float = Field(default=300.0, ge=0, le=3_600)
    #: Whether each ingest worker schedules the maintenance in a thread of its own (one
    #: at a time runs it). ``potr ingest`` turns it off and runs the job in a process of
    #: its own at ``telemetry_maintenance_nice`` instead (``potr/ingest_workers.py``).
    telemetry_maintenance_in_worker: bool = True
    #: The niceness that process takes (0-19): under load the workers come first and the
    #: job's backlog waits, safely, in ``telemetry.dirty``.
    telemetry_maintenance_nice: int = Field(default=10, ge=0, le=19)
    #: Run TimescaleDB's policy jobs from the maintenance job (``CALL run_job``) instead
    #: of its background scheduler: for servers without one (PGlite in the tests).
    telemetry_run_policy_jobs: bool = False

    @model_validator(mode="after")
    def _coarser_kept_longer(self) -> StoreSettings:
        # A rollup outliving its source keeps answering; one dying first would leave a
        # hole the coarser level is made from.
        if not self.telemetry_5m_retention_days <= self.telemetry_1h_retention_days:
            raise ValueError(
                "POTR_TELEMETRY_1H_RETENTION_DAYS must be at least POTR_TELEMETRY_5M_RETENTION_DAYS"
            )
        return self
