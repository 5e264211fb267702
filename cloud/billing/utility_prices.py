"""The utility's retail price per kWh by region, tariff zone and date: the reference a
customer's savings are estimated against (issue 20; never used on a bill).

``data/utility/<region>.yaml`` holds, per tariff zone, effective-dated versions
(:mod:`cloud.billing.dated`: contiguous, each with its source and whether it was
checked), tax-exclusive like the PPA plans' prices. :class:`UtilityPriceBook` loads a
region's file once, on first use.
"""

from __future__ import annotations

import threading
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cloud.billing.dated import (
    Dated,
    ExactDecimal,
    TariffDataError,
    check_contiguous,
    in_force,
    load_model,
)
from cloud.billing.tariffs import DATA_DIR
from contracts.topics import Region

__all__ = ["UtilityPriceBook", "UtilityPriceVersion", "UtilityPrices", "load_utility_prices"]


class UtilityPriceVersion(Dated):
    """The utility's usage price, in the region's currency per kWh, tax-exclusive."""

    per_kwh: ExactDecimal = Field(gt=0, le=10)


class ZoneUtilityPrices(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    price: tuple[UtilityPriceVersion, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _contiguous(self) -> Self:
        check_contiguous(self.price)
        return self


class UtilityPrices(BaseModel):
    """``data/utility/<region>.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    region: Region
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    zones: dict[str, ZoneUtilityPrices] = Field(min_length=1)

    def price(self, zone: str, day: date) -> Decimal | None:
        """The price per kWh in force in ``zone`` on ``day`` (local date), or None where
        the file has none (an unknown zone, a day before its first version)."""
        prices = self.zones.get(zone)
        version = in_force(prices.price, day) if prices is not None else None
        return version.per_kwh if version is not None else None


def load_utility_prices(region: Region, *, data_dir: Path = DATA_DIR) -> UtilityPrices:
    """The region's reference prices; :class:`~cloud.billing.dated.TariffDataError`
    naming the file and key when the file is unusable or of another region."""
    name = f"utility/{Region(region).value}.yaml"
    prices = load_model(UtilityPrices, data_dir / name, name=name)
    if prices.region != region:
        raise TariffDataError(name, [("region", f"is {prices.region.value}, not {region}")])
    return prices


class UtilityPriceBook:
    """Each region's reference prices, read once from ``data_dir``; thread-safe."""

    def __init__(self, *, data_dir: Path = DATA_DIR) -> None:
        self._data_dir = data_dir
        self._loaded: dict[Region, UtilityPrices] = {}
        self._lock = threading.Lock()

    def of(self, region: Region) -> UtilityPrices:
        with self._lock:
            if region not in self._loaded:
                self._loaded[region] = load_utility_prices(region, data_dir=self._data_dir)
            return self._loaded[region]
