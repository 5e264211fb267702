"""The support tickets' page forms (``/ui/{region}/support/tickets``): who may post each
(the table's roles, 403 otherwise), another account's ticket out of reach (404), the
CSRF check, refusals shown on the page (409/422, never 500), and what each form changes:
the customer raises and replies, support moves the ticket and approves; operators read."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud.identity import Role
from tests.integration.api_world import World, form_fields, page_client, private_world

pytestmark = [pytest.mark.integration, pytest.mark.security]

BASE = "/ui/au/support/tickets"


@pytest.fixture(scope="module")
def world(postgres_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    key_dir: Path = tmp_path_factory.mktemp("tickets-ui")
    with private_world(postgres_server_url, key_dir) as built:
        yield built


def _events(world: World, ticket: int) -> list[str]:
    with world.pool.connection() as conn:
        rows = conn.execute(
            "SELECT action FROM support.ticket_events WHERE ticket_id = %s ORDER BY id", (ticket,)
        ).fetchall()
    return [r[0] for r in rows]


def test_customer_raises_replies_and_support_acts(world: World) -> None:
    a, b = world.tenants["A"], world.tenants["B"]
    with page_client(world, Role.CUSTOMER) as customer:
        fields = form_fields(
            customer, kind="complaint", subject="Bill too high", description="Please check",
            priority="high", invoice_number=a.bill,
        )  # fmt: skip
        raised = customer.post(BASE, data=fields, follow_redirects=False)
        assert raised.status_code == 303, raised.text[:300]
        ticket = int(raised.headers["location"].rsplit("/", 1)[1])
        page = customer.get(f"{BASE}/{ticket}")
        assert page.status_code == 200
        assert "Bill too high" in page.text
        assert a.bill in page.text
        # A fault report without its site is the form again with the reason.
        bad = customer.post(BASE, data=form_fields(customer, kind="fault_report", subject="x"))
        assert bad.status_code == 422
        assert "site" in bad.text
        # Another account's invoice is refused.
        other_bill = form_fields(customer, kind="question", subject="x", invoice_number=b.bill)
        refused = customer.post(BASE, data=other_bill)
        assert refused.status_code == 422
        assert f"invoice {b.bill} is not this account" in refused.text
        # No CSRF token: refused, nothing raised.
        before = customer.get(BASE).text.count("data-ticket=")
        assert customer.post(BASE, data={"kind": "question", "subject": "x"}).status_code == 403
        assert customer.get(BASE).text.count("data-ticket=") == before
        # B's ticket is out of reach: neither its page nor its forms.
        assert customer.get(f"{BASE}/{b.ticket}").status_code == 404
        theirs = customer.post(f"{BASE}/{b.ticket}/reply", data=form_fields(customer, text="hi"))
        assert theirs.status_code == 404
        # A customer never acts as the desk.
        act = form_fields(customer, action="resolved", outcome="done")
        assert customer.post(f"{BASE}/{ticket}/act", data=act).status_code == 403

    with page_client(world, Role.OPERATOR) as operator:
        assert operator.get(BASE).status_code == 200  # operators read the queue
        act = form_fields(operator, action="pending")
        assert operator.post(f"{BASE}/{ticket}/act", data=act).status_code == 403
        reply = form_fields(operator, text="hello")
        assert operator.post(f"{BASE}/{ticket}/reply", data=reply).status_code == 403

    with page_client(world, Role.SUPPORT) as desk:
        queue = desk.get(BASE, params={"kind": "complaint"})
        assert f'data-ticket="{ticket}"' in queue.text
        note = form_fields(desk, text="called the customer", internal="yes")
        assert (
            desk.post(f"{BASE}/{ticket}/reply", data=note, follow_redirects=False).status_code
            == 303
        )
        # A complaint resolves with outcome and reasons: without reasons, 422 on the page.
        half = form_fields(desk, action="resolved", outcome="Refunded")
        assert desk.post(f"{BASE}/{ticket}/act", data=half).status_code == 422
        whole = form_fields(desk, action="resolved", outcome="Refunded", reasons="Misread meter")
        done = desk.post(f"{BASE}/{ticket}/act", data=whole, follow_redirects=False)
        assert done.status_code == 303
        # Approving a complaint is refused on the page (409).
        assert (
            desk.post(f"{BASE}/{ticket}/act", data=form_fields(desk, action="approve")).status_code
            == 409
        )
        assert (
            desk.post(f"{BASE}/{ticket}/act", data=form_fields(desk, action="nonsense")).status_code
            == 422
        )

    with page_client(world, Role.CUSTOMER) as customer:
        page = customer.get(f"{BASE}/{ticket}").text
        assert "Refunded" in page
        assert "called the customer" not in page  # the internal note stays with staff
        again = customer.post(
            f"{BASE}/{ticket}/reopen", data=form_fields(customer, note="still wrong"),
            follow_redirects=False,
        )  # fmt: skip
        assert again.status_code == 303
    assert _events(world, ticket) == [
        "created", "note", "state", "reopened",
    ]  # fmt: skip


def test_pages_read_in_spanish(world: World) -> None:
    a = world.tenants["A"]
    with page_client(world, Role.CUSTOMER) as customer:
        customer.cookies.set("potr_lang", "es")
        assert "Presentar una solicitud" in customer.get(f"{BASE}/new").text
        assert "Historial" in customer.get(f"{BASE}/{a.ticket}").text
