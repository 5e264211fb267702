"""Tariff zones per region, as data: where a site's tariff, taxes and network rules
differ within a region (AU and US: the state or territory; ES: the peninsula and the
territories with their own tax — IGIC in Canarias, IPSI in Ceuta and Melilla)."""

from __future__ import annotations

from contracts.topics import Region

__all__ = ["TARIFF_ZONES", "tariff_zone"]

#: The 50 states, DC and Puerto Rico, by postal code.
_US_STATES = """AK AL AR AZ CA CO CT DC DE FL GA HI IA ID IL IN KS KY LA MA MD ME MI MN MO MS MT
NC ND NE NH NJ NM NV NY OH OK OR PA PR RI SC SD TN TX UT VA VT WA WI WV WY"""

TARIFF_ZONES: dict[Region, tuple[str, ...]] = {
    Region.AU: ("ACT", "NSW", "NT", "QLD", "SA", "TAS", "VIC", "WA"),
    Region.US: tuple(_US_STATES.split()),
    Region.ES: ("baleares", "canarias", "ceuta", "melilla", "peninsula"),
}
_BY_FOLDED = {
    region: {zone.casefold(): zone for zone in zones} for region, zones in TARIFF_ZONES.items()
}


def tariff_zone(region: Region, given: str) -> str | None:
    """The region's spelling of zone ``given`` (any case: ``nsw`` → ``NSW``), or None when
    the region has no such zone."""
    return _BY_FOLDED[region].get(given.casefold())
