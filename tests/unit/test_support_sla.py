"""The support SLA clock (cloud.support.sla) across a DST change in each region, with
holidays and pending pauses: every expectation worked out by hand in the comments."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from cloud.calendars import builtin_calendar
from cloud.support.lifecycle import Priority
from cloud.support.policy import load_policy
from cloud.support.sla import Pause, business_elapsed, clock, due_at
from contracts.topics import Region


def at(y: int, mo: int, d: int, h: int, mi: int = 0, offset_h: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=timezone(timedelta(hours=offset_h)))


H = timedelta(hours=1)

# (region, jurisdiction, start, target, pauses, expected due)
DUE_CASES = [
    pytest.param(
        # NSW 08-17. DST ends Sun 5 Apr 2026 (+11 → +10); Good Friday 3, Easter Sat 4,
        # Sun 5, Monday 6 are holidays. Thu 2 15:00 +11: 2 h that day, then Tue 7 08:00
        # +10 + 2 h = 10:00 +10.
        Region.AU,
        "AU-NSW",
        at(2026, 4, 2, 15, offset_h=11),
        4 * H,
        [],
        at(2026, 4, 7, 10, offset_h=10),
        id="au-dst-end-easter",
    ),
    pytest.param(
        # Wed 1 Apr 09:00 +11, 16 h; pending Wed 10:00 → Thu 12:00 (+11). 1 h used, then
        # Thu 12-17 5 h (10 left), Fri/Mon holidays, Tue 7 08-17 9 h (1 left), Wed 8
        # 08:00 +10 + 1 h = 09:00 +10.
        Region.AU,
        "AU-NSW",
        at(2026, 4, 1, 9, offset_h=11),
        16 * H,
        [Pause(at(2026, 4, 1, 10, offset_h=11), at(2026, 4, 2, 12, offset_h=11))],
        at(2026, 4, 8, 9, offset_h=10),
        id="au-pending-across-dst",
    ),
    pytest.param(
        # Queensland keeps +10 all year: Thu 2 Apr 15:00 +10, 4 h: 2 h, then Good Friday,
        # the weekend and Easter Monday off, Tue 7 08:00 + 2 h = 10:00 +10.
        Region.AU,
        "AU-QLD",
        at(2026, 4, 2, 15, offset_h=10),
        4 * H,
        [],
        at(2026, 4, 7, 10, offset_h=10),
        id="au-qld-no-dst",
    ),
    pytest.param(
        # Spain 09-14 + 15-18; DST ends Sun 25 Oct 2026 (+2 → +1). Fri 23 17:00 +2, 3 h:
        # 1 h Friday, Mon 26 09:00 +1 + 2 h = 11:00 +1.
        Region.ES,
        "ES",
        at(2026, 10, 23, 17, offset_h=2),
        3 * H,
        [],
        at(2026, 10, 26, 11, offset_h=1),
        id="es-dst-end",
    ),
    pytest.param(
        # Same start, 6 h: 1 h Friday, Monday 09-14 is the other 5: due at the closing,
        # 14:00 +1 (not after the lunch break).
        Region.ES,
        "ES",
        at(2026, 10, 23, 17, offset_h=2),
        6 * H,
        [],
        at(2026, 10, 26, 14, offset_h=1),
        id="es-ends-at-closing",
    ),
    pytest.param(
        # DST starts Sun 29 Mar 2026 (+1 → +2). Fri 27 13:00 +1, 6 h: 13-14 1 h, 15-18 3 h,
        # Mon 30 09:00 +2 + 2 h = 11:00 +2.
        Region.ES,
        "ES",
        at(2026, 3, 27, 13, offset_h=1),
        6 * H,
        [],
        at(2026, 3, 30, 11, offset_h=2),
        id="es-dst-start",
    ),
    pytest.param(
        # Fri 9 Oct 2026 17:00 +2, 3 h; Mon 12 Oct is the national day: 1 h Friday, Tue 13
        # 09:00 + 2 h = 11:00 +2.
        Region.ES,
        "ES",
        at(2026, 10, 9, 17, offset_h=2),
        3 * H,
        [],
        at(2026, 10, 13, 11, offset_h=2),
        id="es-national-day",
    ),
    pytest.param(
        # California 08-17; DST starts Sun 8 Mar 2026 (-8 → -7). Fri 6 16:00 -8, 3 h: 1 h
        # Friday, Mon 9 08:00 -7 + 2 h = 10:00 -7.
        Region.US,
        "US-CA",
        at(2026, 3, 6, 16, offset_h=-8),
        3 * H,
        [],
        at(2026, 3, 9, 10, offset_h=-7),
        id="us-ca-dst-start",
    ),
    pytest.param(
        # Arizona keeps -7: Fri 6 Mar 16:00 -7, 3 h: 1 h, Mon 9 08:00 -7 + 2 h = 10:00 -7.
        Region.US,
        "US-AZ",
        at(2026, 3, 6, 16, offset_h=-7),
        3 * H,
        [],
        at(2026, 3, 9, 10, offset_h=-7),
        id="us-az-no-dst",
    ),
    pytest.param(
        # California, DST ends Sun 1 Nov 2026 (-7 → -8). Fri 30 Oct 09:00 -7, 12 h; pending
        # Fri 10:00 → Mon 2 Nov 12:00 -8: 1 h used; Mon 12-17 5 h (6 left); Tue 3 08:00
        # -8 + 6 h = 14:00 -8.
        Region.US,
        "US-CA",
        at(2026, 10, 30, 9, offset_h=-7),
        12 * H,
        [Pause(at(2026, 10, 30, 10, offset_h=-7), at(2026, 11, 2, 12, offset_h=-8))],
        at(2026, 11, 3, 14, offset_h=-8),
        id="us-pending-across-dst-end",
    ),
    pytest.param(
        # Spain, pending across the DST end: Fri 23 Oct 17:00 +2, 3 h; pending Fri 17:30 +2
        # → Mon 26 Oct 09:30 +1. 0.5 h used on Friday, the other 2.5 h Mon 09:30-12:00 +1.
        Region.ES,
        "ES",
        at(2026, 10, 23, 17, offset_h=2),
        3 * H,
        [Pause(at(2026, 10, 23, 17, 30, offset_h=2), at(2026, 10, 26, 9, 30, offset_h=1))],
        at(2026, 10, 26, 12, offset_h=1),
        id="es-pending-across-dst-end",
    ),
    pytest.param(
        # A pause after the due time moves nothing: Fri 23 Oct ES 17:00 +2, 3 h → Mon 11:00
        # +1, pause from Mon 12:00.
        Region.ES,
        "ES",
        at(2026, 10, 23, 17, offset_h=2),
        3 * H,
        [Pause(at(2026, 10, 26, 12, offset_h=1), None)],
        at(2026, 10, 26, 11, offset_h=1),
        id="pause-after-due",
    ),
    pytest.param(
        # A pause still open before the due time: no due time yet.
        Region.ES,
        "ES",
        at(2026, 10, 23, 17, offset_h=2),
        3 * H,
        [Pause(at(2026, 10, 23, 17, 30, offset_h=2), None)],
        None,
        id="open-pause",
    ),
]


@pytest.mark.parametrize(("region", "jurisdiction", "start", "target", "pauses", "due"), DUE_CASES)
def test_due_at(
    region: Region,
    jurisdiction: str,
    start: datetime,
    target: timedelta,
    pauses: list[Pause],
    due: datetime | None,
) -> None:
    got = due_at(builtin_calendar(region), jurisdiction, start, target, pauses)
    assert got == due


def test_elapsed_excludes_pending_across_dst() -> None:
    # Fri 23 Oct 17:00 +2 → Mon 26 Oct 11:00 +1: Fri 17-18 1 h + Mon 09-11 2 h = 3 h;
    # pending Mon 09:30-10:30 takes 1 h off: 2 h.
    spain = builtin_calendar(Region.ES)
    start, end = at(2026, 10, 23, 17, offset_h=2), at(2026, 10, 26, 11, offset_h=1)
    assert business_elapsed(spain, "ES", start, end) == 3 * H
    pause = Pause(at(2026, 10, 26, 9, 30, offset_h=1), at(2026, 10, 26, 10, 30, offset_h=1))
    assert business_elapsed(spain, "ES", start, end, [pause]) == 2 * H


def test_clock_breach_and_stop() -> None:
    # NSW Thu 2 Apr 15:00 +11, 4 h → due Tue 7 Apr 10:00 +10 (see above).
    nsw = builtin_calendar(Region.AU)
    start = at(2026, 4, 2, 15, offset_h=11)
    late = clock(nsw, "AU-NSW", start, 4 * H, at(2026, 4, 7, 10, 1, offset_h=10))
    assert late.breached
    assert late.used == 4 * H + timedelta(minutes=1)
    on_time = clock(nsw, "AU-NSW", start, 4 * H, at(2026, 4, 7, 10, offset_h=10))
    assert not on_time.breached
    # Stopped Tue 09:00 +10 (3 h used), looked at a week later: not breached.
    later = datetime(2026, 4, 14, tzinfo=UTC)
    done = clock(nsw, "AU-NSW", start, 4 * H, later, stopped_at=at(2026, 4, 7, 9, offset_h=10))
    assert not done.breached
    assert done.used == 3 * H


def test_policy_file_has_every_region_and_priority() -> None:
    policy = load_policy()
    assert policy.of(Region.ES).reopen_window == timedelta(days=30)
    assert policy.of(Region.AU).targets[Priority.URGENT].first_response == H
