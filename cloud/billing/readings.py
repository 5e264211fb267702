"""A site's meter hours for billing, read through :class:`~cloud.billing.ports.MeterHours`:
the local days of a billing period (UTC hours from the site's local midnight, so days of
23 and 25 hours are what they are) and the :data:`HISTORY_DAYS` before it, whose complete
hours estimate the period's missing ones (:func:`~cloud.billing.ledger.hour_profile`).

Registers per hour (decision 119): the billing meter's forward (``import_wh``) and
reverse (``export_wh``) registers, the grid meter's export. A plan billing production
(US) reads only the forward register; its reverse and export are zero (a US system
meter need not report them, and the basis does not use them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from cloud.billing.ledger import MeterHour
from cloud.billing.ports import MeterHours
from cloud.billing.rating import BillingPeriod
from cloud.billing.tariffs import Plan
from contracts.topics import Region

__all__ = ["HISTORY_DAYS", "Meters", "SiteHours", "local_midnight", "read_site_hours"]

#: Local days before a period whose complete hours estimate the period's missing ones.
HISTORY_DAYS = 7
_HOUR = timedelta(hours=1)


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The start of local ``day`` in ``zone``, in UTC."""
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Meters:
    """The meters a ledger line was read from: serials and the devices that answered
    (no grid meter where none was read)."""

    billing_meter: str
    billing_device: int
    grid_meter: str | None
    grid_device: int | None


@dataclass(frozen=True, slots=True)
class SiteHours:
    history: tuple[MeterHour, ...]
    period: tuple[MeterHour, ...]
    meters: Meters


def read_site_hours(
    read: MeterHours,
    region: Region,
    site_id: int,
    period: BillingPeriod,
    zone: ZoneInfo,
    plan: Plan,
    serials: tuple[str, str | None],
) -> SiteHours:
    """The hours of ``period``'s local days in ``zone`` and of the days before it, from
    the billing meter and grid meter ``serials``."""
    billing_meter, grid_meter = serials
    start = local_midnight(period.first_day, zone)
    since = local_midnight(period.first_day - timedelta(days=HISTORY_DAYS), zone)
    end = local_midnight(period.last_day + timedelta(days=1), zone)
    forward = read(region, site_id, billing_meter, "import_wh", since, end)
    production = plan.billable_basis == "us_production"
    zeros = (0,) * len(forward.energy_mwh)
    reverse: Sequence[int | None] = zeros
    if not production:
        reverse = read(region, site_id, billing_meter, "export_wh", since, end).energy_mwh
    exported: Sequence[int | None] = zeros
    grid_device: int | None = None
    if grid_meter is not None and not production:
        export = read(region, site_id, grid_meter, "export_wh", since, end)
        exported, grid_device = export.energy_mwh, export.device_id
    hours = [
        MeterHour(since + k * _HOUR, since + (k + 1) * _HOUR, f, r, e)
        for k, (f, r, e) in enumerate(zip(forward.energy_mwh, reverse, exported, strict=True))
    ]
    read_grid = None if grid_device is None else grid_meter
    return SiteHours(
        history=tuple(h for h in hours if h.start < start),
        period=tuple(h for h in hours if h.start >= start),
        meters=Meters(billing_meter, forward.device_id, read_grid, grid_device),
    )
