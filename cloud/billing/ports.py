"""What billing needs from other services, as small protocols the composition root
(:mod:`cloud.bootstrap`) implements over their published interfaces: billing imports no
other service.

* :class:`BillingSites`: a region's billable sites — account, plan, tariff zone, IANA
  zone, contract start, and the serials of the meters billing reads (customers' account
  and installation records, the registry's site);
* :class:`MeterHours`: one meter register's hourly deltas by serial (the telemetry
  store's ``MeterHourReader``, ARCHITECTURE decision 123), translated to
  :class:`MeterSeries`; a meter no device answers for raises :class:`MeterMissingError`;
* :class:`RegisterEdges`: a meter's stored register readings around an instant (what a
  billing-meter swap's recorded registers are set against, decision 134).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Literal, Protocol

from contracts.topics import Region

__all__ = [
    "BillableSite",
    "BillingSites",
    "MeterHours",
    "MeterMissingError",
    "MeterSeries",
    "MeterSwap",
    "Register",
    "RegisterEdges",
    "RegisterReading",
    "plans_within",
]

#: A meter's energy register: ``import_wh`` (a system meter's forward register, what the
#: system delivered) or ``export_wh`` (its reverse register; a grid meter's export).
Register = Literal["import_wh", "export_wh"]


@dataclass(frozen=True, slots=True)
class MeterSwap:
    """A billing-meter replacement as the customers service recorded it: at
    ``replaced_at`` the forward register of ``old_serial`` read ``old_register_wh`` when
    it came off, that of ``new_serial`` ``new_register_wh`` when it went in."""

    replaced_at: datetime
    old_serial: str
    new_serial: str
    old_register_wh: Decimal
    new_register_wh: Decimal


@dataclass(frozen=True, slots=True)
class BillableSite:
    """A site billing may invoice: its account's plan and the installation's meters.
    ``contract_start`` is the installation's ``installed_on`` (a local date)."""

    region: Region
    site_id: int
    account_id: str
    plan_code: str
    tariff_zone: str
    time_zone: str
    contract_start: date
    billing_meter: str
    grid_meter: str | None
    #: The billing meter's replacements, in time order (``billing_meter`` is the last's
    #: new serial): which meter was the billing meter when.
    swaps: tuple[MeterSwap, ...] = ()
    #: The account's plan history (decision 150): (first local day, plan code) in date
    #: order, the first from ``date.min``; empty: ``plan_code`` on every day.
    plans: tuple[tuple[date, str], ...] = ()

    def plan_on(self, day: date) -> str:
        """The plan in effect on local date ``day``."""
        return plans_within(self.plans or ((date.min, self.plan_code),), day, day)[0][1]

    def plans_within(self, first: date, last: date) -> tuple[tuple[date, str], ...]:
        """The plans of local days ``first`` to ``last`` (:func:`plans_within`)."""
        return plans_within(self.plans or ((date.min, self.plan_code),), first, last)

    def billing_meter_at(self, at: datetime) -> str:
        """The serial that was the billing meter at ``at`` (a swap's instant: the new)."""
        return next((s.old_serial for s in self.swaps if at < s.replaced_at), self.billing_meter)


def plans_within(
    history: Sequence[tuple[date, str]], first: date, last: date
) -> tuple[tuple[date, str], ...]:
    """The plan segments of local days ``first`` to ``last`` from a plan history ((first
    day, plan) in date order): (the segment's first day, its plan), the first from
    ``first``; a change that keeps the plan starts no segment. Days before the history's
    first entry are on its first plan."""
    if not history:
        raise ValueError("a plan history has at least one plan")
    found: list[tuple[date, str]] = []
    for day, code in history:
        start = max(day, first)
        if start > last:
            break
        if found and found[-1][0] == start:
            found.pop()  # a later change from the same day (or before the period) wins
        if not found or found[-1][1] != code:
            found.append((start, code))
    if not found:
        return ((first, history[0][1]),)
    found[0] = (first, found[0][1])
    return tuple(found)


class BillingSites(Protocol):
    def billable_sites(self, region: Region) -> Sequence[BillableSite]:
        """The region's sites with an active account on a plan and an installation
        record, by site id."""
        ...

    def billable_site(self, region: Region, site_id: int) -> BillableSite | None: ...


class MeterMissingError(LookupError):
    """No device of the site is meter ``serial``: nothing to bill from, and nothing to
    estimate either (a whole period of estimates for an absent meter would be wrong)."""

    def __init__(self, site_id: int, region: Region, serial: str, reason: str) -> None:
        super().__init__(f"site {site_id} ({region.value}) has no meter {serial!r}: {reason}")
        self.site_id = site_id
        self.region = region
        self.serial = serial


@dataclass(frozen=True, slots=True)
class MeterSeries:
    """A register's consecutive hours from ``start`` (UTC), integer mWh each, None for an
    hour no data reached yet; ``device_id`` the device that answered for the serial."""

    serial: str
    device_id: int
    start: datetime
    energy_mwh: tuple[int | None, ...]


class MeterHours(Protocol):
    def __call__(
        self,
        region: Region,
        site_id: int,
        serial: str,
        register: Register,
        start: datetime,
        end: datetime,
    ) -> MeterSeries:
        """The hours ``[start, end)`` (whole hours, quarter-hour aligned) of the
        register; :class:`MeterMissingError` when no device of the site is the meter."""
        ...


@dataclass(frozen=True, slots=True)
class RegisterReading:
    """A stored reading of a meter's register: when, and its value in Wh."""

    ts: datetime
    wh: Decimal


class RegisterEdges(Protocol):
    def __call__(
        self, region: Region, site_id: int, serial: str, register: Register, at: datetime
    ) -> tuple[RegisterReading | None, RegisterReading | None]:
        """The meter's last stored reading of the register at or before ``at`` and its
        first at or after it (None: none); :class:`MeterMissingError` when no device of
        the site is the meter."""
        ...
