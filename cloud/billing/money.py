"""Money in the billing regions: the currency of each region, rounding to the currency's
minor unit, and display.

Amounts are :class:`~decimal.Decimal`, never float. Rounding is ``ROUND_HALF_UP``: a tie
goes away from zero, so a credit note (negative) rounds to the mirror image of the
invoice it reverses. Babel is used for display only; the minor units are our data, so a
Babel upgrade can never change an invoice's arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

from babel.numbers import format_currency

from contracts.topics import Region

__all__ = [
    "CURRENCIES",
    "Currency",
    "CurrencyError",
    "Money",
    "currency_for",
    "format_money",
    "minor_unit",
    "round_money",
]

Currency = Literal["AUD", "USD", "EUR"]

#: The currency PoTR invoices in, per region.
CURRENCIES: dict[Region, Currency] = {Region.AU: "AUD", Region.US: "USD", Region.ES: "EUR"}
#: Decimal places of each currency's minor unit (cent), ISO 4217.
_MINOR_PLACES: dict[str, int] = {"AUD": 2, "USD": 2, "EUR": 2}


class CurrencyError(ValueError):
    """An unknown currency, amounts of two currencies mixed, or a float given as money."""


def currency_for(region: Region) -> Currency:
    """The currency PoTR invoices ``region`` in (``au`` → ``AUD``)."""
    return CURRENCIES[Region(region)]


def minor_unit(currency: str) -> Decimal:
    """The smallest amount of ``currency`` an invoice shows: ``Decimal("0.01")`` for AUD,
    USD and EUR."""
    try:
        places = _MINOR_PLACES[currency]
    except KeyError:
        raise CurrencyError(f"unknown currency {currency!r}") from None
    return Decimal(1).scaleb(-places)


def round_money(amount: Decimal, currency: str) -> Decimal:
    """``amount`` rounded half-up (ties away from zero) to ``currency``'s minor unit."""
    if not isinstance(amount, Decimal):
        raise CurrencyError(f"money must be a Decimal, not {type(amount).__name__}")
    return amount.quantize(minor_unit(currency), rounding=ROUND_HALF_UP)


def format_money(amount: Decimal, currency: str, locale: str) -> str:
    """``amount`` for display in ``locale`` (``es_ES`` → ``1.234,50 €``). Display only:
    round first with :func:`round_money`; this never changes the amount's value."""
    minor_unit(currency)  # refuse unknown currencies here as everywhere else
    return format_currency(amount, currency, locale=locale)


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in one currency. Adding or subtracting two currencies is refused."""

    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal):
            raise CurrencyError(f"money must be a Decimal, not {type(self.amount).__name__}")
        if not self.amount.is_finite():
            raise CurrencyError(f"money must be finite, not {self.amount}")
        minor_unit(self.currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(Decimal(0), currency)

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise CurrencyError(f"cannot mix {self.currency} and {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def rounded(self) -> Money:
        """This amount rounded half-up to the currency's minor unit."""
        return Money(round_money(self.amount, self.currency), self.currency)

    def format(self, locale: str) -> str:
        return format_money(self.amount, self.currency, locale)
