"""The demo's people (issue 13): one user per role — a customer per region owning that
region's demo site, a MOSIE, support, an operator and an admin — and their logins; and
the MOSIEs' staff records (employees service) that dispatch assigns work from (issue 17).

Passwords are made up at start and printed, with the staff's PINs: they are the demo's
logins, the only credentials it shows on purpose. Mail (password resets) goes nowhere.

MOSIEs (:func:`mosie_records`): in AU, E1001 (login), licensed for isolator and inverter
work in NSW and on shift round the clock, so a demo work order finds them whatever the
hour; E1004, whose licences expired yesterday; E1005, on leave (and rostered weekdays
07:00-15:30 only); E1006, rostered weekends only (off shift in the site's business
hours) — all three nearer the AU demo site than E1001, so only the filters keep them
off its jobs; in the US, E2001 (login). E1004-E1006 have no login: records only, for
assignment to refuse.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from email.message import EmailMessage
from zoneinfo import ZoneInfo

from cloud.bootstrap import link_site
from cloud.customers import AccountIn, CustomersService
from cloud.employees import (
    AbsenceIn,
    AbsenceKind,
    BaseLocation,
    EmployeeIn,
    EmployeeService,
    LicenceIn,
    Skill,
    WorkingHours,
)
from cloud.identity import IdentityService, Role, UserIn
from cloud.registry import RegistryService
from contracts.timeutil import utc_now
from contracts.topics import Region

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoLogin:
    role: str
    region: str
    email: str
    password: str
    employee_no: str | None = None
    pin: str | None = None


class NoMail:
    """The demo sends no mail: a reset link is logged instead."""

    def send(self, message: EmailMessage) -> None:
        log.warning("demo: a mail to %s is not sent (%s)", message["To"], message["Subject"])


def create_people(
    identity: IdentityService,
    customers: CustomersService,
    employees: EmployeeService,
    registry: RegistryService,
    sites: dict[str, int],
    *,
    now: datetime | None = None,
) -> list[DemoLogin]:
    """``sites``: region → the demo site id of that region (each gets a customer).
    ``now`` dates the MOSIEs' expired licences and leave (default: the clock)."""
    logins: list[DemoLogin] = []
    for region, site_id in sorted(sites.items()):
        email = f"customer-{region}@demo.potr.example"
        account = customers.add_account(
            Region(region), AccountIn(name=f"Demo customer {region.upper()}", email=email)
        )
        link_site(registry, customers, site_id, account.id)
        login, _ = _user(identity, Role.CUSTOMER, region, email, account_id=account.id)
        logins.append(login)
    # The printed MOSIEs first, AU before US: the first "mosie" printed is the AU one.
    records = mosie_records((now or utc_now()).astimezone(AU_ZONE).date())
    for record, away in records:
        user_id = None
        if record.employee_no in MOSIE_LOGINS:
            email = f"mosie-{record.region.value}@demo.potr.example"
            if record.region is Region.AU:  # the address the demo always printed
                email = "mosie@demo.potr.example"
            login, user_id = _user(
                identity, Role.MOSIE, record.region.value, email, employee_no=record.employee_no
            )
            logins.append(login)
        employees.add(record.model_copy(update={"user_id": user_id}))
        for absence in away:
            employees.add_absence(record.employee_no, absence)
    staff = [(Role.SUPPORT, "E1002"), (Role.OPERATOR, "E1003")]
    for role, employee_no in staff:
        email = f"{role.value}@demo.potr.example"
        logins.append(_user(identity, role, "au", email, employee_no=employee_no)[0])
    logins.append(_user(identity, Role.ADMIN, "au", "admin@demo.potr.example")[0])
    return logins


#: The demo MOSIEs' dates are Sydney's (the acceptance's jobs are in NSW).
AU_ZONE = ZoneInfo("Australia/Sydney")
#: The MOSIEs who sign in (printed); the others are records for assignment to refuse.
MOSIE_LOGINS = ("E1001", "E2001")
#: Every day 00:00-23:59 local: the demo's jobs are assignable at any hour. (A span
#: cannot end at 24:00: ``WorkingHours`` are times of one day.)
ROUND_THE_CLOCK = [WorkingHours(weekday=d, starts=time(0), ends=time(23, 59)) for d in range(1, 8)]
OFFICE_HOURS = [WorkingHours(weekday=d, starts=time(7), ends=time(15, 30)) for d in range(1, 6)]
WEEKENDS = [WorkingHours(weekday=d, starts=time(7), ends=time(15, 30)) for d in (6, 7)]
_FIELD_SKILLS = [
    Skill(code=c)
    for c in ("dc_isolation", "first_aid", "inverter_commissioning", "pv_install", "roof_work")
]


def _au_licences(valid_from: date, expires_on: date, serial: str) -> list[LicenceIn]:
    """What isolator and inverter work in NSW asks: the state's electrical licence and
    the national SAA accreditation (with its battery endorsement)."""
    return [
        LicenceIn(
            kind="au-electrical",
            jurisdiction="AU-NSW",
            number=f"{serial}C",
            valid_from=valid_from,
            expires_on=expires_on,
        ),
        LicenceIn(
            kind="au-saa-accreditation",
            jurisdiction="AU",
            number=f"A{serial}",
            valid_from=valid_from,
            expires_on=expires_on,
        ),
        LicenceIn(
            kind="au-battery-endorsement",
            jurisdiction="AU",
            number=f"B{serial}",
            valid_from=valid_from,
            expires_on=expires_on,
        ),
    ]


def _au_mosie(no: str, name: str, lat: float, lon: float, **fields: object) -> EmployeeIn:
    record = {
        "employee_no": no,
        "name": name,
        "region": Region.AU,
        "jurisdiction": "AU-NSW",
        "base": BaseLocation(latitude=lat, longitude=lon, address=f"Demo depot {name}"),
        "time_zone": "Australia/Sydney",
        "skills": _FIELD_SKILLS,
    }
    return EmployeeIn.model_validate(record | fields)


def mosie_records(today: date) -> list[tuple[EmployeeIn, list[AbsenceIn]]]:
    """The demo's MOSIE records and their absences, ``today`` being Sydney's date: the
    printed ones (:data:`MOSIE_LOGINS`) first."""
    yesterday = today - timedelta(days=1)
    years_ago = today.replace(year=today.year - 2, day=1)
    in_years = today.replace(year=today.year + 3, day=1)
    leave = AbsenceIn(
        starts_on=yesterday, ends_on=today + timedelta(days=13), kind=AbsenceKind.ANNUAL_LEAVE
    )
    return [
        (  # Parramatta, ~20 km from the Sydney demo site: the only one eligible there.
            _au_mosie(
                "E1001",
                "Alex Demo (AU MOSIE)",
                -33.815,
                151.003,
                licences=_au_licences(years_ago, in_years, "100101"),
                hours=ROUND_THE_CLOCK,
            ),
            [],
        ),
        (
            EmployeeIn(
                employee_no="E2001",
                name="Sam Demo (US MOSIE)",
                region=Region.US,
                jurisdiction="US-CA",
                base=BaseLocation(latitude=34.05, longitude=-118.25, address="Demo depot LA"),
                time_zone="America/Los_Angeles",
                skills=_FIELD_SKILLS,
                licences=[
                    LicenceIn(
                        kind="us-state-electrical",
                        jurisdiction="US-CA",
                        number="C10-200101",
                        valid_from=years_ago,
                        expires_on=in_years,
                    ),
                    LicenceIn(
                        kind="us-nabcep-pv",
                        jurisdiction="US",
                        number="PV-200101",
                        valid_from=years_ago,
                        expires_on=in_years,
                    ),
                ],
                hours=ROUND_THE_CLOCK,
            ),
            [],
        ),
        (  # In the CBD beside the site, on shift, but every licence ended yesterday.
            _au_mosie(
                "E1004",
                "Jo Demo (AU, licence expired)",
                -33.871,
                151.209,
                licences=_au_licences(years_ago, yesterday, "100401"),
                hours=ROUND_THE_CLOCK,
            ),
            [],
        ),
        (  # Beside the site, licensed, but on leave and rostered office hours only.
            _au_mosie(
                "E1005",
                "Kim Demo (AU, on leave)",
                -33.869,
                151.211,
                licences=_au_licences(years_ago, in_years, "100501"),
                hours=OFFICE_HOURS,
            ),
            [leave],
        ),
        (  # Beside the site, licensed, not away, but rostered weekends only: a job in the
            # site's business hours (weekdays) is off their shift.
            _au_mosie(
                "E1006",
                "Lee Demo (AU, weekends only)",
                -33.870,
                151.210,
                licences=_au_licences(years_ago, in_years, "100601"),
                hours=WEEKENDS,
            ),
            [],
        ),
    ]


def _user(
    identity: IdentityService,
    role: Role,
    region: str,
    email: str,
    *,
    account_id: str | None = None,
    employee_no: str | None = None,
) -> tuple[DemoLogin, str]:
    """The login and the new user's id."""
    password = f"demo-{secrets.token_urlsafe(9)}"
    created = identity.create_user(
        UserIn(
            email=email,
            display_name=f"Demo {role.value} {region}",
            role=role,
            home_region=Region(region),
            account_id=account_id,
            employee_no=employee_no,
            password=password,
        ),
        actor="demo",
    )
    return DemoLogin(role.value, region, email, password, employee_no, created.pin), created.id
