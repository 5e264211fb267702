"""The kWh ledger of a site, as pure functions: what each hour's register deltas make
billable (decision 119), and estimates for hours without data yet.

Inputs are one site's hours (``[start, end)`` in UTC) with the register deltas the
telemetry store reckoned for them, in integer milliwatt-hours, so every sum is exact:
``forward`` and ``reverse`` of PoTR's system meter (its billing register, and what the
system drew), ``export`` of the site's grid-connection meter (needed where energy
consumed on site is billed). ``None`` is "no data for this hour yet".

What is billable per hour, by the plan's basis:

- ``us_production``: the forward energy;
- ``es_onsite``: forward less the hour's export, never below zero;
- ``au_pv_consumed_and_pv_battery``: as ``es_onsite``, then less the grid pool — what
  the system drew (``reverse``) is energy that may come back out of the battery, and
  re-selling grid energy is outside the exemption, so the pool fills with each hour's
  reverse energy and on-site energy from that hour on empties it first, unbilled. The
  pool is carried from one billing period to the next.

An hour without data is billed as an **estimate** (flagged): each register's mean over
the same local hour of the days before it that have data (:func:`hour_profile`), zero
when there are none. When the data arrives (``energy.revised``) the hour is re-reckoned
from it and the difference goes on a note; so before a true-up the ledger differs from
the registers by exactly its estimates, and after it by nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo

from cloud.billing.tariffs import BillableBasis

__all__ = [
    "LedgerLine",
    "MeterHour",
    "Reckoning",
    "hour_profile",
    "reckon",
]


@dataclass(frozen=True, slots=True)
class MeterHour:
    """One hour's register deltas at a site (mWh; None: no data for it yet)."""

    start: datetime
    end: datetime
    forward_mwh: int | None
    reverse_mwh: int | None = 0
    export_mwh: int | None = 0

    @property
    def complete(self) -> bool:
        """Whether every register the hour needs has data (forward always; the others
        where they are not known to be zero)."""
        return None not in (self.forward_mwh, self.reverse_mwh, self.export_mwh)


@dataclass(frozen=True, slots=True)
class LedgerLine:
    """One hour of the ledger: the registers it came from (estimated ones included)
    and what was billable."""

    start: datetime
    end: datetime
    forward_mwh: int
    reverse_mwh: int
    export_mwh: int
    #: Delivered on site but deemed grid-charged (the AU pool), so not billed.
    pool_used_mwh: int
    billable_mwh: int
    estimated: bool


@dataclass(frozen=True, slots=True)
class Reckoning:
    lines: tuple[LedgerLine, ...]
    #: The AU grid pool after the last line (carried into the next period).
    pool_mwh: int

    @property
    def billable_mwh(self) -> int:
        return sum(line.billable_mwh for line in self.lines)

    @property
    def estimated_mwh(self) -> int:
        return sum(line.billable_mwh for line in self.lines if line.estimated)


Profile = dict[time, tuple[int, int, int]]


def hour_profile(history: Iterable[MeterHour], zone: ZoneInfo) -> Profile:
    """Per local start time, the mean of each register over the complete hours given
    (integer mWh, rounded half up): what an hour without data is estimated at."""
    sums: dict[time, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for hour in history:
        if not hour.complete:
            continue
        acc = sums[hour.start.astimezone(zone).time()]
        acc[0] += hour.forward_mwh or 0
        acc[1] += hour.reverse_mwh or 0
        acc[2] += hour.export_mwh or 0
        acc[3] += 1
    return {at: (_mean(f, n), _mean(r, n), _mean(e, n)) for at, (f, r, e, n) in sums.items()}


def _mean(total: int, count: int) -> int:
    return (2 * total + count) // (2 * count)  # half up, in integers


def reckon(
    hours: Sequence[MeterHour],
    basis: BillableBasis,
    zone: ZoneInfo,
    profile: Profile,
    *,
    pool_mwh: int = 0,
) -> Reckoning:
    """The ledger lines of ``hours`` (in time order) under ``basis``, hours without
    data estimated from ``profile``; ``pool_mwh``: the AU grid pool carried in."""
    if pool_mwh < 0:
        raise ValueError("the grid pool cannot be negative")
    lines: list[LedgerLine] = []
    pool = pool_mwh
    for hour in hours:
        estimated = not hour.complete
        forward, reverse, export = _registers(hour, zone, profile)
        on_site = forward if basis == "us_production" else max(forward - export, 0)
        used = 0
        if basis == "au_pv_consumed_and_pv_battery":
            # The hour's draw joins the pool before its delivery is judged: of an hour that
            # both charged from the grid and delivered, the delivery is deemed grid energy
            # first (conservative to the customer; standby draw lands here too).
            pool += reverse
            used = min(pool, on_site)
            pool -= used
        billable = on_site - used
        lines.append(
            LedgerLine(hour.start, hour.end, forward, reverse, export, used, billable, estimated)
        )
    return Reckoning(tuple(lines), pool)


def _registers(hour: MeterHour, zone: ZoneInfo, profile: Profile) -> tuple[int, int, int]:
    """The hour's registers; each one missing from the profile's same local hour."""
    forward, reverse, export = given = (hour.forward_mwh, hour.reverse_mwh, hour.export_mwh)
    if forward is None or reverse is None or export is None:  # the zone only when needed
        guess = profile.get(hour.start.astimezone(zone).time(), (0, 0, 0))
        forward, reverse, export = (
            g if g is not None else p for g, p in zip(given, guess, strict=True)
        )
    if min(forward, reverse, export) < 0:
        raise ValueError(f"hour {hour.start.isoformat()}: a register delta is negative")
    return forward, reverse, export
