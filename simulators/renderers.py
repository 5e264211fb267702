"""Point values of each SunSpec model, in engineering units, from the plant state.

One function per model family: ``render(ctx) -> {indexed path: value}``. Scale factors
are part of the values (``W_SF``...); the encoder in :mod:`device_profiles.sunspec_codec`
applies them, and float models (111-113) simply have no SF points. Writable points are
not produced here: they come from the device's settings store (read-back shows what was
applied). Signs: 103/113/701 ``W`` >= 0 generating; 802 ``W``/``A`` > 0 discharging;
meter ``W`` per the profile's ``meter_sign``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from device_profiles.schema import DeviceProfile
from simulators.plant import PlantState

__all__ = ["RenderContext", "default_settings", "render_model"]

Values = dict[str, Any]
FIRMWARE = "2.0.0"
INVERTER_EFFICIENCY = 0.97


@dataclass(frozen=True, slots=True)
class RenderContext:
    profile: DeviceProfile
    state: PlantState
    unit_id: int
    serial: str
    counts: dict[str, int]
    fault_bits: int = 0
    counter_offsets: dict[str, float] | None = None  # meter replaced: Wh subtracted

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
        "Vr": FIRMWARE,
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
        "A_SF": -2,
        "PhVphA": s.phase_v[0],
        "PhVphB": s.phase_v[1],
        "PhVphC": s.phase_v[2],
        "PPVphAB": s.phase_v[0] * math.sqrt(3),
        "PPVphBC": s.phase_v[1] * math.sqrt(3),
        "PPVphCA": s.phase_v[2] * math.sqrt(3),
        "V_SF": -1,
        "W": s.pv_w,
        "W_SF": ctx.w_sf,
        "Hz": s.hz,
        "Hz_SF": -2,
        "VA": va,
        "VA_SF": ctx.w_sf,
        "VAr": s.pv_var,
        "VAr_SF": ctx.w_sf,
        "PF": 100.0 * s.pv_w / va if va else 100.0,
        "PF_SF": -1,
        "WH": float(round(s.totals.pv_wh)),
        "WH_SF": 0,
        "DCA": dc_w / 400.0,
        "DCA_SF": -2,
        "DCV": 400.0 if s.pv_available_w > 0 else 0.0,
        "DCV_SF": -1,
        "DCW": dc_w,
        "DCW_SF": ctx.w_sf,
        "TmpCab": s.cabinet_c,
        "Tmp_SF": -1,
        "St": 7 if ctx.fault_bits else s.pv_state,
        "Evt1": ctx.fault_bits,
        "Evt2": 0,
    }


def _nameplate(ctx: RenderContext) -> Values:
    var = ctx.np("var_rtg", 3000.0)
    return {
        "DERTyp": 4,
        "WRtg": ctx.w_rtg,
        "WRtg_SF": ctx.w_sf,
        "VARtg": ctx.np("va_rtg", ctx.w_rtg),
        "VARtg_SF": ctx.w_sf,
        "VArRtgQ1": var,
        "VArRtgQ2": var,
        "VArRtgQ3": -var,
        "VArRtgQ4": -var,
        "VArRtg_SF": ctx.w_sf,
        "ARtg": ctx.w_rtg / 3 / 200.0,
        "ARtg_SF": -2,
        "PFRtgQ1": 0.8,
        "PFRtgQ2": 0.8,
        "PFRtgQ3": -0.8,
        "PFRtgQ4": -0.8,
        "PFRtg_SF": -3,
    }


def _status(ctx: RenderContext) -> Values:
    s = ctx.state
    pv_conn = 0b001 if s.pv_state != 8 else 0
    if s.pv_available_w > 0:
        pv_conn |= 0b110
    return {
        "PVConn": pv_conn,
        "StorConn": 0,
        "ECPConn": 1 if s.pv_state != 8 else 0,
        "ActWh": float(round(s.totals.pv_wh)),
        "WAval": s.pv_available_w,
        "WAval_SF": ctx.w_sf,
        "StActCtl": 1 if s.pv_state == 5 else 0,
        "Tms": int(s.ts.timestamp() - 946684800) % 2**32,  # seconds since 2000
        "RtSt": 0,
    }


def _legacy_curves(ctx: RenderContext, model_id: int) -> Values:
    n = ctx.counts.get("curve", 1)
    out: Values = {"NCrv": n, "NPt": 4, "V_SF": -1, "DeptRef_SF": 0, "RmpIncDec_SF": 0}
    for i in range(n):
        out[f"curve[{i}].ReadOnly"] = 0
    return out


def _mppt(ctx: RenderContext) -> Values:
    s = ctx.state
    n = ctx.counts.get("module", 1)
    dc_w = s.pv_w / INVERTER_EFFICIENCY if s.pv_w else 0.0
    out: Values = {"N": n, "DCA_SF": -2, "DCV_SF": -1, "DCW_SF": 0, "DCWH_SF": 0, "Evt": 0}
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


def _der_ac(ctx: RenderContext) -> Values:
    s = ctx.state
    hybrid = ctx.profile.kind == "hybrid_inverter"
    w = s.pv_w + (s.battery_w if hybrid else 0.0)
    va = math.hypot(w, s.pv_var)
    amps = va / 3 / s.v if s.v else 0.0
    inv_st = {2: 1, 4: 3, 5: 4, 8: 7}.get(s.pv_state, 3)
    inj = s.totals.pv_wh + (s.totals.discharge_wh if hybrid else 0.0)
    absorbed = (s.totals.charge_wh if hybrid else 0.0) + 1.0
    out: Values = {
        "ACType": 2,
        "St": 1,
        "InvSt": 6 if ctx.fault_bits else inv_st,
        "ConnSt": 0 if s.pv_state == 8 else 1,
        "Alrm": ctx.fault_bits,
        "W": w,
        "VA": va,
        "Var": s.pv_var,
        "PF": abs(w) / va if va else 1.0,
        "A": amps * 3,
        "LLV": s.v * math.sqrt(3),
        "LNV": s.v,
        "Hz": s.hz,
        "TotWhInj": float(round(inj)),
        "TotWhAbs": float(round(absorbed)),
        "TmpCab": s.cabinet_c,
        "ThrotPct": 0 if s.pv_state != 5 else 100,
        "A_SF": -2,
        "V_SF": -1,
        "Hz_SF": -3,
        "W_SF": ctx.w_sf,
        "PF_SF": -3,
        "VA_SF": ctx.w_sf,
        "Var_SF": ctx.w_sf,
        "TotWh_SF": 0,
        "Tmp_SF": -1,
    }
    for i, v in enumerate(s.phase_v, start=1):
        out |= {f"WL{i}": w / 3, f"VL{i}": v, f"AL{i}": amps, f"VarL{i}": s.pv_var / 3}
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
        "VMaxRtg": 265.0,
        "VMinRtg": 180.0,
        "AMaxRtg": ctx.w_rtg / 3 / 200.0,
        "NorOpCatRtg": 1,
        "AbnOpCatRtg": 2,
        "CtrlModes": 0b11,
        "W_SF": ctx.w_sf,
        "PF_SF": -3,
        "VA_SF": ctx.w_sf,
        "Var_SF": ctx.w_sf,
        "V_SF": -1,
        "A_SF": -2,
        "S_SF": 0,
    }


def _der_ctl(ctx: RenderContext) -> Values:
    return {
        "PF_SF": -3,
        "WMaxLimPct_SF": 0,
        "WSet_SF": 0,
        "WSetPct_SF": 0,
        "VarSet_SF": 0,
        "VarSetPct_SF": 0,
    }


def _der_curve_sfs(ctx: RenderContext) -> Values:
    return {"V_SF": -1, "Hz_SF": -2, "DeptRef_SF": 0, "RspTms_SF": 0, "Tms_SF": -2}


def _der_droop(ctx: RenderContext) -> Values:
    return {"Db_SF": -3, "K_SF": -3, "RspTms_SF": 0}


def _storage_capacity(ctx: RenderContext) -> Values:
    s = ctx.state
    wh = ctx.np("wh_rtg", 10000.0)
    return {
        "WHRtg": wh,
        "WHAvail": wh * s.battery_soc_pct / 100.0,
        "SoC": s.battery_soc_pct,
        "SoH": 98.0,
        "Sta": 2 if ctx.fault_bits else 0,
        "WH_SF": fit_sf(wh, 0),
        "Pct_SF": -1,
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
        "SoCMax": 100.0,
        "SoCMin": 0.0,
        "SoC": s.battery_soc_pct,
        "SoH": 98.0,
        "NCyc": 120,
        "ChaSt": _cha_st(s),
        "LocRemCtl": 0,
        "Hb": int(s.ts.timestamp()) % 65535,
        "Typ": 4,
        "State": 99 if ctx.fault_bits else 3,
        "Evt1": ctx.fault_bits,
        "Evt2": 0,
        "EvtVnd1": 0,
        "EvtVnd2": 0,
        "V": volts,
        "A": s.battery_w / volts,
        "W": s.battery_w,
        "AHRtg_SF": 0,
        "WHRtg_SF": fit_sf(ctx.np("wh_rtg", 10000.0), 0),
        "WChaDisChaMax_SF": 0,
        "SoC_SF": -1,
        "SoH_SF": -1,
        "V_SF": -2,
        "CellV_SF": -3,
        "A_SF": -1,
        "AMax_SF": 0,
        "W_SF": 0,
    }


def _storage(ctx: RenderContext) -> Values:
    s = ctx.state
    wh = ctx.np("wh_rtg", 10000.0)
    return {
        "ChaState": s.battery_soc_pct,
        "StorAval": wh * s.battery_soc_pct / 100.0,
        "InBatV": ctx.np("v_nom", 51.2),
        "ChaSt": _cha_st(s),
        "WChaMax_SF": 0,
        "WChaDisChaGra_SF": 0,
        "VAChaMax_SF": 0,
        "MinRsvPct_SF": 0,
        "ChaState_SF": -1,
        "StorAval_SF": fit_sf(wh, 0),
        "InBatV_SF": -1,
        "InOutWRte_SF": 0,
    }


def _meter(ctx: RenderContext, phases: int) -> Values:
    s = ctx.state
    sign = -1.0 if ctx.profile.meter_sign == "export_positive" else 1.0
    w_sf = fit_sf(max(ctx.np("max_w", 30000.0), 1.0), 0)
    w = s.grid_w * sign
    var = s.grid_var * sign
    va = math.hypot(w, var)
    v = s.phase_v[:phases]
    a = [va / phases / x if x else 0.0 for x in v]
    out: Values = {
        "A": sum(a),
        "A_SF": -2,
        "PhV": sum(v) / phases,
        "PPV": sum(v) / phases * math.sqrt(3) if phases == 3 else None,
        "V_SF": -1,
        "Hz": s.hz,
        "Hz_SF": -2,
        "W": w,
        "W_SF": w_sf,
        "VA": va,
        "VA_SF": w_sf,
        "VAR": var,
        "VAR_SF": w_sf,
        "PF": 100.0 * abs(w) / va if va else 100.0,
        "PF_SF": -1,
        "TotWhImp": float(round(ctx.counter("import_wh", s.totals.import_wh))),
        "TotWhExp": float(round(ctx.counter("export_wh", s.totals.export_wh))),
        "TotWh_SF": 0,
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
    121: lambda ctx: {
        "WMax_SF": ctx.w_sf,
        "VRef_SF": -1,
        "VRefOfs_SF": -1,
        "VMinMax_SF": -1,
        "VAMax_SF": ctx.w_sf,
        "VArMax_SF": ctx.w_sf,
        "WGra_SF": 0,
        "PFMin_SF": -3,
        "MaxRmpRte_SF": 0,
        "ECPNomHz_SF": -2,
    },
    122: _status,
    123: lambda ctx: {"WMaxLimPct_SF": 0, "OutPFSet_SF": -3, "VArPct_SF": 0},
    124: _storage,
    126: lambda ctx: _legacy_curves(ctx, 126),
    132: lambda ctx: _legacy_curves(ctx, 132),
    160: _mppt,
    201: lambda ctx: _meter(ctx, 1),
    203: lambda ctx: _meter(ctx, 3),
    701: _der_ac,
    702: _der_capacity,
    704: _der_ctl,
    705: _der_curve_sfs,
    706: _der_curve_sfs,
    707: _der_curve_sfs,
    708: _der_curve_sfs,
    709: _der_curve_sfs,
    710: _der_curve_sfs,
    711: _der_droop,
    713: _storage_capacity,
    802: _battery,
}


def render_model(model_id: int, ctx: RenderContext) -> Values:
    """Measured (read-only) point values of one model; unknown models render nothing."""
    renderer = _RENDERERS.get(model_id)
    return renderer(ctx) if renderer is not None else {}


# ----- writable defaults ---------------------------------------------------------------
_AU_A_VOLT_VAR = ((207.0, 44.0), (220.0, 0.0), (240.0, 0.0), (258.0, -60.0))
_AU_B_VOLT_VAR = ((205.0, 30.0), (220.0, 0.0), (235.0, 0.0), (255.0, -40.0))
_AU_A_VOLT_WATT = ((253.0, 100.0), (260.0, 20.0))
_AU_B_VOLT_WATT = ((250.0, 100.0), (260.0, 20.0))


def _legacy_curve_defaults(model_id: int, counts: dict[str, int]) -> Values:
    out: Values = {"ActCrv": 1, "ModEna": 0, "WinTms": 0, "RvrtTms": 0, "RmpTms": 0}
    dep = "VAr" if model_id == 126 else "W"
    curves = (
        (_AU_A_VOLT_VAR, _AU_B_VOLT_VAR) if model_id == 126 else (_AU_A_VOLT_WATT, _AU_B_VOLT_WATT)
    )
    for i in range(counts.get("curve", 1)):
        pts = curves[i % 2]
        p = f"curve[{i}]."
        out[p + "ActPt"] = len(pts)
        out[p + "DeptRef"] = 1
        for j, (v, y) in enumerate(pts, start=1):
            out[f"{p}V{j}"] = v
            out[f"{p}{dep}{j}"] = y
    return out


def _der_curve_defaults(model_id: int, counts: dict[str, int], v_nom: float) -> Values:
    n_crv, n_pt = counts.get("NCrv", 1), counts.get("NPt", 1)
    base = _AU_A_VOLT_VAR if model_id == 705 else _AU_A_VOLT_WATT
    alt = _AU_B_VOLT_VAR if model_id == 705 else _AU_B_VOLT_WATT
    dep = "Var" if model_id == 705 else "W"
    out: Values = {"Ena": 0, "AdptCrvReq": 0, "AdptCrvRslt": 1, "RvrtTms": 0, "RvrtCrv": 0}
    for i in range(n_crv):
        pts = base if i in (0, 1) else alt
        p = f"Crv[{i}]."
        out |= {p + "ActPt": min(len(pts), n_pt), p + "DeptRef": 1 if dep == "Var" else 0}
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
    # % of VNom (707/708) or Hz (709/710), with trip times in s
    limits = {707: (78.0, 30.0), 708: (115.0, 120.0), 709: (47.0, 45.0), 710: (52.0, 55.0)}
    first, second = limits[model_id]
    x = "Hz" if model_id in (709, 710) else "V"
    out: Values = {"Ena": 1, "AdptCrvReq": 0, "AdptCrvRslt": 1}
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
    out: Values = {"Ena": 0, "AdptCtlReq": 0, "AdptCtlRslt": 1, "RvrtTms": 0, "RvrtCtl": 0}
    for i in range(counts.get("NCtl", 1)):
        p = f"Ctl[{i}]."
        out |= {
            p + "DbOf": 0.036,
            p + "DbUf": 0.036,
            p + "KOf": 0.05 if i != 1 else 0.04,
            p + "KUf": 0.05,
            p + "RspTms": 1,
            p + "PMin": 0,
            p + "ReadOnly": 1 if i == 0 else 0,
        }
    return out


def default_settings(model_id: int, profile: DeviceProfile, counts: dict[str, int]) -> Values:
    """Initial values of a model's writable points (and the curve bookkeeping points)."""
    np_ = profile.nameplate
    w_rtg = np_.get("w_rtg", 5000.0)
    var = np_.get("var_rtg", 3000.0)
    v_nom = np_.get("v_nom", 230.0)
    if model_id == 121:
        return {
            "WMax": w_rtg,
            "VRef": v_nom,
            "VRefOfs": 0.0,
            "VMax": 265.0,
            "VMin": 180.0,
            "VAMax": np_.get("va_rtg", w_rtg),
            "VArMaxQ1": var,
            "VArMaxQ2": var,
            "VArMaxQ3": -var,
            "VArMaxQ4": -var,
            "WGra": 16,
            "ECPNomHz": 50.0,
        }
    if model_id == 123:
        return {
            "Conn_WinTms": 0,
            "Conn_RvrtTms": 0,
            "Conn": 1,
            "WMaxLimPct": 100,
            "WMaxLimPct_WinTms": 0,
            "WMaxLimPct_RvrtTms": 0,
            "WMaxLimPct_RmpTms": 0,
            "WMaxLim_Ena": 0,
            "OutPFSet": 1.0,
            "OutPFSet_Ena": 0,
            "VArPct_Ena": 0,
        }
    if model_id in (126, 132):
        return _legacy_curve_defaults(model_id, counts)
    if model_id == 702:
        return {"WMax": w_rtg, "VAMax": np_.get("va_rtg", w_rtg), "VNom": v_nom}
    if model_id == 704:
        return {
            "WMaxLimPctEna": 0,
            "WMaxLimPct": 100,
            "WSetEna": 0,
            "WSetMod": 0,
            "WSet": 0,
            "VarSetEna": 0,
            "AntiIslEna": 1,
        }
    if model_id in (705, 706):
        return _der_curve_defaults(model_id, counts, v_nom)
    if model_id in (707, 708, 709, 710):
        return _trip_defaults(model_id, counts)
    if model_id == 711:
        return _droop_defaults(counts)
    if model_id == 124:
        return {
            "WChaMax": np_.get("max_charge_w", 5000.0),
            "WChaGra": 100,
            "WDisChaGra": 100,
            "StorCtl_Mod": 0,
            "MinRsvPct": 10,
            "OutWRte": 0,
            "InWRte": 0,
            "ChaGriSet": 1,
        }
    if model_id == 802:
        return {"SocRsvMax": 95.0, "SoCRsvMin": 10.0, "SetOp": 1, "SetInvState": 3, "AlmRst": 0}
    return {}
