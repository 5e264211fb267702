"""What the admins' screens and REST show of billing cycles (issue 19 point 6), read-only:
a region's cycles, newest period first, and one cycle with its documents, their totals
per currency and the sites it skipped with the reasons. Every query names the region
(the URL's) in SQL: another region's cycle is not there.

A cycle row (``billing.cycles``) is written by :meth:`BillingService.run_cycle`; while it
runs, its invoices are counted from the documents (the row's ``invoiced`` is set when it
finishes) and its progress is the row's ``sites_done`` of ``sites_total``. A run resumed
after an interruption retries the sites it skipped, so ``skipped`` may name a site twice:
each site is shown once, with its latest reason.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel

from cloud.adapters.postgres import Connection, ConnectionPool, dict_row
from contracts.topics import Region

__all__ = [
    "CurrencyTotal",
    "CycleDetail",
    "CycleDocument",
    "CycleSummary",
    "CyclesReader",
    "SkippedSiteView",
]

Pool = ConnectionPool[Connection[Any]]

#: A monthly cycle ends in the month it starts; a quarterly one two months later.
_KIND = (
    "CASE WHEN date_trunc('month', c.first_day) = date_trunc('month', c.last_day)"
    " THEN 'monthly' ELSE 'quarterly' END"
)
#: Skipped sites, each once with its latest reason (a resumed run retries them).
_SKIPPED = (
    "SELECT DISTINCT ON ((e.value->>'site_id')::int) (e.value->>'site_id')::int AS site_id,"
    " e.value->>'reason' AS reason"
    " FROM jsonb_array_elements(c.skipped) WITH ORDINALITY AS e(value, n)"
    " ORDER BY (e.value->>'site_id')::int, e.n DESC"
)
_SUMMARY = (
    f"SELECT c.id, c.region, c.first_day, c.last_day, {_KIND} AS cycle, c.state, c.run_by,"
    " c.started_at, c.finished_at, c.progress_at, c.sites_total, c.sites_done,"
    # Finished: the count the run stored; running: the documents so far.
    " CASE WHEN c.state = 'billed' THEN c.invoiced ELSE (SELECT count(*)"
    " FROM billing.invoices i WHERE i.cycle_id = c.id AND i.kind = 'invoice') END AS invoices,"
    f" (SELECT count(*) FROM ({_SKIPPED}) s) AS skipped"
    " FROM billing.cycles c"
)


class CycleSummary(BaseModel):
    """One billing cycle: a region's period, who ran it, and how far it got. ``state``
    ``running`` with no ``sites_total``: the run has not started (it waits for another
    cycle of the region, or was never run)."""

    id: int
    region: Region
    first_day: date
    last_day: date
    cycle: Literal["monthly", "quarterly"]
    state: Literal["running", "billed"]
    run_by: str
    started_at: datetime
    finished_at: datetime | None
    #: When the run last recorded its progress.
    progress_at: datetime | None
    #: Sites the run bills (None: not started yet) and how many are done.
    sites_total: int | None
    sites_done: int
    #: Invoices issued (notes issued later by true-ups are not the cycle's).
    invoices: int
    #: Sites skipped, each counted once.
    skipped: int


class CycleDocument(BaseModel):
    number: str
    kind: str
    state: str
    account_id: str
    site_id: int
    issue_date: date
    currency: str
    net: Decimal
    tax: Decimal
    gross: Decimal


class CurrencyTotal(BaseModel):
    """The cycle's documents in one currency: how many, and their sums."""

    currency: str
    documents: int
    net: Decimal
    tax: Decimal
    gross: Decimal


class SkippedSiteView(BaseModel):
    site_id: int
    reason: str


class CycleDetail(CycleSummary):
    """The cycle with a page of its documents (by number) and of its skipped sites (by
    site), and totals over all its documents."""

    totals: list[CurrencyTotal]
    documents: list[CycleDocument]
    skipped_sites: list[SkippedSiteView]


class CyclesReader:
    """Read-only views of ``billing.cycles``; blocking: call from a thread in async code."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    def cycles(self, region: Region, *, limit: int = 50, offset: int = 0) -> list[CycleSummary]:
        """The region's cycles, newest period first."""
        sql = (
            f"{_SUMMARY} WHERE c.region = %s ORDER BY c.first_day DESC, c.id DESC"
            " LIMIT %s OFFSET %s"
        )
        with self._pool.connection() as conn:
            rows = conn.cursor(row_factory=dict_row).execute(sql, (region.value, limit, offset))
            return [CycleSummary(**r) for r in rows.fetchall()]

    def summary(self, region: Region, cycle_id: int) -> CycleSummary | None:
        with self._pool.connection() as conn:
            return _summary(conn, "c.id = %s", region, cycle_id)

    def find(self, region: Region, first_day: date, last_day: date) -> CycleSummary | None:
        """The region's cycle of exactly ``[first_day, last_day]``, if any."""
        with self._pool.connection() as conn:
            row = conn.execute(
                "SELECT id FROM billing.cycles WHERE region = %s AND first_day = %s"
                " AND last_day = %s",
                (region.value, first_day, last_day),
            ).fetchone()
            return None if row is None else _summary(conn, "c.id = %s", region, row[0])

    def cycle(
        self, region: Region, cycle_id: int, *, limit: int = 200, offset: int = 0
    ) -> CycleDetail | None:
        """The cycle with at most ``limit`` documents and skipped sites from ``offset``."""
        with self._pool.connection() as conn:
            head = _summary(conn, "c.id = %s", region, cycle_id)
            if head is None:
                return None
            cur = conn.cursor(row_factory=dict_row)
            totals = cur.execute(
                "SELECT currency, count(*) AS documents, sum(net) AS net, sum(tax) AS tax,"
                " sum(gross) AS gross FROM billing.invoices WHERE cycle_id = %s"
                " GROUP BY currency ORDER BY currency",
                (cycle_id,),
            ).fetchall()
            documents = cur.execute(
                "SELECT number, kind, state, account_id, site_id, issue_date, currency, net,"
                " tax, gross FROM billing.invoices WHERE cycle_id = %s ORDER BY number"
                " LIMIT %s OFFSET %s",
                (cycle_id, limit, offset),
            ).fetchall()
            skipped = cur.execute(
                f"SELECT s.site_id, s.reason FROM billing.cycles c, LATERAL ({_SKIPPED}) s"
                " WHERE c.id = %s ORDER BY s.site_id LIMIT %s OFFSET %s",
                (cycle_id, limit, offset),
            ).fetchall()
        return CycleDetail(
            **head.model_dump(),
            totals=[CurrencyTotal(**r) for r in totals],
            documents=[CycleDocument(**r) for r in documents],
            skipped_sites=[SkippedSiteView(**r) for r in skipped],
        )


def _summary(
    conn: Connection[Any], condition: str, region: Region, *args: Any
) -> CycleSummary | None:
    row = (
        conn.cursor(row_factory=dict_row)
        .execute(f"{_SUMMARY} WHERE c.region = %s AND {condition}", (region.value, *args))
        .fetchone()
    )
    return None if row is None else CycleSummary(**row)
