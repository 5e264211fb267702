"""The alarm board and the inbox in a real Chromium on the running demo: an operator
acknowledges an alarm from the board, and a message posted while the inbox is open
appears by itself (the page's EventSource, here a customer's in Spain); axe passes
on both pages.

The demo raises no alarm by itself in a test's time: one is raised through the store,
as the alerts service would, on the demo's own database.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from playwright.sync_api import Page, expect

from cloud.alerts import AlarmCondition, AlarmStatus, AlarmStore, Severity
from cloud.notify import Category, InboxEntryIn, InboxService
from cloud.scope import Scope
from tests.browser.axe import assert_accessible
from tests.browser.portal_world import Portal
from tests.browser.signin import sign_in


def _user_id(portal: Portal, email: str) -> str:
    with portal.stack.pool.connection() as conn:
        row = conn.execute("SELECT id FROM identity.users WHERE email = %s", (email,)).fetchone()
    assert row is not None
    return str(row[0])


def test_an_operator_acknowledges_an_alarm_from_the_board(page: Page, portal: Portal) -> None:
    site = portal.site("au")
    title = f"Isolator open ({uuid.uuid4().hex[:6]})"
    store = AlarmStore(portal.stack.pool)
    alarm = store.raise_condition(
        AlarmCondition(
            rule_id=f"browser.{uuid.uuid4().hex[:8]}", site_id=site, region="au",
            severity=Severity.HIGH, title=title,
        )
    )  # fmt: skip
    sign_in(page, portal.url, portal.logins["operator"])
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Alarms").click()
    expect(page.get_by_role("heading", name="Alarms in AU")).to_be_visible()
    row = page.locator(f'#alarm-table tr[data-alarm="{alarm.id}"]')
    expect(row).to_contain_text("Unacknowledged")
    assert_accessible(page, context="operator alarm board")
    row.get_by_role("button", name=f"Acknowledge {title}").click()
    expect(page.locator(f'#alarm-table tr[data-alarm="{alarm.id}"]')).to_contain_text(
        "Acknowledged"
    )
    assert store.get(alarm.id, Scope.everything()).state is AlarmStatus.ACKNOWLEDGED
    page.get_by_role("link", name=title).click()
    expect(page.locator("#history tr[data-action=acknowledge]")).to_have_count(1)
    assert_accessible(page, context="an alarm's page")


def test_a_message_posted_while_the_inbox_is_open_appears_by_itself(
    page: Page, portal: Portal
) -> None:
    # Spain's customer: no alarm of the other test (au, staff's) reaches their inbox.
    customer = portal.logins["customer-es"]
    user = _user_id(portal, customer.email)
    inbox = InboxService(portal.stack.pool)
    inbox.post(user, _entry("Earlier news"))
    sign_in(page, portal.url, customer)
    page.get_by_role("link", name="Inbox").click()
    expect(page.get_by_role("heading", name="Inbox", level=1)).to_be_visible()
    expect(page.locator("#inbox")).to_contain_text("Earlier news")
    expect(page.locator("#inbox")).to_have_attribute("data-live", "true")  # the feed is on
    assert_accessible(page, context="inbox")
    inbox.post(user, _entry("Fresh news"))
    expect(page.locator("#inbox .entry").first).to_contain_text("Fresh news")
    expect(page.locator("[data-unread-count]")).to_have_text("2")
    page.get_by_role("button", name="Mark all read").click()
    expect(page.locator("[data-unread-badge]")).to_be_hidden()
    assert_accessible(page, context="inbox, all read")


def _entry(title: str) -> InboxEntryIn:
    return InboxEntryIn(
        notification_id=uuid.uuid4(),
        region="es",
        kind="notice",
        category=Category.NOTICE,
        title=title,
        body="A message for the test.",
        created_at=datetime.now(UTC),
    )
