"""A grid-code profile as a rollout's content: the settings that put it into effect on
each device profile that can take it (the rollout service's :class:`ContentResolver`).

The grid-code profiles are data in ``device_profiles/grid_codes/``; the settings per
device profile come from :func:`device_profiles.device_settings` (7xx points where the
device has them, else 1xx). A profile's unverified values (source not checked against
the published standard) travel with the content, so a production rollout can refuse
them unless overridden (ARCHITECTURE 113).
"""

from __future__ import annotations

from collections.abc import Mapping

from cloud.config.errors import RefusedError
from cloud.config.rollout_models import ProfileContent
from contracts.messages import ProfileRef
from device_profiles import DeviceProfile, GridCodeProfile, device_settings

__all__ = ["GridCodeContent"]


class GridCodeContent:
    """``profile`` → its settings by device profile name, or None when it names no
    grid-code profile (a label only: the rollout must then name its settings)."""

    def __init__(
        self, grid_codes: Mapping[str, GridCodeProfile], devices: Mapping[str, DeviceProfile]
    ) -> None:
        self._grid_codes = grid_codes
        self._devices = devices

    def __call__(self, profile: ProfileRef) -> ProfileContent | None:
        grid_code = self._grid_codes.get(profile.id)
        if grid_code is None:
            return None
        if grid_code.region != profile.region.value:
            raise RefusedError(
                "profile.region", grid_code.region, f"{profile.id} is a {grid_code.region} profile"
            )
        if grid_code.version != profile.version:
            raise RefusedError(
                "profile.version",
                str(grid_code.version),
                f"{profile.id} is at version {grid_code.version}, not {profile.version}",
            )
        settings = {}
        for name, device in sorted(self._devices.items()):
            mapped = device_settings(grid_code, device).settings
            if mapped:
                settings[name] = dict(mapped)
        return ProfileContent(settings=settings, unverified=tuple(grid_code.unverified_keys))
