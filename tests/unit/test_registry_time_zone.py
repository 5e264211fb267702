"""A site's time zone is an IANA zone of the zone database, never a path or a guess
(a site was stored with ``../../etc/passwd``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import pytest
from pydantic import ValidationError

from cloud.registry import RegistryService, Site, SiteIn


@pytest.mark.parametrize(
    "zone",
    ["Australia/Sydney", "America/Los_Angeles", "Pacific/Honolulu", "Atlantic/Canary", "UTC"],
)
def test_an_iana_zone_is_taken(zone: str) -> None:
    assert SiteIn(name="Roof", region="au", time_zone=zone).time_zone == zone


@pytest.mark.parametrize(
    "zone",
    [
        "../../etc/passwd",
        "/usr/share/zoneinfo/UTC",
        "Australia/../UTC",
        "australia/sydney",  # the database's names are case-sensitive
        "Australia/Sydney\x00",
        "Mars/Olympus_Mons",
        "localtime",  # the machine's own setting, not a place
        "Factory",  # IANA's "unset" placeholder
        "+10:00",
        "",
        "A" * 65,
    ],
)
def test_anything_else_is_refused(zone: str) -> None:
    with pytest.raises(ValidationError) as refused:
        SiteIn(name="Roof", region="au", time_zone=zone)
    assert [e["loc"] for e in refused.value.errors()] == [("time_zone",)]


def test_a_site_stored_before_the_check_is_still_readable() -> None:
    stored = Site(
        id=1,
        name="Roof",
        region="au",
        time_zone="../../etc/passwd",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    assert stored.account_id is None


def test_changing_a_sites_zone_is_checked_before_the_database_is_asked() -> None:
    registry = RegistryService(cast(Any, None))  # no pool: it must refuse first
    with pytest.raises(ValueError, match="not an IANA time zone"):
        registry.set_site_time_zone(1, "../../etc/passwd")
    for not_an_id in ["acc_not-an-id", "acc_" + "A" * 32, "acc_" + "0" * 32 + "\n"]:
        with pytest.raises(ValueError, match="not an account id"):
            registry.set_site_account(1, not_an_id)
