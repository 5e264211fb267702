"""The control task: signed commands and configs from the cloud, applied one at a time.

The publisher hands every raw ``cmd``/``config`` payload (bytes, verified on the raw
mapping) to :meth:`ControlService.submit`; a bounded queue (:mod:`.intake`) feeds one
task, so a slow write never blocks the poll loop or the MQTT session. Commands
(:mod:`.commands`), configs (:mod:`.configs`) and drift checks (:mod:`.drift`) take
turns under one lock: two never write to a device at once. See ``docs/control.md``.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from contracts.control import ReplayGuard
from contracts.signing import TrustedKeys
from edge_agent.control.answers import Answers
from edge_agent.control.commands import Commands
from edge_agent.control.configs import ConfigBook, Configs
from edge_agent.control.devices import Devices
from edge_agent.control.drift import DriftCheck
from edge_agent.control.intake import Intake
from edge_agent.control.stats import ControlStats
from edge_agent.control_store import ControlStore
from edge_agent.events import EventSink
from edge_agent.pending import HeldMessages
from edge_agent.poller import DevicePoller, DeviceRegistry
from edge_agent.settings import AgentSettings

__all__ = ["ControlService"]

log = logging.getLogger(__name__)


class ControlService:
    def __init__(
        self,
        settings: AgentSettings,
        held: HeldMessages,
        pollers: list[DevicePoller],
        emit_event: EventSink,
        store: ControlStore,
        trusted: TrustedKeys,
        registry: DeviceRegistry,
    ) -> None:
        gateway_id = settings.gateway_id
        self._s = settings
        self._registry = registry
        self._held = held
        self.stats = ControlStats()
        self._lock = asyncio.Lock()
        answers = Answers(held, self.stats, gateway_id)
        self._devices = Devices(pollers, self.stats, adopt_timeout_s=settings.curve_adopt_timeout_s)
        self._book = ConfigBook(store)
        self._intake = Intake(
            settings.control_queue_size, answers, self.stats, self._book.state, gateway_id
        )
        guard = ReplayGuard(
            settings.replay_capacity,
            max_lifetime=timedelta(seconds=settings.command_max_lifetime_s),
            seen=store.seen(),
            store=store,
        )
        self._commands = Commands(
            settings, store, guard, trusted, self._devices, answers, self.stats
        )
        self._configs = Configs(gateway_id, trusted, self._book, self._devices, answers, self.stats)
        self._drift = DriftCheck(gateway_id, self._book, store, self._devices, answers, emit_event)
        if not trusted.kids():
            log.warning("gateway %s: no trusted keys: every cmd/config is refused", gateway_id)

    @property
    def config_version(self) -> int | None:
        """The last handled config version (``birth``'s ``config_version``)."""
        return self._book.version

    async def submit(self, kind: str, payload: bytes) -> None:
        """Queue a raw ``cmd``/``config``; a full queue answers "busy" at once."""
        await self._intake.submit(kind, payload)

    async def handle_command(self, payload: bytes) -> None:
        await self._commands.handle(payload)

    async def handle_config(self, payload: bytes) -> None:
        await self._configs.handle(payload)

    async def check_drift(self) -> list[str]:
        """Read every effective setting back; report a changed drift set."""
        return await self._drift.check()

    async def apply_pending(self) -> None:
        """Apply the pending part of the config on devices answering again."""
        await self._configs.apply_pending()

    async def run(self) -> None:
        """Handle queued documents one at a time; check drift every interval; apply a
        pending config part as soon as its device answers again (decision 153)."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._drift_loop())
            tg.create_task(self._pending_loop())
            await self._commands.report_interrupted()
            await self._first_discovery()
            while True:
                kind, payload = await self._intake.get()
                async with self._lock:
                    try:
                        if kind == "cmd":
                            await self.handle_command(payload)
                        else:
                            await self.handle_config(payload)
                    except Exception:
                        log.exception("gateway %s: %s not handled", self._s.gateway_id, kind)

    async def _first_discovery(self) -> None:
        """Hold documents until every device was tried once (bounded): a command or the
        retained config arriving right after a (re)start must not find its device
        "unknown" only because discovery has not run yet."""
        if all(p.state.attempted for p in self._devices.pollers):
            return  # nothing to discover (no devices), or already done
        try:
            async with asyncio.timeout(self._s.control_discovery_wait_s):
                await self._registry.first_round.wait()
        except TimeoutError:
            log.warning(
                "gateway %s: devices not all tried within %.0fs; handling documents anyway",
                self._s.gateway_id,
                self._s.control_discovery_wait_s,
            )

    async def _pending_loop(self) -> None:
        while True:
            await self._registry.answered.wait()
            self._registry.answered.clear()
            async with self._lock:
                try:
                    await self.apply_pending()
                except Exception:
                    log.exception("gateway %s: pending config not applied", self._s.gateway_id)

    async def _drift_loop(self) -> None:
        while True:
            await asyncio.sleep(self._s.config_check_interval_s)
            async with self._lock:
                try:
                    await self._held.flush()
                    await self.apply_pending()  # also when no status change was seen
                    await self.check_drift()
                except Exception:
                    log.exception("gateway %s: drift check failed", self._s.gateway_id)
