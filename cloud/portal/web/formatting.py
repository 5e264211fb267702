"""Numbers, powers, energies, dates and times as a person reads them: in their language
(Babel's CLDR data: ``1.234,5`` in Spanish, ``1,234.5`` in English) and, for times, in the
site's IANA zone (a customer in Madrid reads Madrid time whatever the server's zone).
Pure functions of their arguments; the templates get one :class:`Formats` per page."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime, format_time
from babel.numbers import format_currency, format_decimal, format_percent

__all__ = ["Formats"]

#: Shown where a value is missing (no reading yet, a device without that metric).
MISSING = "—"


@dataclass(frozen=True)
class Formats:
    language: str
    time_zone: str = "UTC"

    def at(self, time_zone: str) -> Formats:
        """The same language, times in ``time_zone`` (a site's)."""
        return Formats(self.language, time_zone)

    # -- numbers ------------------------------------------------------------------------
    def number(self, value: float | Decimal | None, digits: int = 0) -> str:
        if value is None:
            return MISSING
        pattern = "#,##0" + ("." + "0" * digits if digits else "")
        return format_decimal(value, format=pattern, locale=self.language)

    def decimal(self, value: float | None, most: int = 3) -> str:
        """A number with as many decimals as it has, up to ``most`` (``0.95``, ``230``)."""
        if value is None:
            return MISSING
        return format_decimal(value, format="#,##0." + "#" * most, locale=self.language)

    def percent(self, fraction: float | None, digits: int = 0) -> str:
        if fraction is None:
            return MISSING
        pattern = "#,##0" + ("." + "0" * digits if digits else "") + " %"
        return format_percent(fraction, format=pattern, locale=self.language)

    def power(self, watts: float | None) -> str:
        """``840 W``, ``3.2 kW`` (``3,2 kW`` in Spanish): kW from 1 kW up."""
        if watts is None:
            return MISSING
        if abs(watts) >= 1000:
            return f"{self.number(watts / 1000, 1)} kW"
        return f"{self.number(watts)} W"

    def energy(self, watt_hours: float | Decimal | None) -> str:
        """Energy in kWh with one decimal (Wh below 1 kWh; MWh from 10 MWh up)."""
        if watt_hours is None:
            return MISSING
        wh = Decimal(str(watt_hours)) if isinstance(watt_hours, float) else watt_hours
        if abs(wh) >= 10_000_000:
            return f"{self.number(wh / 1_000_000, 1)} MWh"
        if abs(wh) < 1000:  # a short day or a new site: "0.0 kWh" would say nothing
            return f"{self.number(wh)} Wh"
        return f"{self.number(wh / 1000, 1)} kWh"

    def money(self, amount: Decimal, currency: str) -> str:
        return format_currency(amount, currency, locale=self.language)

    def unit_price(self, amount: Decimal, currency: str) -> str:
        """A price per unit as billed: every significant digit up to six decimals (a
        tariff's price is finer than the currency's cents), in the language's layout."""
        return format_currency(
            amount, currency, locale=self.language, currency_digits=False,
            decimal_quantization=False,
        ).strip()  # fmt: skip

    # -- dates and times ----------------------------------------------------------------
    def datetime(self, value: dt.datetime | None, form: str = "medium") -> str:
        if value is None:
            return MISSING
        return format_datetime(value, form, tzinfo=ZoneInfo(self.time_zone), locale=self.language)

    def time(self, value: dt.datetime | None, form: str = "short") -> str:
        if value is None:
            return MISSING
        return format_time(value, form, tzinfo=ZoneInfo(self.time_zone), locale=self.language)

    def date(self, value: dt.date | None, form: str = "medium") -> str:
        if value is None:
            return MISSING
        return format_date(value, form, locale=self.language)

    def month(self, value: dt.date) -> str:
        """``March 2026`` / ``marzo de 2026``."""
        return format_date(value, "LLLL y", locale=self.language)
