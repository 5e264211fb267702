"""Raw data for the reports' tests, written as the owning services store it, and the
figures each report must show, worked out by hand below (never by the code under test).

Region au, September 2026; au's month is local (Australia/Sydney, AEST +10 all month:
2026-08-31T14:00Z to 2026-09-30T14:00Z). A us row beside each to prove the region
filter; rows just outside the month to prove its bounds.

**Fleet** (reference yield au September: 4.4 kWh/kWp/day). Site 1: 5 kWp installed
2026-01-01; site 2: 3 kWp installed 2026-09-16 (its 15th's row is before it joined: not
counted); site 3 is us. PV site days: site 1 on the 1st 20 kWh (24 h covered), on the
16th 15.5 kWh (18 h); site 2 on the 16th 9 kWh (12 h).
Day 1: 1 site, 1 reporting, 20.00 kWh of 22.00 expected (5 x 4.4): PR 90.9 %, 24 h of
24: 100.0 %. Days 2-15: 22.00 expected, nothing produced. Day 16: 2 sites, 2
reporting, 24.50 kWh of 35.20 (8 x 4.4): PR 69.6 %, 30 h of 48: 62.5 %. Days 17-30:
35.20 expected. Month: 45 site days, 3 reporting (6.7 %), 44.50 kWh of 15 x 22 + 15 x
35.2 = 858.00 (PR 5.2 %), 54 h of 1080 (5.0 %).

**Revenue** (utility price au: 0.30 AUD/kWh). NSW: invoice 25.00 + 2.50 = 27.50 (100
kWh, 25.00), invoice 40.00 + 4.00 = 44.00 (120 kWh 30.00 and 40 kWh 10.00), credit
note 5.00 + 0.50 (20 kWh 5.00): 3 documents, net 60.00, tax 6.00, gross 66.00, 240 kWh
for 60.00, at the utility 72.00, savings 12.00 (16.7 %). VIC: invoice 12.34 + 1.23 =
13.57 (50 kWh 12.34): at the utility 15.00, savings 2.66 (17.7 %). AUD total: 4
documents, 72.34, 7.23, 79.57, 290 kWh, 72.34, 87.00, savings 14.66 (16.9 %). An
invoice issued 1 October and a us one are out.

**MOSIE** (first-time fix: resolved at the first visit, never reopened, no job of the
same type at the site within 30 days). E1: job 1 resolved before its due time and
verified, no follow-up (a first-time fix); job 2 resolved after its due time, verified,
followed by job 4 (same site, same type) 9 days later (not one). E2: job 3 resolved
with no due time, verified after 2 visits (not one); job 5 resolved at 01:00 local on
1 September (15:00Z on the 31st: in), before its due time. Job 6 (E1) resolved at 01:00
local on 1 October: out. E1: 2 jobs, 2 measured, 1 met (50.0 %), 2 verified, 1
first-time (50.0 %). E2: 2 jobs, 1 measured, 1 met (100.0 %), 1 verified, 0 (0.0 %).
Total: 4, 3, 2 (66.7 %), 3, 1 (33.3 %).

**Alerts**. A1 high raised 2 Sep, cleared 3 Sep, annunciated on the 2nd and again on
the 4th; A2 high raised in August (and annunciated then), cleared 1 Sep 00:00Z (10:00
local: in); A3 urgent raised 00:30 local 1 Sep (in), annunciated then; A4 low raised
00:30 local 1 Oct (out); a us high alarm. urgent 1 raised, 0 cleared, 1 annunciation;
high 1, 2, 2; medium and low nothing. Total 2, 2, 3.

**Across the regions** (au + us; es has nothing this month). Alerts: au's urgent 1, 0,
1 and high 1, 2, 2 plus us's high 1, 0, 1: urgent 1, 0, 1; high 2, 2, 3; total 3, 2, 4.
MOSIE: au's E1 and E2 and us's E9 (job 7: resolved 5 Sep before its due time on the
6th, verified, one visit, no follow-up: on time and a first-time fix): total 2 + 2 + 1
= 5 jobs, 2 + 1 + 1 = 4 with a due time, 1 + 1 + 1 = 3 on time (75.0 %), 2 + 1 + 1 = 4
verified, 1 + 0 + 1 = 2 first-time fixes (50.0 %).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from cloud.adapters.postgres import Connection, ConnectionPool

Pool = ConnectionPool[Connection[Any]]
ACC = "acc_" + "a" * 32
DAY = timedelta(days=1)
#: Sites and alarm ids far from any other fixture's (the page test seeds a whole world).
SITE = 9000
ALARM = 9_000_000

FLEET_DAYS: dict[int, list[str]] = {
    # day: sites, reporting, availability, energy, expected, PR, covered, expected h, completeness
    1: ["1", "1", "100.0", "20.00", "22.00", "90.9", "24.00", "24", "100.0"],
    2: ["1", "0", "0.0", "0.00", "22.00", "0.0", "0.00", "24", "0.0"],
    16: ["2", "2", "100.0", "24.50", "35.20", "69.6", "30.00", "48", "62.5"],
    30: ["2", "0", "0.0", "0.00", "35.20", "0.0", "0.00", "48", "0.0"],
}
FLEET_TOTAL = ["total", "45", "3", "6.7", "44.50", "858.00", "5.2", "54.00", "1080", "5.0"]
REVENUE = [
    ["AUD", "NSW", "3", "60.00", "6.00", "66.00", "240.00", "60.00", "72.00", "12.00", "16.7"],
    ["AUD", "VIC", "1", "12.34", "1.23", "13.57", "50.00", "12.34", "15.00", "2.66", "17.7"],
]
REVENUE_TOTAL = [
    "AUD", "total", "4", "72.34", "7.23", "79.57", "290.00", "72.34", "87.00", "14.66", "16.9",
]  # fmt: skip
MOSIE = [
    ["E1", "2", "2", "1", "50.0", "2", "1", "50.0"],
    ["E2", "2", "1", "1", "100.0", "1", "0", "0.0"],
]
MOSIE_TOTAL = ["total", "4", "3", "2", "66.7", "3", "1", "33.3"]
ALERTS = [
    ["urgent", "1", "0", "1"],
    ["high", "1", "2", "2"],
    ["medium", "0", "0", "0"],
    ["low", "0", "0", "0"],
]
ALERTS_TOTAL = ["total", "2", "2", "3"]
ALERTS_ACROSS = [
    ["urgent", "1", "0", "1"],
    ["high", "2", "2", "3"],
    ["medium", "0", "0", "0"],
    ["low", "0", "0", "0"],
]
ALERTS_ACROSS_TOTAL = ["total", "3", "2", "4"]
MOSIE_ACROSS = [*MOSIE, ["E9", "1", "1", "1", "100.0", "1", "1", "100.0"]]
MOSIE_ACROSS_TOTAL = ["total", "5", "4", "3", "75.0", "4", "2", "50.0"]


def seed(pool: Pool) -> None:
    with pool.connection() as conn:
        _fleet(conn)
        _revenue(conn)
        _mosie(conn)
        _alerts(conn)


def _fleet(conn: Connection[Any]) -> None:
    conn.execute(
        "INSERT INTO telemetry.metrics (id, name, unit, kind, description)"
        " VALUES (10, 'pv_wh', 'Wh', 'counter', 'pv') ON CONFLICT DO NOTHING"
    )
    for region, site, kwp, installed in (
        ("au", SITE + 1, "5.000", "2026-01-01"),
        ("au", SITE + 2, "3.000", "2026-09-16"),
        ("us", SITE + 3, "10.000", "2020-01-01"),
    ):
        conn.execute(
            "INSERT INTO customers.installations (region, site_id, pv_kwp, tilt_deg,"
            " azimuth_deg, battery_kwh, network_operator, tariff_zone, installed_on,"
            " warranty_until, billing_meter) VALUES (%s, %s, %s, 20, 0, 0, 'net', 'NSW',"
            " %s, '2040-01-01', 'MTR-1')",
            (region, site, kwp, installed),
        )
    for site, day, mwh, samples, hours in (
        (1, "2026-09-01", 20_000_000, 288, 24),
        (1, "2026-09-16", 15_500_000, 200, 18),
        (2, "2026-09-16", 9_000_000, 100, 12),
        (2, "2026-09-15", 1_000_000, 50, 6),
        (3, "2026-09-01", 50_000_000, 288, 24),
        (1, "2026-08-31", 7_000_000, 288, 24),
        (1, "2026-10-01", 7_000_000, 288, 24),
    ):
        conn.execute(
            "INSERT INTO telemetry.energy_site_1d (site_id, metric_id, day, devices,"
            " energy_mwh, samples, covered) VALUES (%s, 10, %s, '{1}', %s, %s,"
            " make_interval(hours => %s))",
            (SITE + site, day, mwh, samples, hours),
        )


def _invoice(
    conn: Connection[Any], n: int, kind: str, region: str, zone: str, issued: str,
    amounts: tuple[str, str, str], lines: list[tuple[str, str]],
) -> None:  # fmt: skip
    prefix, currency = region.upper(), {"au": "AUD", "us": "USD"}[region]
    row = conn.execute(
        "INSERT INTO billing.invoices (number, kind, region, account_id, site_id,"
        " first_day, last_day, plan_code, tariff_zone, time_zone, contract_start,"
        " currency, net, tax, gross, issued_at, issue_date, due_date, reference_id) VALUES"
        " (%s, %s, %s, %s, %s, '2026-08-01', '2026-08-31', 'seed', %s, 'UTC',"
        " '2026-01-01', %s, %s, %s, %s, %s::date, %s::date, %s::date + 14,"
        " (SELECT min(id) FROM billing.invoices WHERE %s <> 'invoice')) RETURNING id",
        (
            f"{prefix}-2026-{9_000_000 + n:07d}", kind, region, ACC, SITE + n, zone,
            currency, *amounts, issued, issued, issued, kind,
        ),
    ).fetchone()  # fmt: skip
    assert row is not None
    for i, (kwh, net) in enumerate(lines, start=1):
        conn.execute(
            "INSERT INTO billing.invoice_lines (invoice_id, line_no, description_key,"
            " first_day, last_day, period, kwh, unit_price, net, tax, tax_percent) VALUES"
            " (%s, %s, 'energy', '2026-08-01', '2026-08-31', 'flat', %s, 0.25, %s, 'gst', 10)",
            (row[0], i, kwh, net),
        )


def _revenue(conn: Connection[Any]) -> None:
    _invoice(conn, 1, "invoice", "au", "NSW", "2026-09-02", ("25.00", "2.50", "27.50"),
             [("100", "25.00")])  # fmt: skip
    _invoice(conn, 2, "invoice", "au", "NSW", "2026-09-30", ("40.00", "4.00", "44.00"),
             [("120", "30.00"), ("40", "10.00")])  # fmt: skip
    _invoice(conn, 3, "credit_note", "au", "NSW", "2026-09-15", ("5.00", "0.50", "5.50"),
             [("20", "5.00")])  # fmt: skip
    _invoice(conn, 4, "invoice", "au", "VIC", "2026-09-10", ("12.34", "1.23", "13.57"),
             [("50", "12.34")])  # fmt: skip
    _invoice(conn, 5, "invoice", "au", "NSW", "2026-10-01", ("9.00", "0.90", "9.90"),
             [("30", "9.00")])  # fmt: skip
    _invoice(conn, 6, "invoice", "us", "CA", "2026-09-10", ("9.00", "0.00", "9.00"),
             [("30", "9.00")])  # fmt: skip


def _order(
    conn: Connection[Any], region: str, site: int, kind: str, created: str, visits: int,
    status: str = "verified",
) -> int:  # fmt: skip
    verified = "2026-09-20T00:00Z" if status == "verified" else None
    row = conn.execute(
        "INSERT INTO dispatch.work_orders (id, region, site_id, type, priority, title, status,"
        " visits, verified_at, created_by, created_at, updated_at)"
        " VALUES ((SELECT greatest(max(id), %s) + 1 FROM dispatch.work_orders), %s, %s, %s,"
        " 'P2', 'a job', %s, %s, %s, 'seed', %s, %s) RETURNING id",
        (ALARM, region, SITE + site, kind, status, visits, verified, created, created),
    ).fetchone()
    assert row is not None
    return int(row[0])


def _history(
    conn: Connection[Any], order: int, action: str, at: str, who: str, due: str | None = None
) -> None:
    conn.execute(
        "INSERT INTO dispatch.history (work_order_id, at, actor, role, action, from_state,"
        " to_state, assignee, resolve_by) VALUES (%s, %s, %s, %s, %s, 'x', 'y', %s, %s)",
        (order, at, who if action == "resolve" else "system",
         "mosie" if action == "resolve" else "system", action, who, due),
    )  # fmt: skip


def _mosie(conn: Connection[Any]) -> None:
    one = _order(conn, "au", 1, "inverter_fault", "2026-09-01T00:00Z", 1)
    _history(conn, one, "resolve", "2026-09-05T00:00Z", "E1", "2026-09-06T00:00Z")
    _history(conn, one, "verify", "2026-09-06T00:00Z", "E1")
    two = _order(conn, "au", 1, "battery_fault", "2026-09-02T00:00Z", 1)
    _history(conn, two, "resolve", "2026-09-10T00:00Z", "E1", "2026-09-09T00:00Z")
    _history(conn, two, "verify", "2026-09-11T00:00Z", "E1")
    three = _order(conn, "au", 2, "isolator_fault", "2026-09-03T00:00Z", 2)
    _history(conn, three, "resolve", "2026-09-12T00:00Z", "E2")
    _history(conn, three, "verify", "2026-09-13T00:00Z", "E2")
    _order(conn, "au", 1, "battery_fault", "2026-09-20T00:00Z", 0, "scheduled")
    five = _order(conn, "au", 2, "inspection", "2026-08-30T00:00Z", 1, "resolved")
    _history(conn, five, "resolve", "2026-08-31T15:00Z", "E2", "2026-08-31T16:00Z")
    six = _order(conn, "au", 2, "inspection", "2026-09-29T00:00Z", 1, "resolved")
    _history(conn, six, "resolve", "2026-09-30T15:00Z", "E1", "2026-10-02T00:00Z")
    seven = _order(conn, "us", 3, "inspection", "2026-09-01T00:00Z", 1)
    _history(conn, seven, "resolve", "2026-09-05T00:00Z", "E9", "2026-09-06T00:00Z")
    _history(conn, seven, "verify", "2026-09-06T00:00Z", "E9")


def _alarm(
    conn: Connection[Any], n: int, region: str, severity: str, raised: str,
    cleared: str | None, annunciated: list[str],
) -> None:  # fmt: skip
    open_ = cleared is None
    conn.execute(
        "INSERT INTO alerts.alarms (id, region, rule_id, severity, site_id, state, active,"
        " count, first_raised_at, last_seen_at, cleared_at, closed_at, acked_by, acked_at,"
        " title) VALUES (%s, %s, %s, %s, 9001, %s, %s, 1, %s, %s, %s, %s, %s, %s, 'alarm')",
        (
            ALARM + n, region, f"rule-{n}", severity, "acknowledged" if open_ else "normal", open_,
            raised, raised, cleared, cleared, "op" if open_ else None,
            raised if open_ else None,
        ),
    )  # fmt: skip
    for at in annunciated:
        conn.execute(
            "INSERT INTO alerts.alarm_history (alarm_id, at, action, from_state, to_state)"
            " VALUES (%s, %s, 'raise', 'acknowledged', 'unacknowledged')",
            (ALARM + n, at),
        )
        conn.execute(  # a repeat while unacknowledged is no annunciation
            "INSERT INTO alerts.alarm_history (alarm_id, at, action, from_state, to_state)"
            " VALUES (%s, %s, 'count', 'unacknowledged', 'unacknowledged')",
            (ALARM + n, at),
        )


def _alerts(conn: Connection[Any]) -> None:
    _alarm(conn, 1, "au", "high", "2026-09-02T00:00Z", "2026-09-03T00:00Z",
           ["2026-09-02T00:00Z", "2026-09-04T00:00Z"])  # fmt: skip
    _alarm(conn, 2, "au", "high", "2026-08-20T00:00Z", "2026-09-01T00:00Z",
           ["2026-08-20T00:00Z"])  # fmt: skip
    _alarm(conn, 3, "au", "urgent", "2026-08-31T14:30Z", None, ["2026-08-31T14:30Z"])
    _alarm(conn, 4, "au", "low", "2026-09-30T14:30Z", None, ["2026-09-30T14:30Z"])
    _alarm(conn, 5, "us", "high", "2026-09-05T00:00Z", None, ["2026-09-05T00:00Z"])
