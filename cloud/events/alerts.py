"""The alerts service's events (``alert.*``): names, the payload and the vocabulary it is
written in, shared by producer and consumer like :mod:`cloud.events.types` (kept apart
so each service's catalogue grows in its own module). The alerts service builds them
(:func:`cloud.alerts.alarms.alarm_changed_event`); notify, dispatch and reports parse
them with :class:`AlarmChanged`, importing nothing of alerts.

Who a rule tells travels in the alarm's ``detail`` under :data:`NOTIFY_DETAIL_KEY` (the
rule's ``notify``: audiences and whether the customer gets a safety notice);
:func:`alarm_audiences` reads it, defaulting to the rules' default (operators only).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

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
    "NOTIFY_DETAIL_KEY",
    "ActionKind",
    "AlarmAudiences",
    "AlarmChanged",
    "AlarmStatus",
    "Audience",
    "Severity",
    "alarm_audiences",
]

#: The alerts service's events, one per recorded transition (a repeat raise of an alarm
#: whose condition is present is no transition: it only counts). ``alert.raised`` is a
#: new episode, or the condition back before the alarm closed; ``alert.cleared`` the
#: condition gone (``closed`` in the payload says whether that closed the alarm).
ALERT_RAISED = "alert.raised"
ALERT_CLEARED = "alert.cleared"
ALERT_ACKNOWLEDGED = "alert.acknowledged"
ALERT_SHELVED = "alert.shelved"
ALERT_UNSHELVED = "alert.unshelved"
ALERT_SUPPRESSED = "alert.suppressed"
ALERT_UNSUPPRESSED = "alert.unsuppressed"
ALERT_OUT_OF_SERVICE = "alert.out_of_service"
ALERT_RETURNED_TO_SERVICE = "alert.returned_to_service"
ALERT_ESCALATED = "alert.escalated"


class Severity(StrEnum):
    """An alarm's priority (the flood practice's mix: ~80 % low, 15 % medium, 5 % high);
    ``urgent`` is for safety (a DC isolator open in daylight): never shelved."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    URGENT = "urgent"


class AlarmStatus(StrEnum):
    NORMAL = "normal"
    UNACKNOWLEDGED = "unacknowledged"
    ACKNOWLEDGED = "acknowledged"
    RTN_UNACKNOWLEDGED = "rtn_unacknowledged"
    SHELVED = "shelved"
    SUPPRESSED = "suppressed"
    OUT_OF_SERVICE = "out_of_service"


class ActionKind(StrEnum):
    RAISE = "raise"
    CLEAR = "clear"
    ACKNOWLEDGE = "acknowledge"
    SHELVE = "shelve"
    UNSHELVE = "unshelve"
    SUPPRESS = "suppress"
    UNSUPPRESS = "unsuppress"
    REMOVE_FROM_SERVICE = "out_of_service"
    RETURN_TO_SERVICE = "return_to_service"
    ESCALATE = "escalate"


class AlarmChanged(BaseModel):
    """Payload of every ``alert.*`` event: the alarm after the transition, and the
    transition itself. ``announce`` is true when the alarm newly wants an operator (it
    came up unacknowledged from any other state): what notifications act on."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    alarm_id: int
    action: ActionKind
    actor: str | None
    at: datetime
    from_state: AlarmStatus
    state: AlarmStatus
    announce: bool
    closed: bool
    rule_id: str
    severity: Severity
    site_id: int
    gateway_id: str | None
    device: str | None
    account_id: str | None
    title: str
    detail: dict[str, Any]
    active: bool
    count: int
    escalation_level: int
    first_raised_at: datetime
    shelved_until: datetime | None


#: Who a rule tells (``cloud.alerts.rules.Audience``): the site's customer, the region's
#: operators, the region's MOSIEs.
Audience = Literal["customer", "operators", "mosie"]
#: The key of an alarm's ``detail`` under which the alerts service files its rule's
#: ``notify`` (``{"to": [...], "safety_notice": bool}``).
NOTIFY_DETAIL_KEY = "notify"


class AlarmAudiences(BaseModel):
    """A rule's ``notify`` as it travels in the alarm's detail."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    to: frozenset[Audience] = Field(default=frozenset({"operators"}), min_length=1)
    safety_notice: bool = False


def alarm_audiences(detail: Mapping[str, Any]) -> AlarmAudiences:
    """The audiences ``detail`` names, else (absent or malformed) operators only: an
    alarm is never lost for want of a list, and nobody outside the company hears of it
    unless its rule said so."""
    try:
        return AlarmAudiences.model_validate(detail.get(NOTIFY_DETAIL_KEY) or {})
    except ValidationError:
        return AlarmAudiences()
