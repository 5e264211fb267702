"""Point values of each SunSpec model, in engineering units, from the plant state.

One function per model family computes what follows the plant state: ``render(ctx) ->
{indexed path: value}``; the constant points (mostly scale factors), the initial
settings and the default curves are data, in ``model_values.yaml``. Scale factors are
part of the values (``W_SF``...); the encoder in :mod:`device_profiles.sunspec_codec`
applies them, and float models (111-113) simply have no SF points. Writable points are
not produced here: they come from the device's settings store (read-back shows what was
applied). Signs: 103/113/701 ``W`` >= 0 generating (a battery's 701: discharging); 802
``W``/``A`` > 0 discharging; meter ``W`` per the profile's ``meter_sign``, of the flow
where the meter is wired (:func:`simulators.plant.meter_flow`: the grid connection, or
the PoTR system's output).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from device_profiles.schema import DeviceProfile
from simulators.plant import MeterAt, PlantState, meter_flow

__all__ = ["RenderContext", "default_settings", "render_model"]

Values = dict[str, Any]
Curve = tuple[tuple[float, float], ...]
INVERTER_EFFICIENCY = 0.97
MODEL_VALUES = Path(__file__).with_name("model_values.yaml")
W_SF = "=w_sf"  # stands for the device's power SF in ``fixed``


@dataclass(frozen=True, slots=True)
class ModelValues:
    """``model_values.yaml``: see its header."""

    fixed: dict[int, Values]
    settings: dict[int, Values]
    volt_var: tuple[Curve, Curve]
    volt_watt: tuple[Curve, Curve]
    trips: dict[int, tuple[float, float]]
    droop: Values
    droop_by_index: dict[int, Values]


def _curves(raw: list[list[list[float]]]) -> tuple[Curve, Curve]:
    first, second = (tuple((float(x), float(y)) for x, y in curve) for curve in raw)
    return first, second


@functools.cache
def model_values() -> ModelValues:
    """The data file, read on first use (not at import)."""
    raw = yaml.safe_load(MODEL_VALUES.read_text(encoding="utf-8"))
    return ModelValues(
        fixed={int(k): dict(v) for k, v in raw["fixed"].items()},
        settings={int(k): dict(v) for k, v in raw["settings"].items()},
        volt_var=_curves(raw["curves"]["volt_var"]),
        volt_watt=_curves(raw["curves"]["volt_watt"]),
        trips={int(k): (float(v[0]), float(v[1])) for k, v in raw["trips"].items()},
        droop=dict(raw["droop"]["each"]),
        droop_by_index={int(k): dict(v) for k, v in raw["droop"]["by_index"].items()},
    )


@dataclass(frozen=True, slots=True)
class RenderContext:
    profile: DeviceProfile
    state: PlantState
    unit_id: int
    serial: str
    counts: dict[str, int]
    fault_bits: int = 0
    counter_offsets: dict[str, float] | None = None  # meter replaced: Wh subtracted
    meter_at: MeterAt = "grid"  # where a meter is wired

    def np(self, key: str, default: float) -> float:
        return self.profile.nameplate.get(key, default)

    @property
    def w_rtg(self) -> float:
        return self.np("w_rtg", 5000.0)

    @property
    def w_sf(self) -> int:
        return fit_sf(max(self.w_rtg, self.np("max_discharge_w", 0.0)), 0)

    def counter(self, name: str, wh: float) -> float:
        return wh - (self.counter_offsets or {}).get(name, 0.0)


def fit_sf(max_value: float, smallest: int) -> int:
    """Smallest power-of-ten SF (>= ``smallest``) keeping ``max_value`` inside int16."""
    sf = smallest
    while max_value / 10.0**sf > 30000:
        sf += 1
    return sf


def _common(ctx: RenderContext) -> Values:
    return {
        "Mn": ctx.profile.manufacturer,
        "Md": ctx.profile.model,
        "Opt": ctx.profile.name,
        "SN": ctx.serial,
        "DA": ctx.unit_id,
    }


def _inverter(ctx: RenderContext) -> Values:
    s = ctx.state
    v = s.v
    va = math.hypot(s.pv_w, s.pv_var)
    amps = va / 3 / v if v else 0.0
    dc_w = s.pv_w / INVERTER_EFFICIENCY if s.pv_w else 0.0
    return {
        "A": amps * 3,
        "AphA": amps,
        "AphB": amps,
        "AphC": amps,
        "PhVphA": s.phase_v[0],
        "PhVphB": s.phase_v[1],
        "PhVphC": s.phase_v[2],
        "PPVphAB": s.phase_v[0] * math.sqrt(3),
        "PPVphBC": s.phase_v[1] * math.sqrt(3),
        "PPVphCA": s.phase_v[2] * math.sqrt(3),
        "W": s.pv_w,
        "Hz": s.hz,
        "VA": va,
        "VAr": s.pv_var,
        "PF": 100.0 * s.pv_w / va if va else 100.0,
        "WH": float(round(s.totals.pv_wh)),
        "DCA": dc_w / 400.0,
        "DCV": 400.0 if s.pv_available_w > 0 else 0.0,
        "DCW": dc_w,
        "TmpCab": s.cabinet_c,
        "St": 7 if ctx.fault_bits else s.pv_state,
        "Evt1": ctx.fault_bits,
    }


def _nameplate(ctx: RenderContext) -> Values:
    var = ctx.np("var_rtg", 3000.0)
    return {
        "WRtg": ctx.w_rtg,
        "VARtg": ctx.np("va_rtg", ctx.w_rtg),
        "VArRtgQ1": var,
        "VArRtgQ2": var,
        "VArRtgQ3": -var,
        "VArRtgQ4": -var,
        "ARtg": ctx.w_rtg / 3 / 200.0,
    }


def _status(ctx: RenderContext) -> Values:
    s = ctx.state
    pv_conn = 0b001 if s.pv_state != 8 else 0
    if s.pv_available_w > 0:
        pv_conn |= 0b110
    return {
        "PVConn": pv_conn,
        "ECPConn": 1 if s.pv_state != 8 else 0,
        "ActWh": float(round(s.totals.pv_wh)),
        "WAval": s.pv_available_w,
        "StActCtl": 1 if s.pv_state == 5 else 0,
        "Tms": int(s.ts.timestamp() - 946684800) % 2**32,  # seconds since 2000
    }


def _legacy_curves(ctx: RenderContext) -> Values:
    n = ctx.counts.get("curve", 1)
    out: Values = {"NCrv": n}
    for i in range(n):
        out[f"curve[{i}].ReadOnly"] = 0
    return out


def _mppt(ctx: RenderContext) -> Values:
    s = ctx.state
    n = ctx.counts.get("module", 1)
    dc_w = s.pv_w / INVERTER_EFFICIENCY if s.pv_w else 0.0
    out: Values = {"N": n}
    for i in range(n):
        p = f"module[{i}]."
        out |= {
            p + "ID": i + 1,
            p + "IDStr": f"MPPT{i + 1}",
            p + "DCV": 380.0 if dc_w else 0.0,
            p + "DCA": dc_w / n / 380.0,
            p + "DCW": dc_w / n,
            p + "DCWH": float(round(s.totals.pv_wh / INVERTER_EFFICIENCY / n)),
            p + "DCSt": 4 if dc_w else 2,
        }
    return out


def _ac_port(ctx: RenderContext) -> tuple[float, float, float, int]:
    """What model 701 measures at the device's AC terminals: (W, TotWhInj, TotWhAbs,
    InvSt). W > 0 generating (into the AC bus): a PV inverter's output, a battery's
    discharge, a hybrid's PV plus battery."""
    s, t = ctx.state, ctx.state.totals
    if ctx.profile.kind == "battery":
        inv_st = 3 if abs(s.battery_w) > 1 else 7  # RUNNING, else STANDBY
        return s.battery_w, t.discharge_wh, t.charge_wh, inv_st
    inv_st = {2: 1, 4: 3, 5: 4, 8: 7}.get(s.pv_state, 3)
    if ctx.profile.kind == "hybrid_inverter":
        return s.pv_w + s.battery_w, t.hybrid_out_wh, t.hybrid_in_wh, inv_st
    return s.pv_w, t.pv_wh, 0.0, inv_st


def _der_ac(ctx: RenderContext) -> Values:
    s = ctx.state
    w, injected_wh, absorbed_wh, inv_st = _ac_port(ctx)
    battery = ctx.profile.kind == "battery"
    var = 0.0 if battery else s.pv_var  # the volt-var curve acts on the PV inverter
    va = math.hypot(w, var)
    amps = va / 3 / s.v if s.v else 0.0
    out: Values = {
        "InvSt": 6 if ctx.fault_bits else inv_st,
        "ConnSt": 0 if s.pv_state == 8 and not battery else 1,
        "Alrm": ctx.fault_bits,
        "W": w,
        "VA": va,
        "Var": var,
        "PF": abs(w) / va if va else 1.0,
        "A": amps * 3,
        "LLV": s.v * math.sqrt(3),
        "LNV": s.v,
        "Hz": s.hz,
        # uint64, so a true zero is a value (not "not implemented" as for acc types)
        "TotWhInj": float(round(injected_wh)),
        "TotWhAbs": float(round(absorbed_wh)),
        "TmpCab": None if battery else s.cabinet_c,
        "ThrotPct": 0 if s.pv_state != 5 or battery else 100,
    }
    for i, v in enumerate(s.phase_v, start=1):
        out |= {f"WL{i}": w / 3, f"VL{i}": v, f"AL{i}": amps, f"VarL{i}": var / 3}
    return out


def _der_capacity(ctx: RenderContext) -> Values:
    var = ctx.np("var_rtg", 3000.0)
    return {
        "WMaxRtg": ctx.w_rtg,
        "VAMaxRtg": ctx.np("va_rtg", ctx.w_rtg),
        "VarMaxInjRtg": var,
        "VarMaxAbsRtg": var,
        "WChaRteMaxRtg": ctx.np("max_charge_w", 0.0) or None,
        "WDisChaRteMaxRtg": ctx.np("max_discharge_w", 0.0) or None,
        "VNomRtg": ctx.np("v_nom", 230.0),
        "AMaxRtg": ctx.w_rtg / 3 / 200.0,
    }


def _storage_capacity(ctx: RenderContext) -> Values:
    s = ctx.state
    wh = ctx.np("wh_rtg", 10000.0)
    return {
        "WHRtg": wh,
        "WHAvail": wh * s.battery_soc_pct / 100.0,
        "SoC": s.battery_soc_pct,
        "Sta": 2 if ctx.fault_bits else 0,
        "WH_SF": fit_sf(wh, 0),
    }


def _cha_st(s: PlantState) -> int:
    if s.battery_soc_pct >= 99.9:
        return 5
    if s.battery_w < -1:
        return 4
    if s.battery_w > 1:
        return 3
    return 6


def _battery(ctx: RenderContext) -> Values:
    s = ctx.state
    v_nom = ctx.np("v_nom", 51.2)
    volts = v_nom * (0.95 + 0.1 * s.battery_soc_pct / 100.0)
    return {
        "AHRtg": ctx.np("ah_rtg", 200.0),
        "WHRtg": ctx.np("wh_rtg", 10000.0),
        "WChaRteMax": ctx.np("max_charge_w", 5000.0),
        "WDisChaRteMax": ctx.np("max_discharge_w", 5000.0),
        "SoC": s.battery_soc_pct,
        "ChaSt": _cha_st(s),
        "Hb": int(s.ts.timestamp()) % 65535,
        "State": 99 if ctx.fault_bits else 3,
        "Evt1": ctx.fault_bits,
        "V": volts,
        "A": s.battery_w / volts,
        "W": s.battery_w,
        "WHRtg_SF": fit_sf(ctx.np("wh_rtg", 10000.0), 0),
    }


def _storage(ctx: RenderContext) -> Values:
    s = ctx.state
    wh = ctx.np("wh_rtg", 10000.0)
    return {
        "ChaState": s.battery_soc_pct,
        "StorAval": wh * s.battery_soc_pct / 100.0,
        "InBatV": ctx.np("v_nom", 51.2),
        "ChaSt": _cha_st(s),
        "StorAval_SF": fit_sf(wh, 0),
    }


def _meter(ctx: RenderContext, phases: int) -> Values:
    s = ctx.state
    sign = -1.0 if ctx.profile.meter_sign == "export_positive" else 1.0
    w_sf = fit_sf(max(ctx.np("max_w", 30000.0), 1.0), 0)
    flow = meter_flow(s, ctx.meter_at)
    w = flow.w * sign
    var = flow.var * sign
    va = math.hypot(w, var)
    v = s.phase_v[:phases]
    a = [va / phases / x if x else 0.0 for x in v]
    out: Values = {
        "A": sum(a),
        "PhV": sum(v) / phases,
        "PPV": sum(v) / phases * math.sqrt(3) if phases == 3 else None,
        "Hz": s.hz,
        "W": w,
        "W_SF": w_sf,
        "VA": va,
        "VA_SF": w_sf,
        "VAR": var,
        "VAR_SF": w_sf,
        "PF": 100.0 * abs(w) / va if va else 100.0,
        "TotWhImp": float(round(ctx.counter("import_wh", flow.import_wh))),
        "TotWhExp": float(round(ctx.counter("export_wh", flow.export_wh))),
        "Evt": ctx.fault_bits,
    }
    for i, name in enumerate("ABC"[:phases]):
        out |= {
            f"Aph{name}": a[i],
            f"PhVph{name}": v[i],
            f"Wph{name}": w / phases,
            f"VAph{name}": va / phases,
            f"VARph{name}": var / phases,
        }
    return out


_RENDERERS: dict[int, Callable[[RenderContext], Values]] = {
    1: _common,
    103: _inverter,
    113: _inverter,
    120: _nameplate,
    122: _status,
    124: _storage,
    126: _legacy_curves,
    132: _legacy_curves,
    160: _mppt,
    201: lambda ctx: _meter(ctx, 1),
    203: lambda ctx: _meter(ctx, 3),
    701: _der_ac,
    702: _der_capacity,
    713: _storage_capacity,
    802: _battery,
}


def render_model(model_id: int, ctx: RenderContext) -> Values:
    """Point values of one model: its constant points, then those the state gives;
    unknown models render nothing."""
    fixed = model_values().fixed.get(model_id, {})
    values = {k: ctx.w_sf if v == W_SF else v for k, v in fixed.items()}
    renderer = _RENDERERS.get(model_id)
    return values | renderer(ctx) if renderer is not None else values


# ----- writable defaults ---------------------------------------------------------------
def _legacy_curve_defaults(model_id: int, counts: dict[str, int]) -> Values:
    data = model_values()
    out: Values = {}
    dep = "VAr" if model_id == 126 else "W"
    curves = data.volt_var if model_id == 126 else data.volt_watt
    for i in range(counts.get("curve", 1)):
        pts = curves[i % 2]
        p = f"curve[{i}]."
        out[p + "ActPt"] = len(pts)
        out[p + "DeptRef"] = 2 if model_id == 126 else 1  # 126: % VArMax; 132: % WMax
        for j, (v, y) in enumerate(pts, start=1):
            out[f"{p}V{j}"] = v
            out[f"{p}{dep}{j}"] = y
    return out


def _der_curve_defaults(model_id: int, counts: dict[str, int], v_nom: float) -> Values:
    n_crv, n_pt = counts.get("NCrv", 1), counts.get("NPt", 1)
    data = model_values()
    base, alt = data.volt_var if model_id == 705 else data.volt_watt
    dep = "Var" if model_id == 705 else "W"
    out: Values = {}
    for i in range(n_crv):
        pts = base if i in (0, 1) else alt
        p = f"Crv[{i}]."
        # 705 DeptRef 3 VA_MAX_PCT: AS/NZS 4777.2 gives Q in % of rated VA; 706: % WMax
        out |= {p + "ActPt": min(len(pts), n_pt), p + "DeptRef": 3 if dep == "Var" else 0}
        out[p + "ReadOnly"] = 1 if i == 0 else 0
        if model_id == 705:
            out |= {p + "Pri": 0, p + "VRef": 100.0, p + "VRefAutoEna": 0, p + "VRefAutoTms": 0}
        out[p + "RspTms"] = 10
        for j in range(n_pt):
            v, y = pts[min(j, len(pts) - 1)]
            out[f"{p}Pt[{j}].V"] = round(100.0 * v / v_nom, 1)
            out[f"{p}Pt[{j}].{dep}"] = y
    return out


def _trip_defaults(model_id: int, counts: dict[str, int]) -> Values:
    n_crv, n_pt = counts.get("NCrvSet", 1), counts.get("NPt", 1)
    first, second = model_values().trips[model_id]
    x = "Hz" if model_id in (709, 710) else "V"
    out: Values = {}
    for i in range(n_crv):
        p = f"Crv[{i}]."
        out[p + "ReadOnly"] = 1 if i == 0 else 0
        for grp in ("MustTrip", "MayTrip", "MomCess"):
            out[f"{p}{grp}.ActPt"] = n_pt
            for j in range(n_pt):
                out[f"{p}{grp}.Pt[{j}].{x}"] = first if j == 0 else second
                out[f"{p}{grp}.Pt[{j}].Tms"] = 2.0 if j == 0 else 1.0
    return out


def _droop_defaults(counts: dict[str, int]) -> Values:
    data = model_values()
    out: Values = {}
    for i in range(counts.get("NCtl", 1)):
        ctl = data.droop | data.droop_by_index.get(i, {}) | {"ReadOnly": 1 if i == 0 else 0}
        out |= {f"Ctl[{i}].{name}": value for name, value in ctl.items()}
    return out


def _computed_settings(model_id: int, profile: DeviceProfile, counts: dict[str, int]) -> Values:
    """The initial settings that follow the nameplate or the group counts."""
    np_ = profile.nameplate
    w_rtg = np_.get("w_rtg", 5000.0)
    var = np_.get("var_rtg", 3000.0)
    v_nom = np_.get("v_nom", 230.0)
    va_rtg = np_.get("va_rtg", w_rtg)
    if model_id == 121:
        return {
            "WMax": w_rtg,
            "VRef": v_nom,
            "VAMax": va_rtg,
            "VArMaxQ1": var,
            "VArMaxQ2": var,
            "VArMaxQ3": -var,
            "VArMaxQ4": -var,
        }
    if model_id in (126, 132):
        return _legacy_curve_defaults(model_id, counts)
    if model_id == 702:
        return {"WMax": w_rtg, "VAMax": va_rtg, "VNom": v_nom}
    if model_id in (705, 706):
        return _der_curve_defaults(model_id, counts, v_nom)
    if model_id in (707, 708, 709, 710):
        return _trip_defaults(model_id, counts)
    if model_id == 711:
        return _droop_defaults(counts)
    if model_id == 124:
        return {"WChaMax": np_.get("max_charge_w", 5000.0)}
    return {}


def default_settings(model_id: int, profile: DeviceProfile, counts: dict[str, int]) -> Values:
    """Initial values of a model's writable points (and the curve bookkeeping points)."""
    constant = model_values().settings.get(model_id, {})
    return dict(constant) | _computed_settings(model_id, profile, counts)
