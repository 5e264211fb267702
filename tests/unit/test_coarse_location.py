"""An erased site's location is rounded (cloud.personal_data.COARSE_DECIMALS) and must
keep the site on its grid-code island: every island box of the grid-code rules has its
edges on the rounding's grid, so a point inside a box rounds to a point inside it (an
edge on the grid is itself a rounding's result, which rounding never crosses)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import pytest

from cloud.config.profile_assignment import SiteFacts, island_of, load_rules
from cloud.personal_data import COARSE_DECIMALS


def _rounded(degrees: float) -> float:
    """As PostgreSQL's ``round(numeric, n)`` rounds: half away from zero."""
    step = Decimal(1).scaleb(-COARSE_DECIMALS)
    value = Decimal(repr(degrees))
    rounded = abs(value).quantize(step, rounding=ROUND_HALF_UP)
    return float(rounded if value >= 0 else -rounded)


def test_every_island_edge_is_on_the_rounding_grid() -> None:
    islands = load_rules().islands
    assert islands, "the rules have islands"
    for island in islands:
        for edge in (*island.lat, *island.lon):
            assert _rounded(edge) == edge, (island.name, edge)


@pytest.mark.parametrize(
    ("lat", "lon", "island"),
    [
        # Molokai's south-west corner, a thousandth inside: rounds onto its edge.
        (21.0449, -157.3451, "molokai"),
        # Oahu's south-east, just inside both edges.
        (21.2049, -157.6049, "oahu"),
        # Maui's north-west corner (21.03, -156.70), just inside: rounds onto it.
        (21.0251, -156.6951, "maui"),
    ],
)
def test_a_rounded_site_stays_on_its_island(lat: float, lon: float, island: str) -> None:
    islands = load_rules().islands
    site = SiteFacts(1, "us", None, lat, lon)
    assert island_of(site, islands) == island
    coarse = SiteFacts(1, "us", None, _rounded(lat), _rounded(lon))
    assert island_of(coarse, islands) == island
