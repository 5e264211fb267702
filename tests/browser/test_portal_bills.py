"""A customer's bills in a real Chromium on the running demo (issue 19 point 6), on a
360-px phone. The demo bills nothing, so the test writes an October invoice of the demo
customer's account (:func:`tests.integration.api_world.insert_invoice`: 100 kWh at 0.25
= 25.00 net, GST 10 % = 2.50, 27.50 gross) and records a payment of 10.00 through the
billing service, which allocates it to the invoice: 17.50 outstanding and owed
(hand-computed). axe-core on both pages.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

from playwright.sync_api import Page, expect

from cloud.billing import PaymentReceipt
from cloud.bootstrap import create_billing_service
from contracts.topics import Region
from tests.browser.axe import assert_accessible
from tests.browser.portal_world import Portal
from tests.browser.signin import sign_in
from tests.integration.api_world import insert_invoice


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
