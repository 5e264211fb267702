"""Config service SQL (schema ``config``); every function takes a connection in a transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from cloud.adapters.postgres import Connection, Jsonb, dict_row
from cloud.config.logic import shown_command_status, shown_config_status
from cloud.config.models import AuditEntry, Command, DesiredConfig, ReportedConfig
from contracts.messages import DeviceInfo

_CMD_COLS = (
    "id, gateway_id, region, device, name, args, reason, issued_by, issued_at, expires_at,"
    " status, detail, closed_by, published_at, updated_at"
)
_DESIRED_COLS = (
    "gateway_id, version, profile, devices, hash, created_by, reason, created_at, rollback_of,"
    " published_at"
)
_AUDIT_COLS = "id, at, actor, action, gateway_id, target, reason, outcome, detail"
#: The work orders holding a row's gateway (``x``: the row's table alias), ascending.
_HELD_BY = (
    "coalesce((SELECT array_agg(h.work_order_id ORDER BY h.work_order_id)"
    " FROM config.holds h WHERE h.gateway_id = {x}.gateway_id), '{{}}') AS held_by"
)
#: True where the row's gateway is not held (what is stored for a held one waits).
_NOT_HELD = "NOT EXISTS (SELECT 1 FROM config.holds h WHERE h.gateway_id = {x}.gateway_id)"
#: A desired row with what its shown status needs (``latest``, ``held_by``).
_DESIRED_SHOWN = (
    f"{_DESIRED_COLS}, d.version = (SELECT max(m.version) FROM config.desired m"
    " WHERE m.gateway_id = d.gateway_id) AS latest, " + _HELD_BY.format(x="d")
)


@dataclass(frozen=True, slots=True)
class KnownDevice:
    """A device of a gateway as its latest birth described it."""

    device: str
    profile: str | None
    nameplate: dict[str, Any]


@dataclass(frozen=True, slots=True)
class OpenCommand:
    """What following one command needs (locked for the transaction)."""

    id: UUID
    gateway_id: str
    region: str
    device: str | None
    name: str
    issued_by: str
    status: str
    closed_by: str | None


# -- gateways and devices (from gateway.birth) -------------------------------------------
def upsert_gateway_birth(
    conn: Connection[Any], gateway_id: str, region: str, birth_at: datetime
) -> bool:
    """Record the gateway's region; False when a newer birth was recorded already."""
    row = conn.execute(
        "INSERT INTO config.gateways (gateway_id, region, birth_at) VALUES (%s, %s, %s)"
        " ON CONFLICT (gateway_id) DO UPDATE SET region = EXCLUDED.region,"
        " birth_at = EXCLUDED.birth_at, updated_at = now()"
        " WHERE config.gateways.birth_at <= EXCLUDED.birth_at RETURNING 1",
        (gateway_id, region, birth_at),
    ).fetchone()
    return row is not None


def replace_devices(conn: Connection[Any], gateway_id: str, devices: Sequence[DeviceInfo]) -> None:
    """The gateway's devices become exactly those of its latest birth."""
    conn.execute(
        "DELETE FROM config.devices WHERE gateway_id = %s AND NOT (device = ANY(%s))",
        (gateway_id, [d.device for d in devices]),
    )
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO config.devices (gateway_id, device, profile, nameplate, models)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (gateway_id, device) DO UPDATE SET"
            " profile = EXCLUDED.profile, nameplate = EXCLUDED.nameplate,"
            " models = EXCLUDED.models",
            [
                (gateway_id, d.device, d.profile, Jsonb(dict(d.nameplate)), list(d.models))
                for d in devices
            ],
        )


def lock_gateway_region(conn: Connection[Any], gateway_id: str) -> str | None:
    """The gateway's region, its row locked until commit (serialises versions and
    publishes per gateway); None for a gateway never seen in a birth."""
    row = conn.execute(
        "SELECT region FROM config.gateways WHERE gateway_id = %s FOR UPDATE", (gateway_id,)
    ).fetchone()
    return str(row[0]) if row else None


def gateway_region(conn: Connection[Any], gateway_id: str) -> str | None:
    row = conn.execute(
        "SELECT region FROM config.gateways WHERE gateway_id = %s", (gateway_id,)
    ).fetchone()
    return str(row[0]) if row else None


def known_devices(conn: Connection[Any], gateway_id: str) -> dict[str, KnownDevice]:
    rows = conn.execute(
        "SELECT device, profile, nameplate FROM config.devices WHERE gateway_id = %s",
        (gateway_id,),
    ).fetchall()
    return {r[0]: KnownDevice(r[0], r[1], dict(r[2] or {})) for r in rows}


# -- commands ------------------------------------------------------------------------------
def insert_command(
    conn: Connection[Any],
    *,
    document: dict[str, Any],
    region: str,
    reason: str,
    issued_at: datetime,
    expires_at: datetime,
) -> Command:
    row = (
        conn.cursor(row_factory=dict_row)
        .execute(
            "INSERT INTO config.commands (id, gateway_id, region, device, name, args, reason,"
            " issued_by, issued_at, expires_at, document)"
            f" VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING {_CMD_COLS}",
            (
                document["id"],
                document["gateway_id"],
                region,
                document["device"],
                document["name"],
                Jsonb(document["args"]),
                reason,
                document["issued_by"],
                issued_at,
                expires_at,
                Jsonb(document),
            ),
        )
        .fetchone()
    )
    assert row is not None
    return _command(row)


def _command(row: dict[str, Any]) -> Command:
    """The row as shown: ``held`` (with its work orders) while it waits for a hold."""
    held_by = list(row.pop("held_by", None) or [])
    row["status"] = shown_command_status(row["status"], row["published_at"] is not None, held_by)
    row["held_by"] = held_by if row["status"] == "held" else []
    return Command.model_validate(row)


def get_command(
    conn: Connection[Any], command_id: UUID, region: str | None = None
) -> Command | None:
    """The command; None when absent or of another region than ``region`` (if given)."""
    row = (
        conn.cursor(row_factory=dict_row)
        .execute(
            f"SELECT {_CMD_COLS}, {_HELD_BY.format(x='c')} FROM config.commands c"
            " WHERE id = %(id)s"
            " AND (%(region)s::text IS NULL OR region = %(region)s)",
            {"id": command_id, "region": region},
        )
        .fetchone()
    )
    return _command(row) if row else None


def list_commands(
    conn: Connection[Any], gateway_id: str, limit: int, offset: int, region: str | None = None
) -> list[Command]:
    rows = (
        conn.cursor(row_factory=dict_row)
        .execute(
            f"SELECT {_CMD_COLS}, {_HELD_BY.format(x='c')} FROM config.commands c"
            " WHERE gateway_id = %(gw)s"
            " AND (%(region)s::text IS NULL OR region = %(region)s)"
            " ORDER BY issued_at DESC, id LIMIT %(limit)s OFFSET %(offset)s",
            {"gw": gateway_id, "region": region, "limit": limit, "offset": offset},
        )
        .fetchall()
    )
    return [_command(r) for r in rows]


def lock_open_command(conn: Connection[Any], command_id: UUID) -> OpenCommand | None:
    row = conn.execute(
        "SELECT id, gateway_id, region, device, name, issued_by, status, closed_by"
        " FROM config.commands WHERE id = %s FOR UPDATE",
        (command_id,),
    ).fetchone()
    return OpenCommand(*row) if row else None


def set_command_status(
    conn: Connection[Any], command_id: UUID, status: str, detail: str, closed_by: str | None
) -> None:
    conn.execute(
        "UPDATE config.commands SET status = %s, detail = %s, closed_by = %s, updated_at = now()"
        " WHERE id = %s",
        (status, detail, closed_by, command_id),
    )


def expire_overdue(
    conn: Connection[Any], before: datetime, detail: str, limit: int
) -> list[OpenCommand]:
    """Mark open commands with ``expires_at`` < ``before`` expired (by the cloud); the
    rows as they were (previous status)."""
    rows = conn.execute(
        "WITH due AS (SELECT id, status FROM config.commands"
        "  WHERE status IN ('pending', 'accepted') AND expires_at < %s"
        "  ORDER BY expires_at LIMIT %s FOR UPDATE SKIP LOCKED)"
        " UPDATE config.commands c SET status = 'expired', closed_by = 'cloud', detail = %s,"
        "  updated_at = now() FROM due WHERE c.id = due.id"
        " RETURNING c.id, c.gateway_id, c.region, c.device, c.name, c.issued_by, due.status,"
        "  NULL::text",
        (before, limit, detail),
    ).fetchall()
    return [OpenCommand(*r) for r in rows]


def claim_unpublished_command(
    conn: Connection[Any], command_id: UUID, now: datetime
) -> tuple[str, str, dict[str, Any]] | None:
    """(region, gateway, document) of a pending, unexpired, unpublished command, locked;
    None when published already, closed, expired, held (a technician is on the site) or
    being published by another process."""
    # First share-lock the gateway's row: a hold being recorded locks it (lock_gateways),
    # so this waits for that commit and the next statement's snapshot sees the hold.
    conn.execute(
        "SELECT 1 FROM config.gateways WHERE gateway_id ="
        " (SELECT gateway_id FROM config.commands WHERE id = %s) FOR SHARE",
        (command_id,),
    )
    row = conn.execute(
        "SELECT region, gateway_id, document FROM config.commands c WHERE id = %s"
        " AND published_at IS NULL AND status = 'pending' AND expires_at > %s"
        f" AND {_NOT_HELD.format(x='c')} FOR UPDATE SKIP LOCKED",
        (command_id, now),
    ).fetchone()
    return (row[0], row[1], row[2]) if row else None


def mark_command_published(conn: Connection[Any], command_id: UUID) -> None:
    conn.execute(
        "UPDATE config.commands SET published_at = now(), updated_at = now() WHERE id = %s",
        (command_id,),
    )


def unpublished_command_ids(conn: Connection[Any], now: datetime, limit: int) -> list[UUID]:
    """Commands to publish, oldest first; none of a held gateway (they would fill the
    round's ``limit`` and starve the others)."""
    rows = conn.execute(
        "SELECT id FROM config.commands c WHERE published_at IS NULL AND status = 'pending'"
        f" AND expires_at > %s AND {_NOT_HELD.format(x='c')} ORDER BY issued_at LIMIT %s",
        (now, limit),
    ).fetchall()
    return [r[0] for r in rows]


# -- desired configs -------------------------------------------------------------------------
def config_versions(conn: Connection[Any], gateway_id: str) -> list[int]:
    rows = conn.execute(
        "SELECT version FROM config.desired WHERE gateway_id = %s ORDER BY version", (gateway_id,)
    ).fetchall()
    return [int(r[0]) for r in rows]


def insert_desired(
    conn: Connection[Any],
    *,
    document: dict[str, Any],
    region: str,
    hash_: str,
    reason: str,
    rollback_of: int | None,
) -> DesiredConfig:
    row = (
        conn.cursor(row_factory=dict_row)
        .execute(
            "INSERT INTO config.desired (gateway_id, version, region, profile, devices, document,"
            " hash, created_by, reason, rollback_of)"
            f" VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING {_DESIRED_COLS}",
            (
                document["gateway_id"],
                document["version"],
                region,
                Jsonb(document["profile"]),
                Jsonb(document["devices"]),
                Jsonb(document),
                hash_,
                document["issued_by"],
                reason,
                rollback_of,
            ),
        )
        .fetchone()
    )
    assert row is not None
    return _desired({**row, "latest": True})


def _desired(row: dict[str, Any]) -> DesiredConfig:
    """The row as shown, with its publishing status (``held`` with its work orders)."""
    held_by = list(row.pop("held_by", None) or [])
    status = shown_config_status(row["published_at"] is not None, row.pop("latest"), held_by)
    return DesiredConfig.model_validate(
        {**row, "status": status, "held_by": held_by if status == "held" else []}
    )


def get_desired(conn: Connection[Any], gateway_id: str, version: int) -> DesiredConfig | None:
    row = (
        conn.cursor(row_factory=dict_row)
        .execute(
            f"SELECT {_DESIRED_SHOWN} FROM config.desired d WHERE gateway_id = %s AND version = %s",
            (gateway_id, version),
        )
        .fetchone()
    )
    return _desired(row) if row else None


def expiring_current(conn: Connection[Any], before: datetime, limit: int) -> list[tuple[str, int]]:
    """(gateway, version) of every gateway's newest config whose ``not_after`` is before
    ``before``."""
    rows = conn.execute(
        "SELECT d.gateway_id, d.version FROM config.desired d"
        " WHERE d.version = (SELECT max(x.version) FROM config.desired x"
        "                    WHERE x.gateway_id = d.gateway_id)"
        " AND (d.document->>'not_after')::timestamptz < %s"
        " ORDER BY d.gateway_id LIMIT %s",
        (before, limit),
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


def desired_history(conn: Connection[Any], gateway_id: str, limit: int) -> list[DesiredConfig]:
    rows = (
        conn.cursor(row_factory=dict_row)
        .execute(
            f"SELECT {_DESIRED_SHOWN} FROM config.desired d WHERE gateway_id = %s"
            " ORDER BY version DESC LIMIT %s",
            (gateway_id, limit),
        )
        .fetchall()
    )
    return [_desired(r) for r in rows]


def latest_unpublished(
    conn: Connection[Any], gateway_id: str
) -> tuple[int, str, dict[str, Any]] | None:
    """(version, region, document) of the gateway's latest version if not published yet:
    only the latest is ever (re)published, so an older one can never replace it."""
    row = conn.execute(
        "SELECT version, region, document, published_at FROM config.desired"
        " WHERE gateway_id = %s ORDER BY version DESC LIMIT 1",
        (gateway_id,),
    ).fetchone()
    if row is None or row[3] is not None:
        return None
    return int(row[0]), str(row[1]), row[2]


def mark_desired_published(conn: Connection[Any], gateway_id: str, version: int) -> None:
    conn.execute(
        "UPDATE config.desired SET published_at = now() WHERE gateway_id = %s AND version = %s",
        (gateway_id, version),
    )


def gateways_with_unpublished_config(conn: Connection[Any], limit: int) -> list[str]:
    rows = conn.execute(
        "SELECT d.gateway_id FROM config.desired d WHERE d.published_at IS NULL"
        " AND d.version = (SELECT max(version) FROM config.desired m"
        f"  WHERE m.gateway_id = d.gateway_id) AND {_NOT_HELD.format(x='d')}"
        " ORDER BY d.created_at LIMIT %s",
        (limit,),
    ).fetchall()
    return [r[0] for r in rows]


# -- reported state --------------------------------------------------------------------------
def reported_version(conn: Connection[Any], gateway_id: str) -> int | None:
    """The config version the gateway last reported handling, if any."""
    row = conn.execute(
        "SELECT version FROM config.reported WHERE gateway_id = %s", (gateway_id,)
    ).fetchone()
    return None if row is None else row[0]


def lock_reported(
    conn: Connection[Any], gateway_id: str
) -> tuple[int | None, str, list[str], datetime] | None:
    """(version, status, drift, reported_at) of the last report, locked."""
    row = conn.execute(
        "SELECT version, status, drift, reported_at FROM config.reported"
        " WHERE gateway_id = %s FOR UPDATE",
        (gateway_id,),
    ).fetchone()
    return (row[0], row[1], list(row[2]), row[3]) if row else None


def upsert_reported(
    conn: Connection[Any],
    gateway_id: str,
    *,
    version: int | None,
    hash_: str | None,
    status: str,
    drift: list[str],
    detail: str,
    reported_at: datetime,
) -> None:
    conn.execute(
        "INSERT INTO config.reported (gateway_id, version, hash, status, drift, detail,"
        " reported_at) VALUES (%s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (gateway_id) DO UPDATE SET version = EXCLUDED.version,"
        " hash = EXCLUDED.hash, status = EXCLUDED.status, drift = EXCLUDED.drift,"
        " detail = EXCLUDED.detail, reported_at = EXCLUDED.reported_at, updated_at = now()",
        (gateway_id, version, hash_, status, drift, detail, reported_at),
    )


def upsert_device_states(
    conn: Connection[Any],
    gateway_id: str,
    rows: Sequence[tuple[str, int | None, str, dict[str, Any], list[str], str]],
) -> None:
    """Rows of (device, version, status, points, drift, detail)."""
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO config.device_state (gateway_id, device, version, status, points,"
            " drift, detail) VALUES (%s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (gateway_id, device) DO UPDATE SET version = EXCLUDED.version,"
            " status = EXCLUDED.status, points = EXCLUDED.points, drift = EXCLUDED.drift,"
            " detail = EXCLUDED.detail, updated_at = now()",
            [(gateway_id, d, v, s, Jsonb(p), dr, de) for d, v, s, p, dr, de in rows],
        )


def get_reported(conn: Connection[Any], gateway_id: str) -> ReportedConfig | None:
    row = (
        conn.cursor(row_factory=dict_row)
        .execute(
            "SELECT version, hash, status, drift, detail, reported_at FROM config.reported"
            " WHERE gateway_id = %s",
            (gateway_id,),
        )
        .fetchone()
    )
    return ReportedConfig.model_validate(row) if row else None


def device_states(conn: Connection[Any], gateway_id: str) -> list[dict[str, Any]]:
    return (
        conn.cursor(row_factory=dict_row)
        .execute(
            "SELECT device, version, status, points, drift, detail, updated_at"
            " FROM config.device_state WHERE gateway_id = %s ORDER BY device",
            (gateway_id,),
        )
        .fetchall()
    )


# -- holds (a technician on site) ------------------------------------------------------------
def record_work_order(
    conn: Connection[Any],
    work_order_id: int,
    status: str,
    on_site: bool,
    at: datetime,
    *,
    region: str | None = None,
    site_id: int | None = None,
    assignee: str | None = None,
    gateway_ids: Sequence[str] = (),
) -> bool:
    """Record the work order's state as of ``at`` (with its site, region, assignee and
    the site's gateways: what a technician's push is checked against), its row locked
    until commit (events of one work order apply one at a time); False when a newer event
    was recorded already."""
    row = conn.execute(
        "INSERT INTO config.work_orders"
        " (work_order_id, status, on_site, at, region, site_id, assignee, gateway_ids)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (work_order_id) DO UPDATE SET"
        " status = EXCLUDED.status, on_site = EXCLUDED.on_site, at = EXCLUDED.at,"
        " region = EXCLUDED.region, site_id = EXCLUDED.site_id,"
        " assignee = EXCLUDED.assignee, gateway_ids = EXCLUDED.gateway_ids"
        " WHERE config.work_orders.at <= EXCLUDED.at RETURNING 1",
        (work_order_id, status, on_site, at, region, site_id, assignee, list(gateway_ids)),
    ).fetchone()
    return row is not None


def work_order_holds(conn: Connection[Any], work_order_id: int) -> list[str]:
    """The gateways the work order holds now."""
    rows = conn.execute(
        "SELECT gateway_id FROM config.holds WHERE work_order_id = %s ORDER BY gateway_id",
        (work_order_id,),
    ).fetchall()
    return [r[0] for r in rows]


def lock_gateways(conn: Connection[Any], gateway_ids: Sequence[str]) -> None:
    """Lock the known gateways' rows (in id order: no deadlock between two work orders),
    so a hold commits between publishes, never during one (publishes lock the row too)."""
    conn.execute(
        "SELECT 1 FROM config.gateways WHERE gateway_id = ANY(%s) ORDER BY gateway_id FOR UPDATE",
        (list(gateway_ids),),
    ).fetchall()


def add_holds(
    conn: Connection[Any], work_order_id: int, gateway_ids: Sequence[str], since: datetime
) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO config.holds (gateway_id, work_order_id, since) VALUES (%s, %s, %s)"
            " ON CONFLICT DO NOTHING",
            [(g, work_order_id, since) for g in gateway_ids],
        )


def remove_holds(conn: Connection[Any], work_order_id: int, gateway_ids: Sequence[str]) -> None:
    conn.execute(
        "DELETE FROM config.holds WHERE work_order_id = %s AND gateway_id = ANY(%s)",
        (work_order_id, list(gateway_ids)),
    )


def gateway_holds(conn: Connection[Any], gateway_id: str) -> list[int]:
    """The work orders holding the gateway, ascending (none: it is not held)."""
    rows = conn.execute(
        "SELECT work_order_id FROM config.holds WHERE gateway_id = %s ORDER BY work_order_id",
        (gateway_id,),
    ).fetchall()
    return [int(r[0]) for r in rows]


def held_gateways(conn: Connection[Any], gateway_ids: Sequence[str]) -> set[str]:
    """Which of ``gateway_ids`` are held. The hook for rollout waves (none exist yet): a
    wave skips these and takes them up in a later round, once released."""
    rows = conn.execute(
        "SELECT DISTINCT gateway_id FROM config.holds WHERE gateway_id = ANY(%s)",
        (list(gateway_ids),),
    ).fetchall()
    return {r[0] for r in rows}


# -- audit -----------------------------------------------------------------------------------
def append_audit(
    conn: Connection[Any],
    *,
    actor: str,
    action: str,
    gateway_id: str,
    target: str | None,
    reason: str,
    outcome: str,
    detail: dict[str, Any] | None = None,
) -> None:
    conn.execute(
        "INSERT INTO config.audit (actor, action, gateway_id, target, reason, outcome, detail)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (actor, action, gateway_id, target, reason, outcome, Jsonb(detail or {})),
    )


def list_audit(conn: Connection[Any], gateway_id: str, limit: int, offset: int) -> list[AuditEntry]:
    rows = (
        conn.cursor(row_factory=dict_row)
        .execute(
            f"SELECT {_AUDIT_COLS} FROM config.audit WHERE gateway_id = %s"
            " ORDER BY id DESC LIMIT %s OFFSET %s",
            (gateway_id, limit, offset),
        )
        .fetchall()
    )
    return [AuditEntry.model_validate(r) for r in rows]
