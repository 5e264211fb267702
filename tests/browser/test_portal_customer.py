"""The customer's portal in a real Chromium, on the running demo: sign in, my sites, a
site's live power flow and today's curve fed by the simulated inverter through the whole
pipeline, energy per day/month/year, devices, notices — and nothing of another tenant's.
"""

from __future__ import annotations

import time
from datetime import datetime
from zoneinfo import ZoneInfo

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


def test_energy_per_day_month_and_year_in_the_sites_zone(page: Page, portal: Portal) -> None:
    sign_in(page, portal.url, portal.logins["customer-es"])
    page.goto(f"{portal.url}/ui/es/sites/{portal.site('es')}")
    energy = page.locator("#energy")
    expect(energy.get_by_role("heading", name="Energy")).to_be_visible()
    # Today in Madrid, as the page must label it (hand-made, not the portal's formatter).
    today = datetime.now(ZoneInfo("Europe/Madrid")).date()
    expect(energy.get_by_role("link", name="Per day")).to_have_attribute("aria-current", "true")
    # The first energy appears after the telemetry job's next run (every 10 s in the
    # demo); the section asks again by itself until then.
    expect(energy.get_by_role("row").nth(1)).to_contain_text(
        today.strftime("%b %-d, %Y"), timeout=45_000
    )
    energy.get_by_role("link", name="Per month").click()
    expect(energy.get_by_role("row").nth(1)).to_contain_text(today.strftime("%B %Y"))
    energy.get_by_role("link", name="Per year").click()
    expect(energy.get_by_role("row").nth(1)).to_contain_text(str(today.year))
    expect(energy.get_by_role("columnheader", name="Solar")).to_be_visible()


def test_devices_with_their_state_and_notices(page: Page, portal: Portal) -> None:
    sign_in(page, portal.url, portal.logins["customer-au"])
    page.goto(f"{portal.url}/ui/au/sites/{portal.site('au')}")
    devices = page.locator("table.devices")
    # The simulator's serials (DeviceSite: INV-/MET-<site>-<unit>), reported by the agent.
    for serial in ("INV-demo-au-01-1", "MET-demo-au-01-2"):
        expect(devices.get_by_role("row", name=serial)).to_be_visible()
    expect(page.get_by_role("heading", name="Notices")).to_be_visible()


def test_a_customer_cannot_reach_another_tenants_pages(page: Page, portal: Portal) -> None:
    sign_in(page, portal.url, portal.logins["customer-au"])
    refused = {
        f"/ui/au/sites/{portal.other_site}": 404,  # customer B's site, same region
        f"/ui/au/sites/{portal.other_site}/live": 404,
        f"/ui/au/sites/{portal.other_site}/today.json": 404,
        f"/ui/au/sites/{portal.other_site}/energy?view=month": 404,
        f"/ui/es/sites/{portal.site('es')}": 404,  # another region's customer
        "/ui/es/": 404,
        "/ui/au/fleet": 403,  # an operator's page
        "/ui/au/support": 403,
    }
    for path, status in refused.items():
        answer = page.goto(portal.url + path)
        assert answer is not None, path
        assert answer.status == status, (path, answer.status)
    page.goto(f"{portal.url}/ui/au/")
    expect(page.get_by_role("link", name="Other Sydney")).to_have_count(0)
    # ... while customer B sees its own site.
    other = page.context.browser.new_context()  # type: ignore[union-attr]
    try:
        theirs = other.new_page()
        sign_in(theirs, portal.url, portal.logins["other"])
        expect(theirs.get_by_role("link", name="Other Sydney")).to_be_visible()
        expect(theirs.get_by_role("link", name="Demo Sydney")).to_have_count(0)
    finally:
        other.close()


def test_the_session_cookie_is_not_readable_by_page_scripts(page: Page, portal: Portal) -> None:
    sign_in(page, portal.url, portal.logins["customer-au"])
    names = {c["name"]: c for c in page.context.cookies()}
    assert {"potr_session", "potr_refresh", "potr_csrf"} <= set(names)
    for name in ("potr_session", "potr_refresh", "potr_csrf"):
        assert names[name]["httpOnly"], names[name]
        assert names[name]["sameSite"] == "Strict", names[name]
        assert names[name]["secure"], names[name]
    assert "potr_" not in page.evaluate("document.cookie")


def test_spanish_with_numbers_and_times_of_the_locale_and_the_sites_zone(
    page: Page, portal: Portal
) -> None:
    sign_in(page, portal.url, portal.logins["customer-es"])
    page.goto(f"{portal.url}/ui/es/sites/{portal.site('es')}")
    page.get_by_label("Language").select_option("es")
    expect(page.locator("html")).to_have_attribute("lang", "es")
    expect(page.get_by_role("heading", name="Potencia ahora")).to_be_visible()
    expect(page.get_by_role("link", name="Mis instalaciones")).to_be_visible()
    # "Actualizado a las H:MM:SS" (Spanish writes the hour without a leading zero) in
    # Madrid time, for the sample time the page carries; both read in one go, as the live
    # view swaps the whole block every interval (the first readings may still be on
    # their way).
    page.wait_for_function("() => document.querySelector('#live').dataset.asOf !== ''")
    stamp, text = page.evaluate(
        "() => { const live = document.querySelector('#live');"
        " return [live.dataset.asOf, live.querySelector('.as-of').textContent]; }"
    )
    madrid = datetime.fromisoformat(stamp).astimezone(ZoneInfo("Europe/Madrid"))
    assert f"Actualizado a las {madrid.hour}:{madrid:%M:%S}" in text
    # PV in kW with a decimal comma: the inverter's watts as Spanish writes them.
    pv = float(page.locator("#live").get_attribute("data-pv-w") or "nan")
    if pv >= 1000:
        whole, tenth = divmod(round(pv / 100), 10)
        expect(page.locator("#live dd[data-metric=pv_w]")).to_have_text(f"{whole},{tenth} kW")
    assert_accessible(page, context="Spanish site page")
    # The choice stays: the next page is Spanish too.
    page.goto(f"{portal.url}/ui/es/")
    expect(page.get_by_role("heading", name="Mis instalaciones")).to_be_visible()


def test_an_expired_session_is_renewed_with_the_refresh_token(page: Page, portal: Portal) -> None:
    sign_in(page, portal.url, portal.logins["customer-au"])
    cookies = {c["name"]: c for c in page.context.cookies()}
    refresh = cookies["potr_refresh"]["value"]
    # The access token gone (expired): the next page renews the pair from the refresh token.
    page.context.clear_cookies(name="potr_session")
    answer = page.goto(f"{portal.url}/ui/au/")
    assert answer is not None
    assert answer.status == 200
    expect(page.get_by_role("heading", name="My sites")).to_be_visible()
    renewed = {c["name"]: c["value"] for c in page.context.cookies()}
    assert renewed["potr_session"]
    assert renewed["potr_refresh"] != refresh  # rotated
    # Signing out ends the session: the old refresh token no longer works.
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{portal.url}/login")
    spent = {"name": "potr_refresh", "value": renewed["potr_refresh"], "url": portal.url}
    page.context.add_cookies([spent])  # type: ignore[list-item]
    answer = page.goto(f"{portal.url}/ui/au/")
    assert answer is not None
    assert page.url.startswith(f"{portal.url}/login")


def test_keyboard_only_sign_in_and_navigation(page: Page, portal: Portal) -> None:
    who = portal.logins["customer-au"]
    page.goto(f"{portal.url}/login")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.get_by_label("Email").focus()
    page.keyboard.type(who.email)
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type(who.password)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{portal.url}/ui/au/")
    # Tab to the site's link and open it with the keyboard.
    link = page.get_by_role("link", name="Demo Sydney")
    for _ in range(20):
        page.keyboard.press("Tab")
        if link.evaluate("e => e === document.activeElement"):
            break
    expect(link).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Demo Sydney", level=1)).to_be_visible()
    per_month = page.get_by_role("link", name="Per month")
    per_month.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#energy").get_by_role("link", name="Per month")).to_have_attribute(
        "aria-current", "true"
    )
