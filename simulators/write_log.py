"""The simulator's own record of every Modbus write that reached a device.

Safety tests of the control path assert on this record, never on what the agent says it
wrote. Points are named by *point ref*: ``"<model>.<indexed path>"`` (``"704.WMaxLimPct"``,
``"705.Crv[2].Pt[0].V"``) or ``"vendor.<register>"``; profiles and faults may also use
the unindexed form (``"705.Crv.Pt.V"``), which stands for every instance.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

__all__ = [
    "Outcome",
    "PointValue",
    "WriteFailure",
    "WriteRecord",
    "match_refs",
    "parse_ref",
    "unindexed",
]

Outcome = Literal["applied", "refused", "faulted"]
PointValue = float | int | None

_REF = re.compile(r"^(?:(\d+)|vendor)\.([A-Za-z_][\w.\[\]]*)$")
_INDEX = re.compile(r"\[\d+\]")


@dataclass(frozen=True, slots=True)
class WriteRecord:
    """One write request as the device saw it.

    ``outcome``: ``applied`` (accepted; read-back shows it once the device's write
    latency has passed), ``refused`` (the device itself answered exception
    ``exception_code``) or ``faulted`` (a fault injection answered ``exception_code``, or
    answered OK without applying when ``exception_code`` is ``None``). ``points`` is what
    the write *asked for*, decoded with the scale factors served at the time; ``None``
    where a value cannot be decoded (part of a point, a sentinel, a string).
    """

    ts: datetime  # UTC wall clock when the request reached the device
    unit_id: int
    function_code: int
    address: int
    registers: tuple[int, ...]
    outcome: Outcome
    points: dict[str, PointValue] = field(hash=False)
    exception_code: int | None = None


@dataclass(frozen=True, slots=True)
class WriteFailure:
    """What a ``write_fail`` fault makes the device do with a write it would accept."""

    mode: Literal["exception", "ignore"]
    code: int = 4


def parse_ref(ref: str) -> tuple[int | None, str]:
    """``(model, path)`` of a point ref; ``model`` is ``None`` for a vendor register."""
    match = _REF.match(ref)
    if match is None:
        raise ValueError(f"point reference {ref!r} is not '<model>.<point>' or 'vendor.<name>'")
    return (int(match.group(1)) if match.group(1) else None), match.group(2)


def unindexed(ref: str) -> str:
    """``"705.Crv[2].Pt[0].V"`` → ``"705.Crv.Pt.V"`` (the form profiles use)."""
    return _INDEX.sub("", ref)


def match_refs(refs: Iterable[str]) -> frozenset[str]:
    """Every name a fault may use for these refs: indexed and unindexed."""
    refs = list(refs)
    return frozenset(refs) | {unindexed(r) for r in refs}
