"""Work orders as SAP sees them: service orders and service confirmations, as plain data,
and the gateway protocol that carries them (pure: no I/O).

A work order becomes one **service order** (``API_SERVICE_ORDER_SRV``): its reference
``POTR-<REGION>-WO-<id>`` travels in ``ReferenceServiceOrder`` (80 characters, the
external reference) and identifies it in SAP — the exporter queries by it before
creating. A service order is never deleted: a cancelled work order rejects it.

A completed work order becomes one **service confirmation**
(``API_SERVICE_CONFIRMATION_SRV``, a separate service) per completion: the labour time on
site (an item in hours) and the parts used (an item per part number), under its own
reference ``POTR-<REGION>-WO-<id>-C<n>`` (``n`` the work order's reopen count: a reopened
job confirms its second visit separately), queried before creating like the order.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal, Protocol

from cloud.sap.documents import Outcome
from cloud.sap.errors import SapRefusedError

__all__ = [
    "CONFIRMATION_REFERENCE_LENGTH",
    "DESCRIPTION_LENGTH",
    "SERVICE_ORDER_REFERENCE_LENGTH",
    "ConfirmationDraft",
    "ConfirmationRecord",
    "PartLine",
    "SapStatus",
    "ServiceGateway",
    "ServiceOrderDraft",
    "ServiceOrderRecord",
    "confirmation_reference",
    "labour_hours",
    "sap_priority",
    "service_order_reference",
]

#: ``ReferenceServiceOrder``: the external reference of a service order.
SERVICE_ORDER_REFERENCE_LENGTH = 80
#: ⚠ ``PurchaseOrderByCustomer`` (35) carries a confirmation's reference.
CONFIRMATION_REFERENCE_LENGTH = 35
#: ``ServiceOrderDescription`` / ``ServiceConfirmationDescription``.
DESCRIPTION_LENGTH = 40
#: Dispatch's priorities as SAP's ``ServiceDocumentPriority`` (1 very high, 3 high,
#: 5 medium, 9 low: the standard values).
_PRIORITIES = {"P1": "1", "P2": "3", "P3": "5", "P4": "9"}
_HUNDREDTH = Decimal("0.01")

SapStatus = Literal["open", "rejected", "completed"]


def service_order_reference(region: str, work_order_id: int) -> str:
    """``POTR-AU-WO-123``: work order ids are per region, so the region is in it."""
    return f"POTR-{region.upper()}-WO-{work_order_id}"


def confirmation_reference(region: str, work_order_id: int, reopen_count: int) -> str:
    return f"{service_order_reference(region, work_order_id)}-C{reopen_count}"


def sap_priority(priority: str) -> str:
    try:
        return _PRIORITIES[priority]
    except KeyError:
        raise SapRefusedError(f"priority {priority!r} has no SAP priority") from None


def _check(reference: str, limit: int, field_name: str) -> str:
    if not reference or len(reference) > limit or "'" in reference:
        raise SapRefusedError(
            f"reference {reference!r} does not fit SAP's {field_name} (1 to {limit}, no quote)"
        )
    return reference


def labour_hours(samples: Sequence[tuple[datetime, bool]]) -> Decimal:
    """Hours on site from the work order's states over time: each ``(at, on_site)``
    sample holds until the next; the on-site spans are summed, rounded to 0.01 h (half
    up). Samples come from events, so duplicates and order do not matter."""
    ordered = sorted(set(samples))
    seconds = Decimal(0)
    for (at, on_site), (following, _) in itertools.pairwise(ordered):
        if on_site:
            seconds += Decimal(str((following - at).total_seconds()))
    return (seconds / Decimal(3600)).quantize(_HUNDREDTH, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class ServiceOrderDraft:
    """A work order as SAP's service order; ``rejected`` when the work order was
    cancelled (SAP: reject, never delete)."""

    reference: str
    order_type: str
    description: str
    sold_to: str
    priority: str
    requested_start: datetime | None = None
    rejected: bool = False

    def __post_init__(self) -> None:
        _check(self.reference, SERVICE_ORDER_REFERENCE_LENGTH, "ReferenceServiceOrder")
        if len(self.description) > DESCRIPTION_LENGTH:
            raise SapRefusedError(f"description of {self.reference} is too long")


@dataclass(frozen=True)
class ServiceOrderRecord:
    """A service order as SAP holds it."""

    service_order: str
    reference: str
    description: str = ""
    priority: str = ""
    rejected: bool = False
    completed: bool = False
    #: ⚠ SAP's rejection reason code, if any.
    reason: str = ""
    changed_at: datetime | None = None

    @property
    def status(self) -> SapStatus:
        if self.rejected:
            return "rejected"
        return "completed" if self.completed else "open"

    def differs_from(self, draft: ServiceOrderDraft) -> bool:
        """True when SAP's order lacks a change the draft carries (rejection is one-way:
        an order SAP rejected is not un-rejected from here)."""
        return (
            self.description != draft.description
            or self.priority != draft.priority
            or (draft.rejected and not self.rejected)
        )


@dataclass(frozen=True)
class PartLine:
    part_no: str
    quantity: int


@dataclass(frozen=True)
class ConfirmationDraft:
    """A completion's time and parts, confirming SAP service order ``service_order``."""

    reference: str
    service_order: str
    sold_to: str
    confirmation_type: str
    description: str
    labour_product: str
    labour_hours: Decimal
    parts: tuple[PartLine, ...] = field(default=())

    def __post_init__(self) -> None:
        _check(self.reference, CONFIRMATION_REFERENCE_LENGTH, "PurchaseOrderByCustomer")
        if len(self.description) > DESCRIPTION_LENGTH:
            raise SapRefusedError(f"description of {self.reference} is too long")
        if self.labour_hours < 0 or any(p.quantity <= 0 for p in self.parts):
            raise SapRefusedError(f"confirmation {self.reference}: negative time or quantity")


@dataclass(frozen=True)
class ConfirmationRecord:
    confirmation: str
    reference: str
    service_order: str = ""


class ServiceGateway(Protocol):
    """What the service-order export, the delta poll and the reconciliation need of SAP.
    Blocking; whole-call failures raise :mod:`cloud.sap.errors`."""

    def find_service_orders(
        self, references: Sequence[str]
    ) -> Mapping[str, list[ServiceOrderRecord]]: ...

    def create_service_orders(
        self, drafts: Sequence[ServiceOrderDraft]
    ) -> list[Outcome[ServiceOrderRecord]]: ...

    def update_service_order(self, service_order: str, draft: ServiceOrderDraft) -> None:
        """Bring the description and priority to the draft's; reject it if the draft is."""
        ...

    def find_confirmations(
        self, references: Sequence[str]
    ) -> Mapping[str, list[ConfirmationRecord]]: ...

    def create_confirmations(
        self, drafts: Sequence[ConfirmationDraft]
    ) -> list[Outcome[ConfirmationRecord]]: ...

    def service_orders_changed_since(
        self, since: datetime | None, prefix: str
    ) -> list[ServiceOrderRecord]:
        """Service orders whose reference starts with ``prefix`` changed at or after
        ``since`` (all of them when None), oldest change first, every page."""
        ...
