"""Signing a demo person in through the portal's own sign-in page, as a person would."""

from __future__ import annotations

from playwright.sync_api import Page

from potr.demo_people import DemoLogin


def sign_in(page: Page, base_url: str, who: DemoLogin) -> None:
    """Customers with email + password, staff with employee number + PIN (admins, who
    have no employee number, with email + password)."""
    page.goto(f"{base_url}/login")
    if who.employee_no and who.pin:
        page.get_by_label("Employee number").fill(who.employee_no)
        page.get_by_label("PIN").fill(who.pin)
        page.locator("form[action='/pin-login'] button[type=submit]").click()
    else:
        page.get_by_label("Email").fill(who.email)
        page.get_by_label("Password").fill(who.password)
        page.locator("form[action='/login'] button[type=submit]").click()
    page.wait_for_url(f"{base_url}/ui/**")
