"""The SAP integration's part of a privacy request: the account's business partner (the
name SAP is to hold), its documents' journal entries and its work orders' service orders
as sent or to be sent, out. On erasure the partner's name becomes the pseudonym and the
service orders' descriptions (a work order's title) ``erased``, each queued to be sent
again so SAP's own copy changes too — as ``customer.updated`` and ``workorder.*`` with
the erased values would queue them. The journal entries of billing's documents stay, as
billing's documents do (tax law), and name the account by its opaque id only."""

from __future__ import annotations

from typing import Any

from cloud.adapters.postgres import Connection, ConnectionPool, dict_row
from cloud.personal_data import Erasure, Export, pseudonym
from contracts.topics import Region

__all__ = ["ERASED_DESCRIPTION", "SapPersonalData"]

ERASED_DESCRIPTION = "erased"
_RESEND = (
    "state = 'pending', attempts = 0, next_attempt_at = now(), desired_at = now(),"
    " dead_reason = NULL, dead_at = NULL"
)


class SapPersonalData:
    service = "sap"

    def __init__(self, pool: ConnectionPool[Connection[Any]]) -> None:
        self._pool = pool

    def export(self, region: Region, account_id: str) -> Export:
        args = (region.value, account_id)
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            partner = cur.execute(
                "SELECT external_id, name, state, sap_partner, sap_customer, exported_at"
                " FROM sap.partners WHERE region = %s AND account_id = %s",
                args,
            ).fetchall()
            documents = cur.execute(
                "SELECT number, kind, issue_date, currency, gross, state, sap_document,"
                " exported_at FROM sap.documents WHERE region = %s AND account_id = %s"
                " ORDER BY id",
                args,
            ).fetchall()
            orders = cur.execute(
                "SELECT work_order_id, reference, description, priority, rejected,"
                " sap_service_order, sap_status, exported_at FROM sap.service_orders"
                " WHERE region = %s AND account_id = %s ORDER BY work_order_id",
                args,
            ).fetchall()
        return {"business_partner": partner, "journal_entries": documents, "service_orders": orders}

    def erase(self, region: Region, account_id: str) -> Erasure:
        args = (region.value, account_id)
        with self._pool.connection() as conn, conn.transaction():
            partner = conn.execute(
                f"UPDATE sap.partners SET name = %s, {_RESEND}"
                " WHERE region = %s AND account_id = %s AND name <> %s",
                (pseudonym(account_id), *args, pseudonym(account_id)),
            ).rowcount
            orders = conn.execute(
                f"UPDATE sap.service_orders SET description = %s, {_RESEND}"
                " WHERE region = %s AND account_id = %s AND description <> %s",
                (ERASED_DESCRIPTION, *args, ERASED_DESCRIPTION),
            ).rowcount
            documents = conn.execute(
                "SELECT count(*) FROM sap.documents WHERE region = %s AND account_id = %s",
                args,
            ).fetchone()
        return Erasure(
            self.service,
            erased={"business_partner_name": partner, "service_order_descriptions": orders},
            kept={"journal_entries": documents[0] if documents else 0},
        )
