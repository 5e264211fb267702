"""Profile-described simulated devices over real Modbus TCP/RTU on loopback.

pysunspec2's own (blocking) client runs in a worker thread; plain checks use pymodbus.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusIOException
from sunspec2.modbus.client import SunSpecModbusClientDeviceRTU, SunSpecModbusClientDeviceTCP

from simulators.device_site import DeviceSite, DeviceSiteSettings, DeviceSpec

pytestmark = pytest.mark.integration

NOON_SYDNEY = datetime(2024, 1, 10, 2, 0, tzinfo=UTC)
ALL = [
    "sim-inverter-103",
    "sim-inverter-113",
    "sim-der-inverter",
    "sim-hybrid-inverter",
    "sim-battery",
    "sim-meter-201",
    "sim-meter-203",
    "sim-isolator",
]


def _settings(**kw: Any) -> DeviceSiteSettings:
    base: dict[str, Any] = {
        "site_id": "dev-test",
        "start_time": NOON_SYDNEY,
        "update_period_s": 3600.0,  # tests tick by hand unless they say otherwise
    }
    base.update(kw)
    return DeviceSiteSettings.model_validate(base)


@contextlib.asynccontextmanager
async def _client(port: int) -> AsyncIterator[AsyncModbusTcpClient]:
    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=1, retries=0)
    async with asyncio.timeout(5):
        assert await client.connect()
    try:
        yield client
    finally:
        client.close()


def _scan(device: Any) -> dict[int, Any]:
    try:
        device.scan()
        return {k: v for k, v in device.models.items() if isinstance(k, int)}
    finally:
        device.close()


def _scan_tcp(port: int, unit: int) -> dict[int, Any]:
    return _scan(
        SunSpecModbusClientDeviceTCP(slave_id=unit, ipaddr="127.0.0.1", ipport=port, timeout=2)
    )


def _expected(site: DeviceSite, unit: int) -> dict[tuple[int, str], float]:
    s = site.state
    kind = site.device(unit).profile
    hybrid_w = s.pv_w + s.battery_w
    table: dict[str, dict[tuple[int, str], float]] = {
        "sim-inverter-103": {(103, "W"): s.pv_w, (103, "WH"): round(s.totals.pv_wh)},
        "sim-inverter-113": {(113, "W"): s.pv_w, (113, "WH"): round(s.totals.pv_wh)},
        "sim-der-inverter": {(701, "W"): s.pv_w, (701, "TotWhInj"): round(s.totals.pv_wh)},
        "sim-hybrid-inverter": {
            (701, "W"): hybrid_w,
            (701, "TotWhInj"): round(s.totals.hybrid_out_wh),
            (701, "TotWhAbs"): round(s.totals.hybrid_in_wh),
            (713, "SoC"): s.battery_soc_pct,
        },
        "sim-battery": {
            (802, "W"): s.battery_w,
            (802, "SoC"): s.battery_soc_pct,
            (701, "W"): s.battery_w,  # 701: > 0 generating, i.e. discharging
            (701, "TotWhAbs"): round(s.totals.charge_wh),
            (701, "TotWhInj"): round(s.totals.discharge_wh),
        },
        "sim-meter-201": {(201, "W"): -s.grid_w, (201, "TotWhImp"): round(s.totals.import_wh)},
        "sim-meter-203": {(203, "W"): s.grid_w, (203, "TotWhExp"): round(s.totals.export_wh)},
        "sim-isolator": {},
    }
    return table[kind.name]


async def test_pysunspec2_finds_exactly_the_declared_models_with_physics_values() -> None:
    specs = [DeviceSpec(profile=p, unit_id=i + 1) for i, p in enumerate(ALL)]
    async with DeviceSite(_settings(devices=specs)) as site:
        site.tick()
        for device in site.devices:
            async with asyncio.timeout(20):
                models = await asyncio.to_thread(_scan_tcp, site.port, device.unit_id)
            assert sorted(models) == sorted(device.profile.models), device.profile.name
            assert models[1][0].SN.value == device.serial
            for (model_id, point), want in _expected(site, device.unit_id).items():
                got = getattr(models[model_id][0], point).cvalue
                assert got == pytest.approx(want, abs=1.0, rel=1e-3), (device.profile.name, point)


async def test_curve_groups_decode_as_pysunspec2_sees_them() -> None:
    async with DeviceSite(
        _settings(devices=[DeviceSpec(profile="sim-der-inverter", unit_id=1)])
    ) as site:
        async with asyncio.timeout(20):
            models = await asyncio.to_thread(_scan_tcp, site.port, 1)
        volt_var = models[705][0]
        assert volt_var.NCrv.value == 3
        assert len(volt_var.Crv) == 3
        assert volt_var.Crv[0].Pt[0].V.cvalue == pytest.approx(90.0)  # 207 V of 230 V
        assert volt_var.Crv[0].ReadOnly.value == 1
        assert len(models[711][0].Ctl) == 2


async def test_read_only_and_out_of_range_writes_get_exception_3() -> None:
    async with DeviceSite(_settings()) as site, _client(site.port) as client:
        controls = site.device(1).block(123)
        too_high = await client.write_register(controls.addr + 5, 101, device_id=1)
        assert too_high.isError()
        assert too_high.exception_code == 3
        read_only = await client.write_register(site.device(1).block(103).addr + 14, 1, device_id=1)
        assert read_only.exception_code == 3
        marker = await client.write_register(40000, 1, device_id=1)
        assert marker.exception_code == 3
        bad_enum = await client.write_register(controls.addr + 4, 7, device_id=1)  # Conn
        assert bad_enum.exception_code == 3
        ok = await client.write_register(controls.addr + 5, 30, device_id=1)
        assert not ok.isError()
        rr = await client.read_holding_registers(controls.addr + 5, count=1, device_id=1)
        assert rr.registers == [30]


async def test_a_power_limit_write_throttles_the_served_power() -> None:
    async with DeviceSite(_settings()) as site, _client(site.port) as client:
        controls = site.device(1).block(123)
        await client.write_register(controls.addr + 5, 20, device_id=1)
        await client.write_register(controls.addr + 9, 1, device_id=1)
        site.tick()
        assert site.state.pv_w == pytest.approx(1000.0)
        w = site.device(1).block(103).addr + 14
        rr = await client.read_holding_registers(w, count=1, device_id=1)
        assert rr.registers == [1000]


async def test_write_latency_delays_the_read_back() -> None:
    spec = DeviceSpec(profile="sim-inverter-103", unit_id=1, write_latency_s=0.3)
    async with DeviceSite(_settings(devices=[spec])) as site, _client(site.port) as client:
        addr = site.device(1).block(123).addr + 5
        await client.write_register(addr, 55, device_id=1)
        before = await client.read_holding_registers(addr, count=1, device_id=1)
        assert before.registers == [100]
        applied = asyncio.get_running_loop().create_future()
        site.endpoint.on_applied(lambda unit: applied.done() or applied.set_result(unit))
        async with asyncio.timeout(3):
            assert await applied == 1
        after = await client.read_holding_registers(addr, count=1, device_id=1)
        assert after.registers == [55]


async def test_volt_watt_curve_adoption_and_obedience() -> None:
    async with DeviceSite(
        _settings(devices=[DeviceSpec(profile="sim-der-inverter", unit_id=1)])
    ) as site:
        device = site.device(1)
        vw = device.block(706)
        lay = vw.lay
        async with _client(site.port) as client:
            # curve 2 (index 1): 100 % up to 90 % VNom, 10 % from 95 % VNom (V_SF -1)
            for path, raw in (
                ("Crv[1].Pt[0].V", 900),
                ("Crv[1].Pt[0].W", 100),
                ("Crv[1].Pt[1].V", 950),
                ("Crv[1].Pt[1].W", 10),
            ):
                slot = lay.slot(path)
                assert slot is not None
                assert not (
                    await client.write_register(vw.addr + slot.offset, raw, device_id=1)
                ).isError()
            active = lay.slot("Crv[0].Pt[0].V")
            assert active is not None
            refused = await client.write_register(vw.addr + active.offset, 900, device_id=1)
            assert refused.exception_code == 3  # the active curve is read-only
            adopt = lay.slot("AdptCrvReq")
            ena = lay.slot("Ena")
            assert adopt is not None
            assert ena is not None
            await client.write_register(vw.addr + adopt.offset, 2, device_id=1)
            await client.write_register(vw.addr + ena.offset, 1, device_id=1)
        assert device.value(706, "AdptCrvRslt") == 1
        assert device.value(706, "AdptCrvReq") == 0
        assert device.value(706, "Crv[0].Pt[1].W") == 10
        site.fast_forward(120)  # many times the curve's 10 s response time; midday voltage
        # (> 95 % VNom) → 10 % of 5 kW
        assert site.state.v > 0.95 * 230
        assert site.state.pv_w == pytest.approx(500.0)


async def test_isolator_vendor_map_commands_and_trip() -> None:
    specs = [
        DeviceSpec(profile="sim-inverter-103", unit_id=1),
        DeviceSpec(profile="sim-isolator", unit_id=5),
    ]
    async with DeviceSite(_settings(devices=specs)) as site, _client(site.port) as client:

        async def regs() -> list[int]:
            return (await client.read_holding_registers(100, count=7, device_id=5)).registers

        assert (await regs())[0] == 1  # closed
        await client.write_register(103, 1, device_id=5)  # open
        assert (await regs())[:5] == [0, 0, 0, 0, 0] or (await regs())[0] == 0
        site.tick()
        assert site.state.pv_w == 0  # PV isolated
        await client.write_register(103, 2, device_id=5)  # close
        site.activate_fault({"kind": "isolator_trip", "unit": 5})
        state, trips_hi, trips_lo = (await regs())[:3]
        assert (state, trips_hi << 16 | trips_lo) == (2, 1)
        refused = await client.write_register(103, 2, device_id=5)  # close while tripped
        assert refused.exception_code == 3
        await client.write_register(103, 3, device_id=5)  # reset → open
        assert (await regs())[0] == 0
        assert (await client.write_register(101, 0, device_id=5)).exception_code == 3  # read-only


async def test_faults_are_observable_with_a_plain_client() -> None:
    specs = [
        DeviceSpec(profile="sim-inverter-103", unit_id=1),
        DeviceSpec(profile="sim-meter-203", unit_id=2),
    ]
    async with DeviceSite(_settings(devices=specs)) as site, _client(site.port) as client:
        inv = site.device(1).block(103)

        def addr(path: str) -> int:
            slot = inv.lay.slot(path)
            assert slot is not None
            return inv.addr + slot.offset

        w_addr, evt_addr = addr("W"), addr("Evt1")

        site.activate_fault({"kind": "exception", "unit": 1, "code": 6})
        assert (
            await client.read_holding_registers(40000, count=2, device_id=1)
        ).exception_code == 6
        assert not (await client.read_holding_registers(40000, count=2, device_id=2)).isError()
        site.clear_faults()

        site.activate_fault({"kind": "not_implemented", "unit": 1, "points": ["103.W"]})
        assert (await client.read_holding_registers(w_addr, count=1, device_id=1)).registers == [
            0x8000
        ]
        site.clear_faults()

        before = (await client.read_holding_registers(w_addr, count=2, device_id=1)).registers
        site.activate_fault({"kind": "scale_factor", "unit": 1, "point": "103.W_SF", "sf": 1})
        after = (await client.read_holding_registers(w_addr, count=2, device_id=1)).registers
        assert after[1] == 1
        assert after[0] * 10 == pytest.approx(before[0] * 10 ** before[1], abs=10)
        site.clear_faults()

        site.activate_fault({"kind": "inverter_fault", "unit": 1, "bits": 0b1001})
        evt = (await client.read_holding_registers(evt_addr, count=2, device_id=1)).registers
        assert evt == [0, 0b1001]
        site.clear_faults()

        meter = site.device(2).block(203)
        slot = meter.lay.slot("TotWhImp")
        assert slot is not None
        imp = meter.addr + slot.offset
        high = (await client.read_holding_registers(imp, count=2, device_id=2)).registers
        site.activate_fault({"kind": "meter_replaced", "unit": 2})
        low = (await client.read_holding_registers(imp, count=2, device_id=2)).registers
        assert (high[0] << 16 | high[1]) > 1000
        assert (low[0] << 16 | low[1]) <= 2

        site.activate_fault({"kind": "slow_response", "delay_s": 0.4})
        t0 = time.monotonic()
        assert not (await client.read_holding_registers(40000, count=2, device_id=1)).isError()
        assert time.monotonic() - t0 >= 0.35
        site.clear_faults()

        site.activate_fault({"kind": "no_response", "unit": 1})
        with pytest.raises(ModbusIOException, match="No response"):
            await client.read_holding_registers(40000, count=2, device_id=1)  # 1 s timeout


async def test_one_tcp_connection_at_a_time() -> None:
    async with DeviceSite(_settings()) as site:
        site.activate_fault({"kind": "single_connection"})
        async with _client(site.port) as first:
            reader, writer = await asyncio.open_connection("127.0.0.1", site.port)
            try:
                async with asyncio.timeout(2):
                    assert await reader.read(1) == b""  # closed by the device at once
            finally:
                writer.close()
            assert not (await first.read_holding_registers(40000, count=2, device_id=1)).isError()


async def test_night_sleep_refuses_connections_until_sunrise() -> None:
    midnight = datetime(2024, 1, 10, 13, 0, tzinfo=UTC)
    async with DeviceSite(_settings(start_time=midnight)) as site:
        site.activate_fault({"kind": "night_sleep"})
        await site.advance()
        with pytest.raises(ConnectionRefusedError):
            await asyncio.wait_for(asyncio.open_connection("127.0.0.1", site.port), 2)
        site.clear_faults()
        await site.advance()
        async with _client(site.port) as client:
            assert not (await client.read_holding_registers(40000, count=2, device_id=1)).isError()


@pytest.mark.parametrize(("base", "length"), [(0, 65), (50000, 66)])
async def test_vendor_quirks_base_address_common_length_and_unit_id(base: int, length: int) -> None:
    spec = DeviceSpec(profile="sim-inverter-103", unit_id=126, base=base, common_length=length)
    async with DeviceSite(_settings(devices=[spec])) as site, _client(site.port) as client:
        rr = await client.read_holding_registers(base, count=4, device_id=126)
        assert rr.registers == [0x5375, 0x6E53, 1, length]
        assert (await client.read_holding_registers(40000, count=2, device_id=126)).isError()
        async with asyncio.timeout(20):
            models = await asyncio.to_thread(_scan_tcp, site.port, 126)
        assert sorted(models) == [1, 103, 120, 121, 122, 123, 126, 132, 160]


async def test_scenario_file_scripts_faults_over_simulated_time(tmp_path: Path) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        "name: blip\nfaults:\n"
        "  - {kind: exception, unit: 1, code: 4, at_s: 3600, duration_s: 3600}\n"
    )
    async with (
        DeviceSite(_settings(scenario=scenario, speed=36000.0)) as site,
        _client(site.port) as client,
    ):
        assert not (await client.read_holding_registers(40000, count=2, device_id=1)).isError()
        await asyncio.sleep(0.11)  # 3,960 simulated seconds at 36,000x: real time must pass
        assert site.elapsed_s() >= 3600
        assert (
            await client.read_holding_registers(40000, count=2, device_id=1)
        ).exception_code == 4


def _scan_rtu(port: str, unit: int) -> dict[int, Any]:
    return _scan(SunSpecModbusClientDeviceRTU(slave_id=unit, name=port, baudrate=9600, timeout=2))


async def test_rtu_over_a_pty_pair_scans_every_device_type(pty_pair: tuple[str, str]) -> None:
    server_end, client_end = pty_pair
    specs = [DeviceSpec(profile=p, unit_id=i + 1) for i, p in enumerate(ALL)]
    async with DeviceSite(_settings(devices=specs, serial_port=server_end)) as site:
        site.tick()
        for device in site.devices:
            async with asyncio.timeout(30):
                models = await asyncio.to_thread(_scan_rtu, client_end, device.unit_id)
            assert sorted(models) == sorted(device.profile.models), device.profile.name
            for (model_id, point), want in _expected(site, device.unit_id).items():
                got = getattr(models[model_id][0], point).cvalue
                assert got == pytest.approx(want, abs=1.0, rel=1e-3), (device.profile.name, point)
