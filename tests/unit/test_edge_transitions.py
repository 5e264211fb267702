"""Isolator transitions (pure): the state metric's change between two readings of a
device raises the event the profile names for the new value, with the reading."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from contracts.events import EventType, StateTransition
from contracts.messages import Reading
from device_profiles import builtin_profile
from device_profiles.schema import StateEvents
from edge_agent.transitions import StateWatch, state_transition

T0 = datetime(2026, 1, 10, 2, 0, tzinfo=UTC)
# The isolator's register map: OPEN 0, CLOSED 1, TRIPPED 2 (sim-isolator.yaml symbols).
OPEN, CLOSED, TRIPPED = 0.0, 1.0, 2.0


@pytest.fixture
def rule() -> StateEvents:
    rule = builtin_profile("sim-isolator").state_events
    assert rule is not None
    return rule


def _reading(state: float | None, s: int = 0, trips: float = 0.0) -> Reading:
    values = {"isolator_state_code": state, "isolator_trip_count": trips}
    return Reading(device="ISO-1", ts=T0 + timedelta(seconds=s), values=values)


@pytest.mark.parametrize(
    ("before", "after", "event"),
    [
        (CLOSED, OPEN, EventType.ISOLATOR_OPENED),
        (OPEN, CLOSED, EventType.ISOLATOR_CLOSED),
        (CLOSED, TRIPPED, EventType.ISOLATOR_TRIPPED),
        (TRIPPED, OPEN, EventType.ISOLATOR_OPENED),  # a reset leaves it open
    ],
)
def test_a_state_change_raises_the_event_of_the_new_state(
    rule: StateEvents, before: float, after: float, event: EventType
) -> None:
    current = _reading(after, s=5)
    raised = state_transition(rule, _reading(before), current)
    assert raised is not None
    assert (raised.type, raised.device) == (event, "ISO-1")
    assert raised.detail == StateTransition(
        metric="isolator_state_code", value=after, previous=before, ts=current.ts
    )


def test_the_transition_goes_on_the_wire_with_the_reading() -> None:
    rule = builtin_profile("sim-isolator").state_events
    assert rule is not None
    raised = state_transition(rule, _reading(CLOSED), _reading(TRIPPED, s=5, trips=1))
    assert raised is not None
    msg = raised.message(uuid.uuid4(), 7, T0 + timedelta(seconds=6))
    assert (msg.event, msg.severity, msg.device) == ("isolator_tripped", "critical", "ISO-1")
    assert msg.detail == {
        "metric": "isolator_state_code",
        "value": 2.0,
        "previous": 1.0,
        "ts": "2026-01-10T02:00:05.000Z",
    }


def test_no_change_no_event(rule: StateEvents) -> None:
    assert state_transition(rule, _reading(CLOSED), _reading(CLOSED, s=5, trips=3)) is None


def test_the_first_reading_after_start_only_sets_the_baseline(rule: StateEvents) -> None:
    assert state_transition(rule, None, _reading(TRIPPED)) is None


def test_a_reading_without_the_state_raises_nothing(rule: StateEvents) -> None:
    assert state_transition(rule, _reading(CLOSED), _reading(None, s=5)) is None
    assert state_transition(rule, _reading(None), _reading(OPEN, s=5)) is None


def test_a_value_the_profile_does_not_name_raises_nothing(rule: StateEvents) -> None:
    assert state_transition(rule, _reading(CLOSED), _reading(7.0, s=5)) is None


def test_the_watch_keeps_the_last_known_state_across_a_missing_value(rule: StateEvents) -> None:
    watch = StateWatch(rule)
    seen = [
        watch.observe(r)
        for r in (
            _reading(CLOSED, 0),  # start: baseline only
            _reading(CLOSED, 1),
            _reading(None, 2),  # not available: the baseline stays CLOSED
            _reading(TRIPPED, 3, trips=1),
            _reading(TRIPPED, 4, trips=1),
            _reading(OPEN, 5, trips=1),
        )
    ]
    assert [e.type if e else None for e in seen] == [
        None,
        None,
        None,
        EventType.ISOLATOR_TRIPPED,
        None,
        EventType.ISOLATOR_OPENED,
    ]
    tripped = seen[3]
    assert tripped is not None
    assert isinstance(tripped.detail, StateTransition)
    assert tripped.detail.previous == CLOSED
