"""The monthly reports pack (issue 20 point 4) for a fleet of 100,000 sites: the time of
each report — every region's table and the cross-region one, as
:func:`cloud.reports.build_pack` makes them — beside the bare aggregate ("raw") queries
over the same tables in the same run.

    .venv/bin/python -m bench.reports [--sites 100000] [--repeat 3]

Synthetic, made in SQL on a fresh database (:func:`bench.common.bench_database`): sites
40 % au, 35 % us, 25 % es, 3-9 kWp, installed over the 20 months before September
2026; every site's PV day of September 2026 (one day in fifty missing; one site in five
with 18 h covered), i.e. 30 rows a site; one invoice a site issued in September with
its energy line; 3,000 work orders resolved and verified in September (300
technicians); 30,000 alarms raised in September, each annunciated once; 10,000 support
tickets raised over September (one customer in ten; priorities in turn; first response
0-8 h and resolution 0-59 h after creation, one in ten with a 6-hour pending pause), with
their state history, answered by the support service as the API's reader does
(:func:`cloud.bootstrap.create_reports_reader`: SLA clocks on each region's business
calendar). The raw
queries read the same rows with the least work that still answers the report's
question (one GROUP BY, no joins, no ratios): a floor, not an alternative.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from datetime import date
from typing import Any

from bench.common import bench_database
from cloud.adapters.postgres import create_pool
from cloud.bootstrap import create_reports_reader
from cloud.migrate import migrate
from cloud.reports import build_pack
from contracts.topics import Region

MONTH = date(2026, 9, 1)
REGIONS = (Region.AU, Region.US, Region.ES)

_SEED = [
    "INSERT INTO telemetry.metrics (id, name, unit, kind, description)"
    " VALUES (10, 'pv_wh', 'Wh', 'counter', 'pv') ON CONFLICT DO NOTHING",
    # sites: 40 % au, 35 % us, 25 % es
    """INSERT INTO customers.installations (region, site_id, pv_kwp, tilt_deg, azimuth_deg,
        battery_kwh, network_operator, tariff_zone, installed_on, warranty_until, billing_meter)
    SELECT CASE WHEN s <= %(n)s * 0.40 THEN 'au' WHEN s <= %(n)s * 0.75 THEN 'us' ELSE 'es' END,
        s, 3 + s %% 7, 20, 0, 5 * (s %% 2), 'net',
        CASE WHEN s <= %(n)s * 0.40 THEN 'NSW' WHEN s <= %(n)s * 0.75 THEN 'CA' ELSE 'PEN' END,
        date '2025-01-01' + (s %% 600), '2045-01-01', 'MTR-' || s
    FROM generate_series(1, %(n)s) AS s""",
    """INSERT INTO telemetry.energy_site_1d (site_id, metric_id, day, devices, energy_mwh,
        samples, covered)
    SELECT s, 10, d::date, ARRAY[s], (s %% 97) * 300000 + 5000000,
        CASE WHEN s %% 5 = 0 THEN 216 ELSE 288 END,
        make_interval(hours => CASE WHEN s %% 5 = 0 THEN 18 ELSE 24 END)
    FROM generate_series(1, %(n)s) AS s,
         generate_series(date '2026-09-01', date '2026-09-30', interval '1 day') AS d
    WHERE (s + extract(day FROM d)::int) %% 50 <> 0""",
    """INSERT INTO billing.invoices (number, kind, region, account_id, site_id, first_day,
        last_day, plan_code, tariff_zone, time_zone, contract_start, currency, net, tax, gross,
        issued_at, issue_date, due_date)
    SELECT upper(i.region) || '-2026-' || lpad(i.site_id::text, 7, '0'), 'invoice', i.region,
        'acc_' || md5(i.site_id::text), i.site_id, '2026-08-01', '2026-08-31', 'bench',
        i.tariff_zone, 'UTC', '2025-01-01',
        CASE i.region WHEN 'au' THEN 'AUD' WHEN 'us' THEN 'USD' ELSE 'EUR' END,
        25.00, 2.50, 27.50, timestamptz '2026-09-02' + (i.site_id %% 20) * interval '1 day',
        date '2026-09-02' + (i.site_id %% 20), date '2026-09-30'
    FROM customers.installations i""",
    """INSERT INTO billing.invoice_lines (invoice_id, line_no, description_key, first_day,
        last_day, period, kwh, unit_price, net, tax, tax_percent)
    SELECT id, 1, 'energy', '2026-08-01', '2026-08-31', 'flat', 100, 0.25, 25.00, 'tax', 10
    FROM billing.invoices""",
    """INSERT INTO dispatch.work_orders (region, site_id, type, priority, title, status,
        visits, verified_at, assignee, created_by, created_at, updated_at)
    SELECT (ARRAY['au', 'us', 'es'])[1 + w %% 3], w * 29 %% %(n)s + 1,
        (ARRAY['inverter_fault', 'battery_fault', 'inspection'])[1 + w %% 3::int], 'P2',
        'bench job', 'verified', 1 + (w %% 7 = 0)::int, timestamptz '2026-09-25',
        'E' || (w %% 300), 'bench', timestamptz '2026-09-01' + w * interval '10 minutes',
        timestamptz '2026-09-01'
    FROM generate_series(1, 3000) AS w""",
    """INSERT INTO dispatch.history (work_order_id, at, actor, role, action, from_state,
        to_state, assignee, resolve_by)
    SELECT id, created_at + interval '1 day', assignee, 'mosie', 'resolve', 'on_site',
        'resolved', assignee, created_at + interval '1 day' + (id %% 3 - 1) * interval '2 h'
    FROM dispatch.work_orders
    UNION ALL
    SELECT id, created_at + interval '2 days', 'system', 'system', 'verify', 'resolved',
        'verified', assignee, NULL
    FROM dispatch.work_orders""",
    """INSERT INTO alerts.alarms (id, region, rule_id, severity, site_id, state, active,
        count, first_raised_at, last_seen_at, cleared_at, closed_at, title)
    SELECT a, (ARRAY['au', 'us', 'es'])[1 + a %% 3], 'rule-' || a,
        (ARRAY['low', 'medium', 'high', 'urgent'])[1 + a %% 4], a %% %(n)s + 1, 'normal', false,
        1, timestamptz '2026-09-01' + a * interval '80 seconds',
        timestamptz '2026-09-01' + a * interval '80 seconds',
        timestamptz '2026-09-01' + a * interval '80 seconds' + interval '3 h',
        timestamptz '2026-09-01' + a * interval '80 seconds' + interval '3 h', 'bench alarm'
    FROM generate_series(1, 30000) AS a""",
    """INSERT INTO alerts.alarm_history (alarm_id, at, action, from_state, to_state)
    SELECT id, first_raised_at, 'raise', 'normal', 'unacknowledged' FROM alerts.alarms""",
    # support: 10,000 tickets over September, their state changes (a pause in ten)
    """INSERT INTO support.tickets (id, region, account_id, jurisdiction, language, kind,
        priority, state, subject, description, created_by, created_at, first_response_at,
        resolved_at, first_response_due, resolution_due, updated_at)
    SELECT t, r.region, 'acc_' || md5(t::text), r.jurisdiction, 'en', 'question',
        (ARRAY['low', 'normal', 'high', 'urgent'])[1 + t %% 4], 'resolved', 'bench', '',
        'bench', c.at, c.at + (t %% 9) * interval '1 hour', c.at + (t %% 60) * interval '1 hour',
        c.at + interval '4 hours', c.at + interval '48 hours', c.at
    FROM generate_series(1, 10000) AS t
    CROSS JOIN LATERAL (SELECT timestamptz '2026-09-01 00:00Z' + t * interval '250 seconds'
        AS at) AS c
    CROSS JOIN LATERAL (SELECT (ARRAY['au', 'us', 'es'])[1 + t %% 3] AS region,
        (ARRAY['AU-NSW', 'US-CA', 'ES'])[1 + t %% 3] AS jurisdiction) AS r""",
    """INSERT INTO support.ticket_events (ticket_id, at, actor, actor_role, action,
        from_state, to_state, visible_to_customer)
    SELECT id, created_at, 'bench', 'customer', 'created', NULL, 'new', true
    FROM support.tickets
    UNION ALL SELECT id, first_response_at, 'bench', 'support', 'state', 'new', 'open', true
    FROM support.tickets
    UNION ALL SELECT id, first_response_at + interval '1 minute', 'bench', 'support', 'state',
        'open', 'pending', true FROM support.tickets WHERE id %% 10 = 0
    UNION ALL SELECT id, first_response_at + interval '6 hours', 'bench', 'customer', 'state',
        'pending', 'open', true FROM support.tickets WHERE id %% 10 = 0
    UNION ALL SELECT id, greatest(resolved_at, first_response_at + interval '7 hours'), 'bench',
        'support', 'state', 'open', 'resolved', true FROM support.tickets
    ORDER BY 2""",
]

#: The least a report's question needs, per region: one GROUP BY over the same rows.
RAW = {
    "fleet": "SELECT e.day, count(*), sum(e.energy_mwh), sum(e.covered)"
    " FROM telemetry.energy_site_1d e JOIN customers.installations i"
    " ON i.site_id = e.site_id AND i.region = %(region)s"
    " WHERE e.metric_id = 10 AND e.day BETWEEN '2026-09-01' AND '2026-09-30' GROUP BY e.day",
    "revenue": "SELECT currency, tariff_zone, count(*), sum(net) FROM billing.invoices"
    " WHERE region = %(region)s AND issue_date BETWEEN '2026-09-01' AND '2026-09-30'"
    " GROUP BY 1, 2",
    "mosie": "SELECT h.actor, count(*) FROM dispatch.history h"
    " JOIN dispatch.work_orders w ON w.id = h.work_order_id"
    " WHERE w.region = %(region)s AND h.action = 'resolve'"
    " AND h.at >= '2026-09-01' AND h.at < '2026-10-01' GROUP BY 1",
    "alerts": "SELECT severity, count(*) FROM alerts.alarms WHERE region = %(region)s"
    " AND first_raised_at >= '2026-09-01' AND first_raised_at < '2026-10-01' GROUP BY 1",
    "support": "SELECT priority, count(*),"
    " count(*) FILTER (WHERE first_response_at <= first_response_due),"
    " count(*) FILTER (WHERE resolved_at <= resolution_due) FROM support.tickets"
    " WHERE region = %(region)s AND created_at >= '2026-09-01' AND created_at < '2026-10-01'"
    " GROUP BY 1",
}


def _timed(run: Callable[[], Any], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with bench_database() as url:
        schemas = {"customers", "telemetry", "billing", "dispatch", "alerts", "support"}
        migrate(url, schemas=schemas)
        pool = create_pool(url, max_size=2, name="bench-reports")
        try:
            started = time.perf_counter()
            with pool.connection() as conn:
                for statement in _SEED:
                    conn.execute(statement, {"n": args.sites})  # type: ignore[arg-type]
                conn.commit()
            with pool.connection() as conn:
                conn.autocommit = True
                conn.execute("ANALYZE")
                counts = conn.execute(
                    "SELECT (SELECT count(*) FROM telemetry.energy_site_1d),"
                    " (SELECT count(*) FROM billing.invoices),"
                    " (SELECT count(*) FROM dispatch.history),"
                    " (SELECT count(*) FROM alerts.alarms),"
                    " (SELECT count(*) FROM support.ticket_events)"
                ).fetchone()
            print(f"seeded in {time.perf_counter() - started:.1f} s: site days, invoices,"
                  f" job history rows, alarms, ticket events = {counts}")  # fmt: skip
            _measure(pool, args.repeat)
        finally:
            pool.close()


def _measure(pool: Any, repeat: int) -> None:
    reader = create_reports_reader(pool)
    readers = {region: reader for region in REGIONS}
    build_pack(readers, MONTH)  # warm the caches once, as a monthly job's second report is
    packs = [build_pack(readers, MONTH) for _ in range(repeat)]

    def raw(name: str) -> None:
        with pool.connection() as conn:
            for region in REGIONS:
                conn.execute(RAW[name], {"region": region.value}).fetchall()

    print(f"{'report (3 regions + combined)':<32} {'pack':>10} {'raw query':>10} {'ratio':>7}")
    total = 0.0
    for name in reader.names:
        pack_s = statistics.median(p.seconds[name] for p in packs)
        raw_s = _timed(lambda n=name: raw(n), repeat)  # type: ignore[misc]
        total += pack_s
        print(f"{name:<32} {pack_s:>9.3f}s {raw_s:>9.3f}s {pack_s / raw_s:>6.2f}x")
    print(f"{'whole pack':<32} {total:>9.3f}s")


if __name__ == "__main__":
    main()
