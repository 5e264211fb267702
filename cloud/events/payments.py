"""Money billing received or paid back (``payment.recorded``, ``payment.refunded``): the
names and the payload, shared by producer and consumer like :mod:`cloud.events.invoices`.
Billing emits them in the transaction that records the payment or the refund; SAP posts
each as an FI-AR incoming (or outgoing) payment, parsing them with :class:`PaymentMoved`
and importing nothing of billing.

**Reference**: ``<REGION>-PAY-<9 digits>`` for a payment, ``<REGION>-RFD-<9 digits>`` for
a refund (billing's row id): 16 characters, SAP's reference field exactly, and never an
invoice number (``AU-2026-0000123``). The event id derives from the region and the
reference, so emitting the same payment twice is one event. ``amount`` is positive; the
kind says which way it moves the balance (a payment lowers it, a refund raises it).
``booked_on`` is the UTC date of ``at`` (when the money moved): the posting date.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal
from uuid import UUID, uuid5

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from cloud.events.invoices import Money
from cloud.events.outbox import Event
from cloud.events.types import AccountId
from contracts.topics import Region

__all__ = [
    "PAYMENT_PREFIX",
    "PAYMENT_RECORDED",
    "PAYMENT_REFERENCE_PATTERN",
    "PAYMENT_REFUNDED",
    "PaymentMoved",
    "payment_event",
    "payment_reference",
]

PAYMENT_PREFIX = "payment."
#: Billing recorded a payment received (once per provider reference).
PAYMENT_RECORDED = "payment.recorded"
#: Billing paid an account's credit back.
PAYMENT_REFUNDED = "payment.refunded"
PAYMENT_REFERENCE_PATTERN = r"^(AU|US|ES)-(PAY|RFD)-[0-9]{9}$"
_IDS = UUID("9e4c2b71-5d3a-4f08-b6c1-7a2e9d0f3b58")
_TAGS = {"payment": "PAY", "refund": "RFD"}


def payment_reference(region: Region, kind: Literal["payment", "refund"], row_id: int) -> str:
    """``AU-PAY-000000123``: 16 characters, unique per region and kind."""
    if not 1 <= row_id <= 999_999_999:
        raise ValueError(f"{kind} id {row_id} is outside 1..999999999")
    return f"{region.value.upper()}-{_TAGS[kind]}-{row_id:09d}"


class PaymentMoved(BaseModel):
    """Payload of ``payment.recorded`` (``kind`` payment) and ``payment.refunded``
    (``kind`` refund)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    kind: Literal["payment", "refund"]
    reference: Annotated[str, Field(pattern=PAYMENT_REFERENCE_PATTERN, max_length=16)]
    region: Region
    account_id: AccountId
    currency: Literal["AUD", "USD", "EUR"]
    amount: Annotated[Money, Field(gt=0)]
    at: AwareDatetime
    booked_on: date
    provider: str = Field(min_length=1, max_length=50)
    provider_reference: str = Field(min_length=1, max_length=200)


def payment_event(moved: PaymentMoved, *, occurred_at: datetime | None = None) -> Event:
    """The event of ``moved``; its id derives from (region, reference)."""
    fields: dict[str, object] = {
        "id": uuid5(_IDS, f"{moved.region.value}/{moved.reference}"),
        "name": PAYMENT_RECORDED if moved.kind == "payment" else PAYMENT_REFUNDED,
        "region": moved.region,
        "source": "billing",
        "payload": moved.model_dump(mode="json"),
    }
    if occurred_at is not None:
        fields["occurred_at"] = occurred_at
    return Event.model_validate(fields)
