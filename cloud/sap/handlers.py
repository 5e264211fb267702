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
    return _once(pool, event_id, lambda conn: repo.enqueue_document(conn, issued))


def apply_payment(
    pool: ConnectionPool[Connection[Any]], event_id: UUID, moved: PaymentMoved
) -> bool:
    """Queue a payment or a refund for SAP once; True when it was queued now."""
    return _once(pool, event_id, lambda conn: repo.enqueue_payment(conn, moved))


def apply_customer(
    pool: ConnectionPool[Connection[Any]],
    event_id: UUID,
    occurred_at: datetime,
    account: CustomerAccount,
) -> bool:
    """Make ``account`` the partner SAP should hold (the newest event wins); True when
    something is to be sent."""
    return _once(pool, event_id, lambda conn: repo.upsert_partner(conn, account, occurred_at))


def _once(
    pool: ConnectionPool[Connection[Any]],
    event_id: UUID,
    queue: Callable[[Connection[Any]], bool],
) -> bool:
    """``queue`` in the transaction that records ``event_id`` as handled, unless it was."""
    with pool.connection() as conn:
        return handle_once(conn, "sap", event_id) and queue(conn)


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


def _handler(
    wake: Callable[[], None],
    apply: Callable[[Event], bool],
    wanted: Callable[[str], bool] = lambda _: True,
) -> Handler:
    """Apply the ``wanted`` events (by name) in a thread; ``wake`` when something was
    queued."""

    async def handle(event: Event) -> None:
        if wanted(event.name) and await asyncio.to_thread(apply, event):
            wake()

    return handle


def subscriptions(
    pool: ConnectionPool[Connection[Any]], wake: Callable[[], None] = lambda: None
) -> list[Subscription]:
    """The SAP integration's subscriptions; ``wake`` is called after something was queued
    (the exporter's ``wake`` event's ``set``, where it runs in this process)."""
    invoice = _handler(
        wake, lambda e: apply_invoice_issued(pool, e.id, event_payload(e, InvoiceIssued))
    )
    customer = _handler(
        wake,
        lambda e: apply_customer(pool, e.id, e.occurred_at, event_payload(e, CustomerAccount)),
        lambda name: name in _CUSTOMER_EVENTS,  # other customer.* news: nothing SAP holds
    )
    payment = _handler(
        wake,
        lambda e: apply_payment(pool, e.id, event_payload(e, PaymentMoved)),
        lambda name: name.startswith(PAYMENT_PREFIX),
    )
    work_order = _handler(wake, lambda e: apply_work_order(pool, e))
    return [
        Subscription(INVOICE_CONSUMER, f"*.billing.{INVOICE_ISSUED}", invoice),
        Subscription(CUSTOMER_CONSUMER, "*.customers.customer.*", customer),
        Subscription(PAYMENT_CONSUMER, "*.billing.payment.*", payment),
        Subscription(WORKORDER_CONSUMER, "*.dispatch.workorder.*", work_order),
    ]
