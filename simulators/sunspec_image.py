"""SunSpec register images built from pysunspec2's shipped model definitions.

No offsets are typed here: each model's layout comes from ``sunspec2.device.Model``,
so an image is ``'SunS'`` + every model (ID, L, points) + the end model ``0xFFFF 0``.
Point values are *raw* register values (scale factors applied by the caller); a point
left out is encoded as its "not implemented" sentinel.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sunspec2.device import Model

SUNS_BASE = 40000
SUNS_MARKER = (0x5375, 0x6E53)  # ASCII 'SunS'
END_MODEL = (0xFFFF, 0x0000)

RawValue = int | str | None


@dataclass(frozen=True, slots=True)
class ModelBlock:
    """Where one model sits in an image: ``addr`` is its ID register, ``length`` is L."""

    model_id: int
    addr: int
    length: int


def model_registers(model_id: int, values: Mapping[str, RawValue]) -> list[int]:
    """Registers of one model (ID and L included) with the given raw point values."""
    model = Model(model_id)
    if model.error_info:
        raise ValueError(f"model {model_id}: {model.error_info.strip()}")
    for name, value in values.items():
        point = model.points.get(name)
        if point is None:
            raise KeyError(f"model {model_id} has no point {name!r}")
        point.value = value
    data = model.get_mb()
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]


def model_values(model_id: int, registers: list[int]) -> dict[str, RawValue]:
    """Raw point values of one model's registers (ID first); sentinels read as ``None``."""
    data = b"".join(r.to_bytes(2, "big") for r in registers)
    model = Model(model_id, data=data)
    return {name: point.value for name, point in model.points.items()}


def point_offsets(model_id: int) -> dict[str, tuple[int, int]]:
    """``{point: (offset from the model's ID register, register count)}``."""
    model = Model(model_id)
    return {name: (p.offset, p.len) for name, p in model.points.items()}


def device_image(
    models: Sequence[tuple[int, Mapping[str, RawValue]]], base: int = SUNS_BASE
) -> tuple[list[int], list[ModelBlock]]:
    """A complete SunSpec image starting at ``base`` and the blocks it contains."""
    regs: list[int] = list(SUNS_MARKER)
    blocks: list[ModelBlock] = []
    for model_id, values in models:
        model_regs = model_registers(model_id, values)
        blocks.append(ModelBlock(model_id, base + len(regs), model_regs[1]))
        regs.extend(model_regs)
    regs.extend(END_MODEL)
    return regs, blocks
