"""Device types as data: SunSpec models or vendor maps, metrics, limits and commands.

Imports only :mod:`contracts` of the project (plus pysunspec2's model definitions).
"""

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
    "PointRef",
    "ProfileError",
    "builtin_profile",
    "builtin_profiles",
    "check_profile",
    "load_profile",
    "load_profiles",
    "parse_profile",
]
