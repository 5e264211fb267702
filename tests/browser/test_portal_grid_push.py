"""A MOSIE on site pushes the site's grid code from the job page, in a real Chromium at
360 px on the running demo (issue 18.4): the page lists the push as signed, the config
service signed it as the MOSIE for their work order despite the job's own hold on the
site, and the demo's real agent applied it to the simulated inverter over Modbus (its
``config_state``). axe-core on the job page with the panel.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from cloud.config.models import DesiredConfig
from cloud.dispatch import DispatchService, FilesystemPhotoStorage
from tests.browser.axe import assert_accessible
from tests.browser.portal_world import Portal, assigned_job, leave_site
from tests.browser.signin import sign_in
from tests.waiting import until_sync

GATEWAY = "demo-au-01"


def _config_knows_on_site(portal: Portal, job: int) -> bool:
    """The config service heard dispatch's workorder event: the job is on site."""
    with portal.stack.pool.connection() as conn:
        row = conn.execute(
            "SELECT status FROM config.work_orders WHERE work_order_id = %s", (job,)
        ).fetchone()
    return row is not None and row[0] == "on_site"


def _desired(portal: Portal) -> DesiredConfig | None:
    return portal.stack.config.show_config(GATEWAY, history=1).desired


def _applied(portal: Portal, version: int) -> bool:
    reported = portal.stack.config.show_config(GATEWAY, history=1).reported
    return reported is not None and reported.version == version and reported.status == "applied"


def test_a_mosie_on_site_pushes_the_grid_code_from_a_phone(
    phone: Page, portal: Portal, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    mosie = portal.logins["mosie"]
    assert mosie.employee_no is not None
    service = DispatchService(portal.stack.pool, photos=FilesystemPhotoStorage(tmp_path))
    job = assigned_job(portal, service, mosie.employee_no, to="on_site")
    request.addfinalizer(lambda: leave_site(service, job, mosie.employee_no))
    until_sync(lambda: _config_knows_on_site(portal, job), 30, "config to hear the job")
    # The demo provisions its gateway's first config by itself (the site's profile).
    until_sync(lambda: _desired(portal) is not None, 60, "the demo's provisioned config")
    before = _desired(portal)
    assert before is not None

    sign_in(phone, portal.url, mosie)
    phone.goto(f"{portal.url}/ui/au/workorders/{job}")
    panel = phone.locator("#grid-code")
    expect(panel.get_by_role("heading", name="Grid code")).to_be_visible()
    # The demo assigns its au site region A (SA Power Networks): preselected.
    expect(panel.get_by_label("Profile")).to_have_value("au-a-2020")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360
    assert_accessible(phone, context="a job's grid-code panel on a phone")
    panel.get_by_role("button", name="Push to the site").click()

    pushed = phone.locator('#grid-pushes tr[data-push-outcome="accepted"]')
    expect(pushed).to_have_count(1)
    expect(pushed).to_contain_text("au-a-2020")
    desired = _desired(portal)
    assert desired is not None
    assert desired.version == before.version + 1
    assert (desired.created_by, desired.reason) == (
        mosie.employee_no,
        f"technician push, work order {job}",
    )
    # Not held by the job's own hold on the site: published, and the agent applies it.
    until_sync(lambda: _applied(portal, desired.version), 60, "the agent to apply the push")
