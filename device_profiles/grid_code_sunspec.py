"""A grid-code profile as SunSpec points and as one device's config settings (pure).

The mapping is data (``grid_codes/_sunspec.yaml``, grid-codes.md §4): per function
(volt-var, volt-watt, frequency droop, trips, ride-through, momentary cessation, enter
service, export limit) the points of the 7xx DER models and of the legacy 1xx models, each
fed by a *quantity* of the profile. :func:`device_settings` picks per function the family
the device has (7xx preferred, else 1xx), and names each point by the device profile's
setting that governs it — the names and values
:func:`device_profiles.setpoints.validate_config_devices` checks. A curve is a list (one
value per point, as the config path writes 705 curves: the agent writes the staging curve
and adopts it with ``AdptCrvReq``); request points (``AdptCrvReq``/``AdptCtlReq``) are
never settings.

Units of the quantities: voltages in % of nominal (7xx ``VNomPct``; 1xx ``% VRef`` with
VRef at nominal), reactive power in % of rated VA (705 ``DeptRef`` 3) or, for model 126
which has no VA reference, in % of VArMax (``DeptRef`` 2); frequency droop ``k`` in % of
nominal frequency in the profile and per unit in 711 (``KOf`` 0.05 = 5 %).
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from device_profiles.errors import key_path
from device_profiles.grid_code import GRID_CODE_DIR, KEYS, GridCodeError, GridCodeProfile
from device_profiles.schema import DeviceProfile, PointRef
from device_profiles.sunspec_codec import UnknownModelError, model_def

__all__ = [
    "DERIVED",
    "SUNSPEC_MAP_FILE",
    "Family",
    "FunctionMap",
    "GridCodeSettings",
    "builtin_sunspec_map",
    "device_settings",
    "expand_point",
    "load_sunspec_map",
    "quantities",
]

SUNSPEC_MAP_FILE = GRID_CODE_DIR / "_sunspec.yaml"
Quantity = float | tuple[float, ...]
FamilyName = Literal["7xx", "1xx"]

#: Quantities computed from a profile (and the device's nameplate), beyond its own keys.
DERIVED = frozenset(
    {
        "freq_droop.k_of_pu",
        "freq_droop.k_uf_pu",
        "freq_watt.hz",
        "freq_watt.w",
        "freq_watt.n",
        "volt_var.y_pct_varmax",
        "enter_service.ramp_pct_per_s",
        "export.limit_pct",
        "export.limit_enabled",
    }
)
#: Legacy (1xx) curves number their points 1..20.
LEGACY_POINTS = 20


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Family(_Strict):
    models: list[int] = Field(min_length=1)
    points: dict[str, str | float] = Field(default_factory=dict)
    optional: dict[str, str | float] = Field(default_factory=dict)


class FunctionMap(_Strict):
    needs: list[str]
    family_7xx: Family | None = Field(default=None, alias="7xx")
    family_1xx: Family | None = Field(default=None, alias="1xx")

    def family(self, name: FamilyName) -> Family | None:
        return self.family_7xx if name == "7xx" else self.family_1xx


def expand_point(ref: str, n: int) -> str:
    """``126.curve.V{n}`` → ``126.curve.V3``; other references unchanged."""
    return ref.replace("{n}", str(n))


def _known_quantity(name: str) -> bool:
    if name in KEYS or name in DERIVED:
        return True
    base, _, axis = name.rpartition(".")
    return axis in ("x", "y", "n") and KEYS.get(base) is not None and KEYS[base].kind == "curve"


def _map_problems(maps: Mapping[str, FunctionMap]) -> Iterator[tuple[str, str]]:
    for fname, fmap in maps.items():
        for i, need in enumerate(fmap.needs):
            if not _known_quantity(need):
                yield f"{fname}.needs[{i}]", f"unknown quantity {need!r}"
        for family_name in ("7xx", "1xx"):
            family = fmap.family(family_name)
            if family is None:
                continue
            for part in ("points", "optional"):
                for ref, quantity in getattr(family, part).items():
                    where = f"{fname}.{family_name}.{part}.{ref}"
                    if isinstance(quantity, str) and not _known_quantity(quantity):
                        yield where, f"unknown quantity {quantity!r}"
                    yield from _point_problems(where, ref, family.models)


def _point_problems(where: str, ref: str, models: list[int]) -> Iterator[tuple[str, str]]:
    refs = [expand_point(ref, 1), expand_point(ref, LEGACY_POINTS)] if "{n}" in ref else [ref]
    for one in refs:
        try:
            parsed = PointRef.parse(one)
        except ValueError as exc:
            yield where, str(exc)
            return
        if parsed.model is None:
            yield where, f"{one}: a grid-code point is a SunSpec point"
            return
        try:
            pdef = model_def(parsed.model).find(parsed.path)
        except UnknownModelError:
            yield where, f"{one}: no SunSpec model {parsed.model} in pysunspec2"
            return
        if parsed.model not in models:
            yield where, f"{one}: model {parsed.model} is not one of the family's {models}"
        if pdef is None:
            yield where, f"{one}: model {parsed.model} has no point {parsed.path!r}"
        elif not pdef.writable:
            yield where, f"{one}: point is read-only in SunSpec model {parsed.model} (limit: RW)"


def load_sunspec_map(path: Path | str = SUNSPEC_MAP_FILE) -> dict[str, FunctionMap]:
    """The function → SunSpec point map, checked against pysunspec2's definitions:
    :class:`GridCodeError` names the file, the key and the reason (an unknown model or
    point, a read-only point, an unknown quantity)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise GridCodeError(str(path), "", f"cannot read: {exc}") from None
    if not isinstance(data, dict):
        raise GridCodeError(str(path), "", "the map is a mapping of function: points")
    maps: dict[str, FunctionMap] = {}
    for fname, raw in data.items():
        try:
            maps[str(fname)] = FunctionMap.model_validate(raw)
        except ValidationError as exc:
            err = exc.errors()[0]
            raise GridCodeError(str(path), key_path((fname, *err["loc"])), err["msg"]) from None
    for key, reason in _map_problems(maps):
        raise GridCodeError(str(path), key, reason)
    return maps


@functools.cache
def builtin_sunspec_map() -> dict[str, FunctionMap]:
    return load_sunspec_map(SUNSPEC_MAP_FILE)


# ----- quantities -------------------------------------------------------------------------
def _r(value: float) -> float:
    """Rounded to 6 significant decimals: no binary noise (220/230*100) in a config."""
    return round(value, 6)


def quantities(
    profile: GridCodeProfile,
    nameplate: Mapping[str, float] | None = None,
    *,
    phases: int = 1,
) -> dict[str, Quantity]:
    """Every quantity of a profile in the units the SunSpec points take.

    ``nameplate`` (``w_rtg`` W, ``va_rtg`` VA, ``var_rtg`` var) feeds the device-dependent
    quantities (model 126's % VArMax, the export limit as % of WMax); ``phases`` turns an
    export limit given per phase into the site's."""
    out: dict[str, Quantity] = {}
    for key in KEYS:
        value = profile.canonical(key)
        if value is None:
            continue
        if isinstance(value, tuple):
            out[f"{key}.x"] = tuple(_r(x) for x, _ in value)
            out[f"{key}.y"] = tuple(_r(y) for _, y in value)
            out[f"{key}.n"] = float(len(value))
        else:
            out[key] = _r(value)
    nom = profile.nominal_hz
    fr = {k.removeprefix("freq_response."): v for k, v in out.items() if k.startswith("freq_resp")}
    if "freq_droop.db_of_hz" not in out and {"f_ulco_hz", "f_pmin_hz"} <= fr.keys():
        # AS/NZS 4777.2: droop from fULCO down to minimum at fPmin (and up from fLLCO to
        # full discharge at fPmax): deadband = edge - nominal, k = span / nominal.
        out["freq_droop.db_of_hz"] = _r(_f(fr["f_ulco_hz"]) - nom)
        out["freq_droop.k_of_pct"] = _r((_f(fr["f_pmin_hz"]) - _f(fr["f_ulco_hz"])) / nom * 100)
        if {"f_llco_hz", "f_pmax_hz"} <= fr.keys():
            out["freq_droop.db_uf_hz"] = _r(nom - _f(fr["f_llco_hz"]))
            out["freq_droop.k_uf_pct"] = _r((_f(fr["f_llco_hz"]) - _f(fr["f_pmax_hz"])) / nom * 100)
    for side in ("of", "uf"):
        k = out.get(f"freq_droop.k_{side}_pct")
        if k is not None:
            out[f"freq_droop.k_{side}_pu"] = _r(_f(k) / 100)
    db, k = out.get("freq_droop.db_of_hz"), out.get("freq_droop.k_of_pct")
    if db is not None and k is not None:
        start = nom + _f(db)
        out["freq_watt.hz"] = (_r(start), _r(start + _f(k) / 100 * nom))
        out["freq_watt.w"] = (100.0, 0.0)
        out["freq_watt.n"] = 2.0
    ramp = out.get("enter_service.ramp_s")
    if ramp is not None and _f(ramp) > 0:
        out["enter_service.ramp_pct_per_s"] = _r(100 / _f(ramp))
    plate = dict(nameplate or {})
    q = out.get("volt_var.curve.y")
    va, var = plate.get("va_rtg"), plate.get("var_rtg")
    if isinstance(q, tuple) and va and var:
        out["volt_var.y_pct_varmax"] = tuple(_r(y * va / var) for y in q)
    limit = out.get("export.limit_w")
    w_rtg = plate.get("w_rtg")
    if limit is not None and w_rtg:
        per_phase = profile.values["export.limit_w"].unit == "W/phase"
        total = _f(limit) * (phases if per_phase else 1)
        pct = min(100.0, total / w_rtg * 100)
        out["export.limit_pct"] = _r(pct)
        out["export.limit_enabled"] = 1.0 if pct < 100 else 0.0
    return out


def _f(value: Quantity) -> float:
    assert isinstance(value, float | int)
    return float(value)


# ----- one device's settings --------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class GridCodeSettings:
    """A profile as one device's config settings.

    ``settings`` maps the device profile's setting names to values (a list for a curve);
    ``points`` the same names to their SunSpec points; ``functions`` each mapped function
    to the family written (``"7xx"`` or ``"1xx"``); ``unmapped`` each function not
    written to the reason (the device lacks the models or settings, the profile the
    values, or the value is registration data)."""

    grid_code: str
    device_profile: str
    settings: dict[str, float | list[float]] = field(default_factory=dict)
    points: dict[str, str] = field(default_factory=dict)
    functions: dict[str, str] = field(default_factory=dict)
    unmapped: dict[str, str] = field(default_factory=dict)


def _family_for(fmap: FunctionMap, device: DeviceProfile) -> FamilyName | None:
    for name in ("7xx", "1xx"):
        family = fmap.family(name)
        if family is not None and family.models[0] in device.models:
            return name
    return None


def _value(spec: str | float, qty: Mapping[str, Quantity]) -> Quantity | None:
    if isinstance(spec, int | float):
        return float(spec)
    return qty.get(spec)


def _emit(
    device: DeviceProfile, ref: str, value: Quantity
) -> list[tuple[str, str, float | list[float]]] | str:
    """``(setting, point, value)`` for one mapped point, or the reason it cannot be."""
    if "{n}" in ref:
        values = value if isinstance(value, tuple) else (value,)
        out: list[tuple[str, str, float | list[float]]] = []
        for i, item in enumerate(values, start=1):
            point = expand_point(ref, i)
            setting = device.setting_for(point)
            if setting is None:
                return f"{device.name} has no setting for {point}"
            out.append((setting.name, point, item))
        return out
    setting = device.setting_for(ref)
    if setting is None:
        return f"{device.name} has no setting for {ref}"
    shown: float | list[float] = list(value) if isinstance(value, tuple) else value
    return [(setting.name, ref, shown)]


def device_settings(
    grid_code: GridCodeProfile,
    device: DeviceProfile,
    *,
    nameplate: Mapping[str, float] | None = None,
    phases: int = 1,
    functions: Collection[str] | None = None,
    sunspec_map: Mapping[str, FunctionMap] | None = None,
) -> GridCodeSettings:
    """The config settings of one device that put ``grid_code`` into effect.

    Per function: the 7xx points when the device has the function's 7xx model, else the
    1xx points, else the function is unmapped. Every required point needs a setting of
    the device profile governing it, else the whole function is left out (no half-set
    curve, no mode enabled on a curve that was not written). ``nameplate`` overrides the
    device profile's (``w_rtg``, ``va_rtg``, ``var_rtg``); ``functions`` restricts the
    functions mapped (default: all). Registration data (an export limit enforced by a
    certified anti-export device) is never a setting."""
    maps = sunspec_map if sunspec_map is not None else builtin_sunspec_map()
    plate = dict(device.nameplate) | dict(nameplate or {})
    qty = quantities(grid_code, plate, phases=phases)
    result = GridCodeSettings(grid_code.id, device.name)
    for fname, fmap in maps.items():
        if functions is not None and fname not in functions:
            continue
        if fname == "export_limit" and grid_code.registration_only:
            if "export.limit_w" in grid_code.values:
                result.unmapped[fname] = (
                    "registration data: the certified anti-export device enforces it"
                )
            continue
        if not any(q in qty for q in _referenced(fmap)):
            continue  # the profile does not address this function at all
        missing = [need for need in fmap.needs if need not in qty]
        if missing:
            result.unmapped[fname] = f"the profile gives no {', '.join(missing)}"
            continue
        family_name = _family_for(fmap, device)
        family = fmap.family(family_name) if family_name else None
        if family is None or family_name is None:
            models = [f.models[0] for f in (fmap.family_7xx, fmap.family_1xx) if f]
            result.unmapped[fname] = f"{device.name} has none of models {models}"
            continue
        rows: list[tuple[str, str, float | list[float]]] = []
        reason = ""
        for ref, spec in family.points.items():
            value = _value(spec, qty)
            if value is None:
                reason = f"the profile gives no {spec} (for {ref})"
                break
            emitted = _emit(device, ref, value)
            if isinstance(emitted, str):
                reason = emitted
                break
            rows.extend(emitted)
        if reason:
            result.unmapped[fname] = reason
            continue
        for ref, spec in family.optional.items():
            value = _value(spec, qty)
            if value is None:
                continue
            emitted = _emit(device, ref, value)
            if not isinstance(emitted, str):
                rows.extend(emitted)
        if not rows:
            result.unmapped[fname] = f"{device.name} has no setting for any of its points"
            continue
        for name, point, setting_value in rows:
            result.settings[name] = setting_value
            result.points[name] = point
        result.functions[fname] = family_name
    for key in ("volt_watt.storage_charge_curve", "sustained_ov.v"):
        if key in grid_code.values:
            result.unmapped[key] = "no SunSpec point in grid-codes.md §4"
    return result


def _referenced(fmap: FunctionMap) -> set[str]:
    """Every quantity a function's map names (its needs and its points' sources)."""
    names = set(fmap.needs)
    for family in (fmap.family_7xx, fmap.family_1xx):
        if family is not None:
            for spec in (*family.points.values(), *family.optional.values()):
                if isinstance(spec, str):
                    names.add(spec)
    return names
