"""The calendars shipped in ``data/`` (one YAML per region), read once."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import yaml

from cloud.calendars.calendar import BusinessCalendar
from cloud.calendars.spec import JURISDICTION_PATTERN, CalendarSpec
from contracts.topics import Region

DATA_DIR = Path(__file__).resolve().parent / "data"


def load_calendar(path: Path) -> BusinessCalendar:
    """A calendar from a YAML file; ``pydantic.ValidationError`` names what is wrong."""
    return BusinessCalendar(CalendarSpec.model_validate(yaml.safe_load(path.read_text("utf-8"))))


@cache
def builtin_calendar(region: Region) -> BusinessCalendar:
    """The shipped calendar of ``region`` (``data/<region>.yaml``)."""
    return load_calendar(DATA_DIR / f"{Region(region).value}.yaml")


def calendar_for_country(country: str) -> BusinessCalendar | None:
    """The shipped calendar whose country is ``country`` (``AU``), if any."""
    for region in Region:
        calendar = builtin_calendar(region)
        if calendar.country == country:
            return calendar
    return None


def known_jurisdiction(code: str) -> bool:
    """True for a jurisdiction some shipped calendar lists (``AU-NSW``, ``ES``)."""
    if not re.match(JURISDICTION_PATTERN, code):
        return False
    calendar = calendar_for_country(code[:2])
    return calendar is not None and code in calendar.jurisdictions
