"""Alarm SQL (schema ``alerts``); every function takes a connection in a transaction.

Reads an operator or a customer asks for are filtered in their ``WHERE`` by a
:class:`~cloud.scope.Scope` (:func:`~cloud.scope.site_condition` on the alarm's own
``region`` and ``account_id``). Column names come from the models, never from a caller.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from cloud.adapters.postgres import Connection, Jsonb, dict_row
from cloud.alerts.alarms import (
    ANNUNCIATED_STATES,
    Alarm,
    AlarmCondition,
    AlarmState,
    AlarmStatus,
    AlarmSubject,
    HistoryEntry,
    Severity,
)
from cloud.regional_ids import next_id_sql
from cloud.scope import Scope, site_condition

#: The lifecycle's fields, one column each.
_STATE_FIELDS = tuple(AlarmState.model_fields)
_IDENTITY = ("region", "rule_id", "site_id", "gateway_id", "device", "account_id")
_ALARM_COLS = ", ".join(("id", *_IDENTITY, *_STATE_FIELDS, "title", "detail"))
_HISTORY_COLS = "id, alarm_id, at, action, actor, from_state, to_state, detail"
#: The subject's columns; ``IS NOT DISTINCT FROM`` because gateway and device may be NULL.
_SUBJECT = (
    "rule_id = %(rule_id)s AND site_id = %(site_id)s"
    " AND gateway_id IS NOT DISTINCT FROM %(gateway_id)s"
    " AND device IS NOT DISTINCT FROM %(device)s"
)
_OPEN = "closed_at IS NULL"


def _one(conn: Connection[Any], query: str, params: Any) -> dict[str, Any] | None:
    return conn.cursor(row_factory=dict_row).execute(query, params).fetchone()


def _all(conn: Connection[Any], query: str, params: Any) -> list[dict[str, Any]]:
    return conn.cursor(row_factory=dict_row).execute(query, params).fetchall()


def _alarm(row: dict[str, Any]) -> Alarm:
    return Alarm.model_validate(row)


def _state_params(state: AlarmState) -> dict[str, Any]:
    # Enums as their values: psycopg would dump a member's name.
    return {name: _plain(getattr(state, name)) for name in _STATE_FIELDS}


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


# -- masks --------------------------------------------------------------------------------
# A raise reads the masks under a shared lock per site and gateway; changing a mask takes
# the exclusive one, so an alarm raised meanwhile is either seen by the change or sees it.
def _mask_key(kind: str, key: object) -> str:
    return f"alerts.{kind}:{key}"


_LOCK = "SELECT pg_advisory_xact_lock{}(hashtextextended(%s, 0))"


def share_masks(conn: Connection[Any], site_id: int, gateway_id: str | None) -> None:
    conn.execute(_LOCK.format("_shared"), (_mask_key("site", site_id),))
    if gateway_id is not None:
        conn.execute(_LOCK.format("_shared"), (_mask_key("gateway", gateway_id),))


def lock_site_mask(conn: Connection[Any], site_id: int) -> None:
    conn.execute(_LOCK.format(""), (_mask_key("site", site_id),))


def lock_gateway_mask(conn: Connection[Any], gateway_id: str) -> None:
    conn.execute(_LOCK.format(""), (_mask_key("gateway", gateway_id),))


def masks_for(conn: Connection[Any], subject: AlarmSubject) -> tuple[bool, bool]:
    """(suppressed, out of service) for a new alarm of ``subject``: its gateway offline
    hides a device's alarm (not the gateway's own); its site out of service hides any."""
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM alerts.suppressed_gateways WHERE gateway_id = %(gw)s"
        " AND %(device)s::text IS NOT NULL),"
        " EXISTS (SELECT 1 FROM alerts.sites_out_of_service WHERE site_id = %(site)s)",
        {"gw": subject.gateway_id, "device": subject.device, "site": subject.site_id},
    ).fetchone()
    assert row is not None
    return bool(row[0]), bool(row[1])


def set_gateway_suppressed(conn: Connection[Any], gateway_id: str, on: bool, at: datetime) -> None:
    if on:
        conn.execute(
            "INSERT INTO alerts.suppressed_gateways (gateway_id, since) VALUES (%s, %s)"
            " ON CONFLICT (gateway_id) DO NOTHING",
            (gateway_id, at),
        )
    else:
        conn.execute("DELETE FROM alerts.suppressed_gateways WHERE gateway_id = %s", (gateway_id,))


def set_site_out_of_service(
    conn: Connection[Any], site_id: int, on: bool, actor: str | None, at: datetime
) -> None:
    if on:
        conn.execute(
            "INSERT INTO alerts.sites_out_of_service (site_id, actor, since) VALUES (%s, %s, %s)"
            " ON CONFLICT (site_id) DO NOTHING",
            (site_id, actor, at),
        )
    else:
        conn.execute("DELETE FROM alerts.sites_out_of_service WHERE site_id = %s", (site_id,))


# -- alarms -------------------------------------------------------------------------------
def open_alarm(conn: Connection[Any], subject: AlarmSubject) -> Alarm | None:
    """The open alarm of ``subject``, locked for the caller's transaction."""
    row = _one(
        conn,
        f"SELECT {_ALARM_COLS} FROM alerts.alarms WHERE {_SUBJECT} AND {_OPEN} FOR UPDATE",
        subject.model_dump(),
    )
    return _alarm(row) if row else None


def insert_alarm(
    conn: Connection[Any], condition: AlarmCondition, state: AlarmState
) -> Alarm | None:
    """A new open alarm, or None when one is open for the subject already (a concurrent
    raiser's: this waits for its transaction, then inserts nothing)."""
    columns = (*_IDENTITY, *_STATE_FIELDS, "title", "detail")
    values = ", ".join(f"%({name})s" for name in columns)
    params = {
        **condition.model_dump(include=set(_IDENTITY)),
        "region": condition.region.value,
        **_state_params(state),
        "title": condition.title,
        "detail": Jsonb(condition.detail),
    }
    row = _one(
        conn,
        f"INSERT INTO alerts.alarms (id, {', '.join(columns)})"
        f" VALUES ({next_id_sql('alerts.alarms_id_seq', '%(region)s')}, {values})"
        " ON CONFLICT (rule_id, site_id, gateway_id, device) WHERE closed_at IS NULL"
        f" DO NOTHING RETURNING {_ALARM_COLS}",
        params,
    )
    return _alarm(row) if row else None


def update_alarm(conn: Connection[Any], alarm: Alarm) -> None:
    """Store ``alarm``'s lifecycle, title and detail (the caller holds its row lock)."""
    sets = ", ".join(f"{name} = %({name})s" for name in (*_STATE_FIELDS, "title", "detail"))
    conn.execute(
        f"UPDATE alerts.alarms SET {sets} WHERE id = %(id)s",
        {
            **_state_params(alarm),
            "title": alarm.title,
            "detail": Jsonb(alarm.detail),
            "id": alarm.id,
        },
    )


def get_alarm(
    conn: Connection[Any], alarm_id: int, scope: Scope, *, for_update: bool = False
) -> Alarm | None:
    """The alarm, or None (also when ``scope`` does not reach it)."""
    lock = " FOR UPDATE" if for_update else ""
    row = _one(
        conn,
        f"SELECT {_ALARM_COLS} FROM alerts.alarms a WHERE id = %(id)s"
        f" AND {site_condition('a')}{lock}",
        {"id": alarm_id, **scope.sql_params()},
    )
    return _alarm(row) if row else None


def open_alarms_of_site(conn: Connection[Any], site_id: int) -> list[Alarm]:
    """Every open alarm of the site, locked in id order (so two mask changes meeting on
    the same alarms wait for each other instead of deadlocking)."""
    rows = _all(
        conn,
        f"SELECT {_ALARM_COLS} FROM alerts.alarms WHERE site_id = %s AND {_OPEN}"
        " ORDER BY id FOR UPDATE",
        (site_id,),
    )
    return [_alarm(r) for r in rows]


def open_device_alarms_of_gateway(conn: Connection[Any], gateway_id: str) -> list[Alarm]:
    """The open alarms of the gateway's devices (not the gateway's own), locked in id order."""
    rows = _all(
        conn,
        f"SELECT {_ALARM_COLS} FROM alerts.alarms WHERE gateway_id = %s AND device IS NOT NULL"
        f" AND {_OPEN} ORDER BY id FOR UPDATE",
        (gateway_id,),
    )
    return [_alarm(r) for r in rows]


def unacknowledged_before(conn: Connection[Any], before: datetime, limit: int) -> list[Alarm]:
    """Unacknowledged alarms waiting since ``before`` or earlier, locked; rows another
    sweeper holds are skipped (it is escalating them)."""
    rows = _all(
        conn,
        f"SELECT {_ALARM_COLS} FROM alerts.alarms WHERE state = 'unacknowledged'"
        " AND unacked_since <= %s ORDER BY unacked_since, id LIMIT %s FOR UPDATE SKIP LOCKED",
        (before, limit),
    )
    return [_alarm(r) for r in rows]


def shelves_run_out(conn: Connection[Any], at: datetime, limit: int) -> list[Alarm]:
    """Shelved alarms whose time is up at ``at``, locked (held ones skipped)."""
    rows = _all(
        conn,
        f"SELECT {_ALARM_COLS} FROM alerts.alarms WHERE state = 'shelved'"
        " AND shelved_until <= %s ORDER BY shelved_until, id LIMIT %s FOR UPDATE SKIP LOCKED",
        (at, limit),
    )
    return [_alarm(r) for r in rows]


def list_alarms(
    conn: Connection[Any],
    scope: Scope,
    states: Collection[AlarmStatus] | None,
    site_id: int | None,
    limit: int,
    before_id: int | None,
) -> list[Alarm]:
    """Alarms in ``scope``, newest (highest id) first, below ``before_id`` when given."""
    rows = _all(
        conn,
        f"SELECT {_ALARM_COLS} FROM alerts.alarms a WHERE {site_condition('a')}"
        " AND (%(states)s::text[] IS NULL OR a.state = ANY(%(states)s))"
        " AND (%(site)s::int IS NULL OR a.site_id = %(site)s)"
        " AND (%(before)s::bigint IS NULL OR a.id < %(before)s)"
        " ORDER BY a.id DESC LIMIT %(limit)s",
        {
            **scope.sql_params(),
            "states": sorted(s.value for s in states) if states is not None else None,
            "site": site_id,
            "before": before_id,
            "limit": limit,
        },
    )
    return [_alarm(r) for r in rows]


# -- history ------------------------------------------------------------------------------
def insert_history(
    conn: Connection[Any],
    alarm_id: int,
    at: datetime,
    action: str,
    actor: str | None,
    from_state: AlarmStatus,
    to_state: AlarmStatus,
    detail: dict[str, Any],
) -> None:
    conn.execute(
        "INSERT INTO alerts.alarm_history (alarm_id, at, action, actor, from_state, to_state,"
        " detail) VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (alarm_id, at, action, actor, from_state.value, to_state.value, Jsonb(detail)),
    )


def history(conn: Connection[Any], alarm_id: int) -> list[HistoryEntry]:
    rows = _all(
        conn,
        f"SELECT {_HISTORY_COLS} FROM alerts.alarm_history WHERE alarm_id = %s ORDER BY id",
        (alarm_id,),
    )
    return [HistoryEntry.model_validate(r) for r in rows]


# -- flood metrics ------------------------------------------------------------------------
def annunciations(
    conn: Connection[Any], scope: Scope, since: datetime, until: datetime, window: timedelta
) -> list[tuple[int, Severity, int]]:
    """(window index from ``since``, severity, count) of the transitions into
    ``unacknowledged`` from another state in [``since``, ``until``)."""
    rows = conn.execute(
        "SELECT floor(extract(epoch FROM h.at - %(since)s) / %(window_s)s)::int AS k,"
        " a.severity, count(*) FROM alerts.alarm_history h"
        " JOIN alerts.alarms a ON a.id = h.alarm_id"
        f" WHERE {site_condition('a')}"
        " AND h.to_state = 'unacknowledged' AND h.from_state <> 'unacknowledged'"
        " AND h.at >= %(since)s AND h.at < %(until)s GROUP BY 1, 2",
        {
            **scope.sql_params(),
            "since": since,
            "until": until,
            "window_s": window.total_seconds(),
        },
    ).fetchall()
    return [(int(k), Severity(severity), int(n)) for k, severity, n in rows]


def stale_count(conn: Connection[Any], scope: Scope, raised_before: datetime) -> int:
    """Alarms on the board (annunciated) that were raised before ``raised_before``."""
    row = conn.execute(
        f"SELECT count(*) FROM alerts.alarms a WHERE {site_condition('a')}"
        " AND a.state = ANY(%(states)s) AND a.first_raised_at < %(before)s",
        {
            **scope.sql_params(),
            "states": sorted(s.value for s in ANNUNCIATED_STATES),
            "before": raised_before,
        },
    ).fetchone()
    return int(row[0]) if row else 0
