"""The ingest workers' settings (prefix ``POTR_``)."""

from __future__ import annotations

from pydantic import Field, field_validator

from cloud.settings import MqttSettings
from cloud.telemetry.settings import StoreSettings
from contracts.metrics import BY_NAME
from contracts.topics import Region

__all__ = ["ANNOUNCED_METRICS", "IngestSettings"]

#: The metrics whose stored values ``telemetry.received`` carries, for the alerts
#: service's threshold, battery-health and shortfall rules (ARCHITECTURE 76): every
#: metric a shipped rule names (a test holds the rule files to it). Gauges travel
#: sample by sample; counters only as each device's newest value of a message.
ANNOUNCED_METRICS: tuple[str, ...] = ("battery_soh_pct", "grid_hz", "grid_l1_v", "pv_wh")


class IngestSettings(StoreSettings, MqttSettings):
    """The consumer's MQTT session, batching, limits, the offline check and the day
    closing; the
    telemetry store it writes (and maintains: one worker at a time)."""

    #: Mosquitto/EMQX: True (``$share/ingest/...``); amqtt lacks ``$share``: False.
    mqtt_shared_subscription: bool = True
    #: Stable per worker, so the persistent session (and unacked messages) survive.
    mqtt_client_id: str = "potr-ingest-0"
    mqtt_session_expiry_s: int = Field(default=86_400, ge=0)
    #: MQTT 5 Receive Maximum: how many unacked QoS 1 messages the broker may send us.
    mqtt_receive_maximum: int = Field(default=1_000, ge=1, le=65_535)
    #: Only this region's topics (None = every region, as in the one-broker demo).
    ingest_region: Region | None = None

    ingest_batch_max: int = Field(default=500, ge=1)
    ingest_flush_ms: int = Field(default=200, ge=1)
    #: Flush early when no message arrived for this long (broker in-flight window full).
    ingest_idle_flush_ms: int = Field(default=20, ge=1)
    ingest_queue_max: int = Field(default=5_000, ge=1)
    #: Minimum seconds between two ``stored`` messages to one gateway.
    stored_interval_s: float = Field(default=1.0, ge=0)
    #: Readings further than this in the future are quarantined (dead-lettered).
    future_skew_s: float = Field(default=300, ge=0)
    #: ``potr ingest`` worker processes on the shared subscription (client ids
    #: ``<mqtt_client_id>-<n>``).
    ingest_workers: int = Field(default=1, ge=1, le=64)
    #: Seconds between offline checks (one worker at a time runs it: advisory lock).
    offline_check_interval_s: float = Field(default=10.0, gt=0)
    #: A gateway silent for this many of its declared publish intervals is offline.
    offline_silence_factor: float = Field(default=3.0, gt=0)
    #: A gateway's local day is closed (one ``device.day_completeness`` per device) this
    #: many seconds after it ended; data arriving within the grace still counts, later
    #: data is stored but not announced again. Checked with the offline check.
    completeness_close_grace_s: float = Field(default=3_600, ge=0)
    #: Local days closed per gateway per check round at most (catching up after an
    #: outage takes several rounds).
    completeness_close_max_days: int = Field(default=7, ge=1, le=31)

    # -- what the cloud checks that the broker cannot (issue 12; ARCHITECTURE decision 32)
    #: Seconds a worker trusts what it read of a gateway (region, enabled): a disabled
    #: (revoked) gateway is refused by every worker at most this long after ingest
    #: handles its ``gateway.updated``.
    ingest_gateway_cache_s: float = Field(default=10.0, ge=0)
    #: Larger payloads are dead-lettered unread (the broker's ``max_packet_size``).
    ingest_max_message_bytes: int = Field(default=256 * 1024, ge=1_024)
    #: Telemetry batches with more readings are dead-lettered (an agent sends one
    #: reading per device per poll cycle).
    ingest_max_readings: int = Field(default=5_000, ge=1)
    #: Device keys one gateway may get per UTC day (births and readings together);
    #: readings of devices beyond it are dead-lettered, and a birth lists only the
    #: devices that got a key.
    ingest_max_new_devices_per_day: int = Field(default=64, ge=0)
    #: Readings older than this many UTC days before today are dead-lettered: no day
    #: partition is ever created for them (the future side is ``future_skew_s``).
    ingest_partition_past_days: int = Field(default=400, ge=1, le=3_650)
    #: Bytes of a dead letter's payload kept (with the original size and SHA-256).
    ingest_dead_letter_prefix_bytes: int = Field(default=4_096, ge=0, le=1_048_576)
    #: Dead letters stored per source (gateway id of the topic) and minute, after a
    #: burst of ``ingest_dead_letter_source_burst``; beyond, they are counted, not stored.
    ingest_dead_letters_per_source_per_min: float = Field(default=1.0, gt=0)
    ingest_dead_letter_source_burst: int = Field(default=20, ge=1)
    #: Dead letters stored per second by one worker from all sources together, after a
    #: burst of ``ingest_dead_letter_burst`` (sprayed random gateway ids each start with
    #: a full bucket of their own: this bounds them all).
    ingest_dead_letters_per_s: float = Field(default=1.0, gt=0)
    ingest_dead_letter_burst: int = Field(default=200, ge=1)
    #: Sources with a bucket of their own (least recently used beyond this are forgotten).
    ingest_dead_letter_sources_max: int = Field(default=10_000, ge=1)
    #: Seconds between two log lines counting the dead letters not stored.
    ingest_dead_letter_summary_s: float = Field(default=60.0, gt=0)
    #: Metrics announced with their values in ``telemetry.received`` (see
    #: :data:`ANNOUNCED_METRICS`); add the metric of a regional rule here.
    ingest_announced_metrics: tuple[str, ...] = ANNOUNCED_METRICS

    @field_validator("ingest_announced_metrics")
    @classmethod
    def _catalogue_metrics(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(names) - BY_NAME.keys())
        if unknown:
            raise ValueError(f"not metrics of the catalogue: {unknown}")
        return tuple(sorted(set(names)))
