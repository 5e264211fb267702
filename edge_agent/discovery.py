"""SunSpec discovery and model reads over any register reader (no library imports).

The reader is an ``async (address, count) -> list[int]`` for one unit; it raises
:class:`edge_agent.modbus.ModbusReadError`-like errors carrying a ``reason``. Tests can
pass a reader over an in-memory image.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from device_profiles.sunspec_codec import (
    END_MODEL_ID,
    MAX_READ,
    SUNS_BASES,
    DecodedModel,
    ModelBlock,
    SunSpecError,
    decode_model,
    is_suns,
    read_plan,
)

RegisterReader = Callable[[int, int], Awaitable[list[int]]]
MAX_MODELS = 64


@dataclass(slots=True)
class DeviceMap:
    base: int
    blocks: list[ModelBlock]
    common: DecodedModel | None = None
    static: dict[int, DecodedModel] = field(default_factory=dict)

    @property
    def model_ids(self) -> list[int]:
        return [b.model_id for b in self.blocks]

    def find(self, model_id: int) -> ModelBlock | None:
        return next((b for b in self.blocks if b.model_id == model_id), None)


def _is_exception_response(exc: Exception) -> bool:
    return getattr(exc, "reason", None) == "exception"


async def find_base(read: RegisterReader) -> int:
    """The first of 40000, 0, 50000 holding ``SunS``; :class:`SunSpecError` if none,
    saying what each base answered (a wrong unit id often answers exceptions only)."""
    answers = []
    for base in SUNS_BASES:
        try:
            regs = await read(base, 2)
        except Exception as exc:
            if _is_exception_response(exc):
                answers.append(f"{base}: {getattr(exc, 'detail', exc)}")
                continue  # no registers there: try the next base
            raise
        if is_suns(regs):
            return base
        answers.append(f"{base}: {' '.join(f'{r:04x}' for r in regs)}")
    raise SunSpecError(
        "no 'SunS' marker at 40000, 0 or 50000 (" + "; ".join(answers) + "): "
        "a wrong unit id, or a device without SunSpec (configure its profile)"
    )


async def walk_chain(read: RegisterReader, base: int) -> list[ModelBlock]:
    """Follow model ID/L headers from ``base + 2`` to the end model."""
    blocks: list[ModelBlock] = []
    addr = base + 2
    for _ in range(MAX_MODELS):
        try:
            header = await read(addr, 2)
        except Exception as exc:
            if _is_exception_response(exc) and blocks:
                return blocks  # some devices end the map without an end model
            raise
        model_id, length = header
        if model_id == END_MODEL_ID:
            return blocks
        if model_id == 0 or addr + 2 + length > 0x10000:
            raise SunSpecError(f"garbage model header at {addr}: id {model_id}, length {length}")
        blocks.append(ModelBlock(model_id, addr, length))
        addr += 2 + length
    raise SunSpecError(f"more than {MAX_MODELS} models in the chain")


async def read_model(read: RegisterReader, block: ModelBlock) -> list[int]:
    """All registers of one model, ID and L included (one request when <= 125)."""
    regs: list[int] = []
    for address, count in read_plan(block, MAX_READ):
        regs.extend(await read(address, count))
    return regs


async def discover(read: RegisterReader) -> DeviceMap:
    """Find the SunSpec map of one unit and decode its common model (1)."""
    base = await find_base(read)
    blocks = await walk_chain(read, base)
    device = DeviceMap(base, blocks)
    common = device.find(1)
    if common is not None:
        device.common = decode_model(1, await read_model(read, common))
    return device
