"""When a billing period has ended everywhere in a region: the latest local midnight
after its last day among the region's time zones (its business calendar's), so that a
cycle started from the portal never bills a day still running somewhere in the region.
Expected instants worked out by hand from each zone's offset that night."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from cloud.billing import BillingPeriod, period_ends_at, region_zones
from contracts.topics import Region

OCTOBER = BillingPeriod(date(2026, 10, 1), date(2026, 10, 31))


@pytest.mark.parametrize(
    ("region", "ends"),
    [
        # Perth (UTC+8, no DST) is the region's last midnight: 1 Nov 00:00 AWST.
        (Region.AU, datetime(2026, 10, 31, 16, tzinfo=UTC)),
        # Honolulu (UTC-10) is later than Anchorage (still AKDT, UTC-8, on 1 Nov 00:00).
        (Region.US, datetime(2026, 11, 1, 10, tzinfo=UTC)),
        # The Canaries (WET, UTC+0 since 25 October) after the peninsula (CET, UTC+1).
        (Region.ES, datetime(2026, 11, 1, 0, tzinfo=UTC)),
    ],
)
def test_a_month_ends_at_the_region_s_last_local_midnight(region: Region, ends: datetime) -> None:
    assert period_ends_at(OCTOBER, region_zones(region)) == ends
