"""Verification by telemetry: a resolved job is verified only when the site's own data
says the repair held.

Three things must hold at once (:func:`judge`):

1. the fault is gone — the alarm that raised the job has cleared (a job raised by hand
   has none) and no other alarm of the site at ``high`` or ``urgent`` is active;
2. the site has been watched long enough — ``window`` since the technician resolved it;
3. production is back within its expectation — the inverters' energy counters grew, over
   that time, by at least ``min_fraction`` of the site's clear-sky expectation for it.
   The counters are cumulative, so the first and last reading of each inverter since the
   resolve suffice. When too little was expected to judge (night, a winter dawn: below
   ``min_expected_wh``), the job waits for daylight rather than verify on nothing.
   A policy with ``min_expected_wh`` 0 never waits: with nothing expected it asks only
   that the inverters produced something since the repair.

Pure: the service gathers the facts (alarms from ``alert.*``, counters from ingest's
``telemetry.received``, the expectation from :mod:`cloud.adapters.solar`) and asks.
A site without inverters reporting (a meter or isolator job) is judged on 1 and 2 only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["Verdict", "VerificationPolicy", "judge", "produced_wh"]


@dataclass(frozen=True, slots=True)
class VerificationPolicy:
    """How long and how well a site must run after a repair (configurable per region)."""

    window: timedelta = timedelta(minutes=30)
    min_fraction: float = 0.5
    min_expected_wh: float = 200.0

    def __post_init__(self) -> None:
        if self.window < timedelta(0):
            raise ValueError("window must not be negative")
        if not 0 < self.min_fraction <= 1:
            raise ValueError("min_fraction must be in (0, 1]")
        if self.min_expected_wh < 0:
            raise ValueError("min_expected_wh must not be negative")


@dataclass(frozen=True, slots=True)
class Verdict:
    """``verified``, else why not yet (``reason``, for the job's page and its log)."""

    verified: bool
    reason: str
    #: Production as a fraction of the expectation, when it was judged.
    fraction: float | None = None


def produced_wh(first: Mapping[str, float], last: Mapping[str, float]) -> float | None:
    """Wh the inverters produced between their first and last counter readings (per
    device); None when no device has both, or a counter went back (replaced, reset)."""
    total, counted = 0.0, False
    for device, start in first.items():
        end = last.get(device)
        if end is None:
            continue
        if end < start:
            return None
        total += end - start
        counted = True
    return total if counted else None


def judge(
    *,
    resolved_at: datetime,
    now: datetime,
    fault_cleared: bool,
    serious_alarms_active: int,
    produced: float | None,
    expected_wh: float | None,
    policy: VerificationPolicy,
) -> Verdict:
    """Whether a job resolved at ``resolved_at`` can be verified at ``now``.
    ``produced``: Wh since the resolve (None: no inverter reported, or a counter reset);
    ``expected_wh``: the clear-sky expectation for the same time (None: no inverter
    expected at the site, so production is not judged)."""
    if not fault_cleared:
        return Verdict(False, "the fault has not cleared")
    if serious_alarms_active:
        return Verdict(False, f"{serious_alarms_active} serious alarm(s) active on the site")
    if now - resolved_at < policy.window:
        return Verdict(False, f"watching the site until {resolved_at + policy.window:%H:%M} UTC")
    if expected_wh is None:
        return Verdict(True, "fault cleared; no production to judge")
    if produced is None:
        return Verdict(False, "no production reading since the repair")
    if expected_wh < policy.min_expected_wh:
        return Verdict(False, "waiting for daylight to judge production")
    if expected_wh <= 0:
        # Nothing expected (night) and a policy that does not wait for daylight (the
        # demo's simulated sun is not the real one): the inverters must still have run.
        if produced <= 0:
            return Verdict(False, "no production since the repair")
        return Verdict(True, f"fault cleared, {produced:.0f} Wh produced (none expected now)")
    fraction = produced / expected_wh
    if fraction < policy.min_fraction:
        return Verdict(
            False,
            f"production {fraction:.0%} of expectation (needs {policy.min_fraction:.0%})",
            fraction,
        )
    return Verdict(True, f"fault cleared, production {fraction:.0%} of expectation", fraction)
