"""SunSpec decoding as pure functions over raw registers (no I/O).

Layouts come from pysunspec2's shipped model definitions (``sunspec2.device.Model``);
pysunspec2 maps "not implemented" sentinels to ``None``. Scaling is done here, because
pysunspec2's ``cvalue`` silently returns the raw value when the SF is not implemented:
such a value becomes ``None`` and is reported in :attr:`DecodedModel.sf_missing`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sunspec2.device import Model

SUNS_MARKER = (0x5375, 0x6E53)  # ASCII 'SunS'
SUNS_BASES = (40000, 0, 50000)
END_MODEL_ID = 0xFFFF
MAX_READ = 125


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
    from the same registers); a point whose SF is not implemented becomes ``None``.
    """
    if len(registers) < 2:
        raise SunSpecError(f"model {model_id}: fewer than 2 registers")
    length = int(registers[1])
    model = Model(model_id, model_len=length, data=registers_to_bytes(registers))
    raw: dict[str, Any] = {}
    for name, point in model.points.items():
        value = point.value
        if isinstance(value, str):
            value = value.rstrip("\x00").strip() or None
        raw[name] = value
    scaled: dict[str, float | int | str | None] = {}
    missing: list[str] = []
    for name, point in model.points.items():
        value = raw[name]
        sf_ref = point.pdef.get("sf")
        if sf_ref is None or isinstance(value, str) or value is None:
            scaled[name] = value
            continue
        try:
            sf: Any = int(sf_ref)
        except ValueError:
            sf = raw.get(sf_ref)
        if sf is None:
            scaled[name] = None
            missing.append(name)
            continue
        scaled[name] = _scale(value, sf)
    return DecodedModel(model_id, raw, scaled, missing, model.error_info.strip())
