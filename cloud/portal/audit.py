"""The audit of support views (issue 15): every time a member of staff opens a customer's
pages read-only, one row in ``portal.view_audit`` — who (subject and role), which
account and site, what page, from which client address, when.

Written by the page that shows the view, before it answers, so a view that cannot be
recorded is not shown. Read back newest first within a :class:`~cloud.scope.Scope`,
filtered in SQL: admins everything, a region's office that region, a customer its own
account's views. Bounded: ``what`` is cut to :data:`WHAT_MAX_CHARS` (a page's
description, never the page), ``address`` to :data:`ADDRESS_MAX_CHARS`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from cloud.adapters.postgres import Connection, ConnectionPool, dict_row
from cloud.apitypes import INT4_MAX
from cloud.events.types import AccountId
from cloud.identity import Role
from cloud.scope import Scope, site_condition
from contracts.timeutil import utc_now
from contracts.topics import Region

__all__ = [
    "ADDRESS_MAX_CHARS",
    "MAX_RECENT",
    "WHAT_MAX_CHARS",
    "ViewAudit",
    "ViewRecord",
]

WHAT_MAX_CHARS = 200
ADDRESS_MAX_CHARS = 64
SUBJECT_MAX_CHARS = 100
#: Rows one read returns at most.
MAX_RECENT = 500

_COLUMNS = "id, at, actor_subject, actor_role, region, account_id, site_id, what, address"


class ViewRecord(BaseModel):
    """One recorded view of a customer's pages."""

    model_config = ConfigDict(extra="forbid")

    id: int
    at: datetime
    actor_subject: str = Field(min_length=1, max_length=SUBJECT_MAX_CHARS)
    actor_role: Role
    region: Region
    account_id: AccountId
    site_id: int | None = Field(default=None, ge=1, le=INT4_MAX)
    what: str = Field(min_length=1, max_length=WHAT_MAX_CHARS)
    address: str | None = Field(default=None, min_length=1, max_length=ADDRESS_MAX_CHARS)


def _bounded(text: str, most: int) -> str:
    # PostgreSQL text cannot hold U+0000.
    text = text.replace("\x00", "").strip()
    return text if len(text) <= most else text[: most - 1] + "…"


class ViewAudit:
    """Records and reads support views; thread-safe (each call takes a pooled
    connection)."""

    def __init__(
        self, pool: ConnectionPool[Connection[Any]], *, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self._pool = pool
        self._clock = clock

    def record(
        self,
        *,
        actor_subject: str,
        actor_role: Role | str,
        region: Region,
        account_id: str,
        what: str,
        site_id: int | None = None,
        address: str | None = None,
    ) -> ViewRecord:
        """Record that ``actor_subject`` (as ``actor_role``) viewed ``what`` of account
        ``account_id`` (at home in ``region``; site ``site_id`` if one) from client
        ``address``, now. ``what`` and ``address`` are cut to their bounds;
        ``ValueError`` (pydantic's ``ValidationError``) for an empty ``what`` or
        subject, an unknown role or an account id that is not ``acc_`` + 32 hex."""
        checked = ViewRecord(
            id=0,
            at=self._clock(),
            actor_subject=actor_subject,
            actor_role=Role(actor_role),
            region=region,
            account_id=account_id,
            site_id=site_id,
            what=_bounded(what, WHAT_MAX_CHARS),
            address=_bounded(address or "", ADDRESS_MAX_CHARS) or None,
        )
        with self._pool.connection() as conn:
            row = (
                conn.cursor(row_factory=dict_row)
                .execute(
                    "INSERT INTO portal.view_audit (at, actor_subject, actor_role, region,"
                    " account_id, site_id, what, address) VALUES (%(at)s, %(actor_subject)s,"
                    " %(actor_role)s, %(region)s, %(account_id)s, %(site_id)s, %(what)s,"
                    f" %(address)s) RETURNING {_COLUMNS}",
                    checked.model_dump(mode="json", exclude={"id", "at"}) | {"at": checked.at},
                )
                .fetchone()
            )
        assert row is not None
        return ViewRecord.model_validate(row)

    def recent(
        self, scope: Scope, account_id: str | None = None, limit: int = 100
    ) -> list[ViewRecord]:
        """The newest views within ``scope`` (of ``account_id`` only, if given), newest
        first; ``limit`` from 1 to :data:`MAX_RECENT` (``ValueError`` otherwise)."""
        if not 1 <= limit <= MAX_RECENT:
            raise ValueError(f"limit: {limit} is not from 1 to {MAX_RECENT}")
        with self._pool.connection() as conn:
            rows = (
                conn.cursor(row_factory=dict_row)
                .execute(
                    f"SELECT {_COLUMNS} FROM portal.view_audit v WHERE {site_condition('v')}"
                    " AND (%(account)s::text IS NULL OR v.account_id = %(account)s)"
                    " ORDER BY v.at DESC, v.id DESC LIMIT %(limit)s",
                    {"account": account_id, "limit": limit, **scope.sql_params()},
                )
                .fetchall()
            )
        return [ViewRecord.model_validate(r) for r in rows]
