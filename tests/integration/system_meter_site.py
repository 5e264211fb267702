"""The site the system-meter tests share: a simulated site (PV inverter on unit 1, grid
meter on unit 2, battery on unit 3, PoTR's system meter on unit 4) whose clock only the
test moves, ingest running beside it, the wait for a reading of a meter's counters
taken after a mark, and the plant's charge-then-discharge steps with the energies summed
here from its history (W * h per step) — the expected figures, computed by hand.

Plain functions and context managers; each test module keeps its own fixtures. Nothing
here holds state from one test to the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg

from cloud.bootstrap import run_ingest
from cloud.ingest import IngestSettings
from simulators.device_site import SYSTEM_METER_UNIT, DeviceSite, DeviceSiteSettings, DeviceSpec
from tests.waiting import until

__all__ = [
    "BATTERY",
    "GRID",
    "INVERTER",
    "NOON_SYDNEY",
    "STEP_H",
    "STEP_S",
    "SYSTEM",
    "WH_RES",
    "Counters",
    "PlantEnergy",
    "charge_then_discharge",
    "counters_after",
    "running_ingest",
    "system_meter_site",
]

NOON_SYDNEY = datetime(2024, 1, 10, 2, 0, tzinfo=UTC)  # 13:00 AEDT, clear sky
INVERTER, GRID, BATTERY, SYSTEM = 1, 2, 3, SYSTEM_METER_UNIT
STEP_S = 900
STEP_H = STEP_S / 3600
WH_RES = 1.0  # whole-Wh registers: a rise read from two of them is within 1 Wh
COUNTERS = ("import_wh", "export_wh")
Counters = dict[str, float]


def _stored_after(database_url: str, gateway: str, local_id: str, after: datetime) -> Counters:
    """The first stored reading of the device taken after ``after`` with both counters,
    read through ingest's key of (gateway, serial); {} if none yet."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT r.ts, m.name, r.value FROM telemetry.readings r"
            " JOIN ingest.device_keys k ON k.device_id = r.device_id"
            " JOIN telemetry.metrics m ON m.id = r.metric_id"
            " WHERE k.gateway_id = %s AND k.local_id = %s AND r.ts > %s"
            " AND m.name = ANY(%s) ORDER BY r.ts",
            (gateway, local_id, after, list(COUNTERS)),
        ).fetchall()
    by_ts: dict[datetime, Counters] = {}
    for ts, name, value in rows:
        by_ts.setdefault(ts, {})[name] = float(value)
    return next((v for v in by_ts.values() if set(v) == set(COUNTERS)), {})


def counters_after(
    database_url: str, gateway: str, serials: Mapping[int, str]
) -> Callable[[int, datetime], Awaitable[Counters]]:
    """``await stored_after(unit, mark)``: the unit's first stored counters read after
    ``mark``, waited for (15 s at most)."""

    async def stored_after(unit: int, mark: datetime) -> Counters:
        found: Counters = {}

        async def check() -> bool:
            nonlocal found
            found = await asyncio.to_thread(
                _stored_after, database_url, gateway, serials[unit], mark
            )
            return bool(found)

        await until(check, 15, f"unit {unit}'s counters read after {mark:%H:%M:%S.%f}")
        return found

    return stored_after


@contextlib.asynccontextmanager
async def system_meter_site(prefix: str) -> AsyncIterator[DeviceSite]:
    """The simulated site (its id ``prefix``-random), its physics paused: it moves only
    when the test fast-forwards it."""
    settings = DeviceSiteSettings(
        site_id=f"{prefix}-{uuid.uuid4().hex[:6]}",
        start_time=NOON_SYDNEY,
        update_period_s=3600.0,  # the physics moves only when the test says
        pv_capacity_w=3000.0,  # the battery's 5 kW can draw past the PV
        devices=[
            DeviceSpec(profile="sim-inverter-103", unit_id=INVERTER),
            DeviceSpec(profile="sim-meter-203", unit_id=GRID),
            DeviceSpec(profile="sim-battery", unit_id=BATTERY),
        ],
        system_meter=True,
    )
    async with DeviceSite(settings) as site:
        site.pause_updates()
        yield site


@contextlib.asynccontextmanager
async def running_ingest(database_url: str, mqtt_url: str) -> AsyncIterator[None]:
    """Ingest in this event loop, ready (20 s at most) before the body runs, stopped
    (20 s at most) after it."""
    cloud = IngestSettings(
        database_url=database_url,
        mqtt_url=mqtt_url,
        mqtt_client_id=f"ingest-{uuid.uuid4().hex[:8]}",
        stored_interval_s=0.2,
    )
    ingest_stop, ingest_ready = asyncio.Event(), asyncio.Event()
    ingest = asyncio.create_task(run_ingest(cloud, ingest_stop, ready=ingest_ready))
    try:
        async with asyncio.timeout(20):
            await ingest_ready.wait()
        yield
    finally:
        ingest_stop.set()
        await asyncio.wait_for(ingest, 20)


@dataclass(frozen=True)
class PlantEnergy:
    """Energies summed from the plant's state over the steps (Wh), and the instant after
    which a poll reads the last step's registers."""

    delivered: float  # by the system (its meter's import)
    drawn: float  # into the system (its meter's export)
    grid_in: float
    grid_out: float
    mark: datetime


def charge_then_discharge(site: DeviceSite) -> PlantEnergy:
    """One step charging the battery at 100 % past the PV, one discharging at 60 %."""
    drawn = delivered = grid_in = grid_out = 0.0
    mark = datetime.now(UTC)
    for mode, pct in [(1, 100.0), (2, 60.0)]:  # charge past the PV, then discharge
        point = "124.InWRte" if mode == 1 else "124.OutWRte"
        site.set_point(BATTERY, point, pct)
        site.set_point(BATTERY, "124.StorCtl_Mod", mode)
        site.fast_forward(STEP_S)
        mark = datetime.now(UTC)  # a poll that starts later reads the new registers
        s = site.state
        system_w, grid_w = s.pv_w + s.battery_w, s.load_w - s.pv_w - s.battery_w
        delivered += max(system_w, 0.0) * STEP_H
        drawn += max(-system_w, 0.0) * STEP_H
        grid_in += max(grid_w, 0.0) * STEP_H
        grid_out += max(-grid_w, 0.0) * STEP_H
    return PlantEnergy(delivered, drawn, grid_in, grid_out, mark)
