"""Rollout targets by site and network operator, from where the config service knows its
gateways stand (``config.gateway_sites``, kept from the registry's events)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cloud.adapters.postgres import Connection, ConnectionPool
from cloud.config import site_repository as srepo

__all__ = ["SiteDirectory"]


class SiteDirectory:
    """The :class:`~cloud.config.rollout_service.FleetDirectory` of this service's own
    data: no call to another service while a rollout is created."""

    def __init__(self, pool: ConnectionPool[Connection[Any]]) -> None:
        self._pool = pool

    def gateways_of_sites(self, region: str, site_ids: Sequence[int]) -> set[str]:
        with self._pool.connection() as conn:
            return srepo.gateways_of_sites(conn, region, site_ids)

    def sites_of_utility(self, region: str, utility: str) -> set[int]:
        with self._pool.connection() as conn:
            return srepo.sites_of_utility(conn, region, utility)
