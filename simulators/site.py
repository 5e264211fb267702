"""One simulated site: a SunSpec three-phase PV inverter and a grid meter over Modbus TCP.

The inverter answers on unit id 1 (models 1, 103, 120, 123) and the meter on unit id 2
(models 1, 203), each with its own ``SunS`` chain at 40000. Values follow
:mod:`simulators.physics`; the meter's ``W`` is **positive when importing** from the grid.

Usage::

    async with SiteSimulator(SiteSimSettings(site_id="s1", region="au")) as site:
        site.port, site.devices, site.history(), site.tick()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import zlib
from collections import deque
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from simulators.devices import (
    INVERTER_UNIT,
    METER_UNIT,
    controls_from_registers,
    inverter_models,
    meter_models,
    serial_number,
)
from simulators.modbus_server import ImageServer
from simulators.physics import DEFAULT_TZ, Controls, SiteSample, Totals, initial_totals, step
from simulators.sunspec_image import SUNS_BASE, ModelBlock, device_image

log = logging.getLogger(__name__)

#: One served image: when it started being served, and per unit (base address, registers).
Snapshot = tuple[datetime, dict[int, tuple[int, list[int]]]]


class SiteSimSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    site_id: str = Field(min_length=1)
    region: Literal["au", "us", "es"]
    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535)
    pv_capacity_w: float = Field(default=5000.0, gt=0)
    update_period_s: float = Field(default=1.0, gt=0)
    speed: float = Field(default=1.0, gt=0, description="simulated seconds per real second")
    start_time: AwareDatetime | None = Field(
        default=None, description="simulated time at start; None = now"
    )
    tz: str | None = Field(default=None, description="IANA zone; None = the region's default")
    seed: int | None = Field(default=None, description="noise seed; None = from site_id")
    history_size: int = Field(default=2000, ge=1)


class SiteSimulator:
    """A site's devices served over real Modbus TCP; see the module docstring."""

    def __init__(self, settings: SiteSimSettings) -> None:
        self.settings = settings
        self._tz = settings.tz or DEFAULT_TZ[settings.region]
        self._seed = (
            settings.seed if settings.seed is not None else zlib.crc32(settings.site_id.encode())
        )
        self.devices: list[tuple[int, str, str]] = [
            (INVERTER_UNIT, serial_number(settings.site_id, "inverter"), "inverter"),
            (METER_UNIT, serial_number(settings.site_id, "meter"), "meter"),
        ]
        self._controls = Controls()
        self._history: deque[Snapshot] = deque(maxlen=settings.history_size)
        self._paused = False
        self._real_t0 = time.monotonic()
        self._sim_t0 = settings.start_time or datetime.now(UTC)
        self._sample = self._step(initial_totals(self._seed), self._sim_t0, 0.0)
        self._images, self.blocks = self._build_images(self._sample)
        self._server: ImageServer | None = None
        self._task: asyncio.Task[None] | None = None

    # ----- clock and physics --------------------------------------------------------
    def sim_now(self) -> datetime:
        """The simulated time: ``start_time + real elapsed * speed``."""
        elapsed = (time.monotonic() - self._real_t0) * self.settings.speed
        return self._sim_t0 + timedelta(seconds=elapsed)

    def _step(self, totals: Totals, ts: datetime, dt_s: float) -> SiteSample:
        return step(
            totals,
            ts,
            dt_s,
            region=self.settings.region,
            tz=self._tz,
            capacity_w=self.settings.pv_capacity_w,
            seed=self._seed,
            controls=self._controls,
        )

    def _build_images(
        self, sample: SiteSample
    ) -> tuple[dict[int, list[int]], dict[int, list[ModelBlock]]]:
        inv_serial = self.devices[0][1]
        mtr_serial = self.devices[1][1]
        cap = self.settings.pv_capacity_w
        inv, inv_blocks = device_image(
            inverter_models(sample, serial=inv_serial, capacity_w=cap, controls=self._controls)
        )
        mtr, mtr_blocks = device_image(meter_models(sample, serial=mtr_serial, capacity_w=cap))
        return (
            {INVERTER_UNIT: inv, METER_UNIT: mtr},
            {INVERTER_UNIT: inv_blocks, METER_UNIT: mtr_blocks},
        )

    @property
    def sample(self) -> SiteSample:
        """The physics sample behind the image being served."""
        return self._sample

    def tick(self) -> None:
        """Advance the physics to the simulated now and serve the new image."""
        now = self.sim_now()
        dt = (now - self._sample.ts).total_seconds()
        if dt < 0:
            return
        self._sample = self._step(self._sample.totals, now, dt)
        self._images, _ = self._build_images(self._sample)
        self._serve()

    def _serve(self) -> None:
        if self._server is not None:
            for unit, regs in self._images.items():
                self._server.publish(unit, regs)
        self._history.append(
            (datetime.now(UTC), {u: (SUNS_BASE, list(r)) for u, r in self._images.items()})
        )

    def pause_updates(self) -> None:
        """Freeze the served values (``tick()`` still forces an update)."""
        self._paused = True

    def resume_updates(self) -> None:
        self._paused = False

    def history(self) -> list[Snapshot]:
        """Every image served (bounded), oldest first: ``(ts UTC, {unit: (base, regs)})``."""
        return list(self._history)

    def _on_write(self, unit_id: int, address: int, values: list[int]) -> None:
        if unit_id != INVERTER_UNIT or self._server is None:
            return
        block = next(b for b in self.blocks[INVERTER_UNIT] if b.model_id == 123)
        regs = self._server.registers(INVERTER_UNIT)
        start = block.addr - SUNS_BASE
        self._controls = controls_from_registers(
            regs[start : start + block.length + 2], self._controls
        )
        log.info(
            "site %s: controls written at %d: %s", self.settings.site_id, address, self._controls
        )
        self._images[INVERTER_UNIT] = regs
        self._history.append(
            (datetime.now(UTC), {u: (SUNS_BASE, list(r)) for u, r in self._images.items()})
        )

    # ----- lifecycle ------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("simulator not started")
        return self._server.port

    async def start(self) -> None:
        controls_block = next(b for b in self.blocks[INVERTER_UNIT] if b.model_id == 123)
        writable = {
            INVERTER_UNIT: [
                (controls_block.addr + 2, controls_block.addr + 1 + controls_block.length)
            ]
        }
        self._server = ImageServer(
            self.settings.host,
            self.settings.port,
            {u: (SUNS_BASE, r) for u, r in self._images.items()},
            writable=writable,
            on_write=self._on_write,
        )
        await self._server.start()
        self._real_t0 = time.monotonic()
        self._sim_t0 = self._sample.ts
        self._serve()
        self._task = asyncio.create_task(self._run(), name=f"sim-{self.settings.site_id}")
        log.info(
            "site %s (%s) serving %s on %s:%d",
            self.settings.site_id,
            self.settings.region,
            self.devices,
            self.settings.host,
            self.port,
        )

    async def _run(self) -> None:
        period = self.settings.update_period_s
        while True:
            await asyncio.sleep(period)
            if not self._paused:
                self.tick()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._server is not None:
            await self._server.stop()
            self._server = None

    async def __aenter__(self) -> SiteSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


async def run_site(settings: SiteSimSettings, stop: asyncio.Event) -> None:
    """Serve one simulated site until ``stop`` is set."""
    async with SiteSimulator(settings):
        await stop.wait()
