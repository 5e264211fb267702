"""The customer's portal in a real Chromium, on the running demo: sign in, my sites, a
site's live power flow and today's curve fed by the simulated inverter through the whole
pipeline, energy per day/month/year, devices, notices — and nothing of another tenant's.
"""

from __future__ import annotations

import time

from playwright.sync_api import Page, expect

from tests.browser.axe import assert_accessible
from tests.browser.portal_world import Portal
from tests.browser.signin import sign_in
from tests.integration.sunspec_oracle import DER_701, models, scaled


def _inverter_watts(portal: Portal) -> set[float]:
    """Every AC power the au inverter's SunSpec image has shown, decoded by the tests' own
    decoder (model 701 ``W`` with its scale factor) from what the simulator served."""
    seen = set()
    for _ts, images in portal.stack.sims["au"].history():
        _base, registers = images[1]
        seen.add(round(scaled(models(registers)[701], DER_701["W"]), 3))
    return seen


def test_a_customer_sees_their_site_live(page: Page, portal: Portal) -> None:
    sign_in(page, portal.url, portal.logins["customer-au"])
    expect(page.get_by_role("heading", name="My sites")).to_be_visible()
    page.get_by_role("link", name="Demo Sydney").click()
    expect(page.get_by_role("heading", name="Demo Sydney", level=1)).to_be_visible()

    # The chart: the inverter's power, each point one the simulator's registers held.
    chart = page.locator("#today-chart")
    page.wait_for_function(
        "() => Number(document.querySelector('#today-chart').dataset.points || 0) > 0"
    )
    last = float(chart.get_attribute("data-last") or "nan")
    assert round(last, 3) in _inverter_watts(portal), last
    assert page.locator("#today-chart canvas").count() >= 1

    # The live view refreshes within two publish intervals.
    interval = portal.stack.publish_interval_s
    first = page.locator("#live").get_attribute("data-as-of")
    started = time.monotonic()
    page.wait_for_function(
        f"() => document.querySelector('#live').dataset.asOf !== {first!r}",
        timeout=2 * interval * 1000 + 1500,
    )
    assert time.monotonic() - started <= 2 * interval + 1.5
    pv = float(page.locator("#live").get_attribute("data-pv-w") or "nan")
    assert round(pv, 3) in _inverter_watts(portal), pv

    assert_accessible(page, context="customer site page")
