"""MOSIE assignment (issue 17): ``assign_many`` over open work orders, beside the bare
eligibility filter (``eligible`` for every job over every technician) of the same inputs.

    .venv/bin/python -m bench.dispatch [--jobs 1000] [--technicians 500] [--seed 17]

Synthetic, seeded: three regions (technicians 40 % au around Sydney, 35 % us around Los
Angeles, 25 % es around Madrid; jobs in the same shares), the week of Monday 7 December
2026 (8 December is a national holiday in Spain), licence mixes of each region's
catalogue kinds with about one in ten expired before the week, weekday shifts (some
early, some Saturday), one technician in twelve on leave part of the week, and one in
five already holding an open job.
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import date, datetime, timedelta
from datetime import time as clock
from zoneinfo import ZoneInfo

from bench.common import report
from cloud.dispatch.assignment import (
    Assignment,
    Away,
    HeldLicence,
    Job,
    Location,
    OpenJob,
    Shift,
    Technician,
    assign_many,
    eligible,
)
from contracts.topics import Region

MONDAY = date(2026, 12, 7)
#: region: (share, jurisdiction, zone, centre, licence kinds with (jurisdiction, share held))
REGIONS = {
    Region.AU: (
        0.40,
        "AU-NSW",
        "Australia/Sydney",
        (-33.87, 151.21),
        {
            "au-electrical": ("AU-NSW", 0.9),
            "au-saa-accreditation": ("AU", 0.7),
            "au-battery-endorsement": ("AU", 0.4),
        },
    ),
    Region.US: (
        0.35,
        "US-CA",
        "America/Los_Angeles",
        (34.05, -118.24),
        {"us-state-electrical": ("US-CA", 0.9), "us-nabcep-pv": ("US", 0.6)},
    ),
    Region.ES: (
        0.25,
        "ES-MD",
        "Europe/Madrid",
        (40.42, -3.70),
        {"es-instalador-autorizado": ("ES", 0.95)},
    ),
}


def _pick_region(rng: random.Random) -> Region:
    return rng.choices(list(REGIONS), weights=[v[0] for v in REGIONS.values()])[0]


def _near(rng: random.Random, centre: tuple[float, float], spread: float = 0.35) -> Location:
    return Location(
        latitude=centre[0] + rng.uniform(-spread, spread),
        longitude=centre[1] + rng.uniform(-spread, spread),
    )


def technician(rng: random.Random, no: int) -> Technician:
    region = _pick_region(rng)
    _, home, zone, centre, kinds = REGIONS[region]
    licences = []
    for kind, (where, share) in kinds.items():
        if rng.random() < share:
            expired = rng.random() < 0.1
            expires = MONDAY + timedelta(days=rng.randint(-60, -1) if expired else 400)
            licences.append(
                HeldLicence(
                    kind=kind,
                    jurisdiction=where,
                    valid_from=date(2020, 1, 1),
                    expires_on=expires if rng.random() < 0.8 or expired else None,
                )
            )
    start, end = rng.choice([(7, 15), (8, 17), (8, 17), (9, 18)])
    days = [1, 2, 3, 4, 5] + ([6] if rng.random() < 0.15 else [])
    hours = tuple(Shift(weekday=d, starts=clock(start), ends=clock(end)) for d in days)
    absences: tuple[Away, ...] = ()
    if rng.random() < 1 / 12:
        first = MONDAY + timedelta(days=rng.randint(0, 4))
        absences = (Away(starts_on=first, ends_on=first + timedelta(days=rng.randint(0, 4))),)
    held: tuple[OpenJob, ...] = ()
    if rng.random() < 0.2:
        held = (OpenJob(id=f"held-{no}", site=_near(rng, centre)),)
    return Technician(
        employee_no=f"E{no}",
        region=region,
        jurisdiction=home,
        time_zone=zone,
        base=_near(rng, centre),
        licences=tuple(licences),
        hours=hours,
        absences=absences,
        open_jobs=held,
        current=_near(rng, centre) if rng.random() < 0.3 else None,
    )


def job(rng: random.Random, n: int) -> Job:
    region = _pick_region(rng)
    _, where, zone, centre, kinds = REGIONS[region]
    day = MONDAY + timedelta(days=rng.randint(0, 4))
    starts = datetime.combine(day, clock(rng.choice([8, 10, 13, 15])), ZoneInfo(zone))
    needed = rng.sample(sorted(kinds), k=rng.randint(1, min(2, len(kinds))))
    return Job(
        id=f"wo-{n}",
        region=region,
        jurisdiction=where,
        licences=tuple(sorted(needed)),
        priority=rng.choice([1, 2, 2, 3, 3, 3, 4]),
        sla_due=starts + timedelta(hours=rng.randint(2, 72)),
        site=_near(rng, centre),
        starts=starts,
        ends=starts + timedelta(hours=2),
        duration=timedelta(minutes=rng.choice([45, 60, 90, 120])),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--technicians", type=int, default=500)
    parser.add_argument("--seed", type=int, default=17)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    crew = [technician(rng, no) for no in range(1, args.technicians + 1)]
    jobs = [job(rng, n) for n in range(1, args.jobs + 1)]
    assign_many(jobs[:5], crew)  # warm the calendars' holiday tables and zone caches

    t0 = time.perf_counter()
    eligible_pairs = sum(v.eligible for j in jobs for v in eligible(j, crew))
    baseline = len(jobs) / (time.perf_counter() - t0)

    t0 = time.perf_counter()
    result = assign_many(jobs, crew)
    rate = len(jobs) / (time.perf_counter() - t0)

    assigned = sum(isinstance(o, Assignment) for o in result.outcomes)
    print(
        f"{len(jobs):,} open work orders, {len(crew):,} technicians "
        f"({len(jobs) * len(crew):,} pairs, {eligible_pairs:,} eligible before any booking)"
    )
    report("baseline: eligible() for every job", baseline, baseline, "jobs/s")
    report("assign_many (filter + score + book)", rate, baseline, "assignments/s")
    print(f"{'':<44} {assigned:,} assigned, {len(jobs) - assigned:,} with nobody eligible")


if __name__ == "__main__":
    main()
