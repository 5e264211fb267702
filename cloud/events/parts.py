"""The dispatch service's parts-stock events (``part.*``): names and the payload, shared
by producer and consumer like :mod:`cloud.events.workorders`. Dispatch emits them from
its outbox; notify tells the region's admins and operators, importing nothing of
dispatch.

``part.reorder_needed`` (:class:`PartReorderNeeded`): a use took a part's quantity on
hand from above its reorder level to at or below it. One event per crossing, in the
use's transaction: further uses below the level emit nothing until a restock lifts the
part above it again; a retried use (same idempotency key) records and emits nothing.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict

__all__ = ["PART_PREFIX", "PART_REORDER_NEEDED", "PartReorderNeeded"]

#: Every parts event's name starts so (``*.dispatch.part.*`` subscribes to all).
PART_PREFIX = "part."
#: A part of the region's stock fell to or below its reorder level.
PART_REORDER_NEEDED = "part.reorder_needed"


class PartReorderNeeded(BaseModel):
    """Payload of ``part.reorder_needed``: the part, what is left on hand after the use
    ``part_use_id`` (on work order ``work_order_id``), its reorder level and how many to
    reorder; ``unit_value`` its unit cost in ``currency`` where known."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    region: str
    part_no: str
    description: str = ""
    quantity: int
    reorder_level: int
    reorder_quantity: int
    unit_value: Decimal | None = None
    currency: str | None = None
    part_use_id: int
    work_order_id: int
    at: datetime
