"""A customer's bills in a real Chromium on the running demo (issue 19 point 6), on a
360-px phone. The demo bills nothing, so the test writes an October invoice of the demo
customer's account (:func:`tests.integration.api_world.insert_invoice`: 100 kWh at 0.25
= 25.00 net, GST 10 % = 2.50, 27.50 gross) and records a payment of 10.00 through the
billing service, which allocates it to the invoice: 17.50 outstanding and owed
(hand-computed). axe-core on both pages. Then a September invoice with two ledger hours
(60 + 40 kWh): its usage by period on the account and bill pages, its PDF downloaded
and read back, and another customer's PDF refused.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from playwright.sync_api import Page, expect
from pypdf import PdfReader

from cloud.billing import PaymentReceipt
from cloud.bootstrap import create_billing_service
from contracts.topics import Region
from tests.browser.axe import assert_accessible
from tests.browser.portal_world import Portal
from tests.browser.signin import sign_in
from tests.integration.api_world import Pool, insert_invoice


def test_a_customer_reads_its_bill_and_what_it_still_owes_on_a_phone(
    phone: Page, portal: Portal
) -> None:
    site = portal.stack.registry.get_site(portal.site("au"))
    assert site is not None
    assert site.account_id is not None
    account = site.account_id
    number = f"AU-2026-{uuid.uuid4().int % 9_000_000 + 1_000_000:07d}"
    insert_invoice(portal.stack.pool, Region.AU, account, site.id, number)
    paid = PaymentReceipt(
        "bank", f"tx-{number}", account, Decimal("10.00"), "AUD",
        datetime(2026, 11, 10, tzinfo=UTC),
    )  # fmt: skip
    create_billing_service(portal.stack.pool).record_payment(Region.AU, paid)

    sign_in(phone, portal.url, portal.logins["customer-au"])
    phone.goto(f"{portal.url}/ui/au/bills")
    row = phone.locator(f'tr[data-document="{number}"]')
    expect(row.locator('[data-metric="gross"]')).to_have_attribute("data-value", "27.50")
    expect(row.locator('[data-metric="outstanding"]')).to_have_attribute("data-value", "17.50")
    expect(phone.locator(f'tr[data-payment="tx-{number}"] [data-metric="amount"]')).to_have_text(
        "Amount: A$10.00"
    )
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360
    assert_accessible(phone, context="a customer's bills on a phone")

    row.get_by_role("link").click()
    expect(phone.locator("h1")).to_contain_text(number)
    expect(phone.locator('tr[data-line="1"] [data-metric="net"]')).to_have_attribute(
        "data-value", "25.00"
    )
    expect(phone.locator('tr[data-tax="gst"] [data-metric="tax"]')).to_have_attribute(
        "data-value", "2.50"
    )
    expect(phone.locator('#document [data-metric="outstanding"] dd')).to_have_text("A$17.50")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360
    assert_accessible(phone, context="a bill's lines and taxes on a phone")


def _september_invoice(pool: Pool, account: str, site: int, number: str) -> int:
    """A September 2026 invoice written as billing stores one: 100 kWh single rate at
    0.25 = 25.00, GST 10 % 2.50, 27.50 gross; its ledger: 60 kWh in the hour from 10 h
    on 1 September and 40 kWh from 10 h on 2 September, Sydney time (AEST, UTC+10)."""
    with pool.connection() as conn:
        row = conn.execute(
            "INSERT INTO billing.invoices (number, kind, region, account_id, site_id,"
            " first_day, last_day, plan_code, tariff_zone, time_zone, contract_start,"
            " currency, net, tax, gross, issued_at, issue_date, due_date) VALUES"
            " (%s, 'invoice', 'au', %s, %s, '2026-09-01', '2026-09-30', 'seed', 'seed',"
            " 'Australia/Sydney', '2026-01-01', 'AUD', 25.00, 2.50, 27.50,"
            " '2026-10-02T03:00Z', '2026-10-02', '2026-10-16') RETURNING id",
            (number, account, site),
        ).fetchone()
        assert row is not None
        conn.execute(
            "INSERT INTO billing.invoice_lines (invoice_id, line_no, description_key,"
            " first_day, last_day, period, kwh, unit_price, net, tax, tax_percent) VALUES"
            " (%s, 1, 'energy', '2026-09-01', '2026-09-30', 'flat', 100, 0.25, 25.00, 'gst', 10)",
            (row[0],),
        )
        conn.execute(
            "INSERT INTO billing.invoice_taxes (invoice_id, tax, percent, base, amount)"
            " VALUES (%s, 'gst', 10, 25.00, 2.50)",
            (row[0],),
        )
        for start, kwh in (("2026-09-01T00:00Z", 60), ("2026-09-02T00:00Z", 40)):
            conn.execute(
                "INSERT INTO billing.ledger_lines (region, site_id, hour_start, hour_end,"
                " forward_mwh, reverse_mwh, export_mwh, pool_used_mwh, billable_mwh,"
                " estimated, billing_meter, invoice_id) VALUES ('au', %s, %s::timestamptz,"
                " %s::timestamptz + interval '1 hour', %s, 0, 0, 0, %s, false, 'M-1', %s)",
                (site, start, start, kwh * 1_000_000, kwh * 1_000_000, row[0]),
            )
    return int(row[0])


def _pdf_text(path: Path) -> str:
    text = " ".join(p.extract_text() for p in PdfReader(path).pages)
    return re.sub(r"\s+", " ", text.replace("\xa0", " "))


def test_a_customer_downloads_its_bill_pdf_and_reads_its_usage_by_period_on_a_phone(
    phone: Page, portal: Portal
) -> None:
    registry = portal.stack.registry
    mine, theirs = registry.get_site(portal.site("au")), registry.get_site(portal.other_site)
    assert mine is not None
    assert mine.account_id is not None
    assert theirs is not None
    assert theirs.account_id is not None
    number = f"AU-2026-{uuid.uuid4().int % 9_000_000 + 1_000_000:07d}"
    other = f"AU-2026-{uuid.uuid4().int % 9_000_000 + 1_000_000:07d}"
    _september_invoice(portal.stack.pool, mine.account_id, mine.id, number)
    _september_invoice(portal.stack.pool, theirs.account_id, theirs.id, other)

    sign_in(phone, portal.url, portal.logins["customer-au"])
    phone.goto(f"{portal.url}/ui/au/bills")
    september = phone.locator('#usage-months tr[data-month="2026-09"]')
    expect(september.locator('[data-metric="total"]')).to_have_attribute("data-value", "100.000000")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360

    phone.goto(f"{portal.url}/ui/au/bills/{number}")
    expect(phone.locator('#usage-periods tr[data-period="flat"] [data-metric="kwh"]')).to_have_text(
        "Energy: 100.000 kWh"
    )
    phone.locator("#usage-days summary").click()
    expect(phone.locator('#usage-days tr[data-day="2026-09-01"] td')).to_have_attribute(
        "data-value", "60.000000"
    )
    expect(phone.locator('#usage-days tr[data-day="2026-09-02"] td')).to_have_attribute(
        "data-value", "40.000000"
    )
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360
    assert_accessible(phone, context="a bill's usage by period on a phone")

    with phone.expect_download() as download:
        phone.locator("#pdf").click()
    assert download.value.suggested_filename == f"{number}.pdf"
    text = _pdf_text(Path(download.value.path()))
    assert f"Invoice {number}" in text
    assert "Energy 100.000 kWh A$0.25 per kWh A$25.00" in text
    assert "Total A$27.50" in text
    assert "Single rate 100.000 Total 100.000" in text

    refused = phone.context.request.get(f"{portal.url}/ui/au/bills/{other}/pdf")
    assert refused.status == 404
