"""The settings pieces several cloud services share (prefix ``POTR_``); no globals.

Each service owns its settings class (:class:`cloud.ingest.IngestSettings`,
:class:`cloud.config.ConfigSettings`, :class:`cloud.identity.TokenSettings`,
:class:`cloud.portal.ApiSettings`) and builds it from the pieces here by inheritance, so
the fields stay flat and keep their environment names (``POTR_DATABASE_URL``,
``POTR_MQTT_URL``, ...): one deployment environment feeds every process, and each
process reads only what it uses.

Secrets never reach a log or a terminal: passwords are ``SecretStr``; a URL that may
carry one shows in ``repr()`` as :func:`redact_url` makes it; and a refused setting's
error names the field and the rule, never the value (``hide_input_in_errors``).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from cloud.credentials import CredentialsError, read_credentials

__all__ = [
    "CredentialsError",
    "DatabaseSettings",
    "DeploymentSettings",
    "MqttEndpoint",
    "MqttSettings",
    "redact_url",
]

#: Every settings class reads ``POTR_<FIELD>`` and ignores the other services' variables;
#: a refusal never echoes the values it was given (they may hold a password).
POTR_ENV = SettingsConfigDict(env_prefix="POTR_", extra="ignore", hide_input_in_errors=True)

#: URL scheme → (TLS, default port).
_MQTT_SCHEMES = {
    "mqtt": (False, 1883),
    "tcp": (False, 1883),
    "mqtts": (True, 8883),
    "ssl": (True, 8883),
}
#: Query parameters of a database URL that hold a secret (libpq's names).
_SECRET_PARAMS = {"password", "sslpassword"}


def redact_url(url: str) -> str:
    """``url`` without its password: ``scheme://user@host:port/path`` (query parameters
    holding one dropped too), for logs and terminals. A libpq keyword string
    (``host=... password=...``) gets its password replaced by ``***``."""
    if "://" not in url:
        return " ".join(
            f"{w.split('=', 1)[0]}=***" if w.split("=", 1)[0] in _SECRET_PARAMS else w
            for w in url.split()
        )
    parts = urlsplit(url)
    if parts.password is None and not _SECRET_PARAMS & {k for k, _ in parse_qsl(parts.query)}:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"  # IPv6 literal
    netloc = (f"{parts.username}@" if parts.username else "") + host
    if parts.port is not None:
        netloc += f":{parts.port}"
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k not in _SECRET_PARAMS])
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


class _PotrSettings(BaseSettings):
    """Shared base: ``repr()`` (and so any log of a settings object) shows URLs redacted."""

    model_config = POTR_ENV

    def __repr_args__(self) -> Iterable[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            yield name, redact_url(value) if isinstance(value, str) and "://" in value else value


class MqttEndpoint:
    """``mqtt[s]://[user[:pass]@]host[:port]`` split into its parts (``mqtts``: TLS,
    port 8883 by default; ``mqtt``: plaintext, 1883)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in _MQTT_SCHEMES:
            raise ValueError(f"mqtt_url {redact_url(url)!r}: scheme must be mqtt:// or mqtts://")
        if not parts.hostname:
            raise ValueError(f"mqtt_url {redact_url(url)!r}: no host")
        self.tls, default_port = _MQTT_SCHEMES[parts.scheme]
        self.host: str = parts.hostname
        self.port: int = parts.port or default_port
        self.username: str | None = unquote(parts.username) if parts.username else None
        self.password: SecretStr | None = (
            SecretStr(unquote(parts.password)) if parts.password else None
        )

    @property
    def redacted(self) -> str:
        """``mqtts://user@host:port``: how logs and terminals name it."""
        user = f"{self.username}@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"

    def __repr__(self) -> str:
        return f"MqttEndpoint({self.redacted!r})"


class DeploymentSettings(_PotrSettings):
    """Which kind of deployment this is: production refuses dev secrets and demo keys."""

    env: Literal["dev", "test", "production"] = "dev"


class DatabaseSettings(_PotrSettings):
    """The service's PostgreSQL (each service its own schema in it)."""

    database_url: str = "postgresql://postgres@127.0.0.1:5432/potr"
    #: Any statement running longer is cancelled by the server (0 = no limit), so a hung
    #: query cannot block the ingest writer or an API worker forever.
    db_statement_timeout_ms: int = Field(default=30_000, ge=0)

    @property
    def database_url_redacted(self) -> str:
        return redact_url(self.database_url)


class MqttSettings(DeploymentSettings):
    """The region's broker, as any cloud client of it connects.

    Production (``POTR_ENV=production``) refuses plaintext ``mqtt://``, ``mqtts://``
    without the broker's CA (``POTR_MQTT_CA_FILE``), and a password in the URL (it ends
    up in process listings and shell histories): give it in ``POTR_MQTT_PASSWORD`` or
    the credentials file.
    """

    mqtt_url: str = "mqtt://127.0.0.1:1883"
    mqtt_protocol: Literal["5", "3.1.1"] = "5"
    mqtt_keepalive_s: int = Field(default=30, ge=5)
    #: The identity this process connects as (else the URL's user, if any).
    mqtt_username: str | None = None
    #: That identity's password (else the credentials file's entry, else the URL's).
    mqtt_password: SecretStr | None = None
    #: ``username: password`` YAML written 0600 by provisioning (:mod:`cloud.credentials`);
    #: how ``potr ingest`` workers find their own passwords.
    mqtt_credentials_file: Path | None = None
    #: The CA that signed the broker's certificate (PEM); without it, the system's CAs.
    mqtt_ca_file: Path | None = None
    #: A client certificate and its key (PEM): the alternative to a password.
    mqtt_cert_file: Path | None = None
    mqtt_key_file: Path | None = None

    @field_validator("mqtt_url")
    @classmethod
    def _parses(cls, url: str) -> str:
        MqttEndpoint(url)
        return url

    @model_validator(mode="after")
    def _refuse_insecure(self) -> MqttSettings:
        endpoint = self.mqtt
        if self.mqtt_password is not None and self.mqtt_user is None:
            raise ValueError("POTR_MQTT_PASSWORD is set but no POTR_MQTT_USERNAME")
        if (self.mqtt_cert_file is None) != (self.mqtt_key_file is None):
            raise ValueError("POTR_MQTT_CERT_FILE and POTR_MQTT_KEY_FILE go together")
        tls_files = (self.mqtt_ca_file, self.mqtt_cert_file, self.mqtt_key_file)
        if not endpoint.tls and any(f is not None for f in tls_files):
            raise ValueError(
                f"POTR_MQTT_URL {endpoint.redacted} is plaintext but TLS files are given:"
                " use mqtts://"
            )
        if self.env != "production":
            return self
        if not endpoint.tls:
            raise ValueError(
                f"POTR_MQTT_URL {endpoint.redacted} is plaintext mqtt://, refused with"
                " POTR_ENV=production: use mqtts:// and POTR_MQTT_CA_FILE"
            )
        if self.mqtt_ca_file is None:
            raise ValueError(
                "POTR_MQTT_CA_FILE is not set: with POTR_ENV=production the broker is"
                " verified against the CA it was given, not the system's"
            )
        if endpoint.password is not None:
            raise ValueError(
                "POTR_MQTT_URL carries a password, refused with POTR_ENV=production: put it"
                " in POTR_MQTT_PASSWORD or POTR_MQTT_CREDENTIALS_FILE"
            )
        return self

    @property
    def mqtt(self) -> MqttEndpoint:
        return MqttEndpoint(self.mqtt_url)

    @property
    def mqtt_user(self) -> str | None:
        """The username this process connects as."""
        return self.mqtt_username or self.mqtt.username

    def mqtt_credentials(self) -> tuple[str | None, SecretStr | None]:
        """``(username, password)`` to connect with, read now (a rotated credentials
        file is picked up at the next start). The password is the credentials file's
        entry for the username, else ``mqtt_password``, else the URL's when the URL's
        user is the one connecting. Raises :class:`CredentialsError` when a credentials
        file is set but unreadable, or holds no entry and no other password is given."""
        user = self.mqtt_user
        if user is None:
            return None, None
        if self.mqtt_credentials_file is not None:
            passwords = read_credentials(self.mqtt_credentials_file)
            if user in passwords:
                return user, passwords[user]
        endpoint = self.mqtt
        password = self.mqtt_password or (endpoint.password if endpoint.username == user else None)
        if password is None and self.mqtt_credentials_file is not None:
            raise CredentialsError(f"{self.mqtt_credentials_file}: no password for {user}")
        return user, password
