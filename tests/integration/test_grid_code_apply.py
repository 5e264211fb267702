"""A grid-code profile's settings written to the simulated DER inverter over Modbus TCP:
volt-var, volt-watt, trip curves (707-710, nested must-trip groups) and frequency droop
(711 control sets) go into the staging set and are adopted; the simulator's active set
then holds them (read from the simulator itself, not the writer's word)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from device_profiles import builtin_profile
from device_profiles.grid_code import builtin_grid_code
from device_profiles.grid_code_sunspec import device_settings
from device_profiles.setpoints import validate_config_devices
from edge_agent.device_writer import DeviceWriter, limit_guard
from edge_agent.modbus import ModbusEndpoint
from simulators.device_site import DeviceSite, DeviceSiteSettings, DeviceSpec

pytestmark = pytest.mark.integration

DER = builtin_profile("sim-der-inverter")
UNIT = 1


async def _apply(site: DeviceSite, profile_id: str) -> dict[str, float | tuple[float, ...]]:
    mapped = device_settings(builtin_grid_code(profile_id), DER)
    checked = validate_config_devices({"inv": mapped.settings}, {"inv": DER}, {"inv": {}})
    items = {s.point: s.value for s in checked["inv"]}
    device = site.device(UNIT)
    blocks = {b.model_id: (b.addr, b.length) for b in device.blocks}
    endpoint = ModbusEndpoint("der", "127.0.0.1", site.port, 2.0)
    writer = DeviceWriter(endpoint, UNIT, DER, blocks, guard=limit_guard(DER, {}))
    await writer.precheck(items)
    await writer.write_settings(items)
    for point, value in items.items():
        await writer.check_setting(point, value)
    return items


async def test_au_a_then_au_b_on_the_der_simulator() -> None:
    settings = DeviceSiteSettings(
        site_id="grid-code-apply",
        start_time=datetime(2024, 1, 10, 2, 0, tzinfo=UTC),
        update_period_s=3600.0,
        devices=[DeviceSpec(profile="sim-der-inverter", unit_id=UNIT)],
    )
    async with DeviceSite(settings) as site:
        await _apply(site, "au-a-2020")

        def p(ref: str) -> float:
            value = site.point(UNIT, ref)
            assert isinstance(value, int | float), (ref, value)
            return float(value)

        # AS/NZS 4777.2 region A (grid-codes.md §1), at 230 V: V< 180 V 11 s, V<< 70 V 2 s
        assert p("707.Crv[0].MustTrip[0].ActPt") == 2
        assert p("707.Crv[0].MustTrip[0].Pt[0].V") == pytest.approx(78.3, abs=0.05)
        assert p("707.Crv[0].MustTrip[0].Pt[0].Tms") == pytest.approx(11)
        assert p("707.Crv[0].MustTrip[0].Pt[1].V") == pytest.approx(30.4, abs=0.05)
        assert p("708.Crv[0].MustTrip[0].Pt[1].Tms") == pytest.approx(0.2)  # V>> 275 V 0.2 s
        assert p("709.Crv[0].MustTrip[0].ActPt") == 1
        assert p("709.Crv[0].MustTrip[0].Pt[0].Hz") == pytest.approx(47)  # F< 47 Hz 2 s
        assert p("710.Crv[0].MustTrip[0].Pt[0].Hz") == pytest.approx(52)  # F> 52 Hz 0.2 s
        # droop from fULCO 50.25 Hz to fPmin 52 Hz: deadband 0.25 Hz, 1.75 / 50 = 0.035 pu
        assert p("711.Ctl[0].DbOf") == pytest.approx(0.25)
        assert p("711.Ctl[0].KOf") == pytest.approx(0.035)
        assert p("705.Crv[0].Pt[3].Var") == pytest.approx(-60)  # 258 V/-60 %
        assert p("705.Crv[0].DeptRef") == 3  # Q in % of rated VA (VA_MAX_PCT)
        # soft ramp: 16.67 %/min of rating, 6 minutes to full power (§1 Ramp)
        assert p("703.ESRmpTms") == pytest.approx(360)

        # Region B: its volt-var replaces A's in the active curve; trips are unchanged.
        await _apply(site, "au-b-2020")
        assert [p(f"705.Crv[0].Pt[{i}].Var") for i in range(4)] == [30, 0, 0, -40]
        assert p("705.Crv[0].Pt[3].V") == pytest.approx(110.9, abs=0.05)  # 255 V
        assert p("711.Ctl[0].DbOf") == pytest.approx(0.15)  # fULCO 50.15 Hz
        assert p("707.Crv[0].MustTrip[0].Pt[0].Tms") == pytest.approx(11)
