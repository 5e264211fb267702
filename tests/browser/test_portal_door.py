"""Who is at the door (issue 20), in a real Chromium on the running demo: the customer,
on a 360 px phone, sees on their visits page the name and badge photo of the MOSIE on
the way and the door code; the MOSIE's job page shows the same code. The panel passes
axe-core and fits the phone."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from cloud.dispatch import DispatchService, FilesystemPhotoStorage
from cloud.employees import EmployeeService
from tests.browser.axe import assert_accessible
from tests.browser.portal_world import Portal, assigned_job, leave_site
from tests.browser.signin import sign_in


def _png(width: int, height: int) -> bytes:
    """A real grey PNG (the browser must decode it), built by hand."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def _code(page: Page, job: int) -> str:
    return page.locator(f'[data-door="{job}"] [data-door-code]').inner_text().strip()


def test_the_customer_sees_who_is_coming_and_the_code_the_mosie_shows(
    phone: Page, page: Page, portal: Portal, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    mosie, customer = portal.logins["mosie"], portal.logins["customer-au"]
    assert mosie.employee_no is not None
    staff = EmployeeService(portal.stack.pool)
    staff.set_badge_photo(mosie.employee_no, _png(60, 80), "image/png", "browser test")
    name = staff.get(mosie.employee_no).name
    service = DispatchService(portal.stack.pool, photos=FilesystemPhotoStorage(tmp_path))
    job = assigned_job(portal, service, mosie.employee_no, title="Inverter offline", to="on_site")
    request.addfinalizer(lambda: leave_site(service, job, mosie.employee_no))

    sign_in(phone, portal.url, customer)
    phone.goto(f"{portal.url}/ui/au/visits")
    panel = phone.locator(f'[data-door="{job}"]')
    expect(panel.locator("[data-door-name]")).to_have_text(name)
    photo = panel.locator("[data-door-photo]")
    expect(photo).to_be_visible()
    assert photo.evaluate("img => img.complete && img.naturalWidth") == 60
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360
    assert_accessible(phone, context="the visits page's door panel on a phone")

    sign_in(page, portal.url, mosie)
    page.goto(f"{portal.url}/ui/au/workorders/{job}")
    theirs = _code(page, job)
    ours = _code(phone, job)
    if ours != theirs:  # a 2-minute step ended between the two pages: read both again
        phone.reload()
        ours = _code(phone, job)
    assert len(ours) == 6
    assert ours.isdigit()
    assert ours == theirs


def test_the_customers_home_answers_at_a_glance_on_a_phone(phone: Page, portal: Portal) -> None:
    """The home loads the account at a glance (balance, savings, system, next visit),
    usable at 360 px, in Spanish too."""
    sign_in(phone, portal.url, portal.logins["customer-au"])
    phone.goto(f"{portal.url}/ui/au/")
    for part in ("owe", "savings", "health", "visit"):
        expect(phone.locator(f"#overview-{part}")).to_be_visible()
    # On the home the site cards link the sites; the overview names them only.
    expect(phone.locator("#overview-health a")).to_have_count(0)
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360
    assert_accessible(phone, context="the customer's home with the overview on a phone")
    phone.goto(f"{portal.url}/ui/au/overview")
    expect(phone.locator("#overview-health a").first).to_have_attribute(
        "href", f"/ui/au/sites/{portal.site('au')}"
    )
    phone.context.add_cookies([{"name": "potr_lang", "value": "es", "url": portal.url}])
    phone.reload()
    expect(phone.locator("#overview-heading")).to_have_text("Mi cuenta de un vistazo")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360
