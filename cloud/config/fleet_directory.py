"""Rollout targets by site and network operator, from where the config service knows its
gateways stand (``config.gateway_sites``, kept from the registry's events)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cloud.adapters.postgres import Connection, ConnectionPool

__all__ = ["SiteDirectory"]


class SiteDirectory:
    """The :class:`~cloud.config.rollout_service.FleetDirectory` of this service's own
    data: no call to another service while a rollout is created."""

    def __init__(self, pool: ConnectionPool[Connection[Any]]) -> None:
        self._pool = pool

    def gateways_of_sites(self, region: str, site_ids: Sequence[int]) -> set[str]:
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT gateway_id FROM config.gateway_sites"
                " WHERE region = %s AND site_id = ANY(%s)",
                (region, list(site_ids)),
            ).fetchall()
        return {str(r[0]) for r in rows}

    def sites_of_utility(self, region: str, utility: str) -> set[int]:
        # Case-insensitive: "SA Power Networks" and "sa power networks" are one operator.
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT DISTINCT site_id FROM config.gateway_sites"
                " WHERE region = %s AND lower(utility) = lower(%s)",
                (region, utility),
            ).fetchall()
        return {int(r[0]) for r in rows}
