"""Events the SAP integration consumes: billing's issued documents (``invoice.issued``),
its payments and refunds (``payment.recorded`` / ``payment.refunded``), the customers
service's accounts (``customer.created`` / ``customer.updated``) and dispatch's work
orders (``workorder.*``: the service order, its on-site time and parts, and on
``workorder.closed`` the service confirmation), in every region. Each handler fills
the ``sap`` schema's queue in the transaction that records the event in ``sap.inbox``:
a redelivered event queues nothing twice, and a document queued under one event id is
not queued again under another (its number is the key).

:func:`subscriptions` gives the bus subscriptions a composition root registers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

from cloud.adapters.postgres import Connection, ConnectionPool
from cloud.events.bus import Handler, Subscription, event_payload
from cloud.events.invoices import INVOICE_ISSUED, InvoiceIssued
from cloud.events.outbox import Event, handle_once
from cloud.events.payments import PAYMENT_PREFIX, PaymentMoved
from cloud.events.types import CUSTOMER_CREATED, CUSTOMER_UPDATED, CustomerAccount
from cloud.events.workorders import (
    WORKORDER_PARTS_USED,
    WorkOrderChanged,
    WorkOrderPartsUsed,
    workorder_event_name,
)
from cloud.sap import repository as repo
from cloud.sap import service_repository as service_repo

__all__ = [
    "CUSTOMER_CONSUMER",
    "INVOICE_CONSUMER",
    "PAYMENT_CONSUMER",
    "WORKORDER_CONSUMER",
    "apply_customer",
    "apply_invoice_issued",
    "apply_payment",
    "apply_work_order",
    "subscriptions",
]

INVOICE_CONSUMER = "sap.invoices"
CUSTOMER_CONSUMER = "sap.customers"
PAYMENT_CONSUMER = "sap.payments"
WORKORDER_CONSUMER = "sap.workorders"
#: A work order's completion: its confirmation is queued (time and parts so far).
_COMPLETED = workorder_event_name("closed")
_CUSTOMER_EVENTS = frozenset({CUSTOMER_CREATED, CUSTOMER_UPDATED})


def apply_invoice_issued(
    pool: ConnectionPool[Connection[Any]], event_id: UUID, issued: InvoiceIssued
) -> bool:
    """Queue ``issued`` for SAP once; True when it was queued now."""
    with pool.connection() as conn:
        if not handle_once(conn, "sap", event_id):
            return False
        return repo.enqueue_document(conn, issued)


def apply_payment(
    pool: ConnectionPool[Connection[Any]], event_id: UUID, moved: PaymentMoved
) -> bool:
    """Queue a payment or a refund for SAP once; True when it was queued now."""
    with pool.connection() as conn:
        if not handle_once(conn, "sap", event_id):
            return False
        return repo.enqueue_payment(conn, moved)


def apply_customer(
    pool: ConnectionPool[Connection[Any]],
    event_id: UUID,
    occurred_at: datetime,
    account: CustomerAccount,
) -> bool:
    """Make ``account`` the partner SAP should hold (the newest event wins); True when
    something is to be sent."""
    with pool.connection() as conn:
        if not handle_once(conn, "sap", event_id):
            return False
        return repo.upsert_partner(conn, account, occurred_at)


def apply_work_order(pool: ConnectionPool[Connection[Any]], event: Event) -> bool:
    """Record a ``workorder.*`` event once: its on-site state (labour time), its parts,
    the service order SAP should hold and, on completion, the confirmation; True when
    something is to be sent."""
    changed: WorkOrderChanged
    with pool.connection() as conn:
        if not handle_once(conn, "sap", event.id):
            return False
        if event.name == WORKORDER_PARTS_USED:
            used = event_payload(event, WorkOrderPartsUsed)
            service_repo.record_parts(conn, used)
            changed = used
        else:
            changed = event_payload(event, WorkOrderChanged)
        service_repo.record_presence(conn, event.id, changed)
        queued = service_repo.upsert_service_order(conn, changed)
        if event.name == _COMPLETED:
            queued = service_repo.queue_confirmation(conn, changed) or queued
        return queued


def _work_order_handler(pool: ConnectionPool[Connection[Any]], wake: Callable[[], None]) -> Handler:
    async def handle(event: Event) -> None:
        if await asyncio.to_thread(apply_work_order, pool, event):
            wake()

    return handle


def _invoice_handler(pool: ConnectionPool[Connection[Any]], wake: Callable[[], None]) -> Handler:
    async def handle(event: Event) -> None:
        issued = event_payload(event, InvoiceIssued)
        if await asyncio.to_thread(apply_invoice_issued, pool, event.id, issued):
            wake()

    return handle


def _payment_handler(pool: ConnectionPool[Connection[Any]], wake: Callable[[], None]) -> Handler:
    async def handle(event: Event) -> None:
        if not event.name.startswith(PAYMENT_PREFIX):
            return
        moved = event_payload(event, PaymentMoved)
        if await asyncio.to_thread(apply_payment, pool, event.id, moved):
            wake()

    return handle


def _customer_handler(pool: ConnectionPool[Connection[Any]], wake: Callable[[], None]) -> Handler:
    async def handle(event: Event) -> None:
        if event.name not in _CUSTOMER_EVENTS:
            return  # other customer.* news: nothing SAP holds
        account = event_payload(event, CustomerAccount)
        if await asyncio.to_thread(apply_customer, pool, event.id, event.occurred_at, account):
            wake()

    return handle


def subscriptions(
    pool: ConnectionPool[Connection[Any]], wake: Callable[[], None] = lambda: None
) -> list[Subscription]:
    """The SAP integration's subscriptions; ``wake`` is called after something was queued
    (the exporter's ``wake`` event's ``set``, where it runs in this process)."""
    return [
        Subscription(INVOICE_CONSUMER, f"*.billing.{INVOICE_ISSUED}", _invoice_handler(pool, wake)),
        Subscription(CUSTOMER_CONSUMER, "*.customers.customer.*", _customer_handler(pool, wake)),
        Subscription(PAYMENT_CONSUMER, "*.billing.payment.*", _payment_handler(pool, wake)),
        Subscription(WORKORDER_CONSUMER, "*.dispatch.workorder.*", _work_order_handler(pool, wake)),
    ]
