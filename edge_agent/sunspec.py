"""SunSpec decoding as pure functions over raw registers (no I/O).

Layouts come from pysunspec2's shipped model definitions. A :class:`DecodePlan` per
(model id, length) is built once from them (offsets, types, scale-factor references) and
cached, so a poll is a loop over raw registers; the values are those pysunspec2 decodes
(sentinels and accumulator zeros → ``None``, strings stripped of NUL padding; see the
unit test comparing both over every shipped model). Scaling is done here, because
pysunspec2's ``cvalue`` silently returns the raw value when the SF is not implemented:
such a value becomes ``None`` and is reported in :attr:`DecodedModel.sf_missing`.
"""

from __future__ import annotations

import functools
import math
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sunspec2 import mb
from sunspec2.device import get_model_def

SUNS_MARKER = (0x5375, 0x6E53)  # ASCII 'SunS'
SUNS_BASES = (40000, 0, 50000)
END_MODEL_ID = 0xFFFF
MAX_READ = 125
#: A scale factor beyond ±10 is garbage (SunSpec uses -10...10): the value cannot be scaled.
MAX_SF = 10


class SunSpecError(ValueError):
    """Registers that do not form a valid SunSpec map."""


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


@dataclass(slots=True)
class DecodedModel:
    model_id: int
    raw: dict[str, Any]
    scaled: dict[str, float | int | str | None]
    sf_missing: list[str] = field(default_factory=list)
    error: str = ""


def is_suns(registers: Sequence[int]) -> bool:
    return tuple(registers[:2]) == SUNS_MARKER


def registers_to_bytes(registers: Sequence[int]) -> bytes:
    return b"".join(int(r).to_bytes(2, "big") for r in registers)


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


# ----- register decoders: (registers, offset, size) -> value, None when not implemented ----
Decoder = Callable[[Sequence[int], int, int], Any]


def _u16(sentinel: int | None) -> Decoder:
    def decode(r: Sequence[int], o: int, n: int) -> Any:
        v = r[o]
        return None if v == sentinel else v

    return decode


def _s16(r: Sequence[int], o: int, n: int) -> Any:
    v = r[o]
    return None if v == 0x8000 else (v - 0x10000 if v & 0x8000 else v)


def _u32(sentinel: int | None) -> Decoder:
    def decode(r: Sequence[int], o: int, n: int) -> Any:
        v = r[o] << 16 | r[o + 1]
        return None if v == sentinel else v

    return decode


def _s32(r: Sequence[int], o: int, n: int) -> Any:
    v = r[o] << 16 | r[o + 1]
    return None if v == 0x80000000 else (v - 0x100000000 if v & 0x80000000 else v)


def _u64(sentinel: int) -> Decoder:
    def decode(r: Sequence[int], o: int, n: int) -> Any:
        v = r[o] << 48 | r[o + 1] << 32 | r[o + 2] << 16 | r[o + 3]
        return None if v == sentinel else v

    return decode


def _s64(r: Sequence[int], o: int, n: int) -> Any:
    v = r[o] << 48 | r[o + 1] << 32 | r[o + 2] << 16 | r[o + 3]
    return None if v == 1 << 63 else (v - (1 << 64) if v >> 63 else v)


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
    "int16": _s16,
    "sunssf": _s16,
    "uint16": _u16(0xFFFF),
    "count": _u16(0xFFFF),
    "enum16": _u16(0xFFFF),
    "bitfield16": _u16(0xFFFF),
    "acc16": _u16(0),
    "pad": _u16(None),
    "int32": _s32,
    "uint32": _u32(0xFFFFFFFF),
    "enum32": _u32(0xFFFFFFFF),
    "bitfield32": _u32(0xFFFFFFFF),
    "acc32": _u32(0),
    "ipaddr": _u32(0),
    "int64": _s64,
    "uint64": _u64(0xFFFFFFFFFFFFFFFF),
    "acc64": _u64(0),
    "float32": _f32,
    "string": _string,
}


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
            scaled[p.name] = _scale(value, sf)
        return DecodedModel(self.model_id, raw, scaled, missing, "\n".join(errors).strip())


@functools.lru_cache(maxsize=512)
def decode_plan(model_id: int, length: int) -> DecodePlan:
    """The decode plan of model ``model_id`` with length L ``length`` (built once).

    :class:`SunSpecError` for a model pysunspec2 has no definition of. Repeating groups
    are not decoded (only top-level points); for a model with groups L is taken as read.
    """
    try:
        group = get_model_def(model_id)["group"]
    except Exception as exc:
        raise SunSpecError(f"model {model_id}: no definition: {exc}") from None
    points: list[PointPlan] = []
    fixed: dict[str, Any] = {}
    offset = 0
    for pdef in group.get("points", []):
        name, kind = pdef["name"], pdef["type"]
        if model_id == 1 and length == 65 and name == "Pad":
            continue  # legacy common model of 65 registers (SolarEdge)
        size = int(pdef.get("size") or mb.point_type_info[kind].len)
        sf = pdef.get("sf")
        sf_fixed = sf_point = None
        if sf is not None:
            try:
                sf_fixed = int(sf)
            except ValueError:
                sf_point = str(sf)
        decoder = _DECODERS.get(kind) or _via_pysunspec2(kind)
        points.append(PointPlan(name, offset, size, decoder, sf_point, sf_fixed))
        offset += size
    error = ""
    if group.get("groups"):
        fixed["L"] = length
    else:
        fixed["L"] = offset - 2
        if length and length + 2 != offset:
            error = (
                f"Model length {length + 2} not equal to calculated model length {offset} "
                f"for model {model_id}"
            )
    id_pdef = next((p for p in group.get("points", []) if p["name"] == "ID"), None)
    if id_pdef is not None and id_pdef.get("value"):
        fixed["ID"] = id_pdef["value"]
    return DecodePlan(model_id, length, tuple(points), fixed, error)


def _scale(raw: Any, sf: Any) -> float | int | None:
    if raw is None:
        return None
    if isinstance(raw, float):
        return None if math.isnan(raw) else raw
    if sf == 0:
        return int(raw)
    value = float(raw) * 10.0 ** int(sf)
    return round(value, -int(sf)) if sf < 0 else value


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
