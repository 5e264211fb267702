"""An operator's rollout screen in a real Chromium on a 360-px phone, on the running demo:
reached from the menu, its progress follows a pause made elsewhere without a reload (the
page's live feed), and its abort form — with a reason — stops the rollout and logs who
and why. axe-core on the rollout page and on a grid-code profile's page.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime

from playwright.sync_api import Page, expect

from cloud.config import repository as config_repo
from cloud.config.rollout_models import RolloutIn, RolloutTarget
from contracts.messages import DeviceInfo, ProfileRef
from contracts.topics import Region
from tests.browser.axe import assert_accessible
from tests.browser.portal_world import Portal
from tests.browser.signin import sign_in
from tests.waiting import until_sync

GATEWAY = "demo-au-01"
#: A gateway whose birth the config service saw but which never answers: as the canary it
#: keeps the rollout running until the test pauses it (the demo's own gateway answers in
#: well under a second, so a rollout of it alone may complete before any pause).
SILENT = "browser-au-silent"


def _inverter_known(portal: Portal) -> bool:
    with portal.stack.pool.connection() as conn:
        return bool(
            conn.execute(
                "SELECT 1 FROM config.devices WHERE gateway_id = %s AND profile = %s",
                (GATEWAY, "sim-der-inverter"),
            ).fetchall()
        )


@contextlib.contextmanager
def _silent_gateway(portal: Portal) -> Iterator[str]:
    """SILENT, known with a copy of the demo inverter (its nameplate passes the range
    checks), removed again afterwards so no later test meets it."""
    with portal.stack.pool.connection() as conn:
        inverter = conn.execute(
            "SELECT device, nameplate, models FROM config.devices"
            " WHERE gateway_id = %s AND profile = %s LIMIT 1",
            (GATEWAY, "sim-der-inverter"),
        ).fetchone()
        assert inverter is not None
        device = DeviceInfo(
            device=inverter[0],
            endpoint="127.0.0.1:1",
            unit_id=1,
            models=list(inverter[2]),
            profile="sim-der-inverter",
            nameplate=dict(inverter[1] or {}),
        )
        config_repo.upsert_gateway_birth(conn, SILENT, "au", datetime.now(UTC))
        config_repo.replace_devices(conn, SILENT, [device])
    try:
        yield SILENT
    finally:
        with portal.stack.pool.connection() as conn:
            conn.execute("DELETE FROM config.gateways WHERE gateway_id = %s", (SILENT,))


def _fits_360(page: Page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= 360


def test_an_operator_follows_and_aborts_a_rollout_on_a_phone(phone: Page, portal: Portal) -> None:
    # The config service knows the gateway's devices and their profiles from its births
    # (the demo may have just started).
    until_sync(lambda: _inverter_known(portal), 60, "the demo inverter's profile known")
    with _silent_gateway(portal) as silent:
        _follow_and_abort(phone, portal, silent)


def _follow_and_abort(phone: Page, portal: Portal, silent: str) -> None:
    rollouts = portal.stack.config.rollouts
    made = rollouts.create(
        "au",
        RolloutIn(
            profile=ProfileRef(id="au-a-2020", region=Region.AU, version=1),
            # What the demo's inverter runs with anyway: no export limit.
            settings={"sim-der-inverter": {"power_limit_enable": 0}},
            # The silent gateway first: it is the canary, and the rollout waits on it.
            target=RolloutTarget(gateways=[silent, GATEWAY]),
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
