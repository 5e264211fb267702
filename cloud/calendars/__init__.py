"""The regional business calendar shared by every service that counts business time
(dispatch, support SLAs, billing): business days and hours per jurisdiction, public
holidays from the ``holidays`` package, company overrides — data in ``data/<region>.yaml``.

Pure and imports no service; services import it, never each other through it.
Published interface: :class:`BusinessCalendar`, :class:`Holiday`, :class:`CalendarError`,
:func:`builtin_calendar`, :func:`load_calendar`, :func:`known_jurisdiction`,
:func:`is_iana_zone`, :class:`CalendarSpec`, :func:`month_bounds` (a local month in a zone).
"""

from cloud.calendars.calendar import (
    MAX_SPAN_DAYS,
    BusinessCalendar,
    CalendarError,
    Holiday,
)
from cloud.calendars.loader import (
    builtin_calendar,
    calendar_for_country,
    known_jurisdiction,
    load_calendar,
)
from cloud.calendars.months import month_bounds
from cloud.calendars.spec import JURISDICTION_PATTERN, CalendarSpec
from cloud.calendars.zones import MAX_ZONE_LEN, iana_zone, is_iana_zone

__all__ = [
    "JURISDICTION_PATTERN",
    "MAX_SPAN_DAYS",
    "MAX_ZONE_LEN",
    "BusinessCalendar",
    "CalendarError",
    "CalendarSpec",
    "Holiday",
    "builtin_calendar",
    "calendar_for_country",
    "iana_zone",
    "is_iana_zone",
    "known_jurisdiction",
    "load_calendar",
    "month_bounds",
]
