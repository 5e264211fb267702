"""Pure rules over a worker's credentials and working time, shared by the service that
keeps staff records (employees) and the one that assigns them work (dispatch).

Services never import each other (decision 43), yet both must judge a licence or a
shift by the same rule, so the rules live here, over protocols rather than either
service's models: anything with the named attributes fits (employees' ``LicenceIn``,
``Skill``, ``Absence``, ``WorkingHours``; dispatch's technician snapshot). Knows no
service.

Dates are local calendar days; a licence or skill is valid on its first and its last day
(``valid_from``, ``expires_on`` both included). Jurisdictions are ISO codes: one held for
a whole country (``ES``) covers work in each of its subdivisions (``ES-CN``); one of a
subdivision covers that subdivision only.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time
from typing import Protocol


class HeldLicence(Protocol):
    @property
    def kind(self) -> str: ...
    @property
    def jurisdiction(self) -> str: ...
    @property
    def valid_from(self) -> date: ...
    @property
    def expires_on(self) -> date | None: ...


class HeldSkill(Protocol):
    @property
    def code(self) -> str: ...
    @property
    def jurisdiction(self) -> str | None: ...
    @property
    def expires_on(self) -> date | None: ...


class DaysAway(Protocol):
    """Whole local days away, ``starts_on`` to ``ends_on`` included."""

    @property
    def starts_on(self) -> date: ...
    @property
    def ends_on(self) -> date: ...


class ShiftSpan(Protocol):
    """One weekly span of working time: ISO ``weekday``, local ``starts`` < ``ends``."""

    @property
    def weekday(self) -> int: ...
    @property
    def starts(self) -> time: ...
    @property
    def ends(self) -> time: ...


def covers(held: str, wanted: str) -> bool:
    """A credential of jurisdiction ``held`` counts for work in ``wanted``."""
    return held == wanted or ("-" not in held and wanted.startswith(held + "-"))


def licence_valid_on(
    licences: Iterable[HeldLicence], kind: str, jurisdiction: str, day: date
) -> bool:
    """Some licence of ``kind`` covering ``jurisdiction`` is valid on ``day``."""
    return any(
        lic.kind == kind
        and covers(lic.jurisdiction, jurisdiction)
        and lic.valid_from <= day
        and (lic.expires_on is None or day <= lic.expires_on)
        for lic in licences
    )


def skill_valid_on(skills: Iterable[HeldSkill], code: str, jurisdiction: str, day: date) -> bool:
    """The skill ``code`` is held, counts in ``jurisdiction`` and has not expired by ``day``."""
    return any(
        s.code == code
        and (s.jurisdiction is None or covers(s.jurisdiction, jurisdiction))
        and (s.expires_on is None or day <= s.expires_on)
        for s in skills
    )


def absent_on(absences: Iterable[DaysAway], day: date) -> bool:
    return any(a.starts_on <= day <= a.ends_on for a in absences)


def span_within_shift(hours: Iterable[ShiftSpan], starts: datetime, ends: datetime) -> bool:
    """``starts``..``ends`` — local wall-clock instants of one zone, already converted by
    the caller — lie on one local day inside one working span (``ends`` may equal the
    span's end). Holidays and absences are the caller's to check."""
    day = starts.date()
    if ends.date() != day or ends < starts:
        return False
    first, last = starts.time().replace(tzinfo=None), ends.time().replace(tzinfo=None)
    weekday = day.isoweekday()
    return any(h.weekday == weekday and h.starts <= first and last <= h.ends for h in hours)
