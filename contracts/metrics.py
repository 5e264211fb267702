"""The metric catalog: one name, unit and sign convention per quantity, everywhere.

Power is positive when it flows *into the site's AC bus from the device*: PV
``pv_w >= 0``; battery ``battery_w > 0`` discharging; grid meter ``grid_w > 0``
importing from the grid, ``< 0`` exporting. Energy counters are monotonic totals in
Wh, one per direction (``import_wh``/``export_wh``; ``battery_charge_wh`` into the
battery, ``battery_discharge_wh`` out of it), so they carry no sign.
Ids are stable forever (they key the telemetry store): add, never renumber.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class MetricKind(StrEnum):
    GAUGE = "gauge"
    COUNTER = "counter"  # monotonic total; rollups difference it with reset detection
    STATE = "state"  # an enumerated code (SunSpec St, ChaSt, ...)


class Metric(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    name: str
    unit: str
    kind: MetricKind
    description: str


def _m(id_: int, name: str, unit: str, kind: MetricKind, description: str) -> Metric:
    return Metric(id=id_, name=name, unit=unit, kind=kind, description=description)


G, C, S = MetricKind.GAUGE, MetricKind.COUNTER, MetricKind.STATE

CATALOG: tuple[Metric, ...] = (
    # inverter (PV) — SunSpec 101-103 / 111-113
    _m(1, "pv_w", "W", G, "AC active power delivered by the PV inverter (>= 0)"),
    _m(2, "pv_va", "VA", G, "AC apparent power of the inverter"),
    _m(3, "pv_var", "var", G, "AC reactive power of the inverter (+ = over-excited)"),
    _m(4, "pv_pf_pct", "%", G, "inverter power factor, percent"),
    _m(5, "pv_ac_a", "A", G, "inverter AC current, total"),
    _m(6, "pv_l1_v", "V", G, "inverter phase voltage L1-N"),
    _m(7, "pv_l2_v", "V", G, "inverter phase voltage L2-N"),
    _m(8, "pv_l3_v", "V", G, "inverter phase voltage L3-N"),
    _m(9, "pv_hz", "Hz", G, "inverter AC frequency"),
    _m(10, "pv_wh", "Wh", C, "inverter lifetime AC energy (monotonic)"),
    _m(11, "pv_dc_w", "W", G, "inverter DC input power"),
    _m(12, "pv_cabinet_c", "°C", G, "inverter cabinet temperature"),
    _m(
        13,
        "pv_state_code",
        "",
        S,
        "SunSpec 101-113 operating state St (1 OFF ... 8 STANDBY; 701 InvSt + 1)",
    ),
    _m(14, "pv_limit_pct", "%", G, "active power limit WMaxLimPct in force"),
    _m(15, "pv_connected_code", "", S, "123.Conn: 1 connected, 0 disconnected"),
    _m(16, "pv_rating_w", "W", G, "nameplate continuous power rating WRtg"),
    # grid meter — SunSpec 201-204 / 211-214, sign normalised per profile
    _m(40, "grid_w", "W", G, "site grid power, > 0 importing, < 0 exporting"),
    _m(41, "grid_l1_w", "W", G, "grid power L1, > 0 importing"),
    _m(42, "grid_l2_w", "W", G, "grid power L2, > 0 importing"),
    _m(43, "grid_l3_w", "W", G, "grid power L3, > 0 importing"),
    _m(44, "grid_va", "VA", G, "grid apparent power"),
    _m(45, "grid_var", "var", G, "grid reactive power"),
    _m(46, "grid_pf_pct", "%", G, "grid power factor, percent"),
    _m(47, "grid_a", "A", G, "grid current, total"),
    _m(48, "grid_l1_v", "V", G, "grid phase voltage L1-N"),
    _m(49, "grid_l2_v", "V", G, "grid phase voltage L2-N"),
    _m(50, "grid_l3_v", "V", G, "grid phase voltage L3-N"),
    _m(51, "grid_hz", "Hz", G, "grid frequency"),
    _m(52, "import_wh", "Wh", C, "energy imported from the grid (monotonic)"),
    _m(53, "export_wh", "Wh", C, "energy exported to the grid (monotonic)"),
    # battery — SunSpec 802 / 124 / 713, energy counters from 701
    _m(80, "battery_w", "W", G, "battery power, > 0 discharging, < 0 charging"),
    _m(81, "battery_soc_pct", "%", G, "battery state of charge"),
    _m(82, "battery_soh_pct", "%", G, "battery state of health"),
    _m(83, "battery_v", "V", G, "battery DC voltage"),
    _m(84, "battery_a", "A", G, "battery DC current, > 0 discharging"),
    _m(85, "battery_charge_state_code", "", S, "ChaSt: 1 OFF ... 4 CHARGING, 5 FULL"),
    _m(
        86,
        "battery_charge_wh",
        "Wh",
        C,
        "energy into the battery from the AC bus (charging; SunSpec 701 TotWhAbs), monotonic",
    ),
    _m(
        87,
        "battery_discharge_wh",
        "Wh",
        C,
        "energy from the battery into the AC bus (discharging; SunSpec 701 TotWhInj), monotonic",
    ),
    # isolator (vendor map, later issues)
    _m(120, "isolator_state_code", "", S, "isolator: 0 open, 1 closed, 2 tripped"),
    _m(121, "isolator_trip_count", "", C, "isolator lifetime trip count"),
)

BY_NAME: dict[str, Metric] = {m.name: m for m in CATALOG}
BY_ID: dict[int, Metric] = {m.id: m for m in CATALOG}


def metric(name: str) -> Metric:
    """Look a metric up by name; ``KeyError`` names the unknown metric."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown metric {name!r}") from None


def _check_catalog() -> None:
    if len(BY_NAME) != len(CATALOG) or len(BY_ID) != len(CATALOG):
        raise RuntimeError("metric catalog has duplicate names or ids")


_check_catalog()
