"""Support's figures as pure functions (cloud.support.metrics) and the support report's
table (cloud.reports.support_table): when a clock is decided and how, the attainment
per priority of the clocks decided in a month, and tickets per 1,000 customers — every
expectation worked out by hand in the comments."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from cloud.reports import Cell, cell_text, support_table
from cloud.support.lifecycle import Kind, Priority
from cloud.support.metrics import (
    Attainment,
    Decided,
    attainment,
    decided,
    month_bounds,
    months_up_to,
    per_thousand,
    ticket_rates,
)
from cloud.support.sla import Clock
from contracts.topics import Region


def t(d: int, h: int = 12, month: int = 9) -> datetime:
    return datetime(2026, month, d, h, tzinfo=UTC)


H = timedelta(hours=1)
NOW = t(20)

# (clock, expected outcome at NOW)
DECIDED_CASES = [
    # Stopped by its due time: met, decided when it stopped.
    pytest.param(Clock(t(3), t(2), 2 * H, False), Decided(t(2), True), id="met-early"),
    # Stopped exactly at its due time: met (a due time itself is met).
    pytest.param(Clock(t(3), t(3), 4 * H, False), Decided(t(3), True), id="met-on-the-due"),
    # Stopped after its due time: breached, decided at the due time, not the event.
    pytest.param(Clock(t(3), t(9), 9 * H, True), Decided(t(3), False), id="late"),
    # Still running past its due time: breached at the due time.
    pytest.param(Clock(t(5), None, 40 * H, True), Decided(t(5), False), id="running-late"),
    # Running, its due time still ahead of now: undecided.
    pytest.param(Clock(t(25), None, 1 * H, False), None, id="running-in-time"),
    # Paused (no due time) and not stopped: undecided.
    pytest.param(Clock(None, None, 1 * H, False), None, id="paused"),
    # Stopped while a pause ran (the clock had no due time then): met.
    pytest.param(Clock(None, t(4), 1 * H, False), Decided(t(4), True), id="stopped-in-pause"),
]


@pytest.mark.parametrize(("c", "expected"), DECIDED_CASES)
def test_a_clock_is_decided_at_its_event_when_met_and_at_its_due_time_when_late(
    c: Clock, expected: Decided | None
) -> None:
    assert decided(c, NOW) == expected


SINCE, UNTIL = t(1, 0), t(1, 0, month=10)
MET_IN = Decided(t(10), True)
LATE_IN = Decided(t(11), False)
MET_BEFORE = Decided(t(31, 23, month=8), True)
LATE_AFTER = Decided(t(1, 0, month=10), False)  # the next month's first instant

ATTAINMENT_CASES = [
    pytest.param(
        [],
        [Attainment(p) for p in (Priority.URGENT, Priority.HIGH, Priority.NORMAL, Priority.LOW)],
        id="none",
    ),
    pytest.param(
        # high: first response met and late in the month (2 measured, 1 met); resolution
        # one met in the month, one decided in August (not counted), one undecided.
        [
            (Priority.HIGH, MET_IN, MET_IN),
            (Priority.HIGH, LATE_IN, MET_BEFORE),
            (Priority.HIGH, None, None),
        ],
        [
            Attainment(Priority.URGENT),
            Attainment(Priority.HIGH, 2, 1, 1, 1),
            Attainment(Priority.NORMAL),
            Attainment(Priority.LOW),
        ],
        id="high-only",
    ),
    pytest.param(
        # urgent late twice (resolution decided at October's first instant: not in it);
        # low met once each.
        [
            (Priority.URGENT, LATE_IN, LATE_IN),
            (Priority.URGENT, LATE_IN, LATE_AFTER),
            (Priority.LOW, MET_IN, MET_IN),
        ],
        [
            Attainment(Priority.URGENT, 2, 0, 1, 0),
            Attainment(Priority.HIGH),
            Attainment(Priority.NORMAL),
            Attainment(Priority.LOW, 1, 1, 1, 1),
        ],
        id="urgent-and-low",
    ),
]


@pytest.mark.parametrize(("clocks", "expected"), ATTAINMENT_CASES)
def test_attainment_counts_the_clocks_decided_in_the_month_per_priority(
    clocks: list[tuple[Priority, Decided | None, Decided | None]], expected: list[Attainment]
) -> None:
    assert attainment(clocks, SINCE, UNTIL) == expected


@pytest.mark.parametrize(
    ("tickets", "customers", "expected"),
    [
        (3, 2000, Decimal("1.5")),  # 3 x 1000 / 2000
        (1, 3, Decimal("333.3")),  # 333.33…
        (2, 3, Decimal("666.7")),  # 666.66… up
        (1, 16, Decimal("62.5")),  # exactly 62.5
        (1, 80, Decimal("12.5")),  # exactly 12.5
        (1, 8000, Decimal("0.1")),  # 0.125 → 0.1
        (3, 8000, Decimal("0.4")),  # 0.375 → 0.4
        (1, 20000, Decimal("0.1")),  # 0.05 → half up 0.1
        (0, 10, Decimal("0.0")),
        (5, 0, None),  # no customers: no figure
    ],
)
def test_per_thousand_rounds_half_up_to_a_tenth(
    tickets: int, customers: int, expected: Decimal | None
) -> None:
    assert per_thousand(tickets, customers) == expected


def test_months_up_to_counts_back_across_a_year() -> None:
    assert months_up_to(date(2026, 2, 17), 4) == [
        date(2025, 11, 1),
        date(2025, 12, 1),
        date(2026, 1, 1),
        date(2026, 2, 1),
    ]
    assert months_up_to(date(2026, 3, 1), 1) == [date(2026, 3, 1)]


def test_month_bounds_are_local_midnights() -> None:
    # Sydney: September starts at +10 (AEST), October at +10 too (DST starts 4 Oct).
    since, until = month_bounds(date(2026, 9, 14), ZoneInfo("Australia/Sydney"))
    assert since == datetime(2026, 8, 31, 14, tzinfo=UTC)
    assert until == datetime(2026, 9, 30, 14, tzinfo=UTC)


def test_ticket_rates_per_month_and_kind_then_all_kinds() -> None:
    aug, sep = date(2026, 8, 1), date(2026, 9, 1)
    raised = {(aug, Kind.QUESTION): 3, (sep, Kind.QUESTION): 1, (sep, Kind.FAULT_REPORT): 2}
    rates = ticket_rates([aug, sep], raised, {aug: 0, sep: 400})
    assert [(r.month, r.kind, r.tickets, r.customers, r.per_thousand) for r in rates] == [
        # August: no customers, no figure (the tickets still counted).
        ("2026-08", "complaint", 0, 0, None),
        ("2026-08", "question", 3, 0, None),
        ("2026-08", "change_request", 0, 0, None),
        ("2026-08", "fault_report", 0, 0, None),
        ("2026-08", "data_export", 0, 0, None),
        ("2026-08", "data_erasure", 0, 0, None),
        ("2026-08", "all", 3, 0, None),
        # September, 400 customers: 1 x 1000 / 400 = 2.5; 2 → 5.0; all 3 → 7.5.
        ("2026-09", "complaint", 0, 400, Decimal("0.0")),
        ("2026-09", "question", 1, 400, Decimal("2.5")),
        ("2026-09", "change_request", 0, 400, Decimal("0.0")),
        ("2026-09", "fault_report", 2, 400, Decimal("5.0")),
        ("2026-09", "data_export", 0, 400, Decimal("0.0")),
        ("2026-09", "data_erasure", 0, 400, Decimal("0.0")),
        ("2026-09", "all", 3, 400, Decimal("7.5")),
    ]


def test_the_support_table_works_its_ratios_out_and_totals_them_again() -> None:
    rows: list[dict[str, Cell]] = [
        {"priority": "urgent", "first_response_measured": 3, "first_response_met": 2,
         "resolution_measured": 0, "resolution_met": 0},
        {"priority": "high", "first_response_measured": 1, "first_response_met": 1,
         "resolution_measured": 2, "resolution_met": 1},
    ]  # fmt: skip
    table = support_table(Region.AU, date(2026, 9, 14), rows)
    assert table.month == date(2026, 9, 1)
    assert table.name == "support"

    def text(row: dict[str, Cell]) -> list[str]:
        return [cell_text(c, row.get(c.key)) for c in table.columns]

    # 2/3 = 66.66… → 66.7; 0/0: no figure; total 3/4 = 75.0 and 1/2 = 50.0.
    assert [text(r) for r in table.rows] == [
        ["urgent", "3", "2", "66.7", "0", "0", ""],
        ["high", "1", "1", "100.0", "2", "1", "50.0"],
    ]
    assert [text(r) for r in table.totals] == [["total", "4", "3", "75.0", "2", "1", "50.0"]]
