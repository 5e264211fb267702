"""An admin runs a billing cycle from the portal in a real Chromium on a 360-px phone, on
the running demo (issue 19 point 6): reached from the menu, a month started with the
form, the cycle's page following the background run live — waiting while another run
holds the region's lock, then billed without a reload by hand — and showing the invoice
and the skipped site's reason. axe-core on the cycle in both states and on the list.

The demo bills nothing of its own (its accounts are on no plan), so the test adds two
billable US sites (:mod:`tests.integration.billing_sites`): one metered 500 Wh every
local hour from its contract's start on 29 October 2026 to the month's end — 72 hours,
36 kWh at 0.15000 USD = 5.40, California's 0 % tax: gross 5.40 (hand-computed) — and one
whose meter never reported (skipped, its serial named).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date

from playwright.sync_api import Page, expect

from cloud.billing import repository as billing_repo
from contracts.topics import Region
from tests.browser.axe import assert_accessible
from tests.browser.portal_world import Portal
from tests.browser.signin import sign_in
from tests.integration.billing_sites import bucketed_mwh, seed_metered_site, seed_silent_site
from tests.waiting import until_sync

#: The background run of two sites, and the page's poll (every 2 s on the demo).
FINISH_TIMEOUT_MS = 30_000


@contextmanager
def _region_locked(portal: Portal) -> Iterator[None]:
    """The us billing-cycle lock held, as a running cycle holds it: a cycle started
    meanwhile waits for it."""
    with portal.stack.pool.connection() as conn:
        conn.autocommit = True
        billing_repo.lock_region(conn, Region.US)
        try:
            yield
        finally:
            billing_repo.unlock_region(conn, Region.US)
            conn.autocommit = False


def _fits_360(page: Page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= 360


def test_an_admin_runs_a_month_and_follows_it_to_its_invoices_on_a_phone(
    phone: Page, portal: Portal
) -> None:
    pool = portal.stack.pool
    metered = seed_metered_site(pool, date(2026, 10, 29), 72, 500, device_id=990_101)
    # The demo's own refresher may hold some of the new rows for a moment.
    until_sync(
        lambda: bucketed_mwh(pool, metered.device_id) == 36_000_000, 30, "the meter's buckets"
    )
    _, silent_serial = seed_silent_site(pool, date(2026, 10, 1))

    sign_in(phone, portal.url, portal.logins["admin"])
    phone.get_by_role("link", name="Billing", exact=True).click()
    expect(phone.get_by_role("heading", level=1)).to_contain_text("Billing cycles in")
    phone.goto(f"{portal.url}/ui/us/billing/cycles")  # an admin reaches every region
    with _region_locked(portal):
        phone.get_by_label("First month of the period").fill("2026-10")
        phone.get_by_role("button", name="Start the billing cycle").click()
        progress = phone.locator("#cycle-progress")
        expect(progress).to_have_attribute("data-state", "running")
        expect(phone.locator("#cycle-state")).to_contain_text("Waiting to start")
        expect(phone.get_by_role("heading", level=1)).to_contain_text("Billing cycle")
        _fits_360(phone)
        assert_accessible(phone, context="a billing cycle waiting to run, on a phone")
    # The lock released, the run bills; the open page polls and reloads when it is done.
    invoice = phone.locator(f'#documents tr[data-site="{metered.site_id}"]')
    expect(invoice).to_be_visible(timeout=FINISH_TIMEOUT_MS)
    expect(invoice.locator('[data-metric="gross"]')).to_have_attribute("data-value", "5.40")
    expect(invoice.locator('[data-metric="gross"]')).to_contain_text("$5.40")
    expect(phone.locator("#cycle-progress")).to_have_attribute("data-state", "billed")
    expect(phone.locator("#cycle-progress")).to_contain_text("2 of 2 sites done")
    expect(
        phone.locator('#totals tr[data-currency="USD"] [data-metric="gross"]')
    ).to_have_attribute("data-value", "5.40")
    expect(phone.locator("#skipped .reason")).to_contain_text(silent_serial)
    _fits_360(phone)
    assert_accessible(phone, context="a billed cycle's invoices and skipped sites on a phone")

    # The list shows it billed, with its counts.
    phone.get_by_role("link", name="Back to billing cycles").click()
    row = phone.locator('#cycles tr[data-state="billed"]').first
    expect(row.locator('[data-metric="invoices"]')).to_have_attribute("data-value", "1")
    expect(row.locator('[data-metric="skipped"]')).to_have_attribute("data-value", "1")
    _fits_360(phone)
    assert_accessible(phone, context="the billing cycles and the start form on a phone")
