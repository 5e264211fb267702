"""Site physics with a simulated clock, as pure functions over frozen state.

Units are SI (W, var, V, Hz, Wh, %). Signs follow the contract: ``pv_w >= 0`` is
generation; ``battery_w > 0`` discharging into the AC bus, ``< 0`` charging; ``grid_w``
> 0 importing. The meter closes the balance: ``grid_w = load_w - pv_w - battery_w``.
PoTR's own system meter (decision 119) sits at the system's AC output, PV and battery
behind it: it sees ``pv_w + battery_w``, > 0 when the system delivers into the premises
(:func:`meter_flow` says what a meter at either place measures).

PV is clear-sky GHI (pvlib) / 1000 W/m² * capacity * a cloud factor, clipped at capacity,
then reduced by the inverter's controls: ``Conn``, ``WMaxLimPct``, its volt-watt curve and
its frequency droop; its volt-var curve sets reactive power, inside its VA rating. Grid
voltage rises with irradiance (suburban feeders with much rooftop PV run high at midday)
unless a :class:`GridCondition` (a scenario fault) sets it. Noise is deterministic per
seed and simulated second.

The grid-support functions answer a change with the open-loop response time their
settings give (IEEE 1547-2018 / SunSpec ``RspTms``: 90 % of a step done by then), as a
first-order response integrated exactly over each step, so a test that steps the clock by
hand gets hand-computable values: after ``t`` s, ``1 - 10**(-t / RspTms)`` of the step.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo

if TYPE_CHECKING:  # pvlib is heavy: the virtual fleet uses this module's load without it
    from simulators.solar import ClearSky

__all__ = [
    "BatteryControls",
    "FreqDroop",
    "GridCondition",
    "InverterControls",
    "MeterAt",
    "MeterFlow",
    "PlantConfig",
    "PlantState",
    "Totals",
    "VoltVar",
    "curve_value",
    "house_load_w",
    "initial_state",
    "local_hour",
    "meter_flow",
    "noise",
    "respond",
    "step",
]

Curve = tuple[tuple[float, float], ...]  # (volts, value) points, volts ascending
#: Where a meter is wired: the grid connection, or the PoTR system's AC output.
MeterAt = Literal["grid", "system"]


@dataclass(frozen=True, slots=True)
class PlantConfig:
    latitude: float = -33.87
    longitude: float = 151.21
    tz: str = "Australia/Sydney"
    pv_capacity_w: float = 5000.0
    cloud_factor: float = 1.0  # 1 = clear sky
    nominal_v: float = 230.0
    nominal_hz: float = 50.0
    midday_rise_pct: float = 6.0  # voltage rise at 1000 W/m²
    voltage_noise_pct: float = 0.3
    load_scale: float = 1.0
    battery_wh: float = 0.0  # 0 = no battery
    battery_max_charge_w: float = 5000.0
    battery_max_discharge_w: float = 5000.0
    seed: int = 0


@dataclass(frozen=True, slots=True)
class VoltVar:
    """An enabled volt-var curve (705 / 126): reactive power in % of a reference.

    ``ref_var`` is the reference in var (WMax, VarMax or VAMax as the curve's ``DeptRef``
    says), or ``None`` for "% of available var" (what the VA rating leaves beside P).
    """

    curve: Curve  # (V, % of the reference; + = injecting, over-excited)
    ref_var: float | None
    rsp_s: float = 0.0  # open-loop response time; 0 = at once
    q_priority: bool = False  # at the VA limit: False = P kept, Q gives way


@dataclass(frozen=True, slots=True)
class FreqDroop:
    """An enabled frequency droop (711): deadbands in Hz, droops in per unit (0.05 = 5 %:
    1 pu of rated power per 5 % of nominal frequency), ``pmin_pct`` of rated power."""

    db_of_hz: float
    db_uf_hz: float
    k_of: float
    k_uf: float
    pmin_pct: float = 0.0
    rsp_s: float = 0.0


@dataclass(frozen=True, slots=True)
class InverterControls:
    """What the inverter obeys (SunSpec 123 / 704 and the curve models)."""

    connected: bool = True
    limit_pct: float = 100.0
    limit_enabled: bool = False
    volt_watt: Curve | None = None  # (V, % of rated W) when enabled
    volt_var: VoltVar | None = None
    volt_watt_rsp_s: float = 0.0  # open-loop response time; 0 = at once
    volt_watt_of_available: bool = False  # 706 DeptRef W_AVAL_PCT: % of available power
    droop: FreqDroop | None = None
    va_max: float | None = None  # VA rating: P and Q together stay inside it


@dataclass(frozen=True, slots=True)
class GridCondition:
    """The grid's voltage (V, every phase) and frequency (Hz) when set by a fault;
    ``None`` = the plant's own (midday rise, noise)."""

    v: float | None = None
    hz: float | None = None


@dataclass(frozen=True, slots=True)
class BatteryControls:
    """Self-consumption unless ``setpoint_w`` is set (> 0 discharge, < 0 charge)."""

    connected: bool = True
    setpoint_w: float | None = None
    min_reserve_pct: float = 10.0
    max_charge_w: float | None = None


@dataclass(frozen=True, slots=True)
class Totals:
    """Energy accumulators in Wh; they only grow."""

    pv_wh: float = 0.0
    load_wh: float = 0.0
    import_wh: float = 0.0
    export_wh: float = 0.0
    charge_wh: float = 0.0  # AC energy into the battery
    discharge_wh: float = 0.0  # AC energy out of the battery
    # A hybrid inverter's AC port carries PV plus battery: what it injects and absorbs
    # there (PV charging the battery never crosses it).
    hybrid_out_wh: float = 0.0
    hybrid_in_wh: float = 0.0
    # PoTR's system meter (decision 119): what PV + battery delivered into the premises
    # and drew from them. The same flow as a hybrid's AC port, but a meter of its own
    # (installed, and maybe replaced, on its own), so its own registers.
    system_out_wh: float = 0.0
    system_in_wh: float = 0.0


@dataclass(frozen=True, slots=True)
class PlantState:
    ts: datetime
    ghi: float
    sun_elevation: float
    pv_available_w: float
    pv_w: float
    pv_var: float
    pv_state: int  # SunSpec 103 St: 2 SLEEPING, 4 MPPT, 5 THROTTLED, 8 STANDBY
    load_w: float
    battery_w: float
    battery_soc_pct: float
    grid_w: float
    grid_var: float
    phase_v: tuple[float, float, float]
    hz: float
    cabinet_c: float
    totals: Totals = field(default_factory=Totals)
    # the grid-support responses in flight (their first-order states)
    volt_watt_pct: float = 100.0  # the volt-watt cap, % of rated W
    droop_w: float = 0.0  # the droop's change to active power, W

    @property
    def v(self) -> float:
        return sum(self.phase_v) / 3


@dataclass(frozen=True, slots=True)
class MeterFlow:
    """What a bidirectional meter measures, its forward ("import") direction positive:
    power (W, var) now and its two registers (Wh, only growing)."""

    w: float
    var: float
    import_wh: float  # forward register (SunSpec TotWhImp)
    export_wh: float  # reverse register (TotWhExp)


def meter_flow(state: PlantState, at: MeterAt) -> MeterFlow:
    """The flow a meter wired ``at`` the grid connection or the system's output sees.

    At the grid, forward is what the premises draw from the grid. The system meter has
    the PoTR system on its line side (decision 119), so forward is what PV and battery
    deliver into the premises and reverse what the system draws (a battery charging from
    the house or the grid); its reactive power is the PV inverter's (the battery has none).
    """
    t = state.totals
    if at == "system":
        return MeterFlow(
            state.pv_w + state.battery_w, state.pv_var, t.system_out_wh, t.system_in_wh
        )
    return MeterFlow(state.grid_w, state.grid_var, t.import_wh, t.export_wh)


def noise(seed: int, second: int, channel: int) -> float:
    """Deterministic noise in [-1, 1] for a simulated second and a channel."""
    return random.Random(seed * 1_000_003 + second * 31 + channel).uniform(-1.0, 1.0)


def house_load_w(hour: float) -> float:
    """A house: 350 W base, a morning bump around 7:30 and an evening peak around 19:00."""
    morning = 1200.0 * math.exp(-(((hour - 7.5) / 1.0) ** 2))
    evening = 2200.0 * math.exp(-(((hour - 19.0) / 1.5) ** 2))
    return 350.0 + morning + evening


def curve_value(curve: Sequence[tuple[float, float]], x: float) -> float:
    """Piecewise-linear curve, flat beyond its ends (IEEE 1547 / AS 4777 curve semantics)."""
    if x <= curve[0][0]:
        return curve[0][1]
    for (x0, y0), (x1, y1) in itertools.pairwise(curve):
        if x <= x1:
            return y0 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return curve[-1][1]


def respond(prev: float, target: float, dt_s: float, rsp_s: float) -> float:
    """First-order response from ``prev`` toward ``target`` over ``dt_s`` seconds, 90 %
    of the way after ``rsp_s`` (the open-loop response time; <= 0: at once)."""
    if rsp_s <= 0:
        return target
    return target + (prev - target) * math.pow(10.0, -dt_s / rsp_s)


def _droop_w(
    d: FreqDroop, hz: float, nominal_hz: float, rated_w: float, p_pre: float, available: float
) -> float:
    """The droop's target change to active power (W) at ``hz``: over-frequency lowers
    the output from ``p_pre`` (never below PMin, nor raising it), under-frequency raises
    it up to the available power (IEEE 1547-2018 6.5.2.7 with p_pre the output the other
    controls allow)."""
    over = hz - (nominal_hz + d.db_of_hz)
    if over > 0 and d.k_of > 0:
        floor = min(p_pre, rated_w * d.pmin_pct / 100.0)
        return max(p_pre - rated_w * over / (nominal_hz * d.k_of), floor) - p_pre
    under = (nominal_hz - d.db_uf_hz) - hz
    if under > 0 and d.k_uf > 0:
        return max(min(p_pre + rated_w * under / (nominal_hz * d.k_uf), available) - p_pre, 0.0)
    return 0.0


def _within_va(p: float, q: float, va_max: float | None, q_priority: bool) -> tuple[float, float]:
    """P and Q inside the VA rating: reactive priority cuts P, active priority cuts Q."""
    if va_max is None or q == 0 or math.hypot(p, q) <= va_max:
        return p, q
    if q_priority:
        q = math.copysign(min(abs(q), va_max), q)
        return min(p, math.sqrt(va_max**2 - q**2)), q
    return p, math.copysign(math.sqrt(max(va_max**2 - p**2, 0.0)), q)


def _battery_w(
    cfg: PlantConfig, ctl: BatteryControls, soc: float, want_w: float, dt_s: float
) -> float:
    if cfg.battery_wh <= 0 or not ctl.connected:
        return 0.0
    max_charge = min(cfg.battery_max_charge_w, ctl.max_charge_w or cfg.battery_max_charge_w)
    w = ctl.setpoint_w if ctl.setpoint_w is not None else want_w
    w = max(-max_charge, min(cfg.battery_max_discharge_w, w))
    if dt_s > 0:
        hours = dt_s / 3600.0
        room_wh = (100.0 - soc) / 100.0 * cfg.battery_wh  # may charge this much
        avail_wh = max(soc - ctl.min_reserve_pct, 0.0) / 100.0 * cfg.battery_wh
        w = max(-room_wh / hours, min(avail_wh / hours, w))
    return w


def step(
    cfg: PlantConfig,
    sky: ClearSky,
    prev: PlantState,
    ts: datetime,
    inverter: InverterControls = InverterControls(),
    battery: BatteryControls = BatteryControls(),
    grid: GridCondition = GridCondition(),
) -> PlantState:
    """Advance the plant from ``prev`` to ``ts``; energy accrues at the new powers, and the
    grid-support responses move toward the new grid's targets as their response times
    allow (the grid of ``ts`` holding over the whole step)."""
    dt_s = max((ts - prev.ts).total_seconds(), 0.0)
    second = int(ts.timestamp())
    ghi, elevation = sky.at(ts)
    available = min(cfg.pv_capacity_w * ghi / 1000.0 * cfg.cloud_factor, cfg.pv_capacity_w)
    rise = cfg.midday_rise_pct / 100.0 * ghi / 1000.0
    phase_v = tuple(
        round(
            cfg.nominal_v
            * (1.0 + rise + cfg.voltage_noise_pct / 100.0 * noise(cfg.seed, second, 2 + i)),
            1,
        )
        for i in range(3)
    )
    if grid.v is not None:
        phase_v = (grid.v, grid.v, grid.v)
    v = sum(phase_v) / 3
    hz = (
        round(cfg.nominal_hz + 0.02 * noise(cfg.seed, second, 5), 3) if grid.hz is None else grid.hz
    )
    limit_w = cfg.pv_capacity_w
    if inverter.limit_enabled:
        limit_w = cfg.pv_capacity_w * max(0.0, min(inverter.limit_pct, 100.0)) / 100.0
    volt_watt_pct = 100.0
    if inverter.volt_watt:
        target = curve_value(inverter.volt_watt, v)
        volt_watt_pct = respond(prev.volt_watt_pct, target, dt_s, inverter.volt_watt_rsp_s)
        of_w = available if inverter.volt_watt_of_available else cfg.pv_capacity_w
        limit_w = min(limit_w, of_w * volt_watt_pct / 100.0)
    pv_w = min(available, max(limit_w, 0.0)) if inverter.connected else 0.0
    droop_w = 0.0
    if inverter.connected and inverter.droop is not None and available > 0:
        d = inverter.droop
        target = _droop_w(d, hz, cfg.nominal_hz, cfg.pv_capacity_w, pv_w, available)
        droop_w = respond(prev.droop_w, target, dt_s, d.rsp_s)
        pv_w = min(max(pv_w + droop_w, 0.0), available)
    pv_var = 0.0
    vv = inverter.volt_var
    if inverter.connected and vv is not None and available > 0:
        ref = vv.ref_var
        if ref is None:  # % of the var the VA rating leaves beside P
            ref = math.sqrt(max((inverter.va_max or 0.0) ** 2 - pv_w**2, 0.0))
        target = ref * curve_value(vv.curve, v) / 100.0
        pv_var = respond(prev.pv_var, target, dt_s, vv.rsp_s)
        pv_w, pv_var = _within_va(pv_w, pv_var, inverter.va_max, vv.q_priority)
    if not inverter.connected:
        state = 8
    elif available <= 0.0:
        state = 2
    elif available > pv_w + 0.5:
        state = 5
    else:
        state = 4
    hour = local_hour(ts, cfg.tz)
    load_w = cfg.load_scale * house_load_w(hour) * (1.0 + 0.05 * noise(cfg.seed, second, 1))
    bat_w = _battery_w(cfg, battery, prev.battery_soc_pct, load_w - pv_w, dt_s)
    hours = dt_s / 3600.0
    soc = prev.battery_soc_pct
    if cfg.battery_wh > 0:
        soc = min(100.0, max(0.0, soc - bat_w * hours / cfg.battery_wh * 100.0))
    grid_w = load_w - pv_w - bat_w
    t = prev.totals
    totals = replace(
        t,
        pv_wh=t.pv_wh + pv_w * hours,
        load_wh=t.load_wh + load_w * hours,
        import_wh=t.import_wh + max(grid_w, 0.0) * hours,
        export_wh=t.export_wh + max(-grid_w, 0.0) * hours,
        charge_wh=t.charge_wh + max(-bat_w, 0.0) * hours,
        discharge_wh=t.discharge_wh + max(bat_w, 0.0) * hours,
        hybrid_out_wh=t.hybrid_out_wh + max(pv_w + bat_w, 0.0) * hours,
        hybrid_in_wh=t.hybrid_in_wh + max(-(pv_w + bat_w), 0.0) * hours,
        system_out_wh=t.system_out_wh + max(pv_w + bat_w, 0.0) * hours,
        system_in_wh=t.system_in_wh + max(-(pv_w + bat_w), 0.0) * hours,
    )
    return PlantState(
        ts=ts,
        ghi=ghi,
        sun_elevation=elevation,
        pv_available_w=available,
        pv_w=pv_w,
        pv_var=pv_var,
        pv_state=state,
        load_w=load_w,
        battery_w=bat_w,
        battery_soc_pct=soc,
        grid_w=grid_w,
        grid_var=-pv_var,
        phase_v=(phase_v[0], phase_v[1], phase_v[2]),
        hz=hz,
        cabinet_c=round(25.0 + 20.0 * pv_w / cfg.pv_capacity_w, 1),
        totals=totals,
        volt_watt_pct=volt_watt_pct,
        droop_w=droop_w,
    )


def local_hour(ts: datetime, tz: str) -> float:
    local = ts.astimezone(ZoneInfo(tz))
    return local.hour + local.minute / 60 + local.second / 3600


def initial_state(
    cfg: PlantConfig, sky: ClearSky, ts: datetime, *, soc_pct: float = 50.0
) -> PlantState:
    """The plant at ``ts`` with non-zero counters (a true zero reads as "not implemented")."""
    rng = random.Random(cfg.seed)
    seed_totals = Totals(
        pv_wh=float(rng.randint(1_000_000, 9_000_000)),
        load_wh=float(rng.randint(5_000_000, 9_000_000)),
        import_wh=float(rng.randint(500_000, 5_000_000)),
        export_wh=float(rng.randint(100_000, 3_000_000)),
        charge_wh=float(rng.randint(10_000, 90_000)),
        discharge_wh=float(rng.randint(10_000, 90_000)),
    )
    seed_totals = replace(
        seed_totals,
        hybrid_out_wh=seed_totals.pv_wh + seed_totals.discharge_wh,
        hybrid_in_wh=seed_totals.charge_wh,
        # drawn last, so every other counter keeps the start it had before this meter
        system_out_wh=float(rng.randint(1_000_000, 9_000_000)),
        system_in_wh=float(rng.randint(10_000, 90_000)),
    )
    blank = PlantState(
        ts=ts,
        ghi=0.0,
        sun_elevation=0.0,
        pv_available_w=0.0,
        pv_w=0.0,
        pv_var=0.0,
        pv_state=2,
        load_w=0.0,
        battery_w=0.0,
        battery_soc_pct=soc_pct,
        grid_w=0.0,
        grid_var=0.0,
        phase_v=(cfg.nominal_v,) * 3,
        hz=cfg.nominal_hz,
        cabinet_c=25.0,
        totals=seed_totals,
    )
    return step(cfg, sky, blank, ts)
