"""What a job chargeable to the customer bills, as pure functions over what dispatch
records: whether the mark may still change, and the labour time.

Under a PPA the system is PoTR's, so parts and labour are PoTR's own cost; only damage
the customer caused or equipment the customer owns is billed (business.md §6), and only
from a work order someone marked so. Labour is the time the technician was on site —
from each arrival to leaving the site (resolve, hold, unable to complete), every visit —
as the work order's history records it with the server's clock: dispatch already knows
it, the MOSIE cannot forget to enter it, and it is the same time the SLA and performance
figures read. Whole minutes, rounded down (a part-minute is not billed).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from cloud.dispatch.lifecycle import ACTIVE_STATES, ON_SITE_STATES, WorkOrderStatus
from cloud.dispatch.models import HistoryEntry, WorkOrder

__all__ = ["CHARGEABLE_STATES", "MAX_CHARGE_NOTE", "charge_refusal", "on_site_minutes"]

#: A job may be marked chargeable (or unmarked) before it is completed: any state with
#: work still to do except resolved (its completion was already judged).
CHARGEABLE_STATES = ACTIVE_STATES - {WorkOrderStatus.RESOLVED}
#: Characters of the note that says what the customer caused or owns.
MAX_CHARGE_NOTE = 500


def charge_refusal(order: WorkOrder) -> str | None:
    """Why ``order``'s charge mark can no longer change; None when it can."""
    if order.charge_billed_at is not None:
        return f"work order {order.id} was already sent to billing"
    if order.status not in CHARGEABLE_STATES:
        return f"work order {order.id} is {order.status}: mark it before completion"
    return None


def on_site_minutes(history: Sequence[HistoryEntry], now: datetime) -> int:
    """Whole minutes spent in the on-site states over ``history`` (in order); a stay
    not ended by ``history`` counts until ``now``."""
    total = timedelta(0)
    arrived: datetime | None = None
    for entry in history:
        was = entry.from_state in ON_SITE_STATES
        is_now = entry.to_state in ON_SITE_STATES
        if is_now and not was:
            arrived = entry.at
        elif was and not is_now and arrived is not None:
            total += entry.at - arrived
            arrived = None
    if arrived is not None:
        total += now - arrived
    return max(int(total.total_seconds()) // 60, 0)
