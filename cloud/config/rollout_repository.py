"""Rollout SQL (schema ``config``); every function takes a connection in a transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cloud.adapters.postgres import Connection, Jsonb, dict_row
from cloud.config.rollouts import GatewayStep, RollbackStep, Rollout

#: Serialises rollout creation (the overlap check) across processes.
_CREATE_LOCK = 0x526F6C6C  # "Roll"


@dataclass(frozen=True, slots=True)
class StoredRollout:
    """A rollout row beside its machine: what the machine does not need."""

    machine: Rollout
    region: str
    row: dict[str, Any]


@dataclass(frozen=True, slots=True)
class FactRow:
    """One gateway's versions as stored: (profile, devices) of its latest, base,
    rollout and rollback versions, its last report and whether it is held."""

    gateway_id: str
    latest_version: int | None
    latest_by: str
    latest: tuple[Any, Any] | None
    base: tuple[Any, Any] | None
    ours: tuple[Any, Any] | None
    rollback: tuple[Any, Any] | None
    reported_version: int | None
    reported_status: str | None
    held: bool


def lock_creation(conn: Connection[Any]) -> None:
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (_CREATE_LOCK,))


def active_gateways(conn: Connection[Any], gateway_ids: Sequence[str]) -> dict[int, list[str]]:
    """Rollouts still able to push (running, paused) → which of ``gateway_ids`` they hold."""
    rows = conn.execute(
        "SELECT g.rollout_id, array_agg(g.gateway_id ORDER BY g.gateway_id)"
        " FROM config.rollout_gateways g JOIN config.rollouts r ON r.id = g.rollout_id"
        " WHERE r.state IN ('running', 'paused') AND g.gateway_id = ANY(%s) GROUP BY 1",
        (list(gateway_ids),),
    ).fetchall()
    return {int(r[0]): list(r[1]) for r in rows}


def region_devices(conn: Connection[Any], region: str) -> dict[str, dict[str, str | None]]:
    """Gateway → device → profile, for every gateway of the region seen in a birth."""
    rows = conn.execute(
        "SELECT g.gateway_id, d.device, d.profile FROM config.gateways g"
        " LEFT JOIN config.devices d ON d.gateway_id = g.gateway_id WHERE g.region = %s",
        (region,),
    ).fetchall()
    out: dict[str, dict[str, str | None]] = {}
    for gateway_id, device, profile in rows:
        devices = out.setdefault(gateway_id, {})
        if device is not None:
            devices[device] = profile
    return out


def latest_versions(conn: Connection[Any], gateway_ids: Sequence[str]) -> dict[str, int]:
    rows = conn.execute(
        "SELECT gateway_id, max(version) FROM config.desired WHERE gateway_id = ANY(%s) GROUP BY 1",
        (list(gateway_ids),),
    ).fetchall()
    return {r[0]: int(r[1]) for r in rows}


def insert_rollout(conn: Connection[Any], **fields: Any) -> int:
    cols = list(fields)
    values = [Jsonb(v) if isinstance(v, dict) else v for v in fields.values()]
    row = conn.execute(
        f"INSERT INTO config.rollouts ({', '.join(cols)})"
        f" VALUES ({', '.join(['%s'] * len(cols))}) RETURNING id",
        values,
    ).fetchone()
    assert row is not None
    return int(row[0])


def insert_gateways(
    conn: Connection[Any], rollout_id: int, rows: Sequence[tuple[str, int, int | None]]
) -> None:
    """Rows of (gateway, wave, base_version), in the rollout's order."""
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO config.rollout_gateways (rollout_id, gateway_id, position, wave,"
            " status, base_version) VALUES (%s, %s, %s, %s, 'waiting', %s)",
            [(rollout_id, g, i, w, b) for i, (g, w, b) in enumerate(rows)],
        )


def load(
    conn: Connection[Any], rollout_id: int, region: str | None, *, lock: bool = False
) -> StoredRollout | None:
    """The rollout (its row locked until commit with ``lock``); None when absent or of
    another region than ``region`` (if given)."""
    row = (
        conn.cursor(row_factory=dict_row)
        .execute(
            "SELECT * FROM config.rollouts WHERE id = %(id)s"
            " AND (%(region)s::text IS NULL OR region = %(region)s)"
            + (" FOR UPDATE" if lock else ""),
            {"id": rollout_id, "region": region},
        )
        .fetchone()
    )
    if row is None:
        return None
    steps = conn.execute(
        "SELECT gateway_id, wave, status, base_version, version, pushed_at, detail,"
        " rollback_status, rollback_version, rollback_detail FROM config.rollout_gateways"
        " WHERE rollout_id = %s ORDER BY position",
        (rollout_id,),
    ).fetchall()
    machine = Rollout(
        id=int(row["id"]),
        state=row["state"],
        waves=tuple(row["waves"]),
        gateways=tuple(
            GatewayStep(
                gateway_id=s[0],
                wave=s[1],
                status=s[2],
                base_version=s[3],
                version=s[4],
                pushed_at=s[5],
                detail=s[6],
                rollback=RollbackStep(s[7], s[8], s[9]) if s[7] is not None else None,
            )
            for s in steps
        ),
        failure_threshold=float(row["failure_threshold"]),
        on_failure=row["on_failure"],
        wave_timeout_s=float(row["wave_timeout_s"]),
        current_wave=int(row["current_wave"]),
        accepted_through=int(row["accepted_through"]),
        detail=row["detail"],
    )
    return StoredRollout(machine, row["region"], row)


def save(conn: Connection[Any], before: Rollout, after: Rollout) -> None:
    """Write what changed between ``before`` and ``after``."""
    if (before.state, before.current_wave, before.accepted_through, before.detail) != (
        after.state,
        after.current_wave,
        after.accepted_through,
        after.detail,
    ):
        conn.execute(
            "UPDATE config.rollouts SET state = %s, current_wave = %s, accepted_through = %s,"
            " detail = %s, updated_at = now() WHERE id = %s",
            (after.state, after.current_wave, after.accepted_through, after.detail, after.id),
        )
    old = {g.gateway_id: g for g in before.gateways}
    changed = [g for g in after.gateways if old.get(g.gateway_id) != g]
    if not changed:
        return
    with conn.cursor() as cur:
        cur.executemany(
            "UPDATE config.rollout_gateways SET status = %s, version = %s, pushed_at = %s,"
            " detail = %s, rollback_status = %s, rollback_version = %s, rollback_detail = %s,"
            " updated_at = now() WHERE rollout_id = %s AND gateway_id = %s",
            [
                (
                    g.status,
                    g.version,
                    g.pushed_at,
                    g.detail,
                    g.rollback.status if g.rollback else None,
                    g.rollback.version if g.rollback else None,
                    g.rollback.detail if g.rollback else "",
                    after.id,
                    g.gateway_id,
                )
                for g in changed
            ],
        )
    conn.execute("UPDATE config.rollouts SET updated_at = now() WHERE id = %s", (after.id,))


def facts(conn: Connection[Any], steps: Sequence[GatewayStep]) -> list[FactRow]:
    if not steps:
        return []
    rows = conn.execute(
        "SELECT g.gw, l.version, l.created_by, l.profile, l.devices,"
        " b.profile, b.devices, o.profile, o.devices, rb.profile, rb.devices,"
        " r.version, r.status,"
        " EXISTS (SELECT 1 FROM config.holds h WHERE h.gateway_id = g.gw)"
        " FROM unnest(%s::text[], %s::int[], %s::int[], %s::int[]) AS g(gw, base, ours, rbv)"
        " LEFT JOIN LATERAL (SELECT version, created_by, profile, devices FROM config.desired d"
        "   WHERE d.gateway_id = g.gw ORDER BY version DESC LIMIT 1) l ON true"
        " LEFT JOIN config.desired b ON b.gateway_id = g.gw AND b.version = g.base"
        " LEFT JOIN config.desired o ON o.gateway_id = g.gw AND o.version = g.ours"
        " LEFT JOIN config.desired rb ON rb.gateway_id = g.gw AND rb.version = g.rbv"
        " LEFT JOIN config.reported r ON r.gateway_id = g.gw",
        (
            [s.gateway_id for s in steps],
            [s.base_version for s in steps],
            [s.version for s in steps],
            [s.rollback.version if s.rollback else None for s in steps],
        ),
    ).fetchall()

    def pair(a: Any, b: Any) -> tuple[Any, Any] | None:
        return None if a is None else (a, b)

    return [
        FactRow(
            gateway_id=r[0],
            latest_version=r[1],
            latest_by=r[2] or "",
            latest=pair(r[3], r[4]),
            base=pair(r[5], r[6]),
            ours=pair(r[7], r[8]),
            rollback=pair(r[9], r[10]),
            reported_version=r[11],
            reported_status=r[12],
            held=bool(r[13]),
        )
        for r in rows
    ]


def desired_settings(
    conn: Connection[Any], gateway_id: str, version: int
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]] | None:
    row = conn.execute(
        "SELECT profile, devices FROM config.desired WHERE gateway_id = %s AND version = %s",
        (gateway_id, version),
    ).fetchone()
    return (row[0], row[1]) if row else None


def due_ids(conn: Connection[Any], limit: int) -> list[int]:
    """Rollouts the loop must look at: those that may push, and those with outcomes
    still open (reports keep coming after a stop or a rollback)."""
    rows = conn.execute(
        "SELECT r.id FROM config.rollouts r WHERE r.state IN ('running', 'paused')"
        " OR EXISTS (SELECT 1 FROM config.rollout_gateways g WHERE g.rollout_id = r.id"
        "   AND (g.status IN ('pending', 'timed_out') OR g.rollback_status = 'pending'))"
        " ORDER BY r.id LIMIT %s",
        (limit,),
    ).fetchall()
    return [int(r[0]) for r in rows]


def list_rollouts(
    conn: Connection[Any], region: str | None, limit: int, offset: int
) -> list[dict[str, Any]]:
    return (
        conn.cursor(row_factory=dict_row)
        .execute(
            "SELECT r.*, (SELECT count(*) FROM config.rollout_gateways g"
            "  WHERE g.rollout_id = r.id) AS n_gateways FROM config.rollouts r"
            " WHERE (%(region)s::text IS NULL OR region = %(region)s)"
            " ORDER BY id DESC LIMIT %(limit)s OFFSET %(offset)s",
            {"region": region, "limit": limit, "offset": offset},
        )
        .fetchall()
    )


def append_log(
    conn: Connection[Any],
    rollout_id: int,
    region: str,
    *,
    actor: str,
    action: str,
    reason: str,
    outcome: str,
    detail: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> None:
    conn.execute(
        "INSERT INTO config.rollout_log (rollout_id, region, at, actor, action, reason,"
        " outcome, detail) VALUES (%s, %s, coalesce(%s, now()), %s, %s, %s, %s, %s)",
        (rollout_id, region, at, actor, action, reason, outcome, Jsonb(detail or {})),
    )


def log_entries(conn: Connection[Any], rollout_id: int, limit: int) -> list[dict[str, Any]]:
    return (
        conn.cursor(row_factory=dict_row)
        .execute(
            "SELECT at, actor, action, reason, outcome, detail FROM config.rollout_log"
            " WHERE rollout_id = %s ORDER BY id DESC LIMIT %s",
            (rollout_id, limit),
        )
        .fetchall()
    )
