"""Versioned wire messages (``"v": 1``), one pydantic model per kind in protocol.md.

Units and signs follow :mod:`contracts.metrics`. Buffered kinds (telemetry, event,
cmd_ack, config_state) carry ``stream_id`` + ``seq`` from the agent's one seq space.

Every message that passes validation must also fit the cloud's columns, or ingest could
only dead-letter it after a failed transaction: integers are bounded to the PostgreSQL
type they land in (``int4``/``int8``), and no string — nor any string inside a free-form
JSON object — may hold U+0000, which ``text`` and ``jsonb`` reject.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal
from uuid import UUID

import orjson
from pydantic import (
    AfterValidator,
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

_METRIC_NAMES = frozenset(BY_NAME)
#: Largest value of PostgreSQL ``int4`` / ``int8`` columns.
INT4_MAX = 2**31 - 1
INT8_MAX = 2**63 - 1


def _reject_nul(value: Any) -> Any:
    """``value`` unchanged unless a string in it (keys included, at any depth) has U+0000."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise ValueError("must not contain the NUL character (U+0000)")
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return value


WireTime = Annotated[AwareDatetime, PlainSerializer(to_wire, return_type=str)]
Seq = Annotated[int, Field(ge=1, le=INT8_MAX)]
#: An ``int4`` column's non-negative range (versions, ids).
Int4 = Annotated[int, Field(ge=0, le=INT4_MAX)]
#: Any string: everything but U+0000 (PostgreSQL ``text`` cannot store it).
Text = Annotated[str, Field(pattern=r"^[^\x00]*$")]
#: Checks every key and string inside a container (keeps its JSON Schema as it was).
NulFree = AfterValidator(_reject_nul)
#: A free-form JSON object stored as ``jsonb``: no U+0000 in any key or string inside.
JsonObject = Annotated[dict[str, Any], NulFree]
LocalDeviceId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")]
GatewayId = Annotated[str, Field(pattern=GATEWAY_ID_RE.pattern)]


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    v: Literal[1] = 1

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))


#: How much an event matters: ``info`` (a state change), ``warning``, ``critical``.
Severity = Literal["info", "warning", "critical"]
#: What the agent reports of a device (``birth``; the ``device_*`` events change it).
DeviceStatus = Literal["online", "asleep", "unreachable", "faulty"]


class Quality(StrEnum):
    GOOD = "good"
    SUSPECT = "suspect"
    BAD = "bad"


class StateMsg(_Message):
    """Retained gateway liveness; the LWT is the same with ``online: false``."""

    online: bool
    boot_id: Text
    ts: WireTime


class DeviceInfo(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    device: LocalDeviceId
    endpoint: Text
    unit_id: int = Field(ge=0, le=255)
    models: list[Annotated[int, Field(ge=0, le=65_535)]]
    manufacturer: Text | None = None
    model: Text | None = None
    serial: Text | None = None
    firmware: Text | None = None
    profile: Text | None = None
    nameplate: Annotated[dict[str, float | None], NulFree] = Field(default_factory=dict)
    status: DeviceStatus = "online"


class BirthMsg(_Message):
    gateway_id: GatewayId
    region: Region
    agent_version: Text
    stream_id: UUID
    boot_id: Text
    poll_interval_s: float = Field(gt=0)
    publish_interval_s: float = Field(gt=0)
    devices: list[DeviceInfo]
    config_version: Int4 | None = None
    ts: WireTime


class Reading(BaseModel):
    """One device's sample: SI values under catalog names, ``None`` = not available."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    device: LocalDeviceId
    ts: WireTime
    quality: Quality = Quality.GOOD
    flags: list[Text] = Field(default_factory=list)
    values: dict[str, float | None]

    @field_validator("values")
    @classmethod
    def _known_metrics(cls, values: dict[str, float | None]) -> dict[str, float | None]:
        # Runs once per reading on ingest's hot path: a set comparison of key views
        # first (C speed); the sorted list only for the error.
        if values.keys() <= _METRIC_NAMES:
            return values
        raise ValueError(f"unknown metrics {sorted(set(values) - _METRIC_NAMES)}")


class TelemetryBatch(_Message):
    stream_id: UUID
    seq: Seq
    readings: list[Reading] = Field(min_length=1)


class EventMsg(_Message):
    """An event of the gateway's stream. ``event`` names it — the catalogue of names the
    agent sends, with one ``detail`` model each, is :mod:`contracts.events`; the envelope
    accepts any name, so a newer agent's events are still stored."""

    stream_id: UUID
    seq: Seq
    ts: WireTime
    event: Annotated[Text, Field(min_length=1, max_length=64)]
    severity: Severity = "info"
    device: LocalDeviceId | None = None
    detail: JsonObject = Field(default_factory=dict)


class StoredMsg(_Message):
    """Cloud → gateway: everything of ``stream_id`` up to ``upto_seq`` is committed."""

    stream_id: UUID
    upto_seq: int = Field(ge=0, le=INT8_MAX)
    ts: WireTime


class CommandMsg(_Message):
    id: UUID
    gateway_id: GatewayId
    name: Text
    device: LocalDeviceId | None = None
    args: JsonObject = Field(default_factory=dict)
    expires_at: WireTime
    issued_by: Text
    kid: Text | None = None
    sig: Text | None = None


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
    detail: Text = ""
    ts: WireTime


class ProfileRef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Text
    region: Region
    version: int = Field(ge=1, le=INT4_MAX)


class ConfigDoc(_Message):
    gateway_id: GatewayId
    version: int = Field(ge=1, le=INT4_MAX)
    profile: ProfileRef
    devices: Annotated[dict[str, dict[str, Any]], NulFree]
    not_after: WireTime
    issued_by: Text
    kid: Text | None = None
    sig: Text | None = None


ConfigStatus = Literal["applied", "failed", "drifted", "pending"]


class ConfigState(_Message):
    """What a gateway did with config ``version`` (retained on ``config_state``).

    ``version`` is the last version the gateway *handled* (a failed one included: a
    device whose write or read-back failed was restored to its previous values and is
    ``failed`` in ``devices``). ``points`` holds the read-back per device and setting
    (engineering units, curves as lists), ``drift`` names ``<device>.<setting>`` entries
    read back different from the config, ``devices`` the status per device and
    ``detail`` why anything failed. ``hash`` is :func:`contracts.control.config_hash`.
    """

    stream_id: UUID
    seq: Seq
    version: Int4 | None
    hash: Text | None = None
    status: ConfigStatus = "applied"
    devices: dict[LocalDeviceId, ConfigStatus] = Field(default_factory=dict)
    points: Annotated[dict[str, dict[str, Any]], NulFree] = Field(default_factory=dict)
    drift: list[Text] = Field(default_factory=list)
    detail: Text = ""
    ts: WireTime


#: A staff member's employee number (the identity service's form: upper case).
EmployeeNo = Annotated[str, Field(pattern=r"^[A-Z0-9][A-Z0-9-]{0,31}$")]
#: A replay-protection nonce: 16 to 64 URL-safe characters.
Nonce = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{16,64}$")]


class ConfigReq(_Message):
    """A field technician's request (``potr/v1/<region>/_tech/<user>/config_req``) to
    put grid-code profile ``profile`` (its id) into effect on site ``site_id``.

    ``employee_no`` must be the technician whose broker identity the topic names; ``id``
    and ``nonce`` are never accepted twice and ``ts`` must be recent (replay protection).
    """

    id: UUID
    employee_no: EmployeeNo
    site_id: int = Field(ge=1, le=INT4_MAX)
    profile: Annotated[str, Field(pattern=r"^[a-z][a-z0-9.-]{0,63}$")]
    ts: WireTime
    nonce: Nonce


#: Why a technician's request was refused (``ConfigResp.code``), or ``accepted``.
TechOutcome = Literal[
    "accepted",
    "invalid",
    "replayed",
    "stale",
    "identity_mismatch",
    "unknown_technician",
    "no_open_job",
    "other_region",
    "unknown_profile",
    "profile_region",
    "not_approved",
    "refused",
]


class ConfigResp(_Message):
    """The config service's answer on ``…/_tech/<user>/config_resp``: ``ok`` with the
    versions signed per gateway, or the refusal's ``code`` and ``detail``."""

    id: UUID | None
    ok: bool
    code: TechOutcome
    detail: Text = ""
    work_order_id: Int4 | None = None
    versions: dict[GatewayId, Int4] = Field(default_factory=dict)
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
        raise MessageError(f"invalid {kind.value}: {summarise_validation_error(exc)}") from None


def summarise_validation_error(exc: ValidationError) -> str:
    """At most five pydantic errors as ``loc: msg``, fit for a refusal or a dead letter."""
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
    "INT4_MAX",
    "INT8_MAX",
    "AckStatus",
    "BirthMsg",
    "BufferedMessage",
    "CmdAck",
    "CommandMsg",
    "ConfigDoc",
    "ConfigReq",
    "ConfigResp",
    "ConfigState",
    "ConfigStatus",
    "DeviceInfo",
    "DeviceStatus",
    "EmployeeNo",
    "EventMsg",
    "JsonObject",
    "LocalDeviceId",
    "MessageError",
    "Nonce",
    "ProfileRef",
    "Quality",
    "Reading",
    "Severity",
    "StateMsg",
    "StoredMsg",
    "TechOutcome",
    "TelemetryBatch",
    "Text",
    "WireTime",
    "decode",
    "json_schemas",
]
