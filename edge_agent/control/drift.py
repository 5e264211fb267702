"""Drift: the effective settings read back; a changed drift set is reported once.

The agent reports drift (``config_state`` ``drifted`` and a ``config_drift`` event); it
never writes a value back on its own.
"""

from __future__ import annotations

import logging
from typing import Any

from contracts.events import ConfigDrift, EventType, GatewayEvent
from edge_agent.config_report import drift_body
from edge_agent.control.answers import Answers
from edge_agent.control.configs import ConfigBook
from edge_agent.control.devices import Devices
from edge_agent.control_store import ControlStore, HandledConfig
from edge_agent.device_writer import SettingValue, WriteFailed
from edge_agent.events import EventSink

__all__ = ["DriftCheck"]

log = logging.getLogger(__name__)


class DriftCheck:
    def __init__(
        self,
        gateway_id: str,
        book: ConfigBook,
        store: ControlStore,
        devices: Devices,
        answers: Answers,
        emit_event: EventSink,
    ) -> None:
        self._gateway_id = gateway_id
        self._book = book
        self._store = store
        self._devices = devices
        self._answers = answers
        self._emit = emit_event

    async def check(self) -> list[str]:
        """Read every effective setting back; report a changed drift set."""
        handled = self._book.handled
        if handled is None:
            return self._book.drift
        drift, found = await self._differences()
        if sorted(drift) == sorted(self._book.drift):
            return self._book.drift
        body = drift_body(handled.state, drift)
        await self._book.save(HandledConfig(handled.version, handled.hash, body), {})
        log.warning("gateway %s: config drift now %s", self._gateway_id, sorted(drift) or "cleared")
        if drift:
            drifted = ConfigDrift.model_validate({"version": handled.version, "drift": found})
            await self._emit(GatewayEvent(type=EventType.CONFIG_DRIFT, detail=drifted))
        await self._answers.publish_state(body)
        return self._book.drift

    async def _differences(self) -> tuple[list[str], list[dict[str, Any]]]:
        """``<device>.<setting>`` of every drifted setting, and what each reads."""
        effective = await self._store.io(self._store.effective)
        drift: list[str] = []
        found: list[dict[str, Any]] = []
        for device, settings in effective.items():
            if device in self._book.pending:
                continue  # an older config's settings: the pending one comes first
            poller = self._devices.poller(device)
            if poller is None or poller.profile is None:
                continue
            writer = self._devices.writer(poller, poller.profile)
            if writer is None:
                continue
            for name, value in settings.items():
                setting = poller.profile.setting(name)
                if setting is None:
                    continue
                expected: SettingValue = tuple(value) if isinstance(value, list) else float(value)
                try:
                    await writer.check_setting(setting.point, expected)
                except WriteFailed as exc:
                    if not exc.mismatch:
                        continue  # unreadable now is not drift
                    drift.append(f"{device}.{name}")
                    found.append(
                        {"device": device, "setting": name, "expected": value, "actual": exc.reason}
                    )
        return drift, found
