"""Support SQL (schema ``support``); every function takes a connection in a transaction.
Reads are scoped in SQL with :func:`cloud.scope.site_condition` on the ticket's region
and account: a customer's scope reaches its account's tickets only."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from cloud.adapters.postgres import Connection, dict_row
from cloud.regional_ids import next_id_sql
from cloud.scope import Scope, site_condition
from cloud.support.lifecycle import State
from cloud.support.models import Link, LinkKind, QueueFilter, Ticket, TicketEvent, TicketIn
from contracts.topics import Region

_COLS = (
    "id, region, account_id, jurisdiction, language, kind, change, priority, state, subject,"
    " description, created_by, assignee, plan_code, plan_from, approved_at, approved_by,"
    " work_order_id, work_requested_at, outcome, reasons, created_at, first_response_at,"
    " resolved_at, closed_at, first_response_due, resolution_due, updated_at"
)
_EVENT_COLS = "at, actor, actor_role, action, from_state, to_state, note, visible_to_customer"
#: Columns :func:`update_ticket` may set.
UPDATABLE = frozenset(
    {
        "state",
        "assignee",
        "approved_at",
        "approved_by",
        "work_order_id",
        "work_requested_at",
        "outcome",
        "reasons",
        "first_response_at",
        "resolved_at",
        "closed_at",
        "first_response_due",
        "resolution_due",
    }
)


def _ticket(row: dict[str, Any]) -> Ticket:
    return Ticket.model_validate(row)


def insert_ticket(
    conn: Connection[Any],
    region: Region,
    account_id: str,
    jurisdiction: str,
    given: TicketIn,
    created_by: str,
    at: datetime,
) -> Ticket:
    row = (
        conn.cursor(row_factory=dict_row)
        .execute(
            "INSERT INTO support.tickets (id, region, account_id, jurisdiction, language, kind,"
            " change, priority, state, subject, description, created_by, plan_code, plan_from,"
            " created_at, updated_at) VALUES ("
            f"{next_id_sql('support.ticket_seq', '%(region)s')}, %(region)s, %(account)s,"
            " %(jurisdiction)s, %(language)s, %(kind)s, %(change)s, %(priority)s, 'new',"
            " %(subject)s, %(description)s, %(created_by)s, %(plan_code)s, %(plan_from)s,"
            f" %(at)s, %(at)s) RETURNING {_COLS}",
            {
                "region": region.value,
                "account": account_id,
                "jurisdiction": jurisdiction,
                "language": given.language,
                "kind": given.kind.value,
                "change": given.change.value if given.change else None,
                "priority": given.priority.value,
                "subject": given.subject,
                "description": given.description,
                "created_by": created_by,
                "plan_code": given.plan_code,
                "plan_from": given.plan_from,
                "at": at,
            },
        )
        .fetchone()
    )
    assert row is not None
    return _ticket(row)


def get_ticket(
    conn: Connection[Any], ticket_id: int, scope: Scope, *, lock: bool = False
) -> Ticket | None:
    """The ticket when ``scope`` reaches it (else None); ``lock``: its row held until
    commit, so changes to one ticket go one at a time."""
    row = (
        conn.cursor(row_factory=dict_row)
        .execute(
            f"SELECT {_COLS} FROM support.tickets t WHERE id = %(id)s AND {site_condition('t')}"
            + (" FOR UPDATE" if lock else ""),
            {"id": ticket_id, **scope.sql_params()},
        )
        .fetchone()
    )
    return _ticket(row) if row is not None else None


def update_ticket(conn: Connection[Any], ticket_id: int, at: datetime, **fields: Any) -> Ticket:
    unknown = set(fields) - UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    sets = ", ".join(f"{name} = %({name})s" for name in fields)
    row = (
        conn.cursor(row_factory=dict_row)
        .execute(
            f"UPDATE support.tickets SET {sets}, updated_at = %(updated_at)s"
            f" WHERE id = %(id)s RETURNING {_COLS}",
            {**fields, "updated_at": at, "id": ticket_id},
        )
        .fetchone()
    )
    assert row is not None
    return _ticket(row)


def insert_event(
    conn: Connection[Any],
    ticket_id: int,
    at: datetime,
    actor: str,
    actor_role: str,
    action: str,
    *,
    from_state: State | None = None,
    to_state: State | None = None,
    note: str = "",
    visible: bool = True,
) -> None:
    conn.execute(
        f"INSERT INTO support.ticket_events (ticket_id, {_EVENT_COLS})"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            ticket_id,
            at,
            actor,
            actor_role,
            action,
            from_state.value if from_state else None,
            to_state.value if to_state else None,
            note,
            visible,
        ),
    )


def history(conn: Connection[Any], ticket_id: int, *, customer: bool) -> list[TicketEvent]:
    """The ticket's history in order; ``customer``: only the lines meant for it."""
    rows = (
        conn.cursor(row_factory=dict_row)
        .execute(
            f"SELECT {_EVENT_COLS} FROM support.ticket_events WHERE ticket_id = %s"
            " AND (NOT %s OR visible_to_customer) ORDER BY id",
            (ticket_id, customer),
        )
        .fetchall()
    )
    return [TicketEvent.model_validate(r) for r in rows]


def state_changes(conn: Connection[Any], ticket_id: int) -> list[tuple[datetime, State]]:
    """Every state the ticket entered, in order, with when (its pauses come from these)."""
    rows = conn.execute(
        "SELECT at, to_state FROM support.ticket_events WHERE ticket_id = %s"
        " AND to_state IS NOT NULL ORDER BY id",
        (ticket_id,),
    ).fetchall()
    return [(at, State(state)) for at, state in rows]


def insert_link(conn: Connection[Any], ticket_id: int, link: Link) -> bool:
    """Link ``link``; False when it was already there."""
    cur = conn.execute(
        "INSERT INTO support.ticket_links (ticket_id, kind, ref) VALUES (%s, %s, %s)"
        " ON CONFLICT DO NOTHING",
        (ticket_id, link.kind.value, link.ref),
    )
    return cur.rowcount == 1


def links(conn: Connection[Any], ticket_id: int) -> list[Link]:
    rows = conn.execute(
        "SELECT kind, ref FROM support.ticket_links WHERE ticket_id = %s ORDER BY kind, ref",
        (ticket_id,),
    ).fetchall()
    return [Link(kind=LinkKind(kind), ref=ref) for kind, ref in rows]


def list_tickets(
    conn: Connection[Any], scope: Scope, given: QueueFilter, limit: int, offset: int
) -> list[Ticket]:
    """Tickets ``scope`` reaches, filtered, the most urgent first: by the next due time
    (first response while none was given, else resolution; paused clocks last), then
    newest."""
    conditions = [site_condition("t")]
    params: dict[str, Any] = {**scope.sql_params(), "limit": limit, "offset": offset}
    for name in ("state", "kind", "priority", "assignee", "account_id"):
        value = getattr(given, name)
        if value is not None:
            conditions.append(f"t.{name} = %({name})s")
            params[name] = str(value)
    if given.open_only and given.state is None:
        conditions.append("t.state NOT IN ('resolved', 'closed')")
    rows = (
        conn.cursor(row_factory=dict_row)
        .execute(
            f"SELECT {_COLS} FROM support.tickets t WHERE {' AND '.join(conditions)}"
            " ORDER BY CASE WHEN t.first_response_at IS NULL THEN t.first_response_due"
            " ELSE t.resolution_due END ASC NULLS LAST, t.created_at DESC, t.id DESC"
            " LIMIT %(limit)s OFFSET %(offset)s",
            params,
        )
        .fetchall()
    )
    return [_ticket(r) for r in rows]


def resolved_before(conn: Connection[Any], region: Region, before: datetime) -> Sequence[int]:
    """Resolved tickets of ``region`` whose resolution is older than ``before``."""
    rows = conn.execute(
        "SELECT id FROM support.tickets WHERE region = %s AND state = 'resolved'"
        " AND resolved_at < %s ORDER BY id",
        (region.value, before),
    ).fetchall()
    return [r[0] for r in rows]


def sla_candidates(
    conn: Connection[Any], region: Region, since: datetime, until: datetime
) -> list[dict[str, Any]]:
    """Tickets of ``region`` with a clock that may have been decided in ``[since,
    until)`` — a first response or resolution then, or a due time kept on the row then
    (:mod:`cloud.support.metrics`) — with every state they entered (``change_at`` and
    ``change_to``, in order)."""
    return (
        conn.cursor(row_factory=dict_row)
        .execute(
            "SELECT t.id, t.priority, t.jurisdiction, t.state, t.created_at,"
            " t.first_response_at, t.resolved_at, c.change_at, c.change_to"
            " FROM support.tickets t CROSS JOIN LATERAL ("
            "  SELECT array_agg(e.at ORDER BY e.id) AS change_at,"
            "   array_agg(e.to_state ORDER BY e.id) AS change_to"
            "  FROM support.ticket_events e"
            "  WHERE e.ticket_id = t.id AND e.to_state IS NOT NULL) AS c"
            " WHERE t.region = %(region)s AND t.created_at < %(until)s AND ("
            "  t.first_response_at >= %(since)s AND t.first_response_at < %(until)s"
            "  OR t.first_response_due >= %(since)s AND t.first_response_due < %(until)s"
            "  OR t.resolved_at >= %(since)s AND t.resolved_at < %(until)s"
            "  OR t.resolution_due >= %(since)s AND t.resolution_due < %(until)s)"
            " ORDER BY t.id",
            {"region": region.value, "since": since, "until": until},
        )
        .fetchall()
    )


def raised_per_month(
    conn: Connection[Any], scope: Scope, zone: str, since: datetime, until: datetime
) -> list[tuple[date, str, int]]:
    """Tickets ``scope`` reaches raised in ``[since, until)``, counted per local month
    in ``zone`` (the month's first day) and kind."""
    rows = conn.execute(
        "SELECT date_trunc('month', t.created_at AT TIME ZONE %(zone)s)::date AS month,"
        f" t.kind, count(*)::int FROM support.tickets t WHERE {site_condition('t')}"
        " AND t.created_at >= %(since)s AND t.created_at < %(until)s"
        " GROUP BY 1, 2 ORDER BY 1, 2",
        {**scope.sql_params(), "zone": zone, "since": since, "until": until},
    ).fetchall()
    return [(month, kind, n) for month, kind, n in rows]
