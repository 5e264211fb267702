"""An operator's rollout screen in a real Chromium on a 360-px phone, on the running demo:
reached from the menu, its progress follows a pause made elsewhere without a reload (the
page's live feed), and its abort form — with a reason — stops the rollout and logs who
and why. axe-core on the rollout page and on a grid-code profile's page.
"""

from __future__ import annotations

from playwright.sync_api import Page, expect

from cloud.config.rollout_models import RolloutIn, RolloutTarget
from contracts.messages import ProfileRef
from contracts.topics import Region
from tests.browser.axe import assert_accessible
from tests.browser.portal_world import Portal
from tests.browser.signin import sign_in
from tests.waiting import until_sync

GATEWAY = "demo-au-01"


def _inverter_known(portal: Portal) -> bool:
    with portal.stack.pool.connection() as conn:
        return bool(
            conn.execute(
                "SELECT 1 FROM config.devices WHERE gateway_id = %s AND profile = %s",
                (GATEWAY, "sim-der-inverter"),
            ).fetchall()
        )


def _fits_360(page: Page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= 360


def test_an_operator_follows_and_aborts_a_rollout_on_a_phone(phone: Page, portal: Portal) -> None:
    rollouts = portal.stack.config.rollouts
    # The config service knows the gateway's devices and their profiles from its births
    # (the demo may have just started).
    until_sync(lambda: _inverter_known(portal), 60, "the demo inverter's profile known")
    made = rollouts.create(
        "au",
        RolloutIn(
            profile=ProfileRef(id="au-a-2020", region=Region.AU, version=1),
            # What the demo's inverter runs with anyway: no export limit.
            settings={"sim-der-inverter": {"power_limit_enable": 0}},
            target=RolloutTarget(gateways=[GATEWAY]),
            reason="browser test rollout",
        ),
        "seed",
    )
    sign_in(phone, portal.url, portal.logins["operator"])
    phone.get_by_role("link", name="Rollouts", exact=True).click()
    phone.locator(f'tr[data-rollout="{made.id}"] a').click()
    expect(phone.get_by_role("heading", level=1)).to_contain_text(f"Rollout {made.id}")
    expect(phone.locator('#waves tr[data-wave="1"] [data-size]')).to_have_text("1")
    expect(phone.locator(f'#rollout-gateways tr[data-gateway="{GATEWAY}"]')).to_be_visible()
    expect(phone.locator("#rollout")).to_have_attribute("data-live", "true")
    _fits_360(phone)
    assert_accessible(phone, context="a rollout on a phone")

    # Paused by someone else: the open page shows it, no reload.
    phone.evaluate("() => { window.__notReloaded = true; }")
    rollouts.act(made.id, "pause", "paused elsewhere", "another-operator", region="au")
    expect(phone.locator("[data-rollout-state]")).to_have_attribute("data-rollout-state", "paused")
    expect(phone.locator("#state-changed")).to_be_visible()
    expect(phone.locator("#rollout-status")).to_contain_text("Progress updated")
    assert phone.evaluate("() => window.__notReloaded === true")

    # The reload offers the paused rollout's actions; abort it with a reason.
    phone.reload()
    abort = phone.locator('form[data-rollout-action="abort"]')
    abort.get_by_label("Why").fill("wrong profile for this feeder")
    abort.get_by_role("button", name="Abort").click()
    expect(phone.locator("[data-rollout-state]")).to_have_attribute("data-rollout-state", "aborted")
    logged = phone.locator('#rollout-log tr[data-log-action="rollout.abort"]')
    expect(logged).to_contain_text("wrong profile for this feeder")
    expect(phone.locator('form[data-rollout-action="resume"]')).to_have_count(0)
    assert rollouts.get(made.id, region="au").state == "aborted"

    # The profile it named: values with their sources, the unverified ones marked.
    phone.goto(f"{portal.url}/ui/au/grid-codes/au-a-2020")
    expect(phone.locator('tr[data-key="enter_service.ramp_s"] [data-unverified]')).to_have_text(
        "⚠ Unverified"
    )
    _fits_360(phone)
    assert_accessible(phone, context="a grid-code profile on a phone")
