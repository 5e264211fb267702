"""The ISA-18.2 alarm lifecycle (pure): the table, closing, dedupe, shelving bounds, masks
and escalation.

The properties drive random action sequences through :func:`apply` beside a reference
written here from business.md §4 (a few booleans per alarm), and compare after every
step: an action the reference calls illegal must be refused with the state unchanged.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud.alerts.alarms import Alarm
from cloud.alerts.lifecycle import (
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
)

BOUNDED = settings(
    max_examples=250,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
HOUR = timedelta(hours=1)
#: The policy of these tests, its bounds written out again below by hand.
POLICY = AlarmPolicy(
    max_shelve={Severity.HIGH: 2 * HOUR, Severity.MEDIUM: 6 * HOUR, Severity.LOW: 12 * HOUR},
    escalate_after={Severity.HIGH: 15 * MIN, Severity.MEDIUM: HOUR},
    max_escalation_level=2,
)
# Urgent (safety) alarms are never shelved: no entry in the policy, 0 h here.
MAX_SHELF_H = {Severity.URGENT: 0, Severity.HIGH: 2, Severity.MEDIUM: 6, Severity.LOW: 12}
S = AlarmStatus


def fresh(severity: Severity = Severity.HIGH) -> AlarmState:
    return AlarmState(severity=severity)


def run(state: AlarmState, *steps: tuple[Action, datetime]) -> AlarmState:
    for action, at in steps:
        state = apply(state, action, at, POLICY)
    return state


# -- examples -----------------------------------------------------------------------------


def test_acknowledging_a_normal_alarm_is_refused() -> None:
    with pytest.raises(IllegalTransition, match="cannot acknowledge an alarm in state normal"):
        apply(fresh(), Acknowledge("usr_op"), T0, POLICY)


def test_a_raise_opens_an_unacknowledged_episode() -> None:
    alarm = apply(fresh(), Raise(), T0, POLICY)
    assert (alarm.state, alarm.active, alarm.count) == (S.UNACKNOWLEDGED, True, 1)
    assert alarm.first_raised_at == alarm.last_seen_at == alarm.unacked_since == T0


def test_repeats_while_open_bump_the_count_and_last_seen_only() -> None:
    alarm = run(fresh(), (Raise(), T0), (Raise(), T0 + MIN), (Raise(), T0 + 2 * MIN))
    assert (alarm.state, alarm.count) == (S.UNACKNOWLEDGED, 3)
    assert (alarm.first_raised_at, alarm.last_seen_at) == (T0, T0 + 2 * MIN)


def test_acknowledged_then_cleared_closes() -> None:
    acked = run(fresh(), (Raise(), T0), (Acknowledge("usr_op"), T0 + MIN))
    assert (acked.state, acked.acked_by, acked.acked_at) == (S.ACKNOWLEDGED, "usr_op", T0 + MIN)
    closed = apply(acked, Clear(), T0 + 2 * MIN, POLICY)
    assert (closed.state, closed.closed_at, is_open(closed)) == (S.NORMAL, T0 + 2 * MIN, False)


def test_returned_to_normal_unacknowledged_closes_on_acknowledgement() -> None:
    rtn = run(fresh(), (Raise(), T0), (Clear(), T0 + MIN))
    assert (rtn.state, rtn.active, rtn.cleared_at) == (S.RTN_UNACKNOWLEDGED, False, T0 + MIN)
    closed = apply(rtn, Acknowledge("usr_op"), T0 + 2 * MIN, POLICY)
    assert (closed.state, closed.closed_at) == (S.NORMAL, T0 + 2 * MIN)


def test_the_condition_back_before_acknowledgement_is_the_same_annunciation() -> None:
    back = run(fresh(), (Raise(), T0), (Clear(), T0 + MIN), (Raise(), T0 + 2 * MIN))
    assert (back.state, back.count, back.unacked_since) == (S.UNACKNOWLEDGED, 2, T0)


def test_a_raise_after_closing_starts_a_new_episode() -> None:
    closed = run(fresh(), (Raise(), T0), (Clear(), T0 + MIN), (Acknowledge("usr_op"), T0 + MIN))
    again = apply(closed, Raise(), T0 + HOUR, POLICY)
    assert (again.state, again.count, again.first_raised_at) == (S.UNACKNOWLEDGED, 1, T0 + HOUR)
    assert (again.acked_by, again.cleared_at, again.closed_at) == (None, None, None)


def test_a_shelf_beyond_the_severitys_maximum_is_refused_naming_the_limit() -> None:
    raised = apply(fresh(Severity.HIGH), Raise(), T0, POLICY)
    with pytest.raises(ShelveRefused) as refused:
        apply(raised, Shelve(T0 + 2 * HOUR + MIN, "usr_op", "storm"), T0, POLICY)
    assert (refused.value.field, refused.value.limit) == ("until", "2:00:00")
    with pytest.raises(ShelveRefused, match="in the future"):
        apply(raised, Shelve(T0, "usr_op", "storm"), T0, POLICY)
    with pytest.raises(ShelveRefused, match="reason must say why"):
        apply(raised, Shelve(T0 + HOUR, "usr_op", "  "), T0, POLICY)
    with pytest.raises(ShelveRefused, match="timezone-aware"):
        apply(raised, Shelve(datetime(2026, 3, 1, 9), "usr_op", "storm"), T0, POLICY)


def test_a_shelf_ends_by_itself_and_the_alarm_comes_back_unacknowledged() -> None:
    shelved = run(
        fresh(),
        (Raise(), T0),
        (Acknowledge("usr_op"), T0 + MIN),
        (Shelve(T0 + HOUR, "usr_op", "known"), T0 + 2 * MIN),
    )
    assert (shelved.state, shelved.shelved_by, shelved.shelve_reason) == (
        S.SHELVED,
        "usr_op",
        "known",
    )
    assert settle(shelved, T0 + HOUR - MIN) == shelved
    back = settle(shelved, T0 + HOUR)
    assert (back.state, back.acked_by, back.unacked_since) == (S.UNACKNOWLEDGED, None, T0 + HOUR)
    assert back.shelved_until is None
    # Any action sees it settled: an operator's unshelve after the time is refused.
    with pytest.raises(IllegalTransition, match="state unacknowledged"):
        apply(shelved, Unshelve("usr_op"), T0 + 2 * HOUR, POLICY)


def test_a_shelved_alarm_whose_condition_went_away_closes_when_unshelved() -> None:
    shelved = run(
        fresh(),
        (Raise(), T0),
        (Shelve(T0 + HOUR, "usr_op", "known"), T0 + MIN),
        (Clear(), T0 + 2 * MIN),
    )
    assert (shelved.state, shelved.active) == (S.SHELVED, False)
    closed = apply(shelved, Unshelve("usr_op"), T0 + 3 * MIN, POLICY)
    assert (closed.state, closed.closed_at) == (S.NORMAL, T0 + 3 * MIN)


def test_an_alarm_raised_under_its_gateways_suppression_comes_up_when_it_lifts() -> None:
    hidden = apply(fresh(), Raise(suppressed=True), T0, POLICY)
    assert (hidden.state, hidden.unacked_since) == (S.SUPPRESSED, None)
    up = apply(hidden, Unsuppress(), T0 + HOUR, POLICY)
    assert (up.state, up.unacked_since) == (S.UNACKNOWLEDGED, T0 + HOUR)
    gone = run(hidden, (Clear(), T0 + MIN), (Unsuppress(), T0 + HOUR))
    assert (gone.state, gone.closed_at) == (S.NORMAL, T0 + HOUR)


def test_masks_stack_and_the_strongest_shows() -> None:
    alarm = run(
        fresh(),
        (Raise(), T0),
        (Shelve(T0 + 2 * HOUR, "usr_op", "known"), T0),
        (Suppress(), T0 + MIN),
        (RemoveFromService("usr_disp"), T0 + 2 * MIN),
    )
    assert (alarm.state, alarm.suppressed, alarm.out_of_service) == (S.OUT_OF_SERVICE, True, True)
    with pytest.raises(IllegalTransition, match="suppressed already"):
        apply(alarm, Suppress(), T0 + 3 * MIN, POLICY)
    alarm = apply(alarm, ReturnToService("usr_disp"), T0 + 3 * MIN, POLICY)
    assert alarm.state is S.SUPPRESSED
    alarm = apply(alarm, Unsuppress(), T0 + HOUR, POLICY)
    assert alarm.state is S.SHELVED  # its shelf still runs until T0 + 2 h
    alarm = apply(alarm, Suppress(), T0 + HOUR, POLICY)
    alarm = apply(alarm, Unsuppress(), T0 + 3 * HOUR, POLICY)  # the shelf ran out meanwhile
    assert (alarm.state, alarm.shelved_until) == (S.UNACKNOWLEDGED, None)


def test_apply_keeps_the_stored_alarms_class_and_identity() -> None:
    stored = Alarm(
        id=4,
        region="au",
        rule_id="isolator_open",
        site_id=5,
        gateway_id="gw-aaa",
        device="inv1",
        account_id=None,
        title="DC isolator open",
        detail={},
        severity=Severity.HIGH,
        state=S.UNACKNOWLEDGED,
        active=True,
        count=1,
        first_raised_at=T0,
        last_seen_at=T0,
        unacked_since=T0,
    )
    acked = apply(stored, Acknowledge("usr_op"), T0 + MIN, POLICY)
    assert isinstance(acked, Alarm)
    assert (acked.id, acked.rule_id, acked.state) == (4, "isolator_open", S.ACKNOWLEDGED)


# -- escalation ---------------------------------------------------------------------------


def test_escalation_is_due_one_timer_per_level_up_to_the_last() -> None:
    high = apply(fresh(Severity.HIGH), Raise(), T0, POLICY)  # 15 min per level
    timers = POLICY.escalate_after
    assert due_escalations([high], T0 + 14 * MIN, timers) == []
    assert due_escalations([high], T0 + 15 * MIN, timers) == [(high, 1)]
    assert due_escalations([high], T0 + 31 * MIN, timers) == [(high, 2)]
    assert due_escalations([high], T0 + 10 * HOUR, timers, max_level=2) == [(high, 2)]
    at_one = apply(high, Escalate(), T0 + 15 * MIN, POLICY)
    assert (at_one.escalation_level, at_one.escalated_at) == (1, T0 + 15 * MIN)
    assert due_escalations([at_one], T0 + 29 * MIN, timers) == []
    assert due_escalations([at_one], T0 + 30 * MIN, timers) == [(at_one, 2)]


def test_only_unacknowledged_alarms_with_a_timer_escalate() -> None:
    timers = POLICY.escalate_after
    acked = run(fresh(), (Raise(), T0), (Acknowledge("usr_op"), T0 + MIN))
    low = apply(fresh(Severity.LOW), Raise(), T0, POLICY)  # no timer for low here
    hidden = apply(fresh(), Raise(suppressed=True), T0, POLICY)
    assert due_escalations([acked, low, hidden], T0 + 10 * HOUR, timers) == []


def test_escalation_stops_at_the_policys_last_level() -> None:
    alarm = run(fresh(), (Raise(), T0), (Escalate(), T0 + HOUR), (Escalate(), T0 + HOUR))
    with pytest.raises(IllegalTransition, match="last escalation level"):
        apply(alarm, Escalate(), T0 + HOUR, POLICY)


# -- properties ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Ref:
    """The reference: what business.md §4 says, as a few facts about one episode."""

    severity: Severity
    open: bool = False
    active: bool = False
    acked: bool = False
    count: int = 0
    shelf_until: datetime | None = None
    shelved_at: datetime | None = None
    suppressed: bool = False
    oos: bool = False
    level: int = 0

    def shown(self, at: datetime) -> AlarmStatus:
        if not self.open:
            return S.NORMAL
        if self.oos:
            return S.OUT_OF_SERVICE
        if self.suppressed:
            return S.SUPPRESSED
        if self.shelf_until is not None and self.shelf_until > at:
            return S.SHELVED
        if self.active:
            return S.ACKNOWLEDGED if self.acked else S.UNACKNOWLEDGED
        return S.RTN_UNACKNOWLEDGED


def ref_lift(r: Ref, at: datetime) -> Ref:
    """Nothing left hiding it: condition present → unacknowledged anew, else closed."""
    if r.oos or r.suppressed or (r.shelf_until is not None and r.shelf_until > at):
        return r
    r = replace(r, shelf_until=None, shelved_at=None)
    return replace(r, acked=False, level=0) if r.active else replace(r, open=False)


def ref_settle(r: Ref, at: datetime) -> Ref:
    shelf_over = r.shelf_until is not None and r.shelf_until <= at
    if r.open and not r.oos and not r.suppressed and shelf_over:
        return ref_lift(replace(r, shelf_until=None, shelved_at=None), at)
    return r


def ref_step(r: Ref, action: Action, at: datetime) -> Ref | None:
    """The reference's next state, None when the action is illegal."""
    r = ref_settle(r, at)
    shown = r.shown(at)
    match action:
        case Raise() if not r.open:
            return Ref(
                r.severity,
                open=True,
                active=True,
                count=1,
                suppressed=action.suppressed,
                oos=action.out_of_service,
            )
        case Raise():
            return replace(r, active=True, count=r.count + 1)
        case Clear() if r.open and r.active:
            r = replace(r, active=False)
            visible = shown in (S.UNACKNOWLEDGED, S.ACKNOWLEDGED)
            return replace(r, open=False) if visible and r.acked else r
        case Acknowledge() if shown in (S.UNACKNOWLEDGED, S.RTN_UNACKNOWLEDGED):
            return replace(r, acked=True, open=r.active)
        case Shelve() if shown in (S.UNACKNOWLEDGED, S.ACKNOWLEDGED, S.RTN_UNACKNOWLEDGED):
            ahead = action.until - at
            if timedelta(0) < ahead <= timedelta(hours=MAX_SHELF_H[r.severity]):
                return replace(r, shelf_until=action.until, shelved_at=at)
            return None
        case Unshelve() if shown is S.SHELVED:
            return ref_lift(replace(r, shelf_until=None, shelved_at=None), at)
        case Suppress() if r.open and not r.suppressed:
            return replace(r, suppressed=True)
        case Unsuppress() if r.suppressed:
            return ref_lift(replace(r, suppressed=False), at)
        case RemoveFromService() if r.open and not r.oos:
            return replace(r, oos=True)
        case ReturnToService() if r.oos:
            return ref_lift(replace(r, oos=False), at)
        case Escalate() if shown is S.UNACKNOWLEDGED and r.level < 2:
            return replace(r, level=r.level + 1)
    return None


def _action(draw: st.DrawFn, at: datetime) -> Action:
    kind = draw(st.sampled_from(list(ActionKind)))
    match kind:
        case ActionKind.RAISE:
            masked = draw(st.sampled_from([(False, False)] * 4 + [(True, False), (False, True)]))
            return Raise(suppressed=masked[0], out_of_service=masked[1])
        case ActionKind.CLEAR:
            return Clear()
        case ActionKind.ACKNOWLEDGE:
            return Acknowledge("usr_op")
        case ActionKind.SHELVE:
            minutes = draw(st.integers(min_value=-30, max_value=14 * 60))
            return Shelve(at + minutes * MIN, "usr_op", "planned")
        case ActionKind.UNSHELVE:
            return Unshelve("usr_op")
        case ActionKind.SUPPRESS:
            return Suppress()
        case ActionKind.UNSUPPRESS:
            return Unsuppress()
        case ActionKind.REMOVE_FROM_SERVICE:
            return RemoveFromService("usr_disp")
        case ActionKind.RETURN_TO_SERVICE:
            return ReturnToService("usr_disp")
        case ActionKind.ESCALATE:
            return Escalate()
    raise AssertionError(kind)


@st.composite
def timed_actions(draw: st.DrawFn, max_size: int = 40) -> list[tuple[Action, datetime]]:
    """Actions at times moving forward by 0 minutes to 5 hours (shelves run out)."""
    at, steps = T0, []
    for _ in range(draw(st.integers(min_value=1, max_value=max_size))):
        at += draw(st.sampled_from([0, 1, 7, 30, 90, 300])) * MIN
        steps.append((_action(draw, at), at))
    return steps


def _matches(state: AlarmState, r: Ref, at: datetime) -> None:
    assert state.state is r.shown(at)
    assert (state.closed_at is not None) == (not r.open)
    if r.open:
        assert (state.active, state.count) == (r.active, r.count)
        assert (state.suppressed, state.out_of_service) == (r.suppressed, r.oos)
    if state.state is S.UNACKNOWLEDGED:
        assert state.escalation_level == r.level
        assert (state.acked_by, state.acked_at) == (None, None)


@BOUNDED
@given(severity=st.sampled_from(list(Severity)), steps=timed_actions())
def test_every_action_follows_the_table_and_illegal_ones_change_nothing(
    severity: Severity, steps: list[tuple[Action, datetime]]
) -> None:
    state, r = fresh(severity), Ref(severity)
    for action, at in steps:
        expected = ref_step(r, action, at)
        before = state.model_copy()
        if expected is None:
            with pytest.raises(IllegalTransition):
                apply(state, action, at, POLICY)
            assert state == before
            continue
        settled = settle(state, at)
        state = apply(state, action, at, POLICY)
        assert state.state in TRANSITIONS[(settled.state, action.kind)]
        _matches(state, expected, at)
        r = expected


@BOUNDED
@given(severity=st.sampled_from(list(Severity)), steps=timed_actions())
def test_shelving_is_always_bounded(
    severity: Severity, steps: list[tuple[Action, datetime]]
) -> None:
    state, r = fresh(severity), Ref(severity)
    for action, at in steps:
        expected = ref_step(r, action, at)
        if expected is None:
            continue
        state, r = apply(state, action, at, POLICY), expected
        if state.state is S.SHELVED:
            assert state.shelved_until is not None
            assert r.shelved_at is not None
            assert at < state.shelved_until
            assert state.shelved_until - r.shelved_at <= timedelta(hours=MAX_SHELF_H[severity])
        # However late the next look, a shelf never outlives its time.
        assert settle(state, at + timedelta(hours=12)).state is not S.SHELVED


@st.composite
def book_steps(draw: st.DrawFn) -> list[tuple[str, int, Action, datetime]]:
    """(subject, episode pick, action, at): rules raise and clear by subject, operators
    act on any episode ever opened (closed ones included)."""
    at, steps = T0, []
    for _ in range(draw(st.integers(min_value=1, max_value=60))):
        at += draw(st.sampled_from([0, 1, 30, 300])) * MIN
        subject = draw(st.sampled_from(["site5/isolator", "site5/gw-aaa/offline"]))
        steps.append((subject, draw(st.integers(0, 5)), _action(draw, at), at))
    return steps


@BOUNDED
@given(steps=book_steps())
def test_a_subject_never_has_two_open_alarms_and_closed_ones_stay_closed(
    steps: list[tuple[str, int, Action, datetime]],
) -> None:
    episodes: dict[str, list[AlarmState]] = {}
    raises_since_open: dict[str, int] = {}
    for subject, pick, action, at in steps:
        book = episodes.setdefault(subject, [])
        open_now = [e for e in book if is_open(settle(e, at))]
        if isinstance(action, Raise | Clear):  # a rule: by subject, to the open episode
            if open_now:
                i = book.index(open_now[0])
                try:
                    book[i] = apply(book[i], action, at, POLICY)
                except IllegalTransition:
                    assert isinstance(action, Clear)  # a raise on an open alarm always counts
            elif isinstance(action, Raise):
                book.append(apply(fresh(), action, at, POLICY))
                raises_since_open[subject] = 0
            if isinstance(action, Raise):
                raises_since_open[subject] += 1
        elif book:  # an operator: any episode, closed or not
            i = pick % len(book)
            closed = not is_open(settle(book[i], at))
            try:
                book[i] = apply(book[i], action, at, POLICY)
                assert not closed, f"{action} changed a closed alarm"
            except IllegalTransition:
                pass
        still_open = [e for e in book if is_open(settle(e, at))]
        assert len(still_open) <= 1
        if still_open:
            assert still_open[0].count == raises_since_open[subject]


@BOUNDED
@given(steps=timed_actions(), late=st.integers(min_value=0, max_value=600))
def test_due_escalations_only_name_unacknowledged_alarms_below_their_due_level(
    steps: list[tuple[Action, datetime]], late: int
) -> None:
    state = fresh(Severity.HIGH)
    for action, at in steps:
        with contextlib.suppress(IllegalTransition):
            state = apply(state, action, at, POLICY)
    now = steps[-1][1] + late * MIN
    for alarm, level in due_escalations([state], now, POLICY.escalate_after, max_level=2):
        assert alarm.state is S.UNACKNOWLEDGED
        assert alarm.unacked_since is not None
        waited = now - alarm.unacked_since
        assert alarm.escalation_level < level <= 2
        assert waited >= level * 15 * MIN
