"""Parts-stock events as notifications (pure): dispatch's ``part.reorder_needed`` tells
the region's admins and operators which part to reorder and how many
(``part_reorder_needed``), linked to the region's parts page. Dispatch emits one event
per crossing of the reorder level; the notification's id derives from the event's id,
so a redelivered event tells nobody twice.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime

from cloud.events.outbox import Event
from cloud.events.parts import PART_REORDER_NEEDED, PartReorderNeeded
from cloud.notify.models import Category, Notification, Severity

__all__ = ["REORDER_ROLES", "PartNotice", "plan_part_notices"]

#: Namespace of notification ids derived from parts events' ids.
_NOTIFICATION_NS = uuid.UUID("3a9d4f61-2b7e-4c0a-8e55-91c7d2a4b6f3")
#: Who reorders a region's parts: its office (admins and operators).
REORDER_ROLES = ("admin", "operator")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


@dataclass(frozen=True)
class PartNotice:
    """One notification a parts event makes, to the region's people of ``roles``."""

    notification: Notification
    roles: tuple[str, ...] = REORDER_ROLES


def plan_part_notices(event: Event, part: PartReorderNeeded, now: datetime) -> list[PartNotice]:
    """The notifications of ``event`` (a ``part.*`` event with payload ``part``) made at
    ``now``; empty for a parts event that tells nobody."""
    if event.name != PART_REORDER_NEEDED:
        return []
    description = _CONTROL.sub(" ", part.description).strip()[:200]
    notification = Notification(
        id=uuid.uuid5(_NOTIFICATION_NS, f"{event.id}/office"),
        kind="part_reorder_needed",
        category=Category.NOTICE,
        severity=Severity.WARNING if part.quantity == 0 else Severity.INFO,
        region=event.region,
        link=f"/ui/{event.region.value}/parts",
        params={
            "part_no": part.part_no,
            "description": description or part.part_no,
            "quantity": part.quantity,
            "reorder_level": part.reorder_level,
            "reorder_quantity": part.reorder_quantity,
        },
        created_at=now,
    )
    return [PartNotice(notification)]
