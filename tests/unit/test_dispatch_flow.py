"""The flow's pure pieces, expected values by hand: a site's jurisdiction from its zone,
the first business-hours window (NSW: 08:00-17:00 weekdays), the SLA facts from a
history, and pv_wh counters since a resolve."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from cloud.calendars import builtin_calendar
from cloud.dispatch.assignment import (
    Away,
    Job,
    Location,
    Reason,
    Shift,
    Technician,
    assign,
    judge,
)
from cloud.dispatch.flow import (
    build_job,
    first_window,
    merge_counters,
    site_jurisdiction,
    sla_facts,
    visit_window,
)
from contracts.topics import Region

AU, US = builtin_calendar(Region.AU), builtin_calendar(Region.US)
#: Wednesday 4 March 2026 in Sydney is UTC+11 (daylight saving).
WED_1100 = datetime(2026, 3, 4, 0, 0, tzinfo=UTC)
TWO_H = timedelta(hours=2)


def test_a_site_s_jurisdiction_comes_from_its_zone() -> None:
    assert site_jurisdiction(AU, "Australia/Sydney") == "AU-NSW"  # the region's default
    assert site_jurisdiction(AU, "Australia/Perth") == "AU-WA"
    assert site_jurisdiction(AU, None) == "AU-NSW"
    assert site_jurisdiction(US, "America/Los_Angeles") == "US-CA"
    assert site_jurisdiction(AU, "Europe/Madrid") == "AU-NSW"  # not of the region


def test_the_window_is_the_first_business_span_that_fits_the_job() -> None:
    assert first_window(AU, "AU-NSW", WED_1100, TWO_H) == (WED_1100, WED_1100 + TWO_H)
    # 16:00 leaves one hour: Thursday 08:00 (21:00 UTC Wednesday).
    at_1600 = WED_1100 + timedelta(hours=5)
    thu_0800 = datetime(2026, 3, 4, 21, 0, tzinfo=UTC)
    assert first_window(AU, "AU-NSW", at_1600, TWO_H) == (thu_0800, thu_0800 + TWO_H)
    # Saturday 10:00 waits for Monday 08:00.
    sat = datetime(2026, 3, 6, 23, 0, tzinfo=UTC)
    mon_0800 = datetime(2026, 3, 8, 21, 0, tzinfo=UTC)
    assert first_window(AU, "AU-NSW", sat, TWO_H)[0] == mon_0800


#: Thursday 5 March 2026, 10:00-12:00 in Sydney: a confirmed arrival window.
THU_1000 = datetime(2026, 3, 4, 23, 0, tzinfo=UTC)
THU_1200 = THU_1000 + TWO_H
SITE = Location(latitude=-33.87, longitude=151.21)


def _tech(employee_no: str, **fields: object) -> Technician:
    """An AU technician licensed for an AU isolator job, 08:00-17:00 every day."""
    record: dict[str, object] = {
        "employee_no": employee_no,
        "region": "au",
        "jurisdiction": "AU-NSW",
        "time_zone": "Australia/Sydney",
        "base": {"latitude": -33.70, "longitude": 151.10},
        "licences": [
            {"kind": "au-electrical", "jurisdiction": "AU-NSW", "valid_from": date(2020, 1, 1)},
            {"kind": "au-saa-accreditation", "jurisdiction": "AU", "valid_from": date(2020, 1, 1)},
        ],
        "skills": [{"code": "dc_isolation"}],
        "hours": [Shift(weekday=d, starts=time(8), ends=time(17)) for d in range(1, 8)],
    }
    return Technician.model_validate(record | fields)


def test_a_confirmed_appointment_is_the_job_s_time_for_eligibility_and_scoring() -> None:
    # Booked: the arrival window, then two hours of work — Thursday 10:00 to 14:00.
    booked = visit_window((THU_1000, THU_1200), AU, "AU-NSW", WED_1100, TWO_H)
    assert booked == (THU_1000, THU_1000 + 2 * TWO_H)
    # Without one, the first business-hours window from now (Wednesday 11:00-13:00).
    assert visit_window(None, AU, "AU-NSW", WED_1100, TWO_H) == (WED_1100, WED_1100 + TWO_H)

    def job(window: tuple[datetime, datetime]) -> Job:
        return build_job(
            order_id=7, region=Region.AU, type="isolator_fault", priority="P3",
            jurisdiction="AU-NSW", site=SITE, window=window, sla_due=window[1], duration=TWO_H,
        )  # fmt: skip

    on_booked_day = job(booked)
    assert on_booked_day.duration == TWO_H
    away_thursday = _tech(
        "E1", absences=[Away(starts_on=date(2026, 3, 5), ends_on=date(2026, 3, 5))]
    )
    licence_ends_wednesday = _tech(
        "E2",
        licences=[
            {"kind": "au-electrical", "jurisdiction": "AU-NSW", "valid_from": date(2020, 1, 1),
             "expires_on": date(2026, 3, 4)},
            {"kind": "au-saa-accreditation", "jurisdiction": "AU", "valid_from": date(2020, 1, 1)},
        ],
    )  # fmt: skip
    thursdays_only = _tech("E3", hours=[Shift(weekday=4, starts=time(8), ends=time(17))])
    crew = [away_thursday, licence_ends_wednesday, thursdays_only]
    now = job(visit_window(None, AU, "AU-NSW", WED_1100, TWO_H))
    # Judged for Wednesday (the wrong time), E1 and E2 would pass and E3 would not ...
    assert [judge(now, t).eligible for t in crew] == [True, True, False]
    # ... for the booked Thursday, only E3 may go.
    verdicts = {t.employee_no: judge(on_booked_day, t) for t in crew}
    assert [r.reason for r in verdicts["E1"].refusals] == [Reason.ABSENT]
    assert [r.reason for r in verdicts["E2"].refusals] == [Reason.LICENCE]
    assert verdicts["E3"].eligible
    chosen = assign(on_booked_day, crew)
    assert getattr(chosen, "employee_no", None) == "E3"


def test_sla_facts_restart_at_a_reopen_and_leave_out_the_pauses() -> None:
    t = [WED_1100 + timedelta(hours=h) for h in range(10)]
    history = [
        (t[0], "create", "scheduled"),
        (t[1], "arrive", "on_site"),
        (t[2], "reopen", "scheduled"),
        (t[3], "arrive", "on_site"),
        (t[4], "hold", "on_hold"),
        (t[6], "assign", "assigned"),
        (t[7], "arrive", "on_site"),
        (t[8], "cannot_complete", "cannot_complete"),
    ]
    facts = sla_facts(
        created_at=t[0], priority="P2", region=Region.AU, jurisdiction="AU-NSW", history=history
    )
    assert (facts.created_at, facts.arrived_at, facts.resolved_at) == (t[2], t[3], None)
    assert [(p.starts, p.ends) for p in facts.pauses] == [(t[4], t[6]), (t[8], None)]


def test_counters_keep_the_first_and_last_reading_since_the_resolve() -> None:
    t = [WED_1100 + timedelta(minutes=m) for m in range(0, 40, 10)]
    samples = [
        ("gw/inv1", "pv_wh", t[2], 120.0),
        ("gw/inv1", "pv_wh", t[0], 90.0),  # before the resolve: not counted
        ("gw/inv1", "pv_wh", t[1], 100.0),
        ("gw/inv1", "grid_hz", t[2], 50.0),
    ]
    once = merge_counters({}, samples, t[1])
    assert once == {
        "gw/inv1": {
            "first": 100.0,
            "first_at": t[1].isoformat(),
            "last": 120.0,
            "last_at": t[2].isoformat(),
        }
    }
    assert merge_counters(once, samples, t[1]) == once  # a redelivered batch
    later = merge_counters(once, [("gw/inv1", "pv_wh", t[3], 150.0)], t[1])
    assert (later["gw/inv1"]["first"], later["gw/inv1"]["last"]) == (100.0, 150.0)
