"""Meter swaps the store hears of: ``site.meter_replaced`` becomes a ``telemetry.meter_swaps``
row, which :mod:`cloud.telemetry.energy` applies to the pair of readings around it.

The customers service records a site's billing-meter swap with both registers (kWh). On
the platform the billing register is the meter's ``import_wh`` counter: its energy
across the swap is ``(old - v0) + (v1 - new)``. The meter's other counters restart with
the new meter and are counted as resets, as any drop is.

Which device carries the counter on (:func:`continuing_device`): the edge agent keys a
device by its serial (model 1 ``SN``), else by its position (``<endpoint>-u<unit>``).
- The new serial keyed on the site: the new meter is a device of its own, whose counters
  start with it; the old device's end. No swap row: nothing pairs across the swap.
- Else the device the old serial names (:func:`cloud.telemetry.site_meters.device_by_serial`):
  the one keyed by it (should its readings continue), else the site's one device keyed
  by position with the billing register, whose key outlives the meter. None, or
  several: nothing is recorded (and the log says why).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from cloud.adapters.postgres import Connection
from cloud.events.types import MeterReplaced
from cloud.telemetry.dirty import DirtyRange, mark_ranges
from cloud.telemetry.site_meters import DeviceMatch, SiteDevice, device_by_serial, site_devices
from contracts.metrics import metric

__all__ = [
    "BILLING_REGISTER",
    "RegisterError",
    "SiteDevice",
    "SwapOutcome",
    "SwapResult",
    "continuing_device",
    "record_meter_swap",
    "register_wh",
]

log = logging.getLogger(__name__)

#: The counter a billing meter's registers are: energy imported from the grid.
BILLING_REGISTER = metric("import_wh").id
_MILLI = Decimal("0.001")
#: ``telemetry.meter_swaps``' registers are numeric(15, 3) Wh.
_MAX_WH = Decimal(10) ** 12


class RegisterError(ValueError):
    """A register that cannot be stored exactly in Wh (negative, too large, finer than
    a milliwatt-hour)."""


class SwapOutcome(StrEnum):
    RECORDED = "recorded"
    #: The swap was recorded before (a redelivered or repeated event).
    ALREADY_RECORDED = "already_recorded"
    #: The new meter is keyed as a device of its own: its counters are independent.
    SEPARATE_DEVICES = "separate_devices"
    #: No device keyed by the old serial, nor one keyed by position with the billing
    #: register (yet).
    NO_METER = "no_meter"
    #: Several position-keyed devices of the site carry it, none keyed by either serial.
    AMBIGUOUS = "ambiguous"


@dataclass(frozen=True)
class SwapResult:
    outcome: SwapOutcome
    #: The device whose register the swap row is for (recorded or found recorded).
    device_id: int | None = None


def register_wh(kwh: Decimal) -> Decimal:
    """A register in kWh as exact Wh for ``numeric(15, 3)``; :class:`RegisterError` when
    it would not be exact."""
    wh = kwh * 1000
    if not wh.is_finite() or wh < 0 or wh >= _MAX_WH or wh != wh.quantize(_MILLI):
        raise RegisterError(f"register {kwh} kWh cannot be stored exactly as Wh")
    return wh


def continuing_device(
    devices: Sequence[SiteDevice], old_serial: str, new_serial: str
) -> int | SwapOutcome:
    """The device whose billing register continues across the swap, or why none does
    (the rules: module docstring)."""
    if any(d.local_id == new_serial for d in devices):
        return SwapOutcome.SEPARATE_DEVICES
    found = device_by_serial(devices, old_serial)
    if found.device_id is not None:
        return found.device_id
    return SwapOutcome.AMBIGUOUS if found.match is DeviceMatch.AMBIGUOUS else SwapOutcome.NO_METER


def record_meter_swap(conn: Connection[Any], replaced: MeterReplaced) -> SwapResult:
    """Record ``replaced`` for the site's device that carries the billing register on,
    in the caller's transaction, and mark the readings around it dirty so the maintenance
    job recomputes the energy there (readings stored before the event included). A
    swap recorded before is left as it is. :class:`RegisterError` for registers that
    cannot be stored exactly."""
    old_wh, new_wh = register_wh(replaced.old_register_kwh), register_wh(replaced.new_register_kwh)
    devices = site_devices(conn, replaced.site_id, replaced.region, BILLING_REGISTER)
    found = continuing_device(devices, replaced.old_serial, replaced.new_serial)
    if isinstance(found, SwapOutcome):
        log.info(
            "meter replacement %d (site %d, %s): no swap recorded (%s)",
            replaced.replacement_id,
            replaced.site_id,
            replaced.region.value,
            found.value,
        )
        return SwapResult(found)
    inserted = conn.execute(
        "INSERT INTO telemetry.meter_swaps (device_id, metric_id, replaced_at,"
        " old_register_wh, new_register_wh) VALUES (%s, %s, %s, %s, %s)"
        " ON CONFLICT DO NOTHING RETURNING 1",
        (found, BILLING_REGISTER, replaced.replaced_at, old_wh, new_wh),
    ).fetchone()
    if inserted is None:
        return SwapResult(SwapOutcome.ALREADY_RECORDED, found)
    _mark_around(conn, found, replaced.replaced_at)
    log.info(
        "meter replacement %d (site %d, %s): device %d's register %s Wh -> %s Wh at %s",
        replaced.replacement_id,
        replaced.site_id,
        replaced.region.value,
        found,
        old_wh,
        new_wh,
        replaced.replaced_at.isoformat(),
    )
    return SwapResult(SwapOutcome.RECORDED, found)


def _mark_around(conn: Connection[Any], device: int, at: datetime) -> None:
    """Dirty from the last billing reading before the swap to the first at or after it:
    the pair the swap falls in, which the energy recompute widens to every bucket it can
    change. A side not stored yet is marked by the write path when it arrives (and finds
    the swap recorded)."""
    before, after = conn.execute(
        "SELECT (SELECT max(ts) FROM telemetry.readings"
        "  WHERE device_id = %(d)s AND metric_id = %(m)s AND ts < %(at)s),"
        " (SELECT min(ts) FROM telemetry.readings"
        "  WHERE device_id = %(d)s AND metric_id = %(m)s AND ts >= %(at)s)",
        {"d": device, "m": BILLING_REGISTER, "at": at},
    ).fetchone() or (None, None)
    if before is None and after is None:
        return
    mark_ranges(conn, [DirtyRange(device, before or at, after or at)])
