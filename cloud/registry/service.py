"""RegistryService: the registry's published interface (other services call only this).

Changes other services must know of are emitted in their own transaction through the
registry's outbox: ``gateway.registered`` when a gateway is added, ``gateway.updated``
for each of a site's gateways when the site's time zone or owning account changes and for
a gateway enabled or disabled (ingest keeps its own copy of both, so it never asks the
registry).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from cloud.adapters.postgres import (
    Connection,
    ConnectionPool,
    ForeignKeyViolation,
    UniqueViolation,
    ping,
)
from cloud.events.outbox import Event, emit, emit_many, handle_once
from cloud.events.types import ACCOUNT_ID_PATTERN, GatewayRegistration, gateway_registration_event
from cloud.registry import repository as repo
from cloud.registry.models import (
    Device,
    Gateway,
    GatewayIn,
    Site,
    SiteIn,
    SiteMatch,
    check_time_zone,
)
from cloud.scope import Scope
from cloud.search import search_query
from contracts.messages import DeviceInfo
from device_profiles.kinds import device_kind

#: The registry's PostgreSQL schema (outbox, inbox).
SCHEMA = "registry"
_ACCOUNT_ID = re.compile(ACCOUNT_ID_PATTERN)

#: Internal callers (the CLI, provisioning, events) reach everything; the portal's routes
#: pass their caller's scope, and what is outside it reads as absent.
EVERYTHING = Scope.everything()
#: Most gateways one account's reach resolves to (a customer has a handful).
MAX_ACCOUNT_GATEWAYS = 1000


class RegistryError(Exception):
    """Base of the registry's refusals; ``str()`` is fit for an API answer."""


class NotFoundError(RegistryError):
    pass


class ConflictError(RegistryError):
    pass


class RegistryService:
    """Sites, gateways and devices; thread-safe (each call takes a pooled connection)."""

    def __init__(self, pool: ConnectionPool[Connection[Any]]) -> None:
        self._pool = pool

    def ping(self) -> None:
        ping(self._pool)

    # -- sites -------------------------------------------------------------------
    def add_site(self, site: SiteIn) -> Site:
        with self._pool.connection() as conn:
            return repo.insert_site(conn, site)

    def get_site(self, site_id: int, *, scope: Scope = EVERYTHING) -> Site | None:
        with self._pool.connection() as conn:
            return repo.get_site(conn, site_id, scope=scope)

    def list_sites(
        self, *, limit: int = 1000, offset: int = 0, scope: Scope = EVERYTHING
    ) -> list[Site]:
        with self._pool.connection() as conn:
            return repo.list_sites(conn, scope, limit, offset)

    def find_sites(self, scope: Scope, text: str, limit: int = 20) -> list[SiteMatch]:
        """Sites in ``scope`` that support's search ``text`` (trimmed) names: by id (the
        whole text, when it is a number), or holding it — any case, ``%`` and ``_``
        matching themselves — in the site's name or a device's serial or local id. One
        match per site (its best: an exact value first, then id, serial, local id,
        name), each with the site's owning account; exact matches first. At most
        ``limit`` (1 to :data:`cloud.search.MAX_RESULTS`);
        :class:`cloud.search.SearchRefused` (a ``ValueError``) for text that is empty or
        longer than :data:`cloud.search.MAX_TEXT_CHARS`."""
        query = search_query(text, limit)
        with self._pool.connection() as conn:
            return repo.find_sites(conn, scope, query)

    def set_site_time_zone(self, site_id: int, time_zone: str) -> Site:
        """Change a site's IANA time zone; each of its gateways' ``gateway.updated``
        commits with the change (ingest counts their local days in the new zone).
        ``ValueError`` for a name that is not in the zone database."""
        check_time_zone(time_zone)
        with self._pool.connection() as conn:
            site = repo.update_site_time_zone(conn, site_id, time_zone)
            if site is None:
                raise NotFoundError(f"site {site_id} does not exist")
            announce_site(conn, site)
            return site

    def set_site_account(self, site_id: int, account_id: str | None) -> Site:
        """Record the customer account that owns a site (None: no account). The account
        id is opaque here (the customers service checks it exists and shares the site's
        region before calling this); each of the site's gateways' ``gateway.updated``
        carries it, committed with the change, so services that keep gateways can scope
        by account. ``ValueError`` for an id that is not ``acc_`` + 32 hex digits."""
        if account_id is not None and not _ACCOUNT_ID.fullmatch(account_id):
            raise ValueError(f"{account_id!r} is not an account id (acc_ + 32 hex digits)")
        with self._pool.connection() as conn:
            site = repo.update_site_account(conn, site_id, account_id)
            if site is None:
                raise NotFoundError(f"site {site_id} does not exist")
            announce_site(conn, site)
            return site

    # -- gateways ----------------------------------------------------------------
    def add_gateway(self, gateway: GatewayIn, *, scope: Scope = EVERYTHING) -> Gateway:
        """Register a gateway under a site; its region defaults to (and must equal) the
        site's. A site outside ``scope`` does not exist."""
        with self._pool.connection() as conn:
            # Locked: a concurrent time-zone change of the site waits for this commit
            # (then announces this gateway too), or this waits for it (and reads its zone).
            site = repo.get_site(conn, gateway.site_id, share_lock=True, scope=scope)
            if site is None:
                raise NotFoundError(f"site {gateway.site_id} does not exist")
            if gateway.region is not None and gateway.region != site.region:
                raise ConflictError(
                    f"gateway region {gateway.region.value!r} differs from site "
                    f"{site.id}'s region {site.region.value!r}"
                )
            try:
                added = repo.insert_gateway(conn, gateway, site.region.value)
            except UniqueViolation:
                raise ConflictError(f"gateway {gateway.id!r} already exists") from None
            except ForeignKeyViolation:
                raise NotFoundError(f"site {gateway.site_id} does not exist") from None
            emit(conn, SCHEMA, _registration_event(added, site, registered=True))
            return added

    def set_gateway_enabled(self, gateway_id: str, enabled: bool) -> Gateway:
        """Enable a gateway, or disable it (``potr gateway revoke``); raise
        :class:`NotFoundError` for a gateway never registered.

        Its ``gateway.updated`` (carrying ``enabled``) commits with the change: once ingest
        handles it, everything the gateway still sends is dead-lettered. Setting the value
        it already has announces it again, which changes nothing downstream.
        """
        with self._pool.connection() as conn:
            gateway = repo.update_gateway_enabled(conn, gateway_id, enabled)
            if gateway is None:
                raise NotFoundError(f"gateway {gateway_id!r} is not registered")
            # Locked as in add_gateway: a concurrent time-zone change commits first (and
            # this reads its zone) or waits for this (and reads this flag), so the newest
            # event always carries both.
            site = repo.get_site(conn, gateway.site_id, share_lock=True)
            assert site is not None, "registry.gateways.site_id is a foreign key"
            emit(conn, SCHEMA, _registration_event(gateway, site, registered=False))
            return gateway

    def get_gateway(self, gateway_id: str, *, scope: Scope = EVERYTHING) -> Gateway | None:
        with self._pool.connection() as conn:
            return repo.get_gateway(conn, gateway_id, scope)

    def list_gateways(
        self,
        *,
        site_id: int | None = None,
        limit: int = 1000,
        offset: int = 0,
        scope: Scope = EVERYTHING,
    ) -> list[Gateway]:
        with self._pool.connection() as conn:
            return repo.list_gateways(conn, site_id, limit, offset, scope)

    def gateway_ids(self, scope: Scope) -> list[str]:
        """Ids of the gateways in ``scope`` (an account's: what telemetry and ingest, which
        know gateways but not sites, filter a customer's reads by), at most
        :data:`MAX_ACCOUNT_GATEWAYS`."""
        with self._pool.connection() as conn:
            return repo.gateway_ids(conn, scope, MAX_ACCOUNT_GATEWAYS)

    # -- devices (learned from ingest's events; ids are ingest's keys) ---------------
    def apply_gateway_birth(
        self,
        event_id: UUID,
        gateway_id: str,
        devices: Sequence[DeviceInfo],
        device_ids: Mapping[str, int],
    ) -> bool:
        """Upsert a ``gateway.birth`` event's devices under the keys it carries, once per
        event id (the inbox and the upsert commit together); False when the event was
        handled before."""
        with self._pool.connection() as conn:
            if not handle_once(conn, SCHEMA, event_id):
                return False
            _upsert_devices(conn, gateway_id, devices, device_ids)
            return True

    def apply_device_discovered(
        self, event_id: UUID, gateway_id: str, local_id: str, device_id: int
    ) -> bool:
        """Record a ``device.discovered`` device (kind unknown until a birth describes
        it), once per event id; False when the event was handled before."""
        with self._pool.connection() as conn:
            if not handle_once(conn, SCHEMA, event_id):
                return False
            _check_gateway(conn, gateway_id)
            repo.insert_device_if_absent(conn, device_id, gateway_id, local_id)
            return True

    def device_id_for(self, gateway_id: str, local_id: str) -> int | None:
        with self._pool.connection() as conn:
            return repo.find_device_id(conn, gateway_id, local_id)

    def get_device(self, device_id: int, *, scope: Scope = EVERYTHING) -> Device | None:
        with self._pool.connection() as conn:
            return repo.get_device(conn, device_id, scope)

    def list_devices(
        self,
        *,
        gateway_id: str | None = None,
        limit: int = 1000,
        offset: int = 0,
        scope: Scope = EVERYTHING,
    ) -> list[Device]:
        with self._pool.connection() as conn:
            return repo.list_devices(conn, gateway_id, limit, offset, scope)


def announce_site(conn: Connection[Any], site: Site) -> None:
    """A ``gateway.updated`` for each of the site's gateways, in the caller's transaction
    (which holds the site's row lock from its update: a gateway added meanwhile waits,
    then reads the new row)."""
    gateways = repo.site_gateways(conn, site.id)
    emit_many(conn, SCHEMA, [_registration_event(g, site, registered=False) for g in gateways])


def _registration_event(gateway: Gateway, site: Site, *, registered: bool) -> Event:
    registration = GatewayRegistration(
        gateway_id=gateway.id,
        site_id=site.id,
        region=gateway.region,
        time_zone=site.time_zone,
        enabled=gateway.enabled,
        account_id=site.account_id,
        site_name=site.name,
        latitude=site.latitude,
        longitude=site.longitude,
        utility=site.utility,
    )
    return gateway_registration_event(registration, registered=registered)


def _check_gateway(conn: Connection[Any], gateway_id: str) -> None:
    if repo.get_gateway(conn, gateway_id) is None:
        raise NotFoundError(f"gateway {gateway_id!r} is not registered")


def _upsert_devices(
    conn: Connection[Any],
    gateway_id: str,
    devices: Sequence[DeviceInfo],
    device_ids: Mapping[str, int],
) -> None:
    missing = [d.device for d in devices if d.device not in device_ids]
    if missing:
        raise ValueError(f"gateway.birth of {gateway_id!r} carries no key for {missing}")
    rows = [
        (
            device_ids[d.device],
            d.device,
            device_kind(d.models, d.profile),
            d.manufacturer,
            d.model,
            d.serial,
            d.firmware,
            list(d.models),
        )
        for d in devices
    ]
    _check_gateway(conn, gateway_id)
    repo.upsert_birth_devices(conn, gateway_id, rows)
