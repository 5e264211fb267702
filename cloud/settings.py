"""The settings pieces several cloud services share (prefix ``POTR_``); no globals.

Each service owns its settings class (:class:`cloud.ingest.IngestSettings`,
:class:`cloud.config.ConfigSettings`, :class:`cloud.identity.TokenSettings`,
:class:`cloud.portal.ApiSettings`) and builds it from the pieces here by inheritance, so
the fields stay flat and keep their environment names (``POTR_DATABASE_URL``,
``POTR_MQTT_URL``, ...): one deployment environment feeds every process, and each
process reads only what it uses.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import unquote, urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DatabaseSettings", "DeploymentSettings", "MqttEndpoint", "MqttSettings"]

#: Every settings class reads ``POTR_<FIELD>`` and ignores the other services' variables.
POTR_ENV = SettingsConfigDict(env_prefix="POTR_", extra="ignore")


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


class DeploymentSettings(BaseSettings):
    """Which kind of deployment this is: production refuses dev secrets and demo keys."""

    model_config = POTR_ENV

    env: Literal["dev", "test", "production"] = "dev"


class DatabaseSettings(BaseSettings):
    """The service's PostgreSQL (each service its own schema in it)."""

    model_config = POTR_ENV

    database_url: str = "postgresql://postgres@127.0.0.1:5432/potr"
    #: Any statement running longer is cancelled by the server (0 = no limit), so a hung
    #: query cannot block the ingest writer or an API worker forever.
    db_statement_timeout_ms: int = Field(default=30_000, ge=0)


class MqttSettings(BaseSettings):
    """The region's broker, as any cloud client of it connects."""

    model_config = POTR_ENV

    mqtt_url: str = "mqtt://127.0.0.1:1883"
    mqtt_protocol: Literal["5", "3.1.1"] = "5"
    mqtt_keepalive_s: int = Field(default=30, ge=5)

    @field_validator("mqtt_url")
    @classmethod
    def _parses(cls, url: str) -> str:
        MqttEndpoint(url)
        return url

    @property
    def mqtt(self) -> MqttEndpoint:
        return MqttEndpoint(self.mqtt_url)
