"""Alert policies (cloud.dispatch.policies): which alarms become work orders, checked with
hand-made alarm histories."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cloud.alerts.rules import load_rules
from cloud.dispatch.policies import (
    PolicyBook,
    PolicyError,
    PolicyState,
    load_policies,
    parse_policies,
)
from cloud.events.alerts import ALERT_CLEARED, ALERT_RAISED, AlarmChanged
from contracts.topics import Region

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
H = timedelta(hours=1)
SITE, OTHER = 7, 8


def _alarm(alarm_id: int, rule: str, at: datetime, site: int = SITE) -> AlarmChanged:
    return AlarmChanged.model_validate(
        {
            "alarm_id": alarm_id, "action": "raise", "actor": None, "at": at,
            "from_state": "normal", "state": "unacknowledged", "announce": True,
            "closed": False, "rule_id": rule, "severity": "high", "site_id": site,
            "gateway_id": "gw-1", "device": None, "account_id": None, "title": rule,
            "detail": {}, "active": True, "count": 1, "escalation_level": 0,
            "first_raised_at": at, "shelved_until": None,
        }
    )  # fmt: skip


def _fired(requests: list[Any]) -> list[tuple[str, int, str, str, datetime]]:
    return [(r.policy, r.site_id, r.type.value, r.priority, r.at) for r in requests]


def test_the_shipped_policies_name_rules_every_region_has() -> None:
    policies = load_policies()
    for region in Region:
        known = {r.id for r in load_rules(region).enabled}
        assert {p.rule for p in policies.policies} <= known, region


def _trip(book: PolicyBook, alarm_id: int, at: datetime, site: int = SITE) -> list[Any]:
    """An isolator trip reset ten minutes later (raised, then cleared)."""
    asked = book.on_alarm(ALERT_RAISED, _alarm(alarm_id, "isolator-tripped", at, site), "au")
    later = at + timedelta(minutes=10)
    asked += book.on_alarm(ALERT_CLEARED, _alarm(alarm_id, "isolator-tripped", later, site), "au")
    return asked


def test_an_isolator_tripped_twice_in_a_day_on_one_site_asks_for_one_work_order() -> None:
    book = PolicyBook(load_policies())
    assert _trip(book, 1, T0) == []
    # Another site's trip counts for that site only.
    assert _trip(book, 2, T0, OTHER) == []
    second = _trip(book, 3, T0 + 5 * H)
    assert _fired(second) == [("isolator-tripped-twice", SITE, "isolator_fault", "P2", T0 + 5 * H)]
    assert (second[0].alarm_id, second[0].region) == (3, "au")
    # A third trip while that work order is open asks for nothing more …
    assert _trip(book, 4, T0 + 6 * H) == []
    # … and once it is finished, two more trips in a day ask again.
    book.released("isolator-tripped-twice", SITE)
    assert _trip(book, 5, T0 + 7 * H) == []
    assert _fired(_trip(book, 6, T0 + 8 * H))
    assert book.due(T0 + 20 * H) == []  # each trip was reset within minutes


def test_two_trips_more_than_a_day_apart_ask_for_nothing_a_trip_left_two_hours_does() -> None:
    book = PolicyBook(load_policies())
    assert _trip(book, 1, T0) == []
    assert _trip(book, 2, T0 + 24 * H + timedelta(seconds=1)) == []
    assert book.on_alarm(ALERT_RAISED, _alarm(3, "isolator-tripped", T0 + 50 * H), "au") == []
    assert _fired(book.due(T0 + 52 * H)) == [
        ("isolator-tripped-for-hours", SITE, "isolator_fault", "P2", T0 + 52 * H)
    ]


def test_no_production_still_active_after_three_days_asks_once_a_clear_cancels() -> None:
    book = PolicyBook(load_policies())
    raised = _alarm(10, "no-production-in-daylight", T0)
    assert book.on_alarm(ALERT_RAISED, raised, "es") == []
    assert book.due(T0 + 71 * H) == []
    # A restart in between: the watch is in the stored state.
    book = PolicyBook(
        load_policies(), PolicyState.model_validate_json(book.snapshot().model_dump_json())
    )
    assert _fired(book.due(T0 + 72 * H)) == [
        ("no-production-for-three-days", SITE, "production_shortfall", "P2", T0 + 72 * H)
    ]
    assert book.due(T0 + 100 * H) == []
    # Another episode that clears within the three days asks for nothing.
    book.released("no-production-for-three-days", SITE)
    book.on_alarm(ALERT_RAISED, _alarm(11, "no-production-in-daylight", T0 + 200 * H), "es")
    book.on_alarm(ALERT_CLEARED, _alarm(11, "no-production-in-daylight", T0 + 210 * H), "es")
    assert book.due(T0 + 300 * H) == []


def test_a_dc_isolator_open_in_daylight_is_a_p1_at_once() -> None:
    book = PolicyBook(load_policies())
    assert _fired(book.on_alarm(ALERT_RAISED, _alarm(1, "dc-isolator-open", T0), "au")) == [
        ("dc-isolator-open-in-daylight", SITE, "isolator_fault", "P1", T0)
    ]


@pytest.mark.parametrize(
    ("doc", "policy", "reason"),
    [
        ({"policies": [{"id": "x-1", "rule": "some-rule", "type": "inspection", "priority": "P3",
                        "title": "t"}]}, "x-1", "either count"),
        ({"policies": [{"id": "x-1", "rule": "some-rule", "type": "teleport", "priority": "P3",
                        "title": "t", "count": 1}]}, "x-1", "type"),
        ({"policies": [{"id": "x-1", "rule": "some-rule", "type": "inspection", "priority": "P3",
                        "title": "t", "count": 2}]}, "x-1", "within_h"),
        ({"policies": [{"id": "x-1", "rule": "some-rule", "type": "inspection", "priority": "P3",
                        "title": "t", "count": 1}] * 2}, "x-1", "duplicate"),
        ({"rules": []}, "-", "policies"),
    ],
)  # fmt: skip
def test_bad_policies_are_refused_naming_the_policy(doc: Any, policy: str, reason: str) -> None:
    with pytest.raises(PolicyError, match=reason) as caught:
        parse_policies(doc, file="p.yaml")
    assert (caught.value.file, caught.value.policy) == ("p.yaml", policy)
