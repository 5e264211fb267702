"""The device simulator's write log, write-failure fault and local changes, over Modbus TCP.

What safety tests of the control path rely on: the simulator's own record of every write
that reached a device (never the agent's word), writes that fail or are silently ignored,
and settings changed on the device behind the agent's back.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pymodbus.client import AsyncModbusTcpClient

from simulators.device_site import DeviceSite, DeviceSiteSettings, DeviceSpec
from simulators.faults import ScenarioError

pytestmark = pytest.mark.integration

NOON_SYDNEY = datetime(2024, 1, 10, 2, 0, tzinfo=UTC)
DER, ISOLATOR = 1, 5


def _settings() -> DeviceSiteSettings:
    return DeviceSiteSettings(
        site_id="writes-test",
        start_time=NOON_SYDNEY,
        update_period_s=3600.0,  # the tests tick by hand
        devices=[
            DeviceSpec(profile="sim-der-inverter", unit_id=DER),
            DeviceSpec(profile="sim-isolator", unit_id=ISOLATOR),
        ],
    )


@contextlib.asynccontextmanager
async def _site() -> AsyncIterator[tuple[DeviceSite, AsyncModbusTcpClient]]:
    async with DeviceSite(_settings()) as site:
        client = AsyncModbusTcpClient("127.0.0.1", port=site.port, timeout=1, retries=0)
        async with asyncio.timeout(5):
            assert await client.connect()
        try:
            yield site, client
        finally:
            client.close()


def _addr(site: DeviceSite, ref: str) -> int:
    model, path = ref.split(".", 1)
    block = site.device(DER).block(int(model))
    slot = block.lay.slot(path)
    assert slot is not None, ref
    return block.addr + slot.offset


async def _write(client: AsyncModbusTcpClient, addr: int, values: list[int], unit: int) -> Any:
    async with asyncio.timeout(3):
        return await client.write_registers(addr, values, device_id=unit)


async def _read(client: AsyncModbusTcpClient, addr: int, unit: int = DER) -> int:
    async with asyncio.timeout(3):
        rr = await client.read_holding_registers(addr, count=1, device_id=unit)
    assert not rr.isError()
    return int(rr.registers[0])


async def test_write_log_records_applied_and_refused_writes_in_engineering_units() -> None:
    async with _site() as (site, client):
        lim = _addr(site, "704.WMaxLimPct")
        assert not (await _write(client, lim, [40], DER)).isError()
        too_high = await _write(client, lim, [150], DER)
        assert too_high.exception_code == 3
        v = _addr(site, "705.Crv[1].Pt[0].V")
        assert not (await _write(client, v, [905, 0xFFFF - 9], DER)).isError()  # V, Var = -10
        w_set = _addr(site, "704.WSet")
        assert (await _write(client, w_set + 1, [7], DER)).exception_code == 3  # half of WSet
        assert not (await _write(client, 103, [1], ISOLATOR)).isError()  # open
        await _read(client, lim)  # reads are not writes

        log = site.write_log
        assert [(r.unit_id, r.outcome, r.exception_code) for r in log] == [
            (DER, "applied", None),
            (DER, "refused", 3),
            (DER, "applied", None),
            (DER, "refused", 3),
            (ISOLATOR, "applied", None),
        ]
        assert log[0].points == {"704.WMaxLimPct": 40}
        assert (log[0].function_code, log[0].address, log[0].registers) == (16, lim, (40,))
        assert log[0].ts.tzinfo is UTC
        assert log[1].points == {"704.WMaxLimPct": 150}  # what it asked for, though refused
        assert log[2].points == pytest.approx(
            {"705.Crv[1].Pt[0].V": 90.5, "705.Crv[1].Pt[0].Var": -10}
        )
        assert log[3].points == {"704.WSet": None}  # part of a point: not decodable
        assert log[4].points == {"vendor.command": 1}
        assert site.writes(ISOLATOR) == [log[4]]
        assert site.writes() == log


async def test_refused_writes_decode_with_the_scale_factor_being_served() -> None:
    async with _site() as (site, client):
        site.activate_fault({"kind": "scale_factor", "unit": DER, "point": "705.V_SF", "sf": -2})
        v = _addr(site, "705.Crv[1].Pt[0].V")
        assert (await _write(client, v, [16000], DER)).exception_code == 3  # 160 % > 150 %
        assert site.writes(DER)[-1].points == pytest.approx({"705.Crv[1].Pt[0].V": 160.0})


async def test_write_fail_exception_mode_answers_the_code_and_applies_nothing() -> None:
    async with _site() as (site, client):
        lim = _addr(site, "704.WMaxLimPct")
        site.activate_fault(
            {"kind": "write_fail", "unit": DER, "point": "704.WMaxLimPct", "count": 2}
        )
        for value in (30, 31):
            assert (await _write(client, lim, [value], DER)).exception_code == 4
            assert await _read(client, lim) == 100
        assert not (await _write(client, lim, [32], DER)).isError()  # count used up
        assert await _read(client, lim) == 32
        assert [(r.outcome, r.exception_code) for r in site.writes(DER)] == [
            ("faulted", 4),
            ("faulted", 4),
            ("applied", None),
        ]

        site.activate_fault(
            {"kind": "write_fail", "point": "vendor.command", "mode": "exception", "code": 6}
        )
        assert (await _write(client, 103, [1], ISOLATOR)).exception_code == 6
        assert site.point(ISOLATOR, "vendor.state") == 1  # still closed
        site.clear_faults("write_fail")
        assert not (await _write(client, 103, [1], ISOLATOR)).isError()
        assert site.point(ISOLATOR, "vendor.state") == 0

        # the plain exception fault fails writes too: logged as faulted, reads are not logged
        site.activate_fault({"kind": "exception", "unit": DER, "code": 6})
        assert (await _write(client, lim, [33], DER)).exception_code == 6
        site.clear_faults()
        assert await _read(client, lim) == 32
        assert site.writes(DER)[-1].outcome == "faulted"
        assert site.writes(DER)[-1].points == {"704.WMaxLimPct": 33}
        assert len(site.write_log) == 6  # 4 on the inverter, 2 on the isolator


async def test_write_fail_ignore_mode_answers_ok_and_read_back_shows_the_old_value() -> None:
    async with _site() as (site, client):
        site.load_scenario_data(
            {
                "faults": [
                    {"kind": "write_fail", "unit": DER, "point": "705.Crv.Pt.V", "mode": "ignore"}
                ]
            }
        )
        v, var = _addr(site, "705.Crv[1].Pt[0].V"), _addr(site, "705.Crv[1].Pt[0].Var")
        old = await _read(client, v)
        assert not (await _write(client, v, [old + 10], DER)).isError()
        assert await _read(client, v) == old
        assert not (await _write(client, var, [5], DER)).isError()  # another point: applied
        assert await _read(client, var) == 5
        bad = await _write(client, v, [2000], DER)  # the device refuses this one itself
        assert bad.exception_code == 3
        assert [(r.outcome, r.exception_code) for r in site.writes(DER)] == [
            ("faulted", None),
            ("applied", None),
            ("refused", 3),
        ]
        site.clear_faults("write_fail", DER)
        assert not (await _write(client, v, [old + 10], DER)).isError()
        assert await _read(client, v) == old + 10


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ({"point": "704.WMaxLimPcts"}, "no such writable point"),
        ({"point": "701.W"}, "no such writable point"),  # measured, read-only
        ({"point": "vendor.state"}, "no such writable point"),
        ({"point": "704.WMaxLimPct", "mode": "explode"}, "Input should be"),
        ({"point": "704.WMaxLimPct", "count": 0}, "greater than or equal to 1"),
    ],
)
def test_write_fail_faults_are_checked_against_the_devices(
    fault: dict[str, Any], reason: str
) -> None:
    site = DeviceSite(_settings())
    with pytest.raises(ScenarioError, match=reason) as err:
        site.load_scenario_data({"faults": [{"kind": "write_fail", **fault}]})
    assert err.value.key.startswith("faults[0].")


async def test_set_point_changes_what_is_served_and_stays_out_of_the_write_log() -> None:
    async with _site() as (site, client):
        site.set_point(DER, "704.WMaxLimPct", 40)
        assert await _read(client, _addr(site, "704.WMaxLimPct")) == 40
        assert site.point(DER, "704.WMaxLimPct") == 40
        # the active curve is read-only over Modbus, not for the device's own panel
        site.set_point(DER, "705.Crv[0].Pt[1].V", 101.5)
        assert await _read(client, _addr(site, "705.Crv[0].Pt[1].V")) == 1015
        assert site.point(DER, "705.Crv[0].Pt[1].V") == pytest.approx(101.5)
        assert site.point(ISOLATOR, "vendor.state") == 1
        assert site.write_log == []
        with pytest.raises(ValueError, match="not writable"):
            site.set_point(DER, "701.W", 1)
        with pytest.raises(ValueError, match="no such point"):
            site.set_point(DER, "705.Crv[9].Pt[0].V", 1)
