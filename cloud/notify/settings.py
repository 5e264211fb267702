"""The notify service's settings (prefix ``POTR_``): its database, the SMTP relay (the
same ``POTR_SMTP_*`` variables identity reads: one relay per deployment), the portal's
address for links in mail, and the webhook and delivery limits.

Production refuses what only suits a laptop: plaintext SMTP to another host, plain
``http://`` webhooks, and letting webhooks reach loopback or link-local addresses (the
cloud's metadata service lives at 169.254.169.254).
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator

from cloud.adapters.smtp import SmtpRelay
from cloud.notify.webhooks import IPNetwork, RetryPolicy, parse_networks
from cloud.settings import DatabaseSettings, DeploymentSettings

__all__ = ["NotifySettings"]

_LOOPBACK = ("127.0.0.1", "::1", "localhost")
_NEVER_IN_PRODUCTION = (
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("169.254.0.0/16"),
    ipaddress.ip_network("::1/128"),
    ipaddress.ip_network("fe80::/10"),
)


class NotifySettings(DeploymentSettings, DatabaseSettings):
    """What the notify service and its delivery worker need."""

    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=25, ge=1, le=65_535)
    smtp_from: str = Field(default="PoTR <no-reply@potr.example>", max_length=254)
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout_s: float = Field(default=10.0, gt=0, le=120)

    #: The portal's public address: mail links are this plus the notification's path.
    notify_portal_url: str = Field(default="http://127.0.0.1:8000", max_length=300)
    #: The portal page where people change their notification settings (a path).
    notify_settings_path: str = Field(default="/settings/notifications", max_length=200)

    #: Networks webhooks may reach although they are not public, comma-separated
    #: (``127.0.0.0/8,::1`` in tests; an internal receiver's subnet in production).
    notify_webhook_allowed_networks: str = Field(default="", max_length=2000)
    #: Allow ``http://`` webhook URLs (never in production: payloads name people's sites).
    notify_webhook_allow_http: bool = False
    #: A CA file webhook receivers' certificates are verified with (else the system's).
    notify_webhook_ca_file: Path | None = None
    #: Connect, write and read timeout of one webhook request.
    notify_webhook_timeout_s: float = Field(default=10.0, gt=0, le=60)
    #: Webhook requests in flight at once per receiving host and port.
    notify_webhook_concurrency: int = Field(default=4, ge=1, le=64)
    #: Mails in flight at once through the relay.
    notify_smtp_concurrency: int = Field(default=4, ge=1, le=64)

    #: Retries: the first waits 15..30 s, each doubles, up to the cap; then failed.
    notify_retry_base_s: float = Field(default=30.0, gt=0, le=3600)
    notify_retry_cap_s: float = Field(default=3600.0, gt=0, le=86_400)
    notify_max_attempts: int = Field(default=8, ge=1, le=50)
    #: One attempt end to end (DNS, connect, send, answer) gives up after this.
    notify_attempt_timeout_s: float = Field(default=30.0, gt=0, le=300)
    #: A claimed delivery is another worker's to retry after this (a crashed worker's).
    notify_lease_s: float = Field(default=120.0, gt=0, le=3600)
    #: Deliveries one ``deliver_due`` looks at.
    notify_batch: int = Field(default=200, ge=1, le=10_000)

    @field_validator("notify_webhook_allowed_networks")
    @classmethod
    def _networks_parse(cls, value: str) -> str:
        parse_networks(value)
        return value

    @model_validator(mode="after")
    def _coherent(self) -> NotifySettings:
        if self.notify_retry_cap_s < self.notify_retry_base_s:
            raise ValueError("POTR_NOTIFY_RETRY_CAP_S is below POTR_NOTIFY_RETRY_BASE_S")
        if self.notify_lease_s < self.notify_attempt_timeout_s + 30:
            raise ValueError(
                "POTR_NOTIFY_LEASE_S must exceed POTR_NOTIFY_ATTEMPT_TIMEOUT_S by 30 s or more:"
                " a delivery still being sent would be sent again by another worker"
            )
        if self.env != "production":
            return self
        if not self.smtp_starttls and self.smtp_host not in _LOOPBACK:
            raise ValueError(
                f"POTR_SMTP_HOST {self.smtp_host} without POTR_SMTP_STARTTLS: mail would cross"
                " the network in clear (refused with POTR_ENV=production)"
            )
        if self.notify_webhook_allow_http:
            raise ValueError("POTR_NOTIFY_WEBHOOK_ALLOW_HTTP is refused with POTR_ENV=production")
        for net in self.webhook_allowed_networks:
            if any(net.overlaps(bad) for bad in _NEVER_IN_PRODUCTION if bad.version == net.version):
                raise ValueError(
                    f"POTR_NOTIFY_WEBHOOK_ALLOWED_NETWORKS: {net} reaches loopback or link-local"
                    " addresses (refused with POTR_ENV=production)"
                )
        return self

    @property
    def webhook_allowed_networks(self) -> tuple[IPNetwork, ...]:
        return parse_networks(self.notify_webhook_allowed_networks)

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            base_s=self.notify_retry_base_s,
            cap_s=self.notify_retry_cap_s,
            max_attempts=self.notify_max_attempts,
        )

    @property
    def smtp_relay(self) -> SmtpRelay:
        return SmtpRelay(
            host=self.smtp_host,
            port=self.smtp_port,
            starttls=self.smtp_starttls,
            username=self.smtp_username,
            password=self.smtp_password.get_secret_value() if self.smtp_password else None,
            timeout_s=self.smtp_timeout_s,
        )

    @property
    def settings_url(self) -> str:
        return self.notify_portal_url.rstrip("/") + self.notify_settings_path

    def portal_link(self, path: str | None) -> str:
        """The absolute URL of a portal path (empty for none)."""
        return self.notify_portal_url.rstrip("/") + path if path else ""
