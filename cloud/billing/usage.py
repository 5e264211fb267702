"""Billed energy by period, read-only (issue 19 points 3 and 6): a document's kWh per
local day and tariff period, and an account's billed kWh per month and tariff period.

A document's days come from its ledger lines, allocated to tariff periods exactly as the
rating did (:func:`cloud.billing.documents.period_energy`: the document's plan schedule,
zone and site time zone, at 1 mWh): an invoice's own lines; a credit or debit note's
difference between the lines it brought and those they superseded (its side of
:func:`~cloud.billing.documents.energy_difference`); a cancellation's, the invoice it
reverses. A plan this process has no tariff data for (or no ``zones`` given) is read
flat: days still add up, under the one period ``flat``.

An account's months come from its documents' energy lines (the kWh each document
billed, by the month its line starts): invoices and debit notes add, credit notes and
cancellations subtract, so a cancelled invoice nets to nothing.

Every query is filtered by the caller's :class:`~cloud.scope.Scope` in SQL, like
:class:`~cloud.billing.bills.BillsReader`'s.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from cloud.adapters.postgres import Connection, ConnectionPool, dict_row
from cloud.billing.bills import BillLine
from cloud.billing.documents import energy_difference, period_energy
from cloud.billing.ledger import LedgerLine
from cloud.billing.periods import PeriodEnergy, TouSchedule
from cloud.billing.tariffs import TariffError, load_tariffs
from cloud.scope import Scope, site_condition
from contracts.topics import Region

__all__ = [
    "DocumentUsage",
    "UsageDay",
    "UsageMonth",
    "UsageReader",
    "billed_periods",
    "period_table",
]

Pool = ConnectionPool[Connection[Any]]

#: Months an account's usage table covers, ending with its newest billed month.
MONTHS = 12

_LEDGER_COLUMNS = (
    "hour_start AS start, hour_end AS end, forward_mwh, reverse_mwh, export_mwh,"
    " pool_used_mwh, billable_mwh, estimated"
)


class UsageDay(BaseModel):
    """kWh of one tariff period on one local day of the site (exact, six decimals)."""

    day: date
    period: str
    kwh: Decimal


class DocumentUsage(BaseModel):
    """What a document billed per local day and tariff period (``periods`` in the
    order the days first use them)."""

    number: str
    periods: list[str]
    days: list[UsageDay]


class UsageMonth(BaseModel):
    """kWh billed for one tariff period in one month (its first day), net of notes."""

    month: date
    period: str
    kwh: Decimal


class UsageReader:
    """Read-only usage views over the ``billing`` schema; ``zones``: each region's
    tariff zones (the tariff data is loaded against them) — without them every day is
    flat. Blocking: call from a thread in async code."""

    def __init__(self, pool: Pool, *, zones: Mapping[Region, Collection[str]] | None = None):
        self._pool = pool
        self._zones = zones

    def document(self, number: str, *, scope: Scope) -> DocumentUsage | None:
        """Document ``number``'s kWh per day and period, or None outside ``scope``."""
        head_sql = (
            "SELECT i.id, i.kind, i.region, i.plan_code, i.tariff_zone, i.time_zone,"
            " i.reference_id FROM billing.invoices i"
            f" WHERE i.number = %(number)s AND {site_condition('i')}"
        )
        with self._pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            head = cur.execute(head_sql, {**scope.sql_params(), "number": number}).fetchone()
            if head is None:
                return None
            schedule = self._schedule(Region(head["region"]), head["plan_code"])

            def energy(lines: Sequence[LedgerLine]) -> tuple[PeriodEnergy, ...]:
                return period_energy(
                    lines,
                    time_zone=head["time_zone"],
                    schedule=schedule,
                    tariff_zone=head["tariff_zone"],
                )

            kind = head["kind"]
            if kind in ("credit_note", "debit_note"):
                new, old = _true_up_lines(conn, head["reference_id"], head["id"])
                moved = energy_difference(energy(new), energy(old))
                parts = moved.more if kind == "debit_note" else moved.less
            else:  # an invoice bills its lines; a cancellation reverses its invoice's
                billed = head["reference_id"] if kind == "cancellation" else head["id"]
                parts = energy(_lines(conn, _BILLED, {"invoice": billed}))
        return _usage(number, parts)

    def months(self, account_id: str, *, scope: Scope) -> list[UsageMonth]:
        """The account's billed kWh per month and period within ``scope``, for the
        :data:`MONTHS` months ending with its newest billed month (months with nothing
        billed are absent), oldest first."""
        sql = (
            "SELECT date_trunc('month', l.first_day)::date AS month, l.period,"
            " sum(CASE WHEN i.kind IN ('invoice', 'debit_note') THEN l.kwh ELSE -l.kwh END)"
            " AS kwh FROM billing.invoices i JOIN billing.invoice_lines l ON l.invoice_id = i.id"
            f" WHERE i.account_id = %(account)s AND {site_condition('i')}"
            " AND l.description_key = 'energy' AND l.kwh IS NOT NULL"
            " GROUP BY 1, 2 ORDER BY 1, 2"
        )
        with self._pool.connection() as conn:
            rows = (
                conn.cursor(row_factory=dict_row)
                .execute(sql, {**scope.sql_params(), "account": account_id})
                .fetchall()
            )
        found = [
            UsageMonth(period=r["period"] or "flat", month=r["month"], kwh=r["kwh"]) for r in rows
        ]
        if not found:
            return []
        newest = found[-1].month
        first = date(
            newest.year - (1 if newest.month < MONTHS else 0), (newest.month % MONTHS) + 1, 1
        )
        return [m for m in found if m.month >= first]

    def _schedule(self, region: Region, plan_code: str) -> TouSchedule | None:
        if self._zones is None or region not in self._zones:
            return None
        try:
            tariffs = load_tariffs(region, self._zones[region])
            return tariffs.schedule_of(tariffs.plan(plan_code))
        except TariffError:  # a plan retired from the data, or a test's own: read flat
            return None


def billed_periods(lines: Iterable[BillLine]) -> dict[str, Decimal]:
    """A document's kWh per tariff period as its energy lines bill them (first line
    first): what the document charges or credits, whatever its ledger holds."""
    totals: dict[str, Decimal] = {}
    for line in lines:
        if line.description_key == "energy" and line.kwh is not None:
            period = line.period or "flat"
            totals[period] = totals.get(period, Decimal(0)) + line.kwh
    return totals


def period_table(
    entries: Iterable[tuple[date, str, Decimal]],
) -> tuple[list[str], list[tuple[date, dict[str, Decimal]]], dict[str, Decimal]]:
    """``(day or month, period, kWh)`` entries as a table: the periods (columns, in first
    use order), the rows (per day or month, oldest first, its kWh per period) and the
    total per period."""
    periods: list[str] = []
    rows: dict[date, dict[str, Decimal]] = {}
    totals: dict[str, Decimal] = {}
    for when, period, kwh in entries:
        if period not in periods:
            periods.append(period)
        row = rows.setdefault(when, {})
        row[period] = row.get(period, Decimal(0)) + kwh
        totals[period] = totals.get(period, Decimal(0)) + kwh
    return periods, sorted(rows.items()), totals


def _usage(number: str, parts: Sequence[PeriodEnergy]) -> DocumentUsage:
    periods: list[str] = []
    for part in parts:
        if part.period not in periods:
            periods.append(part.period)
    days = [UsageDay(day=p.day, period=p.period, kwh=p.kwh) for p in parts if p.kwh]
    return DocumentUsage(number=number, periods=periods, days=days)


def _lines(conn: Connection[Any], where: str, args: Mapping[str, Any]) -> list[LedgerLine]:
    rows = (
        conn.cursor(row_factory=dict_row)
        .execute(
            f"SELECT {_LEDGER_COLUMNS} FROM billing.ledger_lines WHERE {where} ORDER BY hour_start",
            args,
        )
        .fetchall()
    )
    return [LedgerLine(**r) for r in rows]


#: The lines an invoice billed when issued: its own, less those a true-up attached to it
#: (a true-up whose difference rated to nothing attaches its new lines to the invoice).
_BILLED = (
    "invoice_id = %(invoice)s AND NOT EXISTS (SELECT 1 FROM billing.ledger_lines o"
    " WHERE o.superseded_by = billing.ledger_lines.id)"
)
#: The lines the true-up that issued note ``%(note)s`` brought: a true-up issues its
#: credit note, then its debit note, and attaches its new lines to the first, so they are
#: the lines of the newest note of the invoice up to this one that has lines.
_TRUE_UP = (
    "invoice_id = (SELECT max(n.id) FROM billing.invoices n WHERE n.reference_id = %(invoice)s"
    " AND n.id <= %(note)s AND n.kind IN ('credit_note', 'debit_note') AND EXISTS"
    " (SELECT 1 FROM billing.ledger_lines x WHERE x.invoice_id = n.id))"
)


def _true_up_lines(
    conn: Connection[Any], invoice_id: int, note_id: int
) -> tuple[list[LedgerLine], list[LedgerLine]]:
    """The lines the true-up that issued note ``note_id`` brought, and those they replaced."""
    ids = {"invoice": invoice_id, "note": note_id}
    new = _lines(conn, _TRUE_UP, ids)
    old = _lines(
        conn, f"superseded_by IN (SELECT id FROM billing.ledger_lines WHERE {_TRUE_UP})", ids
    )
    return new, old
