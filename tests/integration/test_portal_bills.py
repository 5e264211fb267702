"""Bills in the web UI (issue 19 point 6) on ``api_world``'s fleet: each account has one
invoice seeded as billing stores one (:func:`tests.integration.api_world.seed_bill`):
100 kWh at 0.25 = 25.00 net, GST 10 % = 2.50, 27.50 gross; 10.00 paid, so 17.50
outstanding and owed. The customer's pages show exactly these figures, formatted in the
viewer's language, and nothing of another account; support's view of a customer's bills
is the customer's, and every such view is in the audit log before it is answered.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud.identity import Role
from cloud.portal import ViewAudit
from cloud.scope import Scope
from contracts.topics import Region
from tests.integration.api_world import World, page_client, private_world

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def world(postgres_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    key_dir: Path = tmp_path_factory.mktemp("bills")
    with private_world(postgres_server_url, key_dir) as built:
        yield built


def test_a_customer_sees_its_bill_outstanding_balance_and_payment(world: World) -> None:
    a, b = world.tenants["A"], world.tenants["B"]
    with page_client(world, Role.CUSTOMER) as client:
        page = client.get("/ui/au/bills", headers={"Accept-Language": "en"})
    assert page.status_code == 200
    html = page.text
    assert f'data-document="{a.bill}"' in html
    assert b.bill not in html
    assert (
        'data-metric="gross" data-value="27.50"><span class="cell-label">Total: </span>A$27.50'
        in html
    )
    assert 'data-value="17.50"><span class="cell-label">Outstanding: </span>A$17.50' in html
    assert '<div data-currency="AUD" data-value="17.50"><dt>To pay</dt><dd>A$17.50</dd>' in html
    assert "A$10.00" in html


def test_a_bills_page_shows_its_lines_and_taxes_in_the_viewers_language(world: World) -> None:
    a, b = world.tenants["A"], world.tenants["B"]
    with page_client(world, Role.CUSTOMER) as client:
        english = client.get(f"/ui/au/bills/{a.bill}", headers={"Accept-Language": "en"}).text
        spanish = client.get(f"/ui/au/bills/{a.bill}", headers={"Accept-Language": "es"}).text
        assert client.get(f"/ui/au/bills/{b.bill}").status_code == 404
    assert "100.000 kWh" in english
    assert "A$0.25 per kWh" in english
    assert "GST 10.00 %" in english
    assert "A$2.50" in english
    assert "A$25.00" in english
    assert "A$17.50" in english
    assert "100,000 kWh" in spanish
    assert "0,25\xa0AUD por kWh" in spanish
    assert "27,50\xa0AUD" in spanish
    assert "Pendiente de pago" in spanish


def test_support_sees_a_customers_bills_and_each_view_is_audited(world: World) -> None:
    b, e = world.tenants["B"], world.tenants["E"]
    audit = ViewAudit(world.pool)
    with page_client(world, Role.SUPPORT) as client:
        listing = client.get(f"/ui/au/customers/{b.account}/bills")
        one = client.get(f"/ui/au/customers/{b.account}/bills/{b.bill}")
        before = len(audit.recent(Scope.of_region(Region.AU), account_id=b.account))
        assert client.get(f"/ui/au/customers/{b.account}/bills/{e.bill}").status_code == 404
        assert client.get(f"/ui/au/customers/{e.account}/bills").status_code == 404
        sites = client.get(f"/ui/au/customers/{b.account}").text
    assert listing.status_code == 200
    assert one.status_code == 200
    assert "read only" in listing.text
    assert f'data-document="{b.bill}"' in listing.text
    assert "A$27.50" in one.text
    assert f'href="/ui/au/customers/{b.account}/bills"' in sites
    views = audit.recent(Scope.of_region(Region.AU), account_id=b.account)
    # Newest first: the customer's sites page, the bill, the list; the refused ones not.
    assert [v.what for v in views[:3]] == [
        "customer.sites",
        f"customer.bill {b.bill}",
        "customer.bills",
    ]
    assert all(v.actor_role == Role.SUPPORT for v in views[:3])
    assert len(views) == before + 1
