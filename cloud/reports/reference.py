"""The figures reports compare against, as effective-dated data (``data/reference.yaml``):
each region's utility price per kWh (per tariff zone, ``*`` for the rest) for the
savings delivered, and a reference PV yield per kWp and day for each calendar month for
the performance ratio. Each names its source and whether it was verified; the reports
print the unverified ones' sources as notes.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Reference", "UtilityPrice", "load_reference"]

DATA_FILE = Path(__file__).parent / "data" / "reference.yaml"


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class UtilityPrice(_Frozen):
    effective_from: date
    price: Annotated[Decimal, Field(gt=0, le=100)]
    source: Annotated[str, Field(min_length=1, max_length=300)]
    verified: bool


class _RegionPrices(_Frozen):
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
    zones: dict[str, list[UtilityPrice]]


_PerKwp = Annotated[Decimal, Field(ge=0, le=20)]


class _Yield(_Frozen):
    source: Annotated[str, Field(min_length=1, max_length=300)]
    verified: bool
    kwh_per_kwp_day: Annotated[
        list[Annotated[Decimal, Field(ge=0, le=20)]], Field(min_length=12, max_length=12)
    ]


class Reference(_Frozen):
    utility_prices: dict[str, _RegionPrices]
    reference_yield: dict[str, _Yield]

    def utility_price(self, region: str, zone: str, on: date) -> UtilityPrice | None:
        """The price in force on ``on`` for ``zone`` of ``region`` (the ``*`` entry for a
        zone not listed), or None when none is."""
        prices = self.utility_prices.get(region)
        if prices is None:
            return None
        versions = prices.zones.get(zone) or prices.zones.get("*") or []
        valid = [v for v in versions if v.effective_from <= on]
        return max(valid, key=lambda v: v.effective_from) if valid else None

    def yield_per_kwp_day(self, region: str, month: date) -> Decimal | None:
        found = self.reference_yield.get(region)
        return None if found is None else found.kwh_per_kwp_day[month.month - 1]

    def yield_source(self, region: str) -> tuple[str, bool] | None:
        found = self.reference_yield.get(region)
        return None if found is None else (found.source, found.verified)


def load_reference(path: Path = DATA_FILE) -> Reference:
    """The reference file, validated (``pydantic.ValidationError`` names a bad field)."""
    return Reference.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
