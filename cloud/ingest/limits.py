"""The bounds ingest enforces on what gateways send (issue 12), as one value the
pipeline takes: validation bounds, the new-device cap, the partition window, dead-letter
size and rate — and the metrics whose values it announces. Built from
:class:`IngestSettings` by the worker; tests build their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cloud.ingest.deadletters import LimiterConfig
from cloud.ingest.settings import ANNOUNCED_METRICS, IngestSettings
from cloud.ingest.validate import Bounds

__all__ = ["IngestLimits"]


@dataclass(frozen=True, slots=True)
class IngestLimits:
    """Defaults are :class:`IngestSettings`' defaults."""

    bounds: Bounds = field(default_factory=Bounds)
    #: Seconds a known gateway's region and enabled flag are trusted without reading.
    gateway_cache_s: float = 10.0
    #: New device keys per gateway and UTC day.
    max_new_devices_per_day: int = 64
    #: Bytes of a dead letter's payload stored.
    dead_letter_prefix_bytes: int = 4_096
    dead_letter_rate: LimiterConfig = field(default_factory=LimiterConfig)
    #: Metrics whose stored values ``telemetry.received`` carries (for alert rules).
    announced_metrics: frozenset[str] = frozenset(ANNOUNCED_METRICS)

    @classmethod
    def from_settings(cls, s: IngestSettings) -> IngestLimits:
        return cls(
            bounds=Bounds(
                future_skew_s=s.future_skew_s,
                max_bytes=s.ingest_max_message_bytes,
                max_readings=s.ingest_max_readings,
                past_days=s.ingest_partition_past_days,
            ),
            gateway_cache_s=s.ingest_gateway_cache_s,
            max_new_devices_per_day=s.ingest_max_new_devices_per_day,
            dead_letter_prefix_bytes=s.ingest_dead_letter_prefix_bytes,
            dead_letter_rate=LimiterConfig(
                per_source_per_s=s.ingest_dead_letters_per_source_per_min / 60,
                source_burst=s.ingest_dead_letter_source_burst,
                total_per_s=s.ingest_dead_letters_per_s,
                total_burst=s.ingest_dead_letter_burst,
                sources_max=s.ingest_dead_letter_sources_max,
                summary_s=s.ingest_dead_letter_summary_s,
            ),
            announced_metrics=frozenset(s.ingest_announced_metrics),
        )
