"""Where this host keeps one region's broker: the settings of the ``potr broker`` and
``potr gateway`` commands (prefix ``POTR_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from contracts.topics import Region

__all__ = ["BrokerSiteSettings"]


class BrokerSiteSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="POTR_", extra="ignore")

    #: The region whose broker these commands manage.
    broker_region: Region
    #: The broker's directory: mosquitto.conf, passwd, acl, crl.pem, its pid file.
    broker_dir: Path
    #: The CA directory (``potr pki init``).
    pki_dir: Path
    #: How gateways reach the broker: TLS with passwords, and TLS with certificates.
    broker_url: str = "mqtts://127.0.0.1:8883"
    broker_cert_url: str = "mqtts://127.0.0.1:8884"

    @field_validator("broker_url", "broker_cert_url")
    @classmethod
    def _tls(cls, url: str) -> str:
        if not url.startswith("mqtts://"):
            raise ValueError(f"{url!r}: gateways connect with TLS only (mqtts://host:port)")
        return url
