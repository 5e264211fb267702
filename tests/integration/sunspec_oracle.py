"""An independent SunSpec decoder for tests: walks the ``SunS`` chain and applies scale
factors at hand-typed offsets from the SunSpec model definitions. It shares no code with
the agent's normaliser or the simulator's image builder, so it can judge both."""

from __future__ import annotations

SUNS = (0x5375, 0x6E53)

# offsets after the model's ID and L registers (SunSpec 103 and 203)
INVERTER_103 = {"W": (12, 13), "PhVphA": (8, 11), "Hz": (14, 15), "WH": ((22, 23), 24)}
# SunSpec 701 (DER AC measurements): W at offset 10 of the model, W_SF at 116, minus ID/L
DER_701 = {"W": (8, 114)}
METER_203 = {"W": (16, 20), "Hz": (14, 15), "TotWhExp": ((36, 37), 52), "TotWhImp": ((44, 45), 52)}


def _s16(raw: int) -> int:
    return raw - 0x10000 if raw & 0x8000 else raw


def models(registers: list[int]) -> dict[int, list[int]]:
    """Model id → its body registers (after ID and L), from a image starting at ``SunS``."""
    assert tuple(registers[:2]) == SUNS, "image does not start with SunS"
    found: dict[int, list[int]] = {}
    pos = 2
    while pos + 1 < len(registers) and registers[pos] != 0xFFFF:
        mid, length = registers[pos], registers[pos + 1]
        found[mid] = registers[pos + 2 : pos + 2 + length]
        pos += 2 + length
    return found


def scaled(body: list[int], spec: tuple[object, int]) -> float:
    where, sf_at = spec
    sf = _s16(body[sf_at])
    if isinstance(where, tuple):  # acc32, high word first
        raw = (body[where[0]] << 16) | body[where[1]]
    else:
        assert isinstance(where, int)
        raw = _s16(body[where])
    return raw * 10.0**sf


def inverter_values(registers: list[int]) -> dict[str, float]:
    body = models(registers)[103]
    return {
        "pv_w": scaled(body, INVERTER_103["W"]),
        "pv_l1_v": scaled(body, INVERTER_103["PhVphA"]),
        "pv_hz": scaled(body, INVERTER_103["Hz"]),
        "pv_wh": scaled(body, INVERTER_103["WH"]),
    }


def meter_values(registers: list[int], import_sign: int = 1) -> dict[str, float]:
    body = models(registers)[203]
    return {
        "grid_w": import_sign * scaled(body, METER_203["W"]),
        "grid_hz": scaled(body, METER_203["Hz"]),
        "export_wh": scaled(body, METER_203["TotWhExp"]),
        "import_wh": scaled(body, METER_203["TotWhImp"]),
    }
