"""Field technicians push a grid-code profile to a site over MQTT (issue 18.4).

:meth:`TechnicianPushes.handle` takes one message from a technician's request topic and
returns the answer for their reply topic. The request is logged (replay protection) and
judged by :mod:`cloud.config.tech_rules`; an accepted one becomes, on each gateway of
the site, the grid-code profile's settings for each of its devices (mapped by
:func:`device_profiles.device_settings` onto the device's profile and nameplate), checked
on every gateway before anything is signed, then signed, audited and published like any
other change (actor: the employee; reason: ``technician push, work order N``). The hold
the technician's own work order puts on the site does not stop their push; another work
order's does (the version then waits, ``held``, like any other).

:meth:`TechnicianPushes.push_from_portal` is the same action from the MOSIE's job screen:
the signed-in session vouches for the employee instead of the broker, the form's
idempotency key makes the request's id (a double tap is one request, answered with the
first outcome), and the same rules judge it.

Seam for issue 18.2: :class:`ApprovalCheck` (whether a change stays within the site's
network-operator connection approval; ``cloud.config.approvals`` once it exists). Until
one is given, every change is within approval.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, cast
from uuid import UUID, uuid5

from cloud.adapters.postgres import Connection, ConnectionPool
from cloud.config import repository as repo
from cloud.config import tech_repository as trepo
from cloud.config.errors import ConfigError, RefusedError
from cloud.config.service import ConfigService
from cloud.config.tech_repository import LoggedRequest
from cloud.config.tech_rules import Accepted, JobFact, Origin, Refusal, TechnicianFact, judge
from contracts.messages import (
    ConfigReq,
    ConfigResp,
    MessageError,
    TechOutcome,
    decode,
)
from contracts.timeutil import utc_now
from contracts.topics import Kind, Region, TopicError, parse_tech_topic, tech_topic
from device_profiles import DeviceProfile, GridCodeProfile, builtin_grid_code, device_settings

__all__ = [
    "ApprovalCheck",
    "LoggedRequest",
    "PortalOrigin",
    "Reply",
    "TechnicianPushes",
    "builtin_grid_code_or_none",
]

log = logging.getLogger(__name__)

#: The audit action of a technician's push.
ACTION = "config.tech_push"
#: The namespace of portal requests' ids: one id per (user, form key).
_PORTAL_IDS = UUID("6f1f4a52-3c0e-4f49-9a4e-1b7d2f0c9e21")


@dataclass(frozen=True, slots=True)
class PortalOrigin:
    """A request from the portal: ``portal/<user id>``, under the URL's region."""

    username: str
    region: Region


class ApprovalCheck(Protocol):
    """Why ``settings`` on ``gateway_id`` of ``site_id`` would leave the site's connection
    approval (its region, trip settings, export limit), or None when they stay within it."""

    def __call__(
        self,
        region: str,
        site_id: int,
        gateway_id: str,
        profile: GridCodeProfile,
        settings: Mapping[str, dict[str, Any]],
    ) -> str | None: ...


def builtin_grid_code_or_none(profile_id: str) -> GridCodeProfile | None:
    try:
        return builtin_grid_code(profile_id)
    except KeyError:
        return None


@dataclass(frozen=True, slots=True)
class Reply:
    topic: str
    response: ConfigResp


class TechnicianPushes:
    """Judges technicians' requests and signs what is accepted (thread-safe)."""

    def __init__(
        self,
        pool: ConnectionPool[Connection[Any]],
        config: ConfigService,
        profiles: Mapping[str, DeviceProfile],
        *,
        grid_codes: Callable[[str], GridCodeProfile | None] = builtin_grid_code_or_none,
        approval: ApprovalCheck | None = None,
        production: bool = False,
    ) -> None:
        self._pool = pool
        self._config = config
        self._profiles = dict(profiles)
        self._grid_codes = grid_codes
        self._approval = approval
        self._production = production

    def handle(self, topic: str, payload: bytes, *, now: datetime | None = None) -> Reply | None:
        """The answer to one message on ``topic`` (None: not a technician's request
        topic, so there is nobody to answer)."""
        try:
            where = parse_tech_topic(topic)
        except TopicError as exc:
            log.warning("technician request on %r ignored: %s", topic, exc)
            return None
        if where.kind is not Kind.CONFIG_REQ:
            return None
        reply_to = tech_topic(where.region, where.name, Kind.CONFIG_RESP)
        try:
            message = decode(Kind.CONFIG_REQ, payload)
        except MessageError as exc:
            log.info("technician request from %s refused: %s", where.username, exc.reason)
            return Reply(reply_to, _answer(None, "invalid", exc.reason))
        assert isinstance(message, ConfigReq)
        return Reply(reply_to, self._judge_and_apply(message, where, now or utc_now()))

    def push_from_portal(
        self,
        *,
        user_id: str,
        employee_no: str,
        home_region: str,
        region: str,
        site_id: int,
        profile: str,
        form_key: str,
        now: datetime | None = None,
    ) -> ConfigResp:
        """The signed-in MOSIE's push of ``profile`` to ``site_id`` from their job page
        under ``region``'s URL (see the module). The session proved the user, employee
        and home region; the identity service's latest word on the user (disabled) still
        counts. A form sent again answers its first outcome."""
        now = now or utc_now()
        seed = f"{user_id}\n{form_key}"
        request = ConfigReq(
            id=uuid5(_PORTAL_IDS, seed),
            employee_no=employee_no,
            site_id=site_id,
            profile=profile,
            ts=now,
            nonce=hashlib.sha256(seed.encode()).hexdigest()[:32],
        )
        where = PortalOrigin(f"portal/{user_id}", Region(region))
        with self._pool.connection() as conn:
            fresh = trepo.record_request(conn, request, where.username, region, now)
            if not fresh:
                return _again(request, trepo.logged_request(conn, request.id))
            known = trepo.technician_of_user(conn, user_id)
            jobs = trepo.jobs_at_site(conn, site_id, employee_no)
        disabled = known is not None and known.disabled
        technician = TechnicianFact(where.username, employee_no, home_region, disabled)
        return self._conclude(request, where, now, True, technician, jobs)

    def pushes_of_job(self, work_order_id: int, employee_no: str) -> list[LoggedRequest]:
        """The newest pushes judged under the work order by its technician (the job
        page's list), newest first."""
        with self._pool.connection() as conn:
            return trepo.job_requests(conn, work_order_id, employee_no)

    def _judge_and_apply(self, request: ConfigReq, where: Origin, now: datetime) -> ConfigResp:
        with self._pool.connection() as conn:
            fresh = trepo.record_request(conn, request, where.username, where.region.value, now)
            technician = trepo.technician(conn, where.username)
            jobs = trepo.jobs_at_site(conn, request.site_id, request.employee_no)
        return self._conclude(request, where, now, fresh, technician, jobs)

    def _conclude(
        self,
        request: ConfigReq,
        where: Origin,
        now: datetime,
        fresh: bool,
        technician: TechnicianFact | None,
        jobs: Sequence[JobFact],
    ) -> ConfigResp:
        verdict = judge(
            request,
            where,
            replayed=not fresh,
            now=now,
            technician=technician,
            jobs=jobs,
            profile=self._grid_codes(request.profile),
            production=self._production,
        )
        if isinstance(verdict, Refusal):
            return self._refuse(request, where, verdict.code, verdict.reason, record=fresh)
        assert isinstance(verdict, Accepted)
        profile = self._grid_codes(request.profile)
        assert profile is not None
        return self._apply(request, where, verdict.job, profile)

    def _apply(
        self, request: ConfigReq, where: Origin, job: JobFact, profile: GridCodeProfile
    ) -> ConfigResp:
        region = where.region.value
        wo = job.work_order_id
        try:
            plans = self._plan(region, job, profile)
            if not plans:
                raise RefusedError(
                    "site", "a gateway with configurable devices", "nothing to configure"
                )
            for gateway_id, settings in plans.items():
                self._config.check_devices(gateway_id, settings)
                why = self._approval and self._approval(
                    region, request.site_id, gateway_id, profile, settings
                )
                if why:
                    return self._refuse(request, where, "not_approved", why, work_order_id=wo)
        except ConfigError as exc:
            return self._refuse(request, where, "refused", str(exc), work_order_id=wo)
        reason = f"technician push, work order {wo}"
        versions: dict[str, int] = {}
        try:
            for gateway_id, settings in plans.items():
                desired = self._config.new_version(
                    gateway_id,
                    profile.profile_ref(),
                    settings,
                    request.employee_no,
                    reason,
                    action=ACTION,
                    despite_hold_of=wo,
                )
                versions[gateway_id] = desired.version
        except ConfigError as exc:  # a birth changed the devices since the check
            detail = f"{exc} (signed before it: {versions or 'none'})"
            return self._refuse(
                request, where, "refused", detail, work_order_id=wo, versions=versions
            )
        detail = f"{profile.id} v{profile.version} signed for {len(versions)} gateway(s)"
        with self._pool.connection() as conn:
            trepo.finish_request(
                conn, request.id, "accepted", detail, work_order_id=wo, versions=versions
            )
        log.info(
            "technician push by %s (%s) on site %s, work order %s: %s",
            where.username,
            request.employee_no,
            request.site_id,
            wo,
            versions,
        )
        return _answer(request, "accepted", detail, work_order_id=wo, versions=versions)

    def _plan(
        self, region: str, job: JobFact, profile: GridCodeProfile
    ) -> dict[str, dict[str, dict[str, Any]]]:
        """gateway → device → the profile's settings for it: every gateway of the job's
        site that this service knows in ``region``, every device whose profile takes some
        of the grid code's settings."""
        plans: dict[str, dict[str, dict[str, Any]]] = {}
        with self._pool.connection() as conn:
            for gateway_id in sorted(set(job.gateway_ids)):
                if repo.gateway_region(conn, gateway_id) != region:
                    continue
                devices: dict[str, dict[str, Any]] = {}
                for name, known in sorted(repo.known_devices(conn, gateway_id).items()):
                    device = self._profiles.get(known.profile or "")
                    if device is None:
                        continue
                    plate = {k: float(v) for k, v in known.nameplate.items() if _number(v)}
                    mapped = device_settings(profile, device, nameplate=plate)
                    if mapped.settings:
                        devices[name] = dict(mapped.settings)
                if devices:
                    plans[gateway_id] = devices
        return plans

    def _refuse(
        self,
        request: ConfigReq,
        where: Origin,
        code: TechOutcome,
        reason: str,
        *,
        record: bool = True,
        work_order_id: int | None = None,
        versions: dict[str, int] | None = None,
    ) -> ConfigResp:
        """Log the refusal (on the request's row, unless it is a replay of another's)."""
        if record:
            with self._pool.connection() as conn:
                trepo.finish_request(
                    conn, request.id, code, reason, work_order_id=work_order_id, versions=versions
                )
        log.info(
            "technician request %s from %s (%s) for site %s refused (%s): %s",
            request.id,
            where.username,
            request.employee_no,
            request.site_id,
            code,
            reason,
        )
        return _answer(request, code, reason, work_order_id=work_order_id, versions=versions or {})


def _again(request: ConfigReq, logged: LoggedRequest | None) -> ConfigResp:
    """The answer to a portal form sent again: its first outcome, or, while that is still
    being judged, a refusal to do it twice."""
    if logged is None or logged.outcome == "pending":
        return _answer(request, "replayed", "this form is being handled: reload in a moment")
    return _answer(
        request,
        cast(TechOutcome, logged.outcome),
        logged.detail,
        work_order_id=logged.work_order_id,
        versions=logged.versions,
    )


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _answer(
    request: ConfigReq | None,
    code: TechOutcome,
    detail: str,
    *,
    work_order_id: int | None = None,
    versions: dict[str, int] | None = None,
) -> ConfigResp:
    return ConfigResp(
        id=request.id if request else None,
        ok=code == "accepted",
        code=code,
        detail=detail[:2000],
        work_order_id=work_order_id,
        versions=versions or {},
        ts=utc_now(),
    )
