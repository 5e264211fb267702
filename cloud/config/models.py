"""What the config service accepts (``*In``) and shows; settings in engineering units."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from contracts.messages import ProfileRef

#: Longest command lifetime: the gateways' replay guard keeps ids at most 7 days.
MAX_COMMAND_LIFETIME_S = 7 * 86_400

Reason = Field(min_length=1, max_length=1000, description="why (kept in the audit log)")


class CommandIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        min_length=1, max_length=64, description="a command of the device's profile, or ping/rescan"
    )
    device: str | None = Field(
        default=None, max_length=128, description="local device id; null = the gateway itself"
    )
    args: dict[str, Any] = Field(default_factory=dict, description="engineering units")
    expires_in_s: float | None = Field(
        default=None,
        strict=True,
        gt=0,
        le=MAX_COMMAND_LIFETIME_S,
        description="seconds the command stays valid (default POTR_COMMAND_LIFETIME_S)",
    )
    reason: str = Reason


class Command(BaseModel):
    model_config = ConfigDict(extra="forbid", from_attributes=True)

    id: UUID
    gateway_id: str
    region: str
    device: str | None
    name: str
    args: dict[str, Any]
    reason: str
    issued_by: str
    issued_at: datetime
    expires_at: datetime
    status: str = Field(
        description="pending, held (stored, not published while a technician is on the"
        " site: see held_by), accepted, done, failed, rejected or expired"
    )
    detail: str
    closed_by: str | None = Field(description="gateway (its ack) or cloud (timeout)")
    published_at: datetime | None
    updated_at: datetime
    held_by: list[int] = Field(
        default_factory=list,
        description="while held: the work orders whose technician is on the site; the"
        " command is published when the last of them leaves, unless it expired meanwhile",
    )


class ConfigIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    profile: ProfileRef
    devices: dict[str, dict[str, Any]] = Field(
        description="local device id → setting name → value (curves as lists)"
    )
    reason: str = Reason


class RollbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to_version: int | None = Field(
        default=None,
        ge=1,
        le=2**31 - 1,
        strict=True,
        description="default: the version before the current one",
    )
    reason: str = Reason


class DesiredConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", from_attributes=True)

    gateway_id: str
    version: int
    profile: dict[str, Any]
    devices: dict[str, dict[str, Any]]
    hash: str
    created_by: str
    reason: str
    created_at: datetime
    rollback_of: int | None
    published_at: datetime | None
    status: str = Field(
        default="pending",
        description="published; pending (not yet: the broker was away); held (not"
        " published while a technician is on the site: see held_by); superseded (a newer"
        " version came first: only the latest is ever published)",
    )
    held_by: list[int] = Field(
        default_factory=list,
        description="while held: the work orders whose technician is on the site; the"
        " version is published when the last of them leaves",
    )


class ReportedConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", from_attributes=True)

    version: int | None = Field(description="the last version the gateway handled")
    hash: str | None
    status: str
    drift: list[str]
    detail: str
    reported_at: datetime


class DeviceConfigState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    device: str
    status: str = Field(
        description="pending (held while the desired version is held) until the device"
        " reports the desired version"
    )
    version: int | None
    points: dict[str, Any]
    drift: list[str]
    detail: str
    updated_at: datetime | None


class ConfigView(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gateway_id: str
    desired: DesiredConfig | None
    reported: ReportedConfig | None
    devices: list[DeviceConfigState]
    history: list[DesiredConfig] = Field(description="every version, newest first")


class AuditEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", from_attributes=True)

    id: int
    at: datetime
    actor: str
    action: str
    gateway_id: str
    target: str | None
    reason: str
    outcome: str
    detail: dict[str, Any]
