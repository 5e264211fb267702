"""The registry's part of a privacy request: the account's sites (name, location, zone,
grid operator), their gateways and devices out. On erasure each site's name becomes
``site <id>`` and its location is rounded to :data:`~cloud.personal_data.COARSE_DECIMALS`
(about 1 km), and each of its gateways' ``gateway.updated`` commits with the change, so
the services that copy the name and location (alerts, dispatch, config, ingest) take the
erased values as they take any update. The site, its gateways and devices stay under
the opaque account id: the installation is PoTR's equipment, and billing's kept
invoices name the site by its number. No street address is stored anywhere; an invoice
identifies the supply point by the site's number and its billing meter."""

from __future__ import annotations

from typing import Any

from cloud.adapters.postgres import Connection, ConnectionPool, dict_row
from cloud.personal_data import Erasure, Export, coarse_sql
from cloud.registry import repository as repo
from cloud.registry.service import announce_site
from contracts.topics import Region

__all__ = ["ERASED_SITE_NAME", "RegistryPersonalData"]

#: An erased site's name: its number, which every page shows anyway.
ERASED_SITE_NAME = "site {id}"


class RegistryPersonalData:
    service = "registry"

    def __init__(self, pool: ConnectionPool[Connection[Any]]) -> None:
        self._pool = pool

    def export(self, region: Region, account_id: str) -> Export:
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            sites = cur.execute(
                "SELECT id, name, time_zone, utility, latitude, longitude, created_at"
                " FROM registry.sites WHERE region = %s AND account_id = %s ORDER BY id",
                (region.value, account_id),
            ).fetchall()
            ids = [s["id"] for s in sites]
            gateways = cur.execute(
                "SELECT id, site_id, enabled, created_at FROM registry.gateways"
                " WHERE site_id = ANY(%s) ORDER BY id",
                (ids,),
            ).fetchall()
            devices = cur.execute(
                "SELECT d.gateway_id, d.local_id, d.kind, d.manufacturer, d.model, d.serial,"
                " d.firmware, d.first_seen FROM registry.devices d"
                " JOIN registry.gateways g ON g.id = d.gateway_id"
                " WHERE g.site_id = ANY(%s) ORDER BY d.gateway_id, d.local_id",
                (ids,),
            ).fetchall()
        return {"sites": sites, "gateways": gateways, "devices": devices}

    def erase(self, region: Region, account_id: str) -> Erasure:
        lat, lon = coarse_sql("latitude"), coarse_sql("longitude")
        with self._pool.connection() as conn, conn.transaction():
            total = conn.execute(
                "SELECT count(*) FROM registry.sites WHERE region = %s AND account_id = %s",
                (region.value, account_id),
            ).fetchone()
            changed = [
                r[0]
                for r in conn.execute(
                    f"UPDATE registry.sites SET name = 'site ' || id, latitude = {lat},"
                    f" longitude = {lon} WHERE region = %s AND account_id = %s"
                    f" AND (name <> 'site ' || id OR latitude IS DISTINCT FROM {lat}"
                    f" OR longitude IS DISTINCT FROM {lon}) RETURNING id",
                    (region.value, account_id),
                ).fetchall()
            ]
            for site_id in sorted(changed):
                site = repo.get_site(conn, site_id)
                assert site is not None, "updated in this transaction"
                announce_site(conn, site)
        kept = total[0] if total else 0
        return Erasure(
            self.service, erased={"site_names_locations": len(changed)}, kept={"sites": kept}
        )
