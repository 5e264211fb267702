"""From ledger lines to documents, as pure functions: the energy a reckoning bills per
(local day, tariff period), the difference a true-up bills on a note, document numbers,
and the ``invoice.issued`` payload of a rated document.

Energy is exact throughout: a ledger line's billable milliwatt-hours become kWh with six
decimals (1 kWh = 1,000,000 mWh), allocated to tariff periods at that resolution, so the
kWh on a document add up to the ledger's billable energy exactly.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from zoneinfo import ZoneInfo

from cloud.billing.ledger import LedgerLine
from cloud.billing.money import round_money
from cloud.billing.periods import EnergyInterval, PeriodEnergy, TouSchedule, allocate, energy_totals
from cloud.billing.rating import RatedInvoice
from cloud.events.invoices import DocumentKind, InvoiceIssued
from contracts.topics import Region

__all__ = [
    "MWH",
    "EnergyDifference",
    "document_number",
    "energy_difference",
    "issued_payload",
    "kwh",
    "period_energy",
]

#: One milliwatt-hour in kWh: the resolution billing allocates at (the ledger's unit).
MWH = Decimal("0.000001")


def kwh(mwh: int) -> Decimal:
    """``mwh`` milliwatt-hours as exact kWh."""
    return Decimal(mwh).scaleb(-6)


def document_number(region: Region, year: int, sequence: int) -> str:
    """``AU-2026-0000123``: the region, the year of issue, seven digits."""
    if not 1 <= sequence <= 9_999_999:
        raise ValueError(f"document sequence {sequence} is outside 1..9999999")
    return f"{region.value.upper()}-{year:04d}-{sequence:07d}"


def period_energy(
    lines: Iterable[LedgerLine],
    *,
    time_zone: ZoneInfo,
    schedule: TouSchedule | None,
    tariff_zone: str,
) -> tuple[PeriodEnergy, ...]:
    """The lines' billable energy per (local day, tariff period), kWh, exact."""
    intervals = [
        EnergyInterval(line.start, line.end, kwh(line.billable_mwh))
        for line in lines
        if line.billable_mwh
    ]
    allocated = allocate(
        intervals, time_zone=time_zone, schedule=schedule, tariff_zone=tariff_zone, resolution=MWH
    )
    return energy_totals(allocated)


@dataclass(frozen=True, slots=True)
class EnergyDifference:
    """What a true-up bills: ``more`` on a debit note, ``less`` (as positive kWh) on a
    credit note; a tariff period's days go wholly to the side its total moved to."""

    more: tuple[PeriodEnergy, ...]
    less: tuple[PeriodEnergy, ...]


def energy_difference(new: Sequence[PeriodEnergy], old: Sequence[PeriodEnergy]) -> EnergyDifference:
    """``new - old`` per (day, period), split by the sign of each period's total change
    (so each note's lines are positive amounts, as documents carry them)."""
    delta: dict[tuple[date, str], Decimal] = {}
    for part, sign in [(p, 1) for p in new] + [(p, -1) for p in old]:
        key = (part.day, part.period)
        delta[key] = delta.get(key, Decimal(0)) + sign * part.kwh
    totals: dict[str, Decimal] = {}
    for (_, period), change in delta.items():
        totals[period] = totals.get(period, Decimal(0)) + change
    more = [
        PeriodEnergy(day, period, change)
        for (day, period), change in sorted(delta.items())
        if change and totals[period] > 0
    ]
    less = [
        PeriodEnergy(day, period, -change)
        for (day, period), change in sorted(delta.items())
        if change and totals[period] < 0
    ]
    return EnergyDifference(tuple(more), tuple(less))


def _description(line_key: str, period: str | None, first: date, last: date) -> str:
    what = line_key if period is None else f"{line_key} {period}"
    return f"{what} {first.isoformat()}..{last.isoformat()}"


def issued_payload(
    rated: RatedInvoice,
    *,
    kind: DocumentKind,
    number: str,
    account_id: str,
    issue_date: date,
    due_date: date,
    reference_number: str | None = None,
    work_order_id: int | None = None,
) -> InvoiceIssued:
    """The ``invoice.issued`` payload of ``rated`` issued as ``kind`` ``number``. A line's
    ``tax`` is its own net taxed and rounded; the document's ``tax`` is the rated one
    (per rate on the sum of the lines, rounded once)."""
    lines = [
        {
            "description": (
                _description(line.description_key, line.period, line.first_day, line.last_day)
                if line.item is None and line.quantity is None
                else f"{line.description_key} {line.item or ''}".strip()[:200]
            ),
            "quantity": line.quantity,
            "kwh": line.kwh if line.kwh is not None else Decimal(0),
            "unit_price": line.unit_price if line.unit_price is not None else Decimal(0),
            "net": line.net,
            "tax_rate": line.tax_percent / 100,
            "tax": _line_tax(line.net, line.tax_percent, rated.currency),
        }
        for line in rated.lines
    ]
    return InvoiceIssued.model_validate(
        {
            "kind": kind,
            "number": number,
            "region": rated.region,
            "account_id": account_id,
            "issue_date": issue_date,
            "due_date": due_date,
            "currency": rated.currency,
            "net": rated.net,
            "tax": rated.tax,
            "gross": rated.gross,
            "lines": lines,
            "reference_number": reference_number,
            "work_order_id": work_order_id,
        }
    )


def _line_tax(net: Decimal, percent: Decimal, currency: str) -> Decimal:
    return round_money(net * percent / 100, currency)
