"""IANA time zone names: which are real, and their ``ZoneInfo``."""

from __future__ import annotations

import re
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

#: Longest IANA name is 32 characters today; 64 leaves room and bounds the input.
MAX_ZONE_LEN = 64
_ZONE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_+\-/]{0,63}$")
#: Files in the zone database that are not zones a place keeps.
_NOT_PLACES = frozenset({"localtime", "Factory", "posixrules"})


@cache
def _known() -> frozenset[str]:
    return frozenset(available_timezones()) - _NOT_PLACES


def is_iana_zone(name: str) -> bool:
    """True for a zone of the IANA database (``Australia/Sydney``, ``UTC``); false for
    anything else, ``localtime`` and paths included."""
    return bool(_ZONE_RE.match(name)) and name in _known()


def iana_zone(name: str) -> ZoneInfo:
    """The zone named ``name``; ``ValueError`` when it is not an IANA zone."""
    if not is_iana_zone(name):
        raise ValueError(f"{name[:MAX_ZONE_LEN]!r} is not an IANA time zone")
    return ZoneInfo(name)
