"""The config service's settings (prefix ``POTR_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr

from cloud.settings import DatabaseSettings, MqttSettings
from contracts.topics import Region

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
    #: A newly provisioned gateway gets its site's grid-code config from the config loop
    #: without a person (ARCHITECTURE 114); off: its first config waits for one (tests
    #: whose subject is a hand-made first config).
    config_provision_new: bool = True
    #: Client id prefix of the config service's publisher (a suffix makes it unique).
    config_mqtt_client_id: str = "potr-config"
    #: The regions whose technicians' requests (``potr/v1/<region>/_tech/+/config_req``)
    #: this service answers; empty: none (no listener).
    config_tech_regions: list[Region] = Field(default_factory=lambda: list(Region))
    #: The broker identity the technician-request listener connects as (a ``_config/…``
    #: one of its own: the brokers bind client ids to usernames, so sharing the
    #: publisher's would make the two kick each other off). None: the publisher's
    #: username + ``-tech`` when it has one, else anonymous (development).
    config_tech_mqtt_username: str | None = None
    #: Its password (else the credentials file's entry for it).
    config_tech_mqtt_password: SecretStr | None = None

    def tech_listener_settings(self) -> ConfigSettings:
        """These settings as the technician-request listener connects."""
        user = self.config_tech_mqtt_username or (
            f"{self.mqtt_user}-tech" if self.mqtt_user else None
        )
        if user is None:
            return self
        return self.model_copy(
            update={"mqtt_username": user, "mqtt_password": self.config_tech_mqtt_password}
        )
