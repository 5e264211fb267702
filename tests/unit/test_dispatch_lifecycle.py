"""A work order's lifecycle (pure): the table by role, the guards, and random walks.

The allowed (state, action, role) triples are written out again below by hand from the
issue's list (issue 17, business.md §3), not read from the module's table: every triple
of the cross product is tried against them. The system assigns a new job
(auto-assignment) and closes a job once it verified it by telemetry (the acceptance:
"verified by telemetry and closes"); operators still may do both.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud.dispatch.checklists import ChecklistProgress, WorkOrderType, load_checklists
from cloud.dispatch.lifecycle import (
    ON_SITE_STATES,
    SLA_PAUSED_STATES,
    ActorRole,
    OrderState,
    Refusal,
    RefusalCode,
    SlaTimer,
    Transition,
    TransitionContext,
    WorkOrderAction,
    WorkOrderStatus,
    allowed_actions,
    transition,
)

BOUNDED = settings(
    max_examples=80,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
S, A, R = WorkOrderStatus, WorkOrderAction, ActorRole
MOSIE = "E1001"
OTHER_MOSIE = "E1002"

# The allowed moves, by hand: state, action, who, next state ("ops" = operator and admin).
ALLOWED_TEXT = """
scheduled        assign           ops     assigned
scheduled        assign           system  assigned
scheduled        cancel           ops     cancelled
scheduled        sla              system  scheduled
assigned         accept           mosie   accepted
assigned         decline          mosie   scheduled
assigned         reassign         ops     assigned
assigned         cancel           ops     cancelled
assigned         sla              system  assigned
accepted         start_travel     mosie   en_route
accepted         reassign         ops     assigned
accepted         cancel           ops     cancelled
accepted         sla              system  accepted
en_route         arrive           mosie   on_site
en_route         cannot_complete  mosie   cannot_complete
en_route         reassign         ops     assigned
en_route         cancel           ops     cancelled
en_route         sla              system  en_route
on_site          resolve          mosie   resolved
on_site          hold             mosie   on_hold
on_site          cannot_complete  mosie   cannot_complete
on_site          sla              system  on_site
on_hold          schedule         ops     scheduled
on_hold          assign           ops     assigned
on_hold          cancel           ops     cancelled
cannot_complete  schedule         ops     scheduled
cannot_complete  assign           ops     assigned
cannot_complete  cancel           ops     cancelled
resolved         verify           system  verified
resolved         schedule         ops     scheduled
resolved         cancel           ops     cancelled
verified         close            ops     closed
verified         close            system  closed
verified         reopen           system  scheduled
closed           reopen           system  scheduled
"""


def _allowed() -> dict[tuple[str, str, str], str]:
    table: dict[tuple[str, str, str], str] = {}
    for line in ALLOWED_TEXT.strip().splitlines():
        state, action, who, to = line.split()
        for role in ("operator", "admin") if who == "ops" else (who,):
            table[(state, action, role)] = to
    return table


ALLOWED = _allowed()
#: States in which the job has a technician (hold and cannot complete keep theirs).
WITH_ASSIGNEE = {"assigned", "accepted", "en_route", "on_site", "on_hold", "cannot_complete"}


def order_in(state: WorkOrderStatus, **fields: object) -> OrderState:
    base: dict[str, object] = {"status": state}
    if state in WITH_ASSIGNEE:
        base["assignee"] = MOSIE
    if state in {"verified", "closed"}:
        base["verified_at"] = T0
    return OrderState.model_validate({**base, **fields})


def actor(role: ActorRole) -> str | None:
    return {R.MOSIE: MOSIE, R.SYSTEM: None}.get(role, f"usr_{role}")


def willing(role: ActorRole, at: datetime = T0 + HOUR, **fields: object) -> TransitionContext:
    """A context that meets every guard: only the table can refuse."""
    base: dict[str, object] = {
        "at": at,
        "actor_id": actor(role),
        "reason": "the customer asked",
        "assignee": OTHER_MOSIE,
        "safety_complete": True,
        "checklist_complete": True,
        "sla_timer": SlaTimer.RESOLVE_BY,
    }
    return TransitionContext.model_validate({**base, **fields})


def moved(result: Transition | Refusal) -> Transition:
    assert isinstance(result, Transition), str(result)
    return result


def refused(result: Transition | Refusal, code: RefusalCode) -> Refusal:
    assert isinstance(result, Refusal), f"expected a refusal, got {result}"
    assert result.code is code, str(result)
    return result


# -- the whole cross product --------------------------------------------------------------


def test_every_state_action_role_triple_is_allowed_exactly_as_written() -> None:
    for state, action, role in itertools.product(S, A, R):
        before = order_in(state)
        result = transition(before, action, role, willing(role))
        expected = ALLOWED.get((state.value, action.value, role.value))
        if expected is None:
            assert isinstance(result, Refusal), (state, action, role, result)
            assert result.code in {RefusalCode.ILLEGAL_TRANSITION, RefusalCode.ROLE_NOT_ALLOWED}
            assert (result.state, result.action, result.role) == (state, action, role)
        else:
            assert moved(result).to.value == expected, (state, action, role)


def test_the_actions_a_screen_offers_are_the_allowed_ones() -> None:
    for state, role in itertools.product(S, R):
        offered = {a.value for a in allowed_actions(order_in(state), role)}
        assert offered == {a for (s, a, r) in ALLOWED if (s, r) == (state.value, role.value)}


def test_nothing_leaves_cancelled_and_support_or_customers_move_nothing() -> None:
    assert not any(s == "cancelled" for (s, _, _) in ALLOWED)
    assert not any(r in {"support", "customer"} for (_, _, r) in ALLOWED)
    for action in A:
        refused(
            transition(order_in(S.CANCELLED), action, R.ADMIN, willing(R.ADMIN)),
            RefusalCode.ILLEGAL_TRANSITION,
        )


def test_the_on_site_and_sla_paused_state_sets() -> None:
    assert {S.ON_SITE} == ON_SITE_STATES
    assert {S.ON_HOLD, S.CANNOT_COMPLETE} == SLA_PAUSED_STATES


# -- examples and guards ------------------------------------------------------------------


def test_a_job_runs_from_scheduled_to_closed_with_the_checklist_done() -> None:
    checklist = load_checklists()[WorkOrderType.ISOLATOR_FAULT]
    progress = ChecklistProgress(checklist=checklist)
    order = order_in(S.SCHEDULED)
    ops = willing(R.OPERATOR, assignee=MOSIE)
    order = moved(transition(order, A.ASSIGN, R.OPERATOR, ops)).order
    mosie = TransitionContext(at=T0 + HOUR, actor_id=MOSIE)
    for action in (A.ACCEPT, A.START_TRAVEL, A.ARRIVE):
        order = moved(transition(order, action, R.MOSIE, mosie)).order
    assert order.status in ON_SITE_STATES
    for task in checklist.tasks:
        ticked = progress.tick(task.id, MOSIE, T0 + 2 * HOUR, photo="photos/1.jpg")
        assert isinstance(ticked, ChecklistProgress), str(ticked)
        progress = ticked
    done = mosie.model_copy(
        update={"safety_complete": progress.safety_complete, "checklist_complete": True}
    )
    order = moved(transition(order, A.RESOLVE, R.MOSIE, done)).order
    evidence = TransitionContext(at=T0 + DAY, reason="isolator closed; production 96 % for 24 h")
    order = moved(transition(order, A.VERIFY, R.SYSTEM, evidence)).order
    closing = transition(order, A.CLOSE, R.OPERATOR, TransitionContext(at=T0 + DAY, actor_id="u"))
    assert moved(closing).order == OrderState(
        status=S.CLOSED, assignee=MOSIE, visits=1, verified_at=T0 + DAY
    )


def test_the_audit_record_says_who_when_from_to_and_why() -> None:
    ctx = TransitionContext(at=T0, actor_id=MOSIE, reason="no parts on the van")
    audit = moved(transition(order_in(S.ON_SITE), A.HOLD, R.MOSIE, ctx)).audit
    assert audit.model_dump() == {
        "at": T0,
        "actor_id": MOSIE,
        "actor_role": R.MOSIE,
        "action": A.HOLD,
        "from_state": S.ON_SITE,
        "to_state": S.ON_HOLD,
        "reason": "no parts on the van",
        "assignee": MOSIE,
    }


def test_a_job_cannot_close_before_verification() -> None:
    for state in (S.RESOLVED, S.ON_SITE, S.SCHEDULED):
        result = transition(order_in(state), A.CLOSE, R.ADMIN, willing(R.ADMIN))
        refused(result, RefusalCode.ILLEGAL_TRANSITION)


def test_verify_only_from_resolved_and_only_by_the_system() -> None:
    who = refused(
        transition(order_in(S.RESOLVED), A.VERIFY, R.ADMIN, willing(R.ADMIN)),
        RefusalCode.ROLE_NOT_ALLOWED,
    )
    assert who.params == {"roles": "system"}
    refused(
        transition(order_in(S.ON_SITE), A.VERIFY, R.SYSTEM, willing(R.SYSTEM)),
        RefusalCode.ILLEGAL_TRANSITION,
    )
    no_evidence = TransitionContext(at=T0)
    refused(
        transition(order_in(S.RESOLVED), A.VERIFY, R.SYSTEM, no_evidence),
        RefusalCode.REASON_REQUIRED,
    )


def test_a_mosie_acts_only_on_a_job_assigned_to_them() -> None:
    stranger = TransitionContext(at=T0, actor_id=OTHER_MOSIE)
    refused(transition(order_in(S.ASSIGNED), A.ACCEPT, R.MOSIE, stranger), RefusalCode.NOT_ASSIGNEE)


def test_a_decline_says_why_and_returns_the_job_unassigned_to_scheduled() -> None:
    silent = TransitionContext(at=T0, actor_id=MOSIE)
    refused(
        transition(order_in(S.ASSIGNED), A.DECLINE, R.MOSIE, silent), RefusalCode.REASON_REQUIRED
    )
    why = silent.model_copy(update={"reason": "off sick"})
    after = moved(transition(order_in(S.ASSIGNED), A.DECLINE, R.MOSIE, why)).order
    assert (after.status, after.assignee) == (S.SCHEDULED, None)


def test_resolve_needs_the_safety_pre_start_then_the_whole_checklist() -> None:
    ctx = TransitionContext(at=T0, actor_id=MOSIE, checklist_complete=True)
    refused(transition(order_in(S.ON_SITE), A.RESOLVE, R.MOSIE, ctx), RefusalCode.SAFETY_INCOMPLETE)
    ctx = TransitionContext(at=T0, actor_id=MOSIE, safety_complete=True)
    refused(
        transition(order_in(S.ON_SITE), A.RESOLVE, R.MOSIE, ctx),
        RefusalCode.CHECKLIST_INCOMPLETE,
    )


def test_nobody_cancels_a_job_while_the_technician_is_on_site() -> None:
    for role in (R.OPERATOR, R.ADMIN):
        refused(
            transition(order_in(S.ON_SITE), A.CANCEL, role, willing(role)),
            RefusalCode.ILLEGAL_TRANSITION,
        )


def test_assignment_names_a_technician_and_reassignment_another_one() -> None:
    ops = TransitionContext(at=T0, actor_id="usr_op", reason="closer to the site")
    refused(
        transition(order_in(S.SCHEDULED), A.ASSIGN, R.OPERATOR, ops),
        RefusalCode.ASSIGNEE_REQUIRED,
    )
    same = ops.model_copy(update={"assignee": MOSIE})
    kept = refused(
        transition(order_in(S.ACCEPTED), A.REASSIGN, R.OPERATOR, same),
        RefusalCode.SAME_ASSIGNEE,
    )
    assert kept.params == {"assignee": MOSIE}  # what a screen words in its language
    other = ops.model_copy(update={"assignee": OTHER_MOSIE})
    after = moved(transition(order_in(S.ACCEPTED), A.REASSIGN, R.OPERATOR, other)).order
    assert (after.status, after.assignee) == (S.ASSIGNED, OTHER_MOSIE)


def test_a_fault_back_within_a_week_reopens_to_scheduled_counting_the_reopen() -> None:
    for state in (S.VERIFIED, S.CLOSED):
        ctx = TransitionContext(at=T0 + 7 * DAY, reason="isolator tripped again")
        after = moved(transition(order_in(state, visits=1), A.REOPEN, R.SYSTEM, ctx)).order
        assert after == OrderState(status=S.SCHEDULED, visits=1, reopen_count=1)


def test_a_fault_back_after_the_window_is_a_new_job() -> None:
    ctx = TransitionContext(at=T0 + 7 * DAY + timedelta(seconds=1), reason="tripped again")
    late = refused(
        transition(order_in(S.CLOSED), A.REOPEN, R.SYSTEM, ctx),
        RefusalCode.REOPEN_WINDOW_PASSED,
    )
    assert late.params == {"window_days": "7"}
    wider = ctx.model_copy(update={"reopen_window": 14 * DAY})
    assert moved(transition(order_in(S.CLOSED), A.REOPEN, R.SYSTEM, wider)).to is S.SCHEDULED


def test_reopen_is_refused_from_every_other_state() -> None:
    ctx = TransitionContext(at=T0, reason="fault again")
    for state in set(S) - {S.VERIFIED, S.CLOSED}:
        refused(
            transition(order_in(state), A.REOPEN, R.SYSTEM, ctx), RefusalCode.ILLEGAL_TRANSITION
        )


def test_an_sla_breach_is_recorded_once_per_timer_and_arrive_by_stops_on_arrival() -> None:
    arrive = TransitionContext(at=T0, sla_timer=SlaTimer.ARRIVE_BY)
    first = moved(transition(order_in(S.EN_ROUTE), A.SLA, R.SYSTEM, arrive))
    assert (first.to, first.order.sla_breached) == (S.EN_ROUTE, frozenset({SlaTimer.ARRIVE_BY}))
    assert first.audit.reason == "arrive_by breached"
    refused(transition(first.order, A.SLA, R.SYSTEM, arrive), RefusalCode.SLA_ALREADY_BREACHED)
    refused(transition(order_in(S.ON_SITE), A.SLA, R.SYSTEM, arrive), RefusalCode.SLA_TIMER_STOPPED)
    refused(
        transition(order_in(S.ON_HOLD), A.SLA, R.SYSTEM, arrive), RefusalCode.ILLEGAL_TRANSITION
    )


def test_each_arrival_counts_a_visit() -> None:
    ctx = TransitionContext(at=T0, actor_id=MOSIE)
    after = moved(transition(order_in(S.EN_ROUTE, visits=1), A.ARRIVE, R.MOSIE, ctx)).order
    assert after.visits == 2


def test_a_callers_mistakes_raise_value_error() -> None:
    order = order_in(S.ASSIGNED)
    with pytest.raises(ValueError, match="'teleport' is not a valid WorkOrderAction"):
        transition(order, "teleport", R.MOSIE, willing(R.MOSIE))
    with pytest.raises(ValueError, match="not a valid ActorRole"):
        transition(order, A.ACCEPT, "janitor", willing(R.MOSIE))
    with pytest.raises(ValueError, match="a mosie acts with an actor_id"):
        transition(order, A.ACCEPT, R.MOSIE, TransitionContext(at=T0))
    with pytest.raises(ValueError, match=r"sla needs context\.sla_timer"):
        transition(order, A.SLA, R.SYSTEM, TransitionContext(at=T0))
    with pytest.raises(ValueError, match="timezone"):
        TransitionContext(at=datetime(2026, 3, 2, 9, 0))
    with pytest.raises(ValueError, match="needs an assignee"):
        OrderState(status=S.ON_SITE)


# -- random walks -------------------------------------------------------------------------

ANY_MOVE = st.sampled_from(sorted(itertools.product(A, R)))


def draw_context(
    data: st.DataObject, order: OrderState, role: ActorRole, at: datetime
) -> TransitionContext:
    """Mostly a context that meets the guards, else one that may or may not."""
    if data.draw(st.integers(0, 3)) > 0:
        other = OTHER_MOSIE if order.assignee == MOSIE else MOSIE
        fields = {"assignee": other, "sla_timer": data.draw(st.sampled_from(list(SlaTimer)))}
        if role is R.MOSIE:
            fields["actor_id"] = order.assignee or MOSIE
        return willing(role, at, **fields)
    mosie = data.draw(st.sampled_from([MOSIE, OTHER_MOSIE]))
    return TransitionContext(
        at=at,
        actor_id=None if role is R.SYSTEM else mosie if role is R.MOSIE else "usr_op",
        reason=data.draw(st.sampled_from([None, "because"])),
        assignee=data.draw(st.sampled_from([None, MOSIE, OTHER_MOSIE])),
        safety_complete=data.draw(st.booleans()),
        checklist_complete=data.draw(st.booleans()),
        sla_timer=data.draw(st.sampled_from(list(SlaTimer))),
    )


#: The way forward from each state, so that walks often get to the end and back.
FORWARD = {
    S.SCHEDULED: (A.ASSIGN, R.OPERATOR),
    S.ASSIGNED: (A.ACCEPT, R.MOSIE),
    S.ACCEPTED: (A.START_TRAVEL, R.MOSIE),
    S.EN_ROUTE: (A.ARRIVE, R.MOSIE),
    S.ON_SITE: (A.RESOLVE, R.MOSIE),
    S.ON_HOLD: (A.ASSIGN, R.ADMIN),
    S.CANNOT_COMPLETE: (A.SCHEDULE, R.OPERATOR),
    S.RESOLVED: (A.VERIFY, R.SYSTEM),
    S.VERIFIED: (A.CLOSE, R.OPERATOR),
    S.CLOSED: (A.REOPEN, R.SYSTEM),
}


def draw_move(data: st.DataObject, state: WorkOrderStatus) -> tuple[WorkOrderAction, ActorRole]:
    """Often the way forward, sometimes another move the reference allows from ``state``,
    sometimes any move at all."""
    here = sorted((a, r) for (s, a, r) in ALLOWED if s == state.value)
    pick = data.draw(st.integers(0, 4))
    if pick >= 2 and state in FORWARD:
        return FORWARD[state]
    if pick == 1 and here:
        action, role = data.draw(st.sampled_from(here))
        return A(action), R(role)
    return data.draw(ANY_MOVE)


@BOUNDED
@given(st.data())
def test_random_walks_keep_every_promise_of_the_lifecycle(data: st.DataObject) -> None:
    order, at = OrderState(), T0
    verified_since_scheduled = False
    for _ in range(data.draw(st.integers(0, 30))):
        if order.status is S.CANCELLED:
            break  # final: every move from it is refused (tested above, in the cross product)
        action, role = draw_move(data, order.status)
        at += data.draw(st.sampled_from([timedelta(0), HOUR, DAY, 8 * DAY]))
        ctx = draw_context(data, order, role, at)
        result = transition(order, action, role, ctx)
        triple = (order.status.value, action.value, role.value)
        if triple not in ALLOWED:
            assert isinstance(result, Refusal), (triple, result)
        if isinstance(result, Refusal):
            assert result.state is order.status
            continue
        assert result.to.value == ALLOWED[triple]
        assert (result.audit.from_state, result.audit.to_state) == (order.status, result.to)
        if action is A.REOPEN:
            assert order.status in {S.VERIFIED, S.CLOSED}
        if order.status in ON_SITE_STATES and result.to not in ON_SITE_STATES:
            assert role is R.MOSIE  # only the technician takes the site back out of work
        if result.to is S.VERIFIED:
            verified_since_scheduled = True
        if result.to is S.SCHEDULED:
            verified_since_scheduled = False
        if result.to is S.CLOSED:
            assert verified_since_scheduled
        if result.to is S.RESOLVED:
            assert ctx.safety_complete
            assert ctx.checklist_complete
        order = result.order
