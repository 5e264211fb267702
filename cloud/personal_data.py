"""What every service that holds a customer's personal data answers for a privacy
request (issue 20 point 6): its share of an export, and what it erased and kept.

Each service implements :class:`PersonalDataHolder` over its own schema (``privacy.py``
in the service's package); support's privacy desk is given the holders by the
composition root and never reads another service's tables. Only counts leave an erasure,
never the data erased.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from contracts.topics import Region

__all__ = [
    "COARSE_DECIMALS",
    "Erasure",
    "Export",
    "PersonalDataHolder",
    "PersonalFiles",
    "coarse_sql",
    "pseudonym",
]

#: A service's share of an export: records by kind (``contacts``: [row, ...]), JSON-able.
Export = dict[str, list[dict[str, Any]]]


@dataclass(frozen=True)
class Erasure:
    """What one service did for an erasure: rows erased (deleted or pseudonymised) and
    rows kept because a law requires them, each counted by kind."""

    service: str
    erased: Mapping[str, int] = field(default_factory=dict)
    kept: Mapping[str, int] = field(default_factory=dict)


class PersonalDataHolder(Protocol):
    """A service's answer to a privacy request about account ``account_id``."""

    @property
    def service(self) -> str: ...

    def export(self, region: Region, account_id: str) -> Export:
        """Every record of the account this service holds (its personal data)."""
        ...

    def erase(self, region: Region, account_id: str) -> Erasure:
        """Erase or pseudonymise the account's personal data, keeping what law requires;
        idempotent (a second call erases nothing more)."""
        ...


@runtime_checkable
class PersonalFiles(Protocol):
    """A holder that also keeps files of the account (photos, signature images): their
    bytes join the export archive beside the holder's JSON, under ``<service>/<name>``."""

    def files(self, region: Region, account_id: str) -> Mapping[str, bytes]:
        """The account's files by name (a relative name of the holder's making)."""
        ...


#: Decimal places a site's location keeps after an erasure: 0.01° is about 1.1 km north
#: to south — an area of many homes in a town, no house found by it, while the sun's
#: position, the clear-sky expectation, the time zone and the technicians' travel still
#: hold. Not coarser: the grid-code rules place a site on an island by boxes drawn to
#: the hundredth of a degree (``cloud/config/profile_rules.yaml``), and a location rounded
#: to that grid stays in every box it was in, so the site keeps its grid code
#: (tests/unit/test_coarse_location.py).
COARSE_DECIMALS = 2


def coarse_sql(column: str) -> str:
    """SQL of ``column`` (degrees, float8) rounded to :data:`COARSE_DECIMALS`."""
    return f"round({column}::numeric, {COARSE_DECIMALS})::float8"


def pseudonym(account_id: str) -> str:
    """The account's stand-in in records kept after an erasure: the opaque account id
    itself names no person, so it stays (billing's kept invoices still add up per
    account), and names, addresses and contacts are replaced by this text."""
    return f"erased {account_id}"
