"""Grid-code profiles: the settings a region's network code requires, as data.

A profile (``device_profiles/grid_codes/<id>.yaml``) holds values by *key* (a function
and a parameter: ``volt_var.curve``, ``trip.lv``, ``enter_service.hz_hi`` …). Every value
carries its **provenance**: the public source and clause it was copied from (as named in
``shared/design/grid-codes.md``) and a confidence — ``verified`` (checked against the named
public source), ``draft`` (only in a draft-era public implementation) or ``unverified``.
A profile holding any value that is not verified is marked (:attr:`GridCodeProfile.unverified`).

Profiles inherit (``extends: <id>``) and override whole keys. Validation refuses, naming
the file, the key and the limit: an unknown key, a unit the key does not take, a value
outside the generic bounds of its key or outside the range its standard allows
(``_standards.yaml``).

Units and signs: voltages in ``V``, ``pu`` or ``%Vnom`` (converted with the profile's
nominal voltage); reactive power in ``%VA`` of rated VA, + = injecting (over-excited),
- = absorbing; active power in ``%P`` of rated power; frequency in ``Hz``; times in ``s``.

A site's self-consumption mode (Spain's *sin excedentes*) is **registration data**
(:class:`Registration`), never a setting: :func:`rollout_refusal` refuses any change of it
by a rollout.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from contracts.messages import ProfileRef
from contracts.topics import Region as Region_
from device_profiles.errors import DataFileError, key_path

__all__ = [
    "GRID_CODE_DIR",
    "KEYS",
    "Confidence",
    "GridCodeError",
    "GridCodeProfile",
    "KeySpec",
    "Provenance",
    "Registration",
    "ResolvedValue",
    "ValueDiff",
    "builtin_grid_code",
    "builtin_grid_codes",
    "diff_grid_codes",
    "load_grid_codes",
    "rollout_refusal",
]

GRID_CODE_DIR = Path(__file__).parent / "grid_codes"
STANDARDS_FILE = "_standards.yaml"

Confidence = Literal["verified", "draft", "unverified"]
#: The contract's regions (brokers): a New Zealand profile would be region "au" with its
#: own standard; grid-codes.md gives no NZ value, so none is shipped.
Region = Literal["au", "us", "es"]
Number = float
Curve = list[tuple[float, float]]


class GridCodeError(DataFileError):
    """A grid-code profile that must not load: ``file``, ``key`` and ``reason``."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ----- the key catalog: what a profile may say, in which units ----------------------------
Quantity = Literal["voltage", "frequency", "time", "pct_va", "pct_p", "pct", "power", "flag"]
_UNITS: dict[Quantity, tuple[str, ...]] = {
    "voltage": ("V", "pu", "%Vnom"),
    "frequency": ("Hz",),
    "time": ("s",),
    "pct_va": ("%VA",),
    "pct_p": ("%P",),
    "pct": ("%",),
    "power": ("W", "W/phase"),
    "flag": ("",),
}


@dataclass(frozen=True, slots=True)
class KeySpec:
    """A key of the catalog: scalar (``y`` only) or curve (``x``, ``y`` pairs), the
    quantity of each axis and generic bounds in canonical units (``%Vnom`` for voltage),
    which hold whatever the standard."""

    kind: Literal["scalar", "curve"]
    y: Quantity
    y_bounds: tuple[float, float]
    x: Quantity | None = None
    x_bounds: tuple[float, float] | None = None
    max_points: int = 10
    description: str = ""


def _curve(
    x: Quantity, xb: tuple[float, float], y: Quantity, yb: tuple[float, float], text: str
) -> KeySpec:
    return KeySpec("curve", y, yb, x, xb, description=text)


def _scalar(y: Quantity, yb: tuple[float, float], text: str) -> KeySpec:
    return KeySpec("scalar", y, yb, description=text)


_FLAG = _scalar("flag", (0, 1), "0 off, 1 on")
_HZ = (40.0, 70.0)
_T = (0.0, 3600.0)
KEYS: dict[str, KeySpec] = {
    "volt_var.enabled": _FLAG,
    "volt_var.curve": _curve(
        "voltage", (50, 150), "pct_va", (-100, 100), "volt-var: (V, Q % rated VA), + injecting"
    ),
    "volt_var.v_ref": _scalar("voltage", (80, 120), "volt-var reference voltage"),
    "volt_var.response_time_s": _scalar("time", (0, 90), "volt-var open-loop response time"),
    "volt_watt.enabled": _FLAG,
    "volt_watt.curve": _curve(
        "voltage", (50, 150), "pct_p", (0, 100), "volt-watt, generating: (V, P % rated P)"
    ),
    "volt_watt.storage_charge_curve": _curve(
        "voltage", (50, 150), "pct_p", (0, 100), "volt-watt, storage charging: (V, Pcharge %)"
    ),
    "volt_watt.response_time_s": _scalar("time", (0, 90), "volt-watt open-loop response time"),
    "freq_response.f_pmax_hz": _scalar("frequency", _HZ, "storage at full discharge"),
    "freq_response.f_stop_ch_hz": _scalar("frequency", _HZ, "storage charging reaches 0"),
    "freq_response.f_llco_hz": _scalar("frequency", _HZ, "low edge of the deadband"),
    "freq_response.f_ulco_hz": _scalar("frequency", _HZ, "high edge; over-frequency droop starts"),
    "freq_response.f_transition_hz": _scalar("frequency", _HZ, "storage output 0, then charges"),
    "freq_response.f_pmin_hz": _scalar("frequency", _HZ, "generation at minimum"),
    "freq_droop.enabled": _FLAG,
    "freq_droop.db_of_hz": _scalar("frequency", (0, 1), "over-frequency deadband"),
    "freq_droop.db_uf_hz": _scalar("frequency", (0, 1), "under-frequency deadband"),
    "freq_droop.k_of_pct": _scalar("pct", (1, 20), "over-frequency droop, % of nominal Hz"),
    "freq_droop.k_uf_pct": _scalar("pct", (1, 20), "under-frequency droop, % of nominal Hz"),
    "freq_droop.response_time_s": _scalar("time", (0, 90), "frequency-droop response time"),
    "freq_droop.p_min_pct": _scalar("pct_p", (0, 100), "minimum active power of the droop"),
    "trip.lv": _curve("voltage", (0, 100), "time", _T, "under-voltage must-trip (V, clear s)"),
    "trip.hv": _curve("voltage", (100, 150), "time", _T, "over-voltage must-trip (V, clear s)"),
    "trip.lf": _curve("frequency", _HZ, "time", _T, "under-frequency must-trip (Hz, clear s)"),
    "trip.hf": _curve("frequency", _HZ, "time", _T, "over-frequency must-trip (Hz, clear s)"),
    "ride_through.lv": _curve("voltage", (0, 100), "time", _T, "mandatory operation below V, s"),
    "ride_through.hv": _curve("voltage", (100, 150), "time", _T, "ride-through above V, s"),
    "momentary_cessation.lv": _curve("voltage", (0, 100), "time", _T, "cease below V, for s"),
    "momentary_cessation.hv": _curve("voltage", (100, 150), "time", _T, "cease above V, for s"),
    "sustained_ov.v": _scalar("voltage", (100, 120), "10-minute average over-voltage limit"),
    "enter_service.enabled": _FLAG,
    "enter_service.v_lo": _scalar("voltage", (50, 100), "lowest voltage to enter service"),
    "enter_service.v_hi": _scalar("voltage", (100, 150), "highest voltage to enter service"),
    "enter_service.hz_lo": _scalar("frequency", _HZ, "lowest frequency to enter service"),
    "enter_service.hz_hi": _scalar("frequency", _HZ, "highest frequency to enter service"),
    "enter_service.delay_s": _scalar("time", _T, "delay before entering service"),
    "enter_service.ramp_s": _scalar("time", _T, "ramp to full power after entering service"),
    "export.limit_w": _scalar("power", (0, 1e7), "export limit at the connection point"),
}
_SCALE_QUANTITIES = frozenset({"voltage"})


# ----- provenance and values --------------------------------------------------------------
class Provenance(_Strict):
    """Where a value comes from: ``source`` (a public document) and ``clause`` (the table,
    section or constant in it), as grid-codes.md names them, and the confidence."""

    source: str = Field(min_length=3)
    clause: str = Field(min_length=1)
    confidence: Confidence


class _ValueIn(_Strict):
    """A value as written: inline provenance, or ``ref`` to a named one (optionally
    with its own ``confidence`` or ``clause``)."""

    value: float | list[tuple[float, float]]
    unit: str | tuple[str, str] = ""
    ref: str | None = None
    source: str | None = None
    clause: str | None = None
    confidence: Confidence | None = None
    note: str = ""


@dataclass(frozen=True, slots=True)
class ResolvedValue:
    """A checked value with its provenance; ``file`` is where it was defined."""

    key: str
    value: float | tuple[tuple[float, float], ...]
    unit: str | tuple[str, str]
    provenance: Provenance
    note: str
    file: str

    @property
    def verified(self) -> bool:
        return self.provenance.confidence == "verified"

    def shown(self) -> str:
        """The value with its unit(s), as the CLI prints it."""
        if isinstance(self.value, tuple):
            xu, yu = self.unit if isinstance(self.unit, tuple) else (self.unit, "")
            pts = ", ".join(f"{_g(x)}{_u(xu)}/{_g(y)}{_u(yu)}" for x, y in self.value)
            return f"[{pts}]"
        unit = self.unit if isinstance(self.unit, str) else self.unit[1]
        return f"{_g(self.value)}{_u(unit)}"


def _g(v: float) -> str:
    return f"{v:g}"


def _u(unit: str) -> str:
    if not unit:
        return ""
    return unit if unit.startswith("%") else f" {unit}"


class Registration(_Strict):
    """Data of the site's registration with its network operator, not a setting: a
    rollout can never change it (:func:`rollout_refusal`)."""

    self_consumption_mode: Literal["sin_excedentes", "con_excedentes"] | None = None
    anti_export_device_required: bool = False
    anti_export_certification: str = ""
    provenance: Provenance | None = None

    @model_validator(mode="after")
    def _sin_needs_device(self) -> Registration:
        if self.self_consumption_mode == "sin_excedentes" and not self.anti_export_device_required:
            raise ValueError("sin excedentes needs a certified anti-export device")
        return self


class _ProfileIn(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9.-]*$", max_length=64)
    title: str
    #: the content version of this file: raise it when a value changes
    version: int = Field(default=1, ge=1)
    extends: str | None = None
    region: Region | None = None
    standard: str | None = None
    nominal_v: float | None = Field(default=None, gt=0)
    nominal_hz: float | None = Field(default=None, gt=0)
    normal_category: Literal["A", "B"] | None = None
    abnormal_category: Literal["I", "II", "III"] | None = None
    applies_to: str = ""
    description: str = ""
    provenance: dict[str, Provenance] = Field(default_factory=dict)
    settings: dict[str, _ValueIn] = Field(default_factory=dict)
    #: inherited keys this profile does not have (a parent's value that does not apply)
    unset: list[str] = Field(default_factory=list)
    registration: Registration | None = None


@dataclass(frozen=True, slots=True)
class GridCodeProfile:
    """A resolved profile (inheritance applied, every value checked)."""

    id: str
    title: str
    region: Region
    standard: str
    nominal_v: float
    nominal_hz: float
    values: Mapping[str, ResolvedValue]
    file: str
    version: int = 1
    extends: str | None = None
    normal_category: str | None = None
    abnormal_category: str | None = None
    applies_to: str = ""
    description: str = ""
    registration: Registration | None = None
    lineage: tuple[str, ...] = ()

    @property
    def unverified(self) -> bool:
        """True when any value is not ``verified`` (draft or unverified): usable in the
        demo, refused by a production rollout without an audited override."""
        return any(not v.verified for v in self.values.values())

    @property
    def unverified_keys(self) -> list[str]:
        return sorted(k for k, v in self.values.items() if not v.verified)

    @property
    def registration_only(self) -> bool:
        """True when the profile carries registration data (an anti-export device): it
        is assigned by (re-)registration, never by a rollout."""
        return self.registration is not None and self.registration.anti_export_device_required

    def profile_ref(self) -> ProfileRef:
        """The label a config document carries (:class:`contracts.messages.ProfileRef`)."""
        return ProfileRef(id=self.id, region=Region_(self.region), version=self.version)

    def canonical(self, key: str) -> float | tuple[tuple[float, float], ...] | None:
        """A value in canonical units (voltages in % of nominal, export in W for one
        phase when given per phase); ``None`` when the profile has no such key."""
        value = self.values.get(key)
        if value is None:
            return None
        spec = KEYS[key]
        if isinstance(value.value, tuple):
            xu, yu = value.unit if isinstance(value.unit, tuple) else ("", value.unit)
            assert spec.x is not None
            return tuple(
                (_to_canonical(spec.x, xu, x, self.nominal_v), _to_canonical(spec.y, yu, y, 0))
                for x, y in value.value
            )
        unit = value.unit if isinstance(value.unit, str) else value.unit[1]
        return _to_canonical(spec.y, unit, value.value, self.nominal_v)


def _to_canonical(quantity: Quantity, unit: str, value: float, nominal_v: float) -> float:
    if quantity != "voltage":
        return value
    if unit == "V":
        return value / nominal_v * 100.0
    if unit == "pu":
        return value * 100.0
    return value  # %Vnom


# ----- standards: the ranges each standard allows ----------------------------------------
class _Range(_Strict):
    min: float
    max: float
    unit: str = ""


class _CurveRange(_Strict):
    x: _Range | None = None
    y: _Range | None = None


class _Standard(_Strict):
    title: str
    source: str = ""
    ranges: dict[str, _Range | _CurveRange] = Field(default_factory=dict)


def _load_standards(directory: Path) -> dict[str, _Standard]:
    path = directory / STANDARDS_FILE
    data = _read_yaml(path)
    if not isinstance(data, dict):
        raise GridCodeError(str(path), "", "the standards file is a mapping of id: standard")
    out: dict[str, _Standard] = {}
    for sid, raw in data.items():
        try:
            std = _Standard.model_validate(raw)
        except ValidationError as exc:
            err = exc.errors()[0]
            raise GridCodeError(str(path), key_path((sid, *err["loc"])), err["msg"]) from None
        for key in std.ranges:
            if key not in KEYS:
                raise GridCodeError(str(path), f"{sid}.ranges.{key}", "unknown grid-code key")
        out[str(sid)] = std
    return out


# ----- loading and resolution -------------------------------------------------------------
def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise GridCodeError(str(path), "", f"cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise GridCodeError(str(path), "", f"not valid YAML: {exc}") from None


def _parse(data: Any, file: str) -> _ProfileIn:
    if not isinstance(data, dict):
        raise GridCodeError(file, "", "a grid-code profile is a mapping")
    try:
        return _ProfileIn.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise GridCodeError(file, key_path(tuple(err["loc"])), err["msg"]) from None


def _fmt_range(r: _Range) -> str:
    unit = _u(r.unit).strip()
    return f"{_g(r.min)}-{_g(r.max)}{' ' + unit if unit else ''}"


def _check_value(
    key: str, raw: _ValueIn, spec: KeySpec, nominal_v: float, std: _Standard, sid: str
) -> Iterator[tuple[str, str]]:
    """Every problem of one value: shape, units, generic bounds, the standard's range."""
    where = f"settings.{key}"
    curve = spec.kind == "curve"
    if curve != isinstance(raw.value, list):
        yield f"{where}.value", f"{key} is a {spec.kind}"
        return
    if curve and not isinstance(raw.unit, tuple):
        yield f"{where}.unit", f"{key} is a curve: give [x unit, y unit]"
        return
    if not curve and isinstance(raw.unit, tuple):
        yield f"{where}.unit", f"{key} is a scalar: give one unit"
        return
    axes: list[tuple[str, Quantity, str, tuple[float, float]]] = []
    if curve:
        assert spec.x is not None
        assert spec.x_bounds is not None
        xu, yu = raw.unit if isinstance(raw.unit, tuple) else ("", "")
        axes = [("x", spec.x, xu, spec.x_bounds), ("y", spec.y, yu, spec.y_bounds)]
    else:
        axes = [("y", spec.y, str(raw.unit), spec.y_bounds)]
    for _axis, quantity, unit, _ in axes:
        if unit not in _UNITS[quantity]:
            allowed = " or ".join(repr(u) for u in _UNITS[quantity])
            yield f"{where}.unit", f"unit {unit!r} does not measure {quantity} (limit: {allowed})"
            return
    if curve:
        assert isinstance(raw.value, list)
        if not 1 <= len(raw.value) <= spec.max_points:
            yield f"{where}.value", f"a curve has 1 to {spec.max_points} points"
            return
        points: list[tuple[int | None, tuple[float, float]]] = list(enumerate(raw.value))
    else:
        assert isinstance(raw.value, float | int)
        points = [(None, (0.0, float(raw.value)))]
    limit = std.ranges.get(key)
    for i, pair in points:
        for n, (axis, quantity, unit, bounds) in enumerate(axes):
            value = pair[1] if axis == "y" else pair[0]
            at = f"{where}.value" + (f"[{i}][{n}]" if i is not None else "")
            if not math.isfinite(value):
                yield at, f"{value!r} is not a finite number"
                continue
            canon = _to_canonical(quantity, unit, value, nominal_v)
            lo, hi = bounds
            if not lo <= canon <= hi:
                shown = "%Vnom" if quantity == "voltage" else unit
                yield (
                    at,
                    (
                        f"{_g(value)} {unit} is outside the bounds of {key} "
                        f"(limit {_g(lo)}-{_g(hi)} {shown})".replace("  ", " ")
                    ),
                )
                continue
            rng: _Range | None = None
            if isinstance(limit, _Range) and not curve:
                rng = limit
            elif isinstance(limit, _CurveRange) and curve:
                rng = limit.x if axis == "x" else limit.y
            if rng is None:
                continue
            r_lo = _to_canonical(quantity, rng.unit, rng.min, nominal_v)
            r_hi = _to_canonical(quantity, rng.unit, rng.max, nominal_v)
            if not r_lo - 1e-9 <= canon <= r_hi + 1e-9:
                yield (
                    at,
                    (
                        f"{_g(value)} {unit} is outside the range {sid} allows "
                        f"(limit {_fmt_range(rng)})".replace("  ", " ")
                    ),
                )


def _provenance(
    raw: _ValueIn, named: Mapping[str, Provenance], where: str
) -> Provenance | tuple[str, str]:
    base: Provenance | None = None
    if raw.ref is not None:
        base = named.get(raw.ref)
        if base is None:
            return f"{where}.ref", f"no provenance named {raw.ref!r}"
    source = raw.source or (base.source if base else None)
    clause = raw.clause or (base.clause if base else None)
    confidence = raw.confidence or (base.confidence if base else None)
    if source is None or clause is None or confidence is None:
        return where, "every value needs its provenance: source, clause and confidence (or ref)"
    return Provenance(source=source, clause=clause, confidence=confidence)


def _resolve(
    pid: str,
    raws: Mapping[str, tuple[str, _ProfileIn]],
    standards: Mapping[str, _Standard],
    done: dict[str, GridCodeProfile],
    stack: tuple[str, ...] = (),
) -> GridCodeProfile:
    if pid in done:
        return done[pid]
    file, raw = raws[pid]
    parent: GridCodeProfile | None = None
    named: dict[str, Provenance] = {}
    if raw.extends is not None:
        if raw.extends in (*stack, pid):
            raise GridCodeError(file, "extends", f"inheritance cycle through {raw.extends!r}")
        if raw.extends not in raws:
            raise GridCodeError(file, "extends", f"no grid-code profile {raw.extends!r}")
        parent = _resolve(raw.extends, raws, standards, done, (*stack, pid))
        named = dict(_named_provenance(raw.extends, raws))
    named |= raw.provenance

    def pick(name: str) -> Any:
        own = getattr(raw, name)
        if own is not None or parent is None:
            return own
        return getattr(parent, name)

    region, standard = pick("region"), pick("standard")
    nominal_v, nominal_hz = pick("nominal_v"), pick("nominal_hz")
    for name, value in (("region", region), ("standard", standard)):
        if value is None:
            raise GridCodeError(file, name, f"a profile needs a {name} (or extends one)")
    if nominal_v is None or nominal_hz is None:
        raise GridCodeError(file, "nominal_v", "a profile needs nominal_v and nominal_hz")
    if standard not in standards:
        raise GridCodeError(
            file, "standard", f"unknown standard {standard!r} (not in {STANDARDS_FILE})"
        )
    std = standards[standard]
    values: dict[str, ResolvedValue] = dict(parent.values) if parent else {}
    for i, key in enumerate(raw.unset):
        if key not in values:
            raise GridCodeError(file, f"unset[{i}]", f"{key} is not inherited: nothing to unset")
        del values[key]
    for key, value in raw.settings.items():
        where = f"settings.{key}"
        spec = KEYS.get(key)
        if spec is None:
            raise GridCodeError(
                file, where, "unknown grid-code key (see device_profiles.grid_code.KEYS)"
            )
        for at, reason in _check_value(key, value, spec, nominal_v, std, standard):
            raise GridCodeError(file, at, reason)
        prov = _provenance(value, named, where)
        if isinstance(prov, tuple):
            raise GridCodeError(file, *prov)
        stored: float | tuple[tuple[float, float], ...]
        if isinstance(value.value, list):
            stored = tuple((float(x), float(y)) for x, y in value.value)
        else:
            stored = float(value.value)
        values[key] = ResolvedValue(key, stored, value.unit, prov, value.note, file)
    if parent is not None and standard != parent.standard:
        # inherited values must sit inside the child's standard too
        for key, inherited in parent.values.items():
            if key in raw.settings or key in raw.unset:
                continue
            value = inherited.value
            back = _ValueIn.model_construct(  # checked already: only the range is new
                value=list(value) if isinstance(value, tuple) else value, unit=inherited.unit
            )
            for at, reason in _check_value(key, back, KEYS[key], nominal_v, std, standard):
                raise GridCodeError(file, f"{at} (inherited from {raw.extends})", reason)
    profile = GridCodeProfile(
        id=raw.id,
        title=raw.title,
        region=region,
        standard=standard,
        nominal_v=float(nominal_v),
        nominal_hz=float(nominal_hz),
        values=values,
        file=file,
        version=raw.version,
        extends=raw.extends,
        normal_category=pick("normal_category"),
        abnormal_category=pick("abnormal_category"),
        applies_to=raw.applies_to or (parent.applies_to if parent else ""),
        description=raw.description,
        registration=pick("registration"),
        lineage=((*parent.lineage, parent.id) if parent else ()),
    )
    categories = (profile.normal_category, profile.abnormal_category)
    if standard == "ieee-1547-2018" and None in categories:
        raise GridCodeError(
            file, "normal_category", "an IEEE 1547-2018 profile names both categories"
        )
    done[pid] = profile
    return profile


def _named_provenance(
    pid: str, raws: Mapping[str, tuple[str, _ProfileIn]]
) -> dict[str, Provenance]:
    _, raw = raws[pid]
    out = _named_provenance(raw.extends, raws) if raw.extends in raws and raw.extends else {}
    return out | raw.provenance


def load_grid_codes(directory: Path | str = GRID_CODE_DIR) -> dict[str, GridCodeProfile]:
    """Every profile of a folder (``*.yaml`` not starting with ``_``), resolved and
    checked; :class:`GridCodeError` names the file, the key and the limit."""
    directory = Path(directory)
    standards = _load_standards(directory)
    raws: dict[str, tuple[str, _ProfileIn]] = {}
    for path in sorted(directory.glob("*.yaml")):
        if path.name.startswith("_"):
            continue
        raw = _parse(_read_yaml(path), str(path))
        if raw.id in raws:
            raise GridCodeError(str(path), "id", f"grid-code profile {raw.id!r} defined twice")
        if path.stem != raw.id:
            raise GridCodeError(str(path), "id", f"id {raw.id!r} differs from the file name")
        raws[raw.id] = (str(path), raw)
    done: dict[str, GridCodeProfile] = {}
    for pid in raws:
        _resolve(pid, raws, standards, done)
    return {pid: done[pid] for pid in sorted(done)}


@functools.cache
def _builtin() -> dict[str, GridCodeProfile]:
    return load_grid_codes(GRID_CODE_DIR)


def builtin_grid_codes() -> dict[str, GridCodeProfile]:
    """The profiles shipped in ``device_profiles/grid_codes`` (read once)."""
    return dict(_builtin())


def builtin_grid_code(profile_id: str) -> GridCodeProfile:
    """One shipped grid-code profile by id; ``KeyError`` names an unknown one."""
    try:
        return _builtin()[profile_id]
    except KeyError:
        raise KeyError(f"unknown grid-code profile {profile_id!r}") from None


# ----- comparing and assigning ------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ValueDiff:
    """One key that differs between two profiles (``None``: absent on that side)."""

    key: str
    a: ResolvedValue | None
    b: ResolvedValue | None


def diff_grid_codes(a: GridCodeProfile, b: GridCodeProfile) -> list[ValueDiff]:
    """Keys whose value, unit or provenance differs, in key order."""
    out = []
    for key in sorted(set(a.values) | set(b.values)):
        va, vb = a.values.get(key), b.values.get(key)
        same = (
            va is not None
            and vb is not None
            and (va.value, va.unit, va.provenance) == (vb.value, vb.unit, vb.provenance)
        )
        if not same:
            out.append(ValueDiff(key, va, vb))
    return out


def rollout_refusal(current: GridCodeProfile | None, target: GridCodeProfile) -> str | None:
    """Why a rollout may not move a site from ``current`` to ``target`` (``None``: it may).

    A site's self-consumption mode and its anti-export device are registration data:
    changing them needs a re-registration with the network operator (RD 244/2019), so a
    rollout never does it — neither onto nor off a profile that carries them."""
    old = current.registration if current is not None else None
    if old != target.registration and (
        target.registration is not None or (old is not None and old.anti_export_device_required)
    ):
        return (
            f"{target.id}: a site's self-consumption mode and anti-export device are "
            "registration data; changing them needs a re-registration, never a rollout"
        )
    if current is not None and current.region != target.region:
        return f"{target.id}: a rollout never changes a site's region ({current.region})"
    return None
