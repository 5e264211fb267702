"""Region-coded ids (``cloud.regional_ids``): the codes are fixed forever, and the SQL's
region list must give each region its code (``array_position`` counts from 1)."""

from __future__ import annotations

import re

from cloud.regional_ids import CODES, STRIDE, next_id_sql, region_of
from contracts.topics import Region


def test_the_codes_are_the_ones_ids_in_the_field_carry() -> None:
    assert CODES == {Region.AU: 1, Region.US: 2, Region.ES: 3}
    assert STRIDE == 4


def test_an_ids_residue_names_its_region_and_0_none() -> None:
    assert [region_of(i) for i in (5, 6, 7, 8, 1, 4_000_000_003)] == [
        Region.AU,
        Region.US,
        Region.ES,
        None,
        Region.AU,
        Region.ES,
    ]


def test_the_sql_lists_the_regions_at_their_codes() -> None:
    expression = next_id_sql("registry.sites_id_seq", "s.region")
    listed = re.search(r"ARRAY\[([^\]]*)\]", expression)
    assert listed is not None
    names = [n.strip().strip("'") for n in listed.group(1).split(",")]
    # array_position is 1-based: the n-th name is the region whose code is n.
    assert {name: position for position, name in enumerate(names, start=1)} == {
        "au": 1,
        "us": 2,
        "es": 3,
    }
    assert expression.startswith("(nextval('registry.sites_id_seq') * 4 + ")
    assert "(s.region)::text" in expression
