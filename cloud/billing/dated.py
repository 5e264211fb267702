"""Effective-dated versions and the data files that hold them.

Every rate, window and tax of billing is a list of versions, each in force over
``[effective_from, effective_until)`` in the site's local dates (``effective_until``
null: open-ended). A list must be contiguous: no two versions overlap and none leaves a
gap, so any date from the first version on has exactly one answer. Every version says
where it comes from (``source``) and whether someone checked it (``verified``).

Exact numbers: a YAML number such as ``0.15`` is a float, so decimals must be quoted
(``"0.15"``); a float is refused rather than rounded silently.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Self, TypeVar

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

__all__ = [
    "Dated",
    "ExactDecimal",
    "Provenance",
    "TariffDataError",
    "changes_within",
    "check_contiguous",
    "in_force",
    "load_model",
]

M = TypeVar("M", bound=BaseModel)
D = TypeVar("D", bound="Dated")


class TariffDataError(ValueError):
    """A billing data file that cannot be used; says the file, the key and the problem."""

    def __init__(self, file: str, problems: Sequence[tuple[str, str]]) -> None:
        self.file = file
        self.problems = tuple(problems)
        lines = [f"{file}: {key or '(top)'}: {problem}" for key, problem in self.problems]
        super().__init__("\n".join(lines))


def _exact(value: object) -> object:
    if isinstance(value, float):
        raise ValueError(f'{value!r} is a float: quote it ("{value}") to keep it exact')
    return value


#: A decimal that was never a float; finite.
ExactDecimal = Annotated[Decimal, BeforeValidator(_exact), Field(allow_inf_nan=False)]


class Provenance(BaseModel):
    """Where a value comes from: a law, a tariff sheet, a price list. ``verified`` is
    true only once someone checked ``source`` itself; ``note`` says what is doubtful."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(min_length=3, max_length=500)
    verified: bool
    note: str | None = Field(default=None, max_length=2000)


class Dated(Provenance):
    """A version in force on local dates ``effective_from`` ≤ day < ``effective_until``."""

    effective_from: date
    effective_until: date | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.effective_until is not None and self.effective_until <= self.effective_from:
            raise ValueError(
                f"effective_until {self.effective_until} is not after "
                f"effective_from {self.effective_from}"
            )
        return self

    def covers(self, day: date) -> bool:
        return self.effective_from <= day and (
            self.effective_until is None or day < self.effective_until
        )


def check_contiguous(versions: Sequence[Dated]) -> None:
    """Refuse (``ValueError`` naming the versions, counted from 0 as listed) an empty
    list, versions out of order, an overlap, a gap, or an open end before the last."""
    if not versions:
        raise ValueError("no versions")
    for index in range(1, len(versions)):
        before, after = versions[index - 1], versions[index]
        if before.effective_until is None:
            raise ValueError(
                f"version {index - 1} is open-ended (no effective_until) "
                f"but version {index} follows it"
            )
        if after.effective_from < before.effective_until:
            raise ValueError(
                f"version {index} (from {after.effective_from}) overlaps version "
                f"{index - 1} (until {before.effective_until})"
            )
        if after.effective_from > before.effective_until:
            raise ValueError(
                f"gap between version {index - 1} (until {before.effective_until}) and "
                f"version {index} (from {after.effective_from})"
            )


def in_force(versions: Sequence[D], day: date) -> D | None:
    """The version of a contiguous list in force on ``day``; None before the first one
    or after a closed last one."""
    index = bisect.bisect_right([v.effective_from for v in versions], day) - 1
    if index < 0 or not versions[index].covers(day):
        return None
    return versions[index]


def changes_within(versions: Iterable[Dated], first: date, last: date) -> set[date]:
    """Days in ``(first, last]`` on which a version starts or ends: where a line that
    runs from ``first`` to ``last`` must be split."""
    found: set[date] = set()
    for version in versions:
        for edge in (version.effective_from, version.effective_until):
            if edge is not None and first < edge <= last:
                found.add(edge)
    return found


def _key(loc: Sequence[int | str]) -> str:
    key = ""
    for part in loc:
        if isinstance(part, int):
            key += f"[{part}]"
        elif part == "[key]":  # pydantic's mark for a mapping's key itself
            key += " (the key)"
        else:
            key += f".{part}" if key else part
    return key


def _problem(message: str) -> str:
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            return message[len(prefix) :]
    return message


def load_model(
    model: type[M], path: Path, *, name: str, context: Mapping[str, Any] | None = None
) -> M:
    """Read the YAML file ``path`` into ``model``; every problem (unreadable file, bad
    YAML, invalid field) becomes one :class:`TariffDataError` naming ``name`` (the file
    as the data directory calls it, e.g. ``plans/au.yaml``) and the key."""
    try:
        data = yaml.safe_load(path.read_text("utf-8"))
    except OSError as error:
        raise TariffDataError(name, [("", f"cannot read: {error.strerror}")]) from error
    except yaml.YAMLError as error:
        raise TariffDataError(name, [("", f"not YAML: {error}")]) from error
    try:
        return model.model_validate(data, context=dict(context or {}))
    except ValidationError as error:
        problems = [(_key(e["loc"]), _problem(e["msg"])) for e in error.errors()]
        raise TariffDataError(name, problems) from None
