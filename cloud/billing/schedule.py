"""The daily overdue-reminder job: each region's reminders once a local day, at a set
hour of the region's own clock.

Why the region's local date: a document is due on a date, and "7 days overdue" is a
count of the customer's days, not UTC's; a run at 09:00 in Sydney is still the previous
day in UTC. Each region names one zone (its business calendar's default jurisdiction:
Sydney, Los Angeles, Madrid), given in by the composition root.

Why the job needs no memory of its own: :meth:`BillingService.send_reminders` sends each
(document, level) once, so a second run of a day — after a restart, or by hand with
``potr billing reminders`` — sends nothing new. The loop still remembers the last local
day it ran per region so that it runs once a day, not once a check; a process that
starts after the hour runs that day's at once (a missed day is caught up by the next
day's run, since levels are "at least N days").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from contracts.timeutil import utc_now
from contracts.topics import Region

__all__ = ["ReminderSettings", "Reminders", "reminder_day", "run_reminders_daily"]

log = logging.getLogger(__name__)


class ReminderSettings(BaseSettings):
    """``POTR_BILLING_REMINDER_HOUR``: the local hour (0-23, the region's zone) from which
    a day's overdue reminders go out; ``POTR_BILLING_REMINDER_CHECK_S``: how often the
    job looks at the clock."""

    model_config = SettingsConfigDict(
        env_prefix="POTR_BILLING_", extra="ignore", hide_input_in_errors=True
    )

    reminder_hour: int = Field(default=9, ge=0, le=23)
    reminder_check_s: float = Field(default=300.0, gt=0, le=3600)


class Reminders(Protocol):
    """What the job calls: :meth:`BillingService.send_reminders` (blocking)."""

    def send_reminders(self, region: Region, as_of: date) -> Sequence[object]: ...


def reminder_day(now: datetime, zone: ZoneInfo, hour: int, last: date | None) -> date | None:
    """The local day whose reminders are due at ``now`` (aware), or None: the region's
    local date once its local clock reached ``hour``, unless ``last`` (the day last run)
    is that day already."""
    local = now.astimezone(zone)
    if local.hour < hour or local.date() == last:
        return None
    return local.date()


async def run_reminders_daily(
    service: Reminders,
    stop: asyncio.Event,
    *,
    zones: Mapping[Region, ZoneInfo],
    settings: ReminderSettings,
    clock: Callable[[], datetime] = utc_now,
) -> None:
    """Send each region's overdue reminders once a local day from
    ``settings.reminder_hour`` (module docstring), looking every
    ``settings.reminder_check_s`` until ``stop``; a failed run (the database away) is
    tried again at the next check."""
    last: dict[Region, date] = {}
    while not stop.is_set():
        for region, zone in zones.items():
            day = reminder_day(clock(), zone, settings.reminder_hour, last.get(region))
            if day is None:
                continue
            try:
                sent = await asyncio.to_thread(service.send_reminders, region, day)
            except Exception:
                log.exception(
                    "overdue reminders %s %s failed; trying at the next check", region.value, day
                )
                continue
            last[region] = day
            log.info("overdue reminders %s as of %s: %d sent", region.value, day, len(sent))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), settings.reminder_check_s)
