"""SQL of technician pushes: the technicians and work orders learned from events, and
the log of requests (``config.technicians``, ``config.work_orders``,
``config.tech_requests``; schema 006)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from cloud.adapters.postgres import Connection, Jsonb
from cloud.config.tech_rules import JobFact, TechnicianFact
from contracts.messages import ConfigReq

__all__ = [
    "LoggedRequest",
    "finish_request",
    "job_requests",
    "jobs_at_site",
    "logged_request",
    "purge_requests",
    "record_request",
    "record_technician",
    "technician",
    "technician_of_user",
]


@dataclass(frozen=True, slots=True)
class LoggedRequest:
    """One technician request as logged, with its outcome (``pending`` while judged)."""

    request_id: UUID
    username: str
    employee_no: str
    site_id: int
    profile: str
    received_at: datetime
    outcome: str
    detail: str
    work_order_id: int | None
    versions: dict[str, int]


_LOGGED_COLS = (
    "request_id, username, employee_no, site_id, profile, received_at, outcome, detail,"
    " work_order_id, versions"
)


def _logged(row: Any) -> LoggedRequest:
    return LoggedRequest(
        row[0], row[1], row[2], int(row[3]), row[4], row[5], row[6], row[7], row[8],
        {str(k): int(v) for k, v in (row[9] or {}).items()},
    )  # fmt: skip


def record_technician(
    conn: Connection[Any],
    user_id: str,
    *,
    broker_username: str | None,
    employee_no: str | None,
    home_region: str,
    disabled: bool,
    at: datetime,
) -> bool:
    """Keep the user's newest state (an older event arriving late changes nothing); a
    broker identity moved to this user is taken from whoever had it. False when older."""
    if broker_username is not None:
        conn.execute(
            "UPDATE config.technicians SET broker_username = NULL"
            " WHERE broker_username = %s AND user_id <> %s AND at <= %s",
            (broker_username, user_id, at),
        )
    row = conn.execute(
        "INSERT INTO config.technicians"
        " (user_id, broker_username, employee_no, home_region, disabled, at)"
        " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (user_id) DO UPDATE SET"
        " broker_username = EXCLUDED.broker_username, employee_no = EXCLUDED.employee_no,"
        " home_region = EXCLUDED.home_region, disabled = EXCLUDED.disabled, at = EXCLUDED.at"
        " WHERE config.technicians.at <= EXCLUDED.at RETURNING 1",
        (user_id, broker_username, employee_no, home_region, disabled, at),
    ).fetchone()
    return row is not None


def technician(conn: Connection[Any], broker_username: str) -> TechnicianFact | None:
    row = conn.execute(
        "SELECT broker_username, employee_no, home_region, disabled FROM config.technicians"
        " WHERE broker_username = %s",
        (broker_username,),
    ).fetchone()
    return None if row is None else TechnicianFact(row[0], row[1], row[2], bool(row[3]))


def technician_of_user(conn: Connection[Any], user_id: str) -> TechnicianFact | None:
    row = conn.execute(
        "SELECT broker_username, employee_no, home_region, disabled FROM config.technicians"
        " WHERE user_id = %s",
        (user_id,),
    ).fetchone()
    return None if row is None else TechnicianFact(row[0], row[1], row[2], bool(row[3]))


def jobs_at_site(conn: Connection[Any], site_id: int, employee_no: str) -> list[JobFact]:
    """The work orders of ``site_id`` assigned to ``employee_no``, in any state or region."""
    rows = conn.execute(
        "SELECT work_order_id, region, status, gateway_ids FROM config.work_orders"
        " WHERE site_id = %s AND assignee = %s ORDER BY work_order_id",
        (site_id, employee_no),
    ).fetchall()
    return [JobFact(int(r[0]), r[1], r[2], tuple(r[3] or ())) for r in rows]


def record_request(
    conn: Connection[Any], request: ConfigReq, username: str, region: str, received_at: datetime
) -> bool:
    """Log the request; False when its id or nonce was logged before (a replay)."""
    row = conn.execute(
        "INSERT INTO config.tech_requests (request_id, nonce, username, region, employee_no,"
        " site_id, profile, sent_at, received_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT DO NOTHING RETURNING 1",
        (
            request.id,
            request.nonce,
            username,
            region,
            request.employee_no,
            request.site_id,
            request.profile,
            request.ts,
            received_at,
        ),
    ).fetchone()
    return row is not None


def finish_request(
    conn: Connection[Any],
    request_id: UUID,
    outcome: str,
    detail: str,
    *,
    work_order_id: int | None = None,
    versions: dict[str, int] | None = None,
) -> None:
    conn.execute(
        "UPDATE config.tech_requests SET outcome = %s, detail = %s, work_order_id = %s,"
        " versions = %s WHERE request_id = %s",
        (outcome, detail, work_order_id, Jsonb(versions or {}), request_id),
    )


def logged_request(conn: Connection[Any], request_id: UUID) -> LoggedRequest | None:
    row = conn.execute(
        f"SELECT {_LOGGED_COLS} FROM config.tech_requests WHERE request_id = %s", (request_id,)
    ).fetchone()
    return None if row is None else _logged(row)


def job_requests(
    conn: Connection[Any], work_order_id: int, employee_no: str, limit: int = 20
) -> list[LoggedRequest]:
    """The newest requests judged under a work order by its technician, newest first."""
    rows = conn.execute(
        f"SELECT {_LOGGED_COLS} FROM config.tech_requests"
        " WHERE work_order_id = %s AND employee_no = %s ORDER BY received_at DESC LIMIT %s",
        (work_order_id, employee_no, limit),
    ).fetchall()
    return [_logged(r) for r in rows]


def purge_requests(conn: Connection[Any], before: datetime, limit: int) -> int:
    """Forget up to ``limit`` requests received before ``before``, oldest first; how many."""
    return conn.execute(
        "DELETE FROM config.tech_requests WHERE request_id IN (SELECT request_id FROM"
        " config.tech_requests WHERE received_at < %s ORDER BY received_at LIMIT %s)",
        (before, limit),
    ).rowcount
