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
from datetime import date, timedelta
from decimal import Decimal
from itertools import pairwise
from zoneinfo import ZoneInfo

from cloud.billing.ledger import LedgerLine
from cloud.billing.money import round_money
from cloud.billing.periods import (
    EnergyInterval,
    PeriodEnergy,
    TouSchedule,
    allocate,
    energy_totals,
    largest_remainder,
)
from cloud.billing.rating import RatedInvoice
from cloud.billing.readings import local_midnight
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
    "segment_difference",
    "segment_energy",
]

#: One milliwatt-hour in kWh: the resolution billing allocates at (the ledger's unit).
MWH = Decimal("0.000001")
_MICROSECOND = timedelta(microseconds=1)


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
    return _totals(intervals, time_zone, schedule, tariff_zone)


def _totals(
    intervals: Sequence[EnergyInterval],
    time_zone: ZoneInfo,
    schedule: TouSchedule | None,
    tariff_zone: str,
) -> tuple[PeriodEnergy, ...]:
    allocated = allocate(
        intervals, time_zone=time_zone, schedule=schedule, tariff_zone=tariff_zone, resolution=MWH
    )
    return energy_totals(allocated)


def segment_energy(
    lines: Iterable[LedgerLine],
    *,
    time_zone: ZoneInfo,
    segments: Sequence[tuple[date, TouSchedule | None]],
    tariff_zone: str,
) -> tuple[tuple[PeriodEnergy, ...], ...]:
    """:func:`period_energy` per plan segment (decision 150): ``segments`` are each
    segment's first local day (the first's is not a cut: it takes everything before
    the second's) and its plan's TOU schedule. The lines are cut at each segment's local
    midnight first, a line across one (a zone of half-hour offset) shared by duration in
    whole mWh by largest remainder, so the segments' kWh add up to the lines' exactly."""
    if len(segments) == 1:  # no plan change in the period: the cycle's common case
        only = period_energy(
            lines, time_zone=time_zone, schedule=segments[0][1], tariff_zone=tariff_zone
        )
        return (only,)
    cuts = [local_midnight(day, time_zone) for day, _ in segments[1:]]
    parts: list[list[EnergyInterval]] = [[] for _ in segments]
    for line in lines:
        if not line.billable_mwh:
            continue
        edges = [line.start, *(c for c in cuts if line.start < c < line.end), line.end]
        first = sum(1 for c in cuts if c <= line.start)
        pieces = list(pairwise(edges))
        shares = largest_remainder(line.billable_mwh, [(b - a) // _MICROSECOND for a, b in pieces])
        for k, (share, (a, b)) in enumerate(zip(shares, pieces, strict=True)):
            if share:
                parts[first + k].append(EnergyInterval(a, b, kwh(share)))
    return tuple(
        _totals(found, time_zone, schedule, tariff_zone)
        for found, (_, schedule) in zip(parts, segments, strict=True)
    )


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


def segment_difference(
    new: Sequence[Sequence[PeriodEnergy]], old: Sequence[Sequence[PeriodEnergy]]
) -> tuple[EnergyDifference, ...]:
    """:func:`energy_difference` plan segment by plan segment (of
    :func:`segment_energy`): a segment's tariff periods are its plan's, so energy moved
    between two plans' days is billed on one and credited on the other, never netted."""
    return tuple(energy_difference(n, o) for n, o in zip(new, old, strict=True))


def _description(
    line_key: str, period: str | None, first: date, last: date, plan: str | None
) -> str:
    what = line_key if period is None else f"{line_key} {period}"
    on = "" if plan is None else f" plan {plan}"
    return f"{what}{on} {first.isoformat()}..{last.isoformat()}"


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
                _description(
                    line.description_key, line.period, line.first_day, line.last_day, line.plan
                )
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
