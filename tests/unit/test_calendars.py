"""The regional business calendar: holidays per state, business hours, business time.

Every expected date and instant is worked out by hand in the test from the public rules
(first Monday of October, third Friday of August, DST switches), not from the code.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from cloud.calendars import (
    BusinessCalendar,
    CalendarError,
    CalendarSpec,
    builtin_calendar,
    is_iana_zone,
    known_jurisdiction,
)
from contracts.topics import Region

AU = builtin_calendar(Region.AU)
US = builtin_calendar(Region.US)
ES = builtin_calendar(Region.ES)
SYDNEY = ZoneInfo("Australia/Sydney")
LOS_ANGELES = ZoneInfo("America/Los_Angeles")


def _hours(offset_h: float) -> timezone:
    return timezone(timedelta(hours=offset_h))


def _spec(**changes: Any) -> CalendarSpec:
    """A small calendar of one Sydney jurisdiction; ``changes`` override its fields."""
    data: dict[str, Any] = {
        "region": "au",
        "country": "AU",
        "language": "en_AU",
        "default_jurisdiction": "AU-NSW",
        "hours": {d: ["08:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
        "jurisdictions": {"AU-NSW": {"time_zone": "Australia/Sydney", "subdivision": "NSW"}},
    }
    data.update(changes)
    return CalendarSpec.model_validate(data)


# -- what ships --------------------------------------------------------------------------
def test_every_region_ships_a_calendar_of_its_states() -> None:
    assert AU.country == "AU"
    assert len(AU.jurisdictions) == 8
    assert US.country == "US"
    assert len(US.jurisdictions) == 51
    assert ES.country == "ES"
    assert len(ES.jurisdictions) == 20
    assert ES.time_zone("ES-CN").key == "Atlantic/Canary"
    assert US.time_zone("US-HI").key == "Pacific/Honolulu"


def test_known_jurisdictions_are_those_of_the_calendars() -> None:
    assert known_jurisdiction("AU-NSW")
    assert known_jurisdiction("ES")
    assert known_jurisdiction("US-HI")
    assert not known_jurisdiction("AU-XX")
    assert not known_jurisdiction("FR")
    assert not known_jurisdiction("au-nsw")


def test_iana_zones_are_checked_by_name() -> None:
    assert is_iana_zone("Australia/Sydney")
    assert is_iana_zone("UTC")
    for bad in ("Mars/Olympus", "localtime", "Factory", "../etc/passwd", "", "Europe/Madrid\x00"):
        assert not is_iana_zone(bad), bad


# -- holidays per state --------------------------------------------------------------------
def test_nsw_and_vic_keep_different_holidays() -> None:
    # Melbourne Cup: first Tuesday of November (4 Nov 2025), Victoria only.
    cup = date(2025, 11, 4)
    assert AU.is_holiday(cup, "AU-VIC")
    assert not AU.is_business_day(cup, "AU-VIC")
    assert not AU.is_holiday(cup, "AU-NSW")
    assert AU.is_business_day(cup, "AU-NSW")
    # Labour Day: NSW first Monday of October (6 Oct 2025); VIC second Monday of March.
    assert AU.is_holiday(date(2025, 10, 6), "AU-NSW")
    assert not AU.is_holiday(date(2025, 10, 6), "AU-VIC")
    assert AU.is_holiday(date(2025, 3, 10), "AU-VIC")
    assert not AU.is_holiday(date(2025, 3, 10), "AU-NSW")
    # Both: Christmas, Boxing Day.
    for state in ("AU-NSW", "AU-VIC"):
        assert AU.is_holiday(date(2025, 12, 25), state)
        assert AU.is_holiday(date(2025, 12, 26), state)


def test_california_and_hawaii_keep_different_holidays() -> None:
    # Cesar Chavez Day, 31 March (a Monday in 2025): California only.
    assert US.is_holiday(date(2025, 3, 31), "US-CA")
    assert not US.is_holiday(date(2025, 3, 31), "US-HI")
    # Prince Kuhio Day 26 March, Kamehameha Day 11 June, Statehood Day (third Friday of
    # August: 15 Aug 2025): Hawaii only.
    for day in (date(2025, 3, 26), date(2025, 6, 11), date(2025, 8, 15)):
        assert US.is_holiday(day, "US-HI"), day
        assert not US.is_holiday(day, "US-CA"), day
    # Federal: Independence Day (a Friday in 2025) in both.
    assert US.is_holiday(date(2025, 7, 4), "US-CA")
    assert US.is_holiday(date(2025, 7, 4), "US-HI")


def test_spain_national_days_and_the_canaries_own() -> None:
    national = {h.day for h in ES.holidays_between(date(2025, 1, 1), date(2025, 12, 31), "ES")}
    canaries = {h.day for h in ES.holidays_between(date(2025, 1, 1), date(2025, 12, 31), "ES-CN")}
    # Día de Canarias (30 May) and Jueves Santo (17 Apr 2025): the Canaries', not national.
    assert {date(2025, 5, 30), date(2025, 4, 17)} <= canaries - national
    # Viernes Santo (18 Apr 2025) and 1 Nov: national, so in the Canaries too.
    assert {date(2025, 4, 18), date(2025, 11, 1)} <= national & canaries
    assert not ES.is_business_day(date(2025, 5, 30), "ES-CN")
    assert ES.is_business_day(date(2025, 5, 30), "ES-MD")


def test_the_2_0td_holiday_set_is_the_nine_fixed_national_dates() -> None:
    got = ES.holidays_between(
        date(2025, 1, 1), date(2025, 12, 31), "ES", holiday_set="tariff-2.0td"
    )
    expected = [
        date(2025, m, d)
        for m, d in ((1, 1), (1, 6), (5, 1), (8, 15), (10, 12), (11, 1), (12, 6), (12, 8), (12, 25))
    ]
    assert [h.day for h in got] == expected
    # Good Friday is a national holiday for business days but not a 2.0TD valle day.
    assert ES.is_holiday(date(2025, 4, 18), "ES")
    assert date(2025, 4, 18) not in {h.day for h in got}
    with pytest.raises(CalendarError, match="no holiday set"):
        ES.holidays_between(date(2025, 1, 1), date(2025, 1, 2), "ES", holiday_set="nope")


# -- business hours --------------------------------------------------------------------------
def test_business_hours_are_local_spans_in_the_jurisdictions_zone() -> None:
    # Monday 31 March 2025: the Canaries on WEST (UTC+1), the peninsula on CEST (UTC+2).
    canaries = ES.business_hours(date(2025, 3, 31), "ES-CN")
    assert canaries == [
        (datetime(2025, 3, 31, 8, 0, tzinfo=UTC), datetime(2025, 3, 31, 13, 0, tzinfo=UTC)),
        (datetime(2025, 3, 31, 14, 0, tzinfo=UTC), datetime(2025, 3, 31, 17, 0, tzinfo=UTC)),
    ]
    madrid = ES.business_hours(date(2025, 3, 31), "ES-MD")
    assert madrid[0][0] == datetime(2025, 3, 31, 7, 0, tzinfo=UTC)
    assert ES.business_hours(date(2025, 3, 29), "ES-MD") == []  # Saturday
    assert AU.business_hours(date(2025, 11, 4), "AU-VIC") == []  # Melbourne Cup


def test_a_span_in_the_spring_forward_gap_loses_the_skipped_hour() -> None:
    # Sydney skips 02:00-03:00 on Sunday 5 Oct 2025: 02:00-04:00 is one real hour.
    calendar = BusinessCalendar(_spec(hours={"sun": ["02:00-04:00"]}))
    [(opens, closes)] = calendar.business_hours(date(2025, 10, 5), "AU-NSW")
    assert opens == datetime(2025, 10, 4, 16, 0, tzinfo=UTC)  # 03:00 AEDT
    assert closes == datetime(2025, 10, 4, 17, 0, tzinfo=UTC)  # 04:00 AEDT
    assert closes - opens == timedelta(hours=1)


# -- business time (SLAs) ---------------------------------------------------------------------
def test_business_time_skips_a_weekend() -> None:
    # Fri 15 Aug 2025 16:00 AEST + 3 h: 1 h on Friday (to 17:00), 2 h from Monday 08:00.
    start = datetime(2025, 8, 15, 16, 0, tzinfo=SYDNEY)
    due = AU.add_business_time(start, timedelta(hours=3), "AU-NSW")
    assert due == datetime(2025, 8, 18, 10, 0, tzinfo=_hours(10))
    assert AU.business_time_between(start, due, "AU-NSW") == timedelta(hours=3)


def test_business_time_skips_holidays() -> None:
    # Wed 24 Dec 2025 15:00 AEDT + 4 h: 2 h on Wednesday; Thu 25 (Christmas), Fri 26
    # (Boxing Day), Sat, Sun closed; the other 2 h from Monday 29 Dec 08:00.
    start = datetime(2025, 12, 24, 15, 0, tzinfo=SYDNEY)
    due = AU.add_business_time(start, timedelta(hours=4), "AU-NSW")
    assert due == datetime(2025, 12, 29, 10, 0, tzinfo=_hours(11))


def test_business_time_across_a_dst_change_counts_real_hours() -> None:
    # Fri 7 Mar 2025 16:00 PST (UTC-8) + 4 h: 1 h on Friday; DST starts Sunday 9 Mar;
    # Monday 10 Mar opens 08:00 PDT (UTC-7) = 15:00 UTC, + 3 h = 18:00 UTC = 11:00 PDT.
    start = datetime(2025, 3, 7, 16, 0, tzinfo=LOS_ANGELES)
    due = US.add_business_time(start, timedelta(hours=4), "US-CA")
    assert due == datetime(2025, 3, 10, 18, 0, tzinfo=UTC)
    assert due.utcoffset() == timedelta(hours=-7)
    assert due.hour == 11


def test_a_23_and_a_25_hour_day_count_what_elapses() -> None:
    around_the_clock = {
        d: ["00:00-24:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    }
    calendar = BusinessCalendar(_spec(hours=around_the_clock))
    # Sat 4 Oct 2025 12:00 AEST (UTC+10) = 02:00 UTC; + 24 h = Sun 02:00 UTC = Sun 13:00
    # AEDT (UTC+11): the clock moved 25 h, as that Sunday had 23.
    spring = calendar.add_business_time(
        datetime(2025, 10, 4, 12, 0, tzinfo=SYDNEY), timedelta(hours=24), "AU-NSW"
    )
    assert spring == datetime(2025, 10, 5, 13, 0, tzinfo=_hours(11))
    # Sat 5 Apr 2025 12:00 AEDT (UTC+11) = 01:00 UTC; + 24 h = Sun 01:00 UTC = Sun 11:00
    # AEST (UTC+10): the clock moved 23 h, as that Sunday had 25.
    autumn = calendar.add_business_time(
        datetime(2025, 4, 5, 12, 0, tzinfo=SYDNEY), timedelta(hours=24), "AU-NSW"
    )
    assert autumn == datetime(2025, 4, 6, 11, 0, tzinfo=_hours(10))
    assert calendar.business_time_between(
        datetime(2025, 4, 6, 0, 0, tzinfo=SYDNEY),
        datetime(2025, 4, 7, 0, 0, tzinfo=SYDNEY),
        "AU-NSW",
    ) == timedelta(hours=25)


def test_zero_time_outside_hours_is_the_next_opening_and_a_full_day_ends_at_closing() -> None:
    saturday = datetime(2025, 8, 16, 12, 0, tzinfo=SYDNEY)
    assert AU.add_business_time(saturday, timedelta(0), "AU-NSW") == datetime(
        2025, 8, 18, 8, 0, tzinfo=_hours(10)
    )
    monday = datetime(2025, 8, 18, 8, 0, tzinfo=SYDNEY)
    assert AU.add_business_time(monday, timedelta(hours=9), "AU-NSW") == datetime(
        2025, 8, 18, 17, 0, tzinfo=_hours(10)
    )


def test_business_time_refuses_what_it_cannot_answer() -> None:
    start = datetime(2025, 8, 15, 16, 0, tzinfo=SYDNEY)
    with pytest.raises(CalendarError, match="timezone-aware"):
        AU.add_business_time(start.replace(tzinfo=None), timedelta(hours=1), "AU-NSW")
    with pytest.raises(CalendarError, match="negative"):
        AU.add_business_time(start, timedelta(hours=-1), "AU-NSW")
    with pytest.raises(CalendarError, match="not in region"):
        AU.add_business_time(start, timedelta(hours=1), "US-CA")
    with pytest.raises(CalendarError, match="outside"):
        AU.is_business_day(date(2150, 1, 1), "AU-NSW")
    with pytest.raises(CalendarError, match="more than"):
        AU.business_days_between(date(2020, 1, 1), date(2025, 1, 1), "AU-NSW")
    closed = BusinessCalendar(_spec(hours={}))
    with pytest.raises(CalendarError, match=r"no .* of business time"):
        closed.add_business_time(start, timedelta(hours=1), "AU-NSW")


# -- company overrides --------------------------------------------------------------------------
def test_overrides_close_days_and_open_holidays() -> None:
    calendar = BusinessCalendar(
        _spec(
            closed_days=[{"day": "2025-12-31", "name": "Office shutdown"}],
            open_days=[{"day": "2025-12-26", "name": "Boxing Day worked"}],
            jurisdictions={
                "AU-NSW": {
                    "time_zone": "Australia/Sydney",
                    "subdivision": "NSW",
                    "ignore_holidays": ["Labour Day"],
                }
            },
        )
    )
    assert not calendar.is_business_day(date(2025, 12, 31), "AU-NSW")  # a Wednesday
    assert calendar.is_business_day(date(2025, 12, 26), "AU-NSW")
    assert calendar.is_business_day(date(2025, 10, 6), "AU-NSW")
    assert not calendar.is_business_day(date(2025, 12, 25), "AU-NSW")
    names = {
        h.day: h.name
        for h in calendar.holidays_between(date(2025, 12, 1), date(2025, 12, 31), "AU-NSW")
    }
    assert names[date(2025, 12, 31)] == "Office shutdown"
    assert date(2025, 12, 26) not in names


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"hours": {"mon": ["09:00-12:00", "11:00-17:00"]}}, "overlap"),
        ({"hours": {"mon": ["17:00-08:00"]}}, "ends before"),
        ({"hours": {"mon": ["08:00-24:30"]}}, "time of day"),
        ({"default_jurisdiction": "AU-VIC"}, "not listed"),
        ({"jurisdictions": {"US-CA": {"time_zone": "America/Los_Angeles"}}}, "not in AU"),
        ({"jurisdictions": {"AU-NSW": {"time_zone": "Australia/Nowhere"}}}, "IANA"),
        (
            {"closed_days": [{"day": "2025-01-02", "name": "x", "jurisdictions": ["AU-VIC"]}]},
            "unknown",
        ),
        (
            {"holiday_sets": {"x": {"description": "d", "fixed_dates": {"02-30": "no"}}}},
            "day is out",
        ),
        ({"surprise": 1}, "Extra inputs"),
    ],
)
def test_a_bad_calendar_file_is_refused_naming_the_problem(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        _spec(**changes)
