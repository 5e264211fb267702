"""The simulated DER inverter's grid support over real Modbus TCP (issue 18, point 5).

Curves are written into a writable curve set and adopted as an agent would (the first
set is read-only), the grid is stepped by a scenario fault, the simulated clock is driven
by hand, and the answer is read from model 701 as the agent polls it. Every expectation is
computed here from the curve points (grid-codes.md §1, §5), never from the simulator's
code; the tolerance is the conformance tests' ±4 % of rated VA per point.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from pymodbus.client import AsyncModbusTcpClient

from simulators.device_site import DeviceSite, DeviceSiteSettings, DeviceSpec
from tests.waiting import until

pytestmark = pytest.mark.integration

NOON_SYDNEY = datetime(2024, 1, 10, 2, 0, tzinfo=UTC)  # 13:00 AEDT: full sun
DER = 1
RATED_VA = 5000.0  # sim-der-inverter's nameplate: 5 kW, 5 kVA
TOL = 0.04 * RATED_VA
V_NOM = 230.0
SETTLED_S = 60  # many response times: the response is complete
# AS/NZS 4777.2:2020 volt-var (V, Q in % of rated VA; + = injecting), grid-codes.md §1
REGION_A = ((207, 44), (220, 0), (240, 0), (258, -60))
REGION_B = ((205, 30), (220, 0), (235, 0), (255, -40))


class Der:
    """The inverter's points by model and path, read and written over Modbus with their
    scale factors read from the device (a hand-rolled decoder: int16, uint16, uint32)."""

    def __init__(self, site: DeviceSite, client: AsyncModbusTcpClient) -> None:
        self.site, self.client = site, client

    def _slot(self, model: int, path: str) -> tuple[int, int, str, str | None]:
        block = self.site.device(DER).block(model)
        slot = block.lay.slot(path)
        assert slot is not None, f"{model}.{path}"
        return block.addr + slot.offset, slot.size, slot.pdef.type, slot.sf_path

    async def _raw(self, model: int, path: str) -> int:
        addr, size, kind, _ = self._slot(model, path)
        async with asyncio.timeout(3):
            rr = await self.client.read_holding_registers(addr, count=size, device_id=DER)
        assert not rr.isError(), f"{model}.{path}: {rr}"
        raw = int.from_bytes(b"".join(r.to_bytes(2, "big") for r in rr.registers), "big")
        signed = kind in ("int16", "sunssf") and raw & 0x8000
        return raw - 0x10000 if signed else raw

    async def _sf(self, model: int, path: str) -> int:
        sf_path = self._slot(model, path)[3]
        return 0 if sf_path is None else await self._raw(model, sf_path)

    async def read(self, model: int, path: str) -> float:
        return await self._raw(model, path) * 10.0 ** await self._sf(model, path)

    async def write(self, model: int, values: dict[str, float]) -> None:
        for path, value in values.items():
            addr, size, _, _ = self._slot(model, path)
            raw = round(value / 10.0 ** await self._sf(model, path)) % (1 << (16 * size))
            regs = [(raw >> (16 * (size - 1 - i))) & 0xFFFF for i in range(size)]
            async with asyncio.timeout(3):
                rr = await self.client.write_registers(addr, regs, device_id=DER)
            assert not rr.isError(), f"{model}.{path} = {value}: {rr}"

    async def adopt(self, model: int, index: int, group: str, check: tuple[str, float]) -> None:
        """Adopt curve/control ``index`` (1-based) and wait until the active set (the
        read-only first one) shows ``check``."""
        req = "AdptCtlReq" if group == "Ctl" else "AdptCrvReq"
        await self.write(model, {req: index})
        path, want = check

        async def adopted() -> bool:
            return await self.read(model, f"{group}[0].{path}") == pytest.approx(want)

        await until(adopted, 5, f"{model} {group} {index} adopted")

    async def volt_var(self, index: int, curve: tuple[tuple[int, int], ...]) -> None:
        """Write ``curve`` (volts, % rated VA) into set ``index`` and adopt it."""
        crv = f"Crv[{index - 1}]."
        points: dict[str, float] = {crv + "ActPt": 4, crv + "DeptRef": 3, crv + "RspTms": 10}
        for j, (v, q) in enumerate(curve):
            points |= {f"{crv}Pt[{j}].V": 100 * v / V_NOM, f"{crv}Pt[{j}].Var": q}
        await self.write(705, points)
        await self.adopt(705, index, "Crv", ("Pt[3].Var", curve[3][1]))


@contextlib.asynccontextmanager
async def _der(limit_pct: float = 60) -> AsyncIterator[tuple[DeviceSite, Der]]:
    """The inverter at Sydney noon, its output limited to ``limit_pct`` of rating (at
    most 70 %: the VA limit then never clips the reactive power asked for)."""
    settings = DeviceSiteSettings(
        site_id="grid-support",
        start_time=NOON_SYDNEY,
        update_period_s=3600.0,  # no ticks of its own: the test drives the clock
        devices=[DeviceSpec(profile="sim-der-inverter", unit_id=DER)],
    )
    async with DeviceSite(settings) as site:
        client = AsyncModbusTcpClient("127.0.0.1", port=site.port, timeout=1, retries=0)
        async with asyncio.timeout(5):
            assert await client.connect()
        der = Der(site, client)
        try:
            await der.write(704, {"WMaxLimPct": limit_pct, "WMaxLimPctEna": 1})
            yield site, der
        finally:
            client.close()


def _grid(site: DeviceSite, seconds: float, **fault: float) -> None:
    """Step the grid (``v=`` or ``hz=``), then run the simulated clock ``seconds``."""
    kind = "grid_voltage" if "v" in fault else "grid_frequency"
    site.activate_fault({"kind": kind, **fault})
    site.fast_forward(seconds)


async def test_volt_var_region_a_then_b_at_258_and_210_volts() -> None:
    async with _der() as (site, der):
        _grid(site, 0, v=230)
        await der.volt_var(2, REGION_A)
        await der.write(705, {"Ena": 1})
        site.fast_forward(SETTLED_S)
        assert await der.read(701, "W") == pytest.approx(3000, abs=1)  # 60 % of 5 kW
        assert await der.read(701, "Var") == pytest.approx(0, abs=TOL)  # 230 V: flat part

        _grid(site, SETTLED_S, v=258)
        assert await der.read(701, "VL1") == pytest.approx(258)
        assert await der.read(701, "Var") == pytest.approx(-0.60 * RATED_VA, abs=TOL)

        await der.volt_var(3, REGION_B)  # region B, same voltage
        site.fast_forward(SETTLED_S)
        # 258 V is past B's last point (255 V): held at -40 %
        assert await der.read(701, "Var") == pytest.approx(-0.40 * RATED_VA, abs=TOL)

        _grid(site, SETTLED_S, v=210)
        # B: 30 % x (220 - 210) / (220 - 205) = +20 %
        assert await der.read(701, "Var") == pytest.approx(0.20 * RATED_VA, abs=TOL)
        await der.adopt(705, 2, "Crv", ("Pt[3].Var", -60))  # back to A, still in set 2
        site.fast_forward(SETTLED_S)
        # A: 44 % x (220 - 210) / (220 - 207) = +33.85 %
        assert await der.read(701, "Var") == pytest.approx(0.3385 * RATED_VA, abs=TOL)
        assert await der.read(701, "W") == pytest.approx(3000, abs=1)  # P untouched


async def test_volt_var_takes_its_open_loop_response_time() -> None:
    async with _der() as (site, der):
        _grid(site, 0, v=230)
        await der.volt_var(2, REGION_A)  # RspTms 10 s
        await der.write(705, {"Ena": 1})
        site.fast_forward(SETTLED_S)
        final = -0.60 * RATED_VA
        _grid(site, 1, v=258)  # a tenth of the response time: under way, far from done
        early = await der.read(701, "Var")
        assert final / 2 < early < -TOL
        site.fast_forward(9)  # the response time: at least 90 % of the step
        assert await der.read(701, "Var") <= 0.9 * final + TOL


async def test_volt_watt_region_a_caps_active_power() -> None:
    async with _der(limit_pct=100) as (site, der):
        crv = "Crv[1]."
        await der.write(
            706,
            {
                crv + "ActPt": 2,
                crv + "DeptRef": 0,  # W_MAX_PCT
                crv + "RspTms": 10,
                crv + "Pt[0].V": 100 * 253 / V_NOM,
                crv + "Pt[0].W": 100,
                crv + "Pt[1].V": 100 * 260 / V_NOM,
                crv + "Pt[1].W": 20,
            },
        )
        await der.adopt(706, 2, "Crv", ("Pt[1].W", 20))
        await der.write(706, {"Ena": 1})
        assert site.state.pv_available_w > 0.5 * RATED_VA  # enough sun to be capped
        _grid(site, SETTLED_S, v=258)
        # 100 % - 80 % x (258 - 253) / (260 - 253) = 42.86 % of 5 kW
        assert await der.read(701, "W") == pytest.approx(0.4286 * RATED_VA, abs=TOL)
        _grid(site, SETTLED_S, v=262)  # past the last point: held at 20 %
        assert await der.read(701, "W") == pytest.approx(0.20 * RATED_VA, abs=TOL)


async def test_frequency_droop_with_deadbands_pmin_and_response_time() -> None:
    async with _der() as (site, der):  # 3000 W before any excursion
        # AS/NZS 4777.2 region A: fULCO 50.25 Hz, fPmin 52 Hz → droop 1.75 Hz per rated
        # power = 0.035 pu of 50 Hz; the same below fLLCO 49.75 Hz; PMin 10 %; 5 s
        ctl = "Ctl[1]."
        await der.write(
            711,
            {
                ctl + "DbOf": 0.25,
                ctl + "DbUf": 0.25,
                ctl + "KOf": 0.035,
                ctl + "KUf": 0.035,
                ctl + "PMin": 10,
                ctl + "RspTms": 5,
            },
        )
        await der.adopt(711, 2, "Ctl", ("KOf", 0.035))
        await der.write(711, {"Ena": 1})
        _grid(site, SETTLED_S, hz=50.2)  # inside the deadband: no change
        assert await der.read(701, "W") == pytest.approx(3000, abs=1)

        # 51 Hz: 5000 W x (51 - 50.25) / 1.75 = 2142.9 W less → 857.1 W; after the 5 s
        # response time 90 % of that: 3000 - 1928.6 = 1071.4 W
        _grid(site, 5, hz=51.0)
        assert await der.read(701, "Hz") == pytest.approx(51.0)
        assert await der.read(701, "W") == pytest.approx(1071.4, abs=TOL)
        site.fast_forward(SETTLED_S)
        assert await der.read(701, "W") == pytest.approx(857.1, abs=TOL)
        _grid(site, SETTLED_S, hz=51.9)  # 4714 W less would go below PMin: 10 % of 5 kW
        assert await der.read(701, "W") == pytest.approx(500, abs=TOL)

        # 49.5 Hz: 5000 W x (49.75 - 49.5) / 1.75 = 714.3 W more, from the headroom
        # under the 60 % limit (the sun gives more)
        assert site.state.pv_available_w > 3800
        _grid(site, SETTLED_S, hz=49.5)
        assert await der.read(701, "W") == pytest.approx(3714.3, abs=TOL)
