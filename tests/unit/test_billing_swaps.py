"""The billing meter's chain across a swap (cloud.billing.swaps): each hour from the
meter in place, the energy neither meter's hours hold from the recorded registers, the
quiet hours between the two meters' readings zero rather than unknown."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from cloud.billing.ports import MeterSeries, MeterSwap, Register, RegisterReading
from cloud.billing.swaps import MeterChain, mwh
from contracts.topics import Region

H = timedelta(hours=1)
SINCE = datetime(2024, 11, 10, tzinfo=UTC)
END = SINCE + 8 * H
SWAP = MeterSwap(
    replaced_at=SINCE + 3 * H + timedelta(minutes=20),
    old_serial="OLD",
    new_serial="NEW",
    old_register_wh=Decimal("10450"),  # 50 Wh after the old meter's last reading
    new_register_wh=Decimal("1"),
)
# Hourly forward energy (mWh) each meter's hours hold: the old meter's last reading at
# 03:00 (hours 0-2), the new meter's first at 05:00, so its energy starts in hour 5.
HOURS = {
    "OLD": (1000, 2000, 3000, None, None, None, None, None),
    "NEW": (None, None, None, None, None, 4000, 5000, None),
}
READINGS = {
    ("OLD", "before"): RegisterReading(SINCE + 3 * H, Decimal("10400")),
    ("NEW", "after"): RegisterReading(SINCE + 5 * H, Decimal("121")),  # 120 Wh since 1
}


def read(
    region: Region, site_id: int, serial: str, register: Register, start: datetime, end: datetime
) -> MeterSeries:
    assert (start, end) == (SINCE, END)
    return MeterSeries(serial, 7 if serial == "OLD" else 8, start, HOURS[serial])


def edges(
    region: Region, site_id: int, serial: str, register: Register, at: datetime
) -> tuple[RegisterReading | None, RegisterReading | None]:
    assert at == SWAP.replaced_at
    assert register == "import_wh"
    return READINGS.get((serial, "before")), READINGS.get((serial, "after"))


def test_hours_come_from_the_meter_in_place_and_the_gap_from_the_registers() -> None:
    chain = MeterChain("NEW", [SWAP], SINCE, END)
    forward = chain.series(read, Region.AU, 1, "import_wh")
    assert forward.energy_mwh == (1000, 2000, 3000, None, None, 4000, 5000, None)
    bridged, _ = chain.bridge(edges, Region.AU, 1, forward, None)
    # The bridge: 10450 - 10400 = 50 Wh of the old meter + 121 - 1 = 120 Wh of the new,
    # on hour 3 (the swap's); hour 4 lies between the readings (03:00 and 05:00): zero.
    # Hour 7 is after the new meter's latest data: still unknown.
    assert bridged.energy_mwh == (1000, 2000, 3000, 170_000, 0, 4000, 5000, None)
    assert [s for s, _ in chain.meters_by_hour(bridged)] == ["OLD"] * 4 + ["NEW"] * 4
    assert chain.meters_by_hour(bridged)[0][1] == 7


def test_a_swap_outside_the_range_reads_one_meter() -> None:
    later = MeterSwap(END + H, "NEW", "NEWER", Decimal(5), Decimal(0))
    chain = MeterChain("NEWER", [SWAP, later], SINCE + 4 * H, END)
    assert chain.segments == (("NEW", SINCE + 4 * H, END),)


def test_a_broken_chain_or_backward_registers_are_refused() -> None:
    with pytest.raises(ValueError, match="the billing meter is 'OTHER'"):
        MeterChain("OTHER", [SWAP], SINCE, END)
    behind = MeterSwap(SWAP.replaced_at, "OLD", "NEW", Decimal("10000"), Decimal("1"))
    chain = MeterChain("NEW", [behind], SINCE, END)
    forward = chain.series(read, Region.AU, 1, "import_wh")
    with pytest.raises(ValueError, match="registers are behind"):
        chain.bridge(edges, Region.AU, 1, forward, None)


def test_milliwatt_hours_are_exact() -> None:
    assert mwh(Decimal("10450.0005")) == 10_450_001
    assert mwh(Decimal("0.001")) == 1
