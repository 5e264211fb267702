"""The pure parts of billing a job chargeable to the customer (issue 19 point 4): the
service invoice's pricing (parts at cost, labour minutes at the hourly rate, the zone's
general tax rounded once per rate) against figures computed here by hand from rates
written here, the shipped rate files' validity, and dispatch's labour time (whole
minutes on site, every visit) and when the charge mark may still change."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from cloud.billing.service_charges import (
    ChargedItem,
    ServiceRates,
    load_service_rates,
    price_service,
)
from cloud.billing.tariffs import TariffError
from cloud.customers.zones import TARIFF_ZONES
from cloud.dispatch.charges import charge_refusal, on_site_minutes
from cloud.dispatch.models import HistoryEntry, WorkOrder
from contracts.topics import Region

T0 = datetime(2026, 11, 4, 9, 0, tzinfo=UTC)


def _rates(**overrides: Any) -> ServiceRates:
    data: dict[str, Any] = {
        "region": "au",
        "labour": [
            {"effective_from": "2026-01-01", "effective_until": "2026-07-01",
             "per_hour": "100.00", "source": "test sheet", "verified": True},
            {"effective_from": "2026-07-01", "per_hour": "120.00", "source": "test sheet",
             "verified": False},
        ],
        "zones": {"NSW": {"tax": [{"effective_from": "2000-07-01", "tax": "GST",
                                   "rate_percent": "10", "source": "test act",
                                   "verified": True}]}},
    }  # fmt: skip
    data.update(overrides)
    return ServiceRates.model_validate(data, context={"zones": ("NSW", "VIC")})


def test_parts_at_cost_labour_by_the_minute_and_the_tax_rounded_once() -> None:
    parts = [ChargedItem("AU-ISO", "DC isolator", 3, Decimal("19.99")),
             ChargedItem("AU-FUSE", "Fuse", 1, Decimal("0.05"))]  # fmt: skip
    rated = price_service(_rates(), tariff_zone="NSW", day=date(2026, 11, 4), parts=parts,
                          labour_minutes=7)  # fmt: skip
    # 3 * 19.99 = 59.97; 0.05; 7 min at 120.00/h = 14.00; net 74.02; GST 7.402 -> 7.40.
    assert [(ln.description_key, ln.item, ln.quantity, ln.unit_price, ln.net)
            for ln in rated.lines] == [
        ("part", "AU-ISO DC isolator", Decimal(3), Decimal("19.99"), Decimal("59.97")),
        ("part", "AU-FUSE Fuse", Decimal(1), Decimal("0.05"), Decimal("0.05")),
        ("labour", None, Decimal(7), Decimal("120.00"), Decimal("14.00")),
    ]  # fmt: skip
    assert [(t.tax, t.percent, t.base, t.amount) for t in rated.taxes] == [
        ("GST", Decimal("10"), Decimal("74.02"), Decimal("7.40"))
    ]
    assert (rated.net, rated.tax, rated.gross) == (
        Decimal("74.02"), Decimal("7.40"), Decimal("81.42"),
    )  # fmt: skip
    assert (rated.currency, rated.plan_code, rated.period.first_day) == (
        "AUD", "service", date(2026, 11, 4),
    )  # fmt: skip
    assert rated.unverified == ("au labour 120.00/h from 2026-07-01",)


def test_the_rate_in_force_on_the_completion_day_rounded_half_up_per_line() -> None:
    # Before 1 July: 100.00/h; 1 min = 1.666… -> 1.67; 5 min = 8.333… -> 8.33.
    june = price_service(_rates(), tariff_zone="NSW", day=date(2026, 6, 30), parts=[],
                         labour_minutes=1)  # fmt: skip
    assert [ln.net for ln in june.lines] == [Decimal("1.67")]
    assert june.tax == Decimal("0.17")  # 0.167 -> 0.17
    assert june.unverified == ()
    five = price_service(_rates(), tariff_zone="NSW", day=date(2026, 6, 30), parts=[],
                         labour_minutes=5)  # fmt: skip
    assert five.net == Decimal("8.33")


def test_no_labour_line_without_minutes_and_nothing_to_charge_is_refused() -> None:
    part = [ChargedItem("AU-ISO", "", 1, Decimal("10.00"))]
    rated = price_service(_rates(), tariff_zone="NSW", day=date(2026, 11, 4), parts=part,
                          labour_minutes=0)  # fmt: skip
    assert [ln.description_key for ln in rated.lines] == ["part"]
    assert rated.lines[0].item == "AU-ISO"
    with pytest.raises(TariffError, match="nothing to charge"):
        price_service(_rates(), tariff_zone="NSW", day=date(2026, 11, 4), parts=[],
                      labour_minutes=0)  # fmt: skip


def test_a_zone_or_a_day_the_data_does_not_cover_is_refused() -> None:
    with pytest.raises(TariffError, match="VIC"):
        price_service(_rates(), tariff_zone="VIC", day=date(2026, 11, 4), parts=[],
                      labour_minutes=10)  # fmt: skip
    with pytest.raises(TariffError, match="labour rate"):
        price_service(_rates(), tariff_zone="NSW", day=date(2025, 12, 31), parts=[],
                      labour_minutes=10)  # fmt: skip


def test_rate_files_are_checked_like_the_tariffs() -> None:
    with pytest.raises(ValueError, match="unknown tariff zones"):
        _rates(zones={"XX": {"tax": [{"effective_from": "2000-07-01", "tax": "GST",
                                       "rate_percent": "10", "source": "x y z",
                                       "verified": False}]}})  # fmt: skip
    with pytest.raises(ValueError, match="float"):
        _rates(labour=[{"effective_from": "2026-01-01", "per_hour": 100.5,
                        "source": "x y z", "verified": False}])  # fmt: skip
    with pytest.raises(ValueError, match="gap"):
        _rates(labour=[
            {"effective_from": "2026-01-01", "effective_until": "2026-02-01",
             "per_hour": "1.00", "source": "x y z", "verified": False},
            {"effective_from": "2026-03-01", "per_hour": "1.00", "source": "x y z",
             "verified": False},
        ])  # fmt: skip


@pytest.mark.parametrize("region", list(Region))
def test_the_shipped_rates_load_and_tax_the_zones_business_md_names(region: Region) -> None:
    rates = load_service_rates(region, TARIFF_ZONES[region])
    day = date(2026, 11, 4)
    assert rates.labour_on(day).per_hour > 0
    expected = {
        Region.AU: {"NSW": ("GST", "10"), "SA": ("GST", "10")},
        Region.ES: {"peninsula": ("IVA", "21"), "baleares": ("IVA", "21"),
                    "canarias": ("IGIC", "7"), "ceuta": ("IPSI", None),
                    "melilla": ("IPSI", None)},
        Region.US: {"CA": ("sales tax", "7.25")},
    }[region]  # fmt: skip
    for zone, (tax, percent) in expected.items():
        found = rates.zone(zone).tax_on(day)
        assert found.tax == tax
        if percent is not None:
            assert found.rate_percent == Decimal(percent)


def _entry(n: int, at: datetime, before: str | None, after: str, action: str) -> HistoryEntry:
    return HistoryEntry(id=n, work_order_id=1, at=at, actor="E1", role="mosie", action=action,
                        from_state=before, to_state=after, reason=None, assignee="E1")  # fmt: skip


def test_labour_is_the_whole_minutes_on_site_over_every_visit() -> None:
    history = [
        _entry(1, T0 - timedelta(hours=1), "accepted", "en_route", "start_travel"),
        _entry(2, T0, "en_route", "on_site", "arrive"),
        _entry(3, T0 + timedelta(minutes=10), "on_site", "on_site", "charge"),  # no state
        _entry(4, T0 + timedelta(minutes=40, seconds=59), "on_site", "on_hold", "hold"),
        _entry(5, T0 + timedelta(days=1), "on_hold", "en_route", "start_travel"),
        _entry(6, T0 + timedelta(days=1, hours=1), "en_route", "on_site", "arrive"),
        _entry(7, T0 + timedelta(days=1, hours=1, minutes=54, seconds=30), "on_site",
               "resolved", "resolve"),
    ]  # fmt: skip
    # 40 min 59 s + 54 min 30 s = 95 min 29 s: 95 whole minutes.
    assert on_site_minutes(history, T0 + timedelta(days=2)) == 95
    # A stay not yet ended counts until now.
    assert on_site_minutes(history[:3], T0 + timedelta(minutes=20, seconds=30)) == 20
    assert on_site_minutes([], T0) == 0


def _order(status: str, billed: datetime | None = None) -> WorkOrder:
    return WorkOrder(
        id=7, region="au", site_id=1, account_id=None, type="isolator_fault", priority="P2",
        title="job", description="", status=status, assignee="E1", visits=1, reopen_count=0,
        verified_at=None, sla_breached=frozenset(), alarm_id=None, created_by="op",
        created_at=T0, updated_at=T0, arrive_by=None, resolve_by=None, version=1,
        charge_reason="customer_damage" if billed else None, charge_billed_at=billed,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("status", "billed", "open_"),
    [("scheduled", None, True), ("on_site", None, True), ("on_hold", None, True),
     ("resolved", None, False), ("closed", None, False), ("cancelled", None, False),
     ("scheduled", T0, False)],
)  # fmt: skip
def test_the_mark_changes_only_before_completion_and_billing(
    status: str, billed: datetime | None, open_: bool
) -> None:
    assert (charge_refusal(_order(status, billed)) is None) == open_
