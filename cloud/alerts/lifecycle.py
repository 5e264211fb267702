"""The alarm lifecycle of ISA-18.2 / IEC 62682 as pure functions: no I/O, no clock.

An alarm record is one **episode** of one rule on one subject (site, gateway, device): it
opens when the rule raises with no open alarm for that subject, and closes — state
``normal``, ``closed_at`` set — once there is nothing left to see or acknowledge. A raise
while it is open is a repeat: it bumps ``count`` and ``last_seen_at`` (dedupe); a raise
after it closed starts a new episode (a new record). So a subject has at most one open
alarm, whatever happens.

The states (``business.md`` §4):

* ``unacknowledged`` — condition present, nobody has acknowledged it;
* ``acknowledged`` — acknowledged, condition still present (closes when it clears);
* ``rtn_unacknowledged`` — returned to normal before anyone acknowledged it (closes on
  acknowledgement);
* ``shelved`` — hidden by an operator until ``shelved_until``, at most the severity's
  :attr:`AlarmPolicy.max_shelve` ahead, and unshelved by itself once that passes;
* ``suppressed`` — hidden by design (a child alarm while its gateway is offline);
* ``out_of_service`` — removed for maintenance (its site is under a technician's work);
* ``normal`` — closed (and the state of an alarm never raised).

The three hiding reasons are flags that may hold together (a shelved alarm whose gateway
goes offline while its site is under work); the state shows the strongest: out of
service, then suppressed, then shelved. The condition (``active``) is tracked underneath
all of them. When the last reason lifts, the alarm is judged afresh as ISA-18.2 says: the
condition present → ``unacknowledged`` again (a new annunciation: acknowledgement and
escalation start over); absent → closed.

:data:`TRANSITIONS` is the whole table: :func:`apply` refuses anything not in it with
:class:`IllegalTransition` and never changes the state it was given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import ClassVar, TypeVar, cast

from pydantic import BaseModel, ConfigDict, Field

from cloud.events.alerts import ActionKind, AlarmStatus, Severity

__all__ = [
    "ANNUNCIATED_STATES",
    "DEFAULT_POLICY",
    "MAX_SHELVE_REASON",
    "OPEN_STATES",
    "TRANSITIONS",
    "Acknowledge",
    "Action",
    "ActionKind",
    "AlarmPolicy",
    "AlarmState",
    "AlarmStatus",
    "Clear",
    "Escalate",
    "IllegalTransition",
    "Raise",
    "RemoveFromService",
    "ReturnToService",
    "Severity",
    "Shelve",
    "ShelveRefused",
    "Suppress",
    "Unshelve",
    "Unsuppress",
    "apply",
    "due_escalations",
    "is_open",
    "settle",
    "shelf_expired",
]


_S = AlarmStatus
#: Every state but closed.
OPEN_STATES: frozenset[AlarmStatus] = frozenset(_S) - {_S.NORMAL}
#: What an operator sees on the board (not hidden by a shelf, design or maintenance).
ANNUNCIATED_STATES: frozenset[AlarmStatus] = frozenset(
    {_S.UNACKNOWLEDGED, _S.ACKNOWLEDGED, _S.RTN_UNACKNOWLEDGED}
)
_HIDDEN = OPEN_STATES - ANNUNCIATED_STATES
#: Where judging an alarm afresh can land once the last hiding reason lifts.
_AFRESH = frozenset({_S.UNACKNOWLEDGED, _S.NORMAL})


def _rows(
    kind: ActionKind, sources: Iterable[AlarmStatus], targets: Iterable[AlarmStatus]
) -> dict[tuple[AlarmStatus, ActionKind], frozenset[AlarmStatus]]:
    return {(source, kind): frozenset(targets) for source in sources}


_A = ActionKind
#: (state, action) → the states it may lead to; a pair not here is illegal. Guards on
#: top (:class:`IllegalTransition` when they fail): ``clear`` needs the condition present;
#: ``suppress`` an alarm not suppressed yet, ``unsuppress`` a suppressed one (both matter
#: out of service, where the flag is not shown); ``shelve`` a time within the severity's
#: maximum (:class:`ShelveRefused`); ``escalate`` a level below the policy's last.
TRANSITIONS: Mapping[tuple[AlarmStatus, ActionKind], frozenset[AlarmStatus]] = {
    (_S.NORMAL, _A.RAISE): frozenset({_S.UNACKNOWLEDGED, _S.SUPPRESSED, _S.OUT_OF_SERVICE}),
    (_S.RTN_UNACKNOWLEDGED, _A.RAISE): frozenset({_S.UNACKNOWLEDGED}),
    **{(s, _A.RAISE): frozenset({s}) for s in OPEN_STATES - {_S.RTN_UNACKNOWLEDGED}},
    (_S.UNACKNOWLEDGED, _A.CLEAR): frozenset({_S.RTN_UNACKNOWLEDGED}),
    (_S.ACKNOWLEDGED, _A.CLEAR): frozenset({_S.NORMAL}),
    **{(s, _A.CLEAR): frozenset({s}) for s in _HIDDEN},
    (_S.UNACKNOWLEDGED, _A.ACKNOWLEDGE): frozenset({_S.ACKNOWLEDGED}),
    (_S.RTN_UNACKNOWLEDGED, _A.ACKNOWLEDGE): frozenset({_S.NORMAL}),
    **_rows(_A.SHELVE, ANNUNCIATED_STATES, {_S.SHELVED}),
    (_S.SHELVED, _A.UNSHELVE): _AFRESH,
    **_rows(_A.SUPPRESS, OPEN_STATES - {_S.SUPPRESSED, _S.OUT_OF_SERVICE}, {_S.SUPPRESSED}),
    (_S.OUT_OF_SERVICE, _A.SUPPRESS): frozenset({_S.OUT_OF_SERVICE}),
    (_S.SUPPRESSED, _A.UNSUPPRESS): _AFRESH | {_S.SHELVED},
    (_S.OUT_OF_SERVICE, _A.UNSUPPRESS): frozenset({_S.OUT_OF_SERVICE}),
    **_rows(_A.REMOVE_FROM_SERVICE, OPEN_STATES - {_S.OUT_OF_SERVICE}, {_S.OUT_OF_SERVICE}),
    (_S.OUT_OF_SERVICE, _A.RETURN_TO_SERVICE): _AFRESH | {_S.SHELVED, _S.SUPPRESSED},
    (_S.UNACKNOWLEDGED, _A.ESCALATE): frozenset({_S.UNACKNOWLEDGED}),
}


#: A shelf says why (ISA-18.2: shelving is an audited, justified operator action).
MAX_SHELVE_REASON = 500


class IllegalTransition(ValueError):
    """``action`` is not allowed in ``state`` (``str()`` says why, fit for an API answer)."""

    def __init__(self, state: AlarmStatus, action: ActionKind, reason: str = "") -> None:
        self.state, self.action = state, action
        why = f": {reason}" if reason else ""
        super().__init__(f"cannot {action.value} an alarm in state {state.value}{why}")


class ShelveRefused(IllegalTransition):
    """A shelf that is not bounded as the policy says: ``field``, ``limit`` name why."""

    def __init__(self, state: AlarmStatus, field: str, limit: str, reason: str) -> None:
        self.field, self.limit = field, limit
        super().__init__(state, ActionKind.SHELVE, f"{field} {reason} (limit {limit})")


# -- actions ------------------------------------------------------------------------------
# ``actor`` is who acted: a user id, or None for the system (a rule, the clock, a gateway).


@dataclass(frozen=True, slots=True)
class Raise:
    """The rule found its condition present. For a new episode, the masks in force for
    the subject (its gateway offline, its site out of service) hide it from the start."""

    kind: ClassVar[ActionKind] = ActionKind.RAISE
    suppressed: bool = False
    out_of_service: bool = False

    @property
    def actor(self) -> str | None:
        return None


@dataclass(frozen=True, slots=True)
class Clear:
    """The rule found its condition gone."""

    kind: ClassVar[ActionKind] = ActionKind.CLEAR

    @property
    def actor(self) -> str | None:
        return None


@dataclass(frozen=True, slots=True)
class Acknowledge:
    kind: ClassVar[ActionKind] = ActionKind.ACKNOWLEDGE
    actor: str


@dataclass(frozen=True, slots=True)
class Shelve:
    """Hide the alarm until ``until`` (aware), at most the severity's maximum ahead,
    saying why (``reason``: 1 to :data:`MAX_SHELVE_REASON` characters)."""

    kind: ClassVar[ActionKind] = ActionKind.SHELVE
    until: datetime
    actor: str
    reason: str


@dataclass(frozen=True, slots=True)
class Unshelve:
    """An operator's (``actor``) or the end of the shelf's time (``actor`` None)."""

    kind: ClassVar[ActionKind] = ActionKind.UNSHELVE
    actor: str | None = None


@dataclass(frozen=True, slots=True)
class Suppress:
    """Suppressed by design (the alarm's gateway is offline)."""

    kind: ClassVar[ActionKind] = ActionKind.SUPPRESS

    @property
    def actor(self) -> str | None:
        return None


@dataclass(frozen=True, slots=True)
class Unsuppress:
    kind: ClassVar[ActionKind] = ActionKind.UNSUPPRESS

    @property
    def actor(self) -> str | None:
        return None


@dataclass(frozen=True, slots=True)
class RemoveFromService:
    """Out of service (its site is under a technician's work: dispatch says so)."""

    kind: ClassVar[ActionKind] = ActionKind.REMOVE_FROM_SERVICE
    actor: str | None = None


@dataclass(frozen=True, slots=True)
class ReturnToService:
    kind: ClassVar[ActionKind] = ActionKind.RETURN_TO_SERVICE
    actor: str | None = None


@dataclass(frozen=True, slots=True)
class Escalate:
    """Unacknowledged past the severity's timer: the next tier (level + 1)."""

    kind: ClassVar[ActionKind] = ActionKind.ESCALATE

    @property
    def actor(self) -> str | None:
        return None


Action = (
    Raise
    | Clear
    | Acknowledge
    | Shelve
    | Unshelve
    | Suppress
    | Unsuppress
    | RemoveFromService
    | ReturnToService
    | Escalate
)


# -- state and policy ---------------------------------------------------------------------


def _hours(h: float) -> timedelta:
    return timedelta(hours=h)


class AlarmPolicy(BaseModel):
    """Per-severity bounds of the lifecycle. A severity missing from ``escalate_after``
    never escalates; one missing from ``max_shelve`` cannot be shelved."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: The longest shelf (ISA-18.2: shelving is always time-limited).
    max_shelve: dict[Severity, timedelta] = Field(
        default_factory=lambda: {
            Severity.HIGH: _hours(8),
            Severity.MEDIUM: _hours(24),
            Severity.LOW: _hours(72),
        }
    )
    #: Unacknowledged this long (per level) → the next escalation tier.
    escalate_after: dict[Severity, timedelta] = Field(
        default_factory=lambda: {
            Severity.URGENT: timedelta(minutes=5),
            Severity.HIGH: timedelta(minutes=15),
            Severity.MEDIUM: _hours(1),
            Severity.LOW: _hours(8),
        }
    )
    #: The last tier (1 on-call, 2 supervisor).
    max_escalation_level: int = Field(default=2, ge=0, le=10)


DEFAULT_POLICY = AlarmPolicy()


class AlarmState(BaseModel):
    """The lifecycle part of an alarm. ``AlarmState(severity=…)`` is one never raised;
    the stored alarm (:class:`cloud.alerts.alarms.Alarm`) extends it, and the functions
    here return the class they were given."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    severity: Severity
    state: AlarmStatus = AlarmStatus.NORMAL
    #: The condition is present (kept while the alarm is hidden).
    active: bool = False
    #: Raises deduplicated into this episode (the first included).
    count: int = Field(default=0, ge=0)
    first_raised_at: datetime | None = None
    last_seen_at: datetime | None = None
    #: When the condition last went away.
    cleared_at: datetime | None = None
    #: The acknowledgement of the current annunciation.
    acked_by: str | None = None
    acked_at: datetime | None = None
    #: Since when the current annunciation waits for acknowledgement (escalation's clock).
    unacked_since: datetime | None = None
    escalation_level: int = Field(default=0, ge=0)
    escalated_at: datetime | None = None
    shelved_until: datetime | None = None
    shelved_by: str | None = None
    shelve_reason: str | None = None
    suppressed: bool = False
    out_of_service: bool = False
    closed_at: datetime | None = None


S = TypeVar("S", bound=AlarmState)


def is_open(state: AlarmState) -> bool:
    return state.state is not AlarmStatus.NORMAL


def shelf_expired(state: AlarmState, at: datetime) -> bool:
    """A shelved alarm whose time is up at ``at``: :func:`settle` unshelves it."""
    return (
        state.state is AlarmStatus.SHELVED
        and state.shelved_until is not None
        and state.shelved_until <= at
    )


def settle(state: S, at: datetime) -> S:
    """``state`` as it stands at ``at``: a shelf whose time is up is unshelved (the
    system's :class:`Unshelve`). The store records that as a transition of its own."""
    if shelf_expired(state, at):
        return _unshelve(state, Unshelve(), at, DEFAULT_POLICY)
    return state


def apply(state: S, action: Action, at: datetime, policy: AlarmPolicy = DEFAULT_POLICY) -> S:
    """The state after ``action`` at ``at`` (aware), of the same class as ``state``.

    ``state`` is :func:`settle`\\ d at ``at`` first. :class:`IllegalTransition` (and
    ``state`` unchanged) for a pair not in :data:`TRANSITIONS` or a failed guard.
    """
    if at.tzinfo is None:
        raise ValueError("at must be timezone-aware")
    current = settle(state, at)
    key = (current.state, action.kind)
    if key not in TRANSITIONS:
        raise IllegalTransition(current.state, action.kind)
    _check_guard(current, action, at, policy)
    after = cast(S, _STEPS[action.kind](current, action, at, policy))
    assert after.state in TRANSITIONS[key], (key, after.state)
    return after


def due_escalations(
    alarms: Iterable[S],
    now: datetime,
    timers: Mapping[Severity, timedelta],
    *,
    max_level: int = DEFAULT_POLICY.max_escalation_level,
) -> list[tuple[S, int]]:
    """Unacknowledged alarms whose escalation is due at ``now``, with the level each
    should reach: level *n* is due ``n`` times the severity's timer after ``unacked_since``,
    capped at ``max_level``. Alarms in any other state, of a severity without a timer
    (or a timer ≤ 0), or already at their level, are left out; the order is kept."""
    due: list[tuple[S, int]] = []
    for alarm in alarms:
        timer = timers.get(alarm.severity)
        if alarm.state is not AlarmStatus.UNACKNOWLEDGED or alarm.unacked_since is None:
            continue
        if timer is None or timer <= timedelta(0):
            continue
        level = min(max_level, int((now - alarm.unacked_since) // timer))
        if level > alarm.escalation_level:
            due.append((alarm, level))
    return due


# -- guards and steps ---------------------------------------------------------------------


def _check_guard(state: AlarmState, action: Action, at: datetime, policy: AlarmPolicy) -> None:
    refuse = IllegalTransition
    if isinstance(action, Clear) and not state.active:
        raise refuse(state.state, action.kind, "its condition is already gone")
    if isinstance(action, Suppress) and state.suppressed:
        raise refuse(state.state, action.kind, "it is suppressed already")
    if isinstance(action, Unsuppress) and not state.suppressed:
        raise refuse(state.state, action.kind, "it is not suppressed")
    if isinstance(action, Escalate) and state.escalation_level >= policy.max_escalation_level:
        raise refuse(state.state, action.kind, "it is at the last escalation level")
    if isinstance(action, Shelve):
        _check_shelf(state, action, at, policy)


def _check_shelf(state: AlarmState, action: Shelve, at: datetime, policy: AlarmPolicy) -> None:
    longest = policy.max_shelve.get(state.severity)
    if action.until.tzinfo is None:
        raise ShelveRefused(state.state, "until", "timezone-aware", "must be timezone-aware")
    if longest is None:
        raise ShelveRefused(state.state, "severity", "none", f"{state.severity} cannot be shelved")
    if not 1 <= len(action.reason.strip()) <= MAX_SHELVE_REASON:
        raise ShelveRefused(
            state.state, "reason", f"1..{MAX_SHELVE_REASON} characters", "must say why"
        )
    if action.until <= at:
        raise ShelveRefused(state.state, "until", at.isoformat(), "must be in the future")
    if action.until - at > longest:
        raise ShelveRefused(
            state.state, "until", str(longest), f"is beyond the {state.severity} maximum"
        )


def _hidden_status(state: AlarmState, at: datetime) -> AlarmStatus | None:
    """The strongest reason hiding the alarm at ``at``, None when nothing does."""
    if state.out_of_service:
        return AlarmStatus.OUT_OF_SERVICE
    if state.suppressed:
        return AlarmStatus.SUPPRESSED
    if state.shelved_until is not None and state.shelved_until > at:
        return AlarmStatus.SHELVED
    return None


def _shown(state: S, at: datetime) -> S:
    """``state`` with the state its flags say (the same annunciation: nothing resets);
    acknowledged with the condition gone closes."""
    hidden = _hidden_status(state, at)
    if hidden is not None:
        status = hidden
    elif state.active:
        acked = state.acked_at is not None
        status = AlarmStatus.ACKNOWLEDGED if acked else AlarmStatus.UNACKNOWLEDGED
    elif state.acked_at is None:
        status = AlarmStatus.RTN_UNACKNOWLEDGED
    else:
        return state.model_copy(update={"state": AlarmStatus.NORMAL, "closed_at": at})
    return state.model_copy(update={"state": status})


def _afresh(state: S, at: datetime) -> S:
    """After a hiding reason lifted: still hidden by another, or judged afresh (condition
    present → a new unacknowledged annunciation; absent → closed)."""
    hidden = _hidden_status(state, at)
    if hidden is not None:
        return state.model_copy(update={"state": hidden})
    no_shelf = {"shelved_until": None, "shelved_by": None, "shelve_reason": None}
    if not state.active:
        return state.model_copy(update={**no_shelf, "state": AlarmStatus.NORMAL, "closed_at": at})
    return state.model_copy(
        update={
            **no_shelf,
            "state": AlarmStatus.UNACKNOWLEDGED,
            "acked_by": None,
            "acked_at": None,
            "unacked_since": at,
            "escalation_level": 0,
            "escalated_at": None,
        }
    )


def _raise(state: S, action: Action, at: datetime, policy: AlarmPolicy) -> S:
    assert isinstance(action, Raise)
    if state.state is AlarmStatus.NORMAL:
        return _new_episode(state, action, at)
    bumped = {"count": state.count + 1, "last_seen_at": at}
    if state.active:  # a repeat: dedupe
        return state.model_copy(update=bumped)
    # The condition is back before the alarm closed: the same annunciation goes on.
    return _shown(state.model_copy(update={**bumped, "active": True}), at)


def _new_episode(state: S, action: Raise, at: datetime) -> S:
    hidden = action.suppressed or action.out_of_service
    fresh = AlarmState(severity=state.severity)  # every lifecycle field at its start
    fields = {name: getattr(fresh, name) for name in AlarmState.model_fields}
    episode = state.model_copy(
        update={
            **fields,
            "active": True,
            "count": 1,
            "first_raised_at": at,
            "last_seen_at": at,
            "unacked_since": None if hidden else at,
            "suppressed": action.suppressed,
            "out_of_service": action.out_of_service,
        }
    )
    return _shown(episode, at)


def _clear(state: S, action: Action, at: datetime, policy: AlarmPolicy) -> S:
    return _shown(state.model_copy(update={"active": False, "cleared_at": at}), at)


def _acknowledge(state: S, action: Action, at: datetime, policy: AlarmPolicy) -> S:
    assert isinstance(action, Acknowledge)
    return _shown(state.model_copy(update={"acked_by": action.actor, "acked_at": at}), at)


def _shelve(state: S, action: Action, at: datetime, policy: AlarmPolicy) -> S:
    assert isinstance(action, Shelve)
    update = {
        "shelved_until": action.until,
        "shelved_by": action.actor,
        "shelve_reason": action.reason,
    }
    return _shown(state.model_copy(update=update), at)


def _unshelve(state: S, action: Action, at: datetime, policy: AlarmPolicy) -> S:
    update = {"shelved_until": None, "shelved_by": None, "shelve_reason": None}
    return _afresh(state.model_copy(update=update), at)


def _suppress(state: S, action: Action, at: datetime, policy: AlarmPolicy) -> S:
    return _shown(state.model_copy(update={"suppressed": True}), at)


def _unsuppress(state: S, action: Action, at: datetime, policy: AlarmPolicy) -> S:
    return _afresh(state.model_copy(update={"suppressed": False}), at)


def _remove_from_service(state: S, action: Action, at: datetime, policy: AlarmPolicy) -> S:
    return _shown(state.model_copy(update={"out_of_service": True}), at)


def _return_to_service(state: S, action: Action, at: datetime, policy: AlarmPolicy) -> S:
    return _afresh(state.model_copy(update={"out_of_service": False}), at)


def _escalate(state: S, action: Action, at: datetime, policy: AlarmPolicy) -> S:
    return state.model_copy(
        update={"escalation_level": state.escalation_level + 1, "escalated_at": at}
    )


_STEPS: dict[ActionKind, Callable[..., AlarmState]] = {
    ActionKind.RAISE: _raise,
    ActionKind.CLEAR: _clear,
    ActionKind.ACKNOWLEDGE: _acknowledge,
    ActionKind.SHELVE: _shelve,
    ActionKind.UNSHELVE: _unshelve,
    ActionKind.SUPPRESS: _suppress,
    ActionKind.UNSUPPRESS: _unsuppress,
    ActionKind.REMOVE_FROM_SERVICE: _remove_from_service,
    ActionKind.RETURN_TO_SERVICE: _return_to_service,
    ActionKind.ESCALATE: _escalate,
}
