"""The staged-rollout state machine (cloud/config/rollouts.py): pure, no sockets."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.config.rollouts import (
    TRANSITIONS,
    GatewayFacts,
    Refusal,
    RollbackStep,
    Rollout,
    act,
    advance,
    assign_waves,
    origin_of,
    overlapping,
    plan_rollback,
    plan_waves,
    pushed,
)
from cloud.config.rollouts import GatewayStep as Step

T0 = datetime(2026, 12, 1, tzinfo=UTC)
STATES = ("running", "paused", "aborted", "completed", "rolled_back")
ACTIONS = ("pause", "resume", "abort", "rollback")


def rollout(n: int = 10, waves: tuple[int, ...] = (2, 3, 5), **over: object) -> Rollout:
    ids = [f"gw-{i:02d}" for i in range(n)]
    steps = tuple(Step(g, w, base_version=1) for g, w in assign_waves(ids, waves))
    base = Rollout(1, "running", waves, steps, 0.25, "abort", 60.0)
    return replace(base, **over)  # type: ignore[arg-type]


def base_facts(r: Rollout, **over: GatewayFacts) -> dict[str, GatewayFacts]:
    facts = {g.gateway_id: GatewayFacts(latest_version=1, origin="base") for g in r.gateways}
    facts.update(over)
    return facts


def push_all(r: Rollout, facts: dict[str, GatewayFacts], now: datetime = T0) -> Rollout:
    """One round, every asked push recorded as version 2 (and the facts say so)."""
    tick = advance(r, facts, now)
    out = tick.rollout
    for g in tick.push:
        out = pushed(out, g, 2, now)
        facts[g] = GatewayFacts(latest_version=2, origin="rollout")
    return out


def report(facts: dict[str, GatewayFacts], gw: str, version: int, status: str) -> None:
    facts[gw] = replace(facts[gw], reported_version=version, reported_status=status)


# -- waves ----------------------------------------------------------------------------------
def test_waves_start_with_the_canary_and_grow_by_the_factor() -> None:
    assert plan_waves(100, 5) == (5, 10, 20, 40, 25)
    assert plan_waves(10, 3, sizes=[2, 4]) == (3, 2, 4, 1)
    assert plan_waves(2, 5) == (2,)


def test_waves_refuse_an_empty_target_and_bad_sizes() -> None:
    assert plan_waves(0, 1) == Refusal("empty_target", "the target resolves to no gateway")
    assert isinstance(plan_waves(5, 0), Refusal)
    assert isinstance(plan_waves(5, 1, sizes=[0]), Refusal)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 5000),
    st.integers(1, 100),
    st.floats(1.0, 10.0),
    st.none() | st.lists(st.integers(1, 500), min_size=1, max_size=5),
)
def test_waves_cover_the_target_exactly_once(
    total: int, canary: int, factor: float, sizes: list[int] | None
) -> None:
    waves = plan_waves(total, canary, factor=factor, sizes=sizes)
    assert not isinstance(waves, Refusal)
    assert sum(waves) == total
    assert waves[0] == min(canary, total)
    assert all(w >= 1 for w in waves)
    ids = [str(i) for i in range(total)]
    assigned = assign_waves(ids, waves)
    assert [g for g, _ in assigned] == ids


# -- transitions ----------------------------------------------------------------------------
@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("action", ACTIONS)
def test_every_action_in_every_state_is_either_the_table_or_a_refusal(
    state: str, action: str
) -> None:
    r = rollout(state=state)  # type: ignore[arg-type]
    out = act(r, action)  # type: ignore[arg-type]
    want = TRANSITIONS.get((state, action))  # type: ignore[call-overload]
    if want is None:
        assert isinstance(out, Refusal)
        assert out.code == "illegal_transition"
        assert state in out.reason
        assert action in out.reason
    else:
        assert isinstance(out, Rollout)
        assert out.state == want


def test_rolled_back_is_final_and_aborted_cannot_resume() -> None:
    assert all(isinstance(act(rollout(state="rolled_back"), a), Refusal) for a in ACTIONS)
    refused = act(rollout(state="aborted"), "resume")
    assert isinstance(refused, Refusal)
    assert "allowed: rollback" in refused.reason


# -- the loop's round -----------------------------------------------------------------------
def test_the_first_round_pushes_the_canary_only() -> None:
    r = rollout()
    tick = advance(r, base_facts(r), T0)
    assert tick.push == ("gw-00", "gw-01")
    assert tick.rollout.state == "running"


def test_a_canary_failing_above_the_threshold_aborts_before_the_next_wave() -> None:
    r = rollout()
    facts = base_facts(r)
    r = push_all(r, facts)
    report(facts, "gw-00", 2, "failed")  # 1 of 2 = 50 % > 25 %
    tick = advance(r, facts, T0 + timedelta(seconds=1))
    assert tick.rollout.state == "aborted"
    assert tick.event == "aborted"
    assert tick.push == ()
    assert tick.rollout.detail == "wave 0: 1 of 2 gateways failed (50% > 25%)"
    assert [g.status for g in tick.rollout.gateways[:3]] == ["failed", "pending", "waiting"]


def test_failures_at_the_threshold_go_on_and_pause_when_asked_to() -> None:
    r = rollout(n=8, waves=(4, 4), on_failure="pause")
    facts = base_facts(r)
    r = push_all(r, facts)
    for g, s in zip(
        ("gw-00", "gw-01", "gw-02", "gw-03"),
        ("failed", "applied", "applied", "applied"),
        strict=True,
    ):
        report(facts, g, 2, s)
    tick = advance(r, facts, T0)
    assert tick.rollout.state == "running"  # 25 % is not above 25 %
    assert tick.push == ("gw-04", "gw-05", "gw-06", "gw-07")
    r = tick.rollout
    for g in tick.push:
        r = pushed(r, g, 2, T0)
        facts[g] = GatewayFacts(latest_version=2, origin="rollout")
    report(facts, "gw-04", 2, "failed")
    report(facts, "gw-05", 2, "failed")
    paused = advance(r, facts, T0).rollout
    assert paused.state == "paused"
    # resume accepts the failures seen so far: the same wave does not stop it again
    resumed = act(paused, "resume")
    assert isinstance(resumed, Rollout)
    for g in ("gw-06", "gw-07"):
        report(facts, g, 2, "applied")
    done = advance(resumed, facts, T0)
    assert done.rollout.state == "completed"


def test_a_silent_gateway_times_out_and_counts_as_failed_a_late_report_corrects_it() -> None:
    r = rollout(n=4, waves=(4,), failure_threshold=0.5)
    facts = base_facts(r)
    r = push_all(r, facts)
    for g in ("gw-00", "gw-01", "gw-02"):
        report(facts, g, 2, "applied")
    r = advance(r, facts, T0 + timedelta(seconds=61)).rollout
    assert r.step("gw-03").status == "timed_out"  # type: ignore[union-attr]
    assert r.state == "completed"  # 1 of 4 is not above 50 %
    report(facts, "gw-03", 2, "applied")
    assert advance(r, facts, T0).rollout.step("gw-03").status == "applied"  # type: ignore[union-attr]


def test_a_held_gateway_is_deferred_never_counted_and_pushed_once_released() -> None:
    r = rollout(n=3, waves=(2, 1))
    facts = base_facts(r)
    facts["gw-00"] = replace(facts["gw-00"], held=True)
    tick = advance(r, facts, T0)
    assert tick.push == ("gw-01",)
    assert tick.rollout.step("gw-00").status == "deferred"  # type: ignore[union-attr]
    r = tick.rollout
    r = pushed(r, "gw-01", 2, T0)
    facts["gw-01"] = GatewayFacts(latest_version=2, origin="rollout")
    report(facts, "gw-01", 2, "applied")
    # the canary is decided without the held gateway: the next wave goes, and far past
    # any timeout the held gateway is neither failed nor skipped
    tick = advance(r, facts, T0 + timedelta(days=1))
    assert tick.push == ("gw-02",)
    assert tick.rollout.step("gw-00").status == "deferred"  # type: ignore[union-attr]
    r = pushed(tick.rollout, "gw-02", 2, T0)
    facts["gw-02"] = GatewayFacts(
        latest_version=2, origin="rollout", reported_version=2, reported_status="applied"
    )
    assert advance(r, facts, T0).rollout.state == "running"  # waits for the hold
    facts["gw-00"] = replace(facts["gw-00"], held=False)
    assert advance(r, facts, T0).push == ("gw-00",)


def test_a_gateway_changed_since_creation_is_skipped_the_later_change_wins() -> None:
    r = rollout(n=2, waves=(2,))
    facts = base_facts(
        r, **{"gw-01": GatewayFacts(latest_version=5, origin="other", latest_by="tech:ana")}
    )
    tick = advance(r, facts, T0)
    assert tick.push == ("gw-00",)
    skipped = tick.rollout.step("gw-01")
    assert skipped is not None
    assert skipped.status == "skipped"
    assert skipped.detail == "changed since the rollout was created (version 5 by tech:ana)"


def test_a_re_signed_base_is_not_a_change() -> None:
    r = rollout(n=1, waves=(1,))
    facts = {"gw-00": GatewayFacts(latest_version=3, origin="base")}
    assert advance(r, facts, T0).push == ("gw-00",)


def test_a_newer_version_reported_first_supersedes_ours_without_failing_the_wave() -> None:
    r = rollout(n=2, waves=(2,), failure_threshold=0.0)
    facts = base_facts(r)
    r = push_all(r, facts)
    report(facts, "gw-00", 3, "applied")
    report(facts, "gw-01", 2, "applied")
    out = advance(r, facts, T0).rollout
    assert out.step("gw-00").status == "superseded"  # type: ignore[union-attr]
    assert out.state == "completed"


def test_a_refused_push_is_skipped_with_the_reason() -> None:
    r = pushed(rollout(n=1, waves=(1,)), "gw-00", None, T0, refused="v_ref: 300 is out of range")
    assert r.gateways[0].status == "skipped"
    assert r.gateways[0].detail == "refused: v_ref: 300 is out of range"


def test_a_paused_rollout_records_reports_but_pushes_nothing() -> None:
    r = rollout()
    facts = base_facts(r)
    r = push_all(r, facts)
    paused = act(r, "pause")
    assert isinstance(paused, Rollout)
    report(facts, "gw-00", 2, "applied")
    report(facts, "gw-01", 2, "applied")
    tick = advance(paused, facts, T0)
    assert tick.push == ()
    assert [g.status for g in tick.rollout.gateways[:2]] == ["applied", "applied"]


# -- rollback and precedence ------------------------------------------------------------------
def test_rollback_restores_the_base_only_where_the_config_is_still_the_rollouts() -> None:
    r = rollout(n=5, waves=(3, 2))
    facts = base_facts(r)
    r = push_all(r, facts)
    facts["gw-01"] = GatewayFacts(latest_version=3, origin="other", latest_by="operator:bo")
    plan = plan_rollback(r, facts)
    assert plan == {
        "gw-00": 1,
        "gw-01": RollbackStep(
            "skipped", None, "changed since the rollout (version 3 by operator:bo)"
        ),
        "gw-02": 1,
    }  # the second wave was never reached: untouched


def test_rollback_skips_a_gateway_with_nothing_earlier() -> None:
    r = replace(rollout(n=1, waves=(1,)), gateways=(Step("gw-00", 0, base_version=None),))
    facts = {"gw-00": GatewayFacts()}
    r = push_all(r, facts)
    assert plan_rollback(r, facts) == {
        "gw-00": RollbackStep("skipped", None, "no earlier config to restore")
    }


def test_rollback_outcomes_follow_the_reports() -> None:
    r = rollout(n=1, waves=(1,))
    facts = base_facts(r)
    r = push_all(r, facts)
    r = replace(
        r,
        state="rolled_back",
        gateways=(replace(r.gateways[0], rollback=RollbackStep("pending", 3)),),
    )
    report(facts, "gw-00", 3, "applied")
    assert advance(r, facts, T0).rollout.gateways[0].rollback == RollbackStep("applied", 3)


def test_a_second_rollout_over_an_active_ones_gateways_is_refused() -> None:
    active = {7: ["gw-01", "gw-02"], 9: ["gw-05"]}
    assert overlapping(["gw-02", "gw-03"], active) == (7, ["gw-02"])
    assert overlapping(["gw-03"], active) is None


def test_origin_matches_by_number_then_by_settings() -> None:
    a, b = {"x": 1}, {"x": 2}
    assert origin_of(None, (None, None), (None, None), (None, None)) == "none"
    assert origin_of((4, b), (1, a), (4, b), (None, None)) == "rollout"
    assert origin_of((6, b), (1, a), (4, b), (None, None)) == "rollout"  # re-signed
    assert origin_of((6, a), (1, a), (4, b), (None, None)) == "base"
    assert origin_of((6, {"x": 9}), (1, a), (4, b), (None, None)) == "other"


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.sampled_from(["applied", "failed", "silent", "held", "changed"]), min_size=1, max_size=12
    ),
    st.sampled_from([0.0, 0.25, 0.5]),
)
def test_properties_of_any_run(outcomes: list[str], threshold: float) -> None:
    """Whatever the gateways do: never more pushes than gateways, a gateway pushed at most
    once, nothing pushed after a stop, and a rollout completes only with every gateway
    decided."""
    n = len(outcomes)
    waves = plan_waves(n, 1, factor=2.0)
    assert not isinstance(waves, Refusal)
    r = rollout(n=n, waves=waves, failure_threshold=threshold)
    facts = base_facts(r)
    for g, o in zip(r.gateways, outcomes, strict=True):
        if o == "held":
            facts[g.gateway_id] = replace(facts[g.gateway_id], held=True)
        if o == "changed":
            facts[g.gateway_id] = GatewayFacts(latest_version=9, origin="other")
    seen: list[str] = []
    now = T0
    for _ in range(3 * n + 3):
        tick = advance(r, facts, now)
        if tick.rollout.state != "running":
            assert tick.push == ()
        r = tick.rollout
        for g in tick.push:
            assert g not in seen
            seen.append(g)
            r = pushed(r, g, 2, now)
            o = outcomes[int(g[3:])]
            facts[g] = GatewayFacts(latest_version=2, origin="rollout")
            if o in ("applied", "failed"):
                report(facts, g, 2, o)
        now += timedelta(seconds=61)
        if r.state in ("aborted", "completed"):
            break
    if r.state == "completed":
        assert all(g.status not in ("waiting", "pending", "deferred") for g in r.gateways)
    if r.state == "aborted":
        assert r.detail.startswith("wave ")
