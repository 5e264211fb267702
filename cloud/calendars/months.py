"""Local months: where a month begins and ends on a zone's clock (reports, support)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

__all__ = ["month_bounds"]


def month_bounds(month: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The local month's first midnight and the next month's first midnight in ``zone``
    (aware) — the month of ``month``, whatever its day."""
    first = month.replace(day=1)
    after = (first + timedelta(days=32)).replace(day=1)
    return datetime.combine(first, time(), zone), datetime.combine(after, time(), zone)
