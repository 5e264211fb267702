"""Identity's settings (prefix ``POTR_``): what a regional API verifies tokens with
(:class:`TokenSettings`), and what the identity service itself needs
(:class:`IdentitySettings`: signing key, PIN pepper, lifetimes, throttles, argon2id, SMTP),
and where ``potr identity-api`` relays its events (:class:`IdentityRelaySettings`).
Production refuses what only suits a laptop: no key, the dev pepper, plaintext SMTP to
another host."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BeforeValidator, Field, SecretStr, model_validator
from pydantic_settings import NoDecode

from cloud.identity.passwords import ARGON2_MEMORY_KIB, ARGON2_TIME_COST
from cloud.identity.tokens import MAX_ACCESS_TTL_S
from cloud.settings import DatabaseSettings, DeploymentSettings
from contracts.topics import Region

__all__ = [
    "DEV_PIN_PEPPER",
    "IdentityRelaySettings",
    "IdentitySettings",
    "SigningSettings",
    "SmtpSettings",
    "TokenSettings",
]

#: The pepper every dev checkout shares: refused outside dev and test.
DEV_PIN_PEPPER = "potr-dev-only-pin-pepper-do-not-use-in-production"
_LOOPBACK = ("127.0.0.1", "::1", "localhost")


class TokenSettings(DeploymentSettings):
    """How an API process verifies access tokens: the identity service's public key(s)
    (one PEM file; during a key rotation it holds the old and the new key)."""

    identity_public_key_file: Path | None = None

    @model_validator(mode="after")
    def _key_in_production(self) -> TokenSettings:
        if self.env == "production" and self.identity_public_key_file is None:
            raise ValueError(
                "POTR_IDENTITY_PUBLIC_KEY_FILE is not set: the API verifies every token with"
                " the identity service's public key"
            )
        return self


def _json_object(value: Any) -> Any:
    """The environment's text as a JSON object (empty: none); a ValueError that never
    quotes it (it carries passwords)."""
    if not isinstance(value, str):
        return value
    if not value.strip():
        return {}
    try:
        return json.loads(value)
    except ValueError:
        raise ValueError(
            'not JSON: give {"au": "amqp://…", "us": "amqp://…", "es": "amqp://…"}'
        ) from None


class IdentityRelaySettings(DeploymentSettings):
    """Where ``potr identity-api`` relays identity's ``user.*`` events: each to the
    RabbitMQ of the event's region (the user's home region), where that region's
    services (notify) learn people (ARCHITECTURE decision 152).

    ``POTR_IDENTITY_REGION_BUSES`` is JSON, ``{"au": "amqp://potr:…@au-host:5672/", …}``
    (a secret: the URLs carry the brokers' passwords). Unset: nothing is relayed — refused
    in production unless ``POTR_IDENTITY_RELAY_DISABLED=true`` says so on purpose (a
    deployment whose regions share identity's database and bus relays it there)."""

    identity_region_buses: Annotated[
        dict[Region, SecretStr], NoDecode, BeforeValidator(_json_object)
    ] = Field(default_factory=dict)
    identity_relay_disabled: bool = False

    @model_validator(mode="after")
    def _buses(self) -> IdentityRelaySettings:
        for region, url in self.identity_region_buses.items():
            # Never the value in the message: it carries a password.
            if urlsplit(url.get_secret_value()).scheme not in ("amqp", "amqps"):
                raise ValueError(
                    f"POTR_IDENTITY_REGION_BUSES[{region.value}] is not an amqp:// or amqps:// URL"
                )
        if self.env != "production" or self.identity_relay_disabled:
            return self
        missing = [r.value for r in Region if r not in self.identity_region_buses]
        if missing:
            raise ValueError(
                f"POTR_IDENTITY_REGION_BUSES has no bus for {', '.join(missing)}: those regions'"
                " services would never learn their users (set it, or"
                " POTR_IDENTITY_RELAY_DISABLED=true)"
            )
        return self

    def buses(self) -> dict[str, str]:
        """Region → AMQP URL of the regions to relay to (none when disabled)."""
        if self.identity_relay_disabled:
            return {}
        return {r.value: url.get_secret_value() for r, url in self.identity_region_buses.items()}


class SmtpSettings(DeploymentSettings):
    """Where password-reset mail goes: an SMTP relay (``smtplib``)."""

    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=25, ge=1, le=65_535)
    smtp_from: str = Field(default="PoTR <no-reply@potr.example>", max_length=254)
    #: Upgrade the connection with STARTTLS (required in production off loopback).
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout_s: float = Field(default=10.0, gt=0, le=120)

    @model_validator(mode="after")
    def _tls_off_loopback(self) -> SmtpSettings:
        if self.env == "production" and not self.smtp_starttls and self.smtp_host not in _LOOPBACK:
            raise ValueError(
                f"POTR_SMTP_HOST {self.smtp_host} without POTR_SMTP_STARTTLS: reset tokens"
                " would cross the network in clear (refused with POTR_ENV=production)"
            )
        return self


class SigningSettings(DeploymentSettings):
    """What mints access tokens (the identity service, ``potr token create``)."""

    #: Ed25519 private key (PEM) the access tokens are signed with (`potr keys generate`).
    identity_signing_key_file: Path | None = None


class IdentitySettings(SigningSettings, SmtpSettings, DatabaseSettings):
    """The identity service: signing key, PIN pepper, token lifetimes (s), throttles."""

    #: The PIN pepper, given directly or (preferred) in a file; >= 32 bytes in production.
    identity_pin_pepper: SecretStr | None = None
    identity_pin_pepper_file: Path | None = None

    identity_access_ttl_s: int = Field(default=MAX_ACCESS_TTL_S, ge=30, le=MAX_ACCESS_TTL_S)
    #: A refresh token's life; each use issues a new one (sliding) …
    identity_refresh_ttl_s: int = Field(default=14 * 86_400, ge=60, le=90 * 86_400)
    #: … within the session's fixed life from its login.
    identity_session_max_s: int = Field(default=30 * 86_400, ge=60, le=365 * 86_400)
    identity_reset_ttl_s: int = Field(default=1800, ge=60, le=3600)
    #: Where ``potr identity-api`` listens (the API gateway sends /api/v1/auth/ here).
    identity_api_host: str = "127.0.0.1"
    identity_api_port: int = Field(default=8100, ge=1, le=65535)
    #: Proxies (the API gateway) whose X-Forwarded-For is believed, comma-separated:
    #: throttles then count the client's address, not the gateway's.
    identity_trusted_proxies: str = Field(default="127.0.0.1", max_length=500)
    #: The reset link in the mail: this followed by the token.
    identity_reset_url: str = Field(
        default="http://127.0.0.1:8000/reset-password#token=", max_length=500
    )

    #: Failed guesses per identifier (e-mail, employee number) before a lock-out.
    identity_max_attempts: int = Field(default=5, ge=1, le=100)
    #: Attempts per client address (IPv6: per /64) before it is throttled.
    identity_address_max_attempts: int = Field(default=50, ge=1, le=100_000)
    identity_attempt_window_s: int = Field(default=900, ge=1, le=86_400)
    #: The first lock-out; each following one doubles, up to the maximum.
    identity_lockout_s: int = Field(default=900, ge=1, le=86_400)
    identity_max_lockout_s: int = Field(default=86_400, ge=1, le=7 * 86_400)
    #: Reset mails per e-mail address per window (mail bombing).
    identity_reset_max_requests: int = Field(default=3, ge=1, le=100)

    identity_argon2_memory_kib: int = Field(default=ARGON2_MEMORY_KIB, ge=ARGON2_MEMORY_KIB)
    identity_argon2_time_cost: int = Field(default=ARGON2_TIME_COST, ge=ARGON2_TIME_COST)
    #: Hashes computed at once per process (each holds its memory while it runs).
    identity_hash_concurrency: int = Field(default=4, ge=1, le=64)
    #: How often ``potr identity-api`` deletes counters and tokens that ended over a day ago.
    identity_purge_interval_s: int = Field(default=3600, ge=1, le=86_400)

    @model_validator(mode="after")
    def _production_secrets(self) -> IdentitySettings:
        if self.identity_max_lockout_s < self.identity_lockout_s:
            raise ValueError("POTR_IDENTITY_MAX_LOCKOUT_S is below POTR_IDENTITY_LOCKOUT_S")
        if self.env != "production":
            return self
        if self.identity_signing_key_file is None:
            raise ValueError("POTR_IDENTITY_SIGNING_KEY_FILE is not set")
        if self.identity_pin_pepper is None and self.identity_pin_pepper_file is None:
            raise ValueError(
                "POTR_IDENTITY_PIN_PEPPER_FILE is not set: PINs are peppered with a secret"
                " kept out of the database (openssl rand -base64 48 > FILE)"
            )
        return self

    def pin_pepper(self) -> bytes:
        """The pepper (read from its file now); the dev pepper only in dev and test."""
        if self.identity_pin_pepper_file is not None:
            pepper = self.identity_pin_pepper_file.read_bytes().strip()
        elif self.identity_pin_pepper is not None:
            pepper = self.identity_pin_pepper.get_secret_value().encode()
        else:
            pepper = DEV_PIN_PEPPER.encode()
        if self.env == "production" and (pepper == DEV_PIN_PEPPER.encode() or len(pepper) < 32):
            raise ValueError("the PIN pepper must be at least 32 bytes and not the dev pepper")
        return pepper
