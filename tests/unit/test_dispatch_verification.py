"""Verification by telemetry (cloud.dispatch.verification): figures are hand subtractions
of counter readings and hand divisions by the given expectation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cloud.dispatch.verification import VerificationPolicy, judge, produced_wh

RESOLVED = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
POLICY = VerificationPolicy(window=timedelta(minutes=30), min_fraction=0.5, min_expected_wh=200)


def _judge(**given: object) -> tuple[bool, str]:
    facts: dict[str, object] = {
        "resolved_at": RESOLVED,
        "now": RESOLVED + timedelta(minutes=45),
        "fault_cleared": True,
        "serious_alarms_active": 0,
        "produced": 1_500.0,
        "expected_wh": 2_000.0,
        "policy": POLICY,
    }
    verdict = judge(**{**facts, **given})  # type: ignore[arg-type]
    return verdict.verified, verdict.reason


def test_a_repair_that_held_is_verified() -> None:
    assert _judge() == (True, "fault cleared, production 75% of expectation")


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ({"fault_cleared": False}, "the fault has not cleared"),
        ({"serious_alarms_active": 1}, "1 serious alarm(s) active on the site"),
        ({"now": RESOLVED + timedelta(minutes=29)}, "watching the site until 01:30 UTC"),
        ({"produced": None}, "no production reading since the repair"),
        ({"expected_wh": 150.0}, "waiting for daylight to judge production"),
        ({"produced": 999.0}, "production 50% of expectation (needs 50%)"),
    ],
)
def test_not_yet(given: dict[str, object], reason: str) -> None:
    assert _judge(**given) == (False, reason)


def test_exactly_half_is_enough_and_a_site_without_inverters_is_judged_on_the_fault() -> None:
    assert _judge(produced=1_000.0)[0]
    assert _judge(expected_wh=None, produced=None) == (
        True, "fault cleared; no production to judge"
    )  # fmt: skip


def test_a_policy_that_does_not_wait_for_daylight_asks_for_some_production_at_night() -> None:
    never_waits = VerificationPolicy(window=timedelta(minutes=30), min_expected_wh=0)
    assert _judge(policy=never_waits, expected_wh=0.0, produced=12.0) == (
        True, "fault cleared, 12 Wh produced (none expected now)"
    )  # fmt: skip
    assert _judge(policy=never_waits, expected_wh=0.0, produced=0.0) == (
        False, "no production since the repair"
    )  # fmt: skip
    assert _judge(expected_wh=0.0) == (False, "waiting for daylight to judge production")


def test_production_is_the_counters_growth_and_a_reset_is_unknown() -> None:
    first = {"inv1": 10_000.0, "inv2": 500.0, "inv3": 7.0}
    last = {"inv1": 10_800.0, "inv2": 900.5}  # inv3 has not reported since
    assert produced_wh(first, last) == 800.0 + 400.5
    assert produced_wh(first, {"inv1": 9_000.0}) is None
    assert produced_wh(first, {}) is None


def test_a_policy_out_of_bounds_is_refused() -> None:
    with pytest.raises(ValueError, match="min_fraction"):
        VerificationPolicy(min_fraction=0)
    with pytest.raises(ValueError, match="window"):
        VerificationPolicy(window=timedelta(minutes=-1))
