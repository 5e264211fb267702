"""Faults and quirks, scripted over simulated time (YAML scenarios) or switched at runtime.

A scenario is a list of faults, each active from ``at_s`` simulated seconds after the
simulation started for ``duration_s`` (``None`` = to the end). ``unit`` limits a fault to
one device (``None`` = every device on the endpoint). Kinds:

===================== ===================================================================
``no_response``        requests get no answer (the client times out)
``exception``          requests get exception ``code`` (default 4, device failure)
``not_implemented``    ``points`` (``"103.W"``) are served as 0x8000 / 0xFFFF / NaN
``scale_factor``       SF point ``point`` (``"103.W_SF"``) served as ``sf``, values rescaled
``night_sleep``        the endpoint refuses TCP connections while the sun is down
``single_connection``  a second TCP connection is closed at once
``slow_response``      every answer is delayed by ``delay_s`` real seconds
``isolator_trip``      the isolator trips (state 2, trip count + 1) when the fault starts
``inverter_fault``     the device reports ``bits`` in ``Evt1`` / ``Alrm`` / ``Evt``
``meter_replaced``     the meter's energy counters restart near zero (1 Wh) when the fault
                       starts; with ``serial``, the new meter reports that serial number
``write_fail``         valid writes to ``point`` fail: ``mode: exception`` answers ``code``
                       (default 4) and applies nothing, ``mode: ignore`` answers OK and
                       applies nothing; only the first ``count`` such writes if given
``grid_voltage``       the grid's voltage is ``v`` volts on every phase (a step; no noise,
                       no midday rise); the site's, so no ``unit``
``grid_frequency``     the grid's frequency is ``hz``; the site's, so no ``unit``
===================== ===================================================================

Grid faults overlap: the one started last is in force, and the plant's own grid returns
when none is. A site refuses a voltage above 150 % of its nominal and a frequency more
than 20 % off its nominal.

``write_fail``'s ``point`` is a point ref: unindexed (``"705.Crv.Pt.V"``: every instance),
indexed (``"705.Crv[2].Pt[0].V"``) or ``"vendor.<register>"``. A write request touching
it fails as a whole; writes the device refuses anyway (exception 3) are not counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from device_profiles.errors import DataFileError

__all__ = [
    "Fault",
    "FaultBoard",
    "GridFrequency",
    "GridVoltage",
    "Scenario",
    "ScenarioError",
    "WriteFail",
    "load_scenario",
    "parse_scenario",
]


class _F(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    at_s: float = Field(default=0.0, ge=0)
    duration_s: float | None = Field(default=None, gt=0)
    unit: int | None = Field(default=None, ge=0, le=255)


class NoResponse(_F):
    kind: Literal["no_response"]


class ExceptionResponse(_F):
    kind: Literal["exception"]
    code: Literal[1, 2, 3, 4, 5, 6, 7, 8, 10, 11] = 4


class NotImplementedValues(_F):
    kind: Literal["not_implemented"]
    points: list[Annotated[str, Field(pattern=r"^\d+\.[A-Za-z_][\w.\[\]]*$")]] = Field(min_length=1)


class ScaleFactorChange(_F):
    kind: Literal["scale_factor"]
    point: Annotated[str, Field(pattern=r"^\d+\.[A-Za-z_][\w.\[\]]*_SF$")]
    sf: int = Field(ge=-10, le=10)


class NightSleep(_F):
    kind: Literal["night_sleep"]


class SingleConnection(_F):
    kind: Literal["single_connection"]


class SlowResponse(_F):
    kind: Literal["slow_response"]
    delay_s: float = Field(gt=0, le=30)


class IsolatorTrip(_F):
    kind: Literal["isolator_trip"]


class InverterFault(_F):
    kind: Literal["inverter_fault"]
    bits: int = Field(default=1, ge=1, lt=2**32)


_Serial = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[\x21-\x7e]+$")]


class MeterReplaced(_F):
    kind: Literal["meter_replaced"]
    #: The new meter's serial number (model 1 ``SN``); None: the old one's.
    serial: _Serial | None = None


class WriteFail(_F):
    kind: Literal["write_fail"]
    point: Annotated[str, Field(pattern=r"^(?:\d+|vendor)\.[A-Za-z_][\w.\[\]]*$")]
    mode: Literal["exception", "ignore"] = "exception"
    code: Literal[1, 2, 3, 4, 5, 6, 7, 8, 10, 11] = 4
    count: int | None = Field(default=None, ge=1)


class GridVoltage(_F):
    kind: Literal["grid_voltage"]
    v: float = Field(ge=0, le=1000, description="volts, every phase")


class GridFrequency(_F):
    kind: Literal["grid_frequency"]
    hz: float = Field(gt=0, le=100)


Fault = Annotated[
    NoResponse
    | ExceptionResponse
    | NotImplementedValues
    | ScaleFactorChange
    | NightSleep
    | SingleConnection
    | SlowResponse
    | IsolatorTrip
    | InverterFault
    | MeterReplaced
    | WriteFail
    | GridVoltage
    | GridFrequency,
    Field(discriminator="kind"),
]
FAULT: TypeAdapter[Any] = TypeAdapter(Fault)


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "scenario"
    description: str = ""
    faults: list[Fault] = Field(default_factory=list)


class ScenarioError(DataFileError):
    """A scenario that must not load: ``file``, ``key`` and ``reason``."""


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in {
            "no_response",
            "exception",
            "not_implemented",
            "scale_factor",
            "night_sleep",
            "single_connection",
            "slow_response",
            "isolator_trip",
            "inverter_fault",
            "meter_replaced",
            "write_fail",
            "grid_voltage",
            "grid_frequency",
        }:
            continue  # the discriminator's branch, not a key of the file
        else:
            out += f".{part}" if out else str(part)
    return out


def parse_scenario(data: Any, file: str = "<scenario>") -> Scenario:
    if not isinstance(data, dict):
        raise ScenarioError(file, "", "a scenario is a mapping")
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        reason = err["msg"]
        if err["type"] == "union_tag_invalid":
            reason = (
                f"unknown fault kind {err['input'].get('kind')!r}"
                if isinstance(err["input"], dict)
                else reason
            )
            loc = (*loc, "kind")
        raise ScenarioError(file, _loc(loc), reason) from None


def load_scenario(path: Path | str) -> Scenario:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScenarioError(str(path), "", f"cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ScenarioError(str(path), "", f"not valid YAML: {exc}") from None
    return parse_scenario(data, str(path))


@dataclass(slots=True)
class _Entry:
    fault: Any
    start_s: float
    end_s: float | None
    fired: bool = False
    uses: int = 0  # writes a write_fail fault has failed so far (for its ``count``)

    def active(self, now_s: float) -> bool:
        return self.start_s <= now_s and (self.end_s is None or now_s < self.end_s)


@dataclass(slots=True)
class FaultBoard:
    """Active faults at a simulated elapsed time (scenario entries plus runtime ones)."""

    entries: list[_Entry] = field(default_factory=list)

    def load(self, scenario: Scenario) -> None:
        for fault in scenario.faults:
            end = None if fault.duration_s is None else fault.at_s + fault.duration_s
            self.entries.append(_Entry(fault, fault.at_s, end))

    def activate(self, fault: Any, now_s: float) -> None:
        """Switch a fault on at runtime (``fault`` may be a dict or a parsed fault)."""
        parsed = FAULT.validate_python(fault) if isinstance(fault, dict) else fault
        end = None if parsed.duration_s is None else now_s + parsed.duration_s
        self.entries.append(_Entry(parsed, now_s, end))

    def clear(self, kind: str | None = None, unit: int | None = None) -> None:
        """Switch runtime and scripted faults off (all, or by kind and/or unit)."""
        self.entries = [
            e
            for e in self.entries
            if not (
                (kind is None or e.fault.kind == kind) and (unit is None or e.fault.unit == unit)
            )
        ]

    def active(self, now_s: float) -> list[Any]:
        return [e.fault for e in self.entries if e.active(now_s)]

    def newly_started(self, now_s: float) -> list[Any]:
        """Active edge-triggered faults not yet carried out (each returned once)."""
        out = []
        for e in self.entries:
            if not e.fired and e.active(now_s):
                e.fired = True
                out.append(e.fault)
        return out

    def latest(self, now_s: float, kind: str) -> Any:
        """The active fault of ``kind`` started last (added last on a tie), or ``None``."""
        found = None
        for e in self.entries:
            later = found is None or e.start_s >= found.start_s
            if e.fault.kind == kind and e.active(now_s) and later:
                found = e
        return None if found is None else found.fault

    def find(self, now_s: float, kind: str, unit: int | None) -> Any:
        """The first active fault of ``kind`` that applies to ``unit``."""
        for fault in self.active(now_s):
            if fault.kind == kind and (fault.unit is None or unit is None or fault.unit == unit):
                return fault
        return None

    def take_write_fail(self, now_s: float, unit: int, refs: frozenset[str]) -> Any:
        """The first active ``write_fail`` for ``unit`` naming one of ``refs`` and not yet
        used up; that write counts against its ``count``."""
        for e in self.entries:
            fault = e.fault
            if fault.kind != "write_fail" or not e.active(now_s) or fault.point not in refs:
                continue
            if fault.unit is not None and fault.unit != unit:
                continue
            if fault.count is not None and e.uses >= fault.count:
                continue
            e.uses += 1
            return fault
        return None
