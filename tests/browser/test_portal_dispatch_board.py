"""The operator's dispatch board in a real Chromium on the running demo: filtered through
its form, it follows a change made through the dispatch service without a reload (the
board's live feed), and links to the technicians' performance. axe-core on each screen.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from playwright.sync_api import Page, expect

from cloud.dispatch import DispatchService, FilesystemPhotoStorage
from contracts.topics import Region
from tests.browser.axe import assert_accessible
from tests.browser.portal_world import Portal
from tests.browser.signin import sign_in
from tests.waiting import until_sync


def test_the_board_filters_and_follows_a_change_live(
    page: Page, portal: Portal, tmp_path: Path
) -> None:
    mosie = portal.logins["mosie"]
    assert mosie.employee_no is not None
    service = DispatchService(portal.stack.pool, photos=FilesystemPhotoStorage(tmp_path))
    site = portal.site("au")
    until_sync(lambda: service.site(site) is not None, 30, "dispatch to know the au site")
    title = f"Inverter check {uuid.uuid4().hex[:6]}"
    job = service.create(Region.AU, site, "inspection", "P3", title, "", "ops").id

    sign_in(page, portal.url, portal.logins["operator"])
    page.goto(f"{portal.url}/ui/au/dispatch")
    page.get_by_label("Priority").select_option("P3")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(
        f"{portal.url}/ui/au/dispatch?status=&priority=P3&technician=&breached="
    )
    row = page.locator(f'#board tr[data-workorder="{job}"]')
    expect(row.locator("[data-assignee]")).to_have_text("unassigned")
    expect(page.locator("#board tr[data-workorder] td:nth-child(4)").first).to_have_text("P3")
    expect(page.locator("#board")).to_have_attribute("data-live", "true")
    assert_accessible(page, context="the filtered dispatch board")

    # Assigned through the service: the row changes on the open page, no reload.
    page.evaluate("() => { window.__notReloaded = true; }")
    service.act(
        job, "assign", "ops", "operator", idempotency_key=uuid.uuid4().hex,
        technician=mosie.employee_no,
    )  # fmt: skip
    expect(row.locator("[data-assignee]")).to_have_text(mosie.employee_no)
    expect(row).to_have_attribute("data-status", "assigned")
    expect(page.locator("#board-status")).to_contain_text("Board updated")
    assert page.evaluate("() => window.__notReloaded === true")

    page.get_by_role("link", name="Technicians' performance").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Technicians' performance")
    expect(page.locator('#performance tr[data-employee="region"]')).to_be_visible()
    assert_accessible(page, context="the technicians' performance")
