"""Support's resolved tickets as letters to the customer (pure): ``ticket.resolved`` →
one notification to the account's users, in their language, linked to the ticket's page.

* a **complaint** (``complaint_resolved``): the outcome, the reasons, and the customer's
  right to take it further — the ombudsman of their state in Australia (``business.md``
  §5: outcome, reasons and the ombudsman right), the state's utility commission in the
  US, consumer arbitration in Spain — from ``data/complaint_rights.yaml`` (by the
  ticket's jurisdiction, else its region; English and Spanish);
* any other ticket (``ticket_resolved``): the outcome.

Its id derives from the event's id, so a redelivered event tells nobody twice.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from functools import cache
from pathlib import Path

import yaml

from cloud.events.outbox import Event
from cloud.events.support import TicketResolved
from cloud.notify.invoices import InvoiceNotice
from cloud.notify.models import ACCOUNT_ID_PATTERN, Category, LocalText, Notification

__all__ = ["RIGHTS_FILE", "complaint_rights", "plan_ticket_notice"]

RIGHTS_FILE = Path(__file__).parent / "data" / "complaint_rights.yaml"
_NOTIFICATION_NS = uuid.UUID("0d3c8a61-52f4-4b8e-9a17-6c2e4f9b8d05")
#: A staff-written text in a letter: bounded like a notification's body.
_MAX_TEXT = 1500


@cache
def _rights() -> dict[str, LocalText]:
    raw = yaml.safe_load(RIGHTS_FILE.read_text(encoding="utf-8"))
    return {key: LocalText.model_validate(text) for key, text in raw.items()}


def complaint_rights(jurisdiction: str, region: str) -> LocalText:
    """The right-to-escalate text for a complaint of ``jurisdiction`` in ``region``."""
    rights = _rights()
    return rights.get(jurisdiction) or rights[region]


def plan_ticket_notice(
    event: Event, payload: TicketResolved, now: datetime
) -> InvoiceNotice | None:
    """The letter of ``ticket.resolved``; None for an account notify's users cannot
    belong to."""
    if re.fullmatch(ACCOUNT_ID_PATTERN, payload.account_id) is None:
        return None
    params: dict[str, object] = {
        "ticket": payload.ticket_id,
        "subject": payload.subject[:200],
        "outcome": payload.outcome[:_MAX_TEXT],
    }
    kind = "ticket_resolved"
    if payload.kind == "complaint":
        kind = "complaint_resolved"
        params |= {
            "reasons": payload.reasons[:_MAX_TEXT] or "-",
            "rights": complaint_rights(payload.jurisdiction, payload.region.value),
        }
    region = payload.region
    notification = Notification.model_validate(
        {
            "id": uuid.uuid5(_NOTIFICATION_NS, str(event.id)),
            "kind": kind,
            "category": Category.NOTICE,
            "region": region,
            "account_id": payload.account_id,
            "link": f"/ui/{region.value}/support/tickets/{payload.ticket_id}",
            "params": params,
            "created_at": now,
        }
    )
    return InvoiceNotice(payload.account_id, notification)
