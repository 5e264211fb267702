"""The portal's new-request form as a customer fills it (issue 20's browser tests)."""

from __future__ import annotations

from playwright.sync_api import Locator, Page

from tests.browser.portal_world import Portal
from tests.browser.signin import sign_in

__all__ = ["fill_fault_report"]


def fill_fault_report(page: Page, portal: Portal, subject: str, description: str) -> Locator:
    """Sign the AU customer in, open a new request and fill a fault report at their AU
    site; the filled form (not sent: the caller checks the page, then sends it)."""
    sign_in(page, portal.url, portal.logins["customer-au"])
    page.goto(f"{portal.url}/ui/au/support/tickets")
    page.locator("#new-ticket").click()
    form = page.locator("#ticket-form")
    form.locator("#t-kind").select_option("fault_report")
    form.locator("#t-subject").fill(subject)
    form.locator("#t-description").fill(description)
    form.locator("#t-site").select_option(str(portal.site("au")))
    return form
