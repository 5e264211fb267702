"""A ticket's states and who may move it where: pure rules, no I/O.

new → open → pending (waiting on the customer: the SLA clocks pause) → open → resolved
→ closed. Staff move a ticket anywhere the table allows; a customer only replies (which
takes a pending ticket back to open) and reopens a resolved ticket within the region's
reopen window. A closed ticket is final. Every move is a row in the ticket's history
(who, when, note), never an update without one.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

__all__ = [
    "Kind",
    "Priority",
    "State",
    "TransitionError",
    "can_reopen",
    "check_move",
    "paused",
]


class Kind(StrEnum):
    COMPLAINT = "complaint"
    QUESTION = "question"
    CHANGE_REQUEST = "change_request"
    FAULT_REPORT = "fault_report"
    #: Privacy requests (issue 20 point 6): the customer's personal data, out or erased.
    DATA_EXPORT = "data_export"
    DATA_ERASURE = "data_erasure"


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class State(StrEnum):
    NEW = "new"
    OPEN = "open"
    PENDING = "pending"
    RESOLVED = "resolved"
    CLOSED = "closed"


class TransitionError(ValueError):
    """A move the rules refuse (409 at the API)."""


#: Where staff may move a ticket from each state.
STAFF_MOVES: dict[State, frozenset[State]] = {
    State.NEW: frozenset({State.OPEN, State.PENDING, State.RESOLVED}),
    State.OPEN: frozenset({State.PENDING, State.RESOLVED}),
    State.PENDING: frozenset({State.OPEN, State.RESOLVED}),
    State.RESOLVED: frozenset({State.OPEN, State.CLOSED}),
    State.CLOSED: frozenset(),
}

#: States in which the SLA clocks stand still.
PAUSED = frozenset({State.PENDING, State.RESOLVED, State.CLOSED})


def paused(state: State) -> bool:
    return state in PAUSED


def check_move(current: State, target: State) -> None:
    """Refuse a move staff may not make (:class:`TransitionError`)."""
    if target not in STAFF_MOVES[current]:
        raise TransitionError(f"a {current.value} ticket cannot become {target.value}")


def can_reopen(
    state: State, resolved_at: datetime | None, now: datetime, window: timedelta
) -> bool:
    """A customer may reopen a resolved ticket until the window after its resolution
    ends (the end itself is outside)."""
    return state == State.RESOLVED and resolved_at is not None and now < resolved_at + window
