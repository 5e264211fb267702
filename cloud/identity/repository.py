"""Identity SQL (schema ``identity``); every function takes a connection in a transaction."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from cloud.adapters.postgres import Connection, Jsonb, dict_row, sql
from cloud.identity.logic import ThrottleState
from cloud.identity.models import ApiKey, AuditEntry, User

_USER_COLS = (
    "id, email, display_name, role, home_region, account_id, employee_no, broker_username,"
    " disabled_at, created_at, updated_at"
)
_KEY_COLS = "id, user_id, name, scopes, created_at, expires_at, last_used_at, revoked_at"
#: Columns ``update_user`` may set (never hashes, ids or timestamps from a request).
_PATCHABLE = frozenset({"display_name", "role", "home_region", "account_id"})


@dataclass(frozen=True)
class UserRecord:
    """A user with their stored hashes (never leaves the service)."""

    user: User
    password_hash: str | None
    pin_hash: str | None


@dataclass(frozen=True)
class RefreshRecord:
    token_hash: bytes
    family_id: UUID
    user_id: str
    expires_at: datetime
    family_expires_at: datetime
    used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class ResetRecord:
    user_id: str
    expires_at: datetime
    used_at: datetime | None


@dataclass(frozen=True)
class KeyRecord:
    key: ApiKey
    secret_hash: bytes


def _one(conn: Connection[Any], query: str, params: Sequence[Any] | Mapping[str, Any]) -> Any:
    return conn.cursor(row_factory=dict_row).execute(query, params).fetchone()


def _record(row: dict[str, Any] | None) -> UserRecord | None:
    if row is None:
        return None
    password_hash, pin_hash = row.pop("password_hash"), row.pop("pin_hash")
    return UserRecord(User.model_validate(row), password_hash, pin_hash)


# -- users ----------------------------------------------------------------------------------
def insert_user(
    conn: Connection[Any],
    fields: Mapping[str, Any],
    *,
    password_hash: str | None,
    pin_hash: str | None,
    now: datetime,
) -> User:
    row = _one(
        conn,
        "INSERT INTO identity.users (id, email, display_name, role, home_region, account_id,"
        " employee_no, broker_username, password_hash, pin_hash, created_at, updated_at)"
        " VALUES (%(id)s, %(email)s, %(display_name)s, %(role)s, %(home_region)s,"
        " %(account_id)s, %(employee_no)s, %(broker_username)s, %(password_hash)s,"
        f" %(pin_hash)s, %(now)s, %(now)s) RETURNING {_USER_COLS}",
        {**fields, "password_hash": password_hash, "pin_hash": pin_hash, "now": now},
    )
    return User.model_validate(row)


def get_user(conn: Connection[Any], user_id: str, *, lock: bool = False) -> UserRecord | None:
    suffix = " FOR UPDATE" if lock else ""
    return _record(
        _one(
            conn,
            f"SELECT {_USER_COLS}, password_hash, pin_hash FROM identity.users"
            f" WHERE id = %s{suffix}",
            (user_id,),
        )
    )


def find_by_email(conn: Connection[Any], email: str) -> UserRecord | None:
    return _record(
        _one(
            conn,
            f"SELECT {_USER_COLS}, password_hash, pin_hash FROM identity.users"
            " WHERE lower(email) = lower(%s)",
            (email,),
        )
    )


def find_by_employee_no(conn: Connection[Any], employee_no: str) -> UserRecord | None:
    return _record(
        _one(
            conn,
            f"SELECT {_USER_COLS}, password_hash, pin_hash FROM identity.users"
            " WHERE employee_no = %s",
            (employee_no,),
        )
    )


def list_users(
    conn: Connection[Any], *, role: str | None, region: str | None, limit: int, offset: int
) -> list[User]:
    rows = (
        conn.cursor(row_factory=dict_row)
        .execute(
            f"SELECT {_USER_COLS} FROM identity.users"
            " WHERE (%(role)s::text IS NULL OR role = %(role)s)"
            " AND (%(region)s::text IS NULL OR home_region = %(region)s)"
            " ORDER BY created_at, id LIMIT %(limit)s OFFSET %(offset)s",
            {"role": role, "region": region, "limit": limit, "offset": offset},
        )
        .fetchall()
    )
    return [User.model_validate(r) for r in rows]


def update_user(
    conn: Connection[Any], user_id: str, changes: Mapping[str, Any], now: datetime
) -> User | None:
    unknown = set(changes) - _PATCHABLE
    if unknown:
        raise ValueError(f"not patchable: {sorted(unknown)}")
    sets = [sql.SQL("{} = {}").format(sql.Identifier(k), sql.Placeholder(k)) for k in changes]
    sets.append(sql.SQL("updated_at = {}").format(sql.Placeholder("now")))
    query = sql.SQL("UPDATE identity.users SET {} WHERE id = {} RETURNING {}").format(
        sql.SQL(", ").join(sets), sql.Placeholder("id"), sql.SQL(_USER_COLS)
    )
    row = (
        conn.cursor(row_factory=dict_row)
        .execute(query, {**changes, "now": now, "id": user_id})
        .fetchone()
    )
    return User.model_validate(row) if row else None


def set_disabled(
    conn: Connection[Any], user_id: str, disabled_at: datetime | None, now: datetime
) -> User | None:
    row = _one(
        conn,
        "UPDATE identity.users SET disabled_at = %(at)s, updated_at = %(now)s"
        f" WHERE id = %(id)s RETURNING {_USER_COLS}",
        {"at": disabled_at, "now": now, "id": user_id},
    )
    return User.model_validate(row) if row else None


def set_password_hash(conn: Connection[Any], user_id: str, hashed: str, now: datetime) -> None:
    conn.execute(
        "UPDATE identity.users SET password_hash = %s, updated_at = %s WHERE id = %s",
        (hashed, now, user_id),
    )


def set_pin_hash(conn: Connection[Any], user_id: str, hashed: str, now: datetime) -> None:
    conn.execute(
        "UPDATE identity.users SET pin_hash = %s, updated_at = %s WHERE id = %s",
        (hashed, now, user_id),
    )


# -- refresh tokens -------------------------------------------------------------------------
def insert_refresh(
    conn: Connection[Any],
    token_hash: bytes,
    *,
    family_id: UUID,
    user_id: str,
    parent_hash: bytes | None,
    issued_at: datetime,
    expires_at: datetime,
    family_expires_at: datetime,
) -> None:
    conn.execute(
        "INSERT INTO identity.refresh_tokens (token_hash, family_id, user_id, parent_hash,"
        " issued_at, expires_at, family_expires_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (token_hash, family_id, user_id, parent_hash, issued_at, expires_at, family_expires_at),
    )


def get_refresh_for_update(conn: Connection[Any], token_hash: bytes) -> RefreshRecord | None:
    row = _one(
        conn,
        "SELECT token_hash, family_id, user_id, expires_at, family_expires_at, used_at,"
        " revoked_at FROM identity.refresh_tokens WHERE token_hash = %s FOR UPDATE",
        (token_hash,),
    )
    return RefreshRecord(**row) if row else None


def mark_refresh_used(conn: Connection[Any], token_hash: bytes, at: datetime) -> None:
    conn.execute(
        "UPDATE identity.refresh_tokens SET used_at = %s WHERE token_hash = %s", (at, token_hash)
    )


def revoke_family(conn: Connection[Any], family_id: UUID, at: datetime) -> int:
    cur = conn.execute(
        "UPDATE identity.refresh_tokens SET revoked_at = %s"
        " WHERE family_id = %s AND revoked_at IS NULL",
        (at, family_id),
    )
    return cur.rowcount


def revoke_user_sessions(conn: Connection[Any], user_id: str, at: datetime) -> int:
    cur = conn.execute(
        "UPDATE identity.refresh_tokens SET revoked_at = %s"
        " WHERE user_id = %s AND revoked_at IS NULL",
        (at, user_id),
    )
    return cur.rowcount


# -- password resets ------------------------------------------------------------------------
def insert_reset(
    conn: Connection[Any], token_hash: bytes, user_id: str, now: datetime, expires_at: datetime
) -> None:
    conn.execute(
        "INSERT INTO identity.password_resets (token_hash, user_id, created_at, expires_at)"
        " VALUES (%s, %s, %s, %s)",
        (token_hash, user_id, now, expires_at),
    )


def get_reset_for_update(conn: Connection[Any], token_hash: bytes) -> ResetRecord | None:
    row = _one(
        conn,
        "SELECT user_id, expires_at, used_at FROM identity.password_resets"
        " WHERE token_hash = %s FOR UPDATE",
        (token_hash,),
    )
    return ResetRecord(**row) if row else None


def use_user_resets(conn: Connection[Any], user_id: str, at: datetime) -> None:
    """Spend every open reset token of the user (the one used and any other)."""
    conn.execute(
        "UPDATE identity.password_resets SET used_at = %s WHERE user_id = %s AND used_at IS NULL",
        (at, user_id),
    )


# -- API keys -------------------------------------------------------------------------------
def insert_api_key(
    conn: Connection[Any],
    key_id: str,
    secret_hash: bytes,
    *,
    user_id: str,
    name: str,
    scopes: Sequence[str],
    now: datetime,
    expires_at: datetime | None,
) -> ApiKey:
    row = _one(
        conn,
        "INSERT INTO identity.api_keys (id, secret_hash, user_id, name, scopes, created_at,"
        f" expires_at) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING {_KEY_COLS}",
        (key_id, secret_hash, user_id, name, list(scopes), now, expires_at),
    )
    return ApiKey.model_validate(row)


def get_api_key(conn: Connection[Any], key_id: str) -> KeyRecord | None:
    row = _one(
        conn, f"SELECT {_KEY_COLS}, secret_hash FROM identity.api_keys WHERE id = %s", (key_id,)
    )
    if row is None:
        return None
    secret_hash = bytes(row.pop("secret_hash"))
    return KeyRecord(ApiKey.model_validate(row), secret_hash)


def list_api_keys(conn: Connection[Any], user_id: str) -> list[ApiKey]:
    rows = (
        conn.cursor(row_factory=dict_row)
        .execute(
            f"SELECT {_KEY_COLS} FROM identity.api_keys WHERE user_id = %s ORDER BY created_at",
            (user_id,),
        )
        .fetchall()
    )
    return [ApiKey.model_validate(r) for r in rows]


def revoke_api_key(conn: Connection[Any], key_id: str, at: datetime) -> ApiKey | None:
    row = _one(
        conn,
        "UPDATE identity.api_keys SET revoked_at = coalesce(revoked_at, %s) WHERE id = %s"
        f" RETURNING {_KEY_COLS}",
        (at, key_id),
    )
    return ApiKey.model_validate(row) if row else None


def touch_api_key(conn: Connection[Any], key_id: str, at: datetime) -> None:
    conn.execute("UPDATE identity.api_keys SET last_used_at = %s WHERE id = %s", (at, key_id))


# -- throttles ------------------------------------------------------------------------------
def lock_throttle(conn: Connection[Any], kind: str, key: str, now: datetime) -> ThrottleState:
    """The counter of ``(kind, key)``, created if absent and row-locked until commit."""
    conn.execute(
        "INSERT INTO identity.throttle (kind, key, window_start) VALUES (%s, %s, %s)"
        " ON CONFLICT (kind, key) DO NOTHING",
        (kind, key, now),
    )
    row = _one(
        conn,
        "SELECT window_start, attempts, locked_until, lockouts FROM identity.throttle"
        " WHERE kind = %s AND key = %s FOR UPDATE",
        (kind, key),
    )
    return ThrottleState(**row)


def store_throttle(conn: Connection[Any], kind: str, key: str, state: ThrottleState) -> None:
    conn.execute(
        "UPDATE identity.throttle SET window_start = %s, attempts = %s, locked_until = %s,"
        " lockouts = %s WHERE kind = %s AND key = %s",
        (state.window_start, state.attempts, state.locked_until, state.lockouts, kind, key),
    )


def clear_throttles(conn: Connection[Any], keys: Iterable[tuple[str, str]]) -> int:
    cleared = 0
    for kind, key in keys:
        cur = conn.execute(
            "DELETE FROM identity.throttle WHERE kind = %s AND key = %s", (kind, key)
        )
        cleared += cur.rowcount
    return cleared


def purge(conn: Connection[Any], before: datetime) -> int:
    """Delete counters, refresh tokens and reset tokens nobody can use after ``before``."""
    total = 0
    for query in (
        "DELETE FROM identity.throttle WHERE window_start < %(t)s"
        " AND (locked_until IS NULL OR locked_until < %(t)s)",
        "DELETE FROM identity.refresh_tokens WHERE family_expires_at < %(t)s",
        "DELETE FROM identity.password_resets WHERE expires_at < %(t)s",
    ):
        total += conn.execute(query, {"t": before}).rowcount
    return total


# -- audit ----------------------------------------------------------------------------------
def insert_audit(
    conn: Connection[Any],
    at: datetime,
    action: str,
    *,
    user_id: str | None = None,
    actor: str | None = None,
    identifier: str | None = None,
    address: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    conn.execute(
        "INSERT INTO identity.audit (at, action, user_id, actor, identifier, address, detail)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (at, action, user_id, actor, identifier, address, Jsonb(dict(detail or {}))),
    )


def list_audit(
    conn: Connection[Any], *, user_id: str | None, action: str | None, limit: int
) -> list[AuditEntry]:
    rows = (
        conn.cursor(row_factory=dict_row)
        .execute(
            "SELECT id, at, action, user_id, actor, identifier, address, detail"
            " FROM identity.audit WHERE (%(user)s::text IS NULL OR user_id = %(user)s)"
            " AND (%(action)s::text IS NULL OR action = %(action)s)"
            " ORDER BY id DESC LIMIT %(limit)s",
            {"user": user_id, "action": action, "limit": limit},
        )
        .fetchall()
    )
    return [AuditEntry.model_validate(r) for r in rows]
