"""Support's requests reach the services that own them through the real event path
(outboxes, relays, the bus and the consumers' inboxes), started over the REST API as the
customer and the desk would: a fault report raises a work order in dispatch, which links
back to the ticket; an approved plan change moves the account to the plan (customers
owns it) and billing's view of the site rates with it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cloud.bootstrap import RegistryCustomersSites, cloud_events, create_support_service
from cloud.customers import CustomersService
from cloud.events.bus import InProcessBus
from cloud.identity import Role
from cloud.registry import RegistryService
from cloud.scope import Scope
from contracts.topics import Region
from tests.integration.api_world import World, private_world
from tests.waiting import until

pytestmark = pytest.mark.integration

BASE = "/api/v1/au/support/tickets"


@pytest.fixture(scope="module")
def world(postgres_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with private_world(postgres_server_url, tmp_path_factory.mktemp("support")) as built:
        yield built


def _ticket(client: TestClient, world: World, ticket_id: int) -> dict[str, Any]:
    answer = client.get(f"{BASE}/{ticket_id}", headers=world.headers(Role.CUSTOMER))
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


async def test_fault_report_raises_a_work_order_and_a_plan_change_reaches_the_account(
    world: World,
) -> None:
    a = world.tenants["A"]
    customer, desk = world.headers(Role.CUSTOMER), world.headers(Role.SUPPORT)
    customers = CustomersService(world.pool)
    assert world.dispatch is not None
    bus = InProcessBus()
    with TestClient(world.app) as client:
        fault = {
            "kind": "fault_report",
            "priority": "high",
            "subject": "Inverter shows an error",
            "site_id": a.site,
        }
        raised = client.post(BASE, json=fault, headers=customer)
        assert raised.status_code == 201, raised.text
        ticket = raised.json()["id"]
        asked = client.post(f"{BASE}/{ticket}/work-order", json={"note": "go"}, headers=desk)
        assert asked.status_code == 200, asked.text

        today = datetime.now(UTC).date()
        plan = {
            "kind": "change_request",
            "change": "plan_change",
            "subject": "Flat rate please",
            "plan_code": "au-ppa-flat",
            "plan_from": today.isoformat(),
        }
        later = {**plan, "plan_code": "au-ppa-tou", "plan_from": str(today + timedelta(days=30))}
        now_id = client.post(BASE, json=plan, headers=customer).json()["id"]
        later_id = client.post(BASE, json=later, headers=customer).json()["id"]
        for plan_ticket in (now_id, later_id):
            ok = client.post(f"{BASE}/{plan_ticket}/approve", json={"note": ""}, headers=desk)
            assert ok.status_code == 200, ok.text

        support = create_support_service(world.pool)
        async with cloud_events(
            world.pool,
            dispatch=world.dispatch,
            support=support,
            plan_changes=customers,
            outboxes=("support", "dispatch"),
            bus=bus,
        ):
            await until(
                lambda: _ticket(client, world, ticket)["ticket"]["work_order_id"] is not None,
                15,
                "the work order linked to the ticket",
            )
            await until(
                lambda: len(customers.list_plan_changes(a.account)) == 2,
                15,
                "both plan changes recorded",
            )
        assert bus.dead_letters == []

        detail = _ticket(client, world, ticket)
    order_id = detail["ticket"]["work_order_id"]
    order = world.dispatch.get(order_id, Scope.of_region(Region.AU))
    assert (order.site_id, order.origin, order.ticket_id, order.priority) == (
        a.site, "support", ticket, "P2"
    )  # fmt: skip
    assert {"kind": "work_order", "ref": str(order_id)} in detail["links"]
    assert [h["action"] for h in detail["history"]][-2:] == ["work_requested", "work_order"]

    # Today's change is applied; the one in 30 days waits for its day.
    account = customers.get_account(a.account, Region.AU)
    assert account is not None
    assert account.plan_code == "au-ppa-flat"
    changes = customers.list_plan_changes(a.account)
    assert [(c.plan_code, c.applied_at is not None) for c in changes] == [
        ("au-ppa-flat", True),
        ("au-ppa-tou", False),
    ]
    sites = RegistryCustomersSites(RegistryService(world.pool), customers)
    billable = sites.billable_site(Region.AU, a.site)
    assert billable is not None
    assert billable.plan_code == "au-ppa-flat"
    # Billing's plan history (decision 150): the account had no plan before today's
    # change (its first plan is then the change's own), and the change to come counts
    # from its date already; the region's listing says the same.
    history = ((date.min, "au-ppa-flat"), (today + timedelta(days=30), "au-ppa-tou"))
    assert billable.plans == history
    assert billable.plans_within(today, today + timedelta(days=40)) == (
        (today, "au-ppa-flat"),
        (today + timedelta(days=30), "au-ppa-tou"),
    )
    listed = {s.site_id: s for s in sites.billable_sites(Region.AU)}
    assert listed[a.site].plans == history
    assert customers.apply_due_plan_changes(today + timedelta(days=29)) == 0
    assert customers.apply_due_plan_changes(today + timedelta(days=30)) == 1
    billable = sites.billable_site(Region.AU, a.site)
    assert billable is not None
    assert billable.plan_code == "au-ppa-tou"
    assert billable.plans == history
    assert [c.replaced_plan_code for c in customers.list_plan_changes(a.account)] == [
        None,
        "au-ppa-flat",
    ]
