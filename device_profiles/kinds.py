"""What kind of device a gateway's birth describes, from the SunSpec models it implements.

Shared by the registry (its device records) and the alerts service (rules that name
device kinds), so both classify a device alike from the same ``gateway.birth``.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["device_kind"]

# A battery's own models (802-804) come first: a battery reports its energy counters in
# the DER AC model 701 too. Storage controls (124, 713) alone also sit on inverters with
# a battery behind them (hybrids), so they count only after the inverter models.
_KIND_BY_MODEL: tuple[tuple[frozenset[int], str], ...] = (
    (frozenset({802, 803, 804}), "battery"),
    (frozenset({101, 102, 103, 111, 112, 113, 701}), "inverter"),
    (frozenset({201, 202, 203, 204, 211, 212, 213, 214}), "meter"),
    (frozenset({124, 713}), "battery"),
)


def device_kind(models: Iterable[int], profile: str | None = None) -> str:
    """Classify a device by the SunSpec models it implements (first match wins); an
    isolator (a vendor map, no SunSpec model) by its profile's name; else ``unknown``."""
    found = set(models)
    for ids, kind in _KIND_BY_MODEL:
        if found & ids:
            return kind
    if profile and "isolator" in profile:
        return "isolator"
    return "unknown"
