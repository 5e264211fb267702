"""Versioned wire messages (``"v": 1``), one pydantic model per kind in protocol.md.

Units and signs follow :mod:`contracts.metrics`. Buffered kinds (telemetry, event,
cmd_ack, config_state) carry ``stream_id`` + ``seq`` from the agent's one seq space.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal
from uuid import UUID

import orjson
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    field_validator,
)

from contracts.metrics import BY_NAME
from contracts.timeutil import to_wire
from contracts.topics import GATEWAY_ID_RE, Kind, Region

WireTime = Annotated[AwareDatetime, PlainSerializer(to_wire, return_type=str)]
Seq = Annotated[int, Field(ge=1, lt=2**63)]
LocalDeviceId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")]
GatewayId = Annotated[str, Field(pattern=GATEWAY_ID_RE.pattern)]


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    v: Literal[1] = 1

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))


class Quality(StrEnum):
    GOOD = "good"
    SUSPECT = "suspect"
    BAD = "bad"


class StateMsg(_Message):
    """Retained gateway liveness; the LWT is the same with ``online: false``."""

    online: bool
    boot_id: str
    ts: WireTime


class DeviceInfo(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    device: LocalDeviceId
    endpoint: str
    unit_id: int = Field(ge=0, le=255)
    models: list[int]
    manufacturer: str | None = None
    model: str | None = None
    serial: str | None = None
    firmware: str | None = None
    profile: str | None = None
    nameplate: dict[str, float | None] = Field(default_factory=dict)
    status: Literal["online", "asleep", "unreachable", "faulty"] = "online"


class BirthMsg(_Message):
    gateway_id: GatewayId
    region: Region
    agent_version: str
    stream_id: UUID
    boot_id: str
    poll_interval_s: float = Field(gt=0)
    publish_interval_s: float = Field(gt=0)
    devices: list[DeviceInfo]
    config_version: int | None = None
    ts: WireTime


class Reading(BaseModel):
    """One device's sample: SI values under catalog names, ``None`` = not available."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    device: LocalDeviceId
    ts: WireTime
    quality: Quality = Quality.GOOD
    flags: list[str] = Field(default_factory=list)
    values: dict[str, float | None]

    @field_validator("values")
    @classmethod
    def _known_metrics(cls, values: dict[str, float | None]) -> dict[str, float | None]:
        unknown = sorted(set(values) - BY_NAME.keys())
        if unknown:
            raise ValueError(f"unknown metrics {unknown}")
        return values


class TelemetryBatch(_Message):
    stream_id: UUID
    seq: Seq
    readings: list[Reading] = Field(min_length=1)


class EventMsg(_Message):
    stream_id: UUID
    seq: Seq
    ts: WireTime
    event: Annotated[str, Field(min_length=1, max_length=64)]
    severity: Literal["info", "warning", "critical"] = "info"
    device: LocalDeviceId | None = None
    detail: dict[str, Any] = Field(default_factory=dict)


class StoredMsg(_Message):
    """Cloud → gateway: everything of ``stream_id`` up to ``upto_seq`` is committed."""

    stream_id: UUID
    upto_seq: int = Field(ge=0)
    ts: WireTime


class CommandMsg(_Message):
    id: UUID
    gateway_id: GatewayId
    name: str
    device: LocalDeviceId | None = None
    args: dict[str, Any] = Field(default_factory=dict)
    expires_at: WireTime
    issued_by: str
    kid: str | None = None
    sig: str | None = None


class AckStatus(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    DONE = "done"
    FAILED = "failed"
    EXPIRED = "expired"


class CmdAck(_Message):
    stream_id: UUID
    seq: Seq
    id: UUID
    status: AckStatus
    detail: str = ""
    ts: WireTime


class ProfileRef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    region: Region
    version: int = Field(ge=1)


class ConfigDoc(_Message):
    gateway_id: GatewayId
    version: int = Field(ge=1)
    profile: ProfileRef
    devices: dict[str, dict[str, Any]]
    not_after: WireTime
    issued_by: str
    kid: str | None = None
    sig: str | None = None


class ConfigState(_Message):
    stream_id: UUID
    seq: Seq
    version: int | None
    hash: str | None = None
    status: Literal["applied", "failed", "drifted", "pending"] = "applied"
    points: dict[str, dict[str, Any]] = Field(default_factory=dict)
    drift: list[str] = Field(default_factory=list)
    detail: str = ""
    ts: WireTime


class ConfigReq(_Message):
    id: UUID
    user: str
    site_id: int
    profile: ProfileRef
    ts: WireTime


class ConfigResp(_Message):
    id: UUID
    ok: bool
    detail: str = ""
    ts: WireTime


MESSAGE_TYPES: dict[Kind, type[_Message]] = {
    Kind.STATE: StateMsg,
    Kind.BIRTH: BirthMsg,
    Kind.TELEMETRY: TelemetryBatch,
    Kind.EVENT: EventMsg,
    Kind.STORED: StoredMsg,
    Kind.CMD: CommandMsg,
    Kind.CMD_ACK: CmdAck,
    Kind.CONFIG: ConfigDoc,
    Kind.CONFIG_STATE: ConfigState,
    Kind.CONFIG_REQ: ConfigReq,
    Kind.CONFIG_RESP: ConfigResp,
}

BufferedMessage = TelemetryBatch | EventMsg | CmdAck | ConfigState


class MessageError(ValueError):
    """A payload that does not meet the contract; ``reason`` is fit for a dead letter."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def decode(kind: Kind, payload: bytes) -> _Message:
    """Parse and validate one payload of ``kind``; raise :class:`MessageError` with a reason."""
    try:
        raw = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise MessageError(f"not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise MessageError(f"not a JSON object: {type(raw).__name__}")
    if raw.get("v") != 1:
        raise MessageError(f"unsupported schema version v={raw.get('v')!r}")
    try:
        return MESSAGE_TYPES[kind].model_validate(raw)
    except ValidationError as exc:
        raise MessageError(f"invalid {kind.value}: {_summarise(exc)}") from None


def _summarise(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "<root>"
        parts.append(f"{loc}: {err['msg']}")
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


def json_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schema of every message kind, keyed by kind."""
    return {
        kind.value: model.model_json_schema(mode="serialization")
        for kind, model in MESSAGE_TYPES.items()
    }


__all__ = [
    "AckStatus",
    "BirthMsg",
    "BufferedMessage",
    "CmdAck",
    "CommandMsg",
    "ConfigDoc",
    "ConfigReq",
    "ConfigResp",
    "ConfigState",
    "DeviceInfo",
    "EventMsg",
    "MessageError",
    "ProfileRef",
    "Quality",
    "Reading",
    "StateMsg",
    "StoredMsg",
    "TelemetryBatch",
    "WireTime",
    "decode",
    "json_schemas",
]
