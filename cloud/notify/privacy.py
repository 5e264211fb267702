"""The notify service's part of a privacy request: its copy of the account (name,
email), the account's people (their addresses), their preferences, webhooks, inbox and
the log of mail and webhook deliveries out; on erasure all of them deleted, and the
account's and people's copies pseudonymised and disabled so nothing is sent to them
again (a later ``customer.updated``/``user.*`` event carries the owners' erased values
anyway). What notify told others about the account — staff's notices of its alarms,
which name its site — goes too: every inbox entry of a notification concerning the
account, whoever's, and every delivery of it. Notify keeps no record the law requires."""

from __future__ import annotations

from typing import Any

from cloud.adapters.postgres import Connection, ConnectionPool, dict_row
from cloud.personal_data import Erasure, Export, pseudonym
from contracts.topics import Region

__all__ = ["NotifyPersonalData"]

_PER_USER = ("preferences", "webhook_endpoints", "inbox", "inbox_feed", "deliveries")


class NotifyPersonalData:
    service = "notify"

    def __init__(self, pool: ConnectionPool[Connection[Any]]) -> None:
        self._pool = pool

    def export(self, region: Region, account_id: str) -> Export:
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            account = cur.execute(
                "SELECT account_id, name, email, plan_code, status FROM notify.accounts"
                " WHERE account_id = %s AND region = %s",
                (account_id, region.value),
            ).fetchall()
            people = cur.execute(
                "SELECT user_id, role, email, disabled FROM notify.people"
                " WHERE account_id = %s ORDER BY user_id",
                (account_id,),
            ).fetchall()
            ids = [p["user_id"] for p in people]
            share: Export = {"account": account, "people": people}
            share["preferences"] = cur.execute(
                "SELECT user_id, language, time_zone, quiet_start, quiet_end,"
                " email_categories, webhook_categories FROM notify.preferences"
                " WHERE user_id = ANY(%s) ORDER BY user_id",
                (ids,),
            ).fetchall()
            share["webhooks"] = cur.execute(
                "SELECT id, user_id, url, description, created_at, disabled_at"
                " FROM notify.webhook_endpoints WHERE user_id = ANY(%s) ORDER BY id",
                (ids,),
            ).fetchall()
            share["inbox"] = cur.execute(
                "SELECT user_id, kind, category, severity, title, body, link, created_at,"
                " read_at FROM notify.inbox WHERE user_id = ANY(%s) ORDER BY seq",
                (ids,),
            ).fetchall()
            share["deliveries"] = cur.execute(
                "SELECT user_id, channel, destination, created_at, status, finished_at"
                " FROM notify.deliveries WHERE user_id = ANY(%s) ORDER BY created_at, id",
                (ids,),
            ).fetchall()
        return share

    def erase(self, region: Region, account_id: str) -> Erasure:
        with self._pool.connection() as conn, conn.transaction():
            ids = [
                r[0]
                for r in conn.execute(
                    "SELECT user_id FROM notify.people WHERE account_id = %s FOR UPDATE",
                    (account_id,),
                )
            ]
            # The notifications concerning the account, before its people's inboxes go.
            about = [
                r[0]
                for r in conn.execute(
                    "SELECT DISTINCT notification_id FROM notify.inbox"
                    " WHERE region = %s AND account_id = %s",
                    (region.value, account_id),
                )
            ]
            erased: dict[str, int] = {}
            for table in _PER_USER:
                erased[table] = conn.execute(
                    f"DELETE FROM notify.{table} WHERE user_id = ANY(%s)", (ids,)
                ).rowcount
            erased["others_notices"] = conn.execute(
                "DELETE FROM notify.inbox WHERE notification_id = ANY(%s)", (about,)
            ).rowcount
            erased["others_deliveries"] = conn.execute(
                "DELETE FROM notify.deliveries WHERE notification_id = ANY(%s)", (about,)
            ).rowcount
            erased["people"] = conn.execute(
                "UPDATE notify.people SET email = NULL, disabled = true"
                " WHERE user_id = ANY(%s) AND (email IS NOT NULL OR NOT disabled)",
                (ids,),
            ).rowcount
            erased["account"] = conn.execute(
                "UPDATE notify.accounts SET name = %s, email = %s, status = 'closed'"
                " WHERE account_id = %s AND region = %s AND name <> %s",
                (
                    pseudonym(account_id),
                    f"erased+{account_id}@invalid.example",
                    account_id,
                    region.value,
                    pseudonym(account_id),
                ),
            ).rowcount
        return Erasure(self.service, erased=erased)
