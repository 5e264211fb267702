"""A report page in a real Chromium on the running demo (issue 20 point 4): an admin on a
360-px phone picks a month on the reports page, opens the alert volumes, reads the
figures (hand-computed here from the alarms this test writes, in a month long before
the demo's own data), sees the chart, and downloads the CSV, which holds the page's
figures. axe-core on the page.
"""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.browser.axe import assert_accessible
from tests.browser.portal_world import Portal
from tests.browser.signin import sign_in

MONTH = "2021-03"


def _seed_alarms(portal: Portal) -> None:
    """Three au alarms raised in March 2021 (AEDT, +11 until 4 April): two high (one
    cleared in March, annunciated once each) and one urgent annunciated twice."""
    base = random.randrange(10**9, 2 * 10**9)
    with portal.stack.pool.connection() as conn:
        for n, severity, cleared, annunciations in (
            (1, "high", "2021-03-10T00:00Z", 1),
            (2, "high", None, 1),
            (3, "urgent", None, 2),
        ):
            conn.execute(
                "INSERT INTO alerts.alarms (id, region, rule_id, severity, site_id, state,"
                " active, count, first_raised_at, last_seen_at, cleared_at, closed_at,"
                " acked_by, acked_at, title) VALUES (%s, 'au', %s, %s, 999999, %s, %s, 1,"
                " '2021-03-05T00:00Z', '2021-03-05T00:00Z', %s, %s, %s, %s, 'bench')",
                (
                    base + n, f"browser-report-{base + n}", severity,
                    "normal" if cleared else "acknowledged", cleared is None, cleared, cleared,
                    None if cleared else "op", None if cleared else "2021-03-05T00:00Z",
                ),
            )  # fmt: skip
            for k in range(annunciations):
                conn.execute(
                    "INSERT INTO alerts.alarm_history (alarm_id, at, action, from_state,"
                    " to_state) VALUES (%s, %s, 'raise', 'acknowledged', 'unacknowledged')",
                    (base + n, f"2021-03-{6 + k:02d}T00:00Z"),
                )


def test_an_admin_reads_alert_volumes_and_downloads_them_on_a_phone(
    phone: Page, portal: Portal, tmp_path: Path
) -> None:
    _seed_alarms(portal)
    sign_in(phone, portal.url, portal.logins["admin"])
    phone.goto(f"{portal.url}/ui/au/reports")
    phone.locator("#report-month").get_by_label("Month").fill(MONTH)
    phone.locator("#report-month").get_by_role("button", name="Show").click()
    phone.locator('#reports li[data-report="alerts"] a').first.click()
    expect(phone.locator("h1")).to_contain_text(f"Alert volumes — AU — {MONTH}")
    # urgent: 1 raised, 0 cleared, 2 annunciations; high: 2, 1, 2; total 3, 1, 4.
    expected = [
        ["urgent", "1", "0", "2"],
        ["high", "2", "1", "2"],
        ["medium", "0", "0", "0"],
        ["low", "0", "0", "0"],
        ["total", "3", "1", "4"],
    ]
    rows = phone.locator("#report tbody tr")
    expect(rows).to_have_count(5)
    shown = [
        [rows.nth(i).locator("th").inner_text()]
        + [c.get_attribute("data-value") or "" for c in rows.nth(i).locator("td").all()]
        for i in range(5)
    ]
    assert shown == expected
    expect(phone.locator("#chart svg rect.bar")).to_have_count(4)
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360
    assert_accessible(phone, context="a report on a phone")

    with phone.expect_download() as download:
        phone.locator("#downloads a").first.click()
    assert download.value.suggested_filename == f"alerts-au-{MONTH}.csv"
    text = Path(download.value.path()).read_text(encoding="utf-8")
    assert list(csv.reader(io.StringIO(text)))[1:] == expected
