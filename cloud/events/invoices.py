"""The billing service's issued documents (``invoice.issued``): the name and the payload,
shared by producer and consumer like :mod:`cloud.events.workorders`. Billing builds them
in the transaction that numbers a document; SAP (and notify, the portal's feeds) parse
them with :class:`InvoiceIssued`, importing nothing of billing.

One event per issued document, whatever its kind: an ``invoice``, a ``credit_note`` or a
``debit_note`` (true-ups of an invoice) or a ``cancellation`` (the reversing document of
an invoice; a document is never deleted). Notes and cancellations name the document they
correct in ``reference_number``.

**Amounts** are exact decimals in the document's currency (strings in JSON, never
floats), with at most two decimal places, and never negative: a document's ``kind`` says
which way it moves the customer's balance (an invoice and a debit note raise it, a credit
note and a cancellation lower it). ``net`` is the sum of the lines' ``net``; ``gross`` is
``net + tax``; ``tax`` is computed per tax rate on the sum of the lines at that rate,
rounded once (ROUND_HALF_UP), so the lines' own ``tax`` (each rounded) may differ from it
by cents — the invoice's ``tax`` is the one that counts.

**Numbers** are ``<REGION>-<YYYY>-<7 digits>`` (``AU-2026-0000123``): gap-free per region,
15 characters, so they fit SAP's 16-character reference field (``DocumentReferenceID``).
The event id derives from the region and the number, so emitting a document twice
stores (and exports) it once.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal, Self
from uuid import UUID, uuid5

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from cloud.events.outbox import Event
from cloud.events.types import AccountId
from contracts.topics import Region

__all__ = [
    "INVOICE_ISSUED",
    "INVOICE_NUMBER_PATTERN",
    "INVOICE_OVERDUE",
    "REGION_CURRENCY",
    "DocumentKind",
    "InvoiceIssued",
    "InvoiceLine",
    "InvoiceOverdue",
    "Money",
    "invoice_issued_event",
    "invoice_overdue_event",
]

#: Billing issued a document (any kind: :data:`DocumentKind`).
INVOICE_ISSUED = "invoice.issued"
#: ``AU-2026-0000123``: the region, the year of issue, seven digits (gap-free per region).
INVOICE_NUMBER_PATTERN = r"^(AU|US|ES)-[0-9]{4}-[0-9]{7}$"
#: Each region bills in one currency.
REGION_CURRENCY: dict[Region, str] = {Region.AU: "AUD", Region.US: "USD", Region.ES: "EUR"}
#: Event ids of ``invoice.issued``: one per (region, number), whoever builds it.
_ISSUED_IDS = UUID("6b1f2c7e-3d4a-5e8f-9a0b-1c2d3e4f5a6b")

DocumentKind = Literal["invoice", "credit_note", "debit_note", "cancellation"]


def _cents(value: Decimal) -> Decimal:
    exponent = value.as_tuple().exponent
    if not value.is_finite() or not isinstance(exponent, int) or exponent < -2:
        raise ValueError(f"{value} is not an amount with at most two decimal places")
    return value


#: A non-negative amount with at most two decimal places (a string in JSON).
Money = Annotated[Decimal, Field(ge=0), AfterValidator(_cents)]
InvoiceNumber = Annotated[str, Field(pattern=INVOICE_NUMBER_PATTERN, max_length=16)]


class InvoiceLine(BaseModel):
    """One line of a document: energy of one period at one price. ``kwh`` and
    ``unit_price`` (currency per kWh) are exact; ``net`` and ``tax`` are rounded to the
    cent; ``tax_rate`` a fraction (``0.10`` for 10 %)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    description: str = Field(min_length=1, max_length=200)
    kwh: Decimal = Field(ge=0)
    unit_price: Decimal = Field(ge=0)
    net: Money
    tax_rate: Decimal = Field(ge=0, lt=1)
    tax: Money
    #: A service line's quantity: parts, or labour minutes (``unit_price`` then per
    #: hour); ``kwh`` is 0 on service lines. None on energy lines.
    quantity: Decimal | None = Field(default=None, ge=0)


class InvoiceIssued(BaseModel):
    """Payload of ``invoice.issued``: the document as issued (see the module for the
    conventions on amounts and numbers)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    kind: DocumentKind
    number: InvoiceNumber
    region: Region
    account_id: AccountId
    issue_date: date
    due_date: date
    currency: Literal["AUD", "USD", "EUR"]
    net: Money
    tax: Money
    gross: Money
    lines: list[InvoiceLine] = Field(min_length=1, max_length=500)
    #: The document a note or a cancellation corrects; None on an invoice.
    reference_number: InvoiceNumber | None = None
    #: A service invoice's work order (a job chargeable to the customer); None on an
    #: energy invoice and on every other kind.
    work_order_id: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        if not self.number.startswith(self.region.value.upper() + "-"):
            raise ValueError(f"number {self.number} is not of region {self.region.value}")
        if self.currency != REGION_CURRENCY[self.region]:
            raise ValueError(f"region {self.region.value} bills in {REGION_CURRENCY[self.region]}")
        if self.due_date < self.issue_date:
            raise ValueError("due_date is before issue_date")
        if sum((line.net for line in self.lines), Decimal(0)) != self.net:
            raise ValueError("net is not the sum of the lines' net")
        if self.net + self.tax != self.gross:
            raise ValueError("gross is not net + tax")
        if self.kind == "invoice":
            if self.reference_number is not None:
                raise ValueError("an invoice corrects no document: reference_number must be null")
        elif self.reference_number is None:
            raise ValueError(f"a {self.kind} names the document it corrects (reference_number)")
        elif self.reference_number == self.number:
            raise ValueError("a document cannot correct itself")
        return self


def invoice_issued_event(
    issued: InvoiceIssued, *, occurred_at: datetime | None = None, source: str = "billing"
) -> Event:
    """``invoice.issued`` for ``issued``; its id derives from (region, number), so a
    document emitted twice is one event."""
    fields: dict[str, object] = {
        "id": uuid5(_ISSUED_IDS, f"{issued.region.value}/{issued.number}"),
        "name": INVOICE_ISSUED,
        "region": issued.region,
        "source": source,
        "payload": issued.model_dump(mode="json"),
    }
    if occurred_at is not None:
        fields["occurred_at"] = occurred_at
    return Event.model_validate(fields)


#: A charge (invoice or debit note) is still unpaid ``level`` days after its due date.
INVOICE_OVERDUE = "invoice.overdue"
_OVERDUE_IDS = UUID("0f7c1a52-8e44-5b0d-a1c3-7d9e2b6f4a18")


class InvoiceOverdue(BaseModel):
    """Payload of ``invoice.overdue``: one per document and reminder ``level`` (days
    after ``due_date``); ``outstanding`` is what was still owed when it was sent."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    number: InvoiceNumber
    kind: Literal["invoice", "debit_note"]
    region: Region
    account_id: AccountId
    currency: Literal["AUD", "USD", "EUR"]
    due_date: date
    level: int = Field(ge=1)
    outstanding: Money


def invoice_overdue_event(
    overdue: InvoiceOverdue, *, occurred_at: datetime | None = None, source: str = "billing"
) -> Event:
    """``invoice.overdue`` for ``overdue``; its id derives from (region, number, level),
    so a reminder emitted twice is one event."""
    fields: dict[str, object] = {
        "id": uuid5(_OVERDUE_IDS, f"{overdue.region.value}/{overdue.number}/{overdue.level}"),
        "name": INVOICE_OVERDUE,
        "region": overdue.region,
        "source": source,
        "payload": overdue.model_dump(mode="json"),
    }
    if occurred_at is not None:
        fields["occurred_at"] = occurred_at
    return Event.model_validate(fields)
