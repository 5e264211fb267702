"""Issue 20 end to end on real parts: a customer's fault report becomes a work order, a
MOSIE fixes it, the ticket resolves with its outcome written to the customer, the work
order is one service order in SAP, and a rejection made in SAP comes back to it.

A private demo (its own database and broker, a five-second verification watch, a mail
sink for notify, and the SAP integration pointed at the fake SAP over real HTTP). The
customer on a 360-px phone raises the report through the portal's form; the desk
(desktop) raises the work order, which reaches dispatch through the real event path
(support's outbox → relay → bus → dispatch's consumer); the MOSIE on a phone accepts,
travels, arrives, ticks the inspection's checklist and resolves; dispatch verifies on
the site's telemetry and closes. The desk resolves the ticket with an outcome; the
customer sees it on the ticket's page and gets it by e-mail. The SAP exporter (the
demo's, woken by its consumers) sends the work order as a service order, read from
the fake directly by our reference; an SAP user rejects it there, the delta poll
brings the change back through SAP's outbox, and the work order's detail shows it
(``GET /api/v1/au/workorders/{id}`` and the job's page in the portal) while the job
stays closed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, FilePayload, Page, expect

from cloud.dispatch import FlowSettings
from cloud.identity import ROLE_SCOPES, Role
from cloud.identity.tokens import issue_access_token
from cloud.sap import SapSettings
from tests.browser.portal_world import Portal, running_portal
from tests.browser.signin import sign_in
from tests.browser.ticket_form import fill_fault_report
from tests.fakes.fake_sap import FakeSap, running_fake_sap
from tests.integration.api_world import private_database
from tests.integration.notify_harness import MailSink, mail_sink
from tests.waiting import until_sync

SO = "API_SERVICE_ORDER_SRV"
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201e2212bc40000000049454e44ae426082"
)
PHOTO = FilePayload(name="p.png", mimeType="image/png", buffer=PNG)
#: Watch a repaired site five seconds; judge at any real hour (as the demo does).
FLOW = FlowSettings(verify_window_s=5.0, verify_min_expected_wh=0.0, sweep_s=1.0)
PHONE = {"viewport": {"width": 360, "height": 740}, "is_mobile": True, "has_touch": True}


@pytest.fixture(scope="module")
def world(postgres_server_url: str) -> Iterator[tuple[Portal, FakeSap, MailSink]]:
    with running_fake_sap("--seed", "20") as fake, mail_sink() as (sink, port):
        sap = SapSettings(
            base_url=fake.base_url, connect_timeout_s=1.0, read_timeout_s=3.0,
            retry_first_s=0.1, retry_cap_s=0.5, poll_s=0.1, delta_poll_s=0.5,
        )  # fmt: skip
        with (
            private_database(postgres_server_url) as url,
            running_portal(url, dispatch_flow=FLOW, sap=sap, smtp=("127.0.0.1", port)) as portal,
        ):
            yield portal, fake, sink


def _rows(portal: Portal, sql: str, *params: object) -> list[tuple[Any, ...]]:
    with portal.stack.pool.connection() as conn:
        return list(conn.execute(sql, params).fetchall())


def _job(portal: Portal, ticket: int) -> tuple[int, str | None, str] | None:
    rows = _rows(
        portal,
        "SELECT id, assignee, status FROM dispatch.work_orders WHERE ticket_id = %s",
        ticket,
    )
    return rows[0] if rows else None


def _orders(fake: FakeSap, reference: str) -> list[dict[str, Any]]:
    return fake.odata(
        SO, "A_ServiceOrder", **{"$filter": f"ReferenceServiceOrder eq '{reference}'"}
    )


def _work_order(portal: Portal, job: int) -> dict[str, Any]:
    """The work order's detail over the REST API, as an operator of au."""
    token = issue_access_token(
        portal.stack.identity_key, subject=f"usr_{uuid.uuid4().hex}", role=Role.OPERATOR,
        region="au", scopes=ROLE_SCOPES[Role.OPERATOR], ttl_s=300,
    )  # fmt: skip
    answer = httpx.get(
        f"{portal.url}/api/v1/au/workorders/{job}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def _fits(page: Page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= 360


def _raise_fault_report(phone: Page, portal: Portal, subject: str) -> int:
    form = fill_fault_report(phone, portal, subject, "No power from the inverter since the storm.")
    _fits(phone)
    form.get_by_role("button", name="Send the request").click()
    expect(phone.locator("#ticket-state")).to_have_attribute("data-state", "new")
    return int(phone.url.rsplit("/", 1)[1])


def _fix_on_a_phone(mosie: Page, portal: Portal, job: int) -> None:
    """Accept, travel, arrive, tick the whole checklist (photos where asked), resolve."""
    sign_in(mosie, portal.url, portal.logins["mosie"])
    mosie.goto(f"{portal.url}/ui/au/workorders/{job}")
    for button in ("Accept", "Start travel", "Arrived"):
        mosie.get_by_role("button", name=button, exact=True).click()
    expect(mosie.locator("#job-facts [data-status]")).to_have_text("On site")
    _fits(mosie)
    while mosie.locator("#checklist li:has(form)").count():
        task = mosie.locator("#checklist li:has(form)").first
        task_id = str(task.get_attribute("data-task"))
        photo = task.locator('input[type="file"]')
        if photo.count():
            photo.set_input_files(files=[PHOTO])
        task.locator("button[type=submit]").click()
        expect(mosie.locator(f'#checklist li[data-task="{task_id}"]')).to_have_attribute(
            "data-done", "true"
        )
    mosie.get_by_role("button", name="Resolve", exact=True).click()
    expect(mosie.locator("#job-facts [data-status]")).to_have_text("Resolved")


def test_a_fault_report_is_fixed_resolved_and_reaches_sap_and_back(
    world: tuple[Portal, FakeSap, MailSink], phone: Page, page: Page, browser: Browser
) -> None:
    portal, fake, sink = world
    subject = f"Inverter dead {uuid.uuid4().hex[:6]}"
    outcome = f"Replaced the blown DC fuse; producing again ({uuid.uuid4().hex[:6]})."
    mosie_no = portal.logins["mosie"].employee_no
    until_sync(lambda: _rows(portal, "SELECT 1 FROM dispatch.sites WHERE site_id = %s",
               portal.site("au")), 30, "dispatch to know the site")  # fmt: skip

    # 1. The customer, on a phone, raises a fault report for their site.
    ticket = _raise_fault_report(phone, portal, subject)

    # 2. The desk raises a work order; dispatch makes it through the event path.
    sign_in(page, portal.url, portal.logins["support"])
    page.goto(f"{portal.url}/ui/au/support/tickets/{ticket}")
    page.locator("#wo-note").fill("Customer reports no power.")
    page.get_by_role("button", name="Raise a work order").click()
    until_sync(lambda: _job(portal, ticket), 15, "the ticket's work order")
    job = _job(portal, ticket)
    assert job is not None
    job_id, assignee, status = job
    assert (assignee, status) == (mosie_no, "assigned")
    # ... and support links it back from dispatch's ``workorder.created``.
    until_sync(
        lambda: _rows(portal, "SELECT 1 FROM support.tickets WHERE id = %s AND work_order_id = %s",
                      ticket, job_id),
        15, "the work order linked to the ticket",
    )  # fmt: skip
    page.reload()
    expect(page.locator("#ticket-work-order")).to_have_text(f"#{job_id}")

    # 3. The MOSIE fixes it on a phone; dispatch verifies it on telemetry and closes.
    mosie_context = browser.new_context(**PHONE)  # type: ignore[arg-type]
    mosie_context.set_default_timeout(10_000)
    try:
        _fix_on_a_phone(mosie_context.new_page(), portal, job_id)
    finally:
        mosie_context.close()
    until_sync(lambda: _job(portal, ticket) == (job_id, mosie_no, "closed"), 30,
               "the job verified and closed")  # fmt: skip

    # 4. The desk resolves the ticket with the outcome.
    page.goto(f"{portal.url}/ui/au/support/tickets/{ticket}")
    page.locator("#state-action").select_option("resolved")
    page.locator("#state-outcome").fill(outcome)
    page.get_by_role("button", name="Move", exact=True).click()
    expect(page.locator("#ticket-state")).to_have_attribute("data-state", "resolved")

    # 5. The customer sees it resolved with the outcome, and is written to.
    phone.goto(f"{portal.url}/ui/au/support/tickets/{ticket}")
    expect(phone.locator("#ticket-state")).to_have_attribute("data-state", "resolved")
    expect(phone.locator("#ticket-outcome")).to_contain_text(outcome)
    _fits(phone)
    customer_email = portal.logins["customer-au"].email
    until_sync(
        lambda: [m for m in sink.messages
                 if m["To"] == customer_email and outcome in m.get_content()],
        15, "the outcome mailed to the customer",
    )  # fmt: skip

    # 6. The work order is one service order in SAP, under our reference.
    reference = f"POTR-AU-WO-{job_id}"
    until_sync(lambda: _orders(fake, reference), 15, f"service order {reference} in SAP")
    (held,) = _orders(fake, reference)
    assert held["ServiceOrderIsRejected"] is False

    # 7. Rejected in SAP: the delta poll brings it back to the work order's detail.
    fake.set_service_order_status(held["ServiceOrder"], rejected=True, reason="Z1")
    until_sync(lambda: _work_order(portal, job_id).get("sap"), 15, "SAP's status on the job")
    sap = _work_order(portal, job_id)["sap"]
    assert (sap["status"], sap["reason"], sap["service_order"]) == (
        "rejected", "Z1", held["ServiceOrder"]
    )  # fmt: skip
    assert _work_order(portal, job_id)["work_order"]["status"] == "closed"
    # ... and the job's page in the portal shows it to the office.
    page.goto(f"{portal.url}/ui/au/workorders/{job_id}")
    shown = page.locator("#job-sap")
    expect(shown).to_have_attribute("data-sap-status", "rejected")
    expect(shown).to_contain_text(held["ServiceOrder"])
    expect(shown).to_contain_text("rejected in SAP")
    expect(shown).to_contain_text("Z1")
    expect(page.locator("#job-facts [data-status]")).to_have_text("Closed")
    assert len(_orders(fake, reference)) == 1
