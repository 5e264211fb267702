"""The SAP integration's events about service orders (``service_order.*``): names and
payload, shared by producer (:mod:`cloud.sap.delta`) and consumer (dispatch), which
import nothing of each other.

``service_order.changed`` tells that someone changed a work order's service order **in
SAP** — rejected or completed it — as the delta poll read it back. One event per change
of SAP's status (a re-read of the same status emits nothing); the event id derives from
(reference, status, SAP's change stamp), so a poll that crashed after emitting and runs
again emits the same id, which consumers' inboxes drop.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID, uuid5

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["SERVICE_ORDER_CHANGED", "ServiceOrderChanged", "service_order_event_id"]

SERVICE_ORDER_CHANGED = "service_order.changed"
_NAMESPACE = UUID("4f1c7a52-3b8e-4d0a-9b61-2f5e8c7d9a10")


class ServiceOrderChanged(BaseModel):
    """A work order's service order as SAP now holds it: ``status`` ``rejected`` or
    ``completed`` (``open`` when SAP undid one), ``reason`` SAP's rejection reason code
    (empty when SAP gave none), ``changed_at`` SAP's change stamp."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    work_order_id: int
    region: str
    reference: str = Field(max_length=80)
    service_order: str = Field(max_length=10)
    status: Literal["open", "rejected", "completed"]
    reason: str = Field(default="", max_length=40)
    changed_at: datetime


def service_order_event_id(reference: str, status: str, changed_at: datetime) -> UUID:
    return uuid5(_NAMESPACE, f"{reference}|{status}|{changed_at.isoformat()}")
