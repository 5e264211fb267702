"""Dispatch SQL (schema ``dispatch``); every function takes a connection in a transaction.

Reads by operators, MOSIEs or customers are filtered in their ``WHERE`` by a
:class:`~cloud.scope.Scope` (:func:`~cloud.scope.site_condition` on the work order's own
``region`` and ``account_id``) and, for a MOSIE, by ``assignee``: a job outside reads as
absent. Column names are written here, never taken from a caller.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from cloud.adapters.postgres import Connection, Jsonb, dict_row
from cloud.dispatch.lifecycle import AuditRecord, OrderState, WorkOrderStatus
from cloud.dispatch.models import (
    HistoryEntry,
    KnownSite,
    Note,
    PartStock,
    PartUse,
    Performance,
    Photo,
    Signature,
    Tick,
    WorkOrder,
    WorkOrderIn,
)
from cloud.events.types import GatewayRegistration
from cloud.regional_ids import next_id_sql
from cloud.scope import Scope, site_condition
from contracts.topics import Region

_WO_COLS = (
    "id, region, site_id, account_id, type, priority, title, description, status, assignee,"
    " visits, reopen_count, verified_at, sla_breached, alarm_id, created_by, created_at,"
    " updated_at, arrive_by, resolve_by, version, origin, found_on, charge_reason,"
    " charge_note, charge_billed_at, ticket_id"
)
_STOCK_COLS = (
    "region, part_no, description, quantity, unit_value, currency, reorder_level, reorder_quantity"
)
_HISTORY_COLS = "id, work_order_id, at, actor, role, action, from_state, to_state, reason, assignee"
_TICK_COLS = "work_order_id, visit, task_id, by_actor AS by, at, photo_key, note"
_PHOTO_COLS = "id, work_order_id, storage_key, content_type, bytes, sha256, by_actor AS by, at"
_SIGNATURE_COLS = (
    "work_order_id, visit, signer_name, storage_key, content_type, bytes, sha256,"
    " by_actor AS by, at"
)
#: The work order's reach: the caller's scope, and for a MOSIE their own jobs only.
_IN_REACH = (
    f"{site_condition('w')}"
    " AND (%(reach_assignee)s::text IS NULL OR w.assignee = %(reach_assignee)s)"
)


def _one(conn: Connection[Any], query: str, params: Any) -> dict[str, Any] | None:
    return conn.cursor(row_factory=dict_row).execute(query, params).fetchone()


def _all(conn: Connection[Any], query: str, params: Any) -> list[dict[str, Any]]:
    return conn.cursor(row_factory=dict_row).execute(query, params).fetchall()


#: The channel ``pg_notify`` announces a changed work order on (payload: its region), on
#: commit: the dispatch board's live feed listens to it.
BOARD_CHANNEL = "dispatch_board"


def board_changed(conn: Connection[Any], region: Region | str) -> None:
    """Tell the region's dispatch boards that a work order changed (on commit)."""
    value = region.value if isinstance(region, Region) else region
    conn.execute("SELECT pg_notify(%s, %s)", (BOARD_CHANNEL, value))


def _reach(scope: Scope, assignee: str | None) -> dict[str, Any]:
    return {**scope.sql_params(), "reach_assignee": assignee}


# -- work orders --------------------------------------------------------------------------
def insert_work_order(
    conn: Connection[Any], given: WorkOrderIn, account_id: str | None, at: datetime
) -> WorkOrder:
    row = _one(
        conn,
        f"INSERT INTO dispatch.work_orders (id, region, site_id, account_id, type, priority,"
        " title, description, alarm_id, created_by, created_at, updated_at, arrive_by,"
        " resolve_by, origin, found_on, ticket_id)"
        f" VALUES ({next_id_sql('dispatch.work_orders_id_seq', '%(region)s')},"
        " %(region)s, %(site_id)s, %(account_id)s, %(type)s, %(priority)s, %(title)s,"
        " %(description)s, %(alarm_id)s, %(created_by)s, %(at)s, %(at)s, %(arrive_by)s,"
        f" %(resolve_by)s, %(origin)s, %(found_on)s, %(ticket_id)s) RETURNING {_WO_COLS}",
        {
            **given.model_dump(mode="json", exclude={"arrive_by", "resolve_by"}),
            "arrive_by": given.arrive_by,
            "resolve_by": given.resolve_by,
            "account_id": account_id,
            "at": at,
        },
    )
    assert row is not None
    board_changed(conn, row["region"])
    return WorkOrder.model_validate(row)


def work_order_of_ticket(conn: Connection[Any], ticket_id: int) -> int | None:
    """The id of the work order raised for support ticket ``ticket_id``, if any."""
    row = conn.execute(
        "SELECT id FROM dispatch.work_orders WHERE ticket_id = %s", (ticket_id,)
    ).fetchone()
    return int(row[0]) if row is not None else None


def get_work_order(
    conn: Connection[Any],
    work_order_id: int,
    scope: Scope,
    *,
    assignee: str | None = None,
    for_update: bool = False,
) -> WorkOrder | None:
    """The work order within reach (``assignee``: a MOSIE's own jobs only), or None."""
    lock = " FOR UPDATE" if for_update else ""
    row = _one(
        conn,
        f"SELECT {_WO_COLS} FROM dispatch.work_orders w WHERE id = %(id)s AND {_IN_REACH}{lock}",
        {"id": work_order_id, **_reach(scope, assignee)},
    )
    return None if row is None else WorkOrder.model_validate(row)


def door_secret(
    conn: Connection[Any],
    work_order_id: int,
    scope: Scope,
    *,
    assignee: str | None,
    statuses: Collection[WorkOrderStatus],
) -> tuple[WorkOrder, bytes] | None:
    """The job and its door secret when the caller is its customer (an account scope)
    or its assignee (``assignee``), it is assigned and in ``statuses``; else None. Staff
    reach without an account or an assignee never reads the secret."""
    row = _one(
        conn,
        f"SELECT {_WO_COLS}, door_secret FROM dispatch.work_orders w"
        f" WHERE id = %(id)s AND {_IN_REACH} AND w.assignee IS NOT NULL"
        " AND (%(scope_by_account)s::bool OR %(reach_assignee)s::text IS NOT NULL)"
        " AND w.status = ANY(%(statuses)s)",
        {
            "id": work_order_id,
            **_reach(scope, assignee),
            "statuses": sorted(s.value for s in statuses),
        },
    )
    if row is None:
        return None
    secret = bytes(row.pop("door_secret"))
    return WorkOrder.model_validate(row), secret


def update_state(
    conn: Connection[Any], work_order_id: int, state: OrderState, at: datetime
) -> WorkOrder:
    """Store the lifecycle's new state; ``version`` + 1."""
    row = _one(
        conn,
        "UPDATE dispatch.work_orders SET status = %s, assignee = %s, visits = %s,"
        " reopen_count = %s, verified_at = %s, sla_breached = %s, updated_at = %s,"
        f" version = version + 1 WHERE id = %s RETURNING {_WO_COLS}",
        (
            state.status.value,
            state.assignee,
            state.visits,
            state.reopen_count,
            state.verified_at,
            sorted(t.value for t in state.sla_breached),
            at,
            work_order_id,
        ),
    )
    assert row is not None
    board_changed(conn, row["region"])
    return WorkOrder.model_validate(row)


def set_charge(
    conn: Connection[Any], work_order_id: int, reason: str | None, note: str, at: datetime
) -> WorkOrder:
    """Mark the work order chargeable to the customer (``reason``) or not (None)."""
    row = _one(
        conn,
        "UPDATE dispatch.work_orders SET charge_reason = %s, charge_note = %s, updated_at = %s,"
        f" version = version + 1 WHERE id = %s RETURNING {_WO_COLS}",
        (reason, note, at, work_order_id),
    )
    assert row is not None
    board_changed(conn, row["region"])
    return WorkOrder.model_validate(row)


def charge_billed(conn: Connection[Any], work_order_id: int, at: datetime) -> WorkOrder:
    """Stamp the chargeable completion as sent to billing: the mark is final from now."""
    row = _one(
        conn,
        "UPDATE dispatch.work_orders SET charge_billed_at = %s, version = version + 1"
        f" WHERE id = %s AND charge_billed_at IS NULL RETURNING {_WO_COLS}",
        (at, work_order_id),
    )
    assert row is not None
    return WorkOrder.model_validate(row)


def parts_of(conn: Connection[Any], work_order_id: int) -> list[dict[str, Any]]:
    """Every use of parts on the job, oldest first: part, its description, quantity and
    the unit cost recorded with the use."""
    return _all(
        conn,
        "SELECT u.part_no, s.description, u.quantity, u.unit_value AS unit_cost, u.currency"
        " FROM dispatch.parts_used u JOIN dispatch.parts_stock s"
        " ON s.region = u.region AND s.part_no = u.part_no"
        " WHERE u.work_order_id = %s ORDER BY u.id",
        (work_order_id,),
    )


def set_due(
    conn: Connection[Any],
    work_order_id: int,
    arrive_by: datetime | None,
    resolve_by: datetime | None,
    at: datetime,
) -> WorkOrder | None:
    row = _one(
        conn,
        "UPDATE dispatch.work_orders SET arrive_by = %s, resolve_by = %s, updated_at = %s,"
        f" version = version + 1 WHERE id = %s RETURNING {_WO_COLS}",
        (arrive_by, resolve_by, at, work_order_id),
    )
    if row is None:
        return None
    board_changed(conn, row["region"])
    return WorkOrder.model_validate(row)


def list_work_orders(
    conn: Connection[Any],
    scope: Scope,
    *,
    assignee: str | None = None,
    statuses: Collection[WorkOrderStatus],
    arrive_before: datetime | None = None,
    site_id: int | None = None,
    priorities: Collection[str] | None = None,
    breached: bool | None = None,
    limit: int,
    offset: int = 0,
) -> list[WorkOrder]:
    """Work orders within reach in ``statuses``, the most urgent first (the earliest
    arrive-by, then priority); ``arrive_before``: only those due to be reached before it,
    or with no due time; ``site_id``: one site's; ``priorities``: only those; ``breached``:
    only those with (True) or without (False) a breached SLA timer."""
    rows = _all(
        conn,
        f"SELECT {_WO_COLS} FROM dispatch.work_orders w WHERE {_IN_REACH}"
        " AND status = ANY(%(statuses)s)"
        " AND (%(before)s::timestamptz IS NULL OR arrive_by IS NULL OR arrive_by < %(before)s)"
        " AND (%(site)s::bigint IS NULL OR site_id = %(site)s)"
        " AND (%(priorities)s::text[] IS NULL OR priority = ANY(%(priorities)s))"
        " AND (%(breached)s::boolean IS NULL"
        " OR (cardinality(sla_breached) > 0) = %(breached)s)"
        " ORDER BY arrive_by NULLS LAST, priority, id LIMIT %(limit)s OFFSET %(offset)s",
        {
            **_reach(scope, assignee),
            "statuses": sorted(s.value for s in statuses),
            "before": arrive_before,
            "site": site_id,
            "priorities": None if priorities is None else sorted(priorities),
            "breached": breached,
            "limit": limit,
            "offset": offset,
        },
    )
    return [WorkOrder.model_validate(row) for row in rows]


# -- history ------------------------------------------------------------------------------
def insert_history(
    conn: Connection[Any],
    work_order_id: int,
    audit: AuditRecord,
    actor: str,
    resolve_by: datetime | None,
) -> None:
    conn.execute(
        "INSERT INTO dispatch.history (work_order_id, at, actor, role, action, from_state,"
        " to_state, reason, assignee, resolve_by) VALUES (%s, %s, %s, %s, %s, %s, %s, %s,"
        " %s, %s)",
        (
            work_order_id,
            audit.at,
            actor,
            audit.actor_role.value,
            audit.action.value,
            audit.from_state.value,
            audit.to_state.value,
            audit.reason,
            audit.assignee,
            resolve_by,
        ),
    )


def insert_created(
    conn: Connection[Any],
    order: WorkOrder,
    actor: str,
    role: str,
    at: datetime,
    reason: str | None = None,
) -> None:
    conn.execute(
        "INSERT INTO dispatch.history (work_order_id, at, actor, role, action, from_state,"
        " to_state, reason, assignee, resolve_by) VALUES (%s, %s, %s, %s, 'create', NULL,"
        " %s, %s, NULL, %s)",
        (order.id, at, actor, role, order.status.value, reason, order.resolve_by),
    )


def history(conn: Connection[Any], work_order_id: int) -> list[HistoryEntry]:
    rows = _all(
        conn,
        f"SELECT {_HISTORY_COLS} FROM dispatch.history WHERE work_order_id = %s ORDER BY id",
        (work_order_id,),
    )
    return [HistoryEntry.model_validate(row) for row in rows]


# -- idempotency ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class StoredRequest:
    """A request already made under an (actor, key): what it was and what it answered."""

    fingerprint: str
    response: Any


def claim_key(
    conn: Connection[Any],
    actor: str,
    key: str,
    fingerprint: str,
    operation: str,
    at: datetime,
) -> StoredRequest | None:
    """Claim (actor, key) for this transaction: None when it is new (the caller applies
    its change and :func:`store_response`), else the request stored under it. A racing
    claim of the same key waits here until the other transaction ends."""
    claimed = conn.execute(
        "INSERT INTO dispatch.idempotency_keys (actor, key, fingerprint, operation, created_at)"
        " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (actor, key) DO NOTHING RETURNING 1",
        (actor, key, fingerprint, operation, at),
    ).fetchone()
    if claimed is not None:
        return None
    row = _one(
        conn,
        "SELECT fingerprint, response FROM dispatch.idempotency_keys WHERE actor = %s AND key = %s",
        (actor, key),
    )
    assert row is not None  # the conflicting row was committed: keys are never updated away
    return StoredRequest(row["fingerprint"], row["response"])


def store_response(
    conn: Connection[Any], actor: str, key: str, work_order_id: int | None, response: Any
) -> None:
    conn.execute(
        "UPDATE dispatch.idempotency_keys SET response = %s, work_order_id = %s"
        " WHERE actor = %s AND key = %s",
        (Jsonb(response), work_order_id, actor, key),
    )


def purge_keys(conn: Connection[Any], before: datetime) -> int:
    return conn.execute(
        "DELETE FROM dispatch.idempotency_keys WHERE created_at < %s", (before,)
    ).rowcount


# -- on site --------------------------------------------------------------------------------
def ticks(conn: Connection[Any], work_order_id: int, visit: int) -> list[Tick]:
    rows = _all(
        conn,
        f"SELECT {_TICK_COLS} FROM dispatch.checklist_ticks"
        " WHERE work_order_id = %s AND visit = %s ORDER BY id",
        (work_order_id, visit),
    )
    return [Tick.model_validate(row) for row in rows]


def insert_tick(conn: Connection[Any], tick: Tick) -> None:
    conn.execute(
        "INSERT INTO dispatch.checklist_ticks (work_order_id, visit, task_id, by_actor, at,"
        " photo_key, note) VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (
            tick.work_order_id,
            tick.visit,
            tick.task_id,
            tick.by,
            tick.at,
            tick.photo_key,
            tick.note,
        ),
    )


def has_photo(conn: Connection[Any], work_order_id: int, storage_key: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM dispatch.photos WHERE work_order_id = %s AND storage_key = %s",
        (work_order_id, storage_key),
    ).fetchone()
    return row is not None


def insert_note(
    conn: Connection[Any], work_order_id: int, by: str, role: str, at: datetime, text: str
) -> Note:
    row = _one(
        conn,
        "INSERT INTO dispatch.notes (work_order_id, by_actor, role, at, text)"
        " VALUES (%s, %s, %s, %s, %s) RETURNING id, work_order_id, by_actor AS by, role, at, text",
        (work_order_id, by, role, at, text),
    )
    assert row is not None
    return Note.model_validate(row)


def notes(conn: Connection[Any], work_order_id: int) -> list[Note]:
    rows = _all(
        conn,
        "SELECT id, work_order_id, by_actor AS by, role, at, text FROM dispatch.notes"
        " WHERE work_order_id = %s ORDER BY id",
        (work_order_id,),
    )
    return [Note.model_validate(row) for row in rows]


def photo(conn: Connection[Any], work_order_id: int, photo_id: int) -> Photo | None:
    row = _one(
        conn,
        f"SELECT {_PHOTO_COLS} FROM dispatch.photos WHERE work_order_id = %s AND id = %s",
        (work_order_id, photo_id),
    )
    return None if row is None else Photo.model_validate(row)


def insert_photo(conn: Connection[Any], photo: dict[str, Any]) -> Photo:
    row = _one(
        conn,
        "INSERT INTO dispatch.photos (work_order_id, storage_key, content_type, bytes, sha256,"
        " by_actor, at) VALUES (%(work_order_id)s, %(storage_key)s, %(content_type)s,"
        f" %(bytes)s, %(sha256)s, %(by)s, %(at)s) RETURNING {_PHOTO_COLS}",
        photo,
    )
    assert row is not None
    return Photo.model_validate(row)


def photos(conn: Connection[Any], work_order_id: int) -> list[Photo]:
    rows = _all(
        conn,
        f"SELECT {_PHOTO_COLS} FROM dispatch.photos WHERE work_order_id = %s ORDER BY id",
        (work_order_id,),
    )
    return [Photo.model_validate(row) for row in rows]


def signature(conn: Connection[Any], work_order_id: int, visit: int) -> Signature | None:
    row = _one(
        conn,
        f"SELECT {_SIGNATURE_COLS} FROM dispatch.signatures"
        " WHERE work_order_id = %s AND visit = %s",
        (work_order_id, visit),
    )
    return None if row is None else Signature.model_validate(row)


def insert_signature(conn: Connection[Any], signature: Signature) -> None:
    conn.execute(
        "INSERT INTO dispatch.signatures (work_order_id, visit, signer_name, storage_key,"
        " content_type, bytes, sha256, by_actor, at) VALUES (%(work_order_id)s, %(visit)s,"
        " %(signer_name)s, %(storage_key)s, %(content_type)s, %(bytes)s, %(sha256)s, %(by)s,"
        " %(at)s)",
        signature.model_dump(),
    )


# -- parts ------------------------------------------------------------------------------------
def add_stock(
    conn: Connection[Any],
    region: Region,
    part_no: str,
    quantity: int,
    description: str | None,
    at: datetime,
    valuation: tuple[Decimal, str] | None = None,
    reorder: tuple[int | None, int | None] = (None, None),
) -> PartStock:
    """``quantity`` more of ``part_no`` in ``region``'s stock (a new part when unknown);
    ``valuation``: its value per unit and currency from now (None: as it was);
    ``reorder``: its reorder level and quantity from now (each None: as it was, 0 for a
    new part)."""
    value, currency = valuation if valuation is not None else (None, None)
    level, again = reorder
    row = _one(
        conn,
        "INSERT INTO dispatch.parts_stock (region, part_no, description, quantity, updated_at,"
        " unit_value, currency, reorder_level, reorder_quantity) VALUES (%(region)s,"
        " %(part)s, coalesce(%(desc)s, ''), %(qty)s, %(at)s, %(value)s, %(currency)s,"
        " coalesce(%(level)s, 0), coalesce(%(again)s, 0))"
        " ON CONFLICT (region, part_no) DO UPDATE"
        " SET quantity = parts_stock.quantity + EXCLUDED.quantity,"
        " description = coalesce(%(desc)s, parts_stock.description),"
        " unit_value = coalesce(%(value)s, parts_stock.unit_value),"
        " currency = coalesce(%(currency)s, parts_stock.currency),"
        " reorder_level = coalesce(%(level)s, parts_stock.reorder_level),"
        " reorder_quantity = coalesce(%(again)s, parts_stock.reorder_quantity),"
        f" updated_at = EXCLUDED.updated_at RETURNING {_STOCK_COLS}",
        {
            "region": region.value,
            "part": part_no,
            "desc": description,
            "qty": quantity,
            "at": at,
            "value": value,
            "currency": currency,
            "level": level,
            "again": again,
        },
    )
    assert row is not None
    return PartStock.model_validate(row)


def stock(conn: Connection[Any], region: Region) -> list[PartStock]:
    rows = _all(
        conn,
        f"SELECT {_STOCK_COLS} FROM dispatch.parts_stock WHERE region = %s ORDER BY part_no",
        (region.value,),
    )
    return [PartStock.model_validate(row) for row in rows]


def take_part(
    conn: Connection[Any], region: Region, part_no: str, quantity: int, at: datetime
) -> PartStock | None:
    """Take ``quantity`` from the stock: the stock line after it (what is left, its
    valuation), or None when the part is unknown or fewer are in stock (nothing taken)."""
    row = _one(
        conn,
        "UPDATE dispatch.parts_stock SET quantity = quantity - %s, updated_at = %s"
        f" WHERE region = %s AND part_no = %s AND quantity >= %s RETURNING {_STOCK_COLS}",
        (quantity, at, region.value, part_no, quantity),
    )
    return None if row is None else PartStock.model_validate(row)


def in_stock(conn: Connection[Any], region: Region, part_no: str) -> int | None:
    row = conn.execute(
        "SELECT quantity FROM dispatch.parts_stock WHERE region = %s AND part_no = %s",
        (region.value, part_no),
    ).fetchone()
    return None if row is None else int(row[0])


def insert_part_use(
    conn: Connection[Any],
    work_order_id: int,
    region: Region,
    part_no: str,
    quantity: int,
    by: str,
    at: datetime,
    line: PartStock,
) -> PartUse:
    """The use, with the stock ``line`` after it (what is left; its valuation, kept)."""
    row = _one(
        conn,
        "INSERT INTO dispatch.parts_used (work_order_id, region, part_no, quantity, by_actor,"
        " at, unit_value, currency) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id,"
        " work_order_id, region, part_no, quantity, by_actor AS by, at, unit_value, currency",
        (work_order_id, region.value, part_no, quantity, by, at, line.unit_value, line.currency),
    )
    assert row is not None
    return PartUse.model_validate({**row, "stock_left": line.quantity})


# -- sites ------------------------------------------------------------------------------------
def record_gateway(conn: Connection[Any], reg: GatewayRegistration, at: datetime) -> None:
    """The registry's announcement of a gateway as of ``at``: its site's region, account
    and location, and which site it is on (an older announcement changes nothing)."""
    conn.execute(
        "INSERT INTO dispatch.sites (site_id, region, account_id, latitude, longitude,"
        " updated_at) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (site_id) DO UPDATE"
        " SET region = EXCLUDED.region, account_id = EXCLUDED.account_id,"
        " latitude = EXCLUDED.latitude, longitude = EXCLUDED.longitude,"
        " updated_at = EXCLUDED.updated_at WHERE dispatch.sites.updated_at <= EXCLUDED.updated_at",
        (reg.site_id, reg.region.value, reg.account_id, reg.latitude, reg.longitude, at),
    )
    conn.execute(
        "INSERT INTO dispatch.site_gateways (gateway_id, site_id, region, enabled, updated_at)"
        " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (gateway_id) DO UPDATE"
        " SET site_id = EXCLUDED.site_id, region = EXCLUDED.region,"
        " enabled = EXCLUDED.enabled, updated_at = EXCLUDED.updated_at"
        " WHERE dispatch.site_gateways.updated_at <= EXCLUDED.updated_at",
        (reg.gateway_id, reg.site_id, reg.region.value, reg.enabled, at),
    )


def get_site(conn: Connection[Any], site_id: int) -> KnownSite | None:
    row = _one(
        conn,
        "SELECT s.site_id, s.region, s.account_id, s.latitude, s.longitude,"
        " coalesce(array_agg(g.gateway_id ORDER BY g.gateway_id)"
        "   FILTER (WHERE g.gateway_id IS NOT NULL), '{}') AS gateway_ids"
        " FROM dispatch.sites s LEFT JOIN dispatch.site_gateways g"
        "   ON g.site_id = s.site_id AND g.enabled"
        " WHERE s.site_id = %s GROUP BY s.site_id",
        (site_id,),
    )
    return None if row is None else KnownSite.model_validate(row)


def gateway_ids(conn: Connection[Any], site_id: int) -> list[str]:
    rows = conn.execute(
        "SELECT gateway_id FROM dispatch.site_gateways WHERE site_id = %s AND enabled"
        " ORDER BY gateway_id",
        (site_id,),
    ).fetchall()
    return [row[0] for row in rows]


# -- performance ----------------------------------------------------------------------------
_PERFORMANCE = """
WITH resolves AS (
    SELECT h.at, h.resolve_by FROM dispatch.history h
    JOIN dispatch.work_orders w ON w.id = h.work_order_id
    WHERE w.region = %(region)s AND h.action = 'resolve'
      AND h.at >= %(since)s AND h.at < %(until)s
      AND (%(employee)s::text IS NULL OR h.actor = %(employee)s)
), verifications AS (
    SELECT w.visits, w.reopen_count FROM dispatch.history h
    JOIN dispatch.work_orders w ON w.id = h.work_order_id
    WHERE w.region = %(region)s AND h.action = 'verify'
      AND h.at >= %(since)s AND h.at < %(until)s
      AND (%(employee)s::text IS NULL OR h.assignee = %(employee)s)
)
SELECT
    (SELECT count(*) FROM resolves) AS jobs_done,
    (SELECT count(*) FROM resolves WHERE resolve_by IS NOT NULL) AS sla_measured,
    (SELECT count(*) FROM resolves WHERE at <= resolve_by) AS sla_met,
    (SELECT count(*) FROM verifications) AS verified,
    (SELECT count(*) FROM verifications WHERE visits = 1 AND reopen_count = 0)
        AS first_time_fixes,
    (SELECT (count(*) FILTER (WHERE visits = 1 AND reopen_count = 0))::float8
            / NULLIF(count(*), 0) FROM verifications) AS first_time_fix_rate
"""


def performance(
    conn: Connection[Any],
    region: Region,
    employee_no: str | None,
    since: datetime,
    until: datetime,
) -> Performance:
    row = _one(
        conn,
        _PERFORMANCE,
        {"region": region.value, "employee": employee_no, "since": since, "until": until},
    )
    assert row is not None
    return Performance.model_validate(
        {**row, "region": region, "employee_no": employee_no, "since": since, "until": until}
    )


# -- technicians' locations -------------------------------------------------------------------
def job_under_way(
    conn: Connection[Any], employee_no: str, statuses: Collection[WorkOrderStatus]
) -> int | None:
    """A job of ``employee_no`` in ``statuses`` (the lowest id), or None."""
    row = conn.execute(
        "SELECT id FROM dispatch.work_orders WHERE assignee = %s AND status = ANY(%s)"
        " ORDER BY id LIMIT 1",
        (employee_no, sorted(s.value for s in statuses)),
    ).fetchone()
    return None if row is None else int(row[0])


def insert_location(conn: Connection[Any], fix: dict[str, Any]) -> None:
    conn.execute(
        "INSERT INTO dispatch.locations (employee_no, region, latitude, longitude,"
        " accuracy_m, at, received_at, duty, work_order_id) VALUES (%(employee_no)s,"
        " %(region)s, %(latitude)s, %(longitude)s, %(accuracy_m)s, %(at)s, %(received_at)s,"
        " %(duty)s, %(work_order_id)s)",
        fix,
    )


def purge_locations(conn: Connection[Any], before: datetime, employee_no: str | None) -> int:
    """Forget location fixes received before ``before`` (one employee's, or everyone's),
    and the idempotency keys of location posts as old (their fingerprints are hashes of
    coordinates); how many fixes were forgotten."""
    who = "" if employee_no is None else " AND employee_no = %(who)s"
    params = {"before": before, "who": employee_no}
    cur = conn.execute(
        f"DELETE FROM dispatch.locations WHERE received_at < %(before)s{who}", params
    )
    keys = "" if employee_no is None else " AND actor = %(who)s"
    conn.execute(
        "DELETE FROM dispatch.idempotency_keys WHERE operation = 'location'"
        f" AND created_at < %(before)s{keys}",
        params,
    )
    return cur.rowcount


def latest_positions(
    conn: Connection[Any], employee_nos: Collection[str], since: datetime
) -> dict[str, tuple[float, float]]:
    """Each employee's newest fix taken at or after ``since``: (latitude, longitude)."""
    rows = conn.execute(
        "SELECT DISTINCT ON (employee_no) employee_no, latitude, longitude"
        " FROM dispatch.locations WHERE employee_no = ANY(%s) AND at >= %s"
        " ORDER BY employee_no, at DESC",
        (sorted(employee_nos), since),
    ).fetchall()
    return {str(r[0]): (float(r[1]), float(r[2])) for r in rows}
