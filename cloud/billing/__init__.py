"""Billing: plans, taxes and time-of-use periods as effective-dated data, the allocation
of metered energy to tariff periods in the site's local time, and the rating of a
billing period into invoice lines, taxes and totals. Money is ``Decimal``, never float.

This part is pure (no database, no sockets; it reads only its own ``data/`` files, on
first use). Published interface: the names below; other services import nothing else.
The region's tariff zones are passed in (``load_tariffs(region, zones)``) by whoever
wires billing, so billing imports no other service.
"""

from cloud.billing.dated import Dated, Provenance, TariffDataError
from cloud.billing.ledger import LedgerLine, MeterHour, Reckoning, hour_profile, reckon
from cloud.billing.money import (
    CURRENCIES,
    Currency,
    CurrencyError,
    Money,
    currency_for,
    format_money,
    minor_unit,
    round_money,
)
from cloud.billing.periods import (
    FLAT,
    REGISTER_RESOLUTION,
    EnergyInterval,
    IntervalAllocation,
    PeriodEnergy,
    PeriodError,
    TouSchedule,
    Window,
    allocate,
    energy_totals,
)
from cloud.billing.rating import (
    ELECTRICITY_TAX_LINE,
    ENERGY_LINE,
    BillingPeriod,
    InvoiceLine,
    RatedInvoice,
    RatingError,
    TaxLine,
    rate_period,
)
from cloud.billing.tariffs import (
    DATA_DIR,
    PLAN_CODE_PATTERN,
    BillableBasis,
    BillingCycle,
    ElectricityTaxVersion,
    Escalator,
    Plan,
    PriceVersion,
    TariffError,
    Tariffs,
    TaxVersion,
    ZoneTaxes,
    contract_anniversary,
    contract_years,
    load_tariffs,
)

__all__ = [
    "CURRENCIES",
    "DATA_DIR",
    "ELECTRICITY_TAX_LINE",
    "ENERGY_LINE",
    "FLAT",
    "PLAN_CODE_PATTERN",
    "REGISTER_RESOLUTION",
    "BillableBasis",
    "BillingCycle",
    "BillingPeriod",
    "Currency",
    "CurrencyError",
    "Dated",
    "ElectricityTaxVersion",
    "EnergyInterval",
    "Escalator",
    "IntervalAllocation",
    "InvoiceLine",
    "LedgerLine",
    "MeterHour",
    "Money",
    "PeriodEnergy",
    "PeriodError",
    "Plan",
    "PriceVersion",
    "Provenance",
    "RatedInvoice",
    "RatingError",
    "Reckoning",
    "TariffDataError",
    "TariffError",
    "Tariffs",
    "TaxLine",
    "TaxVersion",
    "TouSchedule",
    "Window",
    "ZoneTaxes",
    "allocate",
    "contract_anniversary",
    "contract_years",
    "currency_for",
    "energy_totals",
    "format_money",
    "hour_profile",
    "load_tariffs",
    "minor_unit",
    "rate_period",
    "reckon",
    "round_money",
]
