"""Cloud settings from the environment (prefix ``POTR_``); no globals, passed in."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from contracts.topics import Region

#: The secret every dev checkout shares: accepted only by a dev/test API on loopback.
DEV_JWT_SECRET = "potr-dev-only-jwt-secret-do-not-use-in-production"
#: Longest lifetime of a bearer token (settings and ``potr token create`` alike).
MAX_JWT_TTL_S = 3600


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class MqttEndpoint:
    """``mqtt://[user:pass@]host:port`` split into its parts."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "tcp"):
            raise ValueError(f"mqtt_url {url!r}: scheme must be mqtt://")
        if not parts.hostname:
            raise ValueError(f"mqtt_url {url!r}: no host")
        self.host: str = parts.hostname
        self.port: int = parts.port or 1883
        self.username: str | None = unquote(parts.username) if parts.username else None
        self.password: str | None = unquote(parts.password) if parts.password else None


class CloudSettings(BaseSettings):
    """Everything a cloud process needs to know about its servers and limits."""

    model_config = SettingsConfigDict(env_prefix="POTR_", extra="ignore")

    env: Literal["dev", "test", "production"] = "dev"
    database_url: str = "postgresql://postgres@127.0.0.1:5432/potr"

    mqtt_url: str = "mqtt://127.0.0.1:1883"
    mqtt_protocol: Literal["5", "3.1.1"] = "5"
    #: Mosquitto/EMQX: True (``$share/ingest/...``); amqtt lacks ``$share``: False.
    mqtt_shared_subscription: bool = True
    #: Stable per worker, so the persistent session (and unacked messages) survive.
    mqtt_client_id: str = "potr-ingest-0"
    mqtt_session_expiry_s: int = Field(default=86_400, ge=0)
    mqtt_keepalive_s: int = Field(default=30, ge=5)
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

    #: Any statement running longer is cancelled by the server (0 = no limit), so a hung
    #: query cannot block the ingest writer or an API worker forever.
    db_statement_timeout_ms: int = Field(default=30_000, ge=0)

    jwt_secret: SecretStr = SecretStr(DEV_JWT_SECRET)
    jwt_ttl_s: int = Field(default=900, ge=1, le=MAX_JWT_TTL_S)

    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=0, le=65_535)

    #: The cloud's Ed25519 private key (PEM) that signs commands and configs; the config
    #: service refuses to start without one, and with the demo key when env=production.
    signing_key_file: Path | None = None
    #: Seconds a command stays valid when the caller names no lifetime.
    command_lifetime_s: float = Field(default=300.0, gt=0, le=7 * 86_400)
    #: A command with no final ack by ``expires_at`` + this is marked expired (clock skew
    #: and the ack's trip through the gateway's buffer and ingest).
    command_expiry_grace_s: float = Field(default=10.0, ge=0)
    #: Seconds a config document stays valid (``not_after``) after it is signed.
    config_lifetime_s: float = Field(default=30 * 86_400.0, gt=0)
    #: A gateway's current config is re-signed (a new version, same settings) this long
    #: before its ``not_after``.
    config_refresh_margin_s: float = Field(default=7 * 86_400.0, gt=0)
    #: Seconds between the config service's rounds: publish what was not published
    #: (broker away at request time), expire overdue commands.
    config_republish_interval_s: float = Field(default=5.0, gt=0)
    #: Seconds to wait for the broker's PUBACK of one cmd/config publish.
    config_publish_timeout_s: float = Field(default=5.0, gt=0)
    #: Client id prefix of the config service's publisher (a suffix makes it unique).
    config_mqtt_client_id: str = "potr-config"

    @model_validator(mode="after")
    def _refuse_dev_secrets_in_production(self) -> CloudSettings:
        secret = self.jwt_secret.get_secret_value()
        # Fail closed: the shared dev secret only where nobody else can reach the API.
        if secret == DEV_JWT_SECRET and not (
            self.env in ("dev", "test") and is_loopback(self.api_host)
        ):
            raise ValueError(
                "POTR_JWT_SECRET is the dev secret; it is accepted only with POTR_ENV=dev or"
                f" test and a loopback POTR_API_HOST (env={self.env}, api_host={self.api_host})"
            )
        if self.env == "production" and len(secret) < 32:
            raise ValueError("POTR_JWT_SECRET must be at least 32 characters in production")
        MqttEndpoint(self.mqtt_url)
        return self

    @property
    def mqtt(self) -> MqttEndpoint:
        return MqttEndpoint(self.mqtt_url)
