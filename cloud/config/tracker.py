"""ConfigTracker: what the gateways answered, applied once per event (the config inbox).

Consumes ``gateway.birth`` (which devices a gateway has, with profile and nameplate),
``command.acked`` (command status), ``config.reported`` (state per gateway and device)
and dispatch's ``workorder.*`` (a technician on site holds the site's gateways), and
expires commands that got no final ack in time. Every change and the events it causes
(``command.*``, ``config.*``) and its audit rows commit in one transaction (outbox).
Needs only the database: no key, no broker.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any
from uuid import UUID

from cloud.adapters.postgres import Connection, ConnectionPool
from cloud.config import repository as repo
from cloud.config import site_repository as srepo
from cloud.config import tech_repository as trepo
from cloud.config.logic import (
    HoldChange,
    command_transition,
    config_report_changed,
    hold_change,
    overdue_before,
)
from cloud.config.profile_assignment import SiteFacts
from cloud.config.tech_rules import REQUEST_LOG_KEPT
from cloud.events.outbox import emit, handle_once
from cloud.events.types import (
    CommandAcked,
    CommandOutcome,
    ConfigOutcome,
    ConfigReported,
    GatewayBirth,
    GatewayRegistration,
    command_outcome_event,
    config_outcome_event,
)
from cloud.events.users import UserChanged
from cloud.events.workorders import WorkOrderChanged
from contracts.timeutil import utc_now

__all__ = ["SCHEMA", "ConfigTracker"]

log = logging.getLogger(__name__)

#: The config service's PostgreSQL schema (outbox, inbox).
SCHEMA = "config"
_NAMESPACE = uuid.UUID("3b0f6f0e-8c51-4d8e-9d1f-5a0c2e7b9c44")


def _event_id(*parts: object) -> UUID:
    # Derived from what the event is about, so a retried transaction emits the same id.
    return uuid.uuid5(_NAMESPACE, "/".join(str(p) for p in parts))


class ConfigTracker:
    """Applies the gateways' answers; thread-safe (each call takes a pooled connection)."""

    def __init__(self, pool: ConnectionPool[Connection[Any]], *, grace_s: float = 10.0) -> None:
        self._pool = pool
        self._grace_s = grace_s

    def apply_birth(
        self, event_id: UUID, region: str, occurred_at: datetime, birth: GatewayBirth
    ) -> bool:
        """Record the gateway's region and devices; False when handled before."""
        with self._pool.connection() as conn:
            if not handle_once(conn, SCHEMA, event_id):
                return False
            if repo.upsert_gateway_birth(conn, birth.gateway_id, region, occurred_at):
                repo.replace_devices(conn, birth.gateway_id, birth.devices)
            return True

    def apply_registration(
        self, event_id: UUID, occurred_at: datetime, registration: GatewayRegistration
    ) -> bool:
        """Record where the gateway stands (site, network operator, coordinates) from the
        registry's ``gateway.registered``/``updated``; False when handled before or older
        than what is recorded. Assignment by location reads it."""
        site = SiteFacts(
            registration.site_id,
            registration.region.value,
            registration.utility,
            registration.latitude,
            registration.longitude,
        )
        with self._pool.connection() as conn:
            if not handle_once(conn, SCHEMA, event_id):
                return False
            return srepo.upsert_gateway_site(conn, registration.gateway_id, site, occurred_at)

    def apply_command_ack(self, event_id: UUID, ack: CommandAcked) -> str | None:
        """Move the command's status; the new status, or None when nothing changed."""
        with self._pool.connection() as conn:
            if not handle_once(conn, SCHEMA, event_id):
                return None
            command = repo.lock_open_command(conn, ack.command_id)
            if command is None or command.gateway_id != ack.gateway_id:
                log.warning("ack from %s for unknown command %s", ack.gateway_id, ack.command_id)
                return None
            step = command_transition(command.status, command.closed_by, ack.status, ack.detail)
            if step is None:
                return None
            closed_by = "gateway" if step.final else None
            repo.set_command_status(conn, command.id, step.status, ack.detail, closed_by)
            if step.final:
                _close(conn, command, step.status, ack.detail, "gateway", actor=ack.gateway_id)
            return step.status

    def apply_config_report(
        self, event_id: UUID, region: str, occurred_at: datetime, report: ConfigReported
    ) -> str | None:
        """Record a ``config_state``; the event name emitted, or None."""
        with self._pool.connection() as conn:
            if not handle_once(conn, SCHEMA, event_id):
                return None
            previous = repo.lock_reported(conn, report.gateway_id)
            if previous is not None and _is_stale(previous, occurred_at, report.version):
                return None
            repo.upsert_reported(
                conn,
                report.gateway_id,
                version=report.version,
                hash_=report.hash,
                status=report.status,
                drift=report.drift,
                detail=report.detail,
                reported_at=occurred_at,
            )
            repo.upsert_device_states(conn, report.gateway_id, _device_rows(report))
            before = previous[:3] if previous is not None else None
            if not config_report_changed(before, report.version, report.status, report.drift):
                return None
            return _announce_report(conn, event_id, region, report)

    def apply_work_order(self, event_id: UUID, change: WorkOrderChanged) -> HoldChange | None:
        """Hold the work order's gateways while it is on site, lift its holds once it is
        not; each hold and release audited. None when handled before or older than the
        newest event of that work order applied (events may arrive out of order)."""
        with self._pool.connection() as conn:
            if not handle_once(conn, SCHEMA, event_id):
                return None
            wo = change.work_order_id
            if not repo.record_work_order(
                conn,
                wo,
                change.status,
                change.on_site,
                change.at,
                region=change.region,
                site_id=change.site_id,
                assignee=change.assignee,
                gateway_ids=change.gateway_ids,
            ):
                return None
            step = hold_change(change.on_site, repo.work_order_holds(conn, wo), change.gateway_ids)
            repo.lock_gateways(conn, sorted(step.hold | step.release))
            repo.add_holds(conn, wo, sorted(step.hold), change.at)
            repo.remove_holds(conn, wo, sorted(step.release))
            for gateway_id in sorted(step.hold | step.release):
                _audit_hold(conn, change, gateway_id, held=gateway_id in step.hold)
            return step

    def apply_user(self, event_id: UUID, occurred_at: datetime, user: UserChanged) -> bool:
        """Keep which broker identity (``_tech/<name>``) is which employee, and whether
        the user is disabled: a technician's push is accepted only from the identity of
        the employee it names. False when handled before or older than what is kept."""
        with self._pool.connection() as conn:
            if not handle_once(conn, SCHEMA, event_id):
                return False
            return trepo.record_technician(
                conn,
                user.user_id,
                broker_username=user.broker_username,
                employee_no=user.employee_no,
                home_region=user.home_region.value,
                disabled=user.disabled,
                at=occurred_at,
            )

    def expire_overdue(self, *, now: datetime | None = None, limit: int = 500) -> int:
        """Mark commands with no final ack by ``expires_at`` + grace expired; how many."""
        cutoff = overdue_before(now or utc_now(), self._grace_s)
        detail = f"no final ack by expires_at + {self._grace_s:g} s"
        with self._pool.connection() as conn:
            expired = repo.expire_overdue(conn, cutoff, detail, limit)
            for command in expired:
                _close(conn, command, "expired", detail, "cloud", actor="cloud")
        for command in expired:
            log.info(
                "command %s to %s expired (was %s)", command.id, command.gateway_id, command.status
            )
        return len(expired)

    def purge_tech_requests(self, *, now: datetime | None = None, limit: int = 1000) -> int:
        """Forget technician requests older than the log keeps them; how many."""
        before = (now or utc_now()) - REQUEST_LOG_KEPT
        with self._pool.connection() as conn:
            return trepo.purge_requests(conn, before, limit)


def _is_stale(
    previous: tuple[int | None, str, list[str], datetime],
    occurred_at: datetime,
    version: int | None,
) -> bool:
    """Reports may arrive out of order (bus, backfill): an older one changes nothing."""
    prev_version, _, _, reported_at = previous
    if occurred_at < reported_at:
        return True
    return prev_version is not None and version is not None and version < prev_version


def _device_rows(
    report: ConfigReported,
) -> list[tuple[str, int | None, str, dict[str, Any], list[str], str]]:
    rows: list[tuple[str, int | None, str, dict[str, Any], list[str], str]] = []
    for device, status in sorted(report.devices.items()):
        drift = [d for d in report.drift if d.startswith(f"{device}.")]
        rows.append(
            (device, report.version, status, report.points.get(device, {}), drift, report.detail)
        )
    return rows


def _announce_report(
    conn: Connection[Any], event_id: UUID, region: str, report: ConfigReported
) -> str:
    versions = repo.config_versions(conn, report.gateway_id)
    outcome = ConfigOutcome(
        gateway_id=report.gateway_id,
        version=report.version,
        desired_version=max(versions) if versions else None,
        hash=report.hash,
        status=report.status,
        devices=dict(report.devices),
        drift=list(report.drift),
        detail=report.detail,
    )
    event = config_outcome_event(_event_id("config", event_id), region, outcome)
    emit(conn, SCHEMA, event)
    repo.append_audit(
        conn,
        actor=report.gateway_id,
        action=event.name,
        gateway_id=report.gateway_id,
        target=f"version {report.version}",
        reason="",
        outcome=report.status,
        detail={"devices": outcome.devices, "drift": outcome.drift, "detail": report.detail},
    )
    return event.name


def _audit_hold(
    conn: Connection[Any], change: WorkOrderChanged, gateway_id: str, *, held: bool
) -> None:
    """``gateway.held`` or ``gateway.released`` (outcome ``still held`` while another
    work order holds it), in the caller's transaction."""
    others = [w for w in repo.gateway_holds(conn, gateway_id) if w != change.work_order_id]
    outcome = "held" if held else ("still held" if others else "released")
    repo.append_audit(
        conn,
        actor=change.actor or "dispatch",
        action="gateway.held" if held else "gateway.released",
        gateway_id=gateway_id,
        target=f"work order {change.work_order_id}",
        reason=f"work order {change.work_order_id} {change.status}",
        outcome=outcome,
        detail={
            "work_order_id": change.work_order_id,
            "site_id": change.site_id,
            "status": change.status,
            "at": change.at.isoformat(),
            "held_by": sorted([*others, change.work_order_id]) if held else others,
        },
    )


def _close(
    conn: Connection[Any],
    command: repo.OpenCommand,
    status: str,
    detail: str,
    closed_by: str,
    *,
    actor: str,
) -> None:
    """Emit the command's final event and its audit row (in the caller's transaction)."""
    outcome = CommandOutcome(
        gateway_id=command.gateway_id,
        command_id=command.id,
        name=command.name,
        device=command.device,
        status=status,
        previous=command.status,
        detail=detail,
        issued_by=command.issued_by,
        closed_by=closed_by,
    )
    event = command_outcome_event(_event_id("command", command.id, status), command.region, outcome)
    emit(conn, SCHEMA, event)
    repo.append_audit(
        conn,
        actor=actor,
        action=event.name,
        gateway_id=command.gateway_id,
        target=str(command.id),
        reason="",
        outcome=status,
        detail={"detail": detail, "previous": command.status},
    )
