"""Alarms as the alarm store keeps and tells them: records, history, pages, flood
metrics, and the ``alert.*`` events (names and payload) emitted through the outbox.

The lifecycle's vocabulary (:mod:`cloud.alerts.lifecycle`: states, actions, policy) is
re-exported here, so ``__all__`` is the whole public surface of alarms but the store.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cloud.alerts.lifecycle import (
    ANNUNCIATED_STATES,
    DEFAULT_POLICY,
    MAX_SHELVE_REASON,
    OPEN_STATES,
    TRANSITIONS,
    Acknowledge,
    Action,
    ActionKind,
    AlarmPolicy,
    AlarmState,
    AlarmStatus,
    Clear,
    Escalate,
    IllegalTransition,
    Raise,
    RemoveFromService,
    ReturnToService,
    Severity,
    Shelve,
    ShelveRefused,
    Suppress,
    Unshelve,
    Unsuppress,
    apply,
    due_escalations,
    is_open,
    settle,
    shelf_expired,
)
from cloud.events.alerts import (
    ALERT_ACKNOWLEDGED,
    ALERT_CLEARED,
    ALERT_ESCALATED,
    ALERT_OUT_OF_SERVICE,
    ALERT_RAISED,
    ALERT_RETURNED_TO_SERVICE,
    ALERT_SHELVED,
    ALERT_SUPPRESSED,
    ALERT_UNSHELVED,
    ALERT_UNSUPPRESSED,
    AlarmChanged,
)
from cloud.events.outbox import Event
from cloud.events.types import AccountId
from contracts.messages import GatewayId, JsonObject, LocalDeviceId
from contracts.topics import Region

__all__ = [
    "ALERT_ACKNOWLEDGED",
    "ALERT_CLEARED",
    "ALERT_ESCALATED",
    "ALERT_OUT_OF_SERVICE",
    "ALERT_RAISED",
    "ALERT_RETURNED_TO_SERVICE",
    "ALERT_SHELVED",
    "ALERT_SUPPRESSED",
    "ALERT_UNSHELVED",
    "ALERT_UNSUPPRESSED",
    "ANNUNCIATED_STATES",
    "DEFAULT_POLICY",
    "EVENT_NAMES",
    "FLOOD_THRESHOLD",
    "FLOOD_WINDOW_MINUTES",
    "MAX_SHELVE_REASON",
    "OPEN_STATES",
    "STALE_AFTER_HOURS",
    "TRANSITIONS",
    "Acknowledge",
    "Action",
    "ActionKind",
    "Alarm",
    "AlarmChanged",
    "AlarmCondition",
    "AlarmNotFound",
    "AlarmPage",
    "AlarmPolicy",
    "AlarmState",
    "AlarmStatus",
    "AlarmSubject",
    "Clear",
    "Escalate",
    "FloodMetrics",
    "FloodWindow",
    "HistoryEntry",
    "IllegalTransition",
    "Raise",
    "RemoveFromService",
    "ReturnToService",
    "RuleId",
    "Severity",
    "Shelve",
    "ShelveRefused",
    "Suppress",
    "Unshelve",
    "Unsuppress",
    "alarm_changed_event",
    "apply",
    "due_escalations",
    "is_open",
    "settle",
    "shelf_expired",
]

#: The event each action's transition emits.
EVENT_NAMES: Mapping[ActionKind, str] = {
    ActionKind.RAISE: ALERT_RAISED,
    ActionKind.CLEAR: ALERT_CLEARED,
    ActionKind.ACKNOWLEDGE: ALERT_ACKNOWLEDGED,
    ActionKind.SHELVE: ALERT_SHELVED,
    ActionKind.UNSHELVE: ALERT_UNSHELVED,
    ActionKind.SUPPRESS: ALERT_SUPPRESSED,
    ActionKind.UNSUPPRESS: ALERT_UNSUPPRESSED,
    ActionKind.REMOVE_FROM_SERVICE: ALERT_OUT_OF_SERVICE,
    ActionKind.RETURN_TO_SERVICE: ALERT_RETURNED_TO_SERVICE,
    ActionKind.ESCALATE: ALERT_ESCALATED,
}

#: Flood practice (business.md §4): more than this many annunciations per window.
FLOOD_THRESHOLD = 10
FLOOD_WINDOW_MINUTES = 10
#: An alarm on the board longer than this is stale.
STALE_AFTER_HOURS = 24

#: A rule's id (the rules' own names: ``isolator_open``, ``au.gateway_offline`` …).
RuleId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][\w.:/-]*$")]
_INT4_MAX = 2**31 - 1
_Title = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00]*$")]


class AlarmNotFound(LookupError):
    """No such alarm, or not one the caller's scope reaches (the same answer for both)."""


class AlarmSubject(BaseModel):
    """What one rule watches: a site, one of its gateways, or one device of a gateway. A
    subject has at most one open alarm per rule."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rule_id: RuleId
    site_id: int = Field(ge=1, le=_INT4_MAX)
    gateway_id: GatewayId | None = None
    device: LocalDeviceId | None = Field(
        default=None, description="the device's local id on its gateway"
    )

    @model_validator(mode="after")
    def _device_on_a_gateway(self) -> AlarmSubject:
        if self.device is not None and self.gateway_id is None:
            raise ValueError("a device is named on its gateway: gateway_id is required")
        return self


class AlarmCondition(AlarmSubject):
    """A rule's finding for :meth:`~cloud.alerts.store.AlarmStore.raise_condition`."""

    region: Region
    severity: Severity
    account_id: AccountId | None = Field(
        default=None, description="the site's customer account (customers see its alarms)"
    )
    title: _Title
    detail: JsonObject = Field(default_factory=dict)


class Alarm(AlarmState):
    """One stored episode (:class:`AlarmState` plus what it is about)."""

    id: int
    region: Region
    rule_id: str
    site_id: int
    gateway_id: str | None
    device: str | None
    account_id: str | None
    title: str
    detail: dict[str, Any]
    first_raised_at: datetime
    last_seen_at: datetime

    @property
    def subject(self) -> AlarmSubject:
        return AlarmSubject(
            rule_id=self.rule_id,
            site_id=self.site_id,
            gateway_id=self.gateway_id,
            device=self.device,
        )


class HistoryEntry(BaseModel):
    """One transition of an alarm: who (None: the system), when, from and to which state."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: int
    alarm_id: int
    at: datetime
    action: ActionKind
    actor: str | None
    from_state: AlarmStatus
    to_state: AlarmStatus
    detail: dict[str, Any]


class AlarmPage(BaseModel):
    """Alarms newest first; ``next_cursor`` (None on the last page) continues the list."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    items: list[Alarm]
    next_cursor: int | None


class FloodWindow(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    start: datetime
    annunciated: int = Field(description="alarms that came up unacknowledged in the window")
    flood: bool


class FloodMetrics(BaseModel):
    """A region's operator queue over the day before ``until``, against business.md §4:
    ~6 annunciations an hour (12 at most), under 1 % of windows in flood, fewer than 5
    stale alarms, priorities ~80/15/5 % low/medium/high."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    region: Region
    since: datetime
    until: datetime
    window_minutes: int = FLOOD_WINDOW_MINUTES
    flood_threshold: int = FLOOD_THRESHOLD
    windows: list[FloodWindow] = Field(description="oldest first, each window_minutes long")
    annunciated: int
    per_hour: float
    peak: int = Field(description="the busiest window's annunciations")
    windows_in_flood: int
    flood_percent: float
    stale: int = Field(description=f"alarms on the board since over {STALE_AFTER_HOURS} h")
    priority_mix: dict[Severity, int] = Field(description="the day's annunciations by severity")


def alarm_changed_event(
    before: AlarmStatus, after: Alarm, action: Action, at: datetime, *, source: str = "alerts"
) -> Event:
    """The ``alert.*`` event of ``action`` taking an alarm from ``before`` to ``after``."""
    payload = AlarmChanged(
        alarm_id=after.id,
        action=action.kind,
        actor=action.actor,
        at=at,
        from_state=before,
        state=after.state,
        announce=after.state is AlarmStatus.UNACKNOWLEDGED
        and before is not AlarmStatus.UNACKNOWLEDGED,
        closed=after.state is AlarmStatus.NORMAL,
        rule_id=after.rule_id,
        severity=after.severity,
        site_id=after.site_id,
        gateway_id=after.gateway_id,
        device=after.device,
        account_id=after.account_id,
        title=after.title,
        detail=after.detail,
        active=after.active,
        count=after.count,
        escalation_level=after.escalation_level,
        first_raised_at=after.first_raised_at,
        shelved_until=after.shelved_until,
    )
    return Event(
        name=EVENT_NAMES[action.kind],
        region=after.region,
        source=source,
        occurred_at=at,
        payload=payload.model_dump(mode="json"),
    )
