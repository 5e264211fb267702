"""A site's notices, derived from what the platform knows (pure): a device that is not
working, a live view without fresh data, a meter replaced. The alert service (issue 16)
adds its own notifications; these are facts about the site, not alarms. Each notice is
a kind and its values: the template words it in the person's language."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cloud.portal.web.power_flow import PowerFlow

__all__ = ["Notice", "site_notices"]

#: Device states that deserve a notice (asleep is normal for PV at night).
_TROUBLE = ("unreachable", "faulty")


@dataclass(frozen=True)
class Notice:
    kind: str  # device_unreachable, device_faulty, no_recent_data, meter_replaced
    level: str  # info, warning
    at: datetime | None = None
    values: dict[str, Any] = field(default_factory=dict)


def site_notices(devices: Iterable[Any], flow: PowerFlow, swaps: Sequence[Any]) -> list[Notice]:
    """``devices``: rows with ``device`` and ``status``/``since``; ``swaps``: the
    site's meter replacements (``replaced_at``, ``old_serial``, ``new_serial``)."""
    found = [
        Notice(
            f"device_{row.status}",
            "warning",
            row.since,
            {"device": row.device.serial or row.device.local_id, "kind": row.device.kind},
        )
        for row in devices
        if row.status in _TROUBLE
    ]
    if flow.stale:
        found.append(Notice("no_recent_data", "warning", flow.as_of))
    found += [
        Notice("meter_replaced", "info", s.replaced_at, {"old": s.old_serial, "new": s.new_serial})
        for s in swaps
    ]
    return found
