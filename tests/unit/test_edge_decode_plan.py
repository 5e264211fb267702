"""The cached decode plan gives exactly what pysunspec2 decodes, for every shipped model.

The reference is pysunspec2's own ``Model(model_id, data=...)`` (what the agent used to
build on every poll): raw values, scaled values and missing scale factors must match
point for point over random registers biased towards the not-implemented sentinels.
"""

from __future__ import annotations

import math
import random
import re
from pathlib import Path
from typing import Any

import pytest
import sunspec2
from sunspec2.device import Model, ModelError, get_model_def

from device_profiles.sunspec_codec import decode_model, decode_plan, registers_to_bytes

MODEL_IDS = sorted(
    int(m.group(1))
    for p in (Path(sunspec2.__file__).parent / "models" / "json").glob("model_*.json")
    if (m := re.fullmatch(r"model_(\d+)\.json", p.name))
)
SENTINELS = (0x8000, 0xFFFF, 0x0000, 0x7FC0)


Decoded = tuple[dict[str, Any], dict[str, Any], list[str]]


def reference(model_id: int, registers: list[int]) -> Decoded:
    """pysunspec2's decode, scaled the way the agent scales (SF missing or garbage → None)."""
    model = Model(model_id, model_len=registers[1], data=registers_to_bytes(registers))
    raw: dict[str, Any] = {}
    for name, point in model.points.items():
        value = point.value
        if isinstance(value, str):
            value = value.rstrip("\x00").strip() or None
        raw[name] = value
    scaled: dict[str, Any] = {}
    missing: list[str] = []
    for name, point in model.points.items():
        value, sf_ref = raw[name], point.pdef.get("sf")
        if sf_ref is None or isinstance(value, str) or value is None:
            scaled[name] = value
            continue
        try:
            sf: Any = int(sf_ref)
        except ValueError:
            sf = raw.get(sf_ref)
        if sf is None or not -10 <= sf <= 10:  # the agent's one deliberate difference
            scaled[name] = None
            missing.append(name)
        elif isinstance(value, float):
            scaled[name] = None if math.isnan(value) else value
        elif sf == 0:
            scaled[name] = int(value)
        else:
            v = float(value) * 10.0 ** int(sf)
            scaled[name] = round(v, -int(sf)) if sf < 0 else v
    return raw, scaled, missing


def _registers(model_id: int, rng: random.Random) -> list[int]:
    """Top-level points only (repeating groups, if any, counted 0)."""
    plan = decode_plan(model_id, 0)
    length = sum(p.size for p in plan.points) - 2
    counts: set[Any] = set()
    stack = list(get_model_def(model_id)["group"].get("groups", []))
    while stack:
        group = stack.pop()
        counts.add(group.get("count"))
        stack.extend(group.get("groups", []))
    zero = {p.offset for p in plan.points if p.name in counts}
    regs = [model_id, length]
    for i in range(length):
        if i + 2 in zero:
            regs.append(0)
            continue
        roll = rng.random()
        if roll < 0.3:
            regs.append(rng.choice(SENTINELS))
        elif roll < 0.5:
            regs.append(rng.randrange(0x20, 0x7F) << 8 | rng.randrange(0x20, 0x7F))  # text
        elif roll < 0.7:
            regs.append(rng.choice((0xFFF6, 0xFFFE, 0xFFFF, 0, 1, 2, 3)))  # small SFs
        else:
            regs.append(rng.randrange(0x10000))
    return regs


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_plan_decodes_like_pysunspec2(model_id: int) -> None:
    has_groups = bool(get_model_def(model_id)["group"].get("groups"))
    rng = random.Random(model_id)
    compared = 0
    for _ in range(40):
        regs = _registers(model_id, rng)
        ours = decode_model(model_id, regs)
        try:
            raw, scaled, missing = reference(model_id, regs)
        except ModelError:
            assert has_groups  # pysunspec2 gives up on random group counts
            continue
        compared += 1
        if has_groups:  # only the top-level points are decoded; L is taken as read
            raw.pop("L"), scaled.pop("L"), ours.raw.pop("L"), ours.scaled.pop("L")
        assert ours.raw.keys() == raw.keys()
        for name in raw:
            assert _same(ours.raw[name], raw[name]), (model_id, name, ours.raw[name], raw[name])
            assert _same(ours.scaled[name], scaled[name]), (model_id, name)
        assert ours.sf_missing == missing
    assert compared >= 5


def test_legacy_common_model_of_65_registers_decodes_like_pysunspec2() -> None:
    regs = [1, 65] + [0x4142] * 65
    ours = decode_model(1, regs)
    raw, _, _ = reference(1, regs)
    assert ours.raw == raw
    assert "Pad" not in ours.raw
    assert ours.error == ""


def test_short_or_mislabelled_models_are_reported_not_guessed() -> None:
    assert decode_model(103, [103, 50, 1, 2]).raw["W"] is None  # data ends early
    assert "not equal to calculated model length" in decode_model(103, [103, 7] + [0] * 7).error
    unknown = decode_model(64999, [64999, 3, 1, 2, 3])
    assert unknown.raw == {}
    assert "64999" in unknown.error


def test_a_plan_is_built_once_per_model_and_length() -> None:
    assert decode_plan(103, 50) is decode_plan(103, 50)
    assert decode_plan(1, 65) is not decode_plan(1, 66)
