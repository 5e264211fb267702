"""The region preset of the device site over real Modbus TCP (pymodbus client on loopback)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from pymodbus.client import AsyncModbusTcpClient

from simulators.device_site import DeviceSite, DeviceSiteSettings, region_site, run_site

pytestmark = pytest.mark.integration

NOON_SYDNEY = datetime(2024, 1, 10, 2, 0, tzinfo=UTC)


def _settings(**kw: object) -> DeviceSiteSettings:
    base: dict[str, object] = {"start_time": NOON_SYDNEY}
    base.update(kw)
    return region_site("sim-test", "au", **base)


async def _client(port: int) -> AsyncModbusTcpClient:
    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0)
    async with asyncio.timeout(5):
        assert await client.connect()
    return client


async def _read_all(client: AsyncModbusTcpClient, unit: int, count: int) -> list[int]:
    regs: list[int] = []
    addr = 40000
    while len(regs) < count:
        n = min(125, count - len(regs))
        rr = await client.read_holding_registers(addr, count=n, device_id=unit)
        assert not rr.isError()
        regs.extend(rr.registers)
        addr += n
    return regs


async def test_each_unit_serves_its_own_suns_map_at_40000() -> None:
    async with DeviceSite(_settings()) as site:
        client = await _client(site.port)
        try:
            for unit, serial in ((d.unit_id, d.serial) for d in site.devices):
                rr = await client.read_holding_registers(40000, count=4, device_id=unit)
                assert rr.registers[:3] == [0x5375, 0x6E53, 1]
                assert serial.encode() in bytes(
                    b for r in (await _read_all(client, unit, 70))[52:68] for b in r.to_bytes(2)
                )
            missing = await client.read_holding_registers(40000, count=2, device_id=9)
            assert missing.isError()
            below = await client.read_holding_registers(39999, count=2, device_id=1)
            assert below.isError()
        finally:
            client.close()


async def test_served_registers_match_the_latest_history_snapshot() -> None:
    async with DeviceSite(_settings(update_period_s=0.05)) as site:
        site.pause_updates()
        site.tick()
        ts, images = site.history()[-1]
        assert ts.tzinfo is not None
        client = await _client(site.port)
        try:
            for unit, (base, regs) in images.items():
                assert base == 40000
                assert await _read_all(client, unit, len(regs)) == regs
        finally:
            client.close()


async def test_history_is_bounded_and_grows_with_ticks() -> None:
    async with DeviceSite(_settings(history_size=3)) as site:
        site.pause_updates()
        for _ in range(5):
            site.tick()
        assert len(site.history()) == 3


async def test_speed_factor_runs_the_simulated_clock_faster() -> None:
    sim = DeviceSite(_settings(speed=3600.0))
    t0 = sim.sim_now()
    await asyncio.sleep(0.01)  # lets real time pass; not a synchronisation
    assert (sim.sim_now() - t0).total_seconds() >= 30


async def test_writing_a_power_limit_throttles_the_inverter() -> None:
    async with DeviceSite(_settings(pv_capacity_w=5000)) as site:
        site.pause_updates()
        block = site.device(1).block(123)
        client = await _client(site.port)
        try:
            # model 123: WMaxLimPct at +5, WMaxLim_Ena at +9 (from the ID register)
            assert not (await client.write_register(block.addr + 5, 20, device_id=1)).isError()
            assert not (await client.write_register(block.addr + 9, 1, device_id=1)).isError()
            refused = await client.write_register(40002, 1, device_id=1)
            assert refused.isError()
        finally:
            client.close()
        site.tick()
        assert site.state.pv_w == 1000
        assert site.state.pv_state == 5


async def test_run_site_serves_until_stopped() -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(run_site(_settings(), stop))
    await asyncio.sleep(0)
    stop.set()
    async with asyncio.timeout(5):
        await task
