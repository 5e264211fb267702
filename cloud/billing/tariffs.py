"""Plans, taxes and time-of-use schedules of a region, as effective-dated data.

Three files per region under ``data/`` (``plans/<region>.yaml``, ``taxes/<region>.yaml``,
``tou/<region>.yaml``), validated here; docs/billing/tariffs.md describes their fields.
Pure: the only I/O is reading those files, on the first call (then cached).

Dates are the site's local dates. A plan's price versions are in force by the date of
supply; its annual escalator compounds on each anniversary of the customer's contract
start (an input, not data): the unit price on day ``d`` is
``round_half_up(price(d) * (1 + escalator/100) ** years_completed(d), price_places)``.
A contract starting 29 February has its anniversary on 28 February in common years.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, localcontext
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from cloud.billing.dated import (
    Dated,
    ExactDecimal,
    Provenance,
    TariffDataError,
    changes_within,
    check_contiguous,
    in_force,
    load_model,
)
from cloud.billing.money import Currency, currency_for
from cloud.billing.periods import FLAT, PeriodName, TouFile, TouSchedule
from contracts.topics import Region

__all__ = [
    "DATA_DIR",
    "PLAN_CODE_PATTERN",
    "BillableBasis",
    "BillingCycle",
    "ElectricityTaxVersion",
    "Escalator",
    "Plan",
    "PlansFile",
    "PriceVersion",
    "TariffError",
    "Tariffs",
    "TaxFile",
    "TaxVersion",
    "ZoneTaxes",
    "contract_anniversary",
    "contract_years",
    "load_tariffs",
]

DATA_DIR = Path(__file__).resolve().parent / "data"
#: The customers service's pattern for an account's plan code (cloud.customers.models);
#: repeated here because billing does not import another service (a unit test compares).
PLAN_CODE_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,31}$"
PlanCode = Annotated[str, Field(pattern=PLAN_CODE_PATTERN, max_length=32)]

BillableBasis = Literal["au_pv_consumed_and_pv_battery", "us_production", "es_onsite"]
#: What a region's plans may bill (business.md §6): AU on-site PV consumed plus battery
#: discharge charged from on-site PV; US production; ES on-site energy. Never imports.
_BASIS: dict[Region, BillableBasis] = {
    Region.AU: "au_pv_consumed_and_pv_battery",
    Region.US: "us_production",
    Region.ES: "es_onsite",
}
BillingCycle = Literal["monthly", "quarterly"]
Percent = Annotated[ExactDecimal, Field(ge=0, le=100)]
PricePerKwh = Annotated[ExactDecimal, Field(ge=0, lt=10)]


class TariffError(ValueError):
    """A question the data cannot answer: an unknown plan or zone, no price or tax in
    force on a day."""


def contract_anniversary(start: date, years: int) -> date:
    """The ``years``-th anniversary of a contract that started on ``start``; 29 February
    falls on 28 February in common years."""
    try:
        return start.replace(year=start.year + years)
    except ValueError:
        return date(start.year + years, 2, 28)


def contract_years(start: date, day: date) -> int:
    """Whole contract years completed on ``day`` (0 before the first anniversary)."""
    years = day.year - start.year
    if years > 0 and day < contract_anniversary(start, years):
        years -= 1
    return max(years, 0)


class PriceVersion(Dated):
    """PPA prices per kWh by time-of-use period (``flat`` without a schedule), in the
    plan's currency, in force by date of supply."""

    per_kwh: dict[PeriodName, PricePerKwh] = Field(min_length=1)


class Escalator(Provenance):
    """The annual price escalator, compounded on each contract anniversary."""

    percent_per_year: Annotated[ExactDecimal, Field(ge=0, le=10)]


class Plan(BaseModel):
    """A PPA plan of one region. ``code`` is what customers' accounts carry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: PlanCode
    region: Region
    currency: Currency
    description: str = Field(min_length=3, max_length=500)
    billable_basis: BillableBasis
    billing_cycle: BillingCycle
    tou_schedule: str | None = None
    price_places: int = Field(default=5, ge=2, le=6)
    escalator: Escalator
    prices: tuple[PriceVersion, ...]

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.currency != currency_for(self.region):
            raise ValueError(f"currency {self.currency} is not region {self.region}'s")
        if self.billable_basis != _BASIS[self.region]:
            raise ValueError(
                f"billable_basis {self.billable_basis} is not region {self.region}'s "
                f"({_BASIS[self.region]})"
            )
        check_contiguous(self.prices)
        first = set(self.prices[0].per_kwh)
        for index, version in enumerate(self.prices):
            if set(version.per_kwh) != first:
                raise ValueError(
                    f"prices[{index}] prices periods {sorted(version.per_kwh)}, "
                    f"prices[0] {sorted(first)}"
                )
            for period, price in version.per_kwh.items():
                exponent = price.as_tuple().exponent
                if isinstance(exponent, int) and -exponent > self.price_places:
                    raise ValueError(
                        f"prices[{index}].{period}: {price} has more than "
                        f"{self.price_places} decimal places"
                    )
        return self

    def periods(self) -> tuple[str, ...]:
        """The periods the plan prices, in the order its first version lists them."""
        return tuple(self.prices[0].per_kwh)

    def price_version(self, day: date) -> PriceVersion:
        """The price version in force on ``day``."""
        version = in_force(self.prices, day)
        if version is None:
            raise TariffError(f"plan {self.code} has no price in force on {day}")
        return version

    def base_price(self, period: str, day: date) -> Decimal:
        """The listed price per kWh of ``period`` on ``day``, before the escalator."""
        try:
            return self.price_version(day).per_kwh[period]
        except KeyError:
            raise TariffError(f"plan {self.code} has no period {period!r}") from None

    def unit_price(self, period: str, day: date, contract_start: date) -> Decimal:
        """Price per kWh of ``period`` on ``day`` for a contract started on
        ``contract_start``: the listed price escalated once per completed contract year,
        rounded half-up to ``price_places`` decimals. Exact: no intermediate rounding."""
        base = self.base_price(period, day)
        years = contract_years(contract_start, day)
        factor = 1 + self.escalator.percent_per_year / 100
        digits = len(base.as_tuple().digits) + years * len(factor.as_tuple().digits) + 2
        with localcontext() as exact:
            exact.prec = max(28, digits)
            escalated = base * factor**years
        return escalated.quantize(Decimal(1).scaleb(-self.price_places), ROUND_HALF_UP)

    def price_changes(self, contract_start: date, first: date, last: date) -> set[date]:
        """Days in ``(first, last]`` from which the unit price may differ from the day
        before: contract anniversaries and price versions starting or ending."""
        found = changes_within(self.prices, first, last)
        for years in range(contract_years(contract_start, first) + 1, 200):
            anniversary = contract_anniversary(contract_start, years)
            if anniversary > last:
                break
            if anniversary > first:
                found.add(anniversary)
        return found


def _name_entries(data: Any, key: str, field: str, extra: Mapping[str, Any]) -> Any:
    """Copy each entry's key of mapping ``data[key]`` into the entry as ``field``, with
    ``extra`` file-level fields, so an entry validated alone knows who it is."""
    if not isinstance(data, dict) or not isinstance(data.get(key), dict):
        return data
    named = {}
    for name, body in data[key].items():
        if isinstance(body, dict):
            repeated = sorted(set(body) & {*extra, field})
            if repeated:
                raise ValueError(f"{key}.{name}: {repeated} belong to the file, not an entry")
            body = {**extra, **body, field: name}
        named[name] = body
    return {**data, key: named}


class PlansFile(BaseModel):
    """``data/plans/<region>.yaml``; the validation context's ``schedules`` maps the
    region's TOU schedule names to their periods."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    region: Region
    currency: Currency
    plans: dict[PlanCode, Plan] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _name_plans(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        extra = {k: data[k] for k in ("region", "currency") if k in data}
        return _name_entries(data, "plans", "code", extra)

    @field_validator("plans")
    @classmethod
    def _schedules_known(cls, plans: dict[str, Plan], info: ValidationInfo) -> dict[str, Plan]:
        schedules: Mapping[str, tuple[str, ...]] = (info.context or {}).get("schedules", {})
        for code, plan in plans.items():
            if plan.tou_schedule is None:
                wanted: tuple[str, ...] = (FLAT,)
            elif plan.tou_schedule in schedules:
                wanted = schedules[plan.tou_schedule]
            else:
                raise ValueError(
                    f"{code}: unknown tou_schedule {plan.tou_schedule!r} "
                    f"(known: {sorted(schedules)})"
                )
            if set(plan.periods()) != set(wanted):
                raise ValueError(
                    f"{code}: prices periods {sorted(plan.periods())}, but its schedule "
                    f"has {sorted(wanted)}"
                )
        return plans


class TaxVersion(Dated):
    """The tax on energy sales in a tariff zone (GST, IVA, IGIC, IPSI, sales tax), as a
    percentage of the net."""

    tax: str = Field(min_length=2, max_length=32)
    rate_percent: Percent


class ElectricityTaxVersion(Dated):
    """Spain's electricity tax (IEE) on the energy term; charged only while ``applies``,
    itself subject to the zone's tax."""

    applies: bool
    rate_percent: Percent


class ZoneTaxes(BaseModel):
    """The taxes of one tariff zone."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    region: Region
    zone: str
    tax: tuple[TaxVersion, ...]
    electricity_tax: tuple[ElectricityTaxVersion, ...] = ()

    @model_validator(mode="after")
    def _contiguous(self) -> Self:
        check_contiguous(self.tax)
        if self.electricity_tax:
            check_contiguous(self.electricity_tax)
        return self

    def tax_on(self, day: date) -> TaxVersion:
        version = in_force(self.tax, day)
        if version is None:
            raise TariffError(f"zone {self.zone} has no tax in force on {day}")
        return version

    def electricity_tax_on(self, day: date) -> ElectricityTaxVersion | None:
        """The electricity tax in force on ``day`` if it applies; None otherwise."""
        version = in_force(self.electricity_tax, day)
        return version if version is not None and version.applies else None

    def changes(self, first: date, last: date) -> set[date]:
        """Days in ``(first, last]`` on which a tax version starts or ends."""
        return changes_within((*self.tax, *self.electricity_tax), first, last)


class TaxFile(BaseModel):
    """``data/taxes/<region>.yaml``; the validation context's ``zones`` are the region's
    tariff zones."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    region: Region
    zones: dict[str, ZoneTaxes] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _name_zones(cls, data: Any) -> Any:
        extra = {"region": data["region"]} if isinstance(data, dict) and "region" in data else {}
        return _name_entries(data, "zones", "zone", extra)

    @field_validator("zones")
    @classmethod
    def _known_zones(
        cls, zones: dict[str, ZoneTaxes], info: ValidationInfo
    ) -> dict[str, ZoneTaxes]:
        known = set((info.context or {}).get("zones", ()))
        unknown = sorted(set(zones) - known)
        if unknown:
            raise ValueError(f"unknown tariff zones {unknown} (known: {sorted(known)})")
        return zones


@dataclass(frozen=True, slots=True)
class Tariffs:
    """A region's validated plans, TOU schedules and taxes."""

    region: Region
    currency: Currency
    plans: Mapping[str, Plan]
    schedules: Mapping[str, TouSchedule]
    taxes: Mapping[str, ZoneTaxes]

    def plan(self, code: str) -> Plan:
        try:
            return self.plans[code]
        except KeyError:
            raise TariffError(f"region {self.region} has no plan {code!r}") from None

    def schedule_of(self, plan: Plan) -> TouSchedule | None:
        """The plan's TOU schedule; None for a flat plan."""
        return None if plan.tou_schedule is None else self.schedules[plan.tou_schedule]

    def zone_taxes(self, zone: str) -> ZoneTaxes:
        try:
            return self.taxes[zone]
        except KeyError:
            raise TariffError(
                f"region {self.region} has no taxes for tariff zone {zone!r}"
            ) from None


def _check_region(file: str, found: Region, wanted: Region) -> None:
    if found != wanted:
        raise TariffDataError(file, [("region", f"is {found}, the file is {wanted}'s")])


def load_tariffs(region: Region, zones: Iterable[str], *, data_dir: Path = DATA_DIR) -> Tariffs:
    """The region's tariffs from ``data_dir``, checked against ``zones``, the region's
    tariff zones (``cloud.customers.zones.TARIFF_ZONES[region]``, passed in by whoever
    wires billing). Read once per arguments; :class:`TariffDataError` names the file,
    key and problem of anything wrong."""
    return _load(Region(region), tuple(sorted(set(zones))), data_dir)


@cache
def _load(region: Region, zones: tuple[str, ...], data_dir: Path) -> Tariffs:
    context = {"zones": zones}
    tou_name = f"tou/{region.value}.yaml"
    tou = load_model(TouFile, data_dir / tou_name, name=tou_name, context=context)
    _check_region(tou_name, tou.region, region)
    plans_name = f"plans/{region.value}.yaml"
    schedules = {name: s.periods for name, s in tou.schedules.items()}
    plans = load_model(
        PlansFile, data_dir / plans_name, name=plans_name, context={"schedules": schedules}
    )
    _check_region(plans_name, plans.region, region)
    taxes_name = f"taxes/{region.value}.yaml"
    taxes = load_model(TaxFile, data_dir / taxes_name, name=taxes_name, context=context)
    _check_region(taxes_name, taxes.region, region)
    return Tariffs(region, plans.currency, plans.plans, tou.schedules, taxes.zones)
