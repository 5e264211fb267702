"""Polling: one task per device (endpoint, unit id) on its own aligned schedule.

A device is discovered (SunSpec chain at 40000, 0 or 50000 and model 1 identity; none
for a profile with only a vendor map), then every ``poll_interval_s`` (aligned to the
wall clock) each model it maps is read as one block (value and scale factors in one
request) and its vendor registers as contiguous spans, decoded and normalised into one
:class:`contracts.messages.Reading` — through the device's profile when one is
configured, else :data:`edge_agent.normalise.POINT_MAP`.

States: ``online``; ``asleep`` (a PV device that stops answering while the sun is down:
no alarm, an info event); ``unreachable`` (no connection or no answer); ``faulty`` (it
answers, but with exceptions, no SunSpec map, registers that make no sense, or models
its profile does not have). Each state change is logged once and reported once as an
event; every state but ``online`` backs off exponentially, without delaying the other
devices (units on one endpoint share its connection, so they wait for each other's
requests). After a failure the device is discovered again; a device whose models
changed (firmware update) is re-discovered at once, and ``birth`` is re-sent.

A device whose profile has ``state_events`` (an isolator) also reports each change of
its state metric as that event, with the reading that showed it
(:mod:`edge_agent.transitions`; the first reading after start only sets the baseline).
Every event is built from its model in :mod:`contracts.events`.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from contracts.events import (
    DataDropped,
    DeviceBack,
    DeviceDown,
    DeviceModelsChanged,
    DropReason,
    EventType,
    GatewayEvent,
)
from contracts.messages import DeviceInfo, DeviceStatus, Quality, Reading
from contracts.timeutil import truncate_ms
from device_profiles.schema import DeviceProfile, VendorMap
from device_profiles.sunspec_codec import DecodedModel, ModelBlock, SunSpecError, decode_plan
from edge_agent.discovery import DeviceMap, discover, read_model
from edge_agent.events import EventSink
from edge_agent.modbus import ModbusEndpoint, ModbusReadError
from edge_agent.normalise import (
    POINT_MAP,
    MetricSource,
    nameplate,
    normalise_sources,
    profile_sources,
    sunspec_sources,
)
from edge_agent.poll_clock import PollClock, WallClock
from edge_agent.settings import EndpointSettings, RtuEndpointSettings
from edge_agent.transitions import StateWatch
from edge_agent.vendor import decode_registers, read_spans
from pacing import Backoff

log = logging.getLogger(__name__)

Status = DeviceStatus
#: Buffers one event (:mod:`contracts.events`); the agent's ``emit_event``.
#: The event a device entering a status raises (``online`` raises ``device_reachable``).
_STATUS_EVENTS: dict[Status, EventType] = {
    "asleep": EventType.DEVICE_ASLEEP,
    "unreachable": EventType.DEVICE_UNREACHABLE,
    "faulty": EventType.DEVICE_FAULTY,
}
#: Told after every poll: the device, its duration in seconds, and whether it succeeded.
PollObserver = Callable[["DeviceState", float, bool], None]
#: Is the sun down at the site now? None = not known (no location configured).
NightCheck = Callable[[], bool | None]
CLOCK_SANE_AFTER = 1_700_000_000  # 2023-11: an earlier clock is a gateway without RTC/NTP
#: SunSpec inverter models: a device with one of these may be PV-powered (sleeps at night).
PV_MODELS = frozenset({101, 102, 103, 111, 112, 113, 701})
#: Inverter states (101-113 ``St``) after which silence means sleep: SLEEPING, SHUTTING_DOWN.
#: A DER inverter's 701 ``InvSt`` arrives in these codes (its profile translates them).
SLEEPY_STATES = frozenset({2.0, 6.0})


class ProfileMismatch(SunSpecError):
    """The device does not have the models its configured profile maps."""


class ModelsChanged(SunSpecError):
    """A model header read during a poll is not the one discovered (firmware update)."""


def local_device_id(serial: str | None, endpoint: str, unit_id: int) -> str:
    """Model 1 ``SN`` when present (cleaned to the contract's id alphabet), else
    ``<endpoint>-u<unit id>``."""
    if serial:
        clean = re.sub(r"[^A-Za-z0-9_.:-]", "-", serial.strip())[:128]
        if clean.strip("-"):
            return clean
    return f"{endpoint}-u{unit_id}"


@dataclass(slots=True)
class DeviceState:
    endpoint: str
    unit_id: int
    device_id: str
    status: Status = "unreachable"
    map: DeviceMap | None = None
    info: DeviceInfo | None = None
    attempted: bool = False
    last_error: str = ""


@dataclass(slots=True)
class DeviceRegistry:
    """What the agent knows of its devices; ``changed`` fires when ``birth`` is stale."""

    devices: dict[tuple[str, int], DeviceState] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    #: Set once every device was tried (discovered or not): until then an unknown
    #: device id may only mean "not discovered yet".
    first_round: asyncio.Event = field(default_factory=asyncio.Event)
    #: Set when a device answers after not answering (or for the first time): control
    #: applies a config part kept pending for it (decision 153).
    answered: asyncio.Event = field(default_factory=asyncio.Event)

    def note_attempt(self) -> None:
        if all(state.attempted for state in self.devices.values()):
            self.first_round.set()

    def infos(self) -> list[DeviceInfo]:
        # A device never discovered has no serial yet: listing it under its fallback id
        # would register a phantom next to the real one once it answers. Its
        # unreachability is reported by the device_unreachable event instead.
        return [
            state.info.model_copy(update={"status": state.status})
            for state in self.devices.values()
            if state.attempted and state.info is not None
        ]


@dataclass(slots=True)
class _Plan:
    """What one poll of a discovered device reads and how it maps it."""

    blocks: list[ModelBlock]  # the first instance of each mapped model
    sources: list[MetricSource]
    vendor_map: VendorMap | None = None
    vendor_names: list[str] = field(default_factory=list)
    vendor_spans: list[tuple[int, int]] = field(default_factory=list)


class DevicePoller:
    def __init__(
        self,
        endpoint: ModbusEndpoint,
        settings: EndpointSettings | RtuEndpointSettings,
        unit_id: int,
        *,
        registry: DeviceRegistry,
        readings: asyncio.Queue[Reading],
        emit_event: EventSink,
        interval_s: float,
        backoff_max_s: float,
        on_poll: PollObserver | None = None,
        profile: DeviceProfile | None = None,
        is_night: NightCheck | None = None,
        clock: PollClock | None = None,
    ) -> None:
        self._endpoint = endpoint
        self._clock = clock or WallClock()
        self._on_poll = on_poll
        self._settings = settings
        self._unit = unit_id
        self._registry = registry
        self._readings = readings
        self._emit = emit_event
        self._interval = interval_s
        # One device backing off alone: plain doubling from the poll interval.
        self._backoff = Backoff(interval_s, max(backoff_max_s, interval_s), jitter="none")
        self._profile = profile
        self._is_night = is_night or (lambda: None)
        self._plan: _Plan | None = None
        #: Metrics this device has delivered values for: a null among them is flagged.
        self._implemented: set[str] = set()
        self._last_values: dict[str, float | None] = {}
        #: Transitions of the device's state metric (``state_events`` of its profile).
        self._state_watch = (
            StateWatch(profile.state_events)
            if profile is not None and profile.state_events is not None
            else None
        )
        self.state = DeviceState(
            settings.name, unit_id, local_device_id(None, settings.name, unit_id)
        )
        registry.devices[(settings.name, unit_id)] = self.state

    # ----- what the control path needs ---------------------------------------------
    @property
    def endpoint(self) -> ModbusEndpoint:
        return self._endpoint

    @property
    def unit_id(self) -> int:
        return self._unit

    @property
    def profile(self) -> DeviceProfile | None:
        return self._profile

    def model_blocks(self) -> dict[int, tuple[int, int]] | None:
        """Model id → (ID register address, L) of the first instance of each model as
        discovered; None before discovery."""
        if self.state.map is None:
            return None
        blocks: dict[int, tuple[int, int]] = {}
        for block in self.state.map.blocks:
            blocks.setdefault(block.model_id, (block.addr, block.length))
        return blocks

    def rediscover(self) -> None:
        """Discover the device again at its next poll (the ``rescan`` command)."""
        self.state.map = None

    @property
    def _where(self) -> str:
        return f"{self._settings.name} unit {self._unit}"

    async def _read(self, address: int, count: int) -> list[int]:
        return await self._endpoint.read(self._unit, address, count)

    # ----- discovery -----------------------------------------------------------------
    async def _discover(self) -> DeviceMap:
        profile = self._profile
        if profile is not None and not profile.models:
            device = DeviceMap(base=-1, blocks=[])  # a vendor map only: nothing to scan
        else:
            device = await discover(self._read)
        common = device.common.scaled if device.common else {}
        serial = _text(common.get("SN"))
        self._plan = self._make_plan(device)
        static = await self._read_models([b for b in device.blocks if b.model_id == 120])
        previous = self.state.info
        self.state.device_id = local_device_id(serial, self._settings.name, self._unit)
        self.state.map = device
        self.state.info = DeviceInfo(
            device=self.state.device_id,
            endpoint=self._settings.name,
            unit_id=self._unit,
            models=device.model_ids,
            manufacturer=_text(common.get("Mn")) or (profile.manufacturer if profile else None),
            model=_text(common.get("Md")) or (profile.model if profile else None),
            serial=serial,
            firmware=_text(common.get("Vr")),
            profile=profile.name if profile else None,
            nameplate=nameplate(static),
        )
        if previous is not None and (
            previous.models != self.state.info.models
            or previous.firmware != self.state.info.firmware
        ):
            await self._models_changed(previous, self.state.info)
        log.info(
            "device %s discovered on %s: models %s%s",
            self.state.device_id,
            self._where,
            device.model_ids,
            f", profile {profile.name}" if profile else "",
        )
        return device

    async def _models_changed(self, old: DeviceInfo, new: DeviceInfo) -> None:
        log.warning(
            "device %s on %s changed: models %s -> %s, firmware %s -> %s",
            new.device,
            self._where,
            old.models,
            new.models,
            old.firmware,
            new.firmware,
        )
        self._implemented.clear()
        self._registry.changed.set()  # birth is re-sent with the new models
        detail = DeviceModelsChanged(
            endpoint=self._settings.name,
            unit_id=self._unit,
            old_models=old.models,
            new_models=new.models,
            old_firmware=old.firmware,
            new_firmware=new.firmware,
        )
        await self._emit(
            GatewayEvent(type=EventType.DEVICE_MODELS_CHANGED, device=new.device, detail=detail)
        )

    def _make_plan(self, device: DeviceMap) -> _Plan:
        profile = self._profile
        if profile is None:
            sources = sunspec_sources(
                device.model_ids, meter_import_sign=self._settings.meter_import_sign
            )
        else:
            sources = profile_sources(profile)
            wanted = {s.model for s in sources if s.model is not None}
            missing = sorted(wanted - set(device.model_ids))
            if missing:
                raise ProfileMismatch(
                    f"profile {profile.name} maps models {missing} the device does not have "
                    f"(it has {device.model_ids})"
                )
        models = {s.model for s in sources if s.model is not None}
        if profile is None:
            models &= POINT_MAP.keys()
        blocks: list[ModelBlock] = []
        for block in device.blocks:
            if block.model_id in models and block.model_id not in {b.model_id for b in blocks}:
                decode_plan(block.model_id, block.length)  # built here, once, not per poll
                blocks.append(block)  # a repeated model: the first instance is the device's
        vendor_names = [s.point for s in sources if s.model is None]
        vmap = profile.vendor_map if profile is not None else None
        if not vendor_names or vmap is None:  # the loader refuses vendor refs without a map
            return _Plan(blocks, sources)
        spans = read_spans(r for r in vmap.registers if r.name in vendor_names)
        return _Plan(blocks, sources, vmap, vendor_names, spans)

    async def _read_models(self, blocks: list[ModelBlock]) -> dict[int, DecodedModel]:
        decoded: dict[int, DecodedModel] = {}
        for block in blocks:
            regs = await read_model(self._read, block)
            if regs[0] != block.model_id or regs[1] != block.length:
                raise ModelsChanged(
                    f"model {block.model_id} (L {block.length}) at {block.addr} now reads "
                    f"as {regs[0]} (L {regs[1]})"
                )
            decoded[block.model_id] = decode_plan(block.model_id, block.length).decode(regs)
        return decoded

    # ----- polling -------------------------------------------------------------------
    async def _poll_device(self) -> Reading:
        plan = self._plan
        if plan is None or self.state.map is None:
            await self._discover()
            plan = self._plan
            assert plan is not None  # _discover made it
        ts = truncate_ms(self._clock.now())
        decoded = await self._read_models(plan.blocks)
        vendor: dict[str, int] = {}
        if plan.vendor_map is not None:
            blocks = {addr: await self._read(addr, count) for addr, count in plan.vendor_spans}
            vendor = decode_registers(plan.vendor_map, plan.vendor_names, blocks)
        norm = normalise_sources(plan.sources, decoded, vendor, implemented=self._implemented)
        self._implemented.update(m for m, v in norm.values.items() if v is not None)
        self._last_values = norm.values
        flags = list(norm.flags)
        quality = norm.quality
        if ts.timestamp() < CLOCK_SANE_AFTER:
            flags.append("clock_suspect")
            quality = Quality.SUSPECT
        return Reading(
            device=self.state.device_id, ts=ts, quality=quality, flags=flags, values=norm.values
        )

    async def poll_once(self) -> Reading:
        """Read, decode and normalise every mapped model; discover first if needed, and
        again at once if the device's models changed under us."""
        try:
            return await self._poll_device()
        except ModelsChanged as exc:
            log.warning(
                "device %s on %s: %s; discovering again", self.state.device_id, self._where, exc
            )
            self.state.map = None
            return await self._poll_device()

    # ----- state ---------------------------------------------------------------------
    def _may_sleep(self) -> bool:
        """Could this be a PV-powered device (one that sleeps at night)?"""
        if self._profile is not None:
            return self._profile.kind in ("inverter", "hybrid_inverter")
        info = self.state.info
        return info is None or bool(PV_MODELS & set(info.models))

    def _asleep(self) -> bool:
        if not self._may_sleep():
            return False
        night = self._is_night()
        if night is not None:
            return night
        # No location: silence right after the inverter said it was going to sleep.
        return self._last_values.get("pv_state_code") in SLEEPY_STATES

    def _classify(self, exc: Exception) -> tuple[Status, str]:
        if isinstance(exc, ModbusReadError):
            if exc.reason in ("connect", "timeout", "io"):
                return ("asleep" if self._asleep() else "unreachable"), str(exc)
            return "faulty", f"exception response: {exc.detail}"
        if isinstance(exc, SunSpecError):
            return "faulty", str(exc)
        return "faulty", f"{type(exc).__name__}: {exc}"

    async def _set_status(self, status: Status, error: str = "") -> None:
        previous, first = self.state.status, not self.state.attempted
        self.state.attempted = True
        self.state.last_error = error
        if first:
            self._registry.note_attempt()
        if status == previous and not first:
            return
        self.state.status = status
        self._registry.changed.set()
        device = self.state.device_id
        endpoint = self._settings.name
        if status == "online":
            self._registry.answered.set()
            if not first:
                log.info(
                    "device %s (%s) %s again",
                    device,
                    self._where,
                    "awake" if previous == "asleep" else "reachable",
                )
                back = DeviceBack(endpoint=endpoint, unit_id=self._unit, was=previous)
                await self._emit(
                    GatewayEvent(type=EventType.DEVICE_REACHABLE, device=device, detail=back)
                )
            return
        if status == "asleep":
            log.info("device %s (%s) asleep (sun down): %s", device, self._where, error)
        elif status == "unreachable":
            log.warning("device %s (%s) unreachable: %s", device, self._where, error)
        else:
            log.warning("device %s (%s) faulty: %s", device, self._where, error)
        down = DeviceDown(endpoint=endpoint, unit_id=self._unit, error=error)
        await self._emit(GatewayEvent(type=_STATUS_EVENTS[status], device=device, detail=down))

    async def _timed_poll(self) -> Reading:
        if self._on_poll is None:
            return await self.poll_once()
        started = time.perf_counter()
        ok = False
        try:
            reading = await self.poll_once()
            ok = True
            return reading
        finally:
            self._on_poll(self.state, time.perf_counter() - started, ok)

    async def run(self) -> None:
        failures = 0
        while True:
            if failures:
                await self._clock.wait(self._backoff.delay(failures))
            else:
                await self._clock.wait_aligned(self._interval)
            try:
                reading = await self._timed_poll()
            except Exception as exc:
                # An odd device must never stop the other devices' pollers.
                failures += 1
                self.state.map = None  # whatever it was, discover again when it answers
                status, error = self._classify(exc)
                if status == "faulty" and not isinstance(exc, ModbusReadError | SunSpecError):
                    log.exception("device %s: unexpected error while polling", self.state.device_id)
                await self._set_status(status, error)
                continue
            failures = 0
            await self._set_status("online")
            await self._watch_state(reading)
            try:
                self._readings.put_nowait(reading)
            except asyncio.QueueFull:
                log.error("reading queue full: dropped a reading of %s", self.state.device_id)
                lost = DataDropped(
                    reason=DropReason.READING_QUEUE_FULL,
                    readings=1,
                    from_=reading.ts,
                    to=reading.ts,
                )
                await self._emit(
                    GatewayEvent(type=EventType.DATA_DROPPED, device=reading.device, detail=lost)
                )

    async def _watch_state(self, reading: Reading) -> None:
        """Tell a change of the device's state metric (an isolator opening …) as its event."""
        if self._state_watch is None:
            return
        event = self._state_watch.observe(reading)
        if event is not None:
            metric = self._state_watch.rule.metric
            log.warning(
                "device %s (%s): %s (%s = %s at %s)",
                reading.device,
                self._where,
                event.type.value,
                metric,
                reading.values.get(metric),
                reading.ts,
            )
            await self._emit(event)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
