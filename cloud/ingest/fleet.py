"""The fleet as ingest sees it, for the staff's and the customers' screens: gateways
online or not, devices by status, per region, per gateway and per site — plus the
region's ingest health (:mod:`cloud.ingest.stats`) and yesterday's completeness
(:mod:`cloud.ingest.completeness`).

The states shown are the ones the offline check last announced (``ingest.presence``,
:mod:`cloud.ingest.presence`) — the same the ``gateway.*`` / ``device.*`` events told
alerts — so a screen never contradicts an alert; they are at most one check round
(``offline_check_interval_s``) behind. Where the check has not spoken yet:

* a registered gateway never heard from is ``never_seen``; one heard from but not yet
  checked counts ``online`` (``offline`` if its retained state says so);
* a device with no announcement is ``online`` (the check presumes it, and announces
  only other statuses), since ingest first saw it.

A disabled (revoked) gateway is ``disabled`` whatever it last was. A device behind a
gateway that is not online is ``unknown``: its last status (kept as ``reported_status``)
is as old as its gateway's silence. Every query filters by the caller's
:class:`~cloud.scope.GatewayReach` in SQL; outside it there is nothing (zero counts, no
rows).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, Literal, TypeVar, get_args

from pydantic import BaseModel, Field

from cloud.adapters.postgres import Connection, ConnectionPool
from cloud.ingest.completeness import REGION_SAMPLE, CompletenessReader, RegionCompleteness
from cloud.ingest.stats import IngestHealth, ingest_health
from cloud.scope import GatewayReach, gateway_reach_condition
from contracts.messages import DeviceStatus
from contracts.timeutil import utc_now
from contracts.topics import Region

__all__ = [
    "MAX_GATEWAY_ROWS",
    "MAX_SITE_DEVICES",
    "DeviceCounts",
    "DeviceState",
    "DeviceStateName",
    "FleetStatus",
    "FleetStatusReader",
    "GatewayCounts",
    "GatewayState",
    "GatewayStatus",
]

_M = TypeVar("_M", bound=BaseModel)
#: In the order gateway lists show them: those needing attention first.
GatewayStatus = Literal["offline", "never_seen", "online", "disabled"]
#: A device's status as a screen shows it: as reported, or unknown behind a gateway
#: that is not online.
DeviceStateName = Literal["online", "asleep", "unreachable", "faulty", "unknown"]
#: Rows one call of :meth:`FleetStatusReader.gateway_states` returns at most.
MAX_GATEWAY_ROWS = 1000
#: Devices one site's list holds at most (a site has a handful).
MAX_SITE_DEVICES = 1000


class GatewayCounts(BaseModel):
    online: int = 0
    offline: int = 0
    never_seen: int = Field(default=0, description="registered, never heard from")
    disabled: int = Field(default=0, description="revoked: what they send is refused")


class DeviceCounts(BaseModel):
    online: int = 0
    asleep: int = Field(default=0, description="a PV device at night: no alarm")
    unreachable: int = 0
    faulty: int = Field(default=0, description="answers, with errors")
    unknown: int = Field(default=0, description="behind a gateway that is not online")


class FleetStatus(BaseModel):
    region: str
    gateways: GatewayCounts
    devices: DeviceCounts


class GatewayState(BaseModel):
    gateway_id: str
    site_id: int | None = Field(description="its site (None until a gateway event says)")
    status: GatewayStatus
    online: bool
    last_seen: datetime | None = Field(description="its newest message of any kind")
    since: datetime | None = Field(description="when its status was announced")
    devices: DeviceCounts


class DeviceState(BaseModel):
    device_id: int
    gateway_id: str
    local_id: str = Field(description="the gateway's id for it (SunSpec serial)")
    status: DeviceStateName
    reported_status: DeviceStatus = Field(description="the status last announced")
    since: datetime | None = Field(
        description="when that status was announced (or the device first seen, for a"
        " device never announced otherwise than online)"
    )
    last_reading_at: datetime | None = Field(description="its newest reading's timestamp")


#: A registered gateway with its session and announced presence (aliases g, s, p).
_GATEWAYS = (
    " FROM ingest.gateways g"
    " LEFT JOIN ingest.sessions s USING (gateway_id)"
    " LEFT JOIN ingest.presence p ON p.kind = 'gateway' AND p.key = g.gateway_id"
)
#: Its :data:`GatewayStatus` (see the module for the rules).
_GATEWAY_STATUS = (
    "CASE WHEN NOT g.enabled THEN 'disabled'"
    " WHEN p.online THEN 'online' WHEN NOT p.online THEN 'offline'"
    " WHEN s.last_message_at IS NULL THEN 'never_seen'"
    " WHEN s.online IS FALSE THEN 'offline' ELSE 'online' END"
)


def _rank(status_column: str) -> str:
    """Order of gateway rows: those needing attention first (:data:`GatewayStatus`' order)."""
    statuses = ", ".join(f"'{s}'" for s in get_args(GatewayStatus))
    return f"array_position(ARRAY[{statuses}], {status_column})"


#: The devices of gateway rows ``gw`` (with a ``status``), each with its announced
#: presence (aliases k, dp): written after ``JOIN`` or ``LEFT JOIN``.
_DEVICES_OF_GW = (
    "(ingest.device_keys k LEFT JOIN ingest.presence dp"
    " ON dp.kind = 'device' AND dp.key = k.gateway_id || '/' || k.local_id)"
    " ON k.gateway_id = gw.gateway_id"
)
_REPORTED = "COALESCE(dp.status, 'online')"
_DEVICE_STATE = f"CASE WHEN gw.status = 'online' THEN {_REPORTED} ELSE 'unknown' END"
#: One count per :data:`DeviceStateName`, in its order (rows without a device: none).
_DEVICE_COUNTS = ", ".join(
    f"count(k.device_id) FILTER (WHERE {_DEVICE_STATE} = '{name}')"
    for name in get_args(DeviceStateName)
)


def _in_reach(where: str) -> str:
    return f" WHERE {where} AND " + gateway_reach_condition("g.region", "g.gateway_id")


def _tally(model: type[_M], rows: Iterable[tuple[Any, ...]]) -> _M:
    """``model`` counting (status, count) rows (statuses it has no field for are left
    out: a status newer than this code)."""
    return model.model_validate({str(s): int(n) for s, n in rows if s in model.model_fields})


class FleetStatusReader:
    """Read side of presence; thread-safe (each call takes a pooled connection)."""

    def __init__(
        self, pool: ConnectionPool[Connection[Any]], *, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self._pool = pool
        self._clock = clock

    def fleet_status(self, reach: GatewayReach, region: Region) -> FleetStatus:
        """Gateways by status and devices by state in ``region``, within ``reach``."""
        with self._pool.connection() as conn:
            rows = conn.execute(
                f"WITH gw AS (SELECT g.gateway_id, {_GATEWAY_STATUS} AS status{_GATEWAYS}"
                f"{_in_reach('g.region = %(region)s')})"
                " SELECT 'gateway', status, count(*) FROM gw GROUP BY status"
                f" UNION ALL SELECT 'device', {_DEVICE_STATE}, count(*)"
                f" FROM gw JOIN {_DEVICES_OF_GW} GROUP BY 2",
                {"region": region.value, **reach.sql_params()},
            ).fetchall()
        return FleetStatus(
            region=region.value,
            gateways=_tally(GatewayCounts, (r[1:] for r in rows if r[0] == "gateway")),
            devices=_tally(DeviceCounts, (r[1:] for r in rows if r[0] == "device")),
        )

    def gateway_states(
        self,
        reach: GatewayReach,
        region: Region,
        limit: int = 100,
        *,
        offset: int = 0,
        status: GatewayStatus | None = None,
    ) -> list[GatewayState]:
        """``region``'s gateways within ``reach`` (only those in ``status`` if given):
        offline first, then never seen, online, disabled; by id within each. ``limit``
        from 1 to :data:`MAX_GATEWAY_ROWS` (``ValueError`` otherwise)."""
        if not 1 <= limit <= MAX_GATEWAY_ROWS:
            raise ValueError(f"limit: {limit} is not from 1 to {MAX_GATEWAY_ROWS}")
        if offset < 0:
            raise ValueError(f"offset: {offset} is negative")
        with self._pool.connection() as conn:
            rows = conn.execute(
                "WITH gw AS (SELECT * FROM (SELECT g.gateway_id, g.site_id, s.last_message_at,"
                f" CASE WHEN g.enabled THEN p.changed_at END AS since,"
                f" {_GATEWAY_STATUS} AS status{_GATEWAYS}{_in_reach('g.region = %(region)s')})"
                " AS a WHERE %(status)s::text IS NULL OR status = %(status)s"
                f" ORDER BY {_rank('status')}, gateway_id LIMIT %(limit)s OFFSET %(offset)s)"
                " SELECT gw.gateway_id, gw.site_id, gw.status, gw.last_message_at, gw.since,"
                f" {_DEVICE_COUNTS} FROM gw LEFT JOIN {_DEVICES_OF_GW}"
                " GROUP BY gw.gateway_id, gw.site_id, gw.status, gw.last_message_at, gw.since"
                f" ORDER BY {_rank('gw.status')}, gw.gateway_id",
                {
                    "region": region.value,
                    "status": status,
                    "limit": limit,
                    "offset": offset,
                    **reach.sql_params(),
                },
            ).fetchall()
        return [
            GatewayState(
                gateway_id=gateway_id,
                site_id=site_id,
                status=state,
                online=state == "online",
                last_seen=last_seen,
                since=since,
                devices=DeviceCounts.model_validate(
                    dict(zip(get_args(DeviceStateName), counts, strict=True))
                ),
            )
            for gateway_id, site_id, state, last_seen, since, *counts in rows
        ]

    def site_device_states(self, reach: GatewayReach, site_id: int) -> list[DeviceState]:
        """The devices of site ``site_id``'s gateways within ``reach`` (none outside it),
        by gateway and local id; at most :data:`MAX_SITE_DEVICES`."""
        with self._pool.connection() as conn:
            rows = conn.execute(
                f"WITH gw AS (SELECT g.gateway_id, {_GATEWAY_STATUS} AS status{_GATEWAYS}"
                f"{_in_reach('g.site_id = %(site)s')})"
                f" SELECT k.device_id, k.gateway_id, k.local_id, {_DEVICE_STATE}, {_REPORTED},"
                " COALESCE(dp.changed_at, CASE WHEN isfinite(k.created_at) THEN k.created_at END),"
                f" l.last_ts FROM gw JOIN {_DEVICES_OF_GW}"
                " LEFT JOIN ingest.device_last_seen l ON l.device_id = k.device_id"
                " ORDER BY k.gateway_id, k.local_id LIMIT %(limit)s",
                {"site": site_id, "limit": MAX_SITE_DEVICES, **reach.sql_params()},
            ).fetchall()
        return [
            DeviceState(
                device_id=device_id,
                gateway_id=gateway_id,
                local_id=local_id,
                status=state,
                reported_status=reported,
                since=since,
                last_reading_at=last_reading_at,
            )
            for device_id, gateway_id, local_id, state, reported, since, last_reading_at in rows
        ]

    def ingest_health(self, reach: GatewayReach, region: Region) -> IngestHealth:
        """``region``'s readings of the last 5 min and hour, dead letters of the last
        hour and the newest reading's age, within ``reach``
        (:func:`cloud.ingest.stats.ingest_health`)."""
        with self._pool.connection() as conn:
            return ingest_health(conn, region, reach, self._clock())

    def completeness_yesterday(
        self, reach: GatewayReach, region: Region, *, sample: int = REGION_SAMPLE
    ) -> RegionCompleteness:
        """Average completeness of ``region``'s device-days yesterday (each device's
        previous local day), within ``reach``
        (:meth:`cloud.ingest.completeness.CompletenessReader.region_yesterday`)."""
        return CompletenessReader(self._pool).region_yesterday(
            region, now=self._clock(), reach=reach, sample=sample
        )
