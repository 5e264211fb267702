"""Raw SunSpec point values of the simulated devices, from a :class:`SiteSample`.

The inverter (unit 1) carries models 1, 103, 120 and 123; the grid meter (unit 2)
carries models 1 and 203. Scale factors are fixed per device (realistic values); the
meter's ``W`` is positive when importing from the grid.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from typing import Literal

from simulators.physics import Controls, SiteSample
from simulators.sunspec_image import RawValue, model_values

DeviceKind = Literal["inverter", "meter"]
INVERTER_UNIT = 1
METER_UNIT = 2
MANUFACTURER = "PoTR Sim"
FIRMWARE = "1.0.0"

PointValues = dict[str, RawValue]
ModelValues = list[tuple[int, PointValues]]


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    unit_id: int
    serial: str
    kind: DeviceKind


def serial_number(site_id: str, kind: DeviceKind) -> str:
    """A unique, stable serial (model 1 ``SN``, <= 32 bytes) for a site's device."""
    prefix = {"inverter": "INV", "meter": "MTR"}[kind]
    clean = re.sub(r"[^A-Za-z0-9-]", "-", site_id).strip("-") or "site"
    if len(clean) > 24:
        clean = hashlib.sha1(site_id.encode()).hexdigest()[:12]
    return f"{prefix}-{clean}"


def _scaled(value: float, sf: int) -> int:
    return round(value / 10.0**sf)


def _fit_sf(max_value: float, smallest: int) -> int:
    """Smallest power-of-ten SF (>= ``smallest``) that keeps ``max_value`` inside int16."""
    sf = smallest
    while max_value / 10.0**sf > 30000:
        sf += 1
    return sf


def _w_sf(capacity_w: float) -> int:
    return _fit_sf(capacity_w, 0)


def _a_sf(capacity_w: float) -> int:
    """Current SF: -2 for homes; coarser where 3 phases at 100 V would overflow int16."""
    return _fit_sf(capacity_w / 3 / 100.0, -2)


def _common(serial: str, model: str, unit_id: int) -> PointValues:
    return {"Mn": MANUFACTURER, "Md": model, "Vr": FIRMWARE, "SN": serial, "DA": unit_id}


def inverter_models(
    sample: SiteSample, *, serial: str, capacity_w: float, controls: Controls
) -> ModelValues:
    """Models 1, 103, 120, 123 of the three-phase PV inverter."""
    w_sf = _w_sf(capacity_w)
    a_sf = _a_sf(capacity_w)
    v_avg = sum(sample.phase_v) / 3
    phase_a = sample.pv_w / 3 / v_avg if v_avg else 0.0
    inverter: PointValues = {
        "A": _scaled(phase_a * 3, a_sf),
        "AphA": _scaled(phase_a, a_sf),
        "AphB": _scaled(phase_a, a_sf),
        "AphC": _scaled(phase_a, a_sf),
        "A_SF": a_sf,
        "PhVphA": _scaled(sample.phase_v[0], -1),
        "PhVphB": _scaled(sample.phase_v[1], -1),
        "PhVphC": _scaled(sample.phase_v[2], -1),
        "PPVphAB": _scaled(sample.phase_v[0] * math.sqrt(3), -1),
        "PPVphBC": _scaled(sample.phase_v[1] * math.sqrt(3), -1),
        "PPVphCA": _scaled(sample.phase_v[2] * math.sqrt(3), -1),
        "V_SF": -1,
        "W": _scaled(sample.pv_w, w_sf),
        "W_SF": w_sf,
        "Hz": _scaled(sample.hz, -2),
        "Hz_SF": -2,
        "VA": _scaled(sample.pv_w, w_sf),
        "VA_SF": w_sf,
        "VAr": 0,
        "VAr_SF": w_sf,
        "PF": 1000,
        "PF_SF": -1,
        "WH": round(sample.totals.pv_wh) % 2**32,
        "WH_SF": 0,
        "DCW": _scaled(sample.pv_dc_w, w_sf),
        "DCW_SF": w_sf,
        "TmpCab": _scaled(sample.cabinet_c, -1),
        "Tmp_SF": -1,
        "St": sample.pv_state,
        "Evt1": 0,
    }
    nameplate: PointValues = {
        "DERTyp": 4,  # PV
        "WRtg": _scaled(capacity_w, w_sf),
        "WRtg_SF": w_sf,
        "VARtg": _scaled(capacity_w, w_sf),
        "VARtg_SF": w_sf,
        "ARtg": _scaled(capacity_w / 3 / 200.0, a_sf),
        "ARtg_SF": a_sf,
    }
    return [
        (1, _common(serial, "SIM-INV-3P", INVERTER_UNIT)),
        (103, inverter),
        (120, nameplate),
        (123, controls_points(controls)),
    ]


def controls_points(controls: Controls) -> PointValues:
    return {
        "Conn_WinTms": 0,
        "Conn_RvrtTms": 0,
        "Conn": 1 if controls.connected else 0,
        "WMaxLimPct": round(controls.limit_pct),
        "WMaxLimPct_WinTms": 0,
        "WMaxLimPct_RvrtTms": 0,
        "WMaxLimPct_RmpTms": 0,
        "WMaxLim_Ena": 1 if controls.limit_enabled else 0,
        "OutPFSet_Ena": 0,
        "VArPct_Ena": 0,
        "WMaxLimPct_SF": 0,
        "OutPFSet_SF": -3,
        "VArPct_SF": 0,
    }


def controls_from_registers(registers: list[int], previous: Controls) -> Controls:
    """Controls as written into a model 123 block (ID register first)."""
    values = model_values(123, registers)
    conn, pct, ena = values["Conn"], values["WMaxLimPct"], values["WMaxLim_Ena"]
    return Controls(
        connected=previous.connected if conn is None else conn == 1,
        limit_pct=previous.limit_pct if pct is None else float(pct),
        limit_enabled=previous.limit_enabled if ena is None else ena == 1,
    )


def meter_models(sample: SiteSample, *, serial: str, capacity_w: float) -> ModelValues:
    """Models 1 and 203 of the wye grid meter; ``W`` > 0 = importing."""
    w_sf = _w_sf(capacity_w)
    a_sf = _a_sf(capacity_w)
    v = sample.phase_v
    pf = 0.98
    w_phase = sample.grid_w / 3
    va_phase = abs(w_phase) / pf
    var_phase = math.sqrt(max(va_phase**2 - w_phase**2, 0.0))
    a_phase = [va_phase / vx if vx else 0.0 for vx in v]
    meter: PointValues = {
        "A": _scaled(sum(a_phase), a_sf),
        "AphA": _scaled(a_phase[0], a_sf),
        "AphB": _scaled(a_phase[1], a_sf),
        "AphC": _scaled(a_phase[2], a_sf),
        "A_SF": a_sf,
        "PhV": _scaled(sum(v) / 3, -1),
        "PhVphA": _scaled(v[0], -1),
        "PhVphB": _scaled(v[1], -1),
        "PhVphC": _scaled(v[2], -1),
        "PPV": _scaled(sum(v) / 3 * math.sqrt(3), -1),
        "V_SF": -1,
        "Hz": _scaled(sample.hz, -2),
        "Hz_SF": -2,
        "W": _scaled(sample.grid_w, w_sf),
        "WphA": _scaled(w_phase, w_sf),
        "WphB": _scaled(w_phase, w_sf),
        "WphC": _scaled(w_phase, w_sf),
        "W_SF": w_sf,
        "VA": _scaled(va_phase * 3, w_sf),
        "VAphA": _scaled(va_phase, w_sf),
        "VAphB": _scaled(va_phase, w_sf),
        "VAphC": _scaled(va_phase, w_sf),
        "VA_SF": w_sf,
        "VAR": _scaled(var_phase * 3, w_sf),
        "VARphA": _scaled(var_phase, w_sf),
        "VARphB": _scaled(var_phase, w_sf),
        "VARphC": _scaled(var_phase, w_sf),
        "VAR_SF": w_sf,
        "PF": _scaled(pf * 100, -1),
        "PF_SF": -1,
        "TotWhExp": round(sample.totals.export_wh) % 2**32,
        "TotWhImp": round(sample.totals.import_wh) % 2**32,
        "TotWh_SF": 0,
        "Evt": 0,
    }
    return [(1, _common(serial, "SIM-METER-WYE", METER_UNIT)), (203, meter)]
