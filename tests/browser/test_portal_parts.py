"""The region's parts stock in a real Chromium on the running demo (issue 19.4): an admin
on a 360-px phone sees each part's value and the stock's total (hand-computed here), the
parts at or below their reorder level marked, changes a part's unit cost through the
page's form, and sees the value follow. axe-core on the page.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from pathlib import Path

from playwright.sync_api import Page, expect

from cloud.dispatch import DispatchService, FilesystemPhotoStorage
from contracts.topics import Region
from tests.browser.axe import assert_accessible
from tests.browser.portal_world import Portal
from tests.browser.signin import sign_in


def test_an_admin_values_the_stock_and_changes_a_unit_cost_on_a_phone(
    phone: Page, portal: Portal, tmp_path: Path
) -> None:
    service = DispatchService(portal.stack.pool, photos=FilesystemPhotoStorage(tmp_path))
    tag = uuid.uuid4().hex[:6]
    panel, fuse = f"PNL-{tag}", f"FUSE-{tag}"
    service.add_stock(Region.AU, panel, 4, "Panel 440 W", unit_value=Decimal("212.40"))
    service.add_stock(
        Region.AU, fuse, 2, "DC fuse 15 A", unit_value=Decimal("3.35"),
        reorder_level=5, reorder_quantity=50,
    )  # fmt: skip
    before = service.stock_value(Region.AU).total

    sign_in(phone, portal.url, portal.logins["admin"])
    phone.goto(f"{portal.url}/ui/au/parts")
    # 4 x 212.40 = 849.60; 2 x 3.35 = 6.70 (hand-computed).
    expect(phone.locator(f'tr[data-part="{panel}"] [data-metric="value"]')).to_have_attribute(
        "data-value", "849.60"
    )
    expect(phone.locator(f'tr[data-part="{fuse}"] [data-metric="value"]')).to_have_attribute(
        "data-value", "6.70"
    )
    # Two on hand, reorder at five: marked; four panels, no level: not.
    expect(phone.locator(f'tr[data-part="{fuse}"]')).to_have_attribute("data-low", "yes")
    expect(phone.locator(f'tr[data-part="{panel}"][data-low]')).to_have_count(0)
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360
    assert_accessible(phone, context="the parts stock on a phone")

    form = phone.locator("#part-settings")
    form.get_by_label("Part").select_option(panel)
    form.get_by_label("Unit cost (AUD)").fill("199.99")
    form.get_by_role("button", name="Save the part's settings").click()
    # 4 x 199.99 = 799.96: the panel's value and the total follow (by 849.60 - 799.96).
    expect(phone.locator(f'tr[data-part="{panel}"] [data-metric="value"]')).to_have_attribute(
        "data-value", "799.96"
    )
    expect(phone.locator("#stock-total")).to_have_attribute(
        "data-value", str(before - Decimal("849.60") + Decimal("799.96"))
    )
