"""The flow's pure pieces, expected values by hand: a site's jurisdiction from its zone,
the first business-hours window (NSW: 08:00-17:00 weekdays), the SLA facts from a
history, and pv_wh counters since a resolve."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cloud.calendars import builtin_calendar
from cloud.dispatch.flow import first_window, merge_counters, site_jurisdiction, sla_facts
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
