"""Public integer ids that say their region: ``id = n * 4 + code`` (au 1, us 2, es 3).

Each region allocates sites, devices, contacts, licences and absences from its own
database's sequences, so two regions counting alone would both hand out site 1. With the
region in the id's residue they never meet — no coordination, no id service, and the
one-database demo (every region in one schema) obeys the same rule. The codes are part
of every id ever issued: never change or reuse them. An ``int4`` id still has room for
536 million objects per kind and region.

The SQL is built here once; each service's repository inserts with
:func:`next_id_sql`, and its migration (``*_regional_ids.sql``) moved its sequence past
every id issued before.
"""

from __future__ import annotations

from contracts.topics import Region

__all__ = ["CODES", "STRIDE", "next_id_sql", "region_of"]

#: The residue of each region's ids. Fixed forever: ids in the field carry them.
CODES: dict[Region, int] = {Region.AU: 1, Region.US: 2, Region.ES: 3}
#: One more than the largest code; 0 is left for ids issued before the rule.
STRIDE = 4

_BY_CODE = {code: region for region, code in CODES.items()}
_REGIONS_IN_CODE_ORDER = ", ".join(f"'{r.value}'" for r in sorted(CODES, key=CODES.__getitem__))


def next_id_sql(sequence: str, region_sql: str = "%s") -> str:
    """An SQL expression for a new id of ``region_sql`` (a placeholder, or a column
    holding ``'au'``/``'us'``/``'es'``) from ``sequence`` (a schema-qualified name
    written by the calling repository, never user input)."""
    return (
        f"(nextval('{sequence}') * {STRIDE}"
        f" + array_position(ARRAY[{_REGIONS_IN_CODE_ORDER}]::text[], ({region_sql})::text))"
    )


def region_of(id_: int) -> Region | None:
    """The region whose id this is (None for an id issued before the rule)."""
    return _BY_CODE.get(id_ % STRIDE)
