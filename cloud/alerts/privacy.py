"""The alerts service's part of a privacy request: the alarms of the account's sites
(rule, severity, states, times, title, detail) out. On erasure the site's name is taken
out of each alarm's detail (where a notice read it) and out of the service's copy of the
account's gateways, whose location is rounded as the registry rounds its own (the
registry's ``gateway.updated`` brings the same values later). The alarms stay: they name
a rule, a site number and the opaque account id — the installation's fault record."""

from __future__ import annotations

from typing import Any

from cloud.adapters.postgres import Connection, ConnectionPool, dict_row
from cloud.personal_data import Erasure, Export, coarse_sql
from contracts.topics import Region

__all__ = ["AlertsPersonalData"]


class AlertsPersonalData:
    service = "alerts"

    def __init__(self, pool: ConnectionPool[Connection[Any]]) -> None:
        self._pool = pool

    def export(self, region: Region, account_id: str) -> Export:
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            alarms = cur.execute(
                "SELECT id, rule_id, severity, site_id, gateway_id, device, state, count,"
                " first_raised_at, last_seen_at, cleared_at, closed_at, title, detail"
                " FROM alerts.alarms WHERE region = %s AND account_id = %s ORDER BY id",
                (region.value, account_id),
            ).fetchall()
        return {"alarms": alarms}

    def erase(self, region: Region, account_id: str) -> Erasure:
        lat, lon = coarse_sql("latitude"), coarse_sql("longitude")
        args = (region.value, account_id)
        with self._pool.connection() as conn, conn.transaction():
            names = conn.execute(
                "UPDATE alerts.alarms SET detail = detail - 'site_name'"
                " WHERE region = %s AND account_id = %s AND detail ? 'site_name'",
                args,
            ).rowcount
            copies = conn.execute(
                f"UPDATE alerts.gateways SET site_name = 'site ' || site_id, latitude = {lat},"
                f" longitude = {lon} WHERE region = %s AND account_id = %s"
                " AND (site_name IS DISTINCT FROM 'site ' || site_id"
                f"  OR latitude IS DISTINCT FROM {lat} OR longitude IS DISTINCT FROM {lon})",
                args,
            ).rowcount
            alarms = conn.execute(
                "SELECT count(*) FROM alerts.alarms WHERE region = %s AND account_id = %s",
                args,
            ).fetchone()
        return Erasure(
            self.service,
            erased={"alarm_site_names": names, "gateway_copies": copies},
            kept={"alarms": alarms[0] if alarms else 0},
        )
