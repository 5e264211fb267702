"""The catalogue of gateway events: every event the agent sends, with one detail model each.

The wire envelope is :class:`contracts.messages.EventMsg` (``"v": 1``, unchanged): its
``event`` is an :class:`EventType` value and its ``detail`` the event's detail model
serialised (:meth:`EventDetail.wire`). The agent builds a :class:`GatewayEvent` from the
models and turns it into an :class:`~contracts.messages.EventMsg` once the buffer gives
it a seq; ingest maps by :class:`EventType` (:func:`event_type`, :func:`device_status`)
and parses details with :func:`parse_detail`.

Detail models ignore fields they do not know (a newer agent may add some under
``"v": 1``) but type the ones they name. ``data_dropped`` has one shape
(:class:`DataDropped`); the two shapes older agents sent — the buffer's
(``seq_ranges``, ``batches``, ``bytes``, ``from``, ``to``) and the poller's
(``readings``, ``from``, ``to``, no seqs) — are both subsets of it, so they parse to the
same model with the defaults filling the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    ValidationError,
    model_validator,
)

from contracts.messages import (
    INT4_MAX,
    INT8_MAX,
    DeviceStatus,
    EventMsg,
    LocalDeviceId,
    MessageError,
    Severity,
    Text,
    WireTime,
    summarise_validation_error,
)

__all__ = [
    "CATALOGUE",
    "STATE_TRANSITION_EVENTS",
    "BufferCorrupt",
    "ClockJumped",
    "ConfigDrift",
    "DataDropped",
    "DeviceBack",
    "DeviceDown",
    "DeviceModelsChanged",
    "DriftedSetting",
    "DropReason",
    "EventDetail",
    "EventSpec",
    "EventType",
    "GatewayEvent",
    "StateTransition",
    "detail_schemas",
    "device_status",
    "event_type",
    "parse_detail",
]


class EventType(StrEnum):
    """Every event the agent sends; the value is the wire name (``EventMsg.event``)."""

    DEVICE_REACHABLE = "device_reachable"
    DEVICE_ASLEEP = "device_asleep"
    DEVICE_UNREACHABLE = "device_unreachable"
    DEVICE_FAULTY = "device_faulty"
    DEVICE_MODELS_CHANGED = "device_models_changed"
    ISOLATOR_OPENED = "isolator_opened"
    ISOLATOR_CLOSED = "isolator_closed"
    ISOLATOR_TRIPPED = "isolator_tripped"
    DATA_DROPPED = "data_dropped"
    BUFFER_CORRUPT = "buffer_corrupt"
    CLOCK_JUMP = "clock_jump"
    CONFIG_DRIFT = "config_drift"


UnitId = Annotated[int, Field(ge=0, le=255)]
#: A seq as a gateway reports it (strict: ``3.0`` or ``true`` is no seq).
ReportedSeq = Annotated[int, Field(strict=True, ge=0, le=INT8_MAX)]
Count = Annotated[int, Field(ge=0, le=INT8_MAX)]


class EventDetail(BaseModel):
    """Base of every detail model: unknown fields ignored, known ones typed."""

    model_config = ConfigDict(
        extra="ignore",
        frozen=True,
        allow_inf_nan=False,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )

    def wire(self) -> dict[str, Any]:
        """The ``detail`` object as it goes on the wire (JSON types, wire names)."""
        return self.model_dump(mode="json")


class DeviceBack(EventDetail):
    """``device_reachable``: a device answers again (``was``: its status before)."""

    endpoint: Text
    unit_id: UnitId
    was: DeviceStatus


class DeviceDown(EventDetail):
    """``device_asleep`` / ``device_unreachable`` / ``device_faulty``: why it stopped."""

    endpoint: Text
    unit_id: UnitId
    error: Text = ""


class DeviceModelsChanged(EventDetail):
    """``device_models_changed``: the SunSpec chain or firmware changed (birth re-sent)."""

    endpoint: Text
    unit_id: UnitId
    old_models: list[Annotated[int, Field(ge=0, le=65_535)]]
    new_models: list[Annotated[int, Field(ge=0, le=65_535)]]
    old_firmware: Text | None = None
    new_firmware: Text | None = None


class StateTransition(EventDetail):
    """``isolator_opened`` / ``isolator_closed`` / ``isolator_tripped``: the reading that
    showed the new state — ``metric`` (from the device profile's ``state_events``) was
    ``value`` at ``ts`` and ``previous`` in the device's reading before."""

    metric: Text
    value: float
    previous: float | None = None
    ts: WireTime


class DropReason(StrEnum):
    BUFFER_FULL = "buffer full"
    DISK_FULL = "disk full"
    READING_QUEUE_FULL = "reading queue full"
    #: A reading (or a buffered message) larger than the broker's packet limit: it could
    #: never be delivered, so it was dead-ended rather than resent forever.
    TOO_LARGE = "too large"


class DataDropped(EventDetail):
    """``data_dropped``: telemetry lost at the gateway, and how much.

    ``seq_ranges`` are inclusive ``[first, last]`` seqs of batches dropped from the
    buffer (they will never come: ingest counts them as accounted for); ``batches``
    counts dropped batches including those dropped before a seq was allocated;
    ``readings`` counts single readings lost before batching, where known (None: not
    counted); ``bytes`` the payload bytes freed; ``from``/``to`` the time span of the
    lost readings (None: unknown).
    """

    #: A :class:`DropReason`; any other text is kept (a newer agent's reason must not
    #: stop ingest from accounting for the seqs it names).
    reason: DropReason | Text | None = Field(default=None, union_mode="left_to_right")
    seq_ranges: list[tuple[ReportedSeq, ReportedSeq]] = Field(default_factory=list)
    batches: Count = 0
    readings: Count | None = None
    bytes: Count = 0
    from_: WireTime | None = Field(default=None, alias="from")
    to: WireTime | None = None


class BufferCorrupt(EventDetail):
    """``buffer_corrupt``: the buffer file failed its integrity check and was moved aside;
    a new stream starts."""

    moved_to: Text
    reason: Text
    new_stream_id: UUID


class ClockJumped(EventDetail):
    """``clock_jump``: the wall clock moved by ``delta_s`` seconds (positive: forward)
    against the monotonic clock, from wall time ``from`` to ``to``."""

    delta_s: float
    from_: WireTime = Field(alias="from")
    to: WireTime


class DriftedSetting(EventDetail):
    """One setting read back different from the applied config (engineering units)."""

    device: LocalDeviceId
    setting: Text
    expected: float | list[Any]
    actual: Text


class ConfigDrift(EventDetail):
    """``config_drift``: periodic read-back found settings off config ``version``."""

    version: Annotated[int, Field(ge=0, le=INT4_MAX)] | None
    drift: list[DriftedSetting]


@dataclass(frozen=True, slots=True)
class EventSpec:
    """What an event type carries and how much it matters by default."""

    detail: type[EventDetail]
    severity: Severity


CATALOGUE: dict[EventType, EventSpec] = {
    EventType.DEVICE_REACHABLE: EventSpec(DeviceBack, "info"),
    EventType.DEVICE_ASLEEP: EventSpec(DeviceDown, "info"),  # sleep at night is no alarm
    EventType.DEVICE_UNREACHABLE: EventSpec(DeviceDown, "warning"),
    EventType.DEVICE_FAULTY: EventSpec(DeviceDown, "warning"),
    EventType.DEVICE_MODELS_CHANGED: EventSpec(DeviceModelsChanged, "warning"),
    EventType.ISOLATOR_OPENED: EventSpec(StateTransition, "warning"),  # the site is cut off
    EventType.ISOLATOR_CLOSED: EventSpec(StateTransition, "info"),
    EventType.ISOLATOR_TRIPPED: EventSpec(StateTransition, "critical"),
    EventType.DATA_DROPPED: EventSpec(DataDropped, "warning"),
    EventType.BUFFER_CORRUPT: EventSpec(BufferCorrupt, "critical"),
    EventType.CLOCK_JUMP: EventSpec(ClockJumped, "warning"),
    EventType.CONFIG_DRIFT: EventSpec(ConfigDrift, "warning"),
}

#: Events a device profile's ``state_events`` may raise (detail :class:`StateTransition`).
STATE_TRANSITION_EVENTS = frozenset(
    t for t, spec in CATALOGUE.items() if spec.detail is StateTransition
)

#: What each device event says of the device's status.
_DEVICE_STATUS: dict[EventType, DeviceStatus] = {
    EventType.DEVICE_REACHABLE: "online",
    EventType.DEVICE_ASLEEP: "asleep",
    EventType.DEVICE_UNREACHABLE: "unreachable",
    EventType.DEVICE_FAULTY: "faulty",
}


class GatewayEvent(BaseModel):
    """An event the agent raises, before the buffer gives it a seq.

    ``detail`` must be the model :data:`CATALOGUE` names for ``type``; ``severity``
    defaults to the catalogue's.
    """

    model_config = ConfigDict(frozen=True)

    type: EventType
    detail: SerializeAsAny[EventDetail]  # dumps the concrete model's fields
    device: LocalDeviceId | None = None
    severity: Severity | None = None

    @model_validator(mode="after")
    def _detail_fits(self) -> GatewayEvent:
        want = CATALOGUE[self.type].detail
        if type(self.detail) is not want:
            raise ValueError(
                f"{self.type.value} carries {want.__name__}, not {type(self.detail).__name__}"
            )
        return self

    @property
    def effective_severity(self) -> Severity:
        return self.severity or CATALOGUE[self.type].severity

    def message(self, stream_id: UUID, seq: int, ts: datetime) -> EventMsg:
        """The wire message once the buffer allocated ``seq``; ``ts`` is when it happened."""
        return EventMsg(
            stream_id=stream_id,
            seq=seq,
            ts=ts,
            event=self.type.value,
            severity=self.effective_severity,
            device=self.device,
            detail=self.detail.wire(),
        )


def event_type(name: str) -> EventType | None:
    """The catalogue's type of a wire event name; None for a name it does not know."""
    try:
        return EventType(name)
    except ValueError:
        return None


def device_status(name: str) -> DeviceStatus | None:
    """The device status a ``device_*`` event reports; None for any other event."""
    known = event_type(name)
    return None if known is None else _DEVICE_STATUS.get(known)


def parse_detail(event: EventMsg) -> EventDetail | None:
    """The typed detail of a catalogue event; None for an event name not in it.

    Raises :class:`~contracts.messages.MessageError` when a known event's detail does
    not fit its model (the reason is fit for a log line or a dead letter).
    """
    known = event_type(event.event)
    if known is None:
        return None
    model = CATALOGUE[known].detail
    try:
        return model.model_validate(event.detail)
    except ValidationError as exc:
        raise MessageError(
            f"invalid {known.value} detail: {summarise_validation_error(exc)}"
        ) from None


def detail_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schema of every event's detail, keyed by event name."""
    out: dict[str, dict[str, Any]] = {}
    for name, spec in CATALOGUE.items():
        schema = spec.detail.model_json_schema(mode="serialization")
        schema["title"] = name.value
        schema["x-severity"] = spec.severity
        out[name.value] = schema
    return out
