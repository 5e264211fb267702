"""Dispatch's SLA timers (issue 17): due times on the business calendar, pauses, breaches.

Expected instants are counted by hand on the AU calendar (08:00-17:00 Monday-Friday, a
9-hour business day, NSW public holidays). The weeks used, Sydney time:

* Friday 2 October 2026 (AEST, +10) → the weekend, when DST starts (Sunday 4 October
  02:00 → 03:00) → Monday 5 October, Labour Day in NSW → Tuesday 6 October (AEDT, +11).
* Thursday 2 April 2026 (AEDT, +11) → Good Friday 3 April → DST ends Sunday 5 April
  (03:00 → 02:00) → Easter Monday 6 April → Tuesday 7 April (AEST, +10).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from cloud.calendars import builtin_calendar
from cloud.dispatch.lifecycle import SlaTimer
from cloud.dispatch.sla import (
    Clock,
    JobFacts,
    Pause,
    SlaPolicy,
    breaches,
    builtin_policy,
    deadline,
    due,
    due_for,
    elapsed,
    elapsed_business,
    remaining,
)
from contracts.topics import Region

SYDNEY = ZoneInfo("Australia/Sydney")
AU = builtin_calendar(Region.AU)
NSW = "AU-NSW"
H = timedelta(hours=1)
#: A test policy: P4 with a 10-business-hour arrive-by and a 2-business-day resolve-by.
POLICY = SlaPolicy.model_validate(
    {
        "default": {
            "P1": {"arrive_by": "4h", "resolve_by": "24h", "clock": "around_the_clock"},
            "P2": {"arrive_by": "1bd", "resolve_by": "3bd", "clock": "business"},
            "P3": {"arrive_by": "3bd", "resolve_by": "5bd", "clock": "business"},
            "P4": {"arrive_by": "10h", "resolve_by": "2bd", "clock": "business"},
        }
    }
)
FRIDAY_4PM = datetime(2026, 10, 2, 16, tzinfo=SYDNEY)


def sydney(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SYDNEY)


def p4_facts(**changes: object) -> JobFacts:
    fields: dict[str, object] = {
        "created_at": FRIDAY_4PM,
        "priority": "P4",
        "region": Region.AU,
        "jurisdiction": NSW,
    }
    return JobFacts.model_validate(fields | changes)


# -- the calendar the hand counts rely on ----------------------------------------------


def test_the_weeks_used_are_what_the_hand_counts_assume() -> None:
    assert AU.is_holiday(date(2026, 10, 5), NSW)  # Labour Day, NSW
    assert not AU.is_holiday(date(2026, 10, 6), NSW)
    assert AU.is_holiday(date(2026, 4, 3), NSW)  # Good Friday
    assert AU.is_holiday(date(2026, 4, 6), NSW)  # Easter Monday
    assert FRIDAY_4PM.utcoffset() == 10 * H
    assert sydney(2026, 10, 6, 17).utcoffset() == 11 * H
    assert AU.business_day_length(NSW) == 9 * H
    assert builtin_calendar(Region.ES).business_day_length("ES") == 8 * H  # split day


# -- due times -------------------------------------------------------------------------


def test_p4_from_friday_4pm_skips_the_weekend_and_labour_day() -> None:
    # arrive-by 10 h: Friday 16-17 (1 h), Monday off, Tuesday 08:00 + 9 h = 17:00 (AEDT).
    # resolve-by 2 bd = 18 h: 1 + 9 (Tuesday) + 8 (Wednesday from 08:00) = 16:00.
    dues = due(FRIDAY_4PM, 4, Region.AU, NSW, POLICY, AU)
    assert dues.arrive_by == sydney(2026, 10, 6, 17)
    assert dues.resolve_by == sydney(2026, 10, 7, 16)
    # Friday 06:00 UTC to Tuesday 06:00 UTC: four days of wall time, one hour of it lost
    # to DST, shown in the site's zone.
    assert dues.arrive_by.astimezone(UTC) == datetime(2026, 10, 6, 6, tzinfo=UTC)
    assert dues.arrive_by.utcoffset() == 11 * H
    assert dues.arrive_by.tzinfo == SYDNEY


def test_the_shipped_p4_counts_ten_and_twenty_business_days() -> None:
    # 10 bd = 90 h: Friday 1 h, Tue 6-Fri 9 Oct 36 h, Mon 12-Fri 16 Oct 45 h, Monday 19
    # Oct 8 h → 16:00: the same time of day on the 10th business day (Labour Day skipped).
    # 20 bd: 90 h more from there, Mon 19 Oct → Mon 2 Nov 16:00 (no holiday between).
    dues = due(FRIDAY_4PM, 4, Region.AU, NSW, builtin_policy(), AU)
    assert dues.arrive_by == sydney(2026, 10, 19, 16)
    assert dues.resolve_by == sydney(2026, 11, 2, 16)


def test_p1_runs_around_the_clock_across_the_april_dst_change() -> None:
    # Saturday 22:00 AEDT = 11:00 UTC. +4 h = 15:00 UTC: 02:00 AEDT, an hour before the
    # clocks go back. +24 h = Sunday 11:00 UTC = 21:00 AEST: the wall clock shows 23 h.
    created = sydney(2026, 4, 4, 22)
    dues = due(created, 1, Region.AU, NSW, builtin_policy(), AU)
    assert dues.arrive_by.astimezone(UTC) == datetime(2026, 4, 4, 15, tzinfo=UTC)
    assert (dues.arrive_by.hour, dues.arrive_by.utcoffset()) == (2, 11 * H)
    assert dues.resolve_by.astimezone(UTC) == datetime(2026, 4, 5, 11, tzinfo=UTC)
    assert (dues.resolve_by.hour, dues.resolve_by.utcoffset()) == (21, 10 * H)


def test_business_time_across_easter_and_the_april_dst_change() -> None:
    # Thursday 16:00 AEDT: 1 h; Good Friday, the weekend and Easter Monday off; Tuesday
    # 08:00 AEST + 9 h = 17:00 AEST = 07:00 UTC.
    dues = due(sydney(2026, 4, 2, 16), 4, Region.AU, NSW, POLICY, AU)
    assert dues.arrive_by == sydney(2026, 4, 7, 17)
    assert dues.arrive_by.astimezone(UTC) == datetime(2026, 4, 7, 7, tzinfo=UTC)


def test_a_region_override_replaces_only_its_priority() -> None:
    policy = builtin_policy()
    assert policy.target(1, Region.US).arrive_by == "6h"
    assert policy.target(1, Region.AU).arrive_by == "4h"
    assert policy.target(4, Region.US) == policy.target("P4", Region.AU)
    with pytest.raises(ValueError, match="not 1-4"):
        policy.target(5, Region.AU)


# -- pauses ----------------------------------------------------------------------------

#: On hold for parts from Tuesday 10:00 to Thursday 10:00: two business days (18 h).
ON_HOLD = Pause(starts=sydney(2026, 10, 6, 10), ends=sydney(2026, 10, 8, 10))


def test_two_business_days_on_hold_move_resolve_by_two_business_days() -> None:
    # By Tuesday 10:00: 1 + 2 = 3 h spent, 15 h left; from Thursday 10:00: 7 h that day,
    # 8 h on Friday 9 October from 08:00 → 16:00 — Wednesday 16:00 plus two business days.
    dues = due(FRIDAY_4PM, 4, Region.AU, NSW, POLICY, AU, pauses=[ON_HOLD])
    assert dues.resolve_by == sydney(2026, 10, 9, 16)
    assert dues.arrive_by == sydney(2026, 10, 8, 17)  # the pause moves it too (3 h left)


def test_a_job_on_hold_for_parts_does_not_breach() -> None:
    thursday_noon = sydney(2026, 10, 8, 12)
    arrived = {"arrived_at": sydney(2026, 10, 6, 9, 30)}
    assert breaches(thursday_noon, p4_facts(**arrived), POLICY, AU) == {SlaTimer.RESOLVE_BY}
    held = p4_facts(**arrived, pauses=(ON_HOLD,))
    assert breaches(thursday_noon, held, POLICY, AU) == frozenset()
    # Past the moved due time it breaches.
    assert breaches(sydney(2026, 10, 9, 16, 1), held, POLICY, AU) == {SlaTimer.RESOLVE_BY}


def test_a_job_still_on_hold_never_breaches_while_it_waits() -> None:
    waiting = p4_facts(
        arrived_at=sydney(2026, 10, 6, 9), pauses=(Pause(starts=sydney(2026, 10, 6, 10)),)
    )
    a_month_later = sydney(2026, 11, 6, 12)
    assert breaches(a_month_later, waiting, POLICY, AU) == frozenset()
    # It left Friday 1 h + Tuesday 2 h behind: 15 h of resolve-by remain.
    assert remaining(SlaTimer.RESOLVE_BY, waiting, a_month_later, POLICY, AU) == 15 * H
    assert due_for(waiting, a_month_later, POLICY, AU).resolve_by > a_month_later


def test_overlapping_pauses_count_once() -> None:
    doubled = [ON_HOLD, Pause(starts=sydney(2026, 10, 7, 8), ends=sydney(2026, 10, 7, 12))]
    assert due(FRIDAY_4PM, 4, Region.AU, NSW, POLICY, AU, pauses=doubled).resolve_by == (
        sydney(2026, 10, 9, 16)
    )
    # Friday 1 h + Tuesday 9 h + Wednesday 9 h + Thursday 9 h, less the 18 h on hold.
    spent = elapsed_business(FRIDAY_4PM, sydney(2026, 10, 8, 17), doubled, AU, NSW)
    assert spent == 10 * H


# -- breaches and what remains ---------------------------------------------------------


def test_arrive_by_is_breached_only_if_nobody_arrived_by_then() -> None:
    due_at = sydney(2026, 10, 6, 17)
    later = sydney(2026, 10, 6, 18)
    assert SlaTimer.ARRIVE_BY in breaches(later, p4_facts(), POLICY, AU)
    on_time = p4_facts(arrived_at=due_at)  # at the due time itself: met
    assert SlaTimer.ARRIVE_BY not in breaches(later, on_time, POLICY, AU)
    late = p4_facts(arrived_at=sydney(2026, 10, 6, 17, 30))
    assert SlaTimer.ARRIVE_BY in breaches(later, late, POLICY, AU)
    assert breaches(due_at, p4_facts(), POLICY, AU) == frozenset()  # not yet past


def test_resolve_by_is_not_breached_once_resolved_in_time() -> None:
    done = p4_facts(arrived_at=sydney(2026, 10, 6, 9), resolved_at=sydney(2026, 10, 7, 10))
    assert breaches(sydney(2026, 12, 1, 9), done, POLICY, AU) == frozenset()


def test_remaining_counts_business_time_and_freezes_when_the_timer_stops() -> None:
    tuesday_10 = sydney(2026, 10, 6, 10)
    assert remaining(SlaTimer.ARRIVE_BY, p4_facts(), tuesday_10, POLICY, AU) == 7 * H
    # Resolved Wednesday 10:00 after 1 + 9 + 2 = 12 h: 6 h of the 18 were left, for good.
    done = p4_facts(resolved_at=sydney(2026, 10, 7, 10))
    assert remaining("resolve_by", done, sydney(2026, 10, 20, 9), POLICY, AU) == 6 * H
    # Overdue: Wednesday 17:00, the arrive-by's 10 h long spent (1 + 9 + 9 = 19 h).
    overdue = remaining(SlaTimer.ARRIVE_BY, p4_facts(), sydney(2026, 10, 7, 17), POLICY, AU)
    assert overdue == -9 * H


# -- the policy file -------------------------------------------------------------------


def _policy(**p4: str) -> dict[str, object]:
    default = {
        name: {"arrive_by": "1h", "resolve_by": "2h", "clock": "around_the_clock"}
        for name in ("P1", "P2", "P3")
    }
    return {"default": {**default, "P4": p4}}


@pytest.mark.parametrize(
    "p4",
    [
        {"arrive_by": "1bd", "resolve_by": "2bd", "clock": "around_the_clock"},  # bd: business
        {"arrive_by": "1d", "resolve_by": "2d", "clock": "business"},  # ambiguous d
        {"arrive_by": "3bd", "resolve_by": "2bd", "clock": "business"},  # arrive after resolve
        {"arrive_by": "0h", "resolve_by": "2h", "clock": "business"},  # zero
        {"arrive_by": "1 week", "resolve_by": "2h", "clock": "business"},
    ],
)
def test_a_policy_that_makes_no_sense_is_refused(p4: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        SlaPolicy.model_validate(_policy(**p4))


def test_a_policy_without_every_priority_is_refused() -> None:
    three = {
        name: {"arrive_by": "1h", "resolve_by": "2h", "clock": "around_the_clock"}
        for name in ("P1", "P2", "P3")
    }
    with pytest.raises(ValidationError, match="P4"):
        SlaPolicy.model_validate({"default": three})


def test_the_calendar_must_be_the_regions() -> None:
    with pytest.raises(ValueError, match="region"):
        due(FRIDAY_4PM, 4, Region.US, "US-CA", POLICY, AU)


# -- properties ------------------------------------------------------------------------

BASE = datetime(2026, 9, 28, tzinfo=UTC)  # a month across the October DST change
minutes = st.integers(min_value=0, max_value=30 * 24 * 60)
pause_spans = st.lists(
    st.tuples(minutes, st.integers(min_value=0, max_value=5 * 24 * 60)), max_size=3
)


def _at(minute: int) -> datetime:
    return BASE + timedelta(minutes=minute)


def _pauses(spans: list[tuple[int, int]]) -> list[Pause]:
    return [Pause(starts=_at(s), ends=_at(s + length)) for s, length in spans]


@settings(max_examples=60, deadline=None)
@given(start=minutes, end=minutes, later=st.integers(0, 5 * 24 * 60), spans=pause_spans)
def test_business_time_is_monotonic_and_never_exceeds_wall_time(
    start: int, end: int, later: int, spans: list[tuple[int, int]]
) -> None:
    pauses = _pauses(spans)
    first = elapsed_business(_at(start), _at(end), pauses, AU, NSW)
    second = elapsed_business(_at(start), _at(end + later), pauses, AU, NSW)
    assert timedelta(0) <= first <= second
    assert first <= max(_at(end) - _at(start), timedelta(0))


@settings(max_examples=60, deadline=None)
@given(
    start=minutes,
    budget=st.integers(min_value=1, max_value=60 * 60),
    spans=pause_spans,
    clock=st.sampled_from(Clock),
)
def test_the_deadline_is_where_exactly_the_budget_has_elapsed(
    start: int, budget: int, spans: list[tuple[int, int]], clock: Clock
) -> None:
    pauses, amount = _pauses(spans), timedelta(minutes=budget)
    kw = {"clock": clock, "calendar": AU, "jurisdiction": NSW}
    at = deadline(_at(start), amount, pauses, **kw)  # type: ignore[arg-type]
    assert elapsed(_at(start), at, pauses, **kw) == amount  # type: ignore[arg-type]
    # and no earlier: a minute before, less had elapsed
    assert elapsed(_at(start), at - timedelta(minutes=1), pauses, **kw) < amount  # type: ignore[arg-type]
