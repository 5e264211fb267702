"""Vendor register maps (``device_profiles`` ``vendor_map``): what to read and how to
decode it, as pure functions over raw registers (no I/O).

Registers are 0-based holding registers, 32-bit values high word first. Vendor maps
state no "not implemented" sentinels, so every value decodes to a number.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from device_profiles.schema import VendorMap, VendorRegister

MAX_READ = 125


def read_spans(
    registers: Iterable[VendorRegister], max_count: int = MAX_READ
) -> list[tuple[int, int]]:
    """``(address, count)`` requests covering ``registers``: one contiguous request per
    run that fits in ``max_count`` (gaps inside a run are read too, so a 32-bit value is
    never split across requests)."""
    spans: list[tuple[int, int]] = []
    for reg in sorted(registers, key=lambda r: r.address):
        end = reg.address + reg.size
        if spans and end - spans[-1][0] <= max_count:
            start, count = spans[-1]
            spans[-1] = (start, max(count, end - start))
        else:
            spans.append((reg.address, reg.size))
    return spans


def decode_register(reg: VendorRegister, words: Sequence[int]) -> int:
    """One register's value from its ``reg.size`` words."""
    value = words[0] if reg.size == 1 else words[0] << 16 | words[1]
    bits = 16 * reg.size
    if reg.type.startswith("int") and value >> (bits - 1):
        value -= 1 << bits
    return value


def decode_registers(
    vmap: VendorMap, names: Iterable[str], blocks: Mapping[int, Sequence[int]]
) -> dict[str, int]:
    """Values of the named registers from ``blocks`` (start address → words read)."""
    out: dict[str, int] = {}
    for name in names:
        reg = vmap.register(name)
        if reg is None:
            raise KeyError(f"vendor map has no register {name!r}")
        for start, words in blocks.items():
            offset = reg.address - start
            if offset >= 0 and offset + reg.size <= len(words):
                out[name] = decode_register(reg, words[offset : offset + reg.size])
                break
        else:
            raise KeyError(f"register {name!r} at {reg.address} was not read")
    return out
