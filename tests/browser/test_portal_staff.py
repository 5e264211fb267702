"""Staff in the portal, in a real Chromium on the running demo: a MOSIE on a 360-px phone,
support finding a customer and seeing what they see (each view audited), an operator's
fleet and a gateway's commands and config, an admin across regions — and a cross-site
form post refused.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.browser.axe import assert_accessible
from tests.browser.portal_world import Portal
from tests.browser.signin import sign_in

AU_SERIALS = ("INV-demo-au-01-1", "MET-demo-au-01-2")


def test_a_mosie_on_a_phone_sees_the_regions_sites_and_device_states(
    phone: Page, portal: Portal
) -> None:
    sign_in(phone, portal.url, portal.logins["mosie"])
    # A MOSIE lands on their own jobs; the region's sites are in the menu.
    phone.wait_for_url(f"{portal.url}/ui/au/jobs")
    expect(phone.get_by_role("heading", name="My jobs")).to_be_visible()
    phone.goto(f"{portal.url}/ui/au/")
    expect(phone.get_by_role("heading", name="Sites in AU")).to_be_visible()
    # Both au sites of the region, the other customer's too: a MOSIE works the region.
    expect(phone.get_by_role("link", name="Demo Sydney")).to_be_visible()
    expect(phone.get_by_role("link", name="Other Sydney")).to_be_visible()
    expect(phone.get_by_role("link", name="Demo Madrid")).to_have_count(0)
    assert_accessible(phone, context="MOSIE sites on a phone")
    phone.get_by_role("link", name="Demo Sydney").click()
    devices = phone.locator("table.devices")
    for serial in AU_SERIALS:
        # The agent reported both devices up (birth): ingest announces them online (the
        # list refreshes itself until the announcement is there).
        expect(devices.get_by_role("row", name=serial)).to_contain_text("Online", timeout=45_000)
    # Usable at 360 px: nothing wider than the screen.
    wide = phone.evaluate(
        "() => [...document.querySelectorAll('body *')]"
        ".filter(e => e.getBoundingClientRect().right > 360.5)"
        ".map(e => `${e.tagName}.${e.className} ${Math.round(e.getBoundingClientRect().right)}`)"
    )
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360, wide
    assert_accessible(phone, context="MOSIE site page on a phone")
    answer = phone.goto(f"{portal.url}/ui/es/sites/{portal.site('es')}")
    assert answer is not None
    assert answer.status == 404


def _audited(portal: Portal, account_id: str) -> list[tuple[str, int | None]]:
    with portal.stack.pool.connection() as conn:
        rows = conn.execute(
            "SELECT what, site_id FROM portal.view_audit WHERE account_id = %s ORDER BY id",
            (account_id,),
        ).fetchall()
    return [(r[0], r[1]) for r in rows]


def _account_of(portal: Portal, email: str) -> str:
    with portal.stack.pool.connection() as conn:
        row = conn.execute(
            "SELECT id FROM customers.accounts WHERE email = %s", (email,)
        ).fetchone()
    assert row is not None
    return str(row[0])


def test_support_finds_a_customer_and_sees_their_view_read_only_audited(
    page: Page, portal: Portal
) -> None:
    customer = portal.logins["customer-au"]
    account = _account_of(portal, customer.email)
    before = _audited(portal, account)
    sign_in(page, portal.url, portal.logins["support"])
    expect(page.get_by_role("heading", name="Find a customer")).to_be_visible()
    assert_accessible(page, context="support search")
    # By device serial: the site, with its customer.
    page.get_by_label("Name, email, site or device serial").fill("INV-demo-au-01")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#site-results")).to_contain_text("Demo Sydney")
    # By email: the account.
    page.get_by_label("Name, email, site or device serial").fill(customer.email)
    page.get_by_role("button", name="Search").click()
    page.locator("#account-results").get_by_role("link").first.click()
    expect(page.get_by_role("status")).to_contain_text("read only")
    expect(page.get_by_role("link", name="Other Sydney")).to_have_count(0)  # B's, not A's
    page.get_by_role("link", name="Demo Sydney").click()
    expect(page.get_by_role("heading", name="Demo Sydney", level=1)).to_be_visible()
    expect(page.locator("#live dd[data-metric=pv_w]")).not_to_have_text("—")
    assert (
        page.locator("form[method=post]:not([action='/logout']):not([action='/language'])").count()
        == 0
    )
    assert_accessible(page, context="support viewing a customer's site")
    site = portal.site("au")
    assert _audited(portal, account)[len(before) :] == [
        ("customer.sites", None),
        ("customer.site", site),
    ]
    # Another region's customer is not support-au's to see.
    es_account = _account_of(portal, portal.logins["customer-es"].email)
    answer = page.goto(f"{portal.url}/ui/au/customers/{es_account}")
    assert answer is not None
    assert answer.status == 404


def test_an_operator_sees_the_fleet_and_sends_a_gateway_a_command(
    page: Page, portal: Portal
) -> None:
    sign_in(page, portal.url, portal.logins["operator"])
    expect(page.get_by_role("heading", name="Fleet in AU")).to_be_visible()
    # au: one demo gateway, online; its four devices (inverter, grid meter, system meter,
    # isolator) online.
    # Presence is announced by ingest's offline check (every 10 s) and the board asks
    # again by itself: a fresh demo shows it within a few rounds.
    expect(page.locator("#gateway-counts dd[data-count=online]")).to_have_text("1", timeout=45_000)
    expect(page.locator("#device-counts dd[data-count=online]")).to_have_text("4", timeout=45_000)
    assert_accessible(page, context="operator fleet")
    # A site's detail, with its gateway, from the fleet table.
    page.locator("#gateway-table").get_by_role("link", name="Demo Sydney").click()
    expect(page.get_by_role("heading", name="Demo Sydney", level=1)).to_be_visible()
    expect(page.locator("table.devices").get_by_role("row", name=AU_SERIALS[0])).to_be_visible()
    page.get_by_role("region", name="Gateways").get_by_role("link", name="demo-au-01").click()
    expect(page.get_by_role("heading", name="Gateway demo-au-01")).to_be_visible()
    page.get_by_label("Send a diagnostic command").select_option("ping")
    page.get_by_role("button", name="Send").click()
    row = page.locator("#commands tbody tr").first
    expect(row).to_contain_text("ping")
    assert_accessible(page, context="operator gateway page")
    # The agent answers the ping: a reload shows it done (bounded by expect's timeout).
    with portal.stack.pool.connection() as conn:
        found = conn.execute(
            "SELECT count(*) FROM config.commands WHERE gateway_id = 'demo-au-01' AND name = 'ping'"
        ).fetchone()
    assert found is not None
    assert found[0] >= 1


def test_an_admin_moves_between_regions(page: Page, portal: Portal) -> None:
    sign_in(page, portal.url, portal.logins["admin"])
    expect(page.get_by_role("heading", name="Fleet in AU")).to_be_visible()
    page.get_by_role("navigation", name="Regions").get_by_role("link", name="ES").click()
    expect(page.get_by_role("heading", name="Fleet in ES")).to_be_visible()
    expect(page.locator("#gateway-counts dd[data-count=online]")).to_have_text("1", timeout=45_000)
    page.get_by_role("link", name="Audit").click()
    expect(page.get_by_role("heading", name="Views of customers' data")).to_be_visible()
    assert_accessible(page, context="admin audit")


class _AttackerPage(http.server.BaseHTTPRequestHandler):
    """Another site's page that posts a form to the portal as soon as it loads."""

    target = ""

    def do_GET(self) -> None:
        body = (
            "<!doctype html><html lang=en><title>x</title><body>"
            f"<form id=f method=post action='{self.target}'><input name=name value=ping></form>"
            "<script>document.getElementById('f').submit()</script></body></html>"
        ).encode()
        self.send_response(200)
        self.send_header("content-type", "text/html")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def attacker(portal: Portal) -> Iterator[str]:
    """A page on ``localhost``: another site than the portal's ``127.0.0.1``."""
    handler = type("Attacker", (_AttackerPage,), {
        "target": f"{portal.url}/ui/au/gateways/demo-au-01/commands",
    })  # fmt: skip
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def _pings(portal: Portal) -> int:
    with portal.stack.pool.connection() as conn:
        row = conn.execute(
            "SELECT count(*) FROM config.commands WHERE gateway_id = 'demo-au-01' AND name = 'ping'"
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_a_cross_site_form_post_is_refused(page: Page, portal: Portal, attacker: str) -> None:
    sign_in(page, portal.url, portal.logins["operator"])
    before = _pings(portal)
    with page.expect_response(lambda r: r.url.endswith("/commands")) as posted:
        page.goto(attacker)
    assert posted.value.status == 403
    assert _pings(portal) == before
    # The operator's own form, from the portal's page, still works.
    page.goto(f"{portal.url}/ui/au/gateways/demo-au-01")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#commands tbody tr").first).to_contain_text("ping")
    assert _pings(portal) == before + 1
