"""The brokers' identities (``registry.broker_identities``): who may connect to each
region's broker and with which credential. Secrets never reach this module, only the
hashes the brokers verify; the composition root renders the brokers' files from
:meth:`BrokerIdentities.for_region`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from cloud.adapters.postgres import (
    Connection,
    ConnectionPool,
    ForeignKeyViolation,
    UniqueViolation,
    dict_row,
)
from cloud.registry.service import ConflictError, NotFoundError
from contracts.identities import IdentityKind, parse_username
from contracts.topics import Region

__all__ = ["BrokerIdentities", "BrokerIdentityRecord", "Credential"]

Credential = Literal["password", "certificate"]

_COLS = (
    "username, kind, region, gateway_id, credential, mosquitto_hash, amqtt_hash,"
    " created_at, rotated_at, revoked_at"
)


class BrokerIdentityRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    username: str
    kind: IdentityKind
    region: Region
    gateway_id: str | None
    credential: Credential
    mosquitto_hash: str | None
    amqtt_hash: str | None
    created_at: datetime
    rotated_at: datetime | None
    revoked_at: datetime | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


class BrokerIdentities:
    """Add, rotate, revoke and list broker identities; thread-safe (pooled)."""

    def __init__(self, pool: ConnectionPool[Connection[Any]]) -> None:
        self._pool = pool

    def add(
        self,
        username: str,
        region: Region | str,
        credential: Credential,
        *,
        hashes: tuple[str, str] | None = None,
    ) -> BrokerIdentityRecord:
        """Record a new identity; ``hashes`` = (Mosquitto, amqtt) for a password one.
        A gateway's username is its id and must be a registered gateway."""
        kind, _ = parse_username(username)
        if (credential == "password") != (hashes is not None):
            raise ValueError("a password identity needs its hashes, a certificate none")
        mosq, amqtt = hashes if hashes is not None else (None, None)
        gateway_id = username if kind is IdentityKind.GATEWAY else None
        params = (username, kind.value, Region(region).value, gateway_id, credential, mosq, amqtt)
        with self._pool.connection() as conn:
            try:
                row = _fetch(
                    conn,
                    "INSERT INTO registry.broker_identities (username, kind, region,"
                    " gateway_id, credential, mosquitto_hash, amqtt_hash)"
                    f" VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING {_COLS}",
                    params,
                )
            except UniqueViolation:
                raise ConflictError(f"broker identity {username!r} already exists") from None
            except ForeignKeyViolation:
                raise NotFoundError(f"gateway {username!r} is not registered") from None
        assert row is not None
        return row

    def get(self, username: str) -> BrokerIdentityRecord | None:
        with self._pool.connection() as conn:
            return _fetch(
                conn,
                f"SELECT {_COLS} FROM registry.broker_identities WHERE username = %s",
                (username,),
            )

    def set_password(self, username: str, hashes: tuple[str, str]) -> BrokerIdentityRecord:
        """Replace a live identity's password hashes (rotation; Mosquitto keeps one hash
        per user, so the old password stops working at the next reload)."""
        with self._pool.connection() as conn:
            row = _fetch(
                conn,
                "UPDATE registry.broker_identities SET credential = 'password',"
                " mosquitto_hash = %s, amqtt_hash = %s, rotated_at = now()"
                f" WHERE username = %s AND revoked_at IS NULL RETURNING {_COLS}",
                (*hashes, username),
            )
        if row is None:
            raise NotFoundError(f"no live broker identity {username!r}")
        return row

    def revoke(self, username: str) -> BrokerIdentityRecord:
        """Mark revoked (idempotent: a second call keeps the first time)."""
        with self._pool.connection() as conn:
            row = _fetch(
                conn,
                "UPDATE registry.broker_identities"
                " SET revoked_at = coalesce(revoked_at, now())"
                f" WHERE username = %s RETURNING {_COLS}",
                (username,),
            )
        if row is None:
            raise NotFoundError(f"no broker identity {username!r}")
        return row

    def for_region(self, region: Region | str) -> list[BrokerIdentityRecord]:
        """Every identity of ``region``, revoked ones included (the ACL blocks revoked
        certificates), ordered by username."""
        with self._pool.connection() as conn:
            rows = (
                conn.cursor(row_factory=dict_row)
                .execute(
                    f"SELECT {_COLS} FROM registry.broker_identities WHERE region = %s"
                    " ORDER BY username",
                    (Region(region).value,),
                )
                .fetchall()
            )
        return [BrokerIdentityRecord.model_validate(r) for r in rows]


def _fetch(conn: Connection[Any], sql: str, params: tuple[Any, ...]) -> BrokerIdentityRecord | None:
    row = conn.cursor(row_factory=dict_row).execute(sql, params).fetchone()
    return BrokerIdentityRecord.model_validate(row) if row is not None else None
