"""The devices control can reach: a device id's poller, a writer for it, every profile."""

from __future__ import annotations

from collections.abc import Sequence

from device_profiles.schema import DeviceProfile
from device_profiles.setpoints import device_nameplate
from edge_agent.control.stats import ControlStats
from edge_agent.device_writer import DeviceWriter, limit_guard
from edge_agent.poller import DevicePoller

__all__ = ["Devices"]


class Devices:
    def __init__(
        self, pollers: Sequence[DevicePoller], stats: ControlStats, *, adopt_timeout_s: float
    ) -> None:
        self.pollers = list(pollers)
        self._stats = stats
        self._adopt_timeout_s = adopt_timeout_s

    def poller(self, device: str) -> DevicePoller | None:
        return next((p for p in self.pollers if p.state.device_id == device), None)

    def writer(self, poller: DevicePoller, profile: DeviceProfile) -> DeviceWriter | None:
        """A writer at the device's discovered model addresses; None before discovery."""
        blocks = poller.model_blocks()
        if blocks is None:
            return None
        nameplate = device_nameplate(poller.state.info.nameplate if poller.state.info else {})
        return DeviceWriter(
            poller.endpoint,
            poller.unit_id,
            profile,
            blocks,
            guard=limit_guard(profile, nameplate),
            adopt_timeout_s=self._adopt_timeout_s,
            on_write=lambda outcome: self._stats.writes.update([outcome]),
        )

    def profiles(self) -> tuple[dict[str, DeviceProfile], dict[str, dict[str, float]]]:
        """Profiles and nameplates of every discovered device with a profile."""
        profiles: dict[str, DeviceProfile] = {}
        nameplates: dict[str, dict[str, float]] = {}
        for poller in self.pollers:
            info = poller.state.info
            if info is not None and poller.profile is not None:
                profiles[info.device] = poller.profile
                nameplates[info.device] = device_nameplate(info.nameplate)
        return profiles, nameplates
