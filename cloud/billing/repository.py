"""The ``billing`` schema's SQL (``cloud/billing/schema/``): cycles, gap-free numbers,
documents with their lines and taxes, ledger lines, grid pools. Every function runs in
the caller's transaction; none commits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from cloud.adapters.postgres import Connection, Jsonb, dict_row
from cloud.billing.ledger import LedgerLine
from cloud.billing.rating import RatedInvoice
from cloud.billing.readings import Meters
from cloud.events.invoices import DocumentKind
from contracts.topics import Region

__all__ = [
    "CycleRow",
    "InvoiceRow",
    "NewDocument",
    "StoredLine",
    "add_skipped",
    "current_lines",
    "finish_cycle",
    "grid_pool",
    "insert_document",
    "insert_ledger_lines",
    "invoiced_sites",
    "invoices_from",
    "lock_region",
    "lock_site",
    "next_number",
    "open_cycle",
    "pool_before",
    "replace_lines",
    "service_invoice",
    "set_grid_pool",
    "set_progress",
    "unlock_region",
]

#: First key of billing's advisory locks ("bill" in ASCII); the second is the region's
#: or the site's hash.
_CYCLE_LOCK = 0x62696C6C
_SITE_LOCK = 0x62696C73


def lock_region(conn: Connection[Any], region: Region) -> None:
    """Wait for the region's billing-cycle lock (a session lock: held across the
    cycle's per-site transactions until :func:`unlock_region`)."""
    conn.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", (_CYCLE_LOCK, region.value))


def unlock_region(conn: Connection[Any], region: Region) -> None:
    conn.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", (_CYCLE_LOCK, region.value))


def lock_site(conn: Connection[Any], region: Region, site_id: int) -> None:
    """The site's billing lock until the transaction ends: a cycle's invoice and a
    true-up's note of one site never interleave."""
    conn.execute(
        "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_SITE_LOCK, f"{region.value}/{site_id}")
    )


@dataclass(frozen=True, slots=True)
class CycleRow:
    id: int
    state: str
    invoiced: int
    skipped: list[dict[str, Any]]


def open_cycle(
    conn: Connection[Any], region: Region, first: date, last: date, run_by: str
) -> CycleRow:
    """The region's cycle of ``[first, last]``, created as running if new."""
    conn.execute(
        "INSERT INTO billing.cycles (region, first_day, last_day, run_by) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT (region, first_day, last_day) DO NOTHING",
        (region.value, first, last, run_by),
    )
    row = (
        conn.cursor(row_factory=dict_row)
        .execute(
            "SELECT id, state, invoiced, skipped FROM billing.cycles"
            " WHERE region = %s AND first_day = %s AND last_day = %s",
            (region.value, first, last),
        )
        .fetchone()
    )
    assert row is not None  # inserted or found above
    return CycleRow(row["id"], row["state"], row["invoiced"], list(row["skipped"]))


def add_skipped(conn: Connection[Any], cycle_id: int, entry: dict[str, Any]) -> None:
    conn.execute(
        "UPDATE billing.cycles SET skipped = skipped || %s WHERE id = %s",
        (Jsonb([entry]), cycle_id),
    )


def set_progress(
    conn: Connection[Any], cycle_id: int, done: int, at: datetime, *, total: int | None = None
) -> None:
    """Record how many of the cycle's sites are done (and, when given, how many there
    are): what the admins' screen shows of a running cycle."""
    conn.execute(
        "UPDATE billing.cycles SET sites_total = coalesce(%s, sites_total),"
        " sites_done = %s, progress_at = %s WHERE id = %s",
        (total, done, at, cycle_id),
    )


def finish_cycle(conn: Connection[Any], cycle_id: int, at: datetime) -> int:
    """Mark the cycle billed, every site done; its invoice count."""
    row = conn.execute(
        "UPDATE billing.cycles SET state = 'billed', finished_at = %s, progress_at = %s,"
        " sites_done = coalesce(sites_total, sites_done),"
        " invoiced = (SELECT count(*) FROM billing.invoices WHERE cycle_id = %s)"
        " WHERE id = %s RETURNING invoiced",
        (at, at, cycle_id, cycle_id),
    ).fetchone()
    assert row is not None
    return int(row[0])


def invoiced_sites(conn: Connection[Any], cycle_id: int) -> set[int]:
    rows = conn.execute(
        "SELECT site_id FROM billing.invoices WHERE cycle_id = %s AND kind = 'invoice'",
        (cycle_id,),
    ).fetchall()
    return {r[0] for r in rows}


def service_invoice(conn: Connection[Any], region: Region, work_order_id: int) -> str | None:
    """The number of the service invoice of the work order, if one was issued."""
    row = conn.execute(
        "SELECT number FROM billing.invoices WHERE region = %s AND work_order_id = %s"
        " AND kind = 'invoice'",
        (region.value, work_order_id),
    ).fetchone()
    return None if row is None else str(row[0])


def next_number(conn: Connection[Any], region: Region, year: int) -> int:
    """The region's next document number of ``year``: the counter row stays locked until
    the caller's transaction ends, so a rolled-back document leaves no gap."""
    row = conn.execute(
        "INSERT INTO billing.number_counters AS c (region, year, last_number) VALUES (%s, %s, 1)"
        " ON CONFLICT (region, year) DO UPDATE SET last_number = c.last_number + 1"
        " RETURNING last_number",
        (region.value, year),
    ).fetchone()
    assert row is not None
    return int(row[0])


@dataclass(frozen=True, slots=True)
class NewDocument:
    kind: DocumentKind
    number: str
    account_id: str
    site_id: int
    cycle_id: int | None
    time_zone: str
    pool_in_mwh: int
    rated: RatedInvoice
    reference_id: int | None
    issued_at: datetime
    issue_date: date
    due_date: date
    #: The work order a service invoice bills (None: energy documents).
    work_order_id: int | None = None


def insert_document(conn: Connection[Any], doc: NewDocument) -> int:
    """Store the document, its lines and its taxes; its id."""
    rated = doc.rated
    row = conn.execute(
        "INSERT INTO billing.invoices (number, kind, region, account_id, site_id, cycle_id,"
        " first_day, last_day, plan_code, tariff_zone, time_zone, contract_start,"
        " pool_in_mwh, currency, net, tax, gross, reference_id, issued_at, issue_date,"
        " due_date, work_order_id, plans) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
        " %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (
            doc.number,
            doc.kind,
            rated.region.value,
            doc.account_id,
            doc.site_id,
            doc.cycle_id,
            rated.period.first_day,
            rated.period.last_day,
            rated.plan_code,
            rated.tariff_zone,
            doc.time_zone,
            rated.contract_start,
            doc.pool_in_mwh,
            rated.currency,
            rated.net,
            rated.tax,
            rated.gross,
            doc.reference_id,
            doc.issued_at,
            doc.issue_date,
            doc.due_date,
            doc.work_order_id,
            Jsonb(plans_json(rated.plans)),
        ),
    ).fetchone()
    assert row is not None
    invoice_id = int(row[0])
    conn.cursor().executemany(
        "INSERT INTO billing.invoice_lines (invoice_id, line_no, description_key, first_day,"
        " last_day, period, kwh, unit_price, base, percent, net, tax, tax_percent, quantity,"
        " item, plan_code) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
        " %s, %s)",
        [
            (
                invoice_id,
                no,
                line.description_key,
                line.first_day,
                line.last_day,
                line.period,
                line.kwh,
                line.unit_price,
                line.base,
                line.percent,
                line.net,
                line.tax,
                line.tax_percent,
                line.quantity,
                line.item,
                line.plan,
            )
            for no, line in enumerate(rated.lines, start=1)
        ],
    )
    conn.cursor().executemany(
        "INSERT INTO billing.invoice_taxes (invoice_id, tax, percent, base, amount)"
        " VALUES (%s, %s, %s, %s, %s)",
        [(invoice_id, t.tax, t.percent, t.base, t.amount) for t in rated.taxes],
    )
    return invoice_id


def insert_ledger_lines(
    conn: Connection[Any],
    region: Region,
    site_id: int,
    lines: Sequence[LedgerLine],
    meters: Sequence[Meters],
    invoice_id: int,
    *,
    ids: Sequence[int] | None = None,
) -> None:
    """Store ``lines`` billed on ``invoice_id``, each read from its ``meters`` (with
    ``ids`` when given: reserved by :func:`replace_lines`), in one statement: a month is
    some 720 lines a site, and a cycle's rows one at a time were a third of its database
    time."""
    given = ids if ids is not None else [None] * len(lines)
    if not len(given) == len(lines) == len(meters):
        raise ValueError(f"{len(given)} ids and {len(meters)} meters for {len(lines)} lines")
    conn.execute(
        "INSERT INTO billing.ledger_lines (id, region, site_id, hour_start, hour_end,"
        " forward_mwh, reverse_mwh, export_mwh, pool_used_mwh, billable_mwh, estimated,"
        " billing_meter, billing_device, grid_meter, grid_device, invoice_id)"
        " SELECT coalesce(u.id, nextval('billing.ledger_lines_id_seq')), %s, %s, u.hour_start,"
        " u.hour_end, u.forward, u.reverse, u.export, u.pool_used, u.billable, u.estimated,"
        " u.billing_meter, u.billing_device, u.grid_meter, u.grid_device, %s"
        " FROM unnest(%s::bigint[], %b::timestamptz[], %b::timestamptz[], %b::bigint[],"
        " %b::bigint[], %b::bigint[], %b::bigint[], %b::bigint[], %b::boolean[], %b::text[],"
        " %s::int[], %s::text[], %s::int[])"
        " AS u(id, hour_start, hour_end, forward, reverse, export, pool_used, billable,"
        " estimated, billing_meter, billing_device, grid_meter, grid_device)",
        (
            region.value,
            site_id,
            invoice_id,
            list(given),  # NULLs as text: a binary array needs a typed element
            [line.start for line in lines],
            [line.end for line in lines],
            [line.forward_mwh for line in lines],
            [line.reverse_mwh for line in lines],
            [line.export_mwh for line in lines],
            [line.pool_used_mwh for line in lines],
            [line.billable_mwh for line in lines],
            [line.estimated for line in lines],
            [m.billing_meter for m in meters],
            [m.billing_device for m in meters],
            [m.grid_meter for m in meters],
            [m.grid_device for m in meters],
        ),
    )


def replace_lines(
    conn: Connection[Any],
    region: Region,
    site_id: int,
    old_ids: Sequence[int],
    lines: Sequence[LedgerLine],
    meters: Sequence[Meters],
    invoice_id: int,
) -> None:
    """Supersede ledger lines ``old_ids`` by ``lines`` (one each, in order): the old ones
    point at the new ones' reserved ids first, so each hour keeps one current line."""
    ids = [
        int(r[0])
        for r in conn.execute(
            "SELECT nextval('billing.ledger_lines_id_seq') FROM generate_series(1, %s)",
            (len(lines),),
        ).fetchall()
    ]
    conn.cursor().executemany(
        "UPDATE billing.ledger_lines SET superseded_by = %s"
        " WHERE id = %s AND superseded_by IS NULL",
        [(new, old) for old, new in zip(old_ids, ids, strict=True)],
    )
    insert_ledger_lines(conn, region, site_id, lines, meters, invoice_id, ids=ids)


@dataclass(frozen=True, slots=True)
class StoredLine:
    id: int
    line: LedgerLine
    meters: Meters


def current_lines(
    conn: Connection[Any], region: Region, site_id: int, start: datetime, end: datetime
) -> list[StoredLine]:
    """The site's current (not superseded) ledger lines of ``[start, end)``, by hour."""
    rows = (
        conn.cursor(row_factory=dict_row)
        .execute(
            "SELECT * FROM billing.ledger_lines WHERE region = %s AND site_id = %s"
            " AND hour_start >= %s AND hour_start < %s AND superseded_by IS NULL"
            " ORDER BY hour_start",
            (region.value, site_id, start, end),
        )
        .fetchall()
    )
    return [
        StoredLine(
            r["id"],
            LedgerLine(
                r["hour_start"],
                r["hour_end"],
                r["forward_mwh"],
                r["reverse_mwh"],
                r["export_mwh"],
                r["pool_used_mwh"],
                r["billable_mwh"],
                r["estimated"],
            ),
            Meters(r["billing_meter"], r["billing_device"], r["grid_meter"], r["grid_device"]),
        )
        for r in rows
    ]


def grid_pool(conn: Connection[Any], region: Region, site_id: int) -> tuple[int, datetime | None]:
    """The site's carried AU grid pool (mWh) and the end of the hours it covers."""
    row = conn.execute(
        "SELECT pool_mwh, through FROM billing.grid_pools WHERE region = %s AND site_id = %s",
        (region.value, site_id),
    ).fetchone()
    return (0, None) if row is None else (int(row[0]), row[1])


def set_grid_pool(
    conn: Connection[Any], region: Region, site_id: int, pool_mwh: int, through: datetime
) -> None:
    """Carry ``pool_mwh`` on from ``through``, unless a later period's pool is kept."""
    conn.execute(
        "INSERT INTO billing.grid_pools (region, site_id, pool_mwh, through)"
        " VALUES (%s, %s, %s, %s) ON CONFLICT (region, site_id)"
        " DO UPDATE SET pool_mwh = EXCLUDED.pool_mwh, through = EXCLUDED.through"
        " WHERE billing.grid_pools.through <= EXCLUDED.through",
        (region.value, site_id, pool_mwh, through),
    )


@dataclass(frozen=True, slots=True)
class InvoiceRow:
    id: int
    number: str
    account_id: str
    site_id: int
    first_day: date
    last_day: date
    plan_code: str
    tariff_zone: str
    time_zone: str
    contract_start: date
    pool_in_mwh: int
    net: Decimal
    #: The plan segments of a prorated invoice (decision 150); empty: ``plan_code``.
    plans: tuple[tuple[date, str], ...] = ()


def invoices_from(
    conn: Connection[Any], region: Region, site_id: int, day: date
) -> list[InvoiceRow]:
    """The site's issued energy invoices (not notes) of periods ending on ``day`` or
    later, in order: those holding it and every one after."""
    rows = (
        conn.cursor(row_factory=dict_row)
        .execute(
            "SELECT id, number, account_id, site_id, first_day, last_day, plan_code,"
            " tariff_zone, time_zone, contract_start, pool_in_mwh, net, plans"
            " FROM billing.invoices"
            " WHERE region = %s AND site_id = %s AND kind = 'invoice' AND state = 'issued'"
            " AND work_order_id IS NULL"
            " AND last_day >= %s ORDER BY first_day",
            (region.value, site_id, day),
        )
        .fetchall()
    )
    return [InvoiceRow(**{**r, "plans": plans_of(r["plans"])}) for r in rows]


def plans_json(plans: Sequence[tuple[date, str]]) -> list[list[str]]:
    """A document's plan segments as stored (``invoices.plans``)."""
    return [[day.isoformat(), code] for day, code in plans]


def plans_of(stored: Sequence[Sequence[str]]) -> tuple[tuple[date, str], ...]:
    """A document's plan segments from ``invoices.plans``."""
    return tuple((date.fromisoformat(day), code) for day, code in stored)


def pool_before(conn: Connection[Any], region: Region, site_id: int, at: datetime) -> int | None:
    """The AU grid pool at ``at`` as the site's current ledger lines before it leave it:
    the pool its first invoice started with, plus what each hour drew, less what each
    hour's delivery took from it (the pool's own arithmetic, decision 119). None when
    no invoiced period of the site ends at ``at`` (nothing joins a period starting there)."""
    row = conn.execute(
        "SELECT (SELECT i.pool_in_mwh FROM billing.invoices i WHERE i.region = %(r)s"
        "  AND i.site_id = %(s)s AND i.kind = 'invoice' AND i.state = 'issued'"
        "  AND i.work_order_id IS NULL"
        "  ORDER BY i.first_day LIMIT 1)"
        " + coalesce(sum(l.reverse_mwh - l.pool_used_mwh), 0),"
        " max(l.hour_end) FROM billing.ledger_lines l WHERE l.region = %(r)s"
        " AND l.site_id = %(s)s AND l.superseded_by IS NULL AND l.hour_start < %(at)s",
        {"r": region.value, "s": site_id, "at": at},
    ).fetchone()
    if row is None or row[1] is None or row[1] != at:
        return None
    return int(row[0])
