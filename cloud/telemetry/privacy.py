"""The telemetry store's part of a privacy request: the energy of the account's sites per
device, counter and local day out — the newest :data:`EXPORT_DAYS` days, a bounded share
(the raw readings are kept 90 days and the 15-minute buckets sum to these days). The
store knows sites, not accounts: the composition root gives it the account's sites.

On erasure the store erases nothing and keeps the measurements of the installation,
which is PoTR's equipment: the fleet's history, warranty claims, and the figures behind
billing's kept invoices (a revision of a billed period re-reads them). A home's meter
data is personal data only while it relates to a person; the erasure removes that link
everywhere else — the site's name and location (registry and its copies), the account's
name and contacts — so what stays is an installation's energy under opaque numbers.
Counted as kept: the rows an export would hold (device, counter and local day)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from cloud.adapters.postgres import Connection, ConnectionPool, dict_row
from cloud.personal_data import Erasure, Export
from contracts.topics import Region

__all__ = ["EXPORT_DAYS", "SitesOf", "TelemetryPersonalData"]

#: How many local days back an export reaches (ten years: a contract's length).
EXPORT_DAYS = 3660
#: The account's sites in a region (the registry's answer).
SitesOf = Callable[[Region, str], Sequence[int]]

_DAYS = (
    "SELECT g.site_id, k.local_id AS device, m.name AS metric, m.unit,"
    " (e.bucket AT TIME ZONE g.time_zone)::date AS day, sum(e.energy_mwh)::bigint AS energy_mwh,"
    " sum(e.samples)::bigint AS samples"
    " FROM telemetry.energy_15m e JOIN ingest.device_keys k USING (device_id)"
    " JOIN ingest.gateways g USING (gateway_id) JOIN telemetry.metrics m ON m.id = e.metric_id"
    " WHERE g.site_id = ANY(%(sites)s) AND g.region = %(region)s"
    "  AND e.bucket >= now() - make_interval(days => %(days)s)"
    " GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 5"
)


class TelemetryPersonalData:
    service = "telemetry"

    def __init__(self, pool: ConnectionPool[Connection[Any]], sites_of: SitesOf) -> None:
        self._pool = pool
        self._sites_of = sites_of

    def export(self, region: Region, account_id: str) -> Export:
        sites = list(self._sites_of(region, account_id))
        args = {"sites": sites, "region": region.value, "days": EXPORT_DAYS}
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            days = cur.execute(_DAYS, args).fetchall()
        return {"energy_days": days}

    def erase(self, region: Region, account_id: str) -> Erasure:
        sites = list(self._sites_of(region, account_id))
        with self._pool.connection() as conn:
            row = conn.execute(
                f"SELECT count(*) FROM ({_DAYS}) d",
                {"sites": sites, "region": region.value, "days": EXPORT_DAYS},
            ).fetchone()
        return Erasure(self.service, kept={"energy_days": row[0] if row else 0})
