"""What a caller may reach, as plain data every service filters its SQL by.

The portal decides it (:mod:`cloud.portal.authz`: one policy for every route) and hands it
to the services, which put it into their ``WHERE`` clauses; no service decides who may
see what, and none imports another to find out. Knows no service.

* :class:`Scope` — sites (and what hangs off them) by region and customer account: every
  region (admins), one region (staff), or one account's sites in its region (customers).
* :class:`GatewayReach` — the same for services that know gateways but not sites
  (telemetry, ingest): a region, and for an account the ids of its gateways, which the
  portal resolves from the registry.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from contracts.topics import Region

__all__ = ["Access", "GatewayReach", "Scope", "gateway_reach_condition", "site_condition"]


@dataclass(frozen=True, slots=True)
class Scope:
    """Sites a caller may reach: ``region`` None means every region; ``by_account``
    narrows to the sites whose ``account_id`` is ``account_id`` (None: no site at all —
    a customer without an account sees nothing, never everything)."""

    region: Region | None = None
    account_id: str | None = None
    by_account: bool = False

    @classmethod
    def everything(cls) -> Scope:
        return cls()

    @classmethod
    def of_region(cls, region: Region) -> Scope:
        return cls(region=region)

    @classmethod
    def of_account(cls, region: Region, account_id: str | None) -> Scope:
        return cls(region=region, account_id=account_id, by_account=True)

    def within(self, region: Region) -> Scope | None:
        """This scope inside ``region`` (a regional URL's), or None when it reaches
        nothing there."""
        if self.region is not None and self.region != region:
            return None
        return Scope(region, self.account_id, self.by_account)

    def sql_params(self) -> dict[str, Any]:
        """The named parameters :func:`site_condition` refers to."""
        return {
            "scope_region": self.region.value if self.region is not None else None,
            "scope_by_account": self.by_account,
            "scope_account": self.account_id,
        }


def site_condition(sites: str) -> str:
    """A ``WHERE`` condition on table alias ``sites`` (columns ``region``, ``account_id``)
    with :meth:`Scope.sql_params`' named parameters. ``account_id = NULL`` is never
    true, so an account scope without an account matches no row."""
    return (
        f"(%(scope_region)s::text IS NULL OR {sites}.region = %(scope_region)s)"
        f" AND (NOT %(scope_by_account)s::bool OR {sites}.account_id = %(scope_account)s)"
    )


@dataclass(frozen=True, slots=True)
class GatewayReach:
    """Gateways a caller may reach where only gateways are known: ``region`` (None: every
    region) and, when not None, only the gateways listed (a customer's)."""

    region: Region | None = None
    gateway_ids: tuple[str, ...] | None = None

    @classmethod
    def of(cls, scope: Scope, account_gateways: Iterable[str] = ()) -> GatewayReach:
        """The reach of ``scope``; ``account_gateways`` are its account's gateways (the
        registry's answer), used only when the scope is an account's."""
        ids = tuple(sorted(account_gateways)) if scope.by_account else None
        return cls(scope.region, ids)

    def sql_params(self) -> dict[str, Any]:
        """The named parameters :func:`gateway_reach_condition` refers to."""
        return {
            "reach_region": self.region.value if self.region is not None else None,
            "reach_gateways": list(self.gateway_ids) if self.gateway_ids is not None else None,
        }


def gateway_reach_condition(region_column: str, gateway_column: str) -> str:
    """A ``WHERE`` condition on a gateway's region and id columns with
    :meth:`GatewayReach.sql_params`' named parameters."""
    return (
        f"(%(reach_region)s::text IS NULL OR {region_column} = %(reach_region)s)"
        f" AND (%(reach_gateways)s::text[] IS NULL OR {gateway_column} = ANY(%(reach_gateways)s))"
    )


@dataclass(frozen=True, slots=True)
class Access:
    """What a route learns of its caller once authorised: who (``subject``, ``role``, and
    for staff signed in with one, ``employee_no``) and the scope it may reach inside the
    URL's region."""

    subject: str
    role: str
    scope: Scope
    employee_no: str | None = None
