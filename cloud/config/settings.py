"""The config service's settings (prefix ``POTR_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from cloud.settings import DatabaseSettings, MqttSettings

__all__ = ["ConfigSettings"]


class ConfigSettings(DatabaseSettings, MqttSettings):
    """Signing key, lifetimes of commands and configs, the publisher and its loops
    (``env`` comes with :class:`~cloud.settings.MqttSettings`)."""

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
