"""SunSpec model definitions as typed, immutable trees (the only pysunspec2 import here).

pysunspec2 ships the normative model JSON; this module reads it once per model and
exposes it as :class:`ModelDef` → :class:`GroupDef` → :class:`PointDef`. A point inside
a repeating group is named by its dotted group path without indices, e.g. model 705
``Crv.Pt.V``; top-level points are plain names (``WMaxLimPct``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from sunspec2.device import get_model_def
from sunspec2.mdef import ModelDefinitionError

__all__ = [
    "GroupDef",
    "ModelDef",
    "PointDef",
    "UnknownModelError",
    "model_def",
]


class UnknownModelError(KeyError):
    """The model id has no definition in pysunspec2."""


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
    sf = raw.get("sf")
    return PointDef(
        name=str(raw["name"]),
        type=str(raw["type"]),
        size=int(raw["size"]),
        access=str(raw.get("access", "R")),
        sf=sf,
        units=raw.get("units"),
        mandatory=raw.get("mandatory") == "M",
        symbols=symbols,
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
