"""The dispatch service's part of a privacy request: the account's work orders with
their history, notes, checklist ticks, appointments and what was rescheduled, photos'
and signatures' metadata out, and the photos' and signature images' bytes as files of
the archive. On erasure the photos and signatures are deleted, rows and files — they
picture the customer's home and hand — and so are the customer's own words (the work
orders' titles and descriptions, reasons the customer gave for a change of state or of
an appointment); dispatch's copy of the sites' locations is rounded as the registry
rounds its own. The work orders, their history, checklist ticks, parts and the
technicians' notes stay: the record of work done on an electrical installation, which
safety and warranty law requires (⚠ to be confirmed per region), naming the site, not
the person."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cloud.adapters.postgres import Connection, ConnectionPool, dict_row
from cloud.dispatch.photos import CONTENT_TYPES, PhotoMissing, PhotoStorage
from cloud.personal_data import Erasure, Export, coarse_sql
from contracts.topics import Region

__all__ = ["DispatchPersonalData"]

ERASED_TEXT = "erased"


class DispatchPersonalData:
    service = "dispatch"

    def __init__(self, pool: ConnectionPool[Connection[Any]], photos: PhotoStorage) -> None:
        self._pool = pool
        self._photos = photos

    def export(self, region: Region, account_id: str) -> Export:
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            ids = self._orders(conn, region, account_id)
            share: Export = {
                "work_orders": cur.execute(
                    "SELECT id, site_id, type, priority, title, description, status,"
                    " created_at, charge_reason, charge_note FROM dispatch.work_orders"
                    " WHERE id = ANY(%s) ORDER BY id",
                    (ids,),
                ).fetchall()
            }
            for kind, sql in _EXPORTED.items():
                share[kind] = cur.execute(sql, (ids,)).fetchall()
        return share

    def files(self, region: Region, account_id: str) -> Mapping[str, bytes]:
        """The photos' and signature images' bytes, ``photos/<id>.<ext>`` and
        ``signatures/<work order>-<visit>.<ext>`` (one the storage lost is left out:
        its metadata in ``dispatch.json`` says so)."""
        with self._pool.connection() as conn:
            ids = self._orders(conn, region, account_id)
            stored = _stored(conn, ids)
        out: dict[str, bytes] = {}
        for name, key in stored:
            try:
                out[name] = self._photos.get(key)
            except PhotoMissing:
                continue
        return out

    def erase(self, region: Region, account_id: str) -> Erasure:
        lat, lon = coarse_sql("latitude"), coarse_sql("longitude")
        with self._pool.connection() as conn, conn.transaction():
            ids = self._orders(conn, region, account_id, lock=True)
            erased: dict[str, int] = {}
            erased["work_order_texts"] = conn.execute(
                "UPDATE dispatch.work_orders SET title = %s, description = ''"
                " WHERE id = ANY(%s) AND title <> %s",
                (ERASED_TEXT, ids, ERASED_TEXT),
            ).rowcount
            erased["customer_reasons"] = sum(
                conn.execute(
                    f"UPDATE dispatch.{table} SET reason = NULL WHERE work_order_id = ANY(%s)"
                    " AND role = 'customer' AND reason IS NOT NULL",
                    (ids,),
                ).rowcount
                for table in ("history", "appointment_changes")
            )
            # The files go first, in the transaction: should it fail afterwards, the rows
            # still name them and a second run deletes what is left.
            for _, key in _stored(conn, ids):
                self._photos.delete(key)
            conn.execute(
                "UPDATE dispatch.checklist_ticks SET photo_key = NULL"
                " WHERE work_order_id = ANY(%s) AND photo_key IS NOT NULL",
                (ids,),
            )
            for table in ("photos", "signatures"):
                erased[table] = conn.execute(
                    f"DELETE FROM dispatch.{table} WHERE work_order_id = ANY(%s)", (ids,)
                ).rowcount
            erased["site_locations"] = conn.execute(
                f"UPDATE dispatch.sites SET latitude = {lat}, longitude = {lon}"
                " WHERE region = %s AND account_id = %s"
                f" AND (latitude IS DISTINCT FROM {lat} OR longitude IS DISTINCT FROM {lon})",
                (region.value, account_id),
            ).rowcount
        return Erasure(self.service, erased=erased, kept={"work_orders": len(ids)})

    @staticmethod
    def _orders(
        conn: Connection[Any], region: Region, account_id: str, *, lock: bool = False
    ) -> list[int]:
        lock_sql = " FOR UPDATE" if lock else ""
        return [
            r[0]
            for r in conn.execute(
                "SELECT id FROM dispatch.work_orders WHERE region = %s AND account_id = %s"
                f" ORDER BY id{lock_sql}",
                (region.value, account_id),
            )
        ]


#: What else an export holds of the account's work orders (``%s``: their ids).
_EXPORTED = {
    "history": "SELECT work_order_id, at, role, action, from_state, to_state, reason"
    " FROM dispatch.history WHERE work_order_id = ANY(%s) ORDER BY id",
    "notes": "SELECT work_order_id, role, at, text FROM dispatch.notes"
    " WHERE work_order_id = ANY(%s) ORDER BY id",
    "checklist_ticks": "SELECT work_order_id, visit, task_id, at, note FROM"
    " dispatch.checklist_ticks WHERE work_order_id = ANY(%s) ORDER BY work_order_id, id",
    "appointments": "SELECT work_order_id, starts, ends, label, site_zone, confirmed_at,"
    " confirmed_role FROM dispatch.appointments WHERE work_order_id = ANY(%s)"
    " ORDER BY work_order_id",
    "appointment_changes": "SELECT work_order_id, old_starts, old_ends, role, at, reason"
    " FROM dispatch.appointment_changes WHERE work_order_id = ANY(%s) ORDER BY id",
    "photos": "SELECT id, work_order_id, content_type, bytes, sha256, at FROM dispatch.photos"
    " WHERE work_order_id = ANY(%s) ORDER BY id",
    "signatures": "SELECT work_order_id, visit, signer_name, content_type, bytes, sha256, at"
    " FROM dispatch.signatures WHERE work_order_id = ANY(%s) ORDER BY work_order_id, visit",
}


def _stored(conn: Connection[Any], ids: list[int]) -> list[tuple[str, str]]:
    """(archive name, storage key) of the photos and signature images of ``ids``."""
    ext: dict[str, str] = {str(k): v for k, v in CONTENT_TYPES.items()}
    rows = conn.execute(
        "SELECT 'photos/' || id, content_type, storage_key FROM dispatch.photos"
        " WHERE work_order_id = ANY(%s)"
        " UNION ALL SELECT 'signatures/' || work_order_id || '-' || visit, content_type,"
        " storage_key FROM dispatch.signatures WHERE work_order_id = ANY(%s) ORDER BY 1",
        (ids, ids),
    ).fetchall()
    return [(f"{name}.{ext[content_type]}", key) for name, content_type, key in rows]
