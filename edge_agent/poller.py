"""Polling: one task per device (endpoint, unit id) on its own aligned schedule.

A device is discovered (SunSpec chain, model 1 identity), then every ``poll_interval_s``
(aligned to the wall clock) each mapped model is read as one block, decoded and
normalised into one :class:`contracts.messages.Reading`. A failing device backs off
exponentially and is reported ``unreachable`` (status in ``birth`` and one
``device_unreachable`` event per transition) without delaying the other devices.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from contracts.messages import DeviceInfo, Quality, Reading
from contracts.timeutil import to_wire, truncate_ms, utc_now
from edge_agent.discovery import DeviceMap, discover, read_model
from edge_agent.modbus import ModbusEndpoint, ModbusReadError
from edge_agent.normalise import POINT_MAP, nameplate, normalise
from edge_agent.settings import EndpointSettings
from edge_agent.sunspec import DecodedModel, SunSpecError, decode_model

log = logging.getLogger(__name__)

Status = Literal["online", "asleep", "unreachable", "faulty"]
EventSink = Callable[[str, str, str | None, dict[str, Any]], Awaitable[None]]
#: Told after every poll: the device, its duration in seconds, and whether it succeeded.
PollObserver = Callable[["DeviceState", float, bool], None]
CLOCK_SANE_AFTER = 1_700_000_000  # 2023-11: an earlier clock is a gateway without RTC/NTP


def local_device_id(serial: str | None, endpoint: str, unit_id: int) -> str:
    """Model 1 ``SN`` when present (cleaned to the contract's id alphabet), else
    ``<endpoint>-u<unit id>``."""
    if serial:
        clean = re.sub(r"[^A-Za-z0-9_.:-]", "-", serial.strip())[:128]
        if clean.strip("-"):
            return clean
    return f"{endpoint}-u{unit_id}"


def next_aligned(now: float, interval: float) -> float:
    """The next multiple of ``interval`` strictly after ``now`` (epoch seconds)."""
    return (math.floor(now / interval) + 1) * interval


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

    def infos(self) -> list[DeviceInfo]:
        # A device never discovered has no serial yet: listing it under its fallback id
        # would register a phantom next to the real one once it answers. Its
        # unreachability is reported by the device_unreachable event instead.
        return [
            state.info.model_copy(update={"status": state.status})
            for state in self.devices.values()
            if state.attempted and state.info is not None
        ]


class DevicePoller:
    def __init__(
        self,
        endpoint: ModbusEndpoint,
        settings: EndpointSettings,
        unit_id: int,
        *,
        registry: DeviceRegistry,
        readings: asyncio.Queue[Reading],
        emit_event: EventSink,
        interval_s: float,
        backoff_max_s: float,
        on_poll: PollObserver | None = None,
    ) -> None:
        self._endpoint = endpoint
        self._on_poll = on_poll
        self._settings = settings
        self._unit = unit_id
        self._registry = registry
        self._readings = readings
        self._emit = emit_event
        self._interval = interval_s
        self._backoff_max = max(backoff_max_s, interval_s)
        self.state = DeviceState(
            settings.name, unit_id, local_device_id(None, settings.name, unit_id)
        )
        registry.devices[(settings.name, unit_id)] = self.state

    async def _read(self, address: int, count: int) -> list[int]:
        return await self._endpoint.read(self._unit, address, count)

    async def _discover(self) -> DeviceMap:
        device = await discover(self._read)
        common = device.common.scaled if device.common else {}
        serial = _text(common.get("SN"))
        self.state.device_id = local_device_id(serial, self._settings.name, self._unit)
        self.state.map = device
        static = await self._read_models(device, only=(120,))
        self.state.info = DeviceInfo(
            device=self.state.device_id,
            endpoint=self._settings.name,
            unit_id=self._unit,
            models=device.model_ids,
            manufacturer=_text(common.get("Mn")),
            model=_text(common.get("Md")),
            serial=serial,
            firmware=_text(common.get("Vr")),
            nameplate=nameplate(static),
        )
        log.info(
            "device %s discovered on %s unit %d: models %s",
            self.state.device_id,
            self._settings.name,
            self._unit,
            device.model_ids,
        )
        return device

    async def _read_models(
        self, device: DeviceMap, only: tuple[int, ...] | None = None
    ) -> dict[int, DecodedModel]:
        decoded: dict[int, DecodedModel] = {}
        for block in device.blocks:
            if block.model_id not in POINT_MAP or (only and block.model_id not in only):
                continue
            if block.model_id in decoded:
                continue  # a repeated model: the first instance is the device's own
            decoded[block.model_id] = decode_model(
                block.model_id, await read_model(self._read, block)
            )
        return decoded

    async def poll_once(self) -> Reading:
        """Read, decode and normalise every mapped model; discover first if needed."""
        device = self.state.map or await self._discover()
        ts = truncate_ms(utc_now())
        decoded = await self._read_models(device)
        norm = normalise(decoded, meter_import_sign=self._settings.meter_import_sign)
        flags = list(norm.flags)
        quality = norm.quality
        if ts.timestamp() < CLOCK_SANE_AFTER:
            flags.append("clock_suspect")
            quality = Quality.SUSPECT
        return Reading(
            device=self.state.device_id, ts=ts, quality=quality, flags=flags, values=norm.values
        )

    async def _set_status(self, status: Status, error: str = "") -> None:
        previous, first = self.state.status, not self.state.attempted
        self.state.attempted = True
        self.state.last_error = error
        if status == previous and not first:
            return
        self.state.status = status
        self._registry.changed.set()
        detail = {"endpoint": self._settings.name, "unit_id": self._unit}
        if status == "faulty":
            await self._emit(
                "device_faulty", "warning", self.state.device_id, {**detail, "error": error}
            )
        elif status == "unreachable":
            log.warning(
                "device %s (%s unit %d) unreachable: %s",
                self.state.device_id,
                self._settings.name,
                self._unit,
                error,
            )
            await self._emit(
                "device_unreachable", "warning", self.state.device_id, {**detail, "error": error}
            )
        elif not first:
            log.info(
                "device %s (%s unit %d) reachable again",
                self.state.device_id,
                self._settings.name,
                self._unit,
            )
            await self._emit("device_reachable", "info", self.state.device_id, detail)

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
                delay = min(self._interval * 2 ** (failures - 1), self._backoff_max)
                await asyncio.sleep(delay)
            else:
                now = time.time()
                await asyncio.sleep(next_aligned(now, self._interval) - now)
            try:
                reading = await self._timed_poll()
            except (ModbusReadError, SunSpecError, ValueError) as exc:
                failures += 1
                if isinstance(exc, ModbusReadError) and exc.reason == "exception":
                    self.state.map = None  # the map changed under us: discover again
                await self._set_status("unreachable", str(exc))
                continue
            except Exception as exc:
                # An odd device must never stop the other devices' pollers.
                failures += 1
                self.state.map = None
                log.exception("device %s: unexpected error while polling", self.state.device_id)
                await self._set_status("faulty", f"{type(exc).__name__}: {exc}")
                continue
            failures = 0
            await self._set_status("online")
            try:
                self._readings.put_nowait(reading)
            except asyncio.QueueFull:
                log.error("reading queue full: dropped a reading of %s", self.state.device_id)
                await self._emit(
                    "data_dropped",
                    "warning",
                    self.state.device_id,
                    {
                        "reason": "reading queue full",
                        "from": to_wire(reading.ts),
                        "to": to_wire(reading.ts),
                        "readings": 1,
                    },
                )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


async def run_batcher(
    readings: asyncio.Queue[Reading],
    persist: Callable[[list[Reading]], Awaitable[None]],
    *,
    interval_s: float,
    offset_s: float,
) -> None:
    """Every ``interval_s`` (aligned, + ``offset_s``) persist the queued readings as one
    batch; on cancellation persist what is left, then stop."""
    try:
        while True:
            now = time.time()
            await asyncio.sleep(next_aligned(now - offset_s, interval_s) + offset_s - now)
            await _drain(readings, persist)
    except asyncio.CancelledError:
        await _drain(readings, persist)
        raise


async def _drain(
    readings: asyncio.Queue[Reading], persist: Callable[[list[Reading]], Awaitable[None]]
) -> None:
    batch: list[Reading] = []
    while not readings.empty():
        batch.append(readings.get_nowait())
    if batch:
        await persist(batch)
