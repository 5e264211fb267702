"""Signing a demo person in through the portal's own sign-in page, as a person would."""

from __future__ import annotations

from playwright.sync_api import Page

from potr.demo_people import DemoLogin


def sign_in(page: Page, base_url: str, who: DemoLogin) -> None:
    """Customers with email + password, staff with employee number + PIN (admins, who
    have no employee number, with email + password). Fields by id: the labels are in
    the page's language."""
    page.goto(f"{base_url}/login")
    if who.employee_no and who.pin:
        page.locator("#employee_no").fill(who.employee_no)
        page.locator("#pin").fill(who.pin)
        page.locator("form[action='/pin-login'] button[type=submit]").click()
    else:
        page.locator("#email").fill(who.email)
        page.locator("#password").fill(who.password)
        page.locator("form[action='/login'] button[type=submit]").click()
    page.wait_for_url(f"{base_url}/ui/**")
