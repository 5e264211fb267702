"""The demo, running for the browser tests: simulated SunSpec sites over Modbus → agents →
a private TLS Mosquitto → ingest → PostgreSQL → the portal, with the demo's people — and
one more customer in au (account B, with a site of its own), so a customer can be shown
another tenant's pages and be refused.

It runs in a thread of its own with its own event loop (a browser test's fixtures are
sync: see conftest.py), started once per test session; the database is a private one on
the tests' PostgreSQL server.
"""

from __future__ import annotations

import asyncio
import io
import queue
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from rich.console import Console

from cloud.bootstrap import link_site
from cloud.customers import AccountIn, CustomersService
from cloud.dispatch import FlowSettings
from cloud.identity import IdentitySettings, Role, UserIn, create_identity_service
from cloud.registry import SiteIn
from cloud.sap import SapSettings
from cloud.scope import Scope
from contracts.topics import Region
from potr.demo import DemoStack, demo_stack
from potr.demo_people import DemoLogin
from tests.waiting import until_sync

__all__ = ["Portal", "assigned_job", "leave_site", "running_portal"]

#: Bounded waits: the demo starts in a few seconds on 2 cores.
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 60.0
OTHER_PASSWORD = "other-customer-password-1"


@dataclass(frozen=True)
class Portal:
    url: str
    stack: DemoStack
    #: "customer-au", "customer-es", "mosie", "support", "operator", "admin", "other".
    logins: dict[str, DemoLogin]
    #: Account B's site in au (no gateway: nothing but its name).
    other_site: int

    def site(self, region: str) -> int:
        return self.stack.sites[region]


def _other_customer(stack: DemoStack, database_url: str) -> tuple[DemoLogin, int]:
    customers = CustomersService(stack.pool)
    email = "customer-b-au@demo.potr.example"
    account = customers.add_account(Region.AU, AccountIn(name="Other customer B", email=email))
    site = stack.registry.add_site(
        SiteIn(name="Other Sydney", region="au", time_zone="Australia/Sydney")
    )
    link_site(stack.registry, customers, site.id, account.id)
    identity = create_identity_service(
        IdentitySettings(
            database_url=database_url, identity_signing_key_file=stack.identity_key_file
        ),
        stack.pool,
    )
    identity.create_user(
        UserIn(
            email=email,
            display_name="Other customer",
            role=Role.CUSTOMER,
            home_region=Region.AU,
            account_id=account.id,
            password=OTHER_PASSWORD,
        ),
        actor="test",
    )
    return DemoLogin("customer", "au", email, OTHER_PASSWORD), site.id


def _by_role(people: list[DemoLogin]) -> dict[str, DemoLogin]:
    """The first login of each key: "mosie" is the AU one (the demo prints it first)."""
    found: dict[str, DemoLogin] = {}
    for p in people:
        key = f"customer-{p.region}" if p.role == "customer" else p.role
        found.setdefault(key, p)
    return found


@contextmanager
def running_portal(
    database_url: str,
    *,
    dispatch_flow: FlowSettings | None = None,
    sap: SapSettings | None = None,
    smtp: tuple[str, int] | None = None,
) -> Iterator[Portal]:
    """The demo on ``database_url`` with ``dispatch_flow``, ``sap`` and ``smtp`` as
    :func:`potr.demo.demo_stack` takes them."""
    ready: queue.Queue[Any] = queue.Queue()
    handles: dict[str, Any] = {}

    async def main() -> None:
        stop = asyncio.Event()
        handles["loop"], handles["stop"] = asyncio.get_running_loop(), stop
        console = Console(file=io.StringIO())
        async with demo_stack(
            broker="mosquitto",
            console=console,
            database_url=database_url,
            dispatch_flow=dispatch_flow,
            sap=sap,
            smtp=smtp,
        ) as stack:
            other, site = await asyncio.to_thread(_other_customer, stack, database_url)
            logins = _by_role(stack.people) | {"other": other}
            ready.put(Portal(stack.url, stack, logins, site))
            await stop.wait()

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # reach the test, whatever went wrong
            ready.put(exc)

    thread = threading.Thread(target=run, name="portal-demo", daemon=True)
    thread.start()
    got = ready.get(timeout=START_TIMEOUT_S)
    if isinstance(got, BaseException):
        raise RuntimeError("the demo did not start") from got
    try:
        yield got
    finally:
        handles["loop"].call_soon_threadsafe(handles["stop"].set)
        thread.join(timeout=STOP_TIMEOUT_S)
        if thread.is_alive():
            raise RuntimeError(f"the demo did not stop within {STOP_TIMEOUT_S} s")


def assigned_job(
    portal: Portal,
    service: Any,
    employee_no: str,
    *,
    kind: str = "isolator_fault",
    title: str = "Isolator tripped",
    to: str = "assigned",
) -> int:
    """A new P2 job at the demo's au site assigned to ``employee_no`` as an alert policy
    would make it, taken on by them as far as ``to`` ("assigned" or "on_site")."""
    site = portal.site("au")
    # The demo's dispatch consumer learns the site from the registry's gateway events.
    until_sync(lambda: service.site(site) is not None, 30, "dispatch to know the au site")
    named = f"{title} {uuid.uuid4().hex[:6]}"
    order = service.create(Region.AU, site, kind, "P2", named, "", "alert-policy")
    service.act(
        order.id, "assign", "system", "system", idempotency_key=uuid.uuid4().hex,
        reason="auto-assigned: test", technician=employee_no,
    )  # fmt: skip
    if to == "on_site":
        for action in ("accept", "start_travel", "arrive"):
            service.act(order.id, action, employee_no, "mosie", idempotency_key=uuid.uuid4().hex)
    return int(order.id)


def leave_site(service: Any, job: int, employee_no: str | None) -> None:
    """Put a job the test left on site on hold, so the shared demo's au site is not out
    of service for the tests after it (its alarms would be hidden)."""
    order = service.get(job, Scope.everything())
    if order.status == "on_site":
        service.act(
            job, "hold", employee_no, "mosie",
            idempotency_key=uuid.uuid4().hex, reason="the test is over",
        )  # fmt: skip
