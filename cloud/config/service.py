"""ConfigService: send signed commands and versioned configs, show what became of them.

Every write is validated against the gateway's devices and their profiles **before**
anything is signed; a refusal stores nothing but an audit row. What is accepted is
signed with the cloud's key, stored with its audit row in one transaction, then
published (see :mod:`cloud.config.publishing`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from cloud.adapters.postgres import Connection, ConnectionPool, ping
from cloud.config import repository as repo
from cloud.config.errors import (
    ApprovalError,
    ConfigError,
    ConflictError,
    NotFoundError,
    RefusedError,
)
from cloud.config.fleet_directory import SiteDirectory
from cloud.config.logic import (
    RollbackError,
    device_status,
    next_version,
    rollback_target,
)
from cloud.config.models import (
    AuditEntry,
    Command,
    CommandIn,
    ConfigIn,
    ConfigView,
    DesiredConfig,
    DeviceConfigState,
    RollbackIn,
)
from cloud.config.publishing import DocumentPublisher, PendingPublished, Publisher
from cloud.config.rollout_service import (
    ContentResolver,
    FleetDirectory,
    RolloutService,
    no_content,
)
from cloud.config.site_profiles import SiteProfiles
from cloud.config.validation import check_command, check_config
from contracts.control import command_document, config_document, config_hash
from contracts.messages import ProfileRef
from contracts.signing import SigningKey, sign_document
from contracts.timeutil import truncate_ms, utc_now
from device_profiles import DeviceProfile

__all__ = ["ConfigService", "ServiceOptions"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServiceOptions:
    """Lifetimes the service signs with (from :class:`cloud.config.ConfigSettings`)."""

    command_lifetime_s: float = 300.0
    config_lifetime_s: float = 30 * 86_400.0


class ConfigService:
    """Commands and desired configs per gateway; thread-safe (pooled connections)."""

    def __init__(
        self,
        pool: ConnectionPool[Connection[Any]],
        key: SigningKey,
        profiles: Mapping[str, DeviceProfile],
        *,
        publisher: Publisher | None = None,
        options: ServiceOptions | None = None,
        content: ContentResolver = no_content,
        directory: FleetDirectory | None = None,
        production: bool = False,
    ) -> None:
        self._pool = pool
        self._key = key
        self._profiles = dict(profiles)
        self._documents = DocumentPublisher(pool, publisher)
        self._options = options or ServiceOptions()
        #: Staged rollouts over this service's versions (``content``: a profile's
        #: settings; ``directory``: sites and utilities → gateways, by default where
        #: this service knows its gateways stand; ``production``: unverified values
        #: refused without an override).
        self.rollouts = RolloutService(
            pool,
            self,
            content=content,
            directory=directory or SiteDirectory(pool),
            production=production,
        )
        #: Each site's grid-code profile by location, its connection approval (which
        #: every version is checked against) and new gateways' first configs.
        self.sites = SiteProfiles(pool, self._profiles, production=production)

    @property
    def kid(self) -> str:
        return self._key.kid

    def ping(self) -> None:
        ping(self._pool)

    # -- commands ------------------------------------------------------------------------
    def send_command(
        self, gateway_id: str, request: CommandIn, actor: str, *, region: str | None = None
    ) -> Command:
        """Validate, sign, store and publish a command; :class:`ConfigError` if refused.
        To a held gateway (a technician on site) it is stored, shown ``held``, and
        published once released.

        ``region`` (every method here takes it): the caller's; a gateway of another
        region is not found, and nothing — not even an audit row — is written for it.
        """
        self._check_region(gateway_id, region)
        lifetime = request.expires_in_s or self._options.command_lifetime_s
        try:
            with self._pool.connection() as conn:
                region = _require_region(conn, gateway_id)
                devices = repo.known_devices(conn, gateway_id)
                check_command(
                    gateway_id, request.device, request.name, request.args, devices, self._profiles
                )
                issued_at = truncate_ms(utc_now())
                expires_at = issued_at + timedelta(seconds=lifetime)
                document = sign_document(
                    command_document(
                        uuid4(),
                        gateway_id,
                        request.name,
                        request.device,
                        request.args,
                        expires_at,
                        actor,
                    ),
                    self._key,
                )
                command = repo.insert_command(
                    conn,
                    document=document,
                    region=region,
                    reason=request.reason,
                    issued_at=issued_at,
                    expires_at=expires_at,
                )
                repo.append_audit(
                    conn,
                    actor=actor,
                    action="command.send",
                    gateway_id=gateway_id,
                    target=str(command.id),
                    reason=request.reason,
                    outcome="pending",
                    detail={"device": request.device, "name": request.name, "args": request.args},
                )
        except ConfigError as exc:
            self._audit_refusal(actor, "command.send", gateway_id, request.reason, exc)
            raise
        self._documents.publish_command(command.id)
        return self.get_command(command.id) or command

    def get_command(self, command_id: UUID, *, region: str | None = None) -> Command | None:
        with self._pool.connection() as conn:
            return repo.get_command(conn, command_id, region)

    def list_commands(
        self, gateway_id: str, *, limit: int = 100, offset: int = 0, region: str | None = None
    ) -> list[Command]:
        self._check_region(gateway_id, region)
        with self._pool.connection() as conn:
            return repo.list_commands(conn, gateway_id, limit, offset, region)

    # -- configs -------------------------------------------------------------------------
    def set_config(
        self, gateway_id: str, request: ConfigIn, actor: str, *, region: str | None = None
    ) -> DesiredConfig:
        """A new desired version with ``request``'s settings, signed and published retained
        (to a held gateway: stored, shown ``held``, published once released)."""
        self._check_region(gateway_id, region)
        return self._new_version(
            gateway_id, request.profile, request.devices, actor, request.reason, "config.set", None
        )

    def refresh_expiring(
        self, *, margin_s: float, now: datetime | None = None, limit: int = 100
    ) -> int:
        """Re-sign, as a new version with the same settings, every gateway's current
        config that expires within ``margin_s``: a gateway that comes back after a long
        outage (or with a new control store) must still find a valid retained config,
        not one it refuses as expired. How many were re-signed."""
        cutoff = (now or utc_now()) + timedelta(seconds=margin_s)
        with self._pool.connection() as conn:
            due = repo.expiring_current(conn, cutoff, limit)
        refreshed = 0
        for gateway_id, version in due:
            with self._pool.connection() as conn:
                current = repo.get_desired(conn, gateway_id, version)
            if current is None:
                continue
            try:
                self._new_version(
                    gateway_id,
                    ProfileRef.model_validate(current.profile),
                    current.devices,
                    "cloud",
                    f"re-signed: version {version} expires within {margin_s:g} s",
                    "config.refresh",
                    None,
                )
            except ConfigError as exc:  # e.g. a device no longer on the gateway
                log.warning("config of %s not re-signed: %s", gateway_id, exc)
                continue
            refreshed += 1
        return refreshed

    def rollback(
        self, gateway_id: str, request: RollbackIn, actor: str, *, region: str | None = None
    ) -> DesiredConfig:
        """A new version carrying an earlier version's settings (default: the one before
        the current version)."""
        self._check_region(gateway_id, region)
        with self._pool.connection() as conn:
            versions = repo.config_versions(conn, gateway_id)
            try:
                target = rollback_target(versions, request.to_version)
            except RollbackError as exc:
                error: ConfigError = ConflictError(str(exc))
                if not versions:
                    error = NotFoundError(f"gateway {gateway_id!r} has no config")
                self._audit_refusal(actor, "config.rollback", gateway_id, request.reason, error)
                raise error from None
            earlier = repo.get_desired(conn, gateway_id, target)
        assert earlier is not None
        return self._new_version(
            gateway_id,
            ProfileRef.model_validate(earlier.profile),
            earlier.devices,
            actor,
            request.reason,
            "config.rollback",
            target,
        )

    def new_version(
        self,
        gateway_id: str,
        profile: ProfileRef,
        settings: Mapping[str, dict[str, Any]],
        actor: str,
        reason: str,
        *,
        action: str,
        rollback_of: int | None = None,
        despite_hold_of: int | None = None,
    ) -> DesiredConfig:
        """A new version with ``settings`` (validated, signed, audited as ``action``,
        published; held while a technician is on site — except by ``despite_hold_of``,
        the work order of the technician who pushes it): what rollouts and technician
        pushes sign with."""
        return self._new_version(
            gateway_id,
            profile,
            settings,
            actor,
            reason,
            action,
            rollback_of,
            despite_hold_of=despite_hold_of,
        )

    def provision_new(self, *, limit: int = 100) -> int:
        """Give every newly provisioned gateway (devices and site known, no config yet)
        its first config without a person: the profile resolved for its site, as each
        device's settings, set by ``system`` with the reason naming the rule. What came
        of each gateway's birth is recorded (tried again on a newer birth). How many were
        configured."""
        configured = 0
        for gateway_id, birth_at in self.sites.to_provision(limit):
            plan = self.sites.first_config(gateway_id)
            if plan.profile is None or plan.settings is None:
                self.sites.record_provisioning(
                    gateway_id, birth_at, plan.outcome, plan.detail, rule=plan.rule
                )
                continue
            outcome, version, detail = "configured", None, plan.detail
            try:
                desired = self._new_version(
                    gateway_id,
                    plan.profile,
                    plan.settings,
                    "system",
                    f"provisioned: {plan.detail}"[:1000],
                    "config.provision",
                    None,
                    first_only=True,
                )
                version = desired.version
                configured += 1
            except ConflictError as exc:
                outcome, detail = "has_config", str(exc)
            except ConfigError as exc:
                outcome, detail = "refused", str(exc)
            self.sites.record_provisioning(
                gateway_id,
                birth_at,
                outcome,
                detail,
                profile=plan.profile.id,
                rule=plan.rule,
                version=version,
            )
            log.info("provisioning %s: %s (%s)", gateway_id, outcome, detail)
        return configured

    def check_devices(self, gateway_id: str, settings: Mapping[str, dict[str, Any]]) -> None:
        """:class:`RefusedError` unless every value fits its device's profile and
        nameplate on this gateway (nothing signed, nothing written)."""
        with self._pool.connection() as conn:
            check_config(gateway_id, settings, repo.known_devices(conn, gateway_id), self._profiles)

    def known_device_profiles(self, gateway_id: str) -> dict[str, str | None]:
        """The gateway's devices (local id → profile name) as its latest birth listed them."""
        with self._pool.connection() as conn:
            return {d: k.profile for d, k in repo.known_devices(conn, gateway_id).items()}

    def _new_version(
        self,
        gateway_id: str,
        profile: ProfileRef,
        settings: Mapping[str, dict[str, Any]],
        actor: str,
        reason: str,
        action: str,
        rollback_of: int | None,
        *,
        first_only: bool = False,
        despite_hold_of: int | None = None,
    ) -> DesiredConfig:
        try:
            with self._pool.connection() as conn:
                # The lock serialises versions (and publishes) per gateway.
                region = repo.lock_gateway_region(conn, gateway_id)
                if region is None:
                    raise NotFoundError(f"gateway {gateway_id!r} is not known (no birth seen)")
                if profile.region.value != region:
                    raise RefusedError(
                        "profile.region",
                        f"gateway region {region!r}",
                        f"profile region {profile.region.value!r} differs from the gateway's",
                    )
                check_config(
                    gateway_id, settings, repo.known_devices(conn, gateway_id), self._profiles
                )
                # Beyond the site's connection approval: refused (a re-signing changes
                # nothing, so it only carries the reference).
                approval = self.sites.check(
                    conn, gateway_id, profile, {} if action == "config.refresh" else settings
                )
                versions = repo.config_versions(conn, gateway_id)
                if first_only and versions:
                    raise ConflictError(f"gateway {gateway_id!r} has a config already")
                # Above what the gateway last handled too: after a restore of this
                # database, a reused number would be refused by the gateway as stale.
                reported = repo.reported_version(conn, gateway_id)
                version = next_version(
                    max([*versions, *([reported] if reported else [])], default=None)
                )
                not_after = utc_now() + timedelta(seconds=self._options.config_lifetime_s)
                document = sign_document(
                    config_document(
                        gateway_id,
                        version,
                        profile.model_dump(mode="json"),
                        settings,
                        not_after,
                        actor,
                    ),
                    self._key,
                )
                desired = repo.insert_desired(
                    conn,
                    document=document,
                    region=region,
                    hash_=config_hash(document),
                    reason=reason,
                    rollback_of=rollback_of,
                )
                repo.append_audit(
                    conn,
                    actor=actor,
                    action=action,
                    gateway_id=gateway_id,
                    target=f"version {version}",
                    reason=reason,
                    outcome="pending",
                    detail={
                        "version": version,
                        "rollback_of": rollback_of,
                        "hash": desired.hash,
                        "approval": approval.reference if approval else None,
                    },
                )
        except ConfigError as exc:
            self._audit_refusal(actor, action, gateway_id, reason, exc)
            raise
        self._documents.publish_latest_config(gateway_id, despite_hold_of=despite_hold_of)
        with self._pool.connection() as conn:
            return repo.get_desired(conn, gateway_id, version) or desired

    def known_devices(self, gateway_id: str) -> list[str]:
        """The local ids of the gateway's devices, as its latest birth listed them."""
        with self._pool.connection() as conn:
            return sorted(repo.known_devices(conn, gateway_id))

    def show_config(
        self, gateway_id: str, *, history: int = 50, region: str | None = None
    ) -> ConfigView:
        """Desired (latest) config, what the gateway reported, per device, and history."""
        self._check_region(gateway_id, region)
        with self._pool.connection() as conn:
            if repo.gateway_region(conn, gateway_id) is None:
                raise NotFoundError(f"gateway {gateway_id!r} is not known (no birth seen)")
            versions = repo.desired_history(conn, gateway_id, history)
            reported = repo.get_reported(conn, gateway_id)
            states = {s["device"]: s for s in repo.device_states(conn, gateway_id)}
        desired = versions[0] if versions else None
        held = desired is not None and desired.status == "held"
        names = sorted(set(states) | set(desired.devices if desired else {}))
        devices = []
        for name in names:
            state = states.get(name, {})
            wanted = desired.version if desired and name in desired.devices else None
            devices.append(
                DeviceConfigState(
                    device=name,
                    status=device_status(
                        state.get("status"), state.get("version"), wanted, held=held
                    ),
                    version=state.get("version"),
                    points=state.get("points") or {},
                    drift=state.get("drift") or [],
                    detail=state.get("detail", ""),
                    updated_at=state.get("updated_at"),
                )
            )
        return ConfigView(
            gateway_id=gateway_id,
            desired=desired,
            reported=reported,
            devices=devices,
            history=versions,
        )

    def audit(
        self, gateway_id: str, *, limit: int = 100, offset: int = 0, region: str | None = None
    ) -> list[AuditEntry]:
        self._check_region(gateway_id, region)
        with self._pool.connection() as conn:
            return repo.list_audit(conn, gateway_id, limit, offset)

    def _check_region(self, gateway_id: str, region: str | None) -> None:
        """:class:`NotFoundError` for a gateway outside ``region`` (None: any) — in the
        same words as for one never seen, so a caller cannot tell which."""
        if region is None:
            return
        with self._pool.connection() as conn:
            if repo.gateway_region(conn, gateway_id) != region:
                raise NotFoundError(f"gateway {gateway_id!r} is not known (no birth seen)")

    # -- publishing ----------------------------------------------------------------------
    def publish_pending(self) -> PendingPublished:
        """Publish what is stored but unpublished (the broker was away); the loop's job."""
        return self._documents.publish_pending()

    def _audit_refusal(
        self, actor: str, action: str, gateway_id: str, reason: str, error: ConfigError
    ) -> None:
        detail: dict[str, Any] = {"error": str(error)}
        if isinstance(error, RefusedError):
            detail.update(field=error.field, limit=error.limit)
        if isinstance(error, ApprovalError):
            detail.update(approval=error.reference)
        with self._pool.connection() as conn:
            repo.append_audit(
                conn,
                actor=actor,
                action=action,
                gateway_id=gateway_id,
                target=None,
                reason=reason,
                outcome="refused",
                detail=detail,
            )
        log.info("%s by %s on %s refused: %s", action, actor, gateway_id, error)


def _require_region(conn: Connection[Any], gateway_id: str) -> str:
    region = repo.gateway_region(conn, gateway_id)
    if region is None:
        raise NotFoundError(f"gateway {gateway_id!r} is not known (no birth seen)")
    return region
