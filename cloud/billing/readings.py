"""A site's meter hours for billing, read through :class:`~cloud.billing.ports.MeterHours`:
the local days of a billing period (UTC hours from the site's local midnight, so days of
23 and 25 hours are what they are) and the :data:`HISTORY_DAYS` before it, whose complete
hours estimate the period's missing ones (:func:`~cloud.billing.ledger.hour_profile`).

Where the billing meter was replaced, :class:`~cloud.billing.swaps.MeterChain` reads
each hour from the meter in place then (decision 134).

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
from cloud.billing.ports import MeterHours, MeterSeries, MeterSwap, RegisterEdges
from cloud.billing.rating import BillingPeriod
from cloud.billing.swaps import MeterChain
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
    #: The meters each hour of ``period`` was read from.
    meters: tuple[Meters, ...]


def read_site_hours(
    read: MeterHours,
    region: Region,
    site_id: int,
    period: BillingPeriod,
    zone: ZoneInfo,
    plan: Plan,
    serials: tuple[str, str | None],
    *,
    swaps: Sequence[MeterSwap] = (),
    edges: RegisterEdges | None = None,
) -> SiteHours:
    """The hours of ``period``'s local days in ``zone`` and of the days before it, from
    the billing meter and grid meter ``serials``; where the billing meter was replaced
    (``swaps``, the chain ending at ``serials[0]``) each hour is read from the meter in
    place then, and the energy no hour of either meter holds is taken from the swap's
    recorded registers against ``edges`` (module docstring of :mod:`cloud.billing.swaps`)."""
    billing_meter, grid_meter = serials
    start = local_midnight(period.first_day, zone)
    since = local_midnight(period.first_day - timedelta(days=HISTORY_DAYS), zone)
    end = local_midnight(period.last_day + timedelta(days=1), zone)
    chain = MeterChain(billing_meter, tuple(swaps), since, end)
    production = plan.billable_basis == "us_production"
    forward = chain.series(read, region, site_id, "import_wh")
    n = len(forward.energy_mwh)
    reverse: MeterSeries | None = None
    if not production:
        reverse = chain.series(read, region, site_id, "export_wh")
    if chain.swaps:
        if edges is None:
            raise ValueError("the billing meter was replaced: its register readings are needed")
        forward, reverse = chain.bridge(edges, region, site_id, forward, reverse)
    exported: Sequence[int | None] = (0,) * n
    grid_device: int | None = None
    if grid_meter is not None and not production:
        export = read(region, site_id, grid_meter, "export_wh", since, end)
        exported, grid_device = export.energy_mwh, export.device_id
    backward = reverse.energy_mwh if reverse is not None else (0,) * n
    hours = [
        MeterHour(since + k * _HOUR, since + (k + 1) * _HOUR, f, r, e)
        for k, (f, r, e) in enumerate(zip(forward.energy_mwh, backward, exported, strict=True))
    ]
    read_grid = None if grid_device is None else grid_meter
    first = sum(1 for h in hours if h.start < start)
    return SiteHours(
        history=tuple(hours[:first]),
        period=tuple(hours[first:]),
        meters=tuple(
            Meters(serial, device, read_grid, grid_device)
            for serial, device in chain.meters_by_hour(forward)[first:]
        ),
    )
