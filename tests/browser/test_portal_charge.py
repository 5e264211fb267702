"""A job chargeable to the customer (issue 19 point 4), in a real Chromium on the
running demo at 360 px: on a job on site the MOSIE marks it chargeable for damage the
customer caused, with a note, from the job page's form — stored on the work order and
shown on the page; the form passes axe-core."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from cloud.dispatch import DispatchService, FilesystemPhotoStorage
from tests.browser.axe import assert_accessible
from tests.browser.portal_world import Portal, assigned_job, leave_site
from tests.browser.signin import sign_in


def test_the_mosie_marks_the_job_chargeable_on_a_phone(
    phone: Page, portal: Portal, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    mosie = portal.logins["mosie"]
    assert mosie.employee_no is not None
    service = DispatchService(portal.stack.pool, photos=FilesystemPhotoStorage(tmp_path))
    job = assigned_job(portal, service, mosie.employee_no, kind="isolator_fault",
                       title="Isolator cover broken", to="on_site")  # fmt: skip
    request.addfinalizer(lambda: leave_site(service, job, mosie.employee_no))

    sign_in(phone, portal.url, mosie)
    phone.goto(f"{portal.url}/ui/au/workorders/{job}")
    form = phone.locator("[data-charge-form]")
    form.get_by_label("Reason").select_option("customer_damage")
    form.get_by_label("What the customer caused or owns").fill("Ladder dropped on the isolator")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360
    assert_accessible(phone, context="the job page's charge form on a phone")
    form.get_by_role("button", name="Save the charge").click()

    shown = phone.locator('#job-facts [data-charge="customer_damage"]')
    expect(shown).to_contain_text("Damage the customer caused: Ladder dropped on the isolator")
    expect(phone.locator('#history tr[data-action="charge"]')).to_have_count(1)
    with portal.stack.pool.connection() as conn:
        row = conn.execute(
            "SELECT charge_reason, charge_note, charge_billed_at FROM dispatch.work_orders"
            " WHERE id = %s",
            (job,),
        ).fetchone()
    assert row == ("customer_damage", "Ladder dropped on the isolator", None)
