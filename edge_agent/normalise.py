"""Device points → catalog metrics (contracts.metrics), as data plus pure functions.

Units are SI as the catalog names them. Sign: ``grid_*_w`` > 0 means importing from the
grid. A device with a profile (``device_profiles``) is read through the profile's metric
mappings, each with its own sign and scale (a meter whose W is positive when exporting
maps it with ``sign: -1``); an auto-discovered SunSpec device through :data:`POINT_MAP`,
its meter's sign given by ``meter_import_sign``. PV and inverter quantities keep
SunSpec's sign.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from contracts.messages import Quality
from contracts.metrics import BY_NAME
from device_profiles.schema import DeviceProfile, PointRef
from device_profiles.sunspec_codec import DecodedModel

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


@dataclass(frozen=True, slots=True)
class MetricSource:
    """Where one catalog metric comes from: SunSpec ``model``.``point``, or the vendor
    register ``point`` when ``model`` is None; the value is multiplied by ``factor``, or
    (an enumeration) translated by ``codes`` (device value → catalog code)."""

    metric: str
    model: int | None
    point: str
    factor: float = 1.0
    codes: Mapping[int, int] | None = None

    @property
    def ref(self) -> str:
        return f"{'vendor' if self.model is None else self.model}.{self.point}"


def sunspec_sources(model_ids: Iterable[int], *, meter_import_sign: int = 1) -> list[MetricSource]:
    """:data:`POINT_MAP` for the models a device has (auto-discovered devices)."""
    sources: list[MetricSource] = []
    for model_id in dict.fromkeys(model_ids):
        for point, metric in POINT_MAP.get(model_id, {}).items():
            factor = float(meter_import_sign) if metric in METER_SIGNED else 1.0
            sources.append(MetricSource(metric, model_id, point, factor))
    return sources


def profile_sources(profile: DeviceProfile) -> list[MetricSource]:
    """A profile's metric mappings (sign times scale as one factor)."""
    sources = []
    for mapping in profile.metrics:
        ref = PointRef.parse(mapping.source)
        sources.append(
            MetricSource(
                mapping.metric, ref.model, ref.path, mapping.sign * mapping.scale, mapping.codes
            )
        )
    return sources


@dataclass(slots=True)
class Normalised:
    values: dict[str, float | None] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)
    quality: Quality = Quality.GOOD

    def flag(self, flag: str) -> None:
        self.flags.append(flag)
        self.quality = Quality.SUSPECT


def normalise_sources(
    sources: Iterable[MetricSource],
    models: Mapping[int, DecodedModel],
    vendor: Mapping[str, int] | None = None,
    *,
    implemented: Collection[str] = (),
) -> Normalised:
    """Catalog values of one device (``None`` = not available).

    A value whose scale factor is not implemented is ``None`` and marks the reading
    ``suspect`` with flag ``sf_missing:<model>.<point>``. A metric in ``implemented``
    (it had values before) that reads "not implemented" now (0x8000, 0xFFFF, NaN …) is
    ``None``, flagged ``not_implemented:<model>.<point>``, and the reading ``suspect``;
    a point a device never implements is just ``None``. An enumeration value its
    source's ``codes`` lack (outside the standard's symbols) is ``None``, flagged
    ``unknown_code:<model>.<point>``, and the reading ``suspect``.
    """
    out = Normalised()
    vendor = vendor or {}
    for src in sources:
        value: object
        if src.model is None:
            if src.point not in vendor:
                continue
            value = vendor[src.point]
        else:
            decoded = models.get(src.model)
            if decoded is None or src.point not in decoded.scaled:
                continue
            value = decoded.scaled[src.point]
            if src.point in decoded.sf_missing:
                out.flag(f"sf_missing:{src.ref}")
            elif value is None and src.metric in implemented:
                out.flag(f"not_implemented:{src.ref}")
        number = float(value) if isinstance(value, int | float) else None
        if number is not None and src.codes is not None:
            number = _translate(number, src.codes)
            if number is None:
                out.flag(f"unknown_code:{src.ref}")
        elif number is not None and src.factor != 1.0:
            number = number * src.factor + 0.0  # + 0.0 turns -0.0 into 0.0
        out.values[src.metric] = number
    return out


def _translate(value: float, codes: Mapping[int, int]) -> float | None:
    """The catalog code of enumeration value ``value``; None when the table lacks it."""
    code = codes.get(int(value)) if value.is_integer() else None
    return None if code is None else float(code)


def normalise(models: Mapping[int, DecodedModel], *, meter_import_sign: int = 1) -> Normalised:
    """Catalog values of an auto-discovered SunSpec device (see :func:`normalise_sources`)."""
    sources = sunspec_sources(models, meter_import_sign=meter_import_sign)
    return normalise_sources(sources, models)


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
