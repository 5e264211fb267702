"""Dispatch SQL of the alarm-to-verified-repair flow (``schema/003_flow.sql``): what the
service keeps of other services' events, the policies' state and the verification
facts. Every function takes a connection in a transaction; column names are written
here, never taken from a caller.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any
from uuid import UUID

from cloud.adapters.postgres import Connection, Jsonb, dict_row
from cloud.adapters.solar import PvSite
from cloud.dispatch.assignment import Location
from cloud.dispatch.flow import OpenOrder
from cloud.dispatch.lifecycle import ACTIVE_STATES, ON_SITE_STATES
from cloud.dispatch.policies import PolicyState
from cloud.events.alerts import AlarmChanged
from cloud.events.types import InstallationChanged
from contracts.topics import Region

_SERIOUS = ("high", "urgent")
_OPEN = sorted(s.value for s in ACTIVE_STATES)


def _rows(conn: Connection[Any], query: str, params: Any) -> list[dict[str, Any]]:
    return conn.cursor(row_factory=dict_row).execute(query, params).fetchall()


# -- sites ---------------------------------------------------------------------------------
def set_site_zone(conn: Connection[Any], site_id: int, time_zone: str, at: datetime) -> None:
    """The site's zone from the announcement of ``at``, when that one is the newest."""
    conn.execute(
        "UPDATE dispatch.sites SET time_zone = %s WHERE site_id = %s AND updated_at = %s",
        (time_zone, site_id, at),
    )


def site_place(conn: Connection[Any], site_id: int) -> tuple[Location | None, str | None]:
    """The site's location (None: unknown) and time zone."""
    row = conn.execute(
        "SELECT latitude, longitude, time_zone FROM dispatch.sites WHERE site_id = %s",
        (site_id,),
    ).fetchone()
    if row is None:
        return None, None
    lat, lon, zone = row
    place = None if lat is None or lon is None else Location(latitude=lat, longitude=lon)
    return place, zone


def pv_site(conn: Connection[Any], site_id: int) -> PvSite | None:
    """The site's array where it is (None: the location or the array is unknown)."""
    row = conn.execute(
        "SELECT s.latitude, s.longitude, i.pv_kwp, i.tilt_deg, i.azimuth_deg"
        " FROM dispatch.sites s JOIN dispatch.installations i ON i.site_id = s.site_id"
        " WHERE s.site_id = %s AND s.latitude IS NOT NULL AND s.longitude IS NOT NULL",
        (site_id,),
    ).fetchone()
    if row is None:
        return None
    lat, lon, kwp, tilt, azimuth = row
    return PvSite(
        latitude=lat,
        longitude=lon,
        tilt_deg=float(tilt),
        azimuth_deg=float(azimuth),
        kwp=float(kwp),
    )


def record_installation(conn: Connection[Any], inst: InstallationChanged) -> None:
    conn.execute(
        "INSERT INTO dispatch.installations (site_id, region, pv_kwp, tilt_deg, azimuth_deg,"
        " updated_at) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (site_id) DO UPDATE"
        " SET region = EXCLUDED.region, pv_kwp = EXCLUDED.pv_kwp,"
        " tilt_deg = EXCLUDED.tilt_deg, azimuth_deg = EXCLUDED.azimuth_deg,"
        " updated_at = EXCLUDED.updated_at"
        " WHERE dispatch.installations.updated_at <= EXCLUDED.updated_at",
        (
            inst.site_id,
            inst.region.value,
            inst.pv_kwp,
            inst.tilt_deg,
            inst.azimuth_deg,
            inst.updated_at,
        ),
    )


# -- technicians ---------------------------------------------------------------------------
def record_technician(
    conn: Connection[Any],
    employee_no: str,
    region: Region,
    active: bool,
    record: dict[str, Any],
    at: datetime,
) -> None:
    conn.execute(
        "INSERT INTO dispatch.technicians (employee_no, region, active, record, updated_at)"
        " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (employee_no) DO UPDATE"
        " SET region = EXCLUDED.region, active = EXCLUDED.active, record = EXCLUDED.record,"
        " updated_at = EXCLUDED.updated_at"
        " WHERE dispatch.technicians.updated_at <= EXCLUDED.updated_at",
        (employee_no, region.value, active, Jsonb(record), at),
    )


def technicians(conn: Connection[Any], region: Region) -> list[dict[str, Any]]:
    """The region's active technicians' records, by employee number."""
    rows = conn.execute(
        "SELECT record FROM dispatch.technicians WHERE region = %s AND active ORDER BY employee_no",
        (region.value,),
    ).fetchall()
    return [r[0] for r in rows]


def open_orders(conn: Connection[Any], assignees: Collection[str]) -> list[OpenOrder]:
    """The work orders still to do of ``assignees``, with their sites' places and, once
    the customer confirmed a window, the booking (the window's start to its end plus
    the job's duration)."""
    rows = _rows(
        conn,
        "SELECT w.id, w.assignee, w.status, s.latitude, s.longitude,"
        " a.starts, a.booked_until"
        " FROM dispatch.work_orders w LEFT JOIN dispatch.sites s ON s.site_id = w.site_id"
        " LEFT JOIN dispatch.appointments a ON a.work_order_id = w.id"
        " WHERE w.assignee = ANY(%s) AND w.status = ANY(%s) ORDER BY w.id",
        (sorted(assignees), _OPEN),
    )
    on_site = {s.value for s in ON_SITE_STATES}
    return [
        OpenOrder(
            id=r["id"],
            assignee=r["assignee"],
            site=None
            if r["latitude"] is None or r["longitude"] is None
            else Location(latitude=r["latitude"], longitude=r["longitude"]),
            on_site=r["status"] in on_site,
            starts=r["starts"],
            ends=r["booked_until"],
        )
        for r in rows
    ]


# -- policies ------------------------------------------------------------------------------
def lock_policy_state(conn: Connection[Any], region: Region) -> PolicyState | None:
    """The region's policy state, its row locked until the transaction ends."""
    conn.execute(
        "INSERT INTO dispatch.policy_state (region) VALUES (%s) ON CONFLICT DO NOTHING",
        (region.value,),
    )
    row = conn.execute(
        "SELECT state FROM dispatch.policy_state WHERE region = %s FOR UPDATE", (region.value,)
    ).fetchone()
    stored = row[0] if row is not None else None
    return PolicyState.model_validate(stored) if stored is not None else None


def save_policy_state(conn: Connection[Any], region: Region, state: PolicyState) -> None:
    conn.execute(
        "UPDATE dispatch.policy_state SET state = %s, version = version + 1,"
        " updated_at = now() WHERE region = %s",
        (Jsonb(state.model_dump(mode="json")), region.value),
    )


def policy_regions(conn: Connection[Any]) -> list[Region]:
    rows = conn.execute("SELECT region FROM dispatch.policy_state ORDER BY region").fetchall()
    return [Region(r[0]) for r in rows]


def open_policy_order(conn: Connection[Any], policies: Collection[str], site_id: int) -> int | None:
    """A work order on the site raised by one of ``policies`` that is neither closed nor
    cancelled."""
    row = conn.execute(
        "SELECT p.work_order_id FROM dispatch.policy_orders p"
        " JOIN dispatch.work_orders w ON w.id = p.work_order_id"
        " WHERE p.policy = ANY(%s) AND p.site_id = %s"
        " AND w.status NOT IN ('closed', 'cancelled') ORDER BY p.work_order_id LIMIT 1",
        (sorted(policies), site_id),
    ).fetchone()
    return None if row is None else int(row[0])


def insert_policy_order(
    conn: Connection[Any], work_order_id: int, policy: str, site_id: int, request_id: UUID
) -> None:
    conn.execute(
        "INSERT INTO dispatch.policy_orders (work_order_id, policy, site_id, request_id)"
        " VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
        (work_order_id, policy, site_id, request_id),
    )


def policy_of(conn: Connection[Any], work_order_id: int) -> str | None:
    row = conn.execute(
        "SELECT policy FROM dispatch.policy_orders WHERE work_order_id = %s", (work_order_id,)
    ).fetchone()
    return None if row is None else str(row[0])


# -- alarms --------------------------------------------------------------------------------
def record_alarm(conn: Connection[Any], alarm: AlarmChanged) -> None:
    conn.execute(
        "INSERT INTO dispatch.site_alarms (alarm_id, site_id, rule_id, serious, active, at)"
        " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (alarm_id) DO UPDATE"
        " SET site_id = EXCLUDED.site_id, rule_id = EXCLUDED.rule_id,"
        " serious = EXCLUDED.serious, active = EXCLUDED.active, at = EXCLUDED.at"
        " WHERE dispatch.site_alarms.at <= EXCLUDED.at",
        (
            alarm.alarm_id,
            alarm.site_id,
            alarm.rule_id,
            alarm.severity.value in _SERIOUS,
            alarm.active,
            alarm.at,
        ),
    )


def alarm_facts(conn: Connection[Any], site_id: int, origin: int | None) -> tuple[bool, int]:
    """Whether the origin alarm has cleared (a job without one: yes; one dispatch never
    heard of: no — it cannot say), and how many serious alarms are active on the site."""
    row = conn.execute(
        "SELECT count(*) FILTER (WHERE serious AND active),"
        " bool_or(alarm_id = %s AND NOT active), bool_or(alarm_id = %s)"
        " FROM dispatch.site_alarms WHERE site_id = %s",
        (origin, origin, site_id),
    ).fetchone()
    assert row is not None
    serious, cleared, known = int(row[0]), bool(row[1]), bool(row[2])
    return (origin is None or (known and cleared)), serious


def reopenable(conn: Connection[Any], site_id: int, rule_id: str, since: datetime) -> list[int]:
    """Verified or closed work orders of the site, verified at or after ``since``, whose
    origin alarm was of ``rule_id``: the fault came back."""
    rows = conn.execute(
        "SELECT w.id FROM dispatch.work_orders w"
        " JOIN dispatch.site_alarms a ON a.alarm_id = w.alarm_id"
        " WHERE w.site_id = %s AND w.status IN ('verified', 'closed')"
        " AND w.verified_at >= %s AND a.rule_id = %s ORDER BY w.id",
        (site_id, since, rule_id),
    ).fetchall()
    return [int(r[0]) for r in rows]


# -- verification --------------------------------------------------------------------------
def start_verification(
    conn: Connection[Any], work_order_id: int, site_id: int, resolved_at: datetime
) -> None:
    """A resolve: watch the site afresh from ``resolved_at``."""
    conn.execute(
        "INSERT INTO dispatch.verification (work_order_id, site_id, resolved_at)"
        " VALUES (%s, %s, %s) ON CONFLICT (work_order_id) DO UPDATE"
        " SET site_id = EXCLUDED.site_id, resolved_at = EXCLUDED.resolved_at,"
        " counters = '{}', verdict = NULL, judged_at = NULL",
        (work_order_id, site_id, resolved_at),
    )


def awaiting_on_gateway(
    conn: Connection[Any], gateway_id: str
) -> list[tuple[int, datetime, dict[str, Any]]]:
    """Resolved work orders of the gateway's site: (id, resolved at, counters), locked."""
    rows = conn.execute(
        "SELECT v.work_order_id, v.resolved_at, v.counters FROM dispatch.verification v"
        " JOIN dispatch.work_orders w ON w.id = v.work_order_id AND w.status = 'resolved'"
        " JOIN dispatch.site_gateways g ON g.site_id = v.site_id AND g.gateway_id = %s"
        " ORDER BY v.work_order_id FOR UPDATE OF v",
        (gateway_id,),
    ).fetchall()
    return [(int(r[0]), r[1], dict(r[2])) for r in rows]


def set_counters(conn: Connection[Any], work_order_id: int, counters: dict[str, Any]) -> None:
    conn.execute(
        "UPDATE dispatch.verification SET counters = %s WHERE work_order_id = %s",
        (Jsonb(counters), work_order_id),
    )


def awaiting(conn: Connection[Any]) -> list[tuple[int, datetime, dict[str, Any]]]:
    """Every resolved work order: (id, resolved at, counters)."""
    rows = conn.execute(
        "SELECT v.work_order_id, v.resolved_at, v.counters FROM dispatch.verification v"
        " JOIN dispatch.work_orders w ON w.id = v.work_order_id AND w.status = 'resolved'"
        " ORDER BY v.work_order_id"
    ).fetchall()
    return [(int(r[0]), r[1], dict(r[2])) for r in rows]


def set_verdict(conn: Connection[Any], work_order_id: int, verdict: str, at: datetime) -> None:
    conn.execute(
        "UPDATE dispatch.verification SET verdict = %s, judged_at = %s WHERE work_order_id = %s",
        (verdict[:500], at, work_order_id),
    )


def verdict(conn: Connection[Any], work_order_id: int) -> str | None:
    row = conn.execute(
        "SELECT verdict FROM dispatch.verification WHERE work_order_id = %s", (work_order_id,)
    ).fetchone()
    return None if row is None else row[0]


# -- SLA -----------------------------------------------------------------------------------
def running(conn: Connection[Any], statuses: Collection[str]) -> list[int]:
    rows = conn.execute(
        "SELECT id FROM dispatch.work_orders WHERE status = ANY(%s) ORDER BY id",
        (sorted(statuses),),
    ).fetchall()
    return [int(r[0]) for r in rows]


def transitions(conn: Connection[Any], work_order_id: int) -> list[tuple[datetime, str, str]]:
    """The work order's history as (at, action, to_state), oldest first."""
    rows = conn.execute(
        "SELECT at, action, to_state FROM dispatch.history WHERE work_order_id = %s ORDER BY id",
        (work_order_id,),
    ).fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


def note_in_history(
    conn: Connection[Any], work_order_id: int, status: str, at: datetime, reason: str
) -> None:
    """A line in the job's history that changes no state (``auto_assign`` by the system:
    why nobody was assigned), so the operator reads it where every transition is."""
    conn.execute(
        "INSERT INTO dispatch.history (work_order_id, at, actor, role, action, from_state,"
        " to_state, reason) VALUES (%s, %s, 'system', 'system', 'auto_assign', %s, %s, %s)",
        (work_order_id, at, status, status, reason[:500]),
    )
