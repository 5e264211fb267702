"""Dispatch's assignment (issue 17): hard filters, score, override, the batch.

The property tests judge eligibility with :func:`oracle_eligible`, the rules written out
again plainly here (not :func:`eligible`); holidays come from a hand table of the week
used (Australia Day, Tuesday 26 January 2027, in NSW and Victoria; none in California).
Distances in the hand examples lie on one meridian, where the haversine is the arc
R·Δφ: 0.1° is 6371.0088 * 0.1 * π/180 = 11.1195 km.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.dispatch.assignment import (
    Assignment,
    Away,
    HeldLicence,
    Job,
    Location,
    NoneEligible,
    OpenJob,
    OverrideRefused,
    Reason,
    Shift,
    Technician,
    assign,
    assign_many,
    eligible,
    haversine_km,
    override,
)
from contracts.topics import Region

SYDNEY = ZoneInfo("Australia/Sydney")
LA = ZoneInfo("America/Los_Angeles")
MONDAY = date(2027, 1, 25)
WEEK = [MONDAY + timedelta(days=n) for n in range(7)]
HOLIDAYS = {"AU-NSW": {date(2027, 1, 26)}, "AU-VIC": {date(2027, 1, 26)}, "US-CA": set()}
ZONES = {"AU-NSW": SYDNEY, "AU-VIC": ZoneInfo("Australia/Melbourne"), "US-CA": LA}
KM_PER_TENTH_DEGREE = 11.1195
WEEKDAYS_8_TO_5 = tuple(Shift(weekday=d, starts=time(8), ends=time(17)) for d in range(1, 6))


def au_job(day: date = MONDAY, start: int = 10, **changes: object) -> Job:
    fields: dict[str, object] = {
        "id": "wo-1",
        "region": Region.AU,
        "jurisdiction": "AU-NSW",
        "licences": ("au-electrical",),
        "priority": 2,
        "sla_due": datetime.combine(day, time(17), SYDNEY),
        "site": Location(latitude=-34.0, longitude=151.2),
        "starts": datetime.combine(day, time(start), SYDNEY),
        "ends": datetime.combine(day, time(start + 2), SYDNEY),
        "duration": timedelta(hours=1),
    }
    return Job.model_validate(fields | changes)


def au_tech(no: str = "E1", *, expires: date | None = None, **changes: object) -> Technician:
    fields: dict[str, object] = {
        "employee_no": no,
        "region": Region.AU,
        "jurisdiction": "AU-NSW",
        "time_zone": "Australia/Sydney",
        "base": Location(latitude=-33.9, longitude=151.2),
        "licences": (
            HeldLicence(
                kind="au-electrical",
                jurisdiction="AU-NSW",
                valid_from=date(2020, 1, 1),
                expires_on=expires,
            ),
        ),
        "hours": WEEKDAYS_8_TO_5,
    }
    return Technician.model_validate(fields | changes)


def us_tech(no: str = "E9") -> Technician:
    return Technician(
        employee_no=no,
        region=Region.US,
        jurisdiction="US-CA",
        time_zone="America/Los_Angeles",
        base=Location(latitude=34.05, longitude=-118.25),
        licences=(
            HeldLicence(kind="us-state-electrical", jurisdiction="US-CA", valid_from=MONDAY),
        ),
        hours=WEEKDAYS_8_TO_5,
    )


def reasons(job: Job, tech: Technician) -> set[Reason]:
    (verdict,) = eligible(job, [tech])
    return {r.reason for r in verdict.refusals}


# -- hand examples ---------------------------------------------------------------------


def test_an_au_job_goes_to_the_licensed_au_mosie_not_the_us_one() -> None:
    outcome = assign(au_job(), [us_tech("E1"), au_tech("E2")])
    assert isinstance(outcome, Assignment)
    assert outcome.employee_no == "E2"
    assert reasons(au_job(), us_tech()) == {Reason.REGION}  # the first gate says it all


def test_a_licence_expired_the_day_before_the_job_excludes() -> None:
    expired = au_tech("E1", expires=MONDAY - timedelta(days=1))
    assert reasons(au_job(), expired) == {Reason.LICENCE}
    assert reasons(au_job(), au_tech("E1", expires=MONDAY)) == set()  # last day counts
    assert isinstance(assign(au_job(), [expired]), NoneEligible)


@pytest.mark.parametrize(
    ("job", "tech", "why"),
    [
        (au_job(start=16), au_tech(), Reason.OFF_SHIFT),  # 16:00-18:00, shift ends 17:00
        (au_job(day=WEEK[5]), au_tech(), Reason.OFF_SHIFT),  # Saturday
        (
            au_job(),
            au_tech(absences=(Away(starts_on=MONDAY, ends_on=MONDAY),)),
            Reason.ABSENT,
        ),
        (au_job(day=WEEK[1]), au_tech(), Reason.HOLIDAY),  # Australia Day
    ],
    ids=["outside-hours", "weekend", "on-leave", "public-holiday"],
)
def test_an_off_shift_mosie_is_not_picked(job: Job, tech: Technician, why: Reason) -> None:
    assert reasons(job, tech) == {why}
    outcome = assign(job, [tech])
    assert isinstance(outcome, NoneEligible)
    assert outcome.verdicts[0].refusals[0].reason is why


def test_a_window_ending_as_the_shift_ends_fits() -> None:
    assert reasons(au_job(start=15), au_tech()) == set()  # 15:00-17:00


def test_the_nearer_wins_unless_it_carries_more_work() -> None:
    near = au_tech("E2")  # base -33.9: 0.1° north of the site, 11.12 km
    far = au_tech("E1", base=Location(latitude=-34.3, longitude=151.2))  # 0.3°: 33.36 km
    assert haversine_km(near.base, au_job().site) == pytest.approx(KM_PER_TENTH_DEGREE, abs=1e-3)
    job = au_job(priority=3)  # travel factor 1: cost = km + 25 per open job
    outcome = assign(job, [far, near])
    assert isinstance(outcome, Assignment)
    assert outcome.employee_no == "E2"
    assert outcome.score.total == pytest.approx(11.1195, abs=1e-3)
    # One open job: 11.12 + 25 = 36.12 against the far one's 33.36.
    loaded = near.model_copy(update={"open_jobs": (OpenJob(id="wo-0", site=job.site),)})
    outcome = assign(job, [loaded, far])
    assert isinstance(outcome, Assignment)
    assert outcome.employee_no == "E1"
    assert [s.employee_no for s in outcome.shortlist] == ["E1", "E2"]
    assert outcome.shortlist[1].total == pytest.approx(36.1195, abs=1e-3)
    # A P1 job doubles travel: 22.24 + 25 = 47.24 beats 66.72.
    outcome = assign(au_job(priority=1), [loaded, far])
    assert isinstance(outcome, Assignment)
    assert outcome.employee_no == "E2"


def test_distance_counts_from_the_current_job_rather_than_the_base() -> None:
    on_site = au_tech("E1", current=Location(latitude=-34.0, longitude=151.2))
    far_base = on_site.model_copy(update={"base": Location(latitude=-30.0, longitude=151.2)})
    outcome = assign(au_job(), [au_tech("E2"), far_base])
    assert isinstance(outcome, Assignment)
    assert outcome.employee_no == "E1"
    assert outcome.score.distance_km == 0.0
    assert outcome.score.from_current_job


def test_equal_scores_go_to_the_lower_employee_number() -> None:
    outcome = assign(au_job(), [au_tech("E7"), au_tech("E3")])
    assert isinstance(outcome, Assignment)
    assert outcome.employee_no == "E3"


def test_an_employee_record_is_a_technician_snapshot() -> None:
    from cloud.employees import BaseLocation, Employee, Licence, WorkingHours

    now = datetime(2027, 1, 1, tzinfo=UTC)
    record = Employee(
        employee_no="E5",
        user_id=None,
        name="Sam",
        region=Region.AU,
        jurisdiction="AU-NSW",
        base=BaseLocation(latitude=-33.9, longitude=151.2, address="Depot"),
        time_zone="Australia/Sydney",
        active=True,
        skills=[],
        licences=[
            Licence(
                id=1,
                kind="au-electrical",
                jurisdiction="AU-NSW",
                number="123456C",
                valid_from=date(2020, 1, 1),
            )
        ],
        hours=[WorkingHours(weekday=1, starts=time(8), ends=time(17))],
        absences=[],
        created_at=now,
        updated_at=now,
    )
    tech = Technician.model_validate(record.model_dump())
    assert reasons(au_job(), tech) == set()


# -- override --------------------------------------------------------------------------


def test_an_override_to_a_lower_ranked_eligible_mosie_is_recorded() -> None:
    first = assign(
        au_job(), [au_tech("E1"), au_tech("E2", base=Location(latitude=-35, longitude=151.2))]
    )
    assert isinstance(first, Assignment)
    assert first.employee_no == "E1"
    moved = override(first, au_tech("E2"), "  customer asked for Sam  ", "E100")
    assert moved.employee_no == "E2"
    assert moved.override is not None
    assert moved.override.replaced == "E1"
    assert moved.override.by == "E100"
    assert moved.override.reason == "customer asked for Sam"
    assert not moved.override.skipped_eligibility


def test_an_override_past_hours_is_allowed_and_says_it_skipped_eligibility() -> None:
    first = assign(au_job(), [au_tech("E1")])
    assert isinstance(first, Assignment)
    weekend_off = au_tech("E2", absences=(), hours=())
    moved = override(first, weekend_off, "overtime agreed by phone", "E100")
    assert moved.override is not None
    assert moved.override.skipped_eligibility
    assert {r.reason for r in moved.override.refusals} == {Reason.OFF_SHIFT}


@pytest.mark.parametrize(
    ("tech", "why"),
    [
        (us_tech("E2"), Reason.REGION),
        (au_tech("E2", expires=MONDAY - timedelta(days=1)), Reason.LICENCE),
        (au_tech("E2", absences=(Away(starts_on=MONDAY, ends_on=MONDAY),)), Reason.ABSENT),
    ],
)
def test_an_override_against_law_safety_or_leave_is_refused(tech: Technician, why: Reason) -> None:
    first = assign(au_job(), [au_tech("E1")])
    assert isinstance(first, Assignment)
    with pytest.raises(OverrideRefused) as refused:
        override(first, tech, "nearest", "E100")
    assert why in {r.reason for r in refused.value.refusals}


@pytest.mark.parametrize("reason", ["", "   ", "x" * 501, "bad\nline"])
def test_an_override_needs_a_short_printable_reason(reason: str) -> None:
    first = assign(au_job(), [au_tech("E1")])
    assert isinstance(first, Assignment)
    with pytest.raises(OverrideRefused):
        override(first, au_tech("E2"), reason, "E100")


# -- the batch -------------------------------------------------------------------------


def test_the_batch_serves_the_soonest_due_first_and_never_double_books() -> None:
    urgent = au_job(id="wo-urgent", sla_due=datetime.combine(MONDAY, time(12), SYDNEY))
    later = au_job(id="wo-later")  # same window, due 17:00
    near, far = au_tech("E1"), au_tech("E2", base=Location(latitude=-34.3, longitude=151.2))
    result = assign_many([later, urgent], [far, near])
    assert [(o.job.id, getattr(o, "employee_no", None)) for o in result.outcomes] == [
        ("wo-urgent", "E1"),
        ("wo-later", "E2"),  # E1 is booked on wo-urgent for that window
    ]
    third = au_job(id="wo-3", sla_due=datetime.combine(MONDAY, time(18), SYDNEY))
    result = assign_many([later, urgent, third], [near])
    assert isinstance(result.outcomes[1], NoneEligible)
    assert {r.reason for r in result.outcomes[1].verdicts[0].refusals} == {Reason.BUSY}
    assert [j.id for j in result.technicians[0].open_jobs] == ["wo-urgent"]


# -- properties ------------------------------------------------------------------------

KINDS = {
    Region.AU: [
        ("au-electrical", "AU-NSW"),
        ("au-electrical", "AU-VIC"),
        ("au-saa-accreditation", "AU"),
    ],
    Region.US: [("us-state-electrical", "US-CA"), ("us-nabcep-pv", "US")],
}
HOMES = {
    Region.AU: [("AU-NSW", "Australia/Sydney"), ("AU-VIC", "Australia/Melbourne")],
    Region.US: [("US-CA", "America/Los_Angeles")],
}
SPANS = [(6, 20), (7, 15), (8, 17), (9, 13), (12, 20)]
ANY_KIND = KINDS[Region.AU] + KINDS[Region.US]
days = st.sampled_from(WEEK)


@st.composite
def technicians(draw: st.DrawFn, no: int) -> Technician:
    region = draw(st.sampled_from([Region.AU, Region.US]))
    home, zone = draw(st.sampled_from(HOMES[region]))
    licences = [
        HeldLicence(
            kind=kind,
            jurisdiction=where,
            valid_from=draw(st.sampled_from([date(2020, 1, 1)] * 4 + WEEK)),
            expires_on=draw(st.sampled_from([None] * 4 + WEEK)),
        )
        # Mostly their own region's kinds; the rest any, so foreign ones turn up too.
        for kind, where in draw(st.lists(st.sampled_from(KINDS[region] * 2 + ANY_KIND), max_size=3))
    ]
    licences = [
        lic for lic in licences if lic.expires_on is None or lic.expires_on >= lic.valid_from
    ]
    hours = [
        Shift(weekday=d, starts=time(a), ends=time(b))
        for d in draw(st.sets(st.integers(1, 7), min_size=3, max_size=7))
        for a, b in [draw(st.sampled_from(SPANS))]
    ]
    absences = [
        Away(starts_on=d, ends_on=d + timedelta(days=draw(st.integers(0, 2))))
        for d in draw(st.lists(days, max_size=1))[: draw(st.integers(0, 3)) // 3]
    ]
    booked = [
        OpenJob(
            id=f"held-{no}-{i}",
            site=Location(latitude=-34.0, longitude=151.0),
            starts=(s := datetime.combine(d, time(h), ZoneInfo(zone))),
            ends=s + timedelta(hours=2),
        )
        for i, (d, h) in enumerate(draw(st.lists(st.tuples(days, st.integers(6, 18)), max_size=2)))
    ]
    return Technician(
        employee_no=f"E{no}",
        region=region,
        jurisdiction=home,
        time_zone=zone,
        base=Location(latitude=draw(st.floats(-35, -33)), longitude=draw(st.floats(150, 152))),
        active=draw(st.sampled_from([True, True, True, False])),
        licences=tuple(licences),
        hours=tuple(hours),
        absences=tuple(absences),
        open_jobs=tuple(booked),
    )


@st.composite
def jobs(draw: st.DrawFn) -> Job:
    region = draw(st.sampled_from([Region.AU, Region.US]))
    where, zone = draw(st.sampled_from(HOMES[region]))
    kinds = sorted({k for k, _ in draw(st.lists(st.sampled_from(KINDS[region]), max_size=1))})
    starts = datetime.combine(draw(days), time(draw(st.integers(6, 17))), ZoneInfo(zone))
    return Job(
        id="wo-p",
        region=region,
        jurisdiction=where,
        licences=tuple(kinds),
        priority=draw(st.integers(1, 4)),
        sla_due=starts + timedelta(hours=8),
        site=Location(latitude=draw(st.floats(-35, -33)), longitude=draw(st.floats(150, 152))),
        starts=starts,
        ends=starts + timedelta(hours=draw(st.integers(1, 3))),
        duration=timedelta(hours=1),
    )


@st.composite
def crews(draw: st.DrawFn) -> list[Technician]:
    return [draw(technicians(no)) for no in range(1, draw(st.integers(0, 6)) + 1)]


def oracle_eligible(job: Job, tech: Technician) -> bool:
    """The hard filters, written out plainly."""
    if tech.region != job.region or not tech.active:
        return False
    job_day = job.starts.astimezone(ZONES[job.jurisdiction]).date()
    for kind in job.licences:
        good = False
        for lic in tech.licences:
            place_ok = lic.jurisdiction == job.jurisdiction or (
                "-" not in lic.jurisdiction and job.jurisdiction.startswith(lic.jurisdiction + "-")
            )
            in_date = lic.valid_from <= job_day and (
                lic.expires_on is None or job_day <= lic.expires_on
            )
            if lic.kind == kind and place_ok and in_date:
                good = True
        if not good:
            return False
    start = job.starts.astimezone(ZoneInfo(tech.time_zone))
    end = job.ends.astimezone(ZoneInfo(tech.time_zone))
    if start.date() != end.date():
        return False
    day = start.date()
    inside = False
    for span in tech.hours:
        if (
            span.weekday == day.isoweekday()
            and span.starts <= start.time()
            and end.time() <= span.ends
        ):
            inside = True
    if not inside or day in HOLIDAYS[tech.jurisdiction]:
        return False
    for away in tech.absences:
        if away.starts_on <= day <= away.ends_on:
            return False
    for held in tech.open_jobs:
        assert held.starts is not None
        assert held.ends is not None
        if held.starts < job.ends and job.starts < held.ends:
            return False
    return True


@settings(max_examples=100, deadline=None)
@given(job=jobs(), crew=crews())
def test_assignment_picks_an_eligible_technician_whenever_there_is_one(
    job: Job, crew: list[Technician]
) -> None:
    fit = {t.employee_no for t in crew if oracle_eligible(job, t)}
    outcome = assign(job, crew)
    if fit:
        assert isinstance(outcome, Assignment)
        assert outcome.employee_no in fit
        assert {s.employee_no for s in outcome.shortlist} == fit
        assert outcome.shortlist[0].employee_no == outcome.employee_no
    else:
        assert isinstance(outcome, NoneEligible)
        assert all(v.refusals for v in outcome.verdicts)
    assert {v.employee_no for v in eligible(job, crew) if v.eligible} == fit
