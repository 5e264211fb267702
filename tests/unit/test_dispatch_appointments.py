"""Dispatch's appointment windows (issue 17): offer, confirm, reschedule, reminders.

Hand examples in Sydney: the week of Monday 25 January 2027 (AEDT, +11), Tuesday 26
January being Australia Day (a NSW public holiday); and Sunday 4 October 2026, when the
clocks skip 02:00-03:00. Technicians work 08:00-17:00 Monday-Friday unless said; a job
takes 1 hour, so a 2-hour window needs 3 free hours of shift from its start.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.dispatch.appointments import (
    Appointment,
    AppointmentJob,
    ConfirmRefusal,
    Offer,
    OfferSettings,
    RefusalCode,
    confirm,
    next_reminder_at,
    offer_windows,
    reminder_due,
    reschedule,
)
from cloud.dispatch.assignment import Away, HeldLicence, Location, OpenJob, Shift, Technician
from cloud.workforce import span_within_shift
from contracts.topics import Region

SYDNEY = ZoneInfo("Australia/Sydney")
H = timedelta(hours=1)
WEEKDAYS_8_TO_5 = tuple(Shift(weekday=d, starts=time(8), ends=time(17)) for d in range(1, 6))
SITE = Location(latitude=-33.87, longitude=151.21)
MONDAY_1310 = datetime(2027, 1, 25, 13, 10, tzinfo=SYDNEY)


def sydney(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SYDNEY)


def job(**changes: object) -> AppointmentJob:
    fields: dict[str, object] = {
        "id": "wo-7",
        "region": Region.AU,
        "jurisdiction": "AU-NSW",
        "site_zone": "Australia/Sydney",
        "site": SITE,
        "priority": 3,
        "licences": ("au-electrical",),
        "duration": H,
    }
    return AppointmentJob.model_validate(fields | changes)


def tech(no: str = "E1", **changes: object) -> Technician:
    fields: dict[str, object] = {
        "employee_no": no,
        "region": Region.AU,
        "jurisdiction": "AU-NSW",
        "time_zone": "Australia/Sydney",
        "base": SITE,
        "licences": (
            HeldLicence(kind="au-electrical", jurisdiction="AU-NSW", valid_from=date(2020, 1, 1)),
        ),
        "hours": WEEKDAYS_8_TO_5,
    }
    return Technician.model_validate(fields | changes)


def spans(offer: Offer) -> list[tuple[datetime, datetime]]:
    return [(w.starts, w.ends) for w in offer.windows]


def wed(start: int) -> tuple[datetime, datetime]:
    return sydney(2027, 1, 27, start), sydney(2027, 1, 27, start + 2)


# -- offering --------------------------------------------------------------------------


def test_the_first_windows_skip_a_short_afternoon_and_australia_day() -> None:
    # Earliest start 15:10 (2 h lead): 16:00 leaves no 3 h before 17:00; Tuesday is
    # Australia Day; Wednesday 08-10, 10-12, 12-14 each end their job by 15:00.
    offer = offer_windows(job(), [tech()], MONDAY_1310)
    assert spans(offer) == [wed(8), wed(10), wed(12)]
    assert offer.windows[0].label == "Wed 27 Jan 2027, 08:00-10:00 AEDT"
    assert offer.windows[0].technicians == ("E1",)
    assert offer.windows[0].confirm_by == sydney(2027, 1, 27, 6)
    assert offer.expires_at == MONDAY_1310 + 24 * H
    assert all(w.starts.tzinfo == SYDNEY for w in offer.windows)


def test_a_booked_job_and_an_absence_take_their_hours_out() -> None:
    # Booked 10:30-12:00: 08-10 (a technician arriving at 10:00 works to 11:00) up to
    # 11-13 clash; 12-14 may start as the booking ends; 14-16 (to 17:00) fits; then
    # Thursday.
    booked = OpenJob(
        id="wo-1", site=SITE, starts=sydney(2027, 1, 27, 10, 30), ends=sydney(2027, 1, 27, 12)
    )
    offer = offer_windows(job(), [tech(open_jobs=(booked,))], MONDAY_1310)
    thursday_8 = (sydney(2027, 1, 28, 8), sydney(2027, 1, 28, 10))
    assert spans(offer) == [wed(12), wed(14), thursday_8]
    # Away on Wednesday: Thursday's.
    away = tech(absences=(Away(starts_on=date(2027, 1, 27), ends_on=date(2027, 1, 27)),))
    thursday = [(s + 24 * H, e + 24 * H) for s, e in (wed(8), wed(10), wed(12))]
    assert spans(offer_windows(job(), [away], MONDAY_1310)) == thursday


def test_windows_come_from_whoever_can_take_them() -> None:
    # E4 works Mondays 15:00-22:00: 16-18 and 18-20 (job done by 21:00) fit today, 20-22
    # does not; Australia Day is a holiday for both; then E1's Wednesday 08-10.
    evenings = tech("E4", hours=(Shift(weekday=1, starts=time(15), ends=time(22)),))
    offer = offer_windows(job(), [tech(), evenings], MONDAY_1310)
    monday = [(sydney(2027, 1, 25, h), sydney(2027, 1, 25, h + 2)) for h in (16, 18)]
    assert spans(offer) == [*monday, wed(8)]
    assert [w.technicians for w in offer.windows] == [("E4",), ("E4",), ("E1",)]


def test_windows_before_arrive_by_first_then_the_earliest_flagged_past_it() -> None:
    offer = offer_windows(job(arrive_by=sydney(2027, 1, 27, 12)), [tech()], MONDAY_1310)
    assert spans(offer) == [wed(8), wed(10), wed(12)]
    assert [w.past_sla for w in offer.windows] == [False, False, True]


def test_nobody_with_the_licence_means_no_windows() -> None:
    unlicensed = tech(licences=())
    assert offer_windows(job(), [unlicensed], MONDAY_1310).windows == ()


def test_windows_are_real_hours_across_the_spring_forward_night() -> None:
    # Sunday 4 October 2026: 00:00 AEST + 2 h is 03:00 AEDT; 02:00 does not exist.
    sundays = tech(hours=(Shift(weekday=7, starts=time(0), ends=time(23, 59)),))
    now = sydney(2026, 10, 3, 20)
    offer = offer_windows(job(duration=timedelta(minutes=30)), [sundays], now)
    starts = [w.starts for w in offer.windows]
    assert starts == [sydney(2026, 10, 4, 0), sydney(2026, 10, 4, 3), sydney(2026, 10, 4, 5)]
    first = offer.windows[0]
    assert first.ends == sydney(2026, 10, 4, 3)
    # Python subtracts two times of one zone by their wall clocks (3 h); 2 h elapse.
    assert first.ends - first.starts == 3 * H
    assert first.ends.astimezone(UTC) - first.starts.astimezone(UTC) == 2 * H
    assert first.label == "Sun 4 Oct 2026, 00:00 AEST-03:00 AEDT"


# -- confirming and rescheduling -------------------------------------------------------


def test_the_customer_confirms_an_offered_window() -> None:
    offer = offer_windows(job(), [tech()], MONDAY_1310)
    chosen = offer.windows[1]
    answer = confirm(chosen, offer, MONDAY_1310 + H)
    assert isinstance(answer, Appointment)
    assert (answer.window, answer.job_id) == (chosen, "wo-7")


def test_a_window_not_offered_expired_or_too_close_is_refused() -> None:
    offer = offer_windows(job(), [tech()], MONDAY_1310)
    other = offer.windows[0].model_copy(
        update={"starts": sydney(2027, 1, 27, 9), "ends": sydney(2027, 1, 27, 11)}
    )
    assert _code(confirm(other, offer, MONDAY_1310)) is RefusalCode.NOT_OFFERED
    assert _code(confirm(offer.windows[0], offer, MONDAY_1310 + 24 * H)) is (
        RefusalCode.OFFER_EXPIRED
    )
    quick = offer.model_copy(update={"expires_at": sydney(2027, 2, 1, 0)})
    too_late = sydney(2027, 1, 27, 6, 1)  # 08-10 can be confirmed until 06:00
    assert _code(confirm(quick.windows[0], quick, too_late)) is RefusalCode.TOO_LATE
    assert isinstance(confirm(quick.windows[1], quick, too_late), Appointment)


def _code(answer: Appointment | ConfirmRefusal) -> RefusalCode:
    assert isinstance(answer, ConfirmRefusal)
    return answer.code


def test_rescheduling_offers_windows_clear_of_the_old_one() -> None:
    old = offer_windows(job(), [tech()], MONDAY_1310).windows[0]  # Wednesday 08-10
    # The technician's booking of this very job no longer blocks them.
    booked = OpenJob(id="wo-7", site=SITE, starts=old.starts, ends=old.ends + H)
    again = reschedule(old, job(), [tech(open_jobs=(booked,))], MONDAY_1310)
    assert spans(again) == [wed(10), wed(12), wed(14)]
    # Turned down again: neither old window comes back, nor anything overlapping them.
    third = reschedule(again.windows[0], job(), [tech()], MONDAY_1310, exclude=[old])
    assert spans(third) == [wed(12), wed(14), (sydney(2027, 1, 28, 8), sydney(2027, 1, 28, 10))]


# -- reminders -------------------------------------------------------------------------


def test_reminders_go_out_a_day_and_an_hour_before() -> None:
    window = offer_windows(job(), [tech()], MONDAY_1310).windows[0]  # Wed 27 Jan 08:00
    assert reminder_due(window, sydney(2027, 1, 26, 7, 59)) is None
    assert reminder_due(window, sydney(2027, 1, 26, 8)) == 24 * H
    assert reminder_due(window, sydney(2027, 1, 26, 9), sent=[24 * H]) is None
    assert reminder_due(window, sydney(2027, 1, 27, 7), sent=[24 * H]) == H
    # The day-before one was missed: only the hour-before one goes.
    assert reminder_due(window, sydney(2027, 1, 27, 7, 30)) == H
    assert reminder_due(window, sydney(2027, 1, 27, 8)) is None  # started
    assert next_reminder_at(window, MONDAY_1310) == sydney(2027, 1, 26, 8)
    assert next_reminder_at(window, sydney(2027, 1, 26, 8)) == sydney(2027, 1, 27, 7)
    assert next_reminder_at(window, sydney(2027, 1, 27, 7)) is None


# -- properties ------------------------------------------------------------------------

ZONES = ("Australia/Sydney", "Australia/Perth", "Australia/Brisbane")
shifts = st.builds(
    lambda day, start, hours: Shift(weekday=day, starts=time(start), ends=time(start + hours)),
    st.integers(1, 7),
    st.integers(0, 14),
    st.integers(1, 9),
)
technicians = st.lists(
    st.builds(
        lambda n, zone, hours, busy: tech(
            f"E{n}",
            time_zone=zone,
            hours=tuple(hours),
            open_jobs=tuple(
                OpenJob(
                    id=f"wo-b{n}{i}",
                    site=SITE,
                    starts=datetime(2026, 10, 1, tzinfo=UTC) + timedelta(minutes=m),
                    ends=datetime(2026, 10, 1, tzinfo=UTC) + timedelta(minutes=m + 90),
                )
                for i, m in enumerate(busy)
            ),
        ),
        st.integers(1, 99),
        st.sampled_from(ZONES),
        st.lists(shifts, max_size=4),
        st.lists(st.integers(0, 9 * 24 * 60), max_size=3),
    ),
    max_size=3,
    unique_by=lambda t: t.employee_no,
)


@settings(max_examples=40, deadline=None)
@given(
    crew=technicians,
    now_minute=st.integers(0, 6 * 24 * 60),
    duration=st.integers(15, 240),
    count=st.integers(1, 5),
)
def test_offered_windows_never_overlap_are_ahead_local_and_inside_a_shift(
    crew: list[Technician], now_minute: int, duration: int, count: int
) -> None:
    now = datetime(2026, 9, 30, 14, tzinfo=UTC) + timedelta(minutes=now_minute)  # DST week
    rules = OfferSettings(count=count, horizon=timedelta(days=8))
    the_job = job(duration=timedelta(minutes=duration))
    offer = offer_windows(the_job, crew, now, rules)
    assert len(offer.windows) <= count
    for before, after in zip(offer.windows, offer.windows[1:], strict=False):
        assert before.ends <= after.starts
    by_no = {t.employee_no: t for t in crew}
    for window in offer.windows:
        assert window.starts >= now + rules.lead
        assert window.starts.tzinfo == SYDNEY
        assert window.ends.tzinfo == SYDNEY
        assert window.ends.astimezone(UTC) - window.starts.astimezone(UTC) == rules.length
        assert window.technicians
        for no in window.technicians:
            zone = ZoneInfo(by_no[no].time_zone)
            block_end = window.ends + the_job.duration
            assert span_within_shift(
                by_no[no].hours, window.starts.astimezone(zone), block_end.astimezone(zone)
            )
