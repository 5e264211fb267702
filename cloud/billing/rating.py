"""A billing period's invoice lines, taxes and totals, from energy already allocated to
tariff periods by local day.

Rules (money in the plan's currency, :mod:`cloud.billing.money`):

* The period is cut wherever the price or a tax may change: a contract anniversary (the
  escalator), a price version, a tax or electricity-tax version. Each piece gives one
  energy line per tariff period with energy: kWh (exact), the unit price in force
  (escalated, :meth:`~cloud.billing.tariffs.Plan.unit_price`), and its net
  ``round_half_up(kWh * unit price)`` to the cent.
* Where Spain's electricity tax applies, one line per (tax rate, electricity-tax rate)
  carries ``round_half_up(rate * the sum of those energy lines' nets)``; it is itself
  taxed like the energy.
* Tax per (tax, rate) is ``round_half_up(rate * the sum of that group's line nets)``,
  rounded once. ``net`` is the sum of the lines' nets, ``tax`` the sum of the taxes,
  ``gross = net + tax``: the totals always agree with the lines.

A period whose account changed plan (decision 150) is rated in plan segments
(:func:`rate_plans`): each segment's days on its own plan's prices and escalator (the
anniversaries still from the contract start), its energy lines naming the plan; taxes,
the electricity tax and the totals over the whole document as above.

Which kWh are billable (business.md §6) is decided before this: rating prices whatever
energy it is given.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from cloud.billing.money import round_money
from cloud.billing.periods import PeriodEnergy
from cloud.billing.tariffs import ElectricityTaxVersion, Plan, TariffError, TaxVersion, ZoneTaxes
from contracts.topics import Region

__all__ = [
    "ELECTRICITY_TAX_LINE",
    "ENERGY_LINE",
    "BillingPeriod",
    "InvoiceLine",
    "PlanEnergy",
    "RatedInvoice",
    "RatingError",
    "TaxLine",
    "plan_parts",
    "rate_period",
    "rate_plans",
    "tax_lines",
]

#: ``description_key`` of a line of energy at a tariff period's price.
ENERGY_LINE = "energy"
#: ``description_key`` of a line of Spain's electricity tax (IEE).
ELECTRICITY_TAX_LINE = "electricity_tax"


class RatingError(TariffError):
    """Energy that cannot be rated: outside the billing period, before the contract,
    in a period the plan does not price; or plan and taxes of different regions."""


@dataclass(frozen=True, slots=True)
class BillingPeriod:
    """Local dates ``first_day`` to ``last_day``, both included."""

    first_day: date
    last_day: date

    def __post_init__(self) -> None:
        if self.last_day < self.first_day:
            raise RatingError(f"billing period {self.first_day}..{self.last_day} is empty")

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.first_day <= day <= self.last_day


@dataclass(frozen=True, slots=True)
class InvoiceLine:
    """One line. Energy lines have ``period``, ``kwh`` and ``unit_price`` (per kWh);
    percentage lines (electricity tax) have ``base`` and ``percent``. ``net`` is rounded
    to the cent; ``tax`` and ``tax_percent`` say which tax group it falls in."""

    description_key: str
    first_day: date
    last_day: date
    net: Decimal
    tax: str
    tax_percent: Decimal
    period: str | None = None
    kwh: Decimal | None = None
    unit_price: Decimal | None = None
    base: Decimal | None = None
    percent: Decimal | None = None
    #: Service lines (a part, labour): how many (parts; labour minutes, ``unit_price``
    #: then per hour) and what (a part's number and description).
    quantity: Decimal | None = None
    item: str | None = None
    #: The plan an energy line is priced on, on a document of more than one plan (a
    #: plan change inside its period, decision 150); None otherwise.
    plan: str | None = None


@dataclass(frozen=True, slots=True)
class TaxLine:
    """``amount = round_half_up(base * percent / 100)``; ``base`` is the sum of the nets
    of the lines in this (tax, percent) group."""

    tax: str
    percent: Decimal
    base: Decimal
    amount: Decimal


@dataclass(frozen=True, slots=True)
class RatedInvoice:
    """A billing period rated: lines, taxes by rate, and totals that agree with them.
    ``unverified`` names every data version used whose ``verified`` is false."""

    plan_code: str
    region: Region
    currency: str
    tariff_zone: str
    contract_start: date
    period: BillingPeriod
    lines: tuple[InvoiceLine, ...]
    taxes: tuple[TaxLine, ...]
    net: Decimal
    tax: Decimal
    gross: Decimal
    unverified: tuple[str, ...]
    #: A document of more than one plan (decision 150): (first day, plan code) of each
    #: plan segment of the period, the first from its first day; empty: ``plan_code``
    #: throughout. ``plan_code`` is then the plan of the period's last day.
    plans: tuple[tuple[date, str], ...] = ()


@dataclass(frozen=True, slots=True)
class PlanEnergy:
    """The energy of local days ``first_day`` to ``last_day`` of a period, rated on
    ``plan`` (one segment of a period's plan history)."""

    plan: Plan
    first_day: date
    last_day: date
    energy: tuple[PeriodEnergy, ...]


def _segments(first: date, last: date, cuts: set[date]) -> list[tuple[date, date]]:
    """``[first, last]`` split before each day of ``cuts``."""
    starts = [first, *sorted(cuts)]
    ends = [day - timedelta(days=1) for day in starts[1:]] + [last]
    return list(zip(starts, ends, strict=True))


def _energy_by_day(
    plan: Plan, contract_start: date, days: BillingPeriod, energy: Iterable[PeriodEnergy]
) -> dict[tuple[date, str], Decimal]:
    priced = set(plan.periods())
    found: dict[tuple[date, str], Decimal] = {}
    for part in energy:
        if part.day not in days:
            raise RatingError(f"energy of {part.day} is outside {days.first_day}..{days.last_day}")
        if part.day < contract_start:
            raise RatingError(f"energy of {part.day} is before the contract ({contract_start})")
        if part.period not in priced:
            raise RatingError(f"plan {plan.code} does not price period {part.period!r}")
        key = (part.day, part.period)
        found[key] = found.get(key, Decimal(0)) + part.kwh
    return found


class _Provenance:
    """The unverified data versions an invoice used, in order of first use."""

    def __init__(self) -> None:
        self._labels: dict[str, None] = {}

    def note(self, verified: bool, label: str) -> None:
        if not verified:
            self._labels[label] = None

    def labels(self) -> tuple[str, ...]:
        return tuple(self._labels)


def _kwh_in(energy: dict[tuple[date, str], Decimal], name: str, first: date, last: date) -> Decimal:
    return sum(
        (kwh for (day, period), kwh in energy.items() if period == name and first <= day <= last),
        Decimal(0),
    )


def _energy_line(
    plan: Plan,
    contract_start: date,
    name: str,
    span: tuple[date, date],
    kwh: Decimal,
    tax: TaxVersion,
    used: _Provenance,
    labelled: bool,
) -> InvoiceLine:
    first, last = span
    price = plan.unit_price(name, first, contract_start)
    version = plan.price_version(first)
    used.note(
        version.verified and plan.escalator.verified,
        f"plan {plan.code} prices from {version.effective_from}, escalator",
    )
    return InvoiceLine(
        description_key=ENERGY_LINE,
        first_day=first,
        last_day=last,
        net=round_money(kwh * price, plan.currency),
        tax=tax.tax,
        tax_percent=tax.rate_percent,
        period=name,
        kwh=kwh,
        unit_price=price,
        plan=plan.code if labelled else None,
    )


def _levy_line(currency: str, percent: Decimal, taxed: list[InvoiceLine]) -> InvoiceLine:
    """The electricity tax on ``taxed`` (energy lines of one tax rate), taxed like them."""
    base = sum((line.net for line in taxed), Decimal(0))
    return InvoiceLine(
        description_key=ELECTRICITY_TAX_LINE,
        first_day=taxed[0].first_day,
        last_day=taxed[-1].last_day,
        net=round_money(base * percent / 100, currency),
        tax=taxed[0].tax,
        tax_percent=taxed[0].tax_percent,
        base=base,
        percent=percent,
    )


def _energy_lines(
    parts: Sequence[tuple[Plan, BillingPeriod, dict[tuple[date, str], Decimal]]],
    taxes: ZoneTaxes,
    contract_start: date,
    used: _Provenance,
) -> list[InvoiceLine]:
    """Energy lines, plan segment by plan segment, and, where it applies, the
    electricity tax on them (over the whole document)."""
    lines: list[InvoiceLine] = []
    levied: dict[tuple[str, Decimal, Decimal], list[InvoiceLine]] = {}
    for plan, energy, span, tax, levy in _spans(parts, taxes, contract_start):
        for name in plan.periods():
            kwh = _kwh_in(energy, name, *span)
            if not kwh:
                continue
            labelled = len(parts) > 1
            line = _energy_line(plan, contract_start, name, span, kwh, tax, used, labelled)
            lines.append(line)
            used.note(
                tax.verified,
                f"{taxes.zone} {tax.tax} {tax.rate_percent} % from {tax.effective_from}",
            )
            if levy is not None:
                levied.setdefault((tax.tax, tax.rate_percent, levy.rate_percent), []).append(line)
                used.note(
                    levy.verified,
                    f"{taxes.zone} electricity tax {levy.rate_percent} % "
                    f"from {levy.effective_from}",
                )
    currency = parts[0][0].currency
    lines += [_levy_line(currency, key[2], taxed) for key, taxed in levied.items()]
    return lines


def _spans(
    parts: Sequence[tuple[Plan, BillingPeriod, dict[tuple[date, str], Decimal]]],
    taxes: ZoneTaxes,
    contract_start: date,
) -> Iterable[
    tuple[
        Plan,
        dict[tuple[date, str], Decimal],
        tuple[date, date],
        TaxVersion,
        ElectricityTaxVersion | None,
    ]
]:
    """Each plan segment cut wherever its price or a tax may change, with the taxes in
    force on each piece."""
    for plan, days, energy in parts:
        cuts = plan.price_changes(contract_start, days.first_day, days.last_day)
        cuts |= taxes.changes(days.first_day, days.last_day)
        for span in _segments(days.first_day, days.last_day, cuts):
            yield plan, energy, span, taxes.tax_on(span[0]), taxes.electricity_tax_on(span[0])


def tax_lines(lines: Iterable[InvoiceLine], currency: str) -> tuple[TaxLine, ...]:
    """Tax per (tax, rate) on the sum of the lines' nets in that group, rounded once."""
    bases: dict[tuple[str, Decimal], Decimal] = {}
    for line in lines:
        key = (line.tax, line.tax_percent)
        bases[key] = bases.get(key, Decimal(0)) + line.net
    return tuple(
        TaxLine(tax, percent, base, round_money(base * percent / 100, currency))
        for (tax, percent), base in bases.items()
    )


def rate_period(
    plan: Plan,
    taxes: ZoneTaxes,
    *,
    contract_start: date,
    period: BillingPeriod,
    energy: Iterable[PeriodEnergy],
) -> RatedInvoice:
    """The invoice of ``period`` (local dates) for a customer on ``plan`` whose contract
    started on ``contract_start``, in the tariff zone of ``taxes``, for ``energy`` (kWh by
    local day and tariff period, e.g. :func:`~cloud.billing.periods.energy_totals`).
    Energy outside the period or before the contract is refused, not dropped."""
    part = PlanEnergy(plan, period.first_day, period.last_day, tuple(energy))
    return rate_plans([part], taxes, contract_start=contract_start, period=period)


def rate_plans(
    parts: Sequence[PlanEnergy],
    taxes: ZoneTaxes,
    *,
    contract_start: date,
    period: BillingPeriod,
) -> RatedInvoice:
    """The invoice of ``period`` whose plan segments ``parts`` (in day order, together
    exactly the period's days) each rate their own days' energy on their own plan
    (:func:`rate_period` per segment, decision 150), in one document: energy lines
    segment by segment (naming their plan when there is more than one), the electricity
    tax, taxes and totals over all of them."""
    _check_tiling(parts, period)
    rated = []
    for part in parts:
        if part.plan.region != taxes.region:
            raise RatingError(
                f"plan {part.plan.code} is {part.plan.region}'s, zone {taxes.zone} is not"
            )
        days = BillingPeriod(part.first_day, part.last_day)
        rated.append(
            (part.plan, days, _energy_by_day(part.plan, contract_start, days, part.energy))
        )
    used = _Provenance()
    lines = _energy_lines(rated, taxes, contract_start, used)
    last = parts[-1].plan
    taxed = tax_lines(lines, last.currency)
    net = sum((line.net for line in lines), Decimal(0))
    tax = sum((line.amount for line in taxed), Decimal(0))
    return RatedInvoice(
        plan_code=last.code,
        region=last.region,
        currency=last.currency,
        tariff_zone=taxes.zone,
        contract_start=contract_start,
        period=period,
        lines=tuple(lines),
        taxes=taxed,
        net=net,
        tax=tax,
        gross=net + tax,
        unverified=used.labels(),
        plans=tuple((p.first_day, p.plan.code) for p in parts) if len(parts) > 1 else (),
    )


def plan_parts(
    plans: Sequence[tuple[date, Plan]],
    period: BillingPeriod,
    energy: Sequence[Sequence[PeriodEnergy]],
) -> list[PlanEnergy]:
    """The plan segments of ``period`` — (first day, plan), the first from the period's
    first day — with their energy (``energy[k]``: segment ``k``'s), for :func:`rate_plans`."""
    lasts = [day - timedelta(days=1) for day, _ in plans[1:]] + [period.last_day]
    return [
        PlanEnergy(plan, day, last, tuple(found))
        for (day, plan), last, found in zip(plans, lasts, energy, strict=True)
    ]


def _check_tiling(parts: Sequence[PlanEnergy], period: BillingPeriod) -> None:
    """``parts`` cover ``period``'s days exactly, in order."""
    if not parts:
        raise RatingError("a period is rated on at least one plan")
    expected = period.first_day
    for part in parts:
        if part.first_day != expected or part.last_day < part.first_day:
            raise RatingError(
                f"plan segment {part.first_day}..{part.last_day} of {part.plan.code} does not "
                f"follow on {expected} in {period.first_day}..{period.last_day}"
            )
        expected = part.last_day + timedelta(days=1)
    if parts[-1].last_day != period.last_day:
        raise RatingError(f"the plan segments end on {parts[-1].last_day}, not {period.last_day}")
