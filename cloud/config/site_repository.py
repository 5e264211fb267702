"""SQL of assignment by location: where gateways stand, connection approvals, what
provisioning did (schema ``config``, migration 005). Every function takes a connection in
a transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from cloud.adapters.postgres import Connection
from cloud.config.approvals import ConnectionApproval
from cloud.config.profile_assignment import SiteFacts

__all__ = [
    "current_approval",
    "gateway_site",
    "gateways_of_sites",
    "insert_approval",
    "record_provisioning",
    "site_facts",
    "site_gateways",
    "sites_of_utility",
    "to_provision",
    "upsert_gateway_site",
]

_APPROVAL_COLS = (
    "site_id, region, reference, profile, export_limit_w, phases, recorded_by, recorded_at, note"
)


def upsert_gateway_site(
    conn: Connection[Any],
    gateway_id: str,
    site: SiteFacts,
    occurred_at: datetime,
) -> bool:
    """Record where the gateway stands; False when a newer event was recorded already."""
    row = conn.execute(
        "INSERT INTO config.gateway_sites (gateway_id, site_id, region, utility, latitude,"
        " longitude, occurred_at) VALUES (%s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (gateway_id) DO UPDATE SET site_id = EXCLUDED.site_id,"
        " region = EXCLUDED.region, utility = EXCLUDED.utility, latitude = EXCLUDED.latitude,"
        " longitude = EXCLUDED.longitude, occurred_at = EXCLUDED.occurred_at, updated_at = now()"
        " WHERE config.gateway_sites.occurred_at <= EXCLUDED.occurred_at RETURNING 1",
        (
            gateway_id,
            site.site_id,
            site.region,
            site.utility,
            site.latitude,
            site.longitude,
            occurred_at,
        ),
    ).fetchone()
    return row is not None


def _facts(row: Any) -> SiteFacts:
    return SiteFacts(int(row[0]), str(row[1]), row[2], row[3], row[4])


def gateway_site(conn: Connection[Any], gateway_id: str) -> SiteFacts | None:
    row = conn.execute(
        "SELECT site_id, region, utility, latitude, longitude FROM config.gateway_sites"
        " WHERE gateway_id = %s",
        (gateway_id,),
    ).fetchone()
    return _facts(row) if row else None


def site_facts(conn: Connection[Any], site_id: int) -> SiteFacts | None:
    """The site as the newest registration of any of its gateways described it."""
    row = conn.execute(
        "SELECT site_id, region, utility, latitude, longitude FROM config.gateway_sites"
        " WHERE site_id = %s ORDER BY occurred_at DESC LIMIT 1",
        (site_id,),
    ).fetchone()
    return _facts(row) if row else None


def site_gateways(conn: Connection[Any], site_id: int) -> list[str]:
    rows = conn.execute(
        "SELECT gateway_id FROM config.gateway_sites WHERE site_id = %s ORDER BY gateway_id",
        (site_id,),
    ).fetchall()
    return [r[0] for r in rows]


def gateways_of_sites(conn: Connection[Any], region: str, site_ids: Sequence[int]) -> set[str]:
    rows = conn.execute(
        "SELECT gateway_id FROM config.gateway_sites WHERE region = %s AND site_id = ANY(%s)",
        (region, list(site_ids)),
    ).fetchall()
    return {str(r[0]) for r in rows}


def sites_of_utility(conn: Connection[Any], region: str, utility: str) -> set[int]:
    """The region's sites on ``utility``'s network, its name in any case ("SA Power
    Networks" and "sa power networks" are one operator)."""
    rows = conn.execute(
        "SELECT DISTINCT site_id FROM config.gateway_sites"
        " WHERE region = %s AND lower(utility) = lower(%s)",
        (region, utility),
    ).fetchall()
    return {int(r[0]) for r in rows}


def current_approval(conn: Connection[Any], site_id: int) -> ConnectionApproval | None:
    """The approval in force (the newest recorded)."""
    row = conn.execute(
        f"SELECT {_APPROVAL_COLS} FROM config.connection_approvals WHERE site_id = %s"
        " ORDER BY id DESC LIMIT 1",
        (site_id,),
    ).fetchone()
    if row is None:
        return None
    return ConnectionApproval(
        site_id=int(row[0]),
        region=str(row[1]),
        reference=str(row[2]),
        profile=str(row[3]),
        export_limit_w=None if row[4] is None else float(row[4]),
        phases=int(row[5]),
        recorded_by=str(row[6]),
        recorded_at=row[7],
        note=str(row[8]),
    )


def insert_approval(conn: Connection[Any], approval: ConnectionApproval) -> ConnectionApproval:
    conn.execute(
        "INSERT INTO config.connection_approvals (site_id, region, reference, profile,"
        " export_limit_w, phases, recorded_by, note) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (
            approval.site_id,
            approval.region,
            approval.reference,
            approval.profile,
            approval.export_limit_w,
            approval.phases,
            approval.recorded_by,
            approval.note,
        ),
    )
    stored = current_approval(conn, approval.site_id)
    assert stored is not None
    return stored


def to_provision(conn: Connection[Any], limit: int) -> list[tuple[str, datetime]]:
    """(gateway, birth_at) of gateways whose devices and site are known, that have no
    config, and whose latest birth provisioning has not handled yet."""
    rows = conn.execute(
        "SELECT g.gateway_id, g.birth_at FROM config.gateways g"
        " JOIN config.gateway_sites s USING (gateway_id)"
        " WHERE EXISTS (SELECT 1 FROM config.devices d WHERE d.gateway_id = g.gateway_id)"
        " AND NOT EXISTS (SELECT 1 FROM config.desired x WHERE x.gateway_id = g.gateway_id)"
        " AND NOT EXISTS (SELECT 1 FROM config.provisioning p"
        "   WHERE p.gateway_id = g.gateway_id AND p.birth_at >= g.birth_at)"
        " ORDER BY g.birth_at LIMIT %s",
        (limit,),
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


def record_provisioning(
    conn: Connection[Any],
    gateway_id: str,
    birth_at: datetime,
    outcome: str,
    *,
    profile: str | None,
    rule: str | None,
    version: int | None,
    detail: str,
) -> None:
    conn.execute(
        "INSERT INTO config.provisioning (gateway_id, birth_at, outcome, profile, rule,"
        " version, detail) VALUES (%s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (gateway_id) DO UPDATE SET birth_at = EXCLUDED.birth_at,"
        " outcome = EXCLUDED.outcome, profile = EXCLUDED.profile, rule = EXCLUDED.rule,"
        " version = EXCLUDED.version, detail = EXCLUDED.detail, at = now()",
        (gateway_id, birth_at, outcome, profile, rule, version, detail),
    )
