"""Work orders to SAP against the fake SAP over real HTTP (tests/fakes/fake_sap) and the
``sap`` schema on real PostgreSQL: every work order is one service order and every
completion one service confirmation however SAP misbehaves, updated (never deleted) as
the work order changes, and the reconciliation says so; a rejection an SAP user makes
comes back by delta polling to the work order in dispatch.

Expected figures come from this file (the on-site spans and parts each work order was
given); SAP's holdings are read from the fake directly (plain HTTP), not through the
adapter under test.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from cloud.adapters.postgres import Connection, ConnectionPool, create_pool
from cloud.dispatch import DispatchService, FilesystemPhotoStorage
from cloud.dispatch.handlers import SapStatusHandler
from cloud.events.outbox import Event
from cloud.events.types import CustomerAccount, GatewayRegistration, customer_account_event
from cloud.events.workorders import (
    WORKORDER_CREATED,
    WORKORDER_PARTS_USED,
    UsedPart,
    WorkOrderChanged,
    WorkOrderPartsUsed,
    workorder_event_name,
)
from cloud.migrate import migrate
from cloud.sap import SapExporter, SapSettings, reconcile, subscriptions
from cloud.sap.delta import poll_service_orders
from cloud.sap.odata import ODataSapGateway
from cloud.sap.queue import queue_counts, requeue_dead
from contracts.topics import Region
from tests.fakes.fake_sap import FakeSap, running_fake_sap
from tests.waiting import until

pytestmark = pytest.mark.integration

SO = "API_SERVICE_ORDER_SRV"
CONF = "API_SERVICE_CONFIRMATION_SRV"
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=6)
DAY = datetime.now(UTC).date()


@pytest.fixture
def pool(database_url: str) -> Iterator[ConnectionPool[Connection[Any]]]:
    migrate(database_url, schemas={"sap", "dispatch"})
    pool = create_pool(database_url, max_size=4, name="sap-service-test")
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture
def fake() -> Iterator[FakeSap]:
    with running_fake_sap("--seed", "23") as fake:
        yield fake


def _settings(fake: FakeSap) -> SapSettings:
    return SapSettings(
        base_url=fake.base_url,
        connect_timeout_s=0.5,
        read_timeout_s=1.0,
        retry_first_s=0.05,
        retry_cap_s=0.3,
        max_attempts=40,
        lease_s=5.0,
        poll_s=0.05,
        batch_size=5,
    )


def _account(region: Region, name: str) -> CustomerAccount:
    return CustomerAccount(
        account_id=f"acc_{uuid.uuid4().hex}",
        region=region,
        name=name,
        email="ops@example.com",
        plan_code="ppa",
        status="active",
    )


def _event(name: str, payload: WorkOrderChanged, region: Region) -> Event:
    return Event(
        name=name,
        region=region,
        source="dispatch",
        occurred_at=payload.at,
        payload=payload.model_dump(mode="json"),
    )


class Job:
    """One work order's events as dispatch emits them (``workorder.*``)."""

    def __init__(self, region: Region, wo_id: int, account: CustomerAccount, title: str) -> None:
        self.region, self.id, self.account, self.title = region, wo_id, account, title
        self.reference = f"POTR-{region.value.upper()}-WO-{wo_id}"

    def state(self, status: str, at: datetime, **kw: Any) -> WorkOrderChanged:
        values: dict[str, Any] = {
            "work_order_id": self.id,
            "region": self.region.value,
            "site_id": 100 + self.id,
            "account_id": self.account.account_id,
            "type": "inverter_fault",
            "priority": "P3",
            "title": self.title,
            "status": status,
            "at": at,
            "on_site": status == "on_site",
        }
        return WorkOrderChanged(**{**values, **kw})

    def created(self) -> Event:
        return _event(WORKORDER_CREATED, self.state("scheduled", T0), self.region)

    def reprioritised(self) -> Event:
        # Appointment-like news carrying the new priority (any workorder.* event does).
        state = self.state("scheduled", T0 + timedelta(minutes=5), priority="P1")
        return _event(workorder_event_name("scheduled"), state, self.region)

    def cancelled(self) -> Event:
        state = self.state("cancelled", T0 + timedelta(minutes=10))
        return _event(workorder_event_name("cancelled"), state, self.region)

    def visit(self, minutes_on_site: int, parts: list[tuple[str, int]]) -> list[Event]:
        """Arrive at T0+1h, use parts, leave ``minutes_on_site`` later, verified, closed."""
        arrive = T0 + timedelta(hours=1)
        leave = arrive + timedelta(minutes=minutes_on_site)
        used = WorkOrderPartsUsed(
            **self.state("on_site", arrive + timedelta(minutes=1), priority="P1").model_dump(),
            part_use_id=self.id * 10,
            parts=[
                UsedPart(part_no=p, quantity=q, unit_value=Decimal("12.50"), currency="AUD")
                for p, q in parts
            ],
        )
        return [
            _event(workorder_event_name("on_site"), self.state("on_site", arrive, priority="P1"),
                   self.region),
            _event(WORKORDER_PARTS_USED, used, self.region),
            _event(workorder_event_name("resolved"), self.state("resolved", leave, priority="P1"),
                   self.region),
            _event(workorder_event_name("verified"),
                   self.state("verified", leave + timedelta(hours=1), priority="P1"), self.region),
            _event(workorder_event_name("closed"),
                   self.state("closed", leave + timedelta(hours=2), priority="P1"), self.region),
        ]  # fmt: skip


async def _deliver_twice(pool: ConnectionPool[Connection[Any]], events: list[Event]) -> None:
    """Through the SAP integration's own handlers, each event twice (at-least-once)."""
    handlers = {s.consumer: s.handler for s in subscriptions(pool)}
    for _ in range(2):
        for event in events:
            consumer = "sap.customers" if event.source == "customers" else "sap.workorders"
            await handlers[consumer](event)


def _counts(pool: ConnectionPool[Connection[Any]]) -> dict[str, dict[str, int]]:
    with pool.connection() as conn:
        return queue_counts(conn)


async def _export_under_faults(
    pool: ConnectionPool[Connection[Any]],
    exporter: SapExporter,
    want: dict[str, dict[str, int]],
) -> None:
    stop = asyncio.Event()
    runner = asyncio.create_task(exporter.run(stop))
    try:
        await until(
            lambda: asyncio.to_thread(lambda: _counts(pool) == want),
            within_s=20,
            what=f"queues at {want}",
            poll_s=0.1,
        )
    finally:
        stop.set()
        await asyncio.wait_for(runner, 10)


def _orders(fake: FakeSap, reference: str) -> list[dict[str, Any]]:
    return fake.odata(
        SO, "A_ServiceOrder", **{"$filter": f"ReferenceServiceOrder eq '{reference}'"}
    )


def _confirmations(fake: FakeSap, reference: str) -> list[dict[str, Any]]:
    return fake.odata(
        CONF, "A_ServiceConfirmation", **{"$filter": f"PurchaseOrderByCustomer eq '{reference}'"}
    )


def _confirmation_items(fake: FakeSap, number: str) -> list[dict[str, Any]]:
    return fake.odata(
        CONF, "A_ServiceConfirmationItem", **{"$filter": f"ServiceConfirmation eq '{number}'"}
    )


async def test_every_work_order_is_one_service_order_and_one_confirmation_despite_failures(
    pool: ConnectionPool[Connection[Any]], fake: FakeSap
) -> None:
    settings = _settings(fake)
    au, es = _account(Region.AU, "Rooftop AU"), _account(Region.ES, "Tejado ES")
    jobs = [Job(Region.AU, i, au, f"Inverter fault {i}") for i in range(1, 5)]
    jobs += [Job(Region.ES, i, es, f"Fallo inversor {i}") for i in range(1, 4)]
    customers = [customer_account_event(a, created=True) for a in (au, es)]
    await _deliver_twice(pool, customers + [j.created() for j in jobs])

    fake.chaos(error_rate=0.2, csrf_expiry_rate=0.2, stall_rate=0.15,
               stall_s=settings.read_timeout_s + 0.4)  # fmt: skip
    with ODataSapGateway(settings) as gateway:
        exporter = SapExporter(pool, gateway, settings, services=gateway)
        await _export_under_faults(pool, exporter, {
            "documents": {}, "partners": {"exported": 2},
            "service_orders": {"exported": len(jobs)}, "service_confirmations": {},
        })  # fmt: skip

        # Changes: two reprioritised, two cancelled (rejected in SAP), the rest completed
        # with hand-chosen on-site time and parts.
        completed = {jobs[0]: 90, jobs[1]: 45, jobs[4]: 125, jobs[5]: 60}
        parts = {jobs[0]: [("FUSE-10A", 2)], jobs[1]: [], jobs[4]: [("MC4-PAIR", 3),
                 ("FUSE-10A", 1)], jobs[5]: [("DC-ISO-32A", 1)]}  # fmt: skip
        cancelled = [jobs[2], jobs[6]]
        changes = [j.reprioritised() for j in (jobs[3], jobs[0])]
        changes += [j.cancelled() for j in cancelled]
        for job, minutes in completed.items():
            changes += job.visit(minutes, parts[job])
        await _deliver_twice(pool, changes)
        await _export_under_faults(pool, exporter, {
            "documents": {}, "partners": {"exported": 2},
            "service_orders": {"exported": len(jobs)},
            "service_confirmations": {"exported": len(completed)},
        })  # fmt: skip
        injected = fake.stats()
        assert injected["errors"] > 0
        assert injected["csrf_expired"] > 0
        assert injected["stalls"] > 0, "no write timed out after committing"

        fake.chaos()
        for job in jobs:
            (order,) = _orders(fake, job.reference)
            want_priority = "1" if job in completed or job is jobs[3] else "5"
            assert order["ServiceDocumentPriority"] == want_priority, job.reference
            assert order["ServiceOrderIsRejected"] is (job in cancelled)
            assert order["ServiceOrderDescription"] == job.title
            assert order["ServiceOrderType"] == "SVO1"
        for job, minutes in completed.items():
            (confirmation,) = _confirmations(fake, f"{job.reference}-C0")
            (order,) = _orders(fake, job.reference)
            assert confirmation["ServiceOrder"] == order["ServiceOrder"]
            items = _confirmation_items(fake, confirmation["ServiceConfirmation"])
            labour = [i for i in items if i["Product"] == "SRV_LABOUR"]
            assert [Decimal(i["ActualServiceDuration"]) for i in labour] == [
                (Decimal(minutes) / 60).quantize(Decimal("0.01"))
            ]
            used = {i["Product"]: Decimal(i["Quantity"]) for i in items if i not in labour}
            assert used == {p: Decimal(q) for p, q in parts[job]}

        for region in (Region.AU, Region.ES):
            result = await asyncio.to_thread(
                lambda r=region: reconcile(pool, gateway, settings, r, DAY, services=gateway)
            )
            ours = [j for j in jobs if j.region == region]
            assert result.ok, result.findings
            assert (result.service_orders_sent, result.service_orders_in_sap) == (
                len(ours),
                len(ours),
            )
            done = sum(1 for j in completed if j.region == region)
            assert (result.confirmations_sent, result.confirmations_in_sap) == (done, done)

        # Our own rejections read back by the delta poll are not news.
        assert await asyncio.to_thread(poll_service_orders, pool, gateway) == []


async def test_a_rejection_in_sap_comes_back_to_the_work_order(
    pool: ConnectionPool[Connection[Any]], fake: FakeSap, tmp_path: Path
) -> None:
    settings = _settings(fake)
    dispatch = DispatchService(pool, photos=FilesystemPhotoStorage(tmp_path))
    account = _account(Region.AU, "Rejected Roof")
    registration = GatewayRegistration(
        gateway_id="gw-sap-1", site_id=41, region=Region.AU, time_zone="Australia/Sydney",
        account_id=account.account_id, latitude=-33.87, longitude=151.21,
    )  # fmt: skip
    dispatch.record_gateway(uuid.uuid4(), registration, datetime.now(UTC))
    order = dispatch.create(
        Region.AU, 41, "inverter_fault", "P2", "Inverter offline", "No output since noon",
        "usr_ops",
    )  # fmt: skip
    with pool.connection() as conn:
        (payload,) = conn.execute(
            "SELECT payload FROM dispatch.outbox WHERE name = %s", (WORKORDER_CREATED,)
        ).fetchone()
    created = Event(name=WORKORDER_CREATED, region=Region.AU, source="dispatch",
                    occurred_at=datetime.now(UTC), payload=payload)  # fmt: skip
    await _deliver_twice(pool, [customer_account_event(account, created=True), created])
    with ODataSapGateway(settings) as gateway:
        exporter = SapExporter(pool, gateway, settings, services=gateway)
        for _ in range(2):
            await asyncio.to_thread(exporter.export_round)
        (held,) = _orders(fake, f"POTR-AU-WO-{order.id}")
        assert held["ServiceOrderDescription"] == "Inverter offline"
        assert await asyncio.to_thread(poll_service_orders, pool, gateway) == []

        fake.set_service_order_status(held["ServiceOrder"], rejected=True, reason="Z1")
        events = await asyncio.to_thread(poll_service_orders, pool, gateway)
        assert [(e.name, e.payload["status"], e.payload["reason"]) for e in events] == [
            ("service_order.changed", "rejected", "Z1")
        ]
        # Idempotent: the same change read again (the watermark is inclusive) is no news.
        assert await asyncio.to_thread(poll_service_orders, pool, gateway) == []
    with pool.connection() as conn:
        (published,) = conn.execute("SELECT count(*) FROM sap.outbox").fetchone()
    assert published == 1

    handler = SapStatusHandler(dispatch)
    for _ in range(2):  # redelivered: recorded once
        await handler(events[0])
    status = dispatch.sap_status(order.id)
    assert status is not None
    assert (status.status, status.reason, status.service_order) == (
        "rejected",
        "Z1",
        held["ServiceOrder"],
    )
    # Shown, not acted on: the job's lifecycle is where it was.
    with pool.connection() as conn:
        (state,) = conn.execute(
            "SELECT status FROM dispatch.work_orders WHERE id = %s", (order.id,)
        ).fetchone()
    assert state == order.status.value


async def test_refusals_dead_letter_the_service_order_with_the_reason(
    pool: ConnectionPool[Connection[Any]], fake: FakeSap
) -> None:
    account = _account(Region.US, "Unknown Type Inc")
    refused = Job(Region.US, 1, account, "Battery fault")
    orphan = WorkOrderChanged(**{**refused.state("scheduled", T0).model_dump(),
                                 "work_order_id": 2, "account_id": None})  # fmt: skip
    events = [customer_account_event(account, created=True), refused.created()]
    events.append(_event(WORKORDER_CREATED, orphan, Region.US))
    await _deliver_twice(pool, events)
    settings = _settings(fake).model_copy(update={"service_order_type": "ZZ99"})
    with ODataSapGateway(settings) as gateway:
        exporter = SapExporter(pool, gateway, settings, services=gateway)
        for _ in range(3):
            await asyncio.to_thread(exporter.export_round)
    with pool.connection() as conn:
        rows = {
            r[0]: r[1:]
            for r in conn.execute(
                "SELECT reference, state, attempts, dead_reason FROM sap.service_orders"
            ).fetchall()
        }
    state, attempts, reason = rows["POTR-US-WO-1"]
    assert (state, attempts) == ("dead", 1)
    assert "CRM_ORDERADM_H/011" in reason
    assert "Transaction type ZZ99 is not defined" in reason
    state, attempts, reason = rows["POTR-US-WO-2"]
    assert (state, attempts) == ("dead", 0)  # refused here: nothing was sent
    assert "sold-to party" in reason
    assert _orders(fake, "POTR-US-WO-1") == _orders(fake, "POTR-US-WO-2") == []
    # An operator fixed the cause: the dead letters get a new round.
    with pool.connection() as conn:
        assert requeue_dead(conn, "us") == 2
    assert _counts(pool)["service_orders"] == {"pending": 2}


def test_sap_refuses_to_delete_a_service_order(fake: FakeSap) -> None:
    root = fake.base_url + "/sap/opu/odata/sap/"
    fetch = urllib.request.Request(root + SO + "/", headers={"X-CSRF-Token": "Fetch"})
    with urllib.request.urlopen(fetch, timeout=5) as response:
        token = response.headers["x-csrf-token"]
        cookie = response.headers["set-cookie"].split(";")[0]
    headers = {"X-CSRF-Token": token, "Cookie": cookie, "Content-Type": "application/json",
               "Accept": "application/json"}  # fmt: skip

    def send(method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(root + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:
                raw = answer.read()
                return answer.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as refused:
            return refused.code, json.loads(refused.read())

    status, created = send("POST", f"{SO}/A_ServiceOrder", {
        "ServiceOrderType": "SVO1", "ServiceOrderDescription": "Delete me",
        "SoldToParty": "1000001", "ReferenceServiceOrder": "POTR-AU-WO-999",
    })  # fmt: skip
    assert status == 201
    number = created["d"]["ServiceOrder"]
    status, body = send("DELETE", f"{SO}/A_ServiceOrder('{number}')")
    assert status == 405
    assert "reject" in body["error"]["message"]["value"]
    assert len(_orders(fake, "POTR-AU-WO-999")) == 1
    # Too long for SAP's field: refused by SAP, not cut.
    status, body = send("POST", f"{SO}/A_ServiceOrder", {
        "ServiceOrderType": "SVO1", "ServiceOrderDescription": "x" * 41,
        "SoldToParty": "1000001", "ReferenceServiceOrder": "POTR-AU-WO-998",
    })  # fmt: skip
    assert status == 400
    assert "ServiceOrderDescription" in body["error"]["message"]["value"]
