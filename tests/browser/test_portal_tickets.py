"""Support tickets in a real Chromium on the running demo (issue 20): a customer on a
360-px phone raises a fault report at their site through the portal's form and sees it,
with its history; the support desk (another browser) finds it in the region's queue and
opens it, on a phone too. axe-core on the pages.
"""

from __future__ import annotations

import uuid

from playwright.sync_api import Browser, Page, expect

from tests.browser.axe import assert_accessible
from tests.browser.portal_world import Portal
from tests.browser.signin import sign_in
from tests.browser.ticket_form import fill_fault_report


def test_a_customer_raises_a_fault_report_and_the_desk_sees_it(
    phone: Page, browser: Browser, portal: Portal
) -> None:
    subject = f"Inverter beeping {uuid.uuid4().hex[:6]}"
    form = fill_fault_report(phone, portal, subject, "It beeps every minute since this morning.")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360
    assert_accessible(phone, context="the new request form on a phone")
    form.get_by_role("button", name="Send the request").click()

    expect(phone.locator("#ticket-title")).to_contain_text(subject)
    expect(phone.locator("#ticket-state")).to_have_attribute("data-state", "new")
    expect(phone.locator('#ticket-history li[data-action="created"]')).to_have_count(1)
    expect(phone.locator('#ticket-links li[data-link="site"]')).to_have_count(1)
    ticket = phone.url.rsplit("/", 1)[1]
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360
    assert_accessible(phone, context="a request's page on a phone")
    phone.goto(f"{portal.url}/ui/au/support/tickets")
    expect(phone.locator(f'tr[data-ticket="{ticket}"]')).to_contain_text(subject)

    desk_context = browser.new_context(
        viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True
    )
    try:
        desk = desk_context.new_page()
        sign_in(desk, portal.url, portal.logins["support"])
        desk.goto(f"{portal.url}/ui/au/support/tickets?kind=fault_report")
        row = desk.locator(f'tr[data-ticket="{ticket}"]')
        expect(row).to_contain_text(subject)
        expect(row).to_have_attribute("data-state", "new")
        assert desk.evaluate("document.documentElement.scrollWidth") <= 360
        row.get_by_role("link").click()
        expect(desk.locator("#work-order-form")).to_be_visible()
        assert desk.evaluate("document.documentElement.scrollWidth") <= 360
        assert_accessible(desk, context="a request's page for the desk on a phone")
    finally:
        desk_context.close()
