"""Registry models: what the API accepts (``*In``) is never the stored row itself."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Annotated, Literal
from zoneinfo import available_timezones

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from cloud.events.types import AccountId
from contracts.messages import GatewayId
from contracts.topics import Region

#: Names in the zone database that are no place's zone: the machine's own setting and
#: IANA's "unset" placeholder.
_NOT_PLACES = frozenset({"localtime", "Factory", "posixrules"})


@cache
def _time_zones() -> frozenset[str]:
    return frozenset(available_timezones()) - _NOT_PLACES


def check_time_zone(name: str) -> str:
    """``name`` if it is an IANA time zone of the zone database (``Australia/Sydney``),
    else ``ValueError``: a site's zone names a zone, never a path."""
    if name not in _time_zones():
        raise ValueError(f"{name!r} is not an IANA time zone (e.g. 'Australia/Sydney')")
    return name


TimeZoneName = Annotated[str, AfterValidator(check_time_zone)]


class SiteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, description="display name of the site")
    region: Region = Field(description="region that owns the site's data")
    time_zone: TimeZoneName = Field(
        min_length=1,
        max_length=64,
        examples=["Australia/Sydney"],
        description="IANA time zone (checked against the zone database), for local-day reports",
    )
    utility: str | None = Field(default=None, max_length=200, description="grid operator")
    # strict: a JSON true is not a coordinate (lax mode would read it as 1.0)
    latitude: float | None = Field(default=None, ge=-90, le=90, strict=True)
    longitude: float | None = Field(default=None, ge=-180, le=180, strict=True)


class Site(SiteIn):
    model_config = ConfigDict(extra="forbid", from_attributes=True)

    #: As stored: a row from before the zone check must still be readable.
    time_zone: str = Field(description="IANA time zone, for local-day reports")
    id: int
    account_id: AccountId | None = Field(
        default=None, description="the customer account that owns the site, if any"
    )
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


#: What a support search matched a site by: its id (exact), its name, or one of its
#: devices' serial or local id (substrings, any case).
SiteMatchField = Literal["site_id", "site_name", "device_serial", "device_local_id"]


class SiteMatch(BaseModel):
    """A site a support search found, with its owning account (``site.account_id``) and
    what matched: the field and its stored value, and the device when one matched."""

    model_config = ConfigDict(extra="forbid")

    site: Site
    matched: SiteMatchField
    value: str = Field(description="the matched field's stored value")
    device_id: int | None = Field(
        default=None, description="the device whose serial or local id matched"
    )
