"""Device types as data: SunSpec models or vendor maps, metrics, limits and commands;
and grid-code profiles (a region's required settings with provenance) with their mapping
onto a device's settings (:mod:`device_profiles.grid_code`,
:mod:`device_profiles.grid_code_sunspec`).

Imports only :mod:`contracts` of the project (plus pysunspec2's model definitions).
"""

from device_profiles.grid_code import (
    GridCodeError,
    GridCodeProfile,
    builtin_grid_code,
    builtin_grid_codes,
    load_grid_codes,
    rollout_refusal,
)
from device_profiles.grid_code_sunspec import GridCodeSettings, device_settings
from device_profiles.loader import (
    BUILTIN_DIR,
    ProfileError,
    builtin_profile,
    builtin_profiles,
    check_profile,
    load_profile,
    load_profiles,
    parse_profile,
)
from device_profiles.schema import DeviceProfile, PointRef

__all__ = [
    "BUILTIN_DIR",
    "DeviceProfile",
    "GridCodeError",
    "GridCodeProfile",
    "GridCodeSettings",
    "PointRef",
    "ProfileError",
    "builtin_grid_code",
    "builtin_grid_codes",
    "builtin_profile",
    "builtin_profiles",
    "check_profile",
    "device_settings",
    "load_grid_codes",
    "load_profile",
    "load_profiles",
    "parse_profile",
    "rollout_refusal",
]
