"""Dispatch in a real Chromium on the running demo: a job for the au demo site, made and
assigned through the dispatch service as the flow makes them (auto-assignment by the
system); the au MOSIE on a 360-px phone sees it on today's route, opens it and accepts
it — the same form posted twice is applied once — travels, arrives and has the customer
sign on the canvas; the operator sees it on the region's dispatch board. axe-core on
each screen.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from cloud.dispatch import DispatchService, FilesystemPhotoStorage
from cloud.scope import Scope
from contracts.topics import Region
from tests.browser.axe import assert_accessible
from tests.browser.portal_world import Portal, assigned_job, leave_site
from tests.browser.signin import sign_in

AU = Scope.of_region(Region.AU)
#: The script that posts the accept form twice, as a double tap or a browser's retry
#: would: the same fields, its idempotency key included.
POST_TWICE = """async () => {
  const form = document.querySelector('[data-action-form="accept"]');
  const url = form.getAttribute("action");  // form.action is its field named "action"
  const body = () => new URLSearchParams(new FormData(form));
  const first = await fetch(url, {method: "POST", body: body(), redirect: "manual"});
  const again = await fetch(url, {method: "POST", body: body(), redirect: "manual"});
  return [first.type, again.type];
}"""


def _fits(page: Page) -> None:
    """Usable at 360 px: nothing wider than the screen."""
    wide = page.evaluate(
        "() => [...document.querySelectorAll('body *')]"
        ".filter(e => e.getBoundingClientRect().right > 360.5)"
        ".map(e => `${e.tagName}.${e.className} ${Math.round(e.getBoundingClientRect().right)}`)"
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= 360, wide


def test_the_mosie_accepts_a_job_on_a_phone_once_and_the_operator_sees_the_board(
    phone: Page,
    page: Page,
    portal: Portal,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    mosie = portal.logins["mosie"]
    assert mosie.employee_no is not None
    service = DispatchService(portal.stack.pool, photos=FilesystemPhotoStorage(tmp_path))
    job = assigned_job(portal, service, mosie.employee_no)
    request.addfinalizer(lambda: leave_site(service, job, mosie.employee_no))

    sign_in(phone, portal.url, mosie)
    phone.goto(f"{portal.url}/ui/au/jobs")
    expect(phone.get_by_role("heading", name="Today's route")).to_be_visible()
    entry = phone.locator(f'#route [data-workorder="{job}"]')
    expect(entry).to_contain_text("Demo Sydney")
    expect(entry).to_contain_text("Assigned")
    _fits(phone)
    assert_accessible(phone, context="MOSIE's jobs on a phone")

    entry.get_by_role("link").click()
    expect(phone.locator("#job-facts [data-status]")).to_have_text("Assigned")
    _fits(phone)
    assert_accessible(phone, context="a job on a phone")
    assert phone.evaluate(POST_TWICE) == ["opaqueredirect", "opaqueredirect"]
    accepted = [h for h in service.history(job, AU) if h.action == "accept"]
    assert len(accepted) == 1
    phone.reload()
    expect(phone.locator("#job-facts [data-status]")).to_have_text("Accepted")
    # On to the site: the on-site page (checklist, photos, parts, signature) at 360 px.
    phone.get_by_role("button", name="Start travel").click()
    phone.get_by_role("button", name="Arrived").click()
    expect(phone.locator("#job-facts [data-status]")).to_have_text("On site")
    expect(phone.locator("#checklist form")).to_have_count(1)  # the safety pre-start first
    _fits(phone)
    assert_accessible(phone, context="a job on site on a phone")
    # The customer signs with a finger (pointer events on the canvas).
    phone.locator("#signer").fill("Ana Customer")
    canvas = phone.locator("[data-signature-pad]")
    canvas.scroll_into_view_if_needed()
    pad = canvas.bounding_box()
    assert pad is not None
    phone.mouse.move(pad["x"] + 20, pad["y"] + 30)
    phone.mouse.down()
    phone.mouse.move(pad["x"] + 120, pad["y"] + 90, steps=8)
    phone.mouse.move(pad["x"] + 200, pad["y"] + 40, steps=8)
    phone.mouse.up()
    phone.get_by_role("button", name="Save the signature").click()
    expect(phone.locator("#job-facts")).to_be_visible()
    assert phone.locator("#refusal").count() == 0, phone.locator("#refusal").inner_text()
    with portal.stack.pool.connection() as conn:
        signed = conn.execute(
            "SELECT signer_name, content_type FROM dispatch.signatures WHERE work_order_id = %s",
            (job,),
        ).fetchall()
    assert signed == [("Ana Customer", "image/png")]

    sign_in(page, portal.url, portal.logins["operator"])
    page.goto(f"{portal.url}/ui/au/dispatch")
    row = page.locator(f'tr[data-workorder="{job}"]')
    expect(row).to_contain_text("Demo Sydney")
    expect(row).to_contain_text(mosie.employee_no)
    assert_accessible(page, context="the dispatch board")
    row.get_by_role("link").first.click()
    expect(page.locator("#job-facts [data-status]")).to_have_text("On site")
    assert_accessible(page, context="a job as the operator")
