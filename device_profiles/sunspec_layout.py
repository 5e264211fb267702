"""Register layout, encoding and decoding of SunSpec models, repeating groups included.

Pure functions over the model definitions of :mod:`device_profiles.sunspec_defs`. A point
instance is named by its *indexed path*: ``W`` at top level, ``Crv[1].Pt[0].V`` inside
repeating groups (0-based indices). Values handed to :func:`encode_model` are in
engineering units; the encoder divides by 10^SF using the SF value given for the point's
scale-factor point (or an override), and writes the "not implemented" sentinel for a
point without a value (``0x8000``, ``0xFFFF``, NaN, 0 for accumulators, ...).
"""

from __future__ import annotations

import functools
import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from device_profiles.sunspec_defs import GroupDef, PointDef, model_def

__all__ = [
    "ModelLayout",
    "Slot",
    "decode_point",
    "encode_model",
    "layout",
    "raw_to_value",
    "value_to_raw",
]

_INT = {  # type -> (registers, signed, sentinel as unsigned)
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
    mdef = model_def(model_id)
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
            sf_path: str | None = None
            sf_fixed: int | None = None
            if isinstance(pdef.sf, int) or (isinstance(pdef.sf, str) and _is_int(pdef.sf)):
                sf_fixed = int(pdef.sf)
            elif isinstance(pdef.sf, str):
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

    total = walk(mdef.root, "", "", 0, [])
    return ModelLayout(model_id, total - 2, tuple(slots), used, {s.path: s for s in slots})


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def value_to_raw(pdef: PointDef, value: Any, sf: int | None) -> Any:
    """Engineering value → raw point value (int, float or str), or ``None`` if it can't."""
    if value is None:
        return None
    if pdef.type == "string" or pdef.type in _FLOAT:
        return value
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
    return raw * 10.0**sf if sf else raw


def _encode_point(pdef: PointDef, raw: Any) -> list[int]:
    if pdef.type in _FLOAT:
        regs, fmt = _FLOAT[pdef.type]
        data = struct.pack(fmt, math.nan if raw is None else float(raw))
    elif pdef.type in ("string", "ipv6addr"):
        text = b"" if raw is None else str(raw).encode()[: pdef.size * 2]
        data = text.ljust(pdef.size * 2, b"\0")
    else:
        regs, signed, sentinel = _INT[pdef.type]
        bits = 16 * regs
        if raw is None:
            number = sentinel
        elif pdef.type.startswith("acc"):
            number = int(raw) % (1 << bits)
        else:
            lo, hi = (
                (-(1 << (bits - 1)) + 1, (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 2)
            )
            number = max(lo, min(hi, int(raw))) % (1 << bits)
        data = number.to_bytes(2 * regs, "big")
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]


def decode_point(pdef: PointDef, regs: list[int]) -> Any:
    """Raw value of a point from its registers; sentinels decode to ``None``."""
    data = b"".join(r.to_bytes(2, "big") for r in regs)
    if pdef.type in _FLOAT:
        value = struct.unpack(_FLOAT[pdef.type][1], data)[0]
        return None if math.isnan(value) else value
    if pdef.type in ("string", "ipv6addr"):
        return data.rstrip(b"\0").decode(errors="replace") or None
    _, signed, sentinel = _INT[pdef.type]
    number = int.from_bytes(data, "big")
    if number == sentinel and not pdef.type.startswith(("acc", "pad", "ipaddr")):
        return None
    if pdef.type.startswith("acc") and number == 0:
        return None
    return int.from_bytes(data, "big", signed=True) if signed else number


def encode_model(
    lay: ModelLayout,
    values: Mapping[str, Any],
    *,
    sf_override: Mapping[str, int] | None = None,
    sentinel: frozenset[str] = frozenset(),
    length: int | None = None,
) -> list[int]:
    """Registers of one model (ID and L first) from engineering ``values`` by indexed path.

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
        sf = slot.sf_fixed
        if slot.sf_path is not None:
            sf = overrides.get(slot.sf_path, values.get(slot.sf_path))
            if sf is None and value is not None and slot.pdef.type not in _FLOAT:
                raise ValueError(f"model {lay.model_id} {slot.path}: value without its SF")
        regs.extend(_encode_point(slot.pdef, value_to_raw(slot.pdef, value, sf)))
    if length is not None:
        regs = regs[: length + 2]
    return regs
