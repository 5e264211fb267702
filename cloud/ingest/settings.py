"""The ingest workers' settings (prefix ``POTR_``)."""

from __future__ import annotations

from pydantic import Field

from cloud.settings import DatabaseSettings, MqttSettings
from contracts.topics import Region

__all__ = ["IngestSettings"]


class IngestSettings(DatabaseSettings, MqttSettings):
    """The consumer's MQTT session, batching, limits, and the offline check."""

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
