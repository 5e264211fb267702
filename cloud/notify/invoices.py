"""Billing's documents as notifications to the customer (pure): the account's users hear
of each document billing issues (``invoice.issued``) and of each overdue reminder
(``invoice.overdue``), in their language, linked to the document's page in the portal.

* an **invoice** or a **debit note** (``bill_issued``): the document, its number, the
  amount due and the due date;
* a **credit note** or a **cancellation** (``bill_credited``): the document, its number,
  the amount credited and the document it corrects;
* a **reminder** (``bill_overdue``): the document, its number, the amount still owed when
  the reminder was sent, the due date and how many days ago that was (7, then 21).

Amounts are written as money in the reader's language (``12,50 €``, ``$12.50``), never
as bare numbers: a Decimal formatted as a number drops its trailing zero. Each
notification's id derives from the event's id, so a redelivered event tells nobody
twice. The events name no site: the message names the document, which the customer's
bills page lists.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from babel.numbers import format_currency

from cloud.events.invoices import (
    INVOICE_ISSUED,
    INVOICE_OVERDUE,
    InvoiceIssued,
    InvoiceOverdue,
)
from cloud.events.outbox import Event
from cloud.notify.models import ACCOUNT_ID_PATTERN, Category, LocalText, Notification, Severity

__all__ = ["InvoiceNotice", "money_words", "plan_invoice_notices"]

#: Namespace of notification ids derived from billing's event ids.
_NOTIFICATION_NS = uuid.UUID("b3f1c9d2-7a4e-4e61-8c0f-2d9a5e7b1c43")
#: A document's kind as the customer reads it.
_DOCUMENT_WORDS: dict[str, LocalText] = {
    "invoice": LocalText(en="invoice", es="factura"),
    "debit_note": LocalText(en="debit note", es="nota de cargo"),
    "credit_note": LocalText(en="credit note", es="nota de abono"),
    "cancellation": LocalText(en="cancellation", es="anulación"),
}
_CHARGES = frozenset({"invoice", "debit_note"})


@dataclass(frozen=True)
class InvoiceNotice:
    """One notification a billing event makes, to the users of ``account_id``."""

    account_id: str
    notification: Notification


def money_words(amount: Decimal, currency: str) -> LocalText:
    """``amount`` of ``currency`` as money in English and in Spanish."""
    return LocalText(
        en=format_currency(amount, currency, locale="en"),
        es=format_currency(amount, currency, locale="es"),
    )


def plan_invoice_notices(
    event: Event, payload: InvoiceIssued | InvoiceOverdue, now: datetime
) -> list[InvoiceNotice]:
    """The notification of ``event`` (``invoice.issued`` or ``invoice.overdue``, with its
    parsed ``payload``) made at ``now``; empty for an account notify's users cannot
    belong to."""
    if re.fullmatch(ACCOUNT_ID_PATTERN, payload.account_id) is None:
        return []
    params: dict[str, LocalText | str | int | Decimal | object] = {
        "number": payload.number,
        "document": _DOCUMENT_WORDS[payload.kind],
        "due_date": payload.due_date,
    }
    severity = Severity.INFO
    if event.name == INVOICE_OVERDUE and isinstance(payload, InvoiceOverdue):
        kind = "bill_overdue"
        params |= {
            "outstanding": money_words(payload.outstanding, payload.currency),
            "days": payload.level,
        }
        severity = Severity.WARNING
    elif event.name == INVOICE_ISSUED and isinstance(payload, InvoiceIssued):
        amount = money_words(payload.gross, payload.currency)
        if payload.kind in _CHARGES:
            kind = "bill_issued"
            params |= {"amount": amount}
        else:
            kind = "bill_credited"
            params |= {"amount": amount, "reference": payload.reference_number or "-"}
            del params["due_date"]
    else:
        return []
    region = payload.region
    notification = Notification.model_validate(
        {
            "id": uuid.uuid5(_NOTIFICATION_NS, f"{event.id}/customer"),
            "kind": kind,
            "category": Category.NOTICE,
            "severity": severity,
            "region": region,
            "account_id": payload.account_id,
            "link": f"/ui/{region.value}/bills/{payload.number}",
            "params": params,
            "created_at": now,
        }
    )
    return [InvoiceNotice(payload.account_id, notification)]
