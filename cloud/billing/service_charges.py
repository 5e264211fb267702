"""A job chargeable to the customer, priced: the service invoice of a work order.

Under a PPA the rooftop system is PoTR's and so is its upkeep; only damage the customer
caused or equipment the customer owns is billed (business.md §6), from the work order
dispatch completed (``workorder.chargeable_completed``). Rules (money in the region's
currency, :mod:`cloud.billing.money`):

* a line per part use: ``round_half_up(quantity * unit cost)``, the unit cost dispatch
  recorded when the part was used (at cost: business.md sets no markup, and the
  customer pays back what the repair cost PoTR, as the part's valuation shows it);
* a labour line: ``round_half_up(minutes * hourly rate / 60)``, the region's rate in
  force on the completion day (``data/services/<region>.yaml``);
* every line taxed at the tariff zone's general rate in force that day, the tax per
  rate on the sum of the lines rounded once, as energy invoices are
  (:func:`~cloud.billing.rating.tax_lines`).

Pure: the data is read once per region (cached) and passed in.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cloud.billing.dated import (
    Dated,
    ExactDecimal,
    TariffDataError,
    check_contiguous,
    in_force,
    load_model,
)
from cloud.billing.money import currency_for, round_money
from cloud.billing.rating import BillingPeriod, InvoiceLine, RatedInvoice, tax_lines
from cloud.billing.tariffs import DATA_DIR, TariffError, ZoneTaxes
from contracts.topics import Region

__all__ = [
    "LABOUR_LINE",
    "PART_LINE",
    "SERVICE_PLAN",
    "ChargedItem",
    "LabourRate",
    "ServiceRates",
    "load_service_rates",
    "price_service",
]

#: ``description_key`` of a part's line and of the labour line.
PART_LINE = "part"
LABOUR_LINE = "labour"
#: What a service invoice stores where an energy invoice names its plan.
SERVICE_PLAN = "service"
_MINUTES_PER_HOUR = 60


class LabourRate(Dated):
    """The labour rate per hour in the region's currency, in force by local date."""

    per_hour: Annotated[ExactDecimal, Field(ge=0, lt=10_000, decimal_places=2)]


class ServiceRates(BaseModel):
    """``data/services/<region>.yaml``; the validation context's ``zones`` are the
    region's tariff zones."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    region: Region
    labour: tuple[LabourRate, ...] = Field(min_length=1)
    zones: dict[str, ZoneTaxes] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _name_zones(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("zones"), dict):
            return data
        zones = {
            name: {**body, "region": data.get("region"), "zone": name}
            if isinstance(body, dict)
            else body
            for name, body in data["zones"].items()
        }
        return {**data, "zones": zones}

    @field_validator("zones")
    @classmethod
    def _known_zones(cls, zones: dict[str, ZoneTaxes], info: Any) -> dict[str, ZoneTaxes]:
        known = set((info.context or {}).get("zones", ()))
        unknown = sorted(set(zones) - known)
        if unknown:
            raise ValueError(f"unknown tariff zones {unknown} (known: {sorted(known)})")
        return zones

    @model_validator(mode="after")
    def _contiguous(self) -> Self:
        check_contiguous(self.labour)
        return self

    def labour_on(self, day: date) -> LabourRate:
        rate = in_force(self.labour, day)
        if rate is None:
            raise TariffError(f"region {self.region.value} has no labour rate on {day}")
        return rate

    def zone(self, zone: str) -> ZoneTaxes:
        try:
            return self.zones[zone]
        except KeyError:
            raise TariffError(
                f"region {self.region.value} has no service tax for tariff zone {zone!r}"
            ) from None


def load_service_rates(
    region: Region, zones: Iterable[str], *, data_dir: Path = DATA_DIR
) -> ServiceRates:
    """The region's service rates from ``data_dir`` (read once per arguments), checked
    against ``zones``; :class:`TariffDataError` names the file, key and problem."""
    return _load(Region(region), tuple(sorted(set(zones))), data_dir)


@cache
def _load(region: Region, zones: tuple[str, ...], data_dir: Path) -> ServiceRates:
    name = f"services/{region.value}.yaml"
    rates = load_model(ServiceRates, data_dir / name, name=name, context={"zones": zones})
    if rates.region != region:
        raise TariffDataError(name, [("region", f"is {rates.region}, the file is {region}'s")])
    return rates


@dataclass(frozen=True, slots=True)
class ChargedItem:
    """A part charged: its number and description, how many, the cost of one."""

    part_no: str
    description: str
    quantity: int
    unit_cost: Decimal


def _part_line(
    item: ChargedItem, day: date, currency: str, tax: str, percent: Decimal
) -> InvoiceLine:
    what = f"{item.part_no} {item.description}".strip()
    return InvoiceLine(
        description_key=PART_LINE,
        first_day=day,
        last_day=day,
        net=round_money(item.quantity * item.unit_cost, currency),
        tax=tax,
        tax_percent=percent,
        unit_price=item.unit_cost,
        quantity=Decimal(item.quantity),
        item=what[:200],
    )


def price_service(
    rates: ServiceRates,
    *,
    tariff_zone: str,
    day: date,
    parts: Sequence[ChargedItem],
    labour_minutes: int,
) -> RatedInvoice:
    """The service invoice of a job completed on local date ``day`` in ``tariff_zone``:
    a line per part, one for labour (none for zero minutes), taxed at the zone's general
    rate of ``day``. :class:`TariffError` when no rate or tax is in force, or nothing is
    charged."""
    region = rates.region
    currency = currency_for(region)
    taxes = rates.zone(tariff_zone).tax_on(day)
    labour = rates.labour_on(day)
    lines = [_part_line(p, day, currency, taxes.tax, taxes.rate_percent) for p in parts]
    if labour_minutes > 0:
        lines.append(
            InvoiceLine(
                description_key=LABOUR_LINE,
                first_day=day,
                last_day=day,
                net=round_money(labour_minutes * labour.per_hour / _MINUTES_PER_HOUR, currency),
                tax=taxes.tax,
                tax_percent=taxes.rate_percent,
                unit_price=labour.per_hour,
                quantity=Decimal(labour_minutes),
            )
        )
    if not lines:
        raise TariffError("nothing to charge: no parts and no labour")
    taxed = tax_lines(lines, currency)
    net = sum((line.net for line in lines), Decimal(0))
    tax = sum((t.amount for t in taxed), Decimal(0))
    used: list[str] = []
    if not labour.verified:
        used.append(f"{region.value} labour {labour.per_hour}/h from {labour.effective_from}")
    if not taxes.verified:
        used.append(f"{tariff_zone} {taxes.tax} {taxes.rate_percent} % from {taxes.effective_from}")
    return RatedInvoice(
        plan_code=SERVICE_PLAN,
        region=region,
        currency=currency,
        tariff_zone=tariff_zone,
        contract_start=day,
        period=BillingPeriod(day, day),
        lines=tuple(lines),
        taxes=taxed,
        net=net,
        tax=tax,
        gross=net + tax,
        unverified=tuple(used),
    )
