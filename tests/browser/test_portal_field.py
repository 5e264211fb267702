"""The MOSIE in the field, in a real Chromium on the running demo at 360 px: on a job on
site they raise an incident from the job page's form (a new work order of the site,
found on the job); on the jobs page the location control offers only the notice until
it is acknowledged, then shares the browser's position (geolocation granted to the page)
— stored, because the MOSIE is on duty. axe-core on the new screens.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from cloud.dispatch import DispatchService, FilesystemPhotoStorage
from cloud.employees import EmployeeService
from tests.browser.axe import assert_accessible
from tests.browser.portal_world import Portal, assigned_job, leave_site
from tests.browser.signin import sign_in

SYDNEY = {"latitude": -33.8688, "longitude": 151.2093, "accuracy": 15}


def _fits(page: Page) -> None:
    """Usable at 360 px: nothing wider than the screen."""
    assert page.evaluate("document.documentElement.scrollWidth") <= 360


def test_the_mosie_raises_an_incident_and_shares_their_location_after_the_notice(
    phone: Page,
    phone_context: BrowserContext,
    portal: Portal,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    mosie = portal.logins["mosie"]
    assert mosie.employee_no is not None
    service = DispatchService(portal.stack.pool, photos=FilesystemPhotoStorage(tmp_path))
    job = assigned_job(
        portal,
        service,
        mosie.employee_no,
        kind="inverter_fault",
        title="Inverter fault",
        to="on_site",
    )
    request.addfinalizer(lambda: leave_site(service, job, mosie.employee_no))
    EmployeeService(portal.stack.pool).withdraw_location_notice(mosie.employee_no)
    phone_context.grant_permissions(["geolocation"], origin=portal.url)
    phone_context.set_geolocation(SYDNEY)

    sign_in(phone, portal.url, mosie)
    phone.goto(f"{portal.url}/ui/au/workorders/{job}")
    form = phone.locator("[data-incident-form]")
    form.get_by_label("Type").select_option("inspection")
    form.get_by_label("Priority").select_option("P2")
    form.get_by_label("Title").fill("Cracked roof tile")
    form.get_by_label("What was found").fill("North side, beside the array.")
    _fits(phone)
    form.get_by_role("button", name="Raise the incident").click()
    expect(phone.locator('#history tr[data-action="incident"]')).to_have_count(1)
    with portal.stack.pool.connection() as conn:
        raised = conn.execute(
            "SELECT type, priority, title, origin, created_by FROM dispatch.work_orders"
            " WHERE found_on = %s",
            (job,),
        ).fetchall()
    assert raised == [("inspection", "P2", "Cracked roof tile", "incident", mosie.employee_no)]

    phone.goto(f"{portal.url}/ui/au/jobs")
    expect(phone.locator("#location-ack-needed")).to_be_visible()
    expect(phone.locator("[data-share-location]")).to_have_count(0)
    phone.get_by_role("link", name="Read the location notice").first.click()
    expect(phone.get_by_role("heading", name="Location notice")).to_be_visible()
    _fits(phone)
    assert_accessible(phone, context="the location notice on a phone")
    phone.get_by_role("button", name="I have read and acknowledge the notice").click()

    expect(phone.get_by_role("heading", name="My jobs")).to_be_visible()
    share = phone.get_by_role("button", name="Share my location")
    expect(share).to_be_visible()
    _fits(phone)
    assert_accessible(phone, context="the jobs page with location sharing")
    share.click()
    expect(phone.locator("#location-status")).to_have_attribute("data-outcome", "recorded")
    with portal.stack.pool.connection() as conn:
        fixes = conn.execute(
            "SELECT round(latitude::numeric, 4), round(longitude::numeric, 4), duty"
            " FROM dispatch.locations WHERE employee_no = %s",
            (mosie.employee_no,),
        ).fetchall()
    assert len(fixes) == 1
    assert (float(fixes[0][0]), float(fixes[0][1])) == (-33.8688, 151.2093)
