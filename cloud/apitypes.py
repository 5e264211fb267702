"""What every REST router shares: bounded path and query types, and the one error answer.

Bad input must never reach the database (where it becomes a 500: an id beyond
PostgreSQL's ``int4``, an offset beyond ``int8``, a NUL in a string, a date whose
window overflows); every parameter here carries its bounds, and they show in the
OpenAPI document, so a client (and schemathesis) knows them. Knows no service.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import AfterValidator, BaseModel, Field

from contracts.topics import GATEWAY_ID_RE

__all__ = [
    "BODY_RESPONSES",
    "EARLIEST",
    "INT4_MAX",
    "LATEST",
    "DeviceId",
    "GatewayIdPath",
    "Instant",
    "Issue",
    "Limit",
    "LocalDay",
    "Offset",
    "Problem",
    "SiteId",
    "problem",
]

#: Largest PostgreSQL ``int4`` (site and device ids, versions).
INT4_MAX = 2**31 - 1
#: Time windows and days a request may name: the store holds nothing outside, and a
#: window computed from year 1 or 9999 overflows.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)

SiteId = Annotated[int, Path(ge=1, le=INT4_MAX, description="site id")]
DeviceId = Annotated[int, Path(ge=1, le=INT4_MAX, description="device id (its telemetry key)")]
GatewayIdPath = Annotated[
    str, Path(pattern=GATEWAY_ID_RE.pattern, max_length=64, description="gateway id")
]
Limit = Annotated[int, Query(ge=1, le=1000, description="page size")]
Offset = Annotated[int, Query(ge=0, le=INT4_MAX, description="rows to skip")]


def _bounded_instant(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("needs a UTC offset, e.g. 2025-01-01T00:00:00Z")
    if not EARLIEST <= value < LATEST:
        raise ValueError(f"must be from {EARLIEST:%Y-%m-%d} to before {LATEST:%Y-%m-%d}")
    return value


def _bounded_day(value: date) -> date:
    if not EARLIEST.date() <= value < LATEST.date():
        raise ValueError(f"must be from {EARLIEST:%Y-%m-%d} to before {LATEST:%Y-%m-%d}")
    return value


#: An RFC 3339 instant with an offset, in [2000-01-01, 2100-01-01).
Instant = Annotated[datetime, AfterValidator(_bounded_instant)]
#: A calendar day in [2000-01-01, 2100-01-01).
LocalDay = Annotated[date, AfterValidator(_bounded_day)]


class Issue(BaseModel):
    """One reason a request was refused as malformed."""

    loc: list[str | int] = Field(description="where: body/query/path and the field's path")
    msg: str
    type: str


class Problem(BaseModel):
    """Every 4xx answer: ``detail`` is a message, the malformed fields (422 of the
    request's shape), or a refusal naming ``field``, ``limit`` and ``reason`` (422 of a
    value a device must not get)."""

    detail: str | list[Issue] | dict[str, Any]


def problem(description: str) -> dict[str, Any]:
    """An OpenAPI ``responses`` entry answered with :class:`Problem`."""
    return {"model": Problem, "description": description}


#: What a route with a body may answer besides its own codes (the portal's input guard).
BODY_RESPONSES: dict[int | str, dict[str, Any]] = {
    413: problem("body larger than the API accepts"),
}
