"""From ledger lines to documents: exact kWh, the true-up's difference split into a
credit and a debit side, document numbers."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from cloud.billing import (
    LedgerLine,
    PeriodEnergy,
    document_number,
    energy_difference,
    load_tariffs,
    period_energy,
)
from cloud.billing.documents import kwh
from contracts.topics import Region

H = timedelta(hours=1)
MADRID = ZoneInfo("Europe/Madrid")
ES_ZONES = ("peninsula", "baleares", "canarias", "ceuta", "melilla")


def _line(start: datetime, billable: int) -> LedgerLine:
    return LedgerLine(start, start + H, billable, 0, 0, 0, billable, False)


def test_milliwatt_hours_are_exact_kwh() -> None:
    assert kwh(1) == Decimal("0.000001")
    assert kwh(5_300_123) == Decimal("5.300123")


def test_numbers_are_region_year_and_seven_digits() -> None:
    assert document_number(Region.AU, 2026, 123) == "AU-2026-0000123"
    with pytest.raises(ValueError, match="outside"):
        document_number(Region.ES, 2026, 10_000_000)


def test_period_energy_keeps_every_milliwatt_hour_in_its_local_period() -> None:
    schedule = load_tariffs(Region.ES, ES_ZONES).schedules["es-2.0td"]
    # Wednesday 14 Oct 2026, CEST (+2): 08:00Z is 10:00 local (P1), 06:00Z 08:00 (P2).
    lines = [
        _line(datetime(2026, 10, 14, 8, tzinfo=UTC), 1_234_567),
        _line(datetime(2026, 10, 14, 6, tzinfo=UTC), 7),
        _line(datetime(2026, 10, 14, 9, tzinfo=UTC), 0),
    ]
    got = period_energy(lines, time_zone=MADRID, schedule=schedule, tariff_zone="peninsula")
    day = date(2026, 10, 14)
    assert set(got) == {
        PeriodEnergy(day, "P1", Decimal("1.234567")),
        PeriodEnergy(day, "P2", Decimal("0.000007")),
    }


def test_a_difference_goes_to_the_side_each_period_moved() -> None:
    d1, d2 = date(2026, 10, 13), date(2026, 10, 14)
    old = [PeriodEnergy(d1, "P1", Decimal(2)), PeriodEnergy(d2, "P1", Decimal(5))]
    old += [PeriodEnergy(d2, "P3", Decimal(1))]
    new = [PeriodEnergy(d1, "P1", Decimal(3)), PeriodEnergy(d2, "P1", Decimal(1))]
    new += [PeriodEnergy(d2, "P3", Decimal(4)), PeriodEnergy(d2, "P2", Decimal(1))]
    got = energy_difference(new, old)
    # P1 moved by +1 - 4 = -3: both its days go on the credit side (the +1 as -1).
    assert got.less == (PeriodEnergy(d1, "P1", Decimal(-1)), PeriodEnergy(d2, "P1", Decimal(4)))
    assert got.more == (PeriodEnergy(d2, "P2", Decimal(1)), PeriodEnergy(d2, "P3", Decimal(3)))


def test_no_change_is_no_difference() -> None:
    same = [PeriodEnergy(date(2026, 10, 1), "flat", Decimal("1.5"))]
    got = energy_difference(same, same)
    assert (got.more, got.less) == ((), ())
