"""Billing: plans, taxes and time-of-use periods as effective-dated data, the allocation
of metered energy to tariff periods in the site's local time, and the rating of a
billing period into invoice lines, taxes and totals. Money is ``Decimal``, never float.

The pure part (money, dated, tariffs, periods, rating, ledger, documents, readings) does no I/O
but read its own ``data/`` files, on first use. The service (:class:`BillingService`:
billing cycles and true-ups over the ``billing`` schema) asks other services through
the protocols of :mod:`cloud.billing.ports`, which the composition root implements;
the region's tariff zones are passed in the same way, so billing imports no other
service. Published interface: the names below; other services import nothing else.
"""

from cloud.billing.dated import Dated, Provenance, TariffDataError
from cloud.billing.documents import (
    MWH,
    EnergyDifference,
    document_number,
    energy_difference,
    issued_payload,
    period_energy,
)
from cloud.billing.handlers import event_subscriptions
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
from cloud.billing.ports import (
    BillableSite,
    BillingSites,
    MeterHours,
    MeterMissingError,
    MeterSeries,
    Register,
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
from cloud.billing.readings import HISTORY_DAYS
from cloud.billing.service import (
    SCHEMA,
    BillingService,
    CycleResult,
    SkippedSite,
    TrueUpResult,
    period_of,
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
    "HISTORY_DAYS",
    "MWH",
    "PLAN_CODE_PATTERN",
    "REGISTER_RESOLUTION",
    "SCHEMA",
    "BillableBasis",
    "BillableSite",
    "BillingCycle",
    "BillingPeriod",
    "BillingService",
    "BillingSites",
    "Currency",
    "CurrencyError",
    "CycleResult",
    "Dated",
    "ElectricityTaxVersion",
    "EnergyDifference",
    "EnergyInterval",
    "Escalator",
    "IntervalAllocation",
    "InvoiceLine",
    "LedgerLine",
    "MeterHour",
    "MeterHours",
    "MeterMissingError",
    "MeterSeries",
    "Money",
    "PeriodEnergy",
    "PeriodError",
    "Plan",
    "PriceVersion",
    "Provenance",
    "RatedInvoice",
    "RatingError",
    "Reckoning",
    "Register",
    "SkippedSite",
    "TariffDataError",
    "TariffError",
    "Tariffs",
    "TaxLine",
    "TaxVersion",
    "TouSchedule",
    "TrueUpResult",
    "Window",
    "ZoneTaxes",
    "allocate",
    "contract_anniversary",
    "contract_years",
    "currency_for",
    "document_number",
    "energy_difference",
    "energy_totals",
    "event_subscriptions",
    "format_money",
    "hour_profile",
    "issued_payload",
    "load_tariffs",
    "minor_unit",
    "period_energy",
    "period_of",
    "rate_period",
    "reckon",
    "round_money",
]
