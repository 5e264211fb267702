"""Registry models: what the API accepts (``*In``) is never the stored row itself."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from contracts.messages import GatewayId
from contracts.topics import Region


class SiteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, description="display name of the site")
    region: Region = Field(description="region that owns the site's data")
    time_zone: str = Field(
        min_length=1,
        max_length=64,
        examples=["Australia/Sydney"],
        description="IANA time zone, for local-day reports",
    )
    utility: str | None = Field(default=None, max_length=200, description="grid operator")
    # strict: a JSON true is not a coordinate (lax mode would read it as 1.0)
    latitude: float | None = Field(default=None, ge=-90, le=90, strict=True)
    longitude: float | None = Field(default=None, ge=-180, le=180, strict=True)


class Site(SiteIn):
    model_config = ConfigDict(extra="forbid", from_attributes=True)

    id: int
    created_at: datetime


class GatewayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: GatewayId = Field(description="gateway id, as in its MQTT topics")
    site_id: int = Field(ge=1, le=2**31 - 1, strict=True)
    region: Region | None = Field(
        default=None, description="defaults to the site's region; must match it"
    )


class Gateway(BaseModel):
    model_config = ConfigDict(extra="forbid", from_attributes=True)

    id: str
    site_id: int
    region: Region
    enabled: bool = Field(
        description="false once revoked: ingest refuses (dead-letters) what it still sends"
    )
    created_at: datetime


class Device(BaseModel):
    """A device behind a gateway; ``id`` keys its telemetry."""

    model_config = ConfigDict(extra="forbid", from_attributes=True)

    id: int
    gateway_id: str
    local_id: str = Field(description="the gateway's stable id for it (SunSpec serial)")
    kind: str = Field(description="inverter, meter, battery, isolator or unknown")
    manufacturer: str | None
    model: str | None
    serial: str | None
    firmware: str | None
    models: list[int] = Field(description="SunSpec model ids it implements")
    first_seen: datetime
    last_birth: datetime | None
