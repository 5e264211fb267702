"""SunSpec points → catalog metrics (contracts.metrics), as data plus one pure function.

Units are SI as the catalog names them. Sign: ``grid_*_w`` > 0 means importing from the
grid; a meter whose SunSpec ``W`` is positive when exporting is configured with
``meter_import_sign=-1``. PV and inverter quantities keep SunSpec's sign.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from contracts.messages import Quality
from contracts.metrics import BY_NAME
from edge_agent.sunspec import DecodedModel

_INVERTER = {
    "W": "pv_w",
    "VA": "pv_va",
    "VAr": "pv_var",
    "PF": "pv_pf_pct",
    "A": "pv_ac_a",
    "PhVphA": "pv_l1_v",
    "PhVphB": "pv_l2_v",
    "PhVphC": "pv_l3_v",
    "Hz": "pv_hz",
    "WH": "pv_wh",
    "DCW": "pv_dc_w",
    "TmpCab": "pv_cabinet_c",
    "St": "pv_state_code",
}
_METER = {
    "W": "grid_w",
    "WphA": "grid_l1_w",
    "WphB": "grid_l2_w",
    "WphC": "grid_l3_w",
    "VA": "grid_va",
    "VAR": "grid_var",
    "PF": "grid_pf_pct",
    "A": "grid_a",
    "PhVphA": "grid_l1_v",
    "PhVphB": "grid_l2_v",
    "PhVphC": "grid_l3_v",
    "Hz": "grid_hz",
    "TotWhImp": "import_wh",
    "TotWhExp": "export_wh",
}

#: model id → {SunSpec point: catalog metric}. Float models share the int+SF names.
POINT_MAP: dict[int, dict[str, str]] = {
    **{mid: _INVERTER for mid in (101, 102, 103, 111, 112, 113)},
    120: {"WRtg": "pv_rating_w"},
    123: {"WMaxLimPct": "pv_limit_pct", "Conn": "pv_connected_code"},
    **{mid: _METER for mid in (201, 202, 203, 204, 211, 212, 213, 214)},
}

#: Metrics whose sign depends on the meter's convention.
METER_SIGNED: frozenset[str] = frozenset({"grid_w", "grid_l1_w", "grid_l2_w", "grid_l3_w"})

#: Nameplate points reported in ``birth`` (model 120), by SunSpec name.
NAMEPLATE_POINTS = ("WRtg", "VARtg", "ARtg", "WHRtg")


def _check_map() -> None:
    for points in POINT_MAP.values():
        unknown = set(points.values()) - BY_NAME.keys()
        if unknown:
            raise RuntimeError(f"POINT_MAP names metrics not in the catalog: {sorted(unknown)}")


_check_map()


@dataclass(slots=True)
class Normalised:
    values: dict[str, float | None] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)
    quality: Quality = Quality.GOOD


def normalise(models: Mapping[int, DecodedModel], *, meter_import_sign: int = 1) -> Normalised:
    """Catalog values of one device from its decoded models (``None`` = not available).

    A value whose scale factor is not implemented is ``None`` and marks the reading
    ``suspect`` with flag ``sf_missing:<model>.<point>``.
    """
    out = Normalised()
    for model_id, decoded in models.items():
        mapping = POINT_MAP.get(model_id)
        if mapping is None:
            continue
        for point, metric_name in mapping.items():
            if point not in decoded.scaled:
                continue
            value = decoded.scaled[point]
            if point in decoded.sf_missing:
                out.flags.append(f"sf_missing:{model_id}.{point}")
                out.quality = Quality.SUSPECT
            if isinstance(value, str):
                value = None
            number = None if value is None else float(value)
            if number is not None and metric_name in METER_SIGNED:
                number = number * meter_import_sign + 0.0  # + 0.0 turns -0.0 into 0.0
            out.values[metric_name] = number
    return out


def nameplate(models: Mapping[int, DecodedModel]) -> dict[str, float | None]:
    """Model 120 ratings for ``birth`` (SI units, ``None`` when not implemented)."""
    decoded = models.get(120)
    if decoded is None:
        return {}
    result: dict[str, float | None] = {}
    for point in NAMEPLATE_POINTS:
        value = decoded.scaled.get(point)
        result[point] = None if value is None or isinstance(value, str) else float(value)
    return result
