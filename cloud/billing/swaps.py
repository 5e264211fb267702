"""Which meter was a site's billing meter when, and the energy across a swap
(ARCHITECTURE decision 134).

A replaced meter is a device of its own in the telemetry store (it is keyed by its
serial), so a period with a swap is read meter by meter: each hour from the serial in
force over it, an hour with the swap inside from both meters, summed.

What neither meter's hours hold is the old meter's energy after its last stored reading
and the new meter's before its first (a first reading has nothing before it to pair
with). The swap's recorded registers give it exactly:
``(old register at removal - old meter's last reading) + (new meter's first reading -
new register at installation)``, put on the hour the swap is in. The hours between those
two readings that neither meter has data for are zero, not estimated: the bridge holds
their energy (only its split between them is unknown).

Only the forward (billing) register is recorded at a swap; the reverse register's energy
across the gap is unmeasured and counts as zero (for AU, energy the system drew then does
not join the grid pool).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from cloud.billing.ports import (
    MeterHours,
    MeterSeries,
    MeterSwap,
    Register,
    RegisterEdges,
    RegisterReading,
)
from contracts.topics import Region

__all__ = ["MeterChain", "mwh"]

_HOUR = timedelta(hours=1)


def mwh(wh: Decimal) -> int:
    """Wh as whole milliwatt-hours (the ledger's unit), rounded half up."""
    return int((wh * 1000).to_integral_value(ROUND_HALF_UP))


class MeterChain:
    """The billing meters of ``[since, end)`` (whole hours): ``current`` is the
    installation's billing meter now, ``swaps`` its replacements in time order."""

    def __init__(
        self, current: str, swaps: Sequence[MeterSwap], since: datetime, end: datetime
    ) -> None:
        ordered = sorted(swaps, key=lambda s: s.replaced_at)
        for a, b in itertools.pairwise(ordered):
            if a.new_serial != b.old_serial:
                raise ValueError(
                    f"meter swaps disagree: {a.new_serial!r} went in at"
                    f" {a.replaced_at.isoformat()}, but {b.old_serial!r} came out at"
                    f" {b.replaced_at.isoformat()}"
                )
        if ordered and ordered[-1].new_serial != current:
            raise ValueError(
                f"the billing meter is {current!r}, not {ordered[-1].new_serial!r} that the last"
                " swap put in"
            )
        self.since, self.end = since, end
        self.hours = (end - since) // _HOUR
        self.swaps = tuple(s for s in ordered if since < s.replaced_at < end)
        later = [s for s in ordered if s.replaced_at >= end]
        serials = [s.old_serial for s in self.swaps] + [later[0].old_serial if later else current]
        bounds = [since, *(s.replaced_at for s in self.swaps), end]
        #: (serial, from, until) of each meter's time as the billing meter in the range.
        self.segments = tuple(
            (serial, bounds[i], bounds[i + 1]) for i, serial in enumerate(serials)
        )
        self._devices: dict[str, int] = {}

    def _start(self, k: int) -> datetime:
        return self.since + k * _HOUR

    def series(
        self, read: MeterHours, region: Region, site_id: int, register: Register
    ) -> MeterSeries:
        """The register's hours over the range, each from the meter(s) in place in it."""
        if len(self.segments) == 1:
            serial = self.segments[0][0]
            got = read(region, site_id, serial, register, self.since, self.end)
            self._devices[serial] = got.device_id
            return got
        values: list[int | None] = [None] * self.hours
        for serial, a, b in self.segments:
            got = read(region, site_id, serial, register, self.since, self.end)
            self._devices[serial] = got.device_id
            for k, value in enumerate(got.energy_mwh):
                start = self._start(k)
                if value is not None and start < b and start + _HOUR > a:
                    values[k] = (values[k] or 0) + value
        last = self.segments[-1][0]
        return MeterSeries(last, self._devices[last], self.since, tuple(values))

    def bridge(
        self,
        edges: RegisterEdges,
        region: Region,
        site_id: int,
        forward: MeterSeries,
        reverse: MeterSeries | None,
    ) -> tuple[MeterSeries, MeterSeries | None]:
        """``forward`` with each swap's bridge on the hour it is in, and both series'
        hours between the two meters' readings zero where no meter had data (module
        docstring)."""
        ahead = list(forward.energy_mwh)
        back = list(reverse.energy_mwh) if reverse is not None else None
        for swap in self.swaps:
            old_last, _ = edges(region, site_id, swap.old_serial, "import_wh", swap.replaced_at)
            _, new_first = edges(region, site_id, swap.new_serial, "import_wh", swap.replaced_at)
            energy = _bridge_mwh(swap, old_last, new_first)
            k = (swap.replaced_at - self.since) // _HOUR
            ahead[k] = (ahead[k] or 0) + energy
            if new_first is None:
                continue  # the new meter has not reported yet: its hours stay unknown
            quiet_from = old_last.ts if old_last is not None else swap.replaced_at
            for j in range(self.hours):
                start = self._start(j)
                if start >= quiet_from and start + _HOUR <= new_first.ts:
                    ahead[j] = 0 if ahead[j] is None else ahead[j]
                    if back is not None and back[j] is None:
                        back[j] = 0
        bridged = MeterSeries(forward.serial, forward.device_id, forward.start, tuple(ahead))
        if reverse is None or back is None:
            return bridged, None
        return bridged, MeterSeries(reverse.serial, reverse.device_id, reverse.start, tuple(back))

    def meters_by_hour(self, forward: MeterSeries) -> list[tuple[str, int]]:
        """(serial, device) each hour was read from: the meter in place at its start."""
        found = []
        for k in range(self.hours):
            start = self._start(k)
            serial = next(s for s, a, b in self.segments if a <= start < b)
            found.append((serial, self._devices.get(serial, forward.device_id)))
        return found


def _bridge_mwh(
    swap: MeterSwap, old_last: RegisterReading | None, new_first: RegisterReading | None
) -> int:
    energy = 0
    if old_last is not None:
        energy += mwh(swap.old_register_wh) - mwh(old_last.wh)
    if new_first is not None:
        energy += mwh(new_first.wh) - mwh(swap.new_register_wh)
    if energy < 0:
        raise ValueError(
            f"the swap of {swap.old_serial!r} at {swap.replaced_at.isoformat()}: its recorded"
            " registers are behind the meters' own readings"
        )
    return energy
