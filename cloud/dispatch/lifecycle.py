"""A work order's lifecycle as pure functions: no I/O, no clock.

The states (``business.md`` §3, ServiceNow's task states with Salesforce's on hold and
cannot complete):

* ``scheduled`` — wants a technician (new, declined, rebooked or reopened);
* ``assigned`` — offered to one MOSIE, who accepts or declines;
* ``accepted`` → ``en_route`` (travel started) → ``on_site`` (arrived);
* ``on_hold`` — left the site waiting for parts: the SLA clock is paused;
* ``cannot_complete`` — no access (the customer away, a locked gate): paused too, until an
  operator rebooks it;
* ``resolved`` — the MOSIE says it is fixed; only the site's telemetry can ``verify`` it;
* ``verified`` → ``closed`` — the system closes a job once it verified it (an operator
  may too), never an unverified one;
* ``cancelled`` — final: nothing leaves it.

A fault that returns within :data:`REOPEN_WINDOW` of verification ``reopen``\\ s a
verified or closed job: back to ``scheduled``, unassigned (assignment chooses again, with
the SLA timers started afresh), ``reopen_count`` + 1 — the same job, so the repeat visit
counts against first-time fix instead of looking like a new fault.

:data:`TRANSITIONS` is the whole table: (state, action) → the next state, the roles that
may take it and whether it must say why. :func:`transition` refuses anything else with a
:class:`Refusal` (a value, never an exception) and raises ``ValueError`` only for a
caller's own mistake (an unknown name, a naive time, a person without an id).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "ACTIVE_STATES",
    "HUMAN_ROLES",
    "INITIAL_STATE",
    "MAX_REASON",
    "ON_SITE_STATES",
    "REOPEN_WINDOW",
    "SLA_PAUSED_STATES",
    "SLA_RUNNING_STATES",
    "TRANSITIONS",
    "ActorRole",
    "AuditRecord",
    "OrderState",
    "Refusal",
    "RefusalCode",
    "Rule",
    "SlaTimer",
    "Transition",
    "TransitionContext",
    "WorkOrderAction",
    "WorkOrderStatus",
    "allowed_actions",
    "transition",
]


class WorkOrderStatus(StrEnum):
    SCHEDULED = "scheduled"
    ASSIGNED = "assigned"
    ACCEPTED = "accepted"
    EN_ROUTE = "en_route"
    ON_SITE = "on_site"
    ON_HOLD = "on_hold"
    CANNOT_COMPLETE = "cannot_complete"
    RESOLVED = "resolved"
    VERIFIED = "verified"
    CLOSED = "closed"
    CANCELLED = "cancelled"


class WorkOrderAction(StrEnum):
    # operator / admin
    SCHEDULE = "schedule"
    ASSIGN = "assign"
    REASSIGN = "reassign"
    CANCEL = "cancel"
    CLOSE = "close"
    # the MOSIE
    ACCEPT = "accept"
    DECLINE = "decline"
    START_TRAVEL = "start_travel"
    ARRIVE = "arrive"
    HOLD = "hold"
    CANNOT_COMPLETE = "cannot_complete"
    RESOLVE = "resolve"
    # the system
    VERIFY = "verify"
    REOPEN = "reopen"
    SLA = "sla"


class ActorRole(StrEnum):
    """Who acts: the identity service's roles (same values; dispatch does not import it)
    and ``system`` (telemetry verification, SLA timers). Support and customers have no
    transition: they are here so that their attempt is a refusal, not a crash."""

    ADMIN = "admin"
    OPERATOR = "operator"
    SUPPORT = "support"
    MOSIE = "mosie"
    CUSTOMER = "customer"
    SYSTEM = "system"


class SlaTimer(StrEnum):
    ARRIVE_BY = "arrive_by"
    RESOLVE_BY = "resolve_by"


HUMAN_ROLES: frozenset[ActorRole] = frozenset(ActorRole) - {ActorRole.SYSTEM}

_S = WorkOrderStatus
_A = WorkOrderAction

INITIAL_STATE = _S.SCHEDULED
#: Where a technician is at work on the site: its alarms are out of service, and remote
#: commands, config pushes and rollout waves to it wait. On hold and cannot complete mean
#: the technician has left; resolved hands the site back so telemetry can verify it.
ON_SITE_STATES: frozenset[WorkOrderStatus] = frozenset({_S.ON_SITE})
#: The SLA clock is paused: waiting for parts, or for the customer to give access.
SLA_PAUSED_STATES: frozenset[WorkOrderStatus] = frozenset({_S.ON_HOLD, _S.CANNOT_COMPLETE})
#: The SLA clock runs (arrive-by until arrival, resolve-by until resolved).
SLA_RUNNING_STATES: frozenset[WorkOrderStatus] = frozenset(
    {_S.SCHEDULED, _S.ASSIGNED, _S.ACCEPTED, _S.EN_ROUTE, _S.ON_SITE}
)
_BEFORE_ARRIVAL = SLA_RUNNING_STATES - ON_SITE_STATES
#: Work still to do on the job (verified and closed can still reopen; cancelled cannot).
ACTIVE_STATES: frozenset[WorkOrderStatus] = SLA_RUNNING_STATES | SLA_PAUSED_STATES | {_S.RESOLVED}
#: A fault back within this long after verification reopens the job; later, it is a new
#: work order (issue 17: "a fault that returns within a week").
REOPEN_WINDOW = timedelta(days=7)
#: A reason is a short sentence for the audit trail and the dispatch board.
MAX_REASON = 500


@dataclass(frozen=True, slots=True)
class Rule:
    """One row of the table: where the action leads, who may take it, and whether the
    audit record must say why."""

    to: WorkOrderStatus
    roles: frozenset[ActorRole]
    needs_reason: bool = False


_OPS = frozenset({ActorRole.OPERATOR, ActorRole.ADMIN})
_MOSIE = frozenset({ActorRole.MOSIE})
_SYSTEM = frozenset({ActorRole.SYSTEM})
#: Actions people take that the system may take too: assigning a new job to the best
#: eligible technician (auto-assignment), closing a job it verified by telemetry.
_OPS_OR_SYSTEM = _OPS | _SYSTEM


def _ops(to: WorkOrderStatus, *, reason: bool = False) -> Rule:
    return Rule(to, _OPS, reason)


def _mosie(to: WorkOrderStatus, *, reason: bool = False) -> Rule:
    return Rule(to, _MOSIE, reason)


def _system(to: WorkOrderStatus, *, reason: bool = False) -> Rule:
    return Rule(to, _SYSTEM, reason)


def _cancel_and_sla(state: WorkOrderStatus) -> dict[tuple[WorkOrderStatus, _A], Rule]:
    return {
        (state, _A.CANCEL): _ops(_S.CANCELLED, reason=True),
        (state, _A.SLA): _system(state),
    }


#: (state, action) → :class:`Rule`; a pair not here is refused. Guards on top:
#: a MOSIE acts only on a job assigned to them; ``assign``/``reassign`` name the
#: technician (``reassign`` another one); ``resolve`` needs the safety pre-start and then
#: the whole checklist done; ``sla`` names a timer still running and not yet breached;
#: ``reopen`` comes within :data:`REOPEN_WINDOW` of verification. Cancel is refused on
#: site: the technician may be mid-isolation, and the site's commands would be released
#: under them — they leave on-site state themselves (resolve, hold, cannot complete).
TRANSITIONS: Mapping[tuple[WorkOrderStatus, WorkOrderAction], Rule] = {
    # The system assigns a new job to the best eligible technician (auto-assignment).
    (_S.SCHEDULED, _A.ASSIGN): Rule(_S.ASSIGNED, _OPS_OR_SYSTEM),
    **_cancel_and_sla(_S.SCHEDULED),
    (_S.ASSIGNED, _A.ACCEPT): _mosie(_S.ACCEPTED),
    (_S.ASSIGNED, _A.DECLINE): _mosie(_S.SCHEDULED, reason=True),
    (_S.ASSIGNED, _A.REASSIGN): _ops(_S.ASSIGNED, reason=True),
    **_cancel_and_sla(_S.ASSIGNED),
    (_S.ACCEPTED, _A.START_TRAVEL): _mosie(_S.EN_ROUTE),
    (_S.ACCEPTED, _A.REASSIGN): _ops(_S.ASSIGNED, reason=True),
    **_cancel_and_sla(_S.ACCEPTED),
    (_S.EN_ROUTE, _A.ARRIVE): _mosie(_S.ON_SITE),
    (_S.EN_ROUTE, _A.CANNOT_COMPLETE): _mosie(_S.CANNOT_COMPLETE, reason=True),
    (_S.EN_ROUTE, _A.REASSIGN): _ops(_S.ASSIGNED, reason=True),
    **_cancel_and_sla(_S.EN_ROUTE),
    (_S.ON_SITE, _A.RESOLVE): _mosie(_S.RESOLVED),
    (_S.ON_SITE, _A.HOLD): _mosie(_S.ON_HOLD, reason=True),
    (_S.ON_SITE, _A.CANNOT_COMPLETE): _mosie(_S.CANNOT_COMPLETE, reason=True),
    (_S.ON_SITE, _A.SLA): _system(_S.ON_SITE),
    (_S.ON_HOLD, _A.SCHEDULE): _ops(_S.SCHEDULED),
    (_S.ON_HOLD, _A.ASSIGN): _ops(_S.ASSIGNED),
    (_S.ON_HOLD, _A.CANCEL): _ops(_S.CANCELLED, reason=True),
    (_S.CANNOT_COMPLETE, _A.SCHEDULE): _ops(_S.SCHEDULED),
    (_S.CANNOT_COMPLETE, _A.ASSIGN): _ops(_S.ASSIGNED),
    (_S.CANNOT_COMPLETE, _A.CANCEL): _ops(_S.CANCELLED, reason=True),
    # The evidence (fault cleared, production back for the configured time) is the reason.
    (_S.RESOLVED, _A.VERIFY): _system(_S.VERIFIED, reason=True),
    # Telemetry never confirmed the repair: another visit.
    (_S.RESOLVED, _A.SCHEDULE): _ops(_S.SCHEDULED, reason=True),
    (_S.RESOLVED, _A.CANCEL): _ops(_S.CANCELLED, reason=True),
    # The system closes a job once it verified it by telemetry; an operator still may.
    (_S.VERIFIED, _A.CLOSE): Rule(_S.CLOSED, _OPS_OR_SYSTEM),
    (_S.VERIFIED, _A.REOPEN): _system(_S.SCHEDULED, reason=True),
    (_S.CLOSED, _A.REOPEN): _system(_S.SCHEDULED, reason=True),
}

#: States where the job has a technician (``assignee`` is set).
_STAFFED = frozenset({_S.ASSIGNED, _S.ACCEPTED, _S.EN_ROUTE, _S.ON_SITE})

Reason = Annotated[str, Field(min_length=1, max_length=MAX_REASON)]
PersonId = Annotated[str, Field(min_length=1, max_length=64)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OrderState(_Frozen):
    """The lifecycle part of a work order (the stored order extends or carries it).

    ``assignee`` is the technician's id, of the same kind the caller passes as a MOSIE's
    ``actor_id`` (the employee number). ``visits`` counts arrivals (first-time fix: the
    job verified with one visit and no reopen)."""

    status: WorkOrderStatus = INITIAL_STATE
    assignee: PersonId | None = None
    visits: int = Field(default=0, ge=0)
    reopen_count: int = Field(default=0, ge=0)
    verified_at: AwareDatetime | None = None
    sla_breached: frozenset[SlaTimer] = frozenset()

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.status in _STAFFED and self.assignee is None:
            raise ValueError(f"a work order {self.status} needs an assignee")
        verified = self.status in {_S.VERIFIED, _S.CLOSED}
        if verified and self.verified_at is None:
            raise ValueError(f"a work order {self.status} needs verified_at")
        return self


class TransitionContext(_Frozen):
    """What the caller knows when it asks: the time (aware), who acts (``actor_id``: a
    person's id; None for the system), why (``reason``), the technician for ``assign`` /
    ``reassign``, the checklist's progress for ``resolve``, the breached timer for
    ``sla``, and the reopen window (configurable, :data:`REOPEN_WINDOW` by default)."""

    at: AwareDatetime
    actor_id: PersonId | None = None
    reason: Reason | None = None
    assignee: PersonId | None = None
    safety_complete: bool = False
    checklist_complete: bool = False
    sla_timer: SlaTimer | None = None
    reopen_window: timedelta = Field(default=REOPEN_WINDOW, gt=timedelta(0))


class AuditRecord(_Frozen):
    """One transition, as the audit trail keeps it: who (``actor_id`` None = the system,
    with ``actor_role``), when, from, to, the action and why; ``assignee`` is the
    technician after it."""

    at: AwareDatetime
    actor_id: str | None
    actor_role: ActorRole
    action: WorkOrderAction
    from_state: WorkOrderStatus
    to_state: WorkOrderStatus
    reason: str | None
    assignee: str | None


@dataclass(frozen=True, slots=True)
class Transition:
    """A transition that happened: the order after it, and its audit record."""

    order: OrderState
    audit: AuditRecord

    @property
    def to(self) -> WorkOrderStatus:
        return self.order.status


class RefusalCode(StrEnum):
    ILLEGAL_TRANSITION = "illegal_transition"
    ROLE_NOT_ALLOWED = "role_not_allowed"
    REASON_REQUIRED = "reason_required"
    NOT_ASSIGNEE = "not_assignee"
    ASSIGNEE_REQUIRED = "assignee_required"
    SAME_ASSIGNEE = "same_assignee"
    SAFETY_INCOMPLETE = "safety_incomplete"
    CHECKLIST_INCOMPLETE = "checklist_incomplete"
    SLA_TIMER_STOPPED = "sla_timer_stopped"
    SLA_ALREADY_BREACHED = "sla_already_breached"
    REOPEN_WINDOW_PASSED = "reopen_window_passed"


@dataclass(frozen=True, slots=True)
class Refusal:
    """A transition refused: the state stays as it was. ``code`` is for programs and, with
    ``params`` (the values the reason names beyond state, action and role: ``roles``,
    ``assignee``, ``timer``, ``window_days``), for a screen that words it in its reader's
    language; ``reason`` (and ``str()``) is English, for API answers and logs."""

    state: WorkOrderStatus
    action: WorkOrderAction
    role: ActorRole
    code: RefusalCode
    reason: str
    params: Mapping[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"cannot {self.action} a work order {self.state} as {self.role}: {self.reason}"


def allowed_actions(order: OrderState, role: ActorRole | str) -> frozenset[WorkOrderAction]:
    """The actions ``role`` may try on ``order`` by the table (guards may still refuse):
    what a screen offers."""
    role = ActorRole(role)
    return frozenset(
        action
        for (state, action), rule in TRANSITIONS.items()
        if state is order.status and role in rule.roles
    )


def transition(
    order_state: OrderState,
    action: WorkOrderAction | str,
    actor_role: ActorRole | str,
    context: TransitionContext,
) -> Transition | Refusal:
    """``action`` by ``actor_role`` on ``order_state``: the :class:`Transition` (the new
    order and its audit record) or a :class:`Refusal` saying why, ``order_state``
    unchanged either way.

    ``ValueError`` only for the caller's mistakes: an unknown action or role name, a
    person acting without ``context.actor_id``, ``sla`` without ``context.sla_timer``.
    """
    action, role = WorkOrderAction(action), ActorRole(actor_role)
    if role in HUMAN_ROLES and context.actor_id is None:
        raise ValueError(f"a {role} acts with an actor_id")
    if action is _A.SLA and context.sla_timer is None:
        raise ValueError("sla needs context.sla_timer")
    state = order_state.status

    def refuse(code: RefusalCode, reason: str, params: Mapping[str, str] | None = None) -> Refusal:
        return Refusal(state, action, role, code, reason, dict(params or {}))

    rule = TRANSITIONS.get((state, action))
    if rule is None:
        return refuse(RefusalCode.ILLEGAL_TRANSITION, f"{action} is not allowed from {state}")
    if role not in rule.roles:
        who = " or ".join(sorted(rule.roles))
        return refuse(
            RefusalCode.ROLE_NOT_ALLOWED, f"only {who} may {action} from {state}", {"roles": who}
        )
    if rule.needs_reason and context.reason is None:
        return refuse(RefusalCode.REASON_REQUIRED, f"{action} must say why")
    refusal = _guard(order_state, action, role, context)
    if refusal is not None:
        return refuse(*refusal)
    # Validated again, so that no step can leave an order its own model would refuse.
    changed = {**order_state.model_dump(), **_STEPS[action](order_state, context)}
    after = type(order_state).model_validate({**changed, "status": rule.to})
    audit = AuditRecord(
        at=context.at,
        actor_id=context.actor_id,
        actor_role=role,
        action=action,
        from_state=state,
        to_state=rule.to,
        reason=context.reason or _default_reason(action, context),
        assignee=after.assignee,
    )
    return Transition(after, audit)


# -- guards and steps ---------------------------------------------------------------------


#: A guard's refusal: its code, the English reason and the reason's parameters.
_Refused = tuple[RefusalCode, str, Mapping[str, str]]


def _guard(
    order: OrderState, action: WorkOrderAction, role: ActorRole, ctx: TransitionContext
) -> _Refused | None:
    """Why the table's row does not apply this time, or None."""
    if role is ActorRole.MOSIE and ctx.actor_id != order.assignee:
        return RefusalCode.NOT_ASSIGNEE, "the work order is not assigned to this technician", {}
    if action in {_A.ASSIGN, _A.REASSIGN} and ctx.assignee is None:
        return RefusalCode.ASSIGNEE_REQUIRED, f"{action} names the technician", {}
    if action is _A.REASSIGN and ctx.assignee == order.assignee:
        return (
            RefusalCode.SAME_ASSIGNEE,
            f"the work order is already with {order.assignee}",
            {"assignee": order.assignee or ""},
        )
    if action is _A.RESOLVE:
        return _resolve_guard(ctx)
    if action is _A.SLA:
        return _sla_guard(order, ctx)
    if action is _A.REOPEN:
        assert order.verified_at is not None  # OrderState's validator: verified or closed
        if ctx.at - order.verified_at > ctx.reopen_window:
            days = ctx.reopen_window / timedelta(days=1)
            return (
                RefusalCode.REOPEN_WINDOW_PASSED,
                f"verified more than {ctx.reopen_window} ago: raise a new work order",
                {"window_days": f"{days:g}"},
            )
    return None


def _resolve_guard(ctx: TransitionContext) -> _Refused | None:
    if not ctx.safety_complete:
        return RefusalCode.SAFETY_INCOMPLETE, "the safety pre-start is not complete", {}
    if not ctx.checklist_complete:
        return RefusalCode.CHECKLIST_INCOMPLETE, "the checklist is not complete", {}
    return None


def _sla_guard(order: OrderState, ctx: TransitionContext) -> _Refused | None:
    timer = ctx.sla_timer
    assert timer is not None  # checked by transition
    if timer is SlaTimer.ARRIVE_BY and order.status not in _BEFORE_ARRIVAL:
        return (
            RefusalCode.SLA_TIMER_STOPPED,
            "arrive-by stopped when the technician arrived",
            {"timer": timer.value},
        )
    if timer in order.sla_breached:
        return (
            RefusalCode.SLA_ALREADY_BREACHED,
            f"{timer} is breached already",
            {"timer": timer.value},
        )
    return None


def _default_reason(action: WorkOrderAction, ctx: TransitionContext) -> str | None:
    return f"{ctx.sla_timer} breached" if action is _A.SLA else None


_Update = dict[str, Any]


def _nothing(order: OrderState, ctx: TransitionContext) -> _Update:
    return {}


def _assign(order: OrderState, ctx: TransitionContext) -> _Update:
    return {"assignee": ctx.assignee}


def _unassign(order: OrderState, ctx: TransitionContext) -> _Update:
    return {"assignee": None}


def _arrive(order: OrderState, ctx: TransitionContext) -> _Update:
    return {"visits": order.visits + 1}


def _verify(order: OrderState, ctx: TransitionContext) -> _Update:
    return {"verified_at": ctx.at}


def _reopen(order: OrderState, ctx: TransitionContext) -> _Update:
    # Assignment chooses again and the SLA timers start afresh for the new visit.
    return {
        "assignee": None,
        "verified_at": None,
        "reopen_count": order.reopen_count + 1,
        "sla_breached": frozenset(),
    }


def _sla(order: OrderState, ctx: TransitionContext) -> _Update:
    assert ctx.sla_timer is not None  # checked by transition
    return {"sla_breached": order.sla_breached | {ctx.sla_timer}}


#: What each action changes besides the state.
_STEPS: Mapping[WorkOrderAction, Callable[[OrderState, TransitionContext], _Update]] = {
    _A.SCHEDULE: _unassign,
    _A.ASSIGN: _assign,
    _A.REASSIGN: _assign,
    _A.CANCEL: _nothing,
    _A.CLOSE: _nothing,
    _A.ACCEPT: _nothing,
    _A.DECLINE: _unassign,
    _A.START_TRAVEL: _nothing,
    _A.ARRIVE: _arrive,
    _A.HOLD: _nothing,
    _A.CANNOT_COMPLETE: _nothing,
    _A.RESOLVE: _nothing,
    _A.VERIFY: _verify,
    _A.REOPEN: _reopen,
    _A.SLA: _sla,
}
