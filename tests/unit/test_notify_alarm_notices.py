"""Which notifications an ``alert.*`` event makes (pure): who is told of what, and the
events that tell nobody."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cloud.events.alerts import AlarmChanged, alarm_audiences
from cloud.events.outbox import Event
from cloud.notify import Category, Severity, plan_alarm_notices

AT = datetime(2026, 7, 1, 10, 0, tzinfo=UTC)
ACCOUNT = "acc_" + "a" * 32


def _event(name: str, **changes: Any) -> tuple[Event, AlarmChanged]:
    payload: dict[str, Any] = {
        "alarm_id": 7,
        "action": "raise",
        "actor": None,
        "at": AT,
        "from_state": "normal",
        "state": "unacknowledged",
        "announce": True,
        "closed": False,
        "rule_id": "dc-isolator-open",
        "severity": "urgent",
        "site_id": 41,
        "gateway_id": "gw-1",
        "device": None,
        "account_id": ACCOUNT,
        "title": "DC isolator open in daylight",
        "detail": {"notify": {"to": ["customer", "operators", "mosie"], "safety_notice": True}},
        "active": True,
        "count": 1,
        "escalation_level": 0,
        "first_raised_at": AT,
        "shelved_until": None,
    } | changes
    alarm = AlarmChanged.model_validate(payload)
    event = Event(
        name=name,
        region="es",
        source="alerts",
        occurred_at=AT,
        payload=alarm.model_dump(mode="json"),
    )
    return event, alarm


def test_a_safety_rule_sends_the_customer_a_safety_notice_and_staff_a_safety_alarm() -> None:
    event, alarm = _event("alert.raised")
    staff, customer = plan_alarm_notices(event, alarm, AT)
    assert (customer.account_id, customer.notification.kind) == (ACCOUNT, "isolator_open")
    assert customer.notification.category is Category.SAFETY
    assert customer.notification.severity is Severity.URGENT
    assert customer.notification.ignores_quiet_hours
    assert (staff.roles, staff.notification.kind) == (("operator", "mosie"), "alarm_raised")
    assert staff.notification.category is Category.SAFETY
    # Ids follow the event: the same event makes the same ids, another event others.
    again = plan_alarm_notices(event, alarm, AT)
    assert [n.notification.id for n in again] == [staff.notification.id, customer.notification.id]
    other, _ = _event("alert.raised")
    assert plan_alarm_notices(other, alarm, AT)[0].notification.id != staff.notification.id


def test_a_raise_that_does_not_announce_tells_nobody() -> None:
    event, alarm = _event("alert.raised", announce=False, state="shelved")
    assert plan_alarm_notices(event, alarm, AT) == []


def test_a_clear_tells_the_customer_only_of_an_alarm_they_were_told_about() -> None:
    cleared = {"action": "clear", "announce": False, "active": False}
    event, alarm = _event("alert.cleared", from_state="acknowledged", state="normal", **cleared)
    [notice] = plan_alarm_notices(event, alarm, AT)
    assert (notice.audience, notice.notification.kind) == ("customer", "alarm_cleared")
    event, alarm = _event("alert.cleared", from_state="suppressed", state="normal", **cleared)
    assert plan_alarm_notices(event, alarm, AT) == []


def test_escalation_goes_to_the_regions_admins() -> None:
    event, alarm = _event("alert.escalated", action="escalate", announce=False, escalation_level=1)
    [notice] = plan_alarm_notices(event, alarm, AT)
    assert (notice.roles, notice.notification.category) == (("admin",), Category.ALARM)


def test_an_alarm_without_audiences_goes_to_operators_only() -> None:
    assert alarm_audiences({}).to == frozenset({"operators"})
    assert alarm_audiences({"notify": {"to": ["nobody"]}}).to == frozenset({"operators"})
    event, alarm = _event("alert.raised", detail={})
    [notice] = plan_alarm_notices(event, alarm, AT)
    assert (notice.roles, notice.notification.category) == (("operator",), Category.ALARM)
