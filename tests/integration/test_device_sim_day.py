"""A simulated day at 1,440x over Modbus TCP: energy counters agree with served power.

One real minute: the inverter's WH against the integral of its W sampled over Modbus,
clear-sky PV against pvlib's own daily figure, and the meter closing the site balance.
"""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime

import pytest
from pymodbus.client import AsyncModbusTcpClient

from simulators.device_site import DeviceSite, DeviceSiteSettings, DeviceSpec

pytestmark = pytest.mark.integration

MIDNIGHT_SYDNEY = datetime(2024, 1, 9, 13, 0, tzinfo=UTC)  # 2024-01-10 00:00 AEDT
DAY_S = 86_400.0


def _u32(hi: int, lo: int) -> int:
    return hi << 16 | lo


async def test_a_day_at_1440x_closes_the_energy_books() -> None:
    settings = DeviceSiteSettings(
        site_id="day",
        start_time=MIDNIGHT_SYDNEY,
        speed=1440.0,
        update_period_s=0.02,
        devices=[
            DeviceSpec(profile="sim-inverter-103", unit_id=1),
            DeviceSpec(profile="sim-meter-203", unit_id=2),
            DeviceSpec(profile="sim-battery", unit_id=3),
        ],
    )
    async with DeviceSite(settings) as site:
        inv = site.device(1).block(103)
        w_slot, wh_slot = inv.lay.slot("W"), inv.lay.slot("WH")
        meter = site.device(2).block(203)
        exp_slot = meter.lay.slot("TotWhExp")
        assert w_slot is not None
        assert wh_slot is not None
        assert exp_slot is not None
        first = inv.addr + w_slot.offset
        count = wh_slot.offset + 3 - w_slot.offset  # W, W_SF ... WH, WH_SF in one request
        client = AsyncModbusTcpClient("127.0.0.1", port=site.port, timeout=2, retries=0)
        async with asyncio.timeout(5):
            assert await client.connect()

        async def meter_counters() -> tuple[int, int]:
            rr = await client.read_holding_registers(
                meter.addr + exp_slot.offset, count=5, device_id=2
            )
            return _u32(*rr.registers[0:2]), _u32(*rr.registers[2:4])  # export, import

        async def sample() -> tuple[float, float, int]:
            rr = await client.read_holding_registers(first, count=count, device_id=1)
            regs = rr.registers
            w_raw, w_sf = regs[0], regs[1] - (1 << 16 if regs[1] & 0x8000 else 0)
            wh = _u32(*regs[wh_slot.offset - w_slot.offset : wh_slot.offset - w_slot.offset + 2])
            return site.elapsed_s(), w_raw * 10.0**w_sf, wh

        try:
            await site.advance()
            start_totals = site.state.totals
            exp0, imp0 = await meter_counters()
            samples = [await sample()]
            async with asyncio.timeout(90):
                while samples[-1][0] < DAY_S:
                    await asyncio.sleep(0.05)  # the sampling period of the poller under test
                    samples.append(await sample())
            site.pause_updates()
            exp1, imp1 = await meter_counters()
            end_totals = site.state.totals
        finally:
            client.close()

    integral_wh = sum(
        (t1 - t0) / 3600.0 * (w0 + w1) / 2
        for (t0, w0, _), (t1, w1, _) in itertools.pairwise(samples)
    )
    served_wh = samples[-1][2] - samples[0][2]
    assert served_wh > 20_000
    assert served_wh == pytest.approx(integral_wh, rel=0.01)

    pvlib_wh = site.sky.daily_energy_wh_per_m2(datetime(2024, 1, 10).date()) * 5000 / 1000
    assert served_wh == pytest.approx(pvlib_wh, rel=0.05)

    net_meter_wh = (imp1 - imp0) - (exp1 - exp0)
    balance_wh = (
        (end_totals.load_wh - start_totals.load_wh)
        - (end_totals.pv_wh - start_totals.pv_wh)
        - (end_totals.discharge_wh - start_totals.discharge_wh)
        + (end_totals.charge_wh - start_totals.charge_wh)
    )
    gross = (imp1 - imp0) + (exp1 - exp0)
    assert abs(net_meter_wh - balance_wh) <= 0.001 * gross
