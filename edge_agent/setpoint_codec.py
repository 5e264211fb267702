"""Engineering values ↔ register words for one discovered device (pure, no I/O).

A profile point reference (``704.WMaxLimPct``, ``705.Crv.Pt.V``, ``vendor.command``) is
located on the device *as discovered*: the model block's address (from the SunSpec
chain) plus the point's offset in :func:`device_profiles.sunspec_codec.layout` sized by
the profile's group counts; a vendor register at its map address. A layout whose length
differs from the discovered block is refused (the device is not what the profile says).

Encoding divides by 10^SF (the SF read from the device's current registers) and refuses
a raw value that does not fit the register type (or hits its "not implemented"
sentinel) before anything is written. Read-back comparison allows half the SF's
resolution.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from device_profiles.schema import DeviceProfile, PointRef
from device_profiles.sunspec_codec import (
    GroupDef,
    ModelLayout,
    PointDef,
    UnknownModelError,
    decode_point,
    layout,
    model_def,
)

__all__ = [
    "CodecError",
    "Located",
    "act_pt_key",
    "adoption_request",
    "curve_path",
    "decode_sf",
    "decode_value",
    "encode_value",
    "locate",
    "model_layout",
    "same_value",
    "set_kind",
    "set_path",
]

#: type -> (registers, lowest raw, highest raw); sentinels (0x8000, 0xFFFF, ...) excluded.
_INT_RANGES: dict[str, tuple[int, int, int]] = {
    "int16": (1, -0x7FFF, 0x7FFF),
    "uint16": (1, 0, 0xFFFE),
    "count": (1, 0, 0xFFFE),
    "enum16": (1, 0, 0xFFFE),
    "bitfield16": (1, 0, 0x7FFF),
    "int32": (2, -0x7FFFFFFF, 0x7FFFFFFF),
    "uint32": (2, 0, 0xFFFFFFFE),
    "enum32": (2, 0, 0xFFFFFFFE),
    "bitfield32": (2, 0, 0x7FFFFFFF),
}
_MAX_SF = 10


class CodecError(ValueError):
    """A value that cannot be put into (or read from) a register; ``point`` names it."""

    def __init__(self, point: str, reason: str) -> None:
        super().__init__(f"{point}: {reason}")
        self.point = point
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Located:
    """One point instance on the device: absolute ``address``, register ``type`` and
    where its scale factor is (``sf_address``) or what it is (``sf_fixed``)."""

    ref: str  # indexed, as the write log names it: ``705.Crv[2].Pt[0].V``
    address: int
    size: int
    type: str
    writable: bool
    sf_address: int | None = None
    sf_fixed: int | None = None


def model_layout(profile: DeviceProfile, model_id: int, discovered_length: int) -> ModelLayout:
    """The profile's layout of ``model_id``, checked against the discovered length."""
    try:
        lay = layout(model_id, profile.group_counts.get(model_id, {}))
    except UnknownModelError:
        raise CodecError(str(model_id), "unknown SunSpec model") from None
    if lay.length != discovered_length:
        raise CodecError(
            str(model_id),
            f"the device's model {model_id} has length {discovered_length}, the profile's "
            f"layout {lay.length} (group counts differ)",
        )
    return lay


def curve_path(key: str, curve: int, point: int) -> str:
    """``Crv.Pt.V`` → ``Crv[curve].Pt[point].V`` (a curve point of a DER 70x model)."""
    if key.count(".") < 2:
        raise CodecError(key, "only curve points (<curve>...<point>.<name>) are supported")
    return set_path(key, curve, point)


def set_path(key: str, index: int, point: int | None = None) -> str:
    """The indexed path of a point of set ``index`` (a DER 70x curve or control):
    ``Crv.Pt.V`` → ``Crv[1].Pt[0].V``, ``Crv.MustTrip.Pt.V`` → ``Crv[1].MustTrip.Pt[0].V``,
    ``Ctl.DbOf`` → ``Ctl[1].DbOf``. ``point`` indexes the innermost group; groups in
    between do not repeat (index 0, as layouts name them)."""
    parts = key.split(".")
    last = len(parts) - 2  # the group holding the point
    for i in range(len(parts) - 1):
        if i == 0:
            parts[i] += f"[{index}]"
        elif i == last and point is not None:
            parts[i] += f"[{point}]"
        else:
            parts[i] += "[0]"
    return ".".join(parts)


def act_pt_key(key: str) -> str:
    """The ``ActPt`` beside a curve's point group: ``Crv.Pt.V`` → ``Crv.ActPt``,
    ``Crv.MustTrip.Pt.V`` → ``Crv.MustTrip.ActPt``."""
    return ".".join([*key.split(".")[:-2], "ActPt"])


def adoption_request(model_id: int) -> str:
    """The point that adopts a set of ``model_id``: ``AdptCtlReq`` (711) or ``AdptCrvReq``."""
    return "AdptCtlReq" if model_def(model_id).root.point("AdptCtlReq") else "AdptCrvReq"


def set_kind(ref: str) -> Literal["scalar", "set_scalar", "curve"]:
    """How a setting's point is written: ``curve`` (a list, inside a repeating point group
    of a repeating set: ``705.Crv.Pt.V``), ``set_scalar`` (one value of a repeating set:
    ``711.Ctl.DbOf``, ``705.Crv.DeptRef``) or ``scalar`` (top level, or in a group that
    does not repeat: ``704.PFWInj.PF``)."""
    parsed = PointRef.parse(ref)
    parts = parsed.path.split(".")
    if parsed.model is None or len(parts) < 2:
        return "scalar"
    try:
        root = model_def(parsed.model).root
    except UnknownModelError:
        return "scalar"
    outer = root.group(parts[0])
    if outer is None or outer.count is None:
        return "scalar"
    inner: GroupDef | None = outer
    for part in parts[1:-1]:
        inner = inner.group(part) if inner is not None else None
    if inner is not None and inner is not outer and inner.count is not None:
        return "curve"
    return "set_scalar"


def locate(
    profile: DeviceProfile, blocks: dict[int, tuple[int, int]], ref: str, path: str | None = None
) -> Located:
    """Where point ``ref`` is on the device. ``blocks`` maps model id → (ID register
    address, L) as discovered; ``path`` is the indexed path inside the model (defaults to
    the reference's own path, for top-level points)."""
    parsed = PointRef.parse(ref)
    if parsed.model is None:
        reg = profile.vendor_map.register(parsed.path) if profile.vendor_map else None
        if reg is None:
            raise CodecError(ref, "not in the vendor map")
        return Located(ref, reg.address, reg.size, reg.type, reg.access == "RW")
    if parsed.model not in blocks:
        raise CodecError(ref, f"the device has no model {parsed.model}")
    addr, length = blocks[parsed.model]
    lay = model_layout(profile, parsed.model, length)
    indexed = path or parsed.path
    slot = lay.slot(indexed)
    if slot is None:
        raise CodecError(f"{parsed.model}.{indexed}", "no such point in the device's layout")
    sf_address = None
    if slot.sf_path is not None:
        sf_slot = lay.slot(slot.sf_path)
        if sf_slot is None:
            raise CodecError(f"{parsed.model}.{indexed}", f"no SF point {slot.sf_path}")
        sf_address = addr + sf_slot.offset
    return Located(
        f"{parsed.model}.{indexed}",
        addr + slot.offset,
        slot.size,
        slot.pdef.type,
        slot.pdef.writable,
        sf_address,
        slot.sf_fixed,
    )


def _int_to_words(number: int, registers: int) -> list[int]:
    data = (number % (1 << (16 * registers))).to_bytes(2 * registers, "big")
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]


def encode_value(point: Located, value: float, sf: int | None) -> list[int]:
    """The register words for ``value`` (engineering units) at scale factor ``sf``;
    :class:`CodecError` when it cannot be represented exactly enough or does not fit."""
    if not math.isfinite(value):
        raise CodecError(point.ref, f"{value!r} is not a finite number")
    if point.type == "float32":
        if abs(value) > 3.4e38:
            raise CodecError(point.ref, f"{value:g} does not fit float32")
        data = struct.pack(">f", value)
        return [int.from_bytes(data[:2], "big"), int.from_bytes(data[2:], "big")]
    spec = _INT_RANGES.get(point.type)
    if spec is None:
        raise CodecError(point.ref, f"cannot write a {point.type} point")
    registers, lo, hi = spec
    sf = point.sf_fixed if point.sf_address is None else sf
    if point.sf_address is not None and sf is None:
        raise CodecError(point.ref, "its scale factor is not implemented")
    if sf is not None and not -_MAX_SF <= sf <= _MAX_SF:
        raise CodecError(point.ref, f"scale factor {sf} is out of range")
    raw = value / 10.0**sf if sf else value
    rounded = round(raw)  # to the point's resolution; read-back allows half of it
    if not lo <= rounded <= hi:
        raise CodecError(
            point.ref,
            f"{value:g} at SF {sf or 0} is raw {rounded}, outside {point.type} ({lo}..{hi})",
        )
    return _int_to_words(rounded, registers)


def decode_value(point: Located, words: Sequence[int], sf: int | None) -> float | None:
    """The engineering value of a point's words (``None`` = not implemented)."""
    pdef = PointDef(point.ref, point.type, point.size, "R", None, None, False)
    raw = decode_point(pdef, list(words))
    if raw is None or isinstance(raw, str):
        return None
    if point.sf_address is not None:
        if sf is None or not -_MAX_SF <= sf <= _MAX_SF:
            return None
        return float(raw) * 10.0**sf
    if point.sf_fixed:
        return float(raw) * 10.0**point.sf_fixed
    return float(raw)


def decode_sf(words: Sequence[int]) -> int | None:
    """A ``sunssf`` register (``0x8000`` = not implemented)."""
    word = words[0]
    if word == 0x8000:
        return None
    return word - 0x10000 if word & 0x8000 else word


def same_value(expected: float, actual: float | None, sf: int | None) -> bool:
    """Equal within half the resolution of the point's scale factor."""
    if actual is None:
        return False
    # no SF: whole numbers (validated as such) or float32 (rounding only)
    tolerance = 0.5 * 10.0**sf if sf is not None else 1e-6 * max(1.0, abs(expected))
    return abs(expected - actual) <= tolerance + 1e-9 * max(1.0, abs(expected))
