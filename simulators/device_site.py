"""A site of profile-described devices on one Modbus endpoint, with physics and faults.

Usage::

    settings = DeviceSiteSettings(site_id="s1", devices=[
        DeviceSpec(profile="sim-inverter-103", unit_id=1),
        DeviceSpec(profile="sim-battery", unit_id=3),
        DeviceSpec(profile="sim-meter-203", unit_id=2),
    ])
    async with DeviceSite(settings) as site:
        site.port, site.state, site.device(1).registers, site.activate_fault({...})
        site.writes(1)                        # every write request unit 1 saw
        site.set_point(1, "704.WMaxLimPct", 40)  # a change behind the agent's back
        site.point(1, "705.Crv[0].Pt[1].V")   # what a Modbus read returns now
        site.pause_updates(); site.fast_forward(3600)  # one simulated hour, at once

The simulated clock runs ``speed`` times real time from ``start_time``; every
``update_period_s`` real seconds the plant steps to the simulated now, the devices'
controls (123/704, curves, trips, droop, storage modes, isolator) feed the physics, and
every device re-renders its registers. The grid's voltage and frequency follow the plant
(midday rise, noise) unless a ``grid_voltage`` / ``grid_frequency`` fault sets them::

    site.activate_fault({"kind": "grid_voltage", "v": 258})  # every phase, from now
    site.fast_forward(10)  # the volt-var answer after its 10 s response time

PoTR's own revenue-grade system meter (decision 119) is opt-in: ``system_meter=True``
(also ``region_site(..., system_meter=True)``) adds a ``sim-meter-203`` on unit
:data:`SYSTEM_METER_UNIT` with SN ``SYS-<site>``, wired at the PoTR system's AC output
(``meter_at: system``) with PV and battery behind it. Its forward register ``TotWhImp``
(the agent's ``import_wh``) integrates ``max(pv_w + battery_w, 0)``, what the system
delivers into the premises; ``TotWhExp`` (``export_wh``) ``max(-(pv_w + battery_w), 0)``,
what it draws (a battery charging from the house or the grid); W, VA, var, A follow the
same flow (W > 0 delivering). The grid meter still measures the connection point, so
system forward - reverse + grid import - export = the house's load energy. Any meter
spec may be wired there itself (``DeviceSpec(..., meter_at="system")``), on any unit.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import time
import zlib
from collections import deque
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from device_profiles import DeviceProfile, PointRef, builtin_profiles, load_profiles
from simulators.emulated import EmulatedDevice
from simulators.endpoint import DeviceEndpoint, Gate
from simulators.faults import FaultBoard, Scenario, ScenarioError, load_scenario, parse_scenario
from simulators.plant import (
    BatteryControls,
    GridCondition,
    InverterControls,
    MeterAt,
    PlantConfig,
    PlantState,
    initial_state,
    meter_flow,
    step,
)
from simulators.regions import REGIONS, RegionCode
from simulators.solar import ClearSky
from simulators.write_log import PointValue, WriteFailure, WriteRecord

__all__ = [
    "SYSTEM_METER_UNIT",
    "DeviceSite",
    "DeviceSiteSettings",
    "DeviceSpec",
    "Snapshot",
    "region_site",
    "run_site",
]

#: One served image: when it started being served, and per unit (base address, registers).
Snapshot = tuple[datetime, dict[int, tuple[int, list[int]]]]

log = logging.getLogger(__name__)

#: A grid fault may set the voltage up to this share of nominal (a trip test goes past the
#: 1547 OV2 of 120 %), the frequency within this share of nominal.
GRID_V_MAX = 1.5
GRID_HZ_BAND = 0.2
#: The unit id of the system meter ``system_meter=True`` adds: after the presets'
#: inverter (1), grid meter (2) and the tests' battery (3); the isolator sits on 5.
SYSTEM_METER_UNIT = 4


class DeviceSpec(BaseModel):
    """One device on the site's endpoint, with its vendor quirks."""

    model_config = ConfigDict(extra="forbid")

    profile: str
    unit_id: int = Field(ge=1, le=247)
    serial: str | None = None
    base: Literal[0, 40000, 50000] = 40000
    common_length: Literal[65, 66] = 66
    write_latency_s: float = Field(default=0.0, ge=0, le=60)
    nameplate: dict[str, float] = Field(
        default_factory=dict, description="overrides of the profile's nameplate (ratings)"
    )
    meter_at: MeterAt = Field(
        default="grid",
        description="a meter's wiring: the grid connection, or the PoTR system's AC output",
    )


def _default_devices() -> list[DeviceSpec]:
    return [
        DeviceSpec(profile="sim-inverter-103", unit_id=1),
        DeviceSpec(profile="sim-meter-203", unit_id=2),
    ]


class DeviceSiteSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    site_id: str = Field(min_length=1)
    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535)
    serial_port: str | None = Field(default=None, description="RTU on this tty instead of TCP")
    baudrate: int = 9600
    latitude: float = Field(default=-33.87, ge=-90, le=90)
    longitude: float = Field(default=151.21, ge=-180, le=180)
    tz: str = "Australia/Sydney"
    start_time: AwareDatetime | None = None
    speed: float = Field(default=1.0, gt=0)
    update_period_s: float = Field(default=1.0, gt=0)
    pv_capacity_w: float = Field(default=5000.0, gt=0)
    cloud_factor: float = Field(default=1.0, ge=0, le=1)
    nominal_v: float = 230.0
    nominal_hz: float = 50.0
    #: The grid's voltage rise at 1000 W/m² (suburban feeders with much rooftop PV).
    grid_rise_pct: float = Field(default=6.0, ge=0, le=20)
    battery_soc_pct: float = Field(default=50.0, ge=0, le=100)
    seed: int | None = None
    history_size: int = Field(default=2000, ge=1, description="served images kept")
    devices: list[DeviceSpec] = Field(default_factory=_default_devices, min_length=1)
    scenario: Path | None = None
    profile_dir: Path | None = Field(default=None, description="extra *.yaml profiles")
    system_meter: bool = Field(
        default=False,
        description="add PoTR's system meter (unit 4, SN SYS-<site>) unless `devices` "
        "already has a meter with meter_at: system",
    )

    @model_validator(mode="after")
    def _add_system_meter(self) -> DeviceSiteSettings:
        """The flag becomes a device, so everything that walks ``devices`` sees it."""
        if not self.system_meter or any(d.meter_at == "system" for d in self.devices):
            return self
        taken = next((d for d in self.devices if d.unit_id == SYSTEM_METER_UNIT), None)
        if taken is not None:
            raise ValueError(
                f"system_meter: unit {SYSTEM_METER_UNIT} is taken by {taken.profile}; list the"
                " system meter in devices (meter_at: system) on a free unit instead"
            )
        self.devices.append(_system_meter(self.site_id, self.pv_capacity_w))
        return self


def _system_meter(site_id: str, pv_capacity_w: float) -> DeviceSpec:
    """PoTR's system meter: the grid meter's type, rated as the preset rates that one
    (its power scale factor grows with the PV, so a big system's output fits int16)."""
    return DeviceSpec(
        profile="sim-meter-203",
        unit_id=SYSTEM_METER_UNIT,
        serial=_preset_serial(site_id, "SYS"),
        nameplate={"max_w": max(30000.0, 1.2 * pv_capacity_w)},
        meter_at="system",
    )


def region_site(site_id: str, region: RegionCode, **settings: Any) -> DeviceSiteSettings:
    """The region preset (``potr sim site``): the default inverter (unit 1) and grid meter
    (unit 2) at the region's city, on its grid's nominal voltage and frequency, both rated
    for ``pv_capacity_w`` when given; ``settings`` override any other field
    (``system_meter=True`` adds PoTR's system meter on unit 4, SN ``SYS-<site>``)."""
    where = REGIONS[region]
    devices = _default_devices()
    devices[0].serial = _preset_serial(site_id, "INV")
    devices[1].serial = _preset_serial(site_id, "MTR")
    capacity = settings.get("pv_capacity_w")
    if capacity is not None:  # ratings (and so scale factors) follow the PV size
        devices[0].nameplate = {"w_rtg": capacity, "va_rtg": capacity}
        devices[1].nameplate = {"max_w": max(30000.0, 1.2 * capacity)}
    return DeviceSiteSettings.model_validate(
        {
            "site_id": site_id,
            "devices": devices,
            "latitude": where.latitude,
            "longitude": where.longitude,
            "tz": where.tz,
            "nominal_v": where.nominal_v,
            "nominal_hz": where.nominal_hz,
            **settings,
        }
    )


def _preset_serial(site_id: str, prefix: str) -> str:
    """The preset's serial (model 1 ``SN``, <= 32 bytes): ``INV-<site>``, ``MTR-<site>``,
    ``SYS-<site>``."""
    clean = re.sub(r"[^A-Za-z0-9-]", "-", site_id).strip("-") or "site"
    if len(clean) > 24:
        clean = hashlib.sha1(site_id.encode()).hexdigest()[:12]
    return f"{prefix}-{clean}"


def _serial(site_id: str, profile: DeviceProfile, unit: int) -> str:
    clean = re.sub(r"[^A-Za-z0-9-]", "-", site_id).strip("-")[:20] or "site"
    return f"{profile.kind[:3].upper()}-{clean}-{unit}"


class _SiteGate(Gate):
    def __init__(self, site: DeviceSite) -> None:
        self._site = site

    def _find(self, kind: str, unit: int | None) -> Any:
        return self._site.faults.find(self._site.elapsed_s(), kind, unit)

    def no_response(self, unit: int) -> bool:
        return self._find("no_response", unit) is not None

    def exception(self, unit: int) -> int | None:
        fault = self._find("exception", unit)
        return None if fault is None else int(fault.code)

    def delay_s(self, unit: int) -> float:
        fault = self._find("slow_response", unit)
        return 0.0 if fault is None else float(fault.delay_s)

    def single_connection(self) -> bool:
        return self._find("single_connection", None) is not None

    def write_failure(self, unit: int, refs: frozenset[str]) -> WriteFailure | None:
        fault = self._site.faults.take_write_fail(self._site.elapsed_s(), unit, refs)
        return None if fault is None else WriteFailure(fault.mode, int(fault.code))


class DeviceSite:
    """Profile-described devices, their physics and faults, on one Modbus endpoint."""

    def __init__(self, settings: DeviceSiteSettings) -> None:
        self.settings = settings
        profiles = builtin_profiles()
        if settings.profile_dir is not None:
            profiles |= load_profiles(settings.profile_dir)
        units = [d.unit_id for d in settings.devices]
        if len(set(units)) != len(units):
            raise ValueError("device unit ids must be unique")
        self.devices: list[EmulatedDevice] = []
        for i, spec in enumerate(settings.devices):
            if spec.profile not in profiles:
                raise ValueError(f"devices[{i}].profile: unknown device profile {spec.profile!r}")
            profile = profiles[spec.profile]
            if spec.meter_at == "system" and profile.kind != "meter":
                raise ValueError(f"devices[{i}].meter_at: {spec.profile} is no meter")
            if spec.nameplate:
                nameplate = profile.nameplate | spec.nameplate
                profile = profile.model_copy(update={"nameplate": nameplate})
            self.devices.append(
                EmulatedDevice(
                    profile,
                    unit_id=spec.unit_id,
                    serial=spec.serial or _serial(settings.site_id, profile, spec.unit_id),
                    base=spec.base,
                    common_length=spec.common_length,
                    meter_at=spec.meter_at,
                )
            )
        seed = settings.seed if settings.seed is not None else zlib.crc32(settings.site_id.encode())
        battery = next(
            (d.profile for d in self.devices if d.profile.kind in ("battery", "hybrid_inverter")),
            None,
        )
        np_ = battery.nameplate if battery is not None else {}
        self.plant = PlantConfig(
            latitude=settings.latitude,
            longitude=settings.longitude,
            tz=settings.tz,
            pv_capacity_w=settings.pv_capacity_w,
            cloud_factor=settings.cloud_factor,
            nominal_v=settings.nominal_v,
            nominal_hz=settings.nominal_hz,
            midday_rise_pct=settings.grid_rise_pct,
            battery_wh=np_.get("wh_rtg", 0.0),
            battery_max_charge_w=np_.get("max_charge_w", 5000.0),
            battery_max_discharge_w=np_.get("max_discharge_w", 5000.0),
            seed=seed,
        )
        self.sky = ClearSky(settings.latitude, settings.longitude, settings.tz)
        self.faults = FaultBoard()
        self._history: deque[Snapshot] = deque(maxlen=settings.history_size)
        if settings.scenario is not None:
            self.load_scenario(load_scenario(settings.scenario), str(settings.scenario))
        self._sim_t0 = settings.start_time or datetime.now(UTC)
        self._real_t0 = time.monotonic()
        self._skipped = timedelta(0)  # simulated time jumped by fast_forward
        self.state: PlantState = initial_state(
            self.plant, self.sky, self._sim_t0, soc_pct=settings.battery_soc_pct
        )
        self._render()
        self.endpoint = DeviceEndpoint(
            self.devices,
            host=settings.host,
            port=settings.port,
            serial_port=settings.serial_port,
            baudrate=settings.baudrate,
            gate=_SiteGate(self),
            write_latency_s=self._latency,
        )
        self.endpoint.on_applied(lambda _unit: self._remember())
        self._task: asyncio.Task[None] | None = None
        self._paused = False

    # ----- lookup -----------------------------------------------------------------------
    def device(self, unit_id: int) -> EmulatedDevice:
        return next(d for d in self.devices if d.unit_id == unit_id)

    @property
    def write_log(self) -> list[WriteRecord]:
        """Every write request that reached a device, in arrival order (the live list)."""
        return self.endpoint.write_log

    def writes(self, unit_id: int | None = None) -> list[WriteRecord]:
        """The write log, or only the records of ``unit_id``."""
        return [r for r in self.write_log if unit_id is None or r.unit_id == unit_id]

    def point(self, unit_id: int, ref: str) -> PointValue:
        """The engineering value served for ``ref`` (indexed: ``"705.Crv[0].Pt[1].V"``)."""
        return self.device(unit_id).served(ref)

    def set_point(self, unit_id: int, ref: str, value: float) -> None:
        """Change writable point ``ref`` (indexed) on the device itself, as a local operator
        would: no Modbus, not in the write log; reads return it at once."""
        self.device(unit_id).set_setting(ref, value)

    def _latency(self, unit: int) -> float:
        return next(s.write_latency_s for s in self.settings.devices if s.unit_id == unit)

    @property
    def port(self) -> int:
        return self.endpoint.port

    # ----- clock ------------------------------------------------------------------------
    def sim_now(self) -> datetime:
        elapsed = (time.monotonic() - self._real_t0) * self.settings.speed
        return self._sim_t0 + timedelta(seconds=elapsed) + self._skipped

    def fast_forward(self, seconds: float) -> None:
        """Step the physics exactly ``seconds`` of simulated time past its last step, at
        once, and move the simulated clock there (never back), so tests drive time without
        waiting. One step: the powers and controls in force then hold over the interval."""
        if seconds < 0:
            raise ValueError("fast_forward: seconds must be >= 0")
        target = self.state.ts + timedelta(seconds=seconds)
        self._skipped = max(self._skipped, target - (self.sim_now() - self._skipped))
        self._step_to(target)

    def elapsed_s(self) -> float:
        """Simulated seconds since the simulation started (scenario time)."""
        return (self.sim_now() - self._sim_t0).total_seconds()

    # ----- faults -----------------------------------------------------------------------
    def load_scenario(self, scenario: Scenario, file: str = "<scenario>") -> None:
        """Check a scenario against this site's devices and script its faults."""
        for i, fault in enumerate(scenario.faults):
            self._check_fault(fault, file, f"faults[{i}]")
        self.faults.load(scenario)

    def load_scenario_data(self, data: Any, file: str = "<scenario>") -> None:
        self.load_scenario(parse_scenario(data, file), file)

    def _check_fault(self, fault: Any, file: str, key: str) -> None:
        targets = self.devices
        if fault.unit is not None:
            targets = [d for d in self.devices if d.unit_id == fault.unit]
            if not targets:
                raise ScenarioError(file, f"{key}.unit", f"no device on unit {fault.unit}")
        refs = []
        if fault.kind == "not_implemented":
            refs = [(f"{key}.points[{j}]", p) for j, p in enumerate(fault.points)]
        elif fault.kind == "scale_factor":
            refs = [(f"{key}.point", fault.point)]
        for ref_key, ref in refs:
            parsed = PointRef.parse(ref)
            if not any(parsed.model in d.profile.models for d in targets):
                raise ScenarioError(file, ref_key, f"{ref}: no such model on the target devices")
            device = next(d for d in targets if parsed.model in d.profile.models)
            assert parsed.model is not None
            if device.block(parsed.model).lay.slot(parsed.path) is None:
                raise ScenarioError(file, ref_key, f"{ref}: no such point")
        if fault.kind == "write_fail" and not any(d.has_writable(fault.point) for d in targets):
            raise ScenarioError(
                file, f"{key}.point", f"{fault.point}: no such writable point on the target devices"
            )
        if fault.kind == "isolator_trip" and not any(d.profile.kind == "isolator" for d in targets):
            raise ScenarioError(file, f"{key}.kind", "no isolator on the target devices")
        if fault.kind == "meter_replaced" and not any(d.profile.kind == "meter" for d in targets):
            raise ScenarioError(file, f"{key}.kind", "no meter on the target devices")
        if fault.kind in ("grid_voltage", "grid_frequency"):
            self._check_grid_fault(fault, file, key)

    def _check_grid_fault(self, fault: Any, file: str, key: str) -> None:
        """The grid is the site's: no ``unit``, and a value this site's grid can have."""
        if fault.unit is not None:
            raise ScenarioError(
                file, f"{key}.unit", "the grid is the whole site's: a grid fault names no unit"
            )
        s = self.settings
        if fault.kind == "grid_voltage" and fault.v > GRID_V_MAX * s.nominal_v:
            raise ScenarioError(
                file,
                f"{key}.v",
                f"{fault.v:g} V is above {GRID_V_MAX:.0%} of the site's nominal {s.nominal_v:g} V",
            )
        if (
            fault.kind == "grid_frequency"
            and abs(fault.hz - s.nominal_hz) > GRID_HZ_BAND * s.nominal_hz
        ):
            lo, hi = ((1 - GRID_HZ_BAND) * s.nominal_hz, (1 + GRID_HZ_BAND) * s.nominal_hz)
            raise ScenarioError(
                file,
                f"{key}.hz",
                f"{fault.hz:g} Hz is outside {lo:g} to {hi:g} Hz (the site's {s.nominal_hz:g} Hz"
                f" ± {GRID_HZ_BAND:.0%})",
            )

    def activate_fault(self, fault: dict[str, Any]) -> None:
        """Switch a fault on now (same fields as a scenario entry, ``at_s`` ignored)."""
        parsed = parse_scenario({"faults": [fault]}, "<runtime>").faults[0]
        self._check_fault(parsed, "<runtime>", "fault")
        self.faults.activate(parsed, self.elapsed_s())
        self._apply_faults()

    def clear_faults(self, kind: str | None = None, unit: int | None = None) -> None:
        self.faults.clear(kind, unit)
        self._apply_faults()

    def _targets(self, fault: Any) -> list[EmulatedDevice]:
        return [d for d in self.devices if fault.unit is None or d.unit_id == fault.unit]

    def _apply_faults(self) -> None:
        now = self.elapsed_s()
        for fault in self.faults.newly_started(now):
            for device in self._targets(fault):
                if fault.kind == "isolator_trip" and device.profile.kind == "isolator":
                    device.trip()
                if fault.kind == "meter_replaced" and device.profile.kind == "meter":
                    flow = meter_flow(self.state, device.meter_at)  # its own registers
                    device.counter_offsets = {
                        "import_wh": flow.import_wh - 1,
                        "export_wh": flow.export_wh - 1,
                    }
                    if fault.serial is not None:
                        device.serial = fault.serial
        for device in self.devices:
            device.sentinels = set()
            device.sf_override = {}
            device.fault_bits = 0
        for fault in self.faults.active(now):
            for device in self._targets(fault):
                if fault.kind == "not_implemented":
                    for ref in fault.points:
                        p = PointRef.parse(ref)
                        if p.model in device.profile.models:
                            device.sentinels.add((p.model or 0, p.path))
                elif fault.kind == "scale_factor":
                    p = PointRef.parse(fault.point)
                    if p.model in device.profile.models:
                        device.sf_override[(p.model or 0, p.path)] = fault.sf
                elif fault.kind == "inverter_fault":
                    device.fault_bits |= fault.bits
        self._render()

    # ----- physics ----------------------------------------------------------------------
    def _controls(self, prev: PlantState) -> tuple[InverterControls, BatteryControls]:
        inverter = InverterControls()
        battery = BatteryControls()
        for device in self.devices:
            ctl = device.inverter_controls()
            if ctl is not None:
                if device.trips(prev) or device.fault_bits:
                    ctl = replace(ctl, connected=False)
                inverter = ctl
            bat = device.battery_controls()
            if bat is not None:
                battery = bat
        if not all(d.isolator_closed for d in self.devices if d.profile.kind == "isolator"):
            inverter = replace(inverter, connected=False)
        return inverter, battery

    def _render(self) -> None:
        for device in self.devices:
            device.render(self.state)
        self._remember()

    def _remember(self) -> None:
        self._history.append(
            (datetime.now(UTC), {d.unit_id: (d.base, list(d.registers)) for d in self.devices})
        )

    def history(self) -> list[Snapshot]:
        """Every SunSpec image served (bounded), oldest first: ``(ts UTC, {unit: (base,
        registers)})``; a new one after each update and each applied write."""
        return list(self._history)

    def tick(self) -> None:
        """Advance the physics to the simulated now and re-render every device."""
        self._step_to(self.sim_now())

    def _step_to(self, now: datetime) -> None:
        if now < self.state.ts:
            return
        grid = self.grid_at((now - self._sim_t0).total_seconds())
        seen = self.state  # what the trip curves judge: the grid of the step
        if grid.v is not None:
            seen = replace(seen, phase_v=(grid.v, grid.v, grid.v))
        if grid.hz is not None:
            seen = replace(seen, hz=grid.hz)
        inverter, battery = self._controls(seen)
        self.state = step(self.plant, self.sky, self.state, now, inverter, battery, grid)
        self._apply_faults()

    def grid_at(self, elapsed_s: float) -> GridCondition:
        """The grid voltage and frequency the faults set at ``elapsed_s`` (the latest
        started ``grid_voltage`` / ``grid_frequency`` fault wins); ``None`` = the plant's."""
        v = self.faults.latest(elapsed_s, "grid_voltage")
        hz = self.faults.latest(elapsed_s, "grid_frequency")
        return GridCondition(
            v=None if v is None else float(v.v), hz=None if hz is None else float(hz.hz)
        )

    async def advance(self) -> None:
        """:meth:`tick`, then open or close the endpoint for night sleep."""
        self.tick()
        sleepy = self.faults.find(self.elapsed_s(), "night_sleep", None) is not None
        if sleepy and self.state.sun_elevation < 0:
            await self.endpoint.sleep()
        else:
            await self.endpoint.wake()

    def pause_updates(self) -> None:
        self._paused = True

    def resume_updates(self) -> None:
        self._paused = False

    # ----- lifecycle --------------------------------------------------------------------
    async def start(self) -> None:
        await self.endpoint.start()
        self._real_t0 = time.monotonic()
        self._sim_t0 = self.state.ts
        self._skipped = timedelta(0)
        self._task = asyncio.create_task(self._run(), name=f"site-{self.settings.site_id}")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.settings.update_period_s)
            if not self._paused:
                try:
                    await self.advance()
                except Exception:
                    log.exception("site %s: update failed", self.settings.site_id)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.endpoint.stop()

    async def __aenter__(self) -> DeviceSite:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


async def run_site(settings: DeviceSiteSettings, stop: asyncio.Event) -> None:
    """Serve one site until ``stop`` is set."""
    async with DeviceSite(settings):
        await stop.wait()
