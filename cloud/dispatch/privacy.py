"""The dispatch service's part of a privacy request: the account's work orders with
their notes, photos' metadata and signatures out. On erasure the customer's own notes
are deleted and the signer's name on each signature pseudonymised; the work orders, the
technicians' notes and the photos of the work stay — the record of work done on an
electrical installation, which safety and warranty law requires (⚠ to be confirmed per
region), and they name the site, not the person."""

from __future__ import annotations

from typing import Any

from cloud.adapters.postgres import Connection, ConnectionPool, dict_row
from cloud.personal_data import Erasure, Export
from contracts.topics import Region

__all__ = ["DispatchPersonalData"]

ERASED_SIGNER = "erased"
ERASED_TEXT = "erased"


class DispatchPersonalData:
    service = "dispatch"

    def __init__(self, pool: ConnectionPool[Connection[Any]]) -> None:
        self._pool = pool

    def export(self, region: Region, account_id: str) -> Export:
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            orders = cur.execute(
                "SELECT id, site_id, type, priority, title, description, status, created_at"
                " FROM dispatch.work_orders WHERE region = %s AND account_id = %s ORDER BY id",
                (region.value, account_id),
            ).fetchall()
            ids = [o["id"] for o in orders]
            share: Export = {"work_orders": orders}
            share["notes"] = cur.execute(
                "SELECT work_order_id, role, at, text FROM dispatch.notes"
                " WHERE work_order_id = ANY(%s) ORDER BY id",
                (ids,),
            ).fetchall()
            share["photos"] = cur.execute(
                "SELECT work_order_id, content_type, bytes, sha256, at FROM dispatch.photos"
                " WHERE work_order_id = ANY(%s) ORDER BY id",
                (ids,),
            ).fetchall()
            share["signatures"] = cur.execute(
                "SELECT work_order_id, visit, signer_name, at FROM dispatch.signatures"
                " WHERE work_order_id = ANY(%s) ORDER BY work_order_id, visit",
                (ids,),
            ).fetchall()
        return share

    def erase(self, region: Region, account_id: str) -> Erasure:
        with self._pool.connection() as conn, conn.transaction():
            ids = [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM dispatch.work_orders WHERE region = %s AND account_id = %s"
                    " ORDER BY id FOR UPDATE",
                    (region.value, account_id),
                )
            ]
            texts = conn.execute(
                "UPDATE dispatch.work_orders SET title = %s, description = ''"
                " WHERE id = ANY(%s) AND title <> %s",
                (ERASED_TEXT, ids, ERASED_TEXT),
            ).rowcount
            signers = conn.execute(
                "UPDATE dispatch.signatures SET signer_name = %s"
                " WHERE work_order_id = ANY(%s) AND signer_name <> %s",
                (ERASED_SIGNER, ids, ERASED_SIGNER),
            ).rowcount
        return Erasure(
            self.service,
            erased={"work_order_texts": texts, "signer_names": signers},
            kept={"work_orders": len(ids)},
        )
