"""Staged rollouts as a pure state machine: waves, automatic stop, resume, rollback.

No I/O and no clock: the service reads each gateway's facts (its latest version and
where it came from, what it last reported, whether a technician holds it), calls these
functions, and writes what they return in one transaction per rollout.

A rollout's **states** and the actions between them (anything else is refused as a
:class:`Refusal` naming the state and the action)::

    running ──pause──▶ paused ──resume──▶ running
    running ─(a wave's failure rate > threshold, on_failure=pause)─▶ paused
    running ─(… on_failure=abort)─▶ aborted
    running | paused ──abort──▶ aborted
    running ─(every wave decided, no gateway deferred)─▶ completed
    running | paused | aborted | completed ──rollback──▶ rolled_back

``aborted`` stops pushing for good (only rollback remains); ``rolled_back`` is final.
Reports keep updating the gateways' outcomes in every state.

A **gateway's** status in a rollout: ``waiting`` (its wave has not started) →
``pending`` (its version was signed and published; no report yet) → ``applied`` /
``failed`` (it reported that version) or ``timed_out`` (no report within the wave
timeout; a late report still corrects it) or ``superseded`` (it reported a newer version
first: someone else's change came after ours). ``deferred``: held by a technician on
site when its turn came; pushed in the first round after the hold lifts (in any later
wave), never counted against a wave meanwhile. ``skipped``: its config was changed by
someone else after the rollout was created (the latest accepted change wins), or the
push was refused before signing (``detail`` says which).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal

__all__ = [
    "ACTIVE_STATES",
    "DECIDED",
    "TRANSITIONS",
    "Action",
    "GatewayFacts",
    "GatewayStep",
    "Origin",
    "Refusal",
    "RollbackStep",
    "Rollout",
    "State",
    "Status",
    "Tick",
    "act",
    "advance",
    "assign_waves",
    "origin_of",
    "overlapping",
    "plan_rollback",
    "plan_waves",
    "pushed",
    "rolled_back",
    "wave_failure",
]

State = Literal["running", "paused", "aborted", "completed", "rolled_back"]
Action = Literal["pause", "resume", "abort", "rollback"]
Status = Literal[
    "waiting", "pending", "applied", "failed", "timed_out", "superseded", "deferred", "skipped"
]
#: Where a gateway's latest desired version came from, as the service sees it (a
#: re-signed version with the same settings counts as the one it re-signs).
Origin = Literal["none", "base", "rollout", "rollback", "other"]
OnFailure = Literal["pause", "abort"]

#: (state, action) → next state; every pair not listed is refused.
TRANSITIONS: Mapping[tuple[State, Action], State] = {
    ("running", "pause"): "paused",
    ("paused", "resume"): "running",
    ("running", "abort"): "aborted",
    ("paused", "abort"): "aborted",
    ("running", "rollback"): "rolled_back",
    ("paused", "rollback"): "rolled_back",
    ("aborted", "rollback"): "rolled_back",
    ("completed", "rollback"): "rolled_back",
}
#: States in which a rollout may still push: a second rollout must not overlap them.
ACTIVE_STATES: frozenset[str] = frozenset({"running", "paused"})
#: A gateway whose outcome in its wave is known.
DECIDED: frozenset[str] = frozenset({"applied", "failed", "timed_out", "superseded", "skipped"})
_FAILED: frozenset[str] = frozenset({"failed", "timed_out"})
#: Reached: a version of the rollout was signed for it.
_REACHED: frozenset[str] = frozenset({"pending", "applied", "failed", "timed_out", "superseded"})


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why an action or a request cannot apply; ``code`` is stable for callers."""

    code: str
    reason: str


@dataclass(frozen=True, slots=True)
class GatewayStep:
    """One gateway of a rollout. ``base_version``: its latest version when the rollout
    was created (what a rollback restores); ``version``: the one the rollout signed."""

    gateway_id: str
    wave: int
    status: Status = "waiting"
    base_version: int | None = None
    version: int | None = None
    pushed_at: datetime | None = None
    detail: str = ""
    rollback: RollbackStep | None = None


@dataclass(frozen=True, slots=True)
class RollbackStep:
    """What the rollback did on a reached gateway: ``pending`` / ``applied`` /
    ``failed`` for the new version carrying ``base_version``'s settings, or
    ``skipped`` (changed since by someone else, or nothing earlier to restore)."""

    status: Literal["pending", "applied", "failed", "skipped"]
    version: int | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Rollout:
    id: int
    state: State
    waves: tuple[int, ...]
    gateways: tuple[GatewayStep, ...]
    failure_threshold: float
    on_failure: OnFailure
    wave_timeout_s: float
    #: The wave now pushing (0: the canary).
    current_wave: int = 0
    #: Waves up to this one were accepted by the operator's resume despite their
    #: failures: they are not judged again (-1: none).
    accepted_through: int = -1
    detail: str = ""

    def step(self, gateway_id: str) -> GatewayStep | None:
        return next((g for g in self.gateways if g.gateway_id == gateway_id), None)

    def in_wave(self, wave: int) -> list[GatewayStep]:
        return [g for g in self.gateways if g.wave == wave]


@dataclass(frozen=True, slots=True)
class GatewayFacts:
    """What the config service knows of one gateway now."""

    latest_version: int | None = None
    #: Where ``latest_version`` came from (compared by settings, not by number).
    origin: Origin = "none"
    #: Who made the latest version (named in a skip).
    latest_by: str = ""
    reported_version: int | None = None
    reported_status: str | None = None
    held: bool = False


@dataclass(frozen=True, slots=True)
class Tick:
    """What one round decided: the rollout as it now is, the gateways to push now (the
    service signs their versions and records each with :func:`pushed`), and a log line
    when the state changed by itself."""

    rollout: Rollout
    push: tuple[str, ...] = ()
    event: str | None = None
    changed: tuple[str, ...] = field(default=())


# -- planning ------------------------------------------------------------------------------
def plan_waves(
    total: int, canary: int, *, factor: float = 2.0, sizes: Sequence[int] | None = None
) -> tuple[int, ...] | Refusal:
    """Wave sizes summing to ``total``: the canary first, then ``sizes`` as given (the
    last one repeated) or each wave ``factor`` times the one before; the last is cut."""
    if total < 1:
        return Refusal("empty_target", "the target resolves to no gateway")
    if canary < 1:
        return Refusal("bad_waves", "the canary needs at least 1 gateway")
    if sizes is not None and (not sizes or any(s < 1 for s in sizes)):
        return Refusal("bad_waves", "wave sizes must be at least 1")
    if sizes is None and factor < 1:
        return Refusal("bad_waves", "the growth factor must be at least 1")
    waves: list[int] = []
    left = total
    size = float(canary)
    while left > 0:
        if not waves:
            n = canary
        elif sizes is not None:
            n = sizes[min(len(waves) - 1, len(sizes) - 1)]
        else:
            size = max(size * factor, size + 1)
            n = int(size)
        n = min(n, left)
        waves.append(n)
        left -= n
    return tuple(waves)


def assign_waves(gateway_ids: Sequence[str], waves: Sequence[int]) -> list[tuple[str, int]]:
    """(gateway, wave) in the order given: the first ``waves[0]`` form the canary."""
    out: list[tuple[str, int]] = []
    it = iter(gateway_ids)
    for w, n in enumerate(waves):
        out.extend((next(it), w) for _ in range(n))
    return out


def overlapping(
    target: Sequence[str], active: Mapping[int, Sequence[str]]
) -> tuple[int, list[str]] | None:
    """The first active rollout (id → its gateways) sharing gateways with ``target``,
    and which: a second rollout over the same gateway is refused while the first may
    still push (it would revert the second's settings in a later wave)."""
    wanted = set(target)
    for rollout_id in sorted(active):
        shared = sorted(wanted.intersection(active[rollout_id]))
        if shared:
            return rollout_id, shared
    return None


# -- operator actions ----------------------------------------------------------------------
def act(rollout: Rollout, action: Action) -> Rollout | Refusal:
    """The rollout after ``action``, or why not. Resume accepts the failures seen so far
    (the waves up to the current one are not judged again). Rollback only changes the
    state here: :func:`plan_rollback` says what happens per gateway."""
    nxt = TRANSITIONS.get((rollout.state, action))
    if nxt is None:
        allowed = sorted(a for (s, a) in TRANSITIONS if s == rollout.state)
        hint = f"; allowed: {', '.join(allowed)}" if allowed else "; it is final"
        return Refusal(
            "illegal_transition", f"cannot {action} a rollout that is {rollout.state}{hint}"
        )
    if action == "resume":
        return replace(rollout, state=nxt, accepted_through=rollout.current_wave, detail="")
    return replace(rollout, state=nxt, detail=f"{action} by operator")


# -- the loop's round ----------------------------------------------------------------------
def _outcome(step: GatewayStep, facts: GatewayFacts, now: datetime, timeout_s: float) -> Status:
    """A reached gateway's outcome from its reports; unchanged when nothing new."""
    if step.version is None or step.status not in ("pending", "timed_out"):
        return step.status
    rv = facts.reported_version
    if rv is not None and rv == step.version and facts.reported_status in ("applied", "drifted"):
        return "applied"
    if rv is not None and rv == step.version and facts.reported_status == "failed":
        return "failed"
    if rv is not None and rv > step.version:
        return "superseded"
    waited = now - step.pushed_at if step.pushed_at is not None else None
    if step.status == "pending" and waited is not None and not facts.held:
        return "timed_out" if waited > timedelta(seconds=timeout_s) else step.status
    return step.status


def _rollback_outcome(rb: RollbackStep, facts: GatewayFacts) -> RollbackStep:
    if rb.status != "pending" or rb.version is None:
        return rb
    rv = facts.reported_version
    if rv == rb.version and facts.reported_status in ("applied", "drifted"):
        return replace(rb, status="applied")
    if rv == rb.version and facts.reported_status == "failed":
        return replace(rb, status="failed")
    return rb


def wave_failure(rollout: Rollout, wave: int) -> tuple[int, int]:
    """(failed or timed out, counted) of a wave: counted leaves out gateways skipped,
    deferred (held) or not reached; a pending one counts, so a wave fails as soon as its
    failures alone pass the threshold."""
    steps = [g for g in rollout.in_wave(wave) if g.status not in ("skipped", "deferred", "waiting")]
    return sum(g.status in _FAILED for g in steps), len(steps)


def _tripped(rollout: Rollout) -> str | None:
    for wave in range(rollout.accepted_through + 1, rollout.current_wave + 1):
        failed, counted = wave_failure(rollout, wave)
        if counted and failed / counted > rollout.failure_threshold:
            return (
                f"wave {wave}: {failed} of {counted} gateways failed"
                f" ({failed / counted:.0%} > {rollout.failure_threshold:.0%})"
            )
    return None


def advance(rollout: Rollout, facts: Mapping[str, GatewayFacts], now: datetime) -> Tick:
    """One round: outcomes from the reports, then (running only) the failure check, the
    next wave when the current one is decided, and the gateways to push now."""
    steps: list[GatewayStep] = []
    changed: list[str] = []
    for step in rollout.gateways:
        f = facts.get(step.gateway_id, GatewayFacts())
        new = replace(step, status=_outcome(step, f, now, rollout.wave_timeout_s))
        if step.rollback is not None:
            new = replace(new, rollback=_rollback_outcome(step.rollback, f))
        if new != step:
            changed.append(step.gateway_id)
        steps.append(new)
    r = replace(rollout, gateways=tuple(steps))
    if r.state != "running":
        return Tick(r, changed=tuple(changed))
    reason = _tripped(r)
    if reason is not None:
        stop: State = "paused" if r.on_failure == "pause" else "aborted"
        return Tick(replace(r, state=stop, detail=reason), event=stop, changed=tuple(changed))
    while _wave_decided(r, r.current_wave) and r.current_wave + 1 < len(r.waves):
        r = replace(r, current_wave=r.current_wave + 1)
    steps, push, skipped = _due(r, facts)
    r = replace(r, gateways=tuple(steps))
    changed.extend(skipped)
    last = r.current_wave + 1 >= len(r.waves)
    if last and not push and all(g.status in DECIDED for g in r.gateways):
        return Tick(replace(r, state="completed", detail=""), (), "completed", tuple(changed))
    return Tick(r, tuple(push), changed=tuple(changed))


def _wave_decided(rollout: Rollout, wave: int) -> bool:
    """Every gateway of the wave has its outcome, except those deferred by a hold."""
    return all(g.status in DECIDED or g.status == "deferred" for g in rollout.in_wave(wave))


def _due(
    rollout: Rollout, facts: Mapping[str, GatewayFacts]
) -> tuple[list[GatewayStep], list[str], list[str]]:
    """Gateways of the started waves still waiting or deferred: push, defer (held) or
    skip (changed by someone else since the rollout was created)."""
    steps: list[GatewayStep] = []
    push: list[str] = []
    changed: list[str] = []
    for g in rollout.gateways:
        if g.wave > rollout.current_wave or g.status not in ("waiting", "deferred"):
            steps.append(g)
            continue
        f = facts.get(g.gateway_id, GatewayFacts())
        if f.latest_version != g.base_version and f.origin != "base":
            by = f" by {f.latest_by}" if f.latest_by else ""
            new = replace(
                g,
                status="skipped",
                detail=f"changed since the rollout was created (version {f.latest_version}{by})",
            )
        elif f.held:
            new = replace(g, status="deferred", detail="held: a technician is on site")
        else:
            push.append(g.gateway_id)
            new = g
        if new != g:
            changed.append(g.gateway_id)
        steps.append(new)
    return steps, push, changed


def pushed(
    rollout: Rollout, gateway_id: str, version: int | None, now: datetime, refused: str = ""
) -> Rollout:
    """Record a push: ``pending`` with its version, or ``skipped`` when the config
    service refused to sign it (``refused`` names why)."""
    steps = []
    for g in rollout.gateways:
        if g.gateway_id == gateway_id:
            if refused:
                g = replace(g, status="skipped", detail=f"refused: {refused}")
            else:
                g = replace(g, status="pending", version=version, pushed_at=now, detail="")
        steps.append(g)
    return replace(rollout, gateways=tuple(steps))


# -- rollback ------------------------------------------------------------------------------
def plan_rollback(
    rollout: Rollout, facts: Mapping[str, GatewayFacts]
) -> dict[str, RollbackStep | int]:
    """Per reached gateway: the version whose settings to restore (its ``base_version``),
    or a skipped :class:`RollbackStep` saying why. Only where the gateway's latest config
    is still the rollout's: one changed since by a technician or an operator keeps that
    change (the latest accepted change wins). Gateways never reached are not touched."""
    plan: dict[str, RollbackStep | int] = {}
    for g in rollout.gateways:
        if g.status not in _REACHED or g.version is None:
            continue
        f = facts.get(g.gateway_id, GatewayFacts())
        if f.origin != "rollout":
            by = f" by {f.latest_by}" if f.latest_by else ""
            plan[g.gateway_id] = RollbackStep(
                "skipped", None, f"changed since the rollout (version {f.latest_version}{by})"
            )
        elif g.base_version is None:
            plan[g.gateway_id] = RollbackStep("skipped", None, "no earlier config to restore")
        else:
            plan[g.gateway_id] = g.base_version
    return plan


def rolled_back(rollout: Rollout, gateway_id: str, step: RollbackStep) -> Rollout:
    return replace(
        rollout,
        gateways=tuple(
            replace(g, rollback=step) if g.gateway_id == gateway_id else g for g in rollout.gateways
        ),
    )


def origin_of(
    latest: tuple[int, object] | None,
    base: tuple[int | None, object],
    ours: tuple[int | None, object],
    rollback: tuple[int | None, object],
) -> Origin:
    """Where a gateway's latest version came from: each argument is (version, settings)
    (settings: the profile and devices, compared as values). Matched by number first,
    then by settings, so a re-signed version (same settings, new number) counts as the
    one it re-signs; anything else is another party's change."""
    if latest is None:
        return "none"
    number, settings = latest
    candidates: list[tuple[Origin, tuple[int | None, object]]] = [
        ("rollback", rollback),
        ("rollout", ours),
        ("base", base),
    ]
    for origin, (version, _) in candidates:
        if version is not None and version == number:
            return origin
    for origin, (version, theirs) in candidates:
        if version is not None and theirs is not None and theirs == settings:
            return origin
    return "other"
