"""SiteProfiles: each site's grid-code profile by location, its connection approval, and
a new gateway's first config (issue 18, point 2).

Orchestrates the pure parts — :mod:`cloud.config.profile_assignment` (which profile, and
why) and :mod:`cloud.config.approvals` (what a change may not do) — over the config
schema: where gateways stand (learned from the registry's ``gateway.registered`` /
``gateway.updated``: :meth:`ConfigTracker.apply_registration`), the approvals on file, and what
provisioning did per gateway. :class:`~cloud.config.service.ConfigService` calls
:meth:`check` inside every version's transaction and :meth:`first_config` from its loop.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from cloud.adapters.postgres import Connection, ConnectionPool
from cloud.config import repository as repo
from cloud.config import site_repository as srepo
from cloud.config.approvals import (
    ConnectionApproval,
    DeviceOnGateway,
    check_change,
    fit_export_limit,
)
from cloud.config.errors import ApprovalError, NotFoundError, RefusedError
from cloud.config.profile_assignment import (
    Assignment,
    AssignmentRules,
    SiteFacts,
    builtin_rules,
    resolve,
)
from cloud.regional_ids import region_of
from contracts.messages import ProfileRef
from device_profiles import DeviceProfile, GridCodeProfile, builtin_grid_codes, device_settings

__all__ = [
    "ApprovalView",
    "ConnectionApprovalIn",
    "FirstConfig",
    "GridCodeView",
    "SiteGridCode",
    "SiteProfiles",
]

log = logging.getLogger(__name__)


# -- what the API takes and shows -------------------------------------------------------------
class ConnectionApprovalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reference: str = Field(
        min_length=1, max_length=200, description="the network operator's approval reference"
    )
    profile: str = Field(
        min_length=1, max_length=64, description="the grid-code profile approved (its region)"
    )
    export_limit_w: float | None = Field(
        default=None,
        ge=0,
        le=1e7,
        strict=True,
        description="approved export at the connection point, W (null: none set)",
    )
    phases: int = Field(default=1, ge=1, le=3, strict=True, description="connection phases")
    note: str = Field(default="", max_length=1000)


class ApprovalView(BaseModel):
    model_config = ConfigDict(extra="forbid")

    site_id: int
    region: str
    reference: str
    profile: str
    export_limit_w: float | None
    phases: int
    note: str
    recorded_by: str
    recorded_at: datetime | None


class GridCodeView(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    title: str
    region: str
    version: int
    unverified: bool = Field(description="holds a value not verified against its source")
    unverified_keys: list[str]
    registration_only: bool


class SiteGridCode(BaseModel):
    model_config = ConfigDict(extra="forbid")

    site_id: int
    region: str
    known: bool = Field(
        description="whether the config service has learned the site (a gateway of it was"
        " registered); false: utility and coordinates are unknown here"
    )
    utility: str | None
    island: str | None
    profile: GridCodeView | None = Field(description="the resolved profile (null: unassigned)")
    rule: str = Field(description="the rule that decided (approval:<ref> for an approval)")
    level: str = Field(description="site, approval, island, utility, device_type or region")
    reason: str
    unverified: bool
    approval: ApprovalView | None


def _approval_view(a: ConnectionApproval) -> ApprovalView:
    return ApprovalView(
        site_id=a.site_id,
        region=a.region,
        reference=a.reference,
        profile=a.profile,
        export_limit_w=a.export_limit_w,
        phases=a.phases,
        note=a.note,
        recorded_by=a.recorded_by,
        recorded_at=a.recorded_at,
    )


def _grid_code_view(p: GridCodeProfile) -> GridCodeView:
    return GridCodeView(
        id=p.id,
        title=p.title,
        region=p.region,
        version=p.version,
        unverified=p.unverified,
        unverified_keys=p.unverified_keys,
        registration_only=p.registration_only,
    )


@dataclass(frozen=True, slots=True)
class FirstConfig:
    """What provisioning makes of a gateway: the settings to sign (``profile`` set), or
    why none (``outcome`` and ``detail``)."""

    outcome: str
    detail: str
    profile: ProfileRef | None = None
    settings: Mapping[str, dict[str, Any]] | None = None
    rule: str | None = None


class SiteProfiles:
    """Assignment by location and connection approvals; thread-safe (pooled connections)."""

    def __init__(
        self,
        pool: ConnectionPool[Connection[Any]],
        profiles: Mapping[str, DeviceProfile],
        *,
        rules: AssignmentRules | None = None,
        grid_codes: Mapping[str, GridCodeProfile] | None = None,
        production: bool = False,
    ) -> None:
        self._pool = pool
        self._profiles = dict(profiles)
        self._rules = rules if rules is not None else builtin_rules()
        self._grid_codes = dict(grid_codes if grid_codes is not None else builtin_grid_codes())
        self._production = production

    # -- the check every change passes ------------------------------------------------------
    def check(
        self,
        conn: Connection[Any],
        gateway_id: str,
        profile: ProfileRef,
        settings: Mapping[str, Mapping[str, Any]],
    ) -> ConnectionApproval | None:
        """The approval in force at the gateway's site (None: none on file, or the site is
        unknown); :class:`ApprovalError` when the change is beyond it. In the caller's
        transaction (the config service's, with the gateway locked)."""
        site = srepo.gateway_site(conn, gateway_id)
        if site is None:
            return None
        approval = srepo.current_approval(conn, site.site_id)
        refusal = check_change(
            approval,
            profile_id=profile.id,
            profile_region=profile.region.value,
            settings=settings,
            devices=self._devices(conn, gateway_id),
            grid_codes=self._grid_codes,
        )
        if refusal is not None:
            raise ApprovalError(refusal.field, refusal.limit, refusal.reason, refusal.reference)
        return approval

    def _devices(self, conn: Connection[Any], gateway_id: str) -> dict[str, DeviceOnGateway]:
        return {
            name: DeviceOnGateway(
                name, self._profiles.get(k.profile) if k.profile else None, k.nameplate
            )
            for name, k in repo.known_devices(conn, gateway_id).items()
        }

    # -- reading and approvals (the API) ----------------------------------------------------
    def grid_code(self, region: str, site_id: int) -> SiteGridCode:
        """The site's resolved profile with the rule and reason, and its approval.
        :class:`NotFoundError` for a site of another region, or one the service knows
        nothing of (no gateway registered, no approval)."""
        self._check_site_region(region, site_id)
        with self._pool.connection() as conn:
            site = srepo.site_facts(conn, site_id)
            approval = srepo.current_approval(conn, site_id)
        if site is None and approval is None:
            raise NotFoundError(f"site {site_id} is not known to the config service")
        facts = site or SiteFacts(site_id, region)
        assignment = self._resolve(facts, approval)
        if site is None:
            assignment = Assignment(
                site_id,
                assignment.profile,
                assignment.rule,
                assignment.level,
                assignment.reason + " (no gateway registered yet: utility and place unknown)",
            )
        grid = self._grid_codes.get(assignment.profile) if assignment.profile else None
        return SiteGridCode(
            site_id=site_id,
            region=region,
            known=site is not None,
            utility=assignment.utility,
            island=assignment.island,
            profile=_grid_code_view(grid) if grid else None,
            rule=assignment.rule,
            level=assignment.level,
            reason=assignment.reason,
            unverified=grid.unverified if grid else False,
            approval=_approval_view(approval) if approval else None,
        )

    def set_approval(
        self, region: str, site_id: int, body: ConnectionApprovalIn, actor: str
    ) -> ApprovalView:
        """Record the site's connection approval (the newest is in force; older ones stay
        as history). :class:`RefusedError` for an unknown profile or one of another
        region; :class:`NotFoundError` for a site of another region."""
        self._check_site_region(region, site_id)
        grid = self._grid_codes.get(body.profile)
        if grid is None:
            raise RefusedError("profile", "a grid-code profile id", f"unknown {body.profile!r}")
        if grid.region != region:
            raise RefusedError(
                "profile", f"region {region}", f"{body.profile} is of region {grid.region}"
            )
        approval = ConnectionApproval(
            site_id=site_id,
            region=region,
            reference=body.reference,
            profile=body.profile,
            export_limit_w=body.export_limit_w,
            phases=body.phases,
            recorded_by=actor,
            note=body.note,
        )
        with self._pool.connection() as conn:
            stored = srepo.insert_approval(conn, approval)
        log.info("site %s: connection approval %s recorded by %s", site_id, body.reference, actor)
        return _approval_view(stored)

    @staticmethod
    def _check_site_region(region: str, site_id: int) -> None:
        owner = region_of(site_id)
        if owner is None or owner.value != region:
            raise NotFoundError(f"site {site_id} is not known to the config service")

    def _resolve(
        self,
        site: SiteFacts,
        approval: ConnectionApproval | None,
        device_type: str | None = None,
    ) -> Assignment:
        return resolve(
            self._rules,
            site,
            device_type=device_type,
            approval_profile=approval.profile if approval else None,
            approval_reference=approval.reference if approval else None,
        )

    # -- provisioning ------------------------------------------------------------------------
    def to_provision(self, limit: int = 100) -> list[tuple[str, datetime]]:
        with self._pool.connection() as conn:
            return srepo.to_provision(conn, limit)

    def first_config(self, gateway_id: str) -> FirstConfig:
        """The config a new gateway gets without a person: per device, the settings of the
        profile resolved for its site and device type (an export limit tightened to the
        approval), labelled with the site's profile; or why none."""
        with self._pool.connection() as conn:
            site = srepo.gateway_site(conn, gateway_id)
            approval = srepo.current_approval(conn, site.site_id) if site else None
            devices = self._devices(conn, gateway_id)
        if site is None:
            return FirstConfig("unassigned", "the gateway's site is not known yet")
        assignment = self._resolve(site, approval)
        if assignment.profile is None:
            return FirstConfig("unassigned", assignment.reason, rule=assignment.rule)
        label = self._grid_codes[assignment.profile]
        settings: dict[str, dict[str, Any]] = {}
        reasons = [assignment.reason]
        phases = approval.phases if approval else 1
        for name, device in sorted(devices.items()):
            if device.profile is None:
                continue
            own = self._resolve(site, approval, device.profile.name)
            if own.profile is None:
                continue
            grid = self._grid_codes[own.profile]
            if own.profile != label.id:
                reasons.append(f"{name}: {own.reason}")
            if grid.unverified and self._production:
                return FirstConfig(
                    "needs_override",
                    f"{grid.id} holds unverified values ({', '.join(grid.unverified_keys[:5])}):"
                    " production provisions it only through a rollout with an audited override",
                    rule=own.rule,
                )
            values = device_settings(
                grid,
                device.profile,
                nameplate={
                    k: float(v) for k, v in device.nameplate.items() if isinstance(v, int | float)
                },
                phases=phases,
            ).settings
            if values:
                settings[name] = dict(values)
        if not settings:
            return FirstConfig(
                "unassigned",
                f"{label.id}: none of the gateway's devices takes grid-code settings",
                rule=assignment.rule,
            )
        settings = fit_export_limit(approval, settings, devices)
        return FirstConfig(
            "configured",
            "; ".join(reasons),
            profile=label.profile_ref(),
            settings=settings,
            rule=assignment.rule,
        )

    def record_provisioning(
        self,
        gateway_id: str,
        birth_at: datetime,
        outcome: str,
        detail: str,
        *,
        profile: str | None = None,
        rule: str | None = None,
        version: int | None = None,
    ) -> None:
        with self._pool.connection() as conn:
            srepo.record_provisioning(
                conn,
                gateway_id,
                birth_at,
                outcome,
                profile=profile,
                rule=rule,
                version=version,
                detail=detail[:2000],
            )
