"""The SunSpec codec: model definitions, register layouts, encoding and decoding.

The only module of the project that imports pysunspec2. pysunspec2 ships the normative
model JSON; this module reads it once per model as typed, immutable trees
(:class:`ModelDef` → :class:`GroupDef` → :class:`PointDef`) and builds on them:

* **layouts** (:func:`layout`): every point instance of a model with its offset from the
  ID register, repeating groups sized by counts. An instance is named by its *indexed
  path*: ``W`` at top level, ``Crv[1].Pt[0].V`` inside repeating groups (0-based); its
  *key* is the path without indices (``Crv.Pt.V``), as profiles name points;
* **one table of point types** (:data:`_INT`, :data:`_FLOAT`): registers, signedness and
  the "not implemented" sentinel, used both ways. Encoding writes the sentinel for a
  point without a value; decoding reads a sentinel (and an accumulator's zero) as ``None``;
* **scale factors**: a value is ``raw * 10^SF``; encoding divides by it, decoding
  multiplies, and a value whose SF is not implemented (or beyond ±10) decodes to ``None``;
* **the decode plan** (:func:`decode_plan`) the agent polls with: per (model id, L) the
  top-level points' offsets, decoders and SF references, built once, so a poll is a loop
  over raw registers. Its values are those pysunspec2 decodes (see the unit test comparing
  both over every shipped model);
* **images** (:func:`device_image`): ``'SunS'`` + models + the end model, for simulators
  and tests.
"""

from __future__ import annotations

import functools
import math
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sunspec2 import mb
from sunspec2.device import get_model_def
from sunspec2.mdef import ModelDefinitionError

__all__ = [
    "END_MODEL",
    "END_MODEL_ID",
    "MAX_READ",
    "MAX_SF",
    "SUNS_BASE",
    "SUNS_BASES",
    "SUNS_MARKER",
    "DecodePlan",
    "DecodedModel",
    "GroupDef",
    "ModelBlock",
    "ModelDef",
    "ModelLayout",
    "PointDef",
    "Slot",
    "SunSpecError",
    "UnknownModelError",
    "decode_model",
    "decode_plan",
    "decode_point",
    "device_image",
    "encode_model",
    "is_suns",
    "layout",
    "model_def",
    "model_registers",
    "raw_to_value",
    "read_plan",
    "registers_to_bytes",
    "scale",
    "value_to_raw",
]

SUNS_MARKER = (0x5375, 0x6E53)  # ASCII 'SunS'
SUNS_BASE = 40000
SUNS_BASES = (40000, 0, 50000)
END_MODEL_ID = 0xFFFF
END_MODEL = (END_MODEL_ID, 0)
MAX_READ = 125
#: A scale factor beyond ±10 is garbage (SunSpec uses -10...10): the value cannot be scaled.
MAX_SF = 10


class UnknownModelError(KeyError):
    """The model id has no definition in pysunspec2."""


class SunSpecError(ValueError):
    """Registers that do not form a valid SunSpec map."""


# ----- model definitions -----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PointDef:
    name: str
    type: str
    size: int
    access: str  # "R" or "RW"
    sf: str | int | None
    units: str | None
    mandatory: bool
    symbols: dict[str, int] = field(default_factory=dict)
    value: Any = None  # a fixed value given by the definition (the model's ID)

    @property
    def writable(self) -> bool:
        return self.access == "RW"


@dataclass(frozen=True, slots=True)
class GroupDef:
    """A group; ``count`` is an int, the name of a count point, or ``None`` (exactly one).

    A count of ``0`` is the legacy "repeat until the model's length is used up".
    """

    name: str
    count: int | str | None
    points: tuple[PointDef, ...]
    groups: tuple[GroupDef, ...]

    def point(self, name: str) -> PointDef | None:
        return next((p for p in self.points if p.name == name), None)

    def group(self, name: str) -> GroupDef | None:
        return next((g for g in self.groups if g.name == name), None)


@dataclass(frozen=True, slots=True)
class ModelDef:
    model_id: int
    name: str
    root: GroupDef

    @property
    def fixed_length(self) -> int:
        """L of the model's top-level points only (excluding ID and L)."""
        return sum(p.size for p in self.root.points) - 2

    def find(self, path: str) -> PointDef | None:
        """The point at a dotted path (``Crv.Pt.V``), or ``None``."""
        *groups, name = path.split(".")
        group: GroupDef | None = self.root
        for part in groups:
            group = group.group(part) if group is not None else None
        return group.point(name) if group is not None else None

    def paths(self) -> list[str]:
        """Every point path of the model, depth first."""
        out: list[str] = []

        def walk(group: GroupDef, prefix: str) -> None:
            out.extend(prefix + p.name for p in group.points)
            for sub in group.groups:
                walk(sub, f"{prefix}{sub.name}.")

        walk(self.root, "")
        return out


def _point(raw: dict[str, Any]) -> PointDef:
    symbols = {str(s["name"]): int(s["value"]) for s in raw.get("symbols", [])}
    kind = str(raw["type"])
    return PointDef(
        name=str(raw["name"]),
        type=kind,
        size=int(raw.get("size") or mb.point_type_info[kind].len),
        access=str(raw.get("access", "R")),
        sf=raw.get("sf"),
        units=raw.get("units"),
        mandatory=raw.get("mandatory") == "M",
        symbols=symbols,
        value=raw.get("value"),
    )


def _group(raw: dict[str, Any]) -> GroupDef:
    count = raw.get("count")
    return GroupDef(
        name=str(raw["name"]),
        count=count if count is None or isinstance(count, str) else int(count),
        points=tuple(_point(p) for p in raw.get("points", [])),
        groups=tuple(_group(g) for g in raw.get("groups", [])),
    )


@functools.cache
def model_def(model_id: int) -> ModelDef:
    """The definition of ``model_id``; :class:`UnknownModelError` if pysunspec2 has none."""
    try:
        raw = get_model_def(model_id)
    except ModelDefinitionError:
        raise UnknownModelError(f"no SunSpec model {model_id} in pysunspec2") from None
    root = _group(raw["group"])
    return ModelDef(model_id=int(raw["id"]), name=root.name, root=root)


def _sf_constant(sf: str | int | None) -> int | None:
    """A constant SF written into the definition (``"-2"``), or ``None`` for a reference."""
    if isinstance(sf, int):
        return sf
    try:
        return int(sf) if sf is not None else None
    except ValueError:
        return None


# ----- point types: registers, sign and sentinel, both ways ------------------------------
_INT = {  # type -> (registers, signed, "not implemented" sentinel as unsigned)
    "int16": (1, True, 0x8000),
    "sunssf": (1, True, 0x8000),
    "uint16": (1, False, 0xFFFF),
    "count": (1, False, 0xFFFF),
    "enum16": (1, False, 0xFFFF),
    "bitfield16": (1, False, 0xFFFF),
    "acc16": (1, False, 0),
    "pad": (1, False, 0),
    "int32": (2, True, 0x80000000),
    "uint32": (2, False, 0xFFFFFFFF),
    "enum32": (2, False, 0xFFFFFFFF),
    "bitfield32": (2, False, 0xFFFFFFFF),
    "ipaddr": (2, False, 0),
    "acc32": (2, False, 0),
    "int64": (4, True, 0x8000000000000000),
    "uint64": (4, False, 0xFFFFFFFFFFFFFFFF),
    "acc64": (4, False, 0),
    "eui48": (4, False, 0xFFFFFFFFFFFFFFFF),
}
_FLOAT = {"float32": (2, ">f"), "float64": (4, ">d")}
#: Types decoded by pysunspec2 itself (its own text forms): MAC and IPv6 addresses, float64.
_PYSUNSPEC2_DECODED = frozenset({"eui48", "ipv6addr", "float64"})
_STRINGS = frozenset({"string", "ipv6addr"})

#: A point decoder: ``(registers, offset, size) -> value``, ``None`` when not implemented.
Decoder = Callable[[Sequence[int], int, int], Any]


def registers_to_bytes(registers: Sequence[int]) -> bytes:
    return b"".join(int(r).to_bytes(2, "big") for r in registers)


def _int_decoder(regs: int, signed: bool, sentinel: int | None) -> Decoder:
    """Decoder of an integer type; specialised per width because the agent runs it a lot."""
    bits = 16 * regs
    sign_bit, span = 1 << (bits - 1), 1 << bits

    def signed_value(v: int) -> Any:
        if v == sentinel:
            return None
        return v - span if signed and v & sign_bit else v

    if regs == 1:
        return lambda r, o, n: signed_value(r[o])
    if regs == 2:
        return lambda r, o, n: signed_value(r[o] << 16 | r[o + 1])
    return lambda r, o, n: signed_value(r[o] << 48 | r[o + 1] << 32 | r[o + 2] << 16 | r[o + 3])


_F32 = struct.Struct(">HH")


def _f32(r: Sequence[int], o: int, n: int) -> Any:
    (v,) = struct.unpack(">f", _F32.pack(r[o], r[o + 1]))
    return None if math.isnan(v) else v


def _string(r: Sequence[int], o: int, n: int) -> Any:
    text = registers_to_bytes(r[o : o + n]).decode("utf-8")  # may raise, as pysunspec2
    if not text or text[0] == "\0":
        return None
    return text.rstrip("\x00").strip() or None


def _via_pysunspec2(kind: str) -> Decoder:
    info = mb.point_type_info[kind]

    def decode(r: Sequence[int], o: int, n: int) -> Any:
        value = info.data_to(registers_to_bytes(r[o : o + n]))
        return value if value is not None and info.is_impl(value) else None

    return decode


_DECODERS: dict[str, Decoder] = {
    kind: _int_decoder(regs, signed, None if kind == "pad" else sentinel)
    for kind, (regs, signed, sentinel) in _INT.items()
    if kind not in _PYSUNSPEC2_DECODED
}
_DECODERS |= {"float32": _f32, "string": _string}


def _decoder(kind: str) -> Decoder:
    return _DECODERS.get(kind) or _via_pysunspec2(kind)


def decode_point(pdef: PointDef, regs: Sequence[int]) -> Any:
    """Raw value of a point from its registers; sentinels (and bad text) decode to ``None``."""
    try:
        return _decoder(pdef.type)(regs, 0, pdef.size)
    except (ValueError, UnicodeDecodeError, struct.error):
        return None


def _encode_point(pdef: PointDef, raw: Any) -> list[int]:
    if pdef.type in _FLOAT:
        data = struct.pack(_FLOAT[pdef.type][1], math.nan if raw is None else float(raw))
    elif pdef.type in _STRINGS:
        text = b"" if raw is None else str(raw).encode()[: pdef.size * 2]
        data = text.ljust(pdef.size * 2, b"\0")
    else:
        regs, signed, sentinel = _INT[pdef.type]
        bits = 16 * regs
        if raw is None:
            number = sentinel
        elif pdef.type.startswith("acc"):
            number = int(raw) % (1 << bits)
        else:  # clamp inside the range, short of the sentinel
            lo, hi = (
                (-(1 << (bits - 1)) + 1, (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 2)
            )
            number = max(lo, min(hi, int(raw))) % (1 << bits)
        data = number.to_bytes(2 * regs, "big")
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]


# ----- scale factors ---------------------------------------------------------------------
def scale(raw: Any, sf: Any) -> float | int | None:
    """``raw * 10^sf``, rounded to the SF's decimals (no binary noise: 2301, -1 → 230.1)."""
    if raw is None:
        return None
    if isinstance(raw, float):
        return None if math.isnan(raw) else raw
    if sf == 0:
        return int(raw)
    value = float(raw) * 10.0 ** int(sf)
    return round(value, -int(sf)) if sf < 0 else value


def value_to_raw(pdef: PointDef, value: Any, sf: int | None) -> Any:
    """Engineering value → raw point value (int, float or str), or ``None`` if it can't."""
    if value is None:
        return None
    if pdef.type == "string" or pdef.type in _FLOAT:
        return value
    if isinstance(value, int) and not sf:
        return value  # exact: a float would round 64-bit counters
    number = float(value)
    if math.isnan(number):
        return None
    if sf is not None and pdef.type != "sunssf":
        number = number / 10.0**sf
    return round(number)


def raw_to_value(pdef: PointDef, raw: Any, sf: int | None) -> Any:
    """Raw point value → engineering value (``None`` stays ``None``)."""
    if raw is None or isinstance(raw, str | float) or sf is None or pdef.type == "sunssf":
        return raw
    return scale(raw, sf)


# ----- layouts ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Slot:
    """One point instance: ``offset`` counts from the model's ID register."""

    path: str
    key: str  # the path without indices, as profiles name it (``Crv.Pt.V``)
    pdef: PointDef
    offset: int
    sf_path: str | None  # indexed path of the SF point
    sf_fixed: int | None  # a constant SF given in the definition

    @property
    def size(self) -> int:
        return self.pdef.size


@dataclass(frozen=True, slots=True)
class ModelLayout:
    model_id: int
    length: int  # L: registers after ID and L
    slots: tuple[Slot, ...]
    counts: dict[str, int]  # count point name (or legacy group name) -> instances
    by_path: dict[str, Slot]

    def slot(self, path: str) -> Slot | None:
        return self.by_path.get(path)

    def slots_for(self, key: str) -> list[Slot]:
        """Every instance of an unindexed point key (``Crv.Pt.V``)."""
        return [s for s in self.slots if s.key == key]

    def at(self, offset: int) -> Slot | None:
        """The slot covering register ``offset`` (from the ID register)."""
        for slot in self.slots:
            if slot.offset <= offset < slot.offset + slot.size:
                return slot
        return None


def _group_count(group: GroupDef, counts: Mapping[str, int]) -> int:
    if group.count is None:
        return 1
    if isinstance(group.count, str):
        return counts.get(group.count, 1)
    if group.count == 0:
        return counts.get(group.name, 1)
    return group.count


def layout(model_id: int, counts: Mapping[str, int] | None = None) -> ModelLayout:
    """The layout of ``model_id`` with repeating groups sized by ``counts``."""
    return _layout(model_id, tuple(sorted((counts or {}).items())))


@functools.cache
def _layout(model_id: int, count_items: tuple[tuple[str, int], ...]) -> ModelLayout:
    counts = dict(count_items)
    slots: list[Slot] = []
    used: dict[str, int] = {}

    def walk(
        group: GroupDef,
        prefix: str,
        key_prefix: str,
        offset: int,
        scopes: list[tuple[str, GroupDef]],
    ) -> int:
        scopes = [(prefix, group), *scopes]
        for pdef in group.points:
            sf_fixed = _sf_constant(pdef.sf)
            sf_path: str | None = None
            if sf_fixed is None and isinstance(pdef.sf, str):
                # the SF point is the nearest one of that name, inner groups first
                for scope_prefix, scope in scopes:
                    if scope.point(pdef.sf) is not None:
                        sf_path = scope_prefix + pdef.sf
                        break
            slots.append(
                Slot(prefix + pdef.name, key_prefix + pdef.name, pdef, offset, sf_path, sf_fixed)
            )
            offset += pdef.size
        for sub in group.groups:
            n = _group_count(sub, counts)
            used[sub.count if isinstance(sub.count, str) else sub.name] = n
            for i in range(n):
                offset = walk(
                    sub, f"{prefix}{sub.name}[{i}].", f"{key_prefix}{sub.name}.", offset, scopes
                )
        return offset

    total = walk(model_def(model_id).root, "", "", 0, [])
    return ModelLayout(model_id, total - 2, tuple(slots), used, {s.path: s for s in slots})


# ----- encoding --------------------------------------------------------------------------
def encode_model(
    lay: ModelLayout,
    values: Mapping[str, Any],
    *,
    sf_override: Mapping[str, int] | None = None,
    sentinel: frozenset[str] = frozenset(),
    length: int | None = None,
    scaled: bool = True,
) -> list[int]:
    """Registers of one model (ID and L first) from ``values`` by indexed path.

    Values are in engineering units, divided by 10^SF (the SF point's value in ``values``
    or ``sf_override``); with ``scaled=False`` they are raw register values.
    ``sf_override`` replaces SF values (the runtime range switch); paths in ``sentinel``
    are served as "not implemented"; ``length`` truncates L (the 65-register common model).
    Count points (``NCrv``, ``NPt``, ``N``...) default to the layout's counts.
    """
    overrides = sf_override or {}
    regs: list[int] = []
    for slot in lay.slots:
        if slot.path == "ID":
            regs.append(lay.model_id)
            continue
        if slot.path == "L":
            regs.append(lay.length if length is None else length)
            continue
        if slot.path in sentinel:
            regs.extend(_encode_point(slot.pdef, None))
            continue
        value = values.get(slot.path)
        if value is None and slot.pdef.name in lay.counts and slot.pdef.type in ("uint16", "count"):
            value = lay.counts[slot.pdef.name]
        if slot.pdef.type == "sunssf":
            value = overrides.get(slot.path, value)
        sf = slot.sf_fixed if scaled else None
        if scaled and slot.sf_path is not None:
            sf = overrides.get(slot.sf_path, values.get(slot.sf_path))
            if sf is None and value is not None and slot.pdef.type not in _FLOAT:
                raise ValueError(f"model {lay.model_id} {slot.path}: value without its SF")
        regs.extend(_encode_point(slot.pdef, value_to_raw(slot.pdef, value, sf)))
    if length is not None:
        regs = regs[: length + 2]
    return regs


def model_registers(
    model_id: int, raw: Mapping[str, Any], counts: Mapping[str, int] | None = None
) -> list[int]:
    """Registers of one model (ID and L first) from *raw* point values by indexed path;
    a point left out is "not implemented". :class:`KeyError` for a point the model lacks."""
    lay = layout(model_id, counts)
    unknown = sorted(set(raw) - set(lay.by_path))
    if unknown:
        raise KeyError(f"model {model_id} has no point {unknown[0]!r}")
    return encode_model(lay, raw, scaled=False)


@dataclass(frozen=True, slots=True)
class ModelBlock:
    """One model in a device's chain: ``addr`` is its ID register; ``length`` is L."""

    model_id: int
    addr: int
    length: int

    @property
    def total(self) -> int:
        """Registers including ID and L."""
        return self.length + 2


def device_image(
    models: Sequence[tuple[int, Mapping[str, Any]]], base: int = SUNS_BASE
) -> tuple[list[int], list[ModelBlock]]:
    """A whole SunSpec image at ``base`` from raw point values, and the blocks it holds."""
    regs: list[int] = list(SUNS_MARKER)
    blocks: list[ModelBlock] = []
    for model_id, values in models:
        model_regs = model_registers(model_id, values)
        blocks.append(ModelBlock(model_id, base + len(regs), model_regs[1]))
        regs.extend(model_regs)
    regs.extend(END_MODEL)
    return regs, blocks


# ----- decoding --------------------------------------------------------------------------
def is_suns(registers: Sequence[int]) -> bool:
    return tuple(registers[:2]) == SUNS_MARKER


def read_plan(block: ModelBlock, max_count: int = MAX_READ) -> list[tuple[int, int]]:
    """``(address, count)`` requests covering a model; one request when it fits."""
    plan = []
    addr, remaining = block.addr, block.total
    while remaining > 0:
        count = min(remaining, max_count)
        plan.append((addr, count))
        addr += count
        remaining -= count
    return plan


@dataclass(slots=True)
class DecodedModel:
    model_id: int
    raw: dict[str, Any]
    scaled: dict[str, float | int | str | None]
    sf_missing: list[str] = field(default_factory=list)
    error: str = ""


@dataclass(frozen=True, slots=True)
class PointPlan:
    name: str
    offset: int  # registers from the model's ID register
    size: int
    decode: Decoder
    sf_point: str | None  # the SF point's name, or None
    sf_fixed: int | None  # a constant SF from the definition


@dataclass(frozen=True, slots=True)
class DecodePlan:
    """How to decode one model of one length: its top-level points, in order."""

    model_id: int
    length: int
    points: tuple[PointPlan, ...]
    fixed: dict[str, Any]  # ID and L as pysunspec2 reports them
    error: str

    def decode(self, registers: Sequence[int]) -> DecodedModel:
        """Raw and scaled values of every top-level point (see :func:`decode_model`)."""
        raw: dict[str, Any] = {}
        errors = [self.error] if self.error else []
        have = len(registers)
        for p in self.points:
            if p.offset + p.size > have:
                raw[p.name] = None  # short data: pysunspec2 leaves the point unset
                continue
            try:
                raw[p.name] = p.decode(registers, p.offset, p.size)
            except (ValueError, UnicodeDecodeError, struct.error) as exc:
                raw[p.name] = None
                errors.append(f"Error setting value for {p.name}: {exc}")
        raw.update(self.fixed)
        scaled: dict[str, float | int | str | None] = {}
        missing: list[str] = []
        for p in self.points:
            value = raw[p.name]
            unscaled = p.sf_point is None and p.sf_fixed is None
            if value is None or isinstance(value, str) or unscaled:
                scaled[p.name] = value
                continue
            sf = p.sf_fixed if p.sf_point is None else raw.get(p.sf_point)
            if sf is None or not -MAX_SF <= sf <= MAX_SF:
                scaled[p.name] = None
                missing.append(p.name)
                continue
            scaled[p.name] = scale(value, sf)
        return DecodedModel(self.model_id, raw, scaled, missing, "\n".join(errors).strip())


@functools.lru_cache(maxsize=512)
def decode_plan(model_id: int, length: int) -> DecodePlan:
    """The decode plan of model ``model_id`` with length L ``length`` (built once).

    :class:`SunSpecError` for a model pysunspec2 has no definition of. Repeating groups
    are not decoded (only top-level points); for a model with groups L is taken as read.
    """
    try:
        root = model_def(model_id).root
    except Exception as exc:
        raise SunSpecError(f"model {model_id}: no definition: {exc}") from None
    points: list[PointPlan] = []
    offset = 0
    for pdef in root.points:
        if model_id == 1 and length == 65 and pdef.name == "Pad":
            continue  # legacy common model of 65 registers (SolarEdge)
        sf_fixed = _sf_constant(pdef.sf)
        sf_point = str(pdef.sf) if pdef.sf is not None and sf_fixed is None else None
        points.append(
            PointPlan(pdef.name, offset, pdef.size, _decoder(pdef.type), sf_point, sf_fixed)
        )
        offset += pdef.size
    error = ""
    fixed: dict[str, Any] = {}
    if root.groups:
        fixed["L"] = length
    else:
        fixed["L"] = offset - 2
        if length and length + 2 != offset:
            error = (
                f"Model length {length + 2} not equal to calculated model length {offset} "
                f"for model {model_id}"
            )
    id_pdef = root.point("ID")
    if id_pdef is not None and id_pdef.value:
        fixed["ID"] = id_pdef.value
    return DecodePlan(model_id, length, tuple(points), fixed, error)


def decode_model(model_id: int, registers: Sequence[int]) -> DecodedModel:
    """Decode one model's registers (ID and L first) into raw and scaled point values.

    Strings are stripped of NUL padding; every numeric point is scaled by its SF (read
    from the same registers); a point whose SF is not implemented (or beyond ±10)
    becomes ``None`` and is listed in ``sf_missing``.
    A model without a shipped definition decodes to no points, with ``error`` set.
    """
    if len(registers) < 2:
        raise SunSpecError(f"model {model_id}: fewer than 2 registers")
    try:
        plan = decode_plan(model_id, int(registers[1]))
    except SunSpecError as exc:
        return DecodedModel(model_id, {}, {}, [], str(exc))
    return plan.decode(registers)
