"""The identity service's part of a privacy request: the account's users (sign-in
address, name, role, when created; never a hash), their API keys and their audit trail
out; on erasure the users disabled with their address and name pseudonymised and
their password removed, their sessions, reset tokens and API keys deleted, and the
client addresses and typed identifiers of their audit lines cleared. The user rows and
the audit lines' actions stay, unnamed: the security log of what happened to an account
is kept, and a disabled user can never sign in again."""

from __future__ import annotations

from typing import Any

from cloud.adapters.postgres import Connection, ConnectionPool, dict_row
from cloud.personal_data import Erasure, Export
from contracts.topics import Region

__all__ = ["IdentityPersonalData"]

#: An erased user's sign-in address: unique per user, on a domain that delivers nowhere.
ERASED_EMAIL = "erased+{id}@invalid.example"
ERASED_NAME = "erased"


class IdentityPersonalData:
    service = "identity"

    def __init__(self, pool: ConnectionPool[Connection[Any]]) -> None:
        self._pool = pool

    def export(self, region: Region, account_id: str) -> Export:
        # Users are global (one schema); an account's users are its by account_id.
        del region
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            users = cur.execute(
                "SELECT id, email, display_name, role, home_region, disabled_at, created_at"
                " FROM identity.users WHERE account_id = %s ORDER BY id",
                (account_id,),
            ).fetchall()
            ids = [u["id"] for u in users]
            keys = cur.execute(
                "SELECT id, user_id, name, scopes, created_at, expires_at, last_used_at,"
                " revoked_at FROM identity.api_keys WHERE user_id = ANY(%s) ORDER BY id",
                (ids,),
            ).fetchall()
            audit = cur.execute(
                "SELECT at, action, user_id, address FROM identity.audit"
                " WHERE user_id = ANY(%s) ORDER BY id",
                (ids,),
            ).fetchall()
        return {"users": users, "api_keys": keys, "sign_in_log": audit}

    def erase(self, region: Region, account_id: str) -> Erasure:
        del region
        with self._pool.connection() as conn, conn.transaction():
            ids = [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM identity.users WHERE account_id = %s ORDER BY id FOR UPDATE",
                    (account_id,),
                )
            ]
            erased = {
                "users": conn.execute(
                    "UPDATE identity.users SET email = 'erased+' || id || '@invalid.example',"
                    " display_name = %s, password_hash = NULL,"
                    " disabled_at = coalesce(disabled_at, now()), updated_at = now()"
                    " WHERE id = ANY(%s) AND display_name <> %s",
                    (ERASED_NAME, ids, ERASED_NAME),
                ).rowcount,
            }
            for table in ("refresh_tokens", "password_resets", "api_keys"):
                erased[table] = conn.execute(
                    f"DELETE FROM identity.{table} WHERE user_id = ANY(%s)",
                    (ids,),
                ).rowcount
            erased["sign_in_log_addresses"] = conn.execute(
                "UPDATE identity.audit SET address = NULL, identifier = NULL"
                " WHERE user_id = ANY(%s) AND (address IS NOT NULL OR identifier IS NOT NULL)",
                (ids,),
            ).rowcount
        return Erasure(self.service, erased=erased, kept={"disabled_users": len(ids)})
