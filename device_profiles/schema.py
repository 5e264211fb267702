"""The device-profile schema: what a device type *is*, as data.

A profile names the SunSpec models a device implements (in chain order) or a vendor
register map, maps points to the contract's metric catalog (:mod:`contracts.metrics`),
states a meter's sign convention, lists the writable settings with hard limits, the
named commands a device supports, and the events a change of its state metric raises
(``state_events``: an isolator's ``isolator_opened`` …). Point references are strings:

* ``"<model>.<point>"`` for SunSpec, with dotted group paths inside repeating groups
  (``"705.Crv.Pt.V"``), and
* ``"vendor.<register>"`` for a vendor map register.

Limits are numbers or ``"nameplate.<key>"`` (a value of the profile's nameplate).
This module only checks shape; :mod:`device_profiles.loader` checks references.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts.events import STATE_TRANSITION_EVENTS, EventType

__all__ = [
    "Command",
    "CommandArg",
    "CommandCondition",
    "CommandEffect",
    "CommandWrite",
    "DeviceKind",
    "DeviceProfile",
    "Limit",
    "MetricMapping",
    "PointRef",
    "Setting",
    "StateEvent",
    "StateEvents",
    "VendorMap",
    "VendorRegister",
]

Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]*$", max_length=64)]
DeviceKind = Literal["inverter", "hybrid_inverter", "battery", "meter", "isolator"]
MeterSign = Literal["import_positive", "export_positive"]
Limit = float | Annotated[str, Field(pattern=r"^nameplate\.[a-z][a-z0-9_]*$")]
_POINT_REF = re.compile(
    r"^(?:(\d+)|vendor)\.([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)$"
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PointRef(_Strict):
    """A parsed point reference: ``model`` is ``None`` for a vendor register."""

    model: int | None
    path: str

    @classmethod
    def parse(cls, ref: str) -> PointRef:
        match = _POINT_REF.match(ref)
        if match is None:
            raise ValueError(
                f"point reference {ref!r} is not '<model>.<point>' or 'vendor.<register>'"
            )
        model = int(match.group(1)) if match.group(1) else None
        return cls(model=model, path=match.group(2))

    def __str__(self) -> str:
        return f"{'vendor' if self.model is None else self.model}.{self.path}"


def _check_ref(ref: str) -> str:
    PointRef.parse(ref)
    return ref


Ref = Annotated[str, Field(min_length=3)]


class VendorRegister(_Strict):
    """One register (or register pair) of a vendor map; ``address`` is 0-based."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
    address: int = Field(ge=0, le=65535)
    type: Literal["uint16", "int16", "uint32", "int32"]
    access: Literal["R", "RW"] = "R"
    unit: str = ""
    symbols: dict[str, int] = Field(default_factory=dict)
    description: str = ""

    @property
    def size(self) -> int:
        return 1 if self.type.endswith("16") else 2


class VendorMap(_Strict):
    """Registers of a device without SunSpec support for the data, high word first."""

    description: str = ""
    registers: list[VendorRegister] = Field(min_length=1)

    @model_validator(mode="after")
    def _no_overlap(self) -> VendorMap:
        names = [r.name for r in self.registers]
        if len(set(names)) != len(names):
            raise ValueError("register names must be unique")
        used: dict[int, str] = {}
        for reg in self.registers:
            for addr in range(reg.address, reg.address + reg.size):
                if addr in used:
                    raise ValueError(f"register {reg.name} overlaps {used[addr]} at {addr}")
                used[addr] = reg.name
        return self

    def register(self, name: str) -> VendorRegister | None:
        return next((r for r in self.registers if r.name == name), None)


class MetricMapping(_Strict):
    """A catalog metric read from one point; ``sign`` turns the device's sign into ours.

    ``codes`` translates an enumerated point into the metric's codes (device value →
    catalog code) where the two enumerations differ: SunSpec 701 ``InvSt`` counts
    SLEEPING as 1, the catalog's ``pv_state_code`` (101-113 ``St``) as 2. The loader
    checks it names every symbol of the point, so a value it lacks is out of spec."""

    metric: str
    source: Ref
    sign: Literal[1, -1] = 1
    scale: float = 1.0
    codes: dict[int, int] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _ref(self) -> MetricMapping:
        _check_ref(self.source)
        if self.codes is not None and (self.sign != 1 or self.scale != 1.0):
            raise ValueError("codes translate an enumeration: no sign or scale with them")
        return self


class Setting(_Strict):
    """A writable setting with hard limits, in engineering units (after scale factors)."""

    name: Name
    point: Ref
    unit: str = ""
    min: Limit
    max: Limit
    source: Literal["standard", "nameplate", "vendor"] = "standard"
    description: str = ""

    @model_validator(mode="after")
    def _ref(self) -> Setting:
        _check_ref(self.point)
        if isinstance(self.min, float) and isinstance(self.max, float) and self.min > self.max:
            raise ValueError(f"min {self.min} > max {self.max}")
        return self


class CommandArg(_Strict):
    name: Name
    setting: Name  # the setting whose point and limits the argument obeys


class CommandWrite(_Strict):
    """One write of a command: a fixed ``value`` or the value of argument ``arg``."""

    point: Ref
    value: float | None = None
    arg: Name | None = None

    @model_validator(mode="after")
    def _one_source(self) -> CommandWrite:
        _check_ref(self.point)
        if (self.value is None) == (self.arg is None):
            raise ValueError("give exactly one of 'value' and 'arg'")
        return self


class CommandEffect(_Strict):
    """What the device must show after a command whose written point resets itself
    (an isolator's ``command`` register): ``point`` reads ``value``."""

    point: Ref
    value: float

    @model_validator(mode="after")
    def _ref(self) -> CommandEffect:
        _check_ref(self.point)
        return self


class CommandCondition(_Strict):
    """A state a command applies in: ``point`` reads one of ``values`` (an isolator's
    ``reset_trip`` only while ``vendor.state`` is 2, tripped). Checked before any write."""

    point: Ref
    values: list[float] = Field(min_length=1)

    @model_validator(mode="after")
    def _ref(self) -> CommandCondition:
        _check_ref(self.point)
        return self


class Command(_Strict):
    name: Name
    description: str = ""
    args: list[CommandArg] = Field(default_factory=list)
    writes: list[CommandWrite] = Field(min_length=1)
    #: Read back after the writes (bounded wait): a request point tells nothing itself.
    #: Read before them too: when every effect already shows, nothing is written.
    expect: list[CommandEffect] = Field(default_factory=list)
    #: Every condition must hold before the writes, else the command does not apply.
    requires: list[CommandCondition] = Field(default_factory=list)


class StateEvent(_Strict):
    """A value of the state metric and the event raised when the device enters it."""

    value: float
    event: EventType

    @model_validator(mode="after")
    def _a_transition(self) -> StateEvent:
        if self.event not in STATE_TRANSITION_EVENTS:
            allowed = ", ".join(sorted(e.value for e in STATE_TRANSITION_EVENTS))
            raise ValueError(f"{self.event.value} is no state event (one of: {allowed})")
        return self


class StateEvents(_Strict):
    """Events raised when a device's state metric changes (``isolator_opened`` …):
    which catalog metric holds the state and which value means which event."""

    metric: str
    events: list[StateEvent] = Field(min_length=1)

    @model_validator(mode="after")
    def _values_unique(self) -> StateEvents:
        values = [e.value for e in self.events]
        if len(set(values)) != len(values):
            raise ValueError("each state value may raise one event only")
        return self

    def event_for(self, value: float) -> EventType | None:
        """The event entering state ``value`` raises; None for a value not listed."""
        return next((e.event for e in self.events if e.value == value), None)


class DeviceProfile(_Strict):
    """A device type. ``models`` is the SunSpec chain in order (model 1 first)."""

    name: Name
    kind: DeviceKind
    description: str = ""
    manufacturer: str
    model: str
    models: list[int] = Field(default_factory=list)
    group_counts: dict[int, dict[str, int]] = Field(
        default_factory=dict,
        description="repeating-group sizes per model, by count point (NCrv, NPt, N) "
        "or group name for legacy count-0 groups (curve, module)",
    )
    vendor_map: VendorMap | None = None
    nameplate: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")], float] = Field(
        default_factory=dict
    )
    meter_sign: MeterSign | None = None
    metrics: list[MetricMapping] = Field(default_factory=list)
    settings: list[Setting] = Field(default_factory=list)
    commands: list[Command] = Field(default_factory=list)
    state_events: StateEvents | None = None

    def setting(self, name: str) -> Setting | None:
        return next((s for s in self.settings if s.name == name), None)

    def command(self, name: str) -> Command | None:
        return next((c for c in self.commands if c.name == name), None)

    def setting_for(self, ref: str) -> Setting | None:
        """The setting that governs point ``ref`` (``"123.WMaxLimPct"``), if any."""
        return next((s for s in self.settings if s.point == ref), None)

    def limit(self, value: float | str) -> float:
        """A limit in engineering units (resolving ``nameplate.<key>``)."""
        if isinstance(value, str):
            return self.nameplate[value.removeprefix("nameplate.")]
        return value
