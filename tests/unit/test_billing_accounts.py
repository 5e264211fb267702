"""Accounts arithmetic (cloud/billing/accounts.py): allocation oldest due first, exact and
never over the outstanding; settling credits; balances, statements and reminder levels,
against hand-computed figures."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud.billing.accounts import (
    AllocationError,
    Entry,
    OpenItem,
    Source,
    allocate_money,
    balance,
    reminder_levels,
    settle,
    statement,
)
from cloud.billing.payments import LocalPaymentProvider, PaymentDeclinedError
from cloud.billing.schedule import reminder_day

D = Decimal
T0 = datetime(2026, 11, 2, tzinfo=UTC)


def _item(doc: int, due: str, outstanding: str, issued_days: int = 0) -> OpenItem:
    return OpenItem(doc, date.fromisoformat(due), T0 + timedelta(days=issued_days), D(outstanding))


@pytest.mark.parametrize(
    ("amount", "expected_parts", "remainder"),
    [
        # 3 is due first, then 1, then 2.
        ("10.00", [(3, "10.00")], "0.00"),
        ("25.00", [(3, "20.00"), (1, "5.00")], "0.00"),
        ("50.05", [(3, "20.00"), (1, "30.05")], "0.00"),
        ("60.10", [(3, "20.00"), (1, "30.05"), (2, "10.05")], "0.00"),
        ("100.00", [(3, "20.00"), (1, "30.05"), (2, "10.05")], "39.90"),
        ("0.00", [], "0.00"),
    ],
)
def test_allocation_pays_the_oldest_due_first_and_keeps_the_rest(
    amount: str, expected_parts: list[tuple[int, str]], remainder: str
) -> None:
    items = [
        _item(1, "2026-11-16", "30.05"),
        _item(2, "2026-12-16", "10.05"),
        _item(3, "2026-10-16", "20.00"),
    ]
    allocation = allocate_money(D(amount), items)
    assert allocation.parts == tuple((doc, D(a)) for doc, a in expected_parts)
    assert allocation.remainder == D(remainder)


def test_equal_due_dates_are_paid_in_order_of_issue() -> None:
    items = [_item(7, "2026-11-16", "5.00", issued_days=1), _item(9, "2026-11-16", "5.00")]
    assert allocate_money(D("6.00"), items).parts == ((9, D("5.00")), (7, D("1.00")))


def test_a_negative_amount_or_a_settled_item_is_refused() -> None:
    with pytest.raises(AllocationError):
        allocate_money(D("-1.00"), [])
    with pytest.raises(AllocationError):
        allocate_money(D("1.00"), [_item(1, "2026-11-16", "0.00")])


cents = st.integers(min_value=1, max_value=10_000_000).map(lambda c: D(c).scaleb(-2))
items_strategy = st.lists(
    st.tuples(st.dates(date(2026, 1, 1), date(2027, 12, 31)), cents), max_size=12
).map(lambda xs: [OpenItem(k, due, T0, amount) for k, (due, amount) in enumerate(xs)])


@given(
    st.integers(min_value=0, max_value=100_000_000).map(lambda c: D(c).scaleb(-2)), items_strategy
)
def test_allocation_conserves_money_and_never_over_allocates(
    amount: Decimal, items: list[OpenItem]
) -> None:
    allocation = allocate_money(amount, items)
    assert sum((a for _, a in allocation.parts), D(0)) + allocation.remainder == amount
    owed = {i.document_id: i for i in items}
    assert all(D(0) < a <= owed[doc].outstanding for doc, a in allocation.parts)
    assert len({doc for doc, _ in allocation.parts}) == len(allocation.parts)
    assert allocation.remainder >= 0
    # Oldest due first: every item paid in full but the last one paid, and an item is
    # only paid once every item due before it is paid in full.
    paid = dict(allocation.parts)
    for item in items:
        if item.document_id in paid and allocation.remainder > 0:
            assert paid[item.document_id] == item.outstanding
    for item in items:
        if item.document_id in paid:
            earlier = [
                i for i in items if (i.due_date, i.document_id) < (item.due_date, item.document_id)
            ]
            assert all(paid.get(i.document_id) == i.outstanding for i in earlier)
    if allocation.remainder > 0:
        assert paid == {i.document_id: i.outstanding for i in items}


@given(st.lists(cents, max_size=6), st.lists(cents, max_size=6), items_strategy)
def test_settling_never_spends_more_than_a_source_has_nor_pays_more_than_owed(
    payments: list[Decimal], credits: list[Decimal], items: list[OpenItem]
) -> None:
    sources = [Source("payment", k, T0 + timedelta(hours=k), a) for k, a in enumerate(payments)]
    sources += [
        Source(
            "credit",
            100 + k,
            T0 + timedelta(minutes=k),
            a,
            applies_to=k if k < len(items) else None,
        )
        for k, a in enumerate(credits)
    ]
    parts = settle(sources, items)
    spent: dict[tuple[str, int], Decimal] = {}
    got: dict[int, Decimal] = {}
    for s, doc, amount in parts:
        assert amount > 0
        spent[(s.kind, s.source_id)] = spent.get((s.kind, s.source_id), D(0)) + amount
        got[doc] = got.get(doc, D(0)) + amount
    assert all(
        spent[(s.kind, s.source_id)] <= s.amount for s in sources if (s.kind, s.source_id) in spent
    )
    assert all(got[i.document_id] <= i.outstanding for i in items if i.document_id in got)
    total_in = sum((s.amount for s in sources), D(0))
    total_owed = sum((i.outstanding for i in items), D(0))
    # Everything that can be allocated is: min(money, debt).
    assert sum(got.values(), D(0)) == min(total_in, total_owed)


def test_a_credit_note_settles_the_invoice_it_references_first() -> None:
    items = [_item(1, "2026-10-16", "10.00"), _item(2, "2026-11-16", "30.00")]
    note = Source("credit", 50, T0, D("12.00"), applies_to=2)
    assert [(doc, a) for _, doc, a in settle([note], items)] == [(2, D("12.00"))]
    # A credit larger than its invoice's outstanding: the rest goes oldest first.
    big = Source("credit", 51, T0, D("35.00"), applies_to=2)
    assert [(doc, a) for _, doc, a in settle([big], items)] == [(2, D("30.00")), (1, D("5.00"))]


def _entry(day: int, kind: str, amount: str, currency: str = "AUD") -> Entry:
    return Entry(datetime(2026, 11, day, tzinfo=UTC), kind, f"ref{day}", currency, D(amount))


def test_balance_is_charges_less_credits_and_payments_per_currency() -> None:
    entries = [
        _entry(1, "invoice", "26.38"),
        _entry(2, "debit_note", "1.10"),
        _entry(3, "credit_note", "0.81"),
        _entry(4, "payment", "20.00"),
        _entry(5, "cancellation", "1.10"),
        _entry(5, "invoice", "20.45", "EUR"),
    ]
    # 26.38 + 1.10 - 0.81 - 20.00 - 1.10 = 5.57
    assert balance(entries) == {"AUD": D("5.57"), "EUR": D("20.45")}


def test_a_statement_opens_with_the_balance_before_and_closes_with_its_entries() -> None:
    entries = [
        _entry(1, "invoice", "26.38"),
        _entry(3, "payment", "10.00"),
        _entry(10, "credit_note", "0.81"),
        _entry(12, "payment", "15.00"),
        _entry(20, "invoice", "30.00"),
    ]
    (aud,) = statement(
        entries, datetime(2026, 11, 5, tzinfo=UTC), datetime(2026, 11, 15, tzinfo=UTC)
    ).values()
    assert aud.opening == D("16.38")  # 26.38 - 10.00
    assert [e.reference for e in aud.entries] == ["ref10", "ref12"]
    assert aud.closing == D("0.57")  # 16.38 - 0.81 - 15.00


@pytest.mark.parametrize(
    ("as_of", "levels"),
    [
        ("2026-11-16", ()),
        ("2026-11-22", ()),
        ("2026-11-23", (7,)),
        ("2026-12-06", (7,)),
        ("2026-12-07", (7, 21)),
    ],
)
def test_reminder_levels_are_reached_7_and_21_days_after_the_due_date(
    as_of: str, levels: tuple[int, ...]
) -> None:
    assert reminder_levels(date(2026, 11, 16), date.fromisoformat(as_of)) == levels


def test_the_local_provider_is_idempotent_by_key_and_can_be_told_to_decline() -> None:
    provider = LocalPaymentProvider(clock=lambda: T0, declining={"acc_bad"})
    first = provider.charge("acc_x", D("10.00"), "AUD", "key-1")
    assert provider.charge("acc_x", D("10.00"), "AUD", "key-1") == first
    assert provider.charge("acc_x", D("10.00"), "AUD", "key-2").reference != first.reference
    with pytest.raises(PaymentDeclinedError, match="declined"):
        provider.charge("acc_bad", D("10.00"), "AUD", "key-3")


def test_the_reminder_day_is_the_regions_local_date_from_the_hour() -> None:
    sydney = ZoneInfo("Australia/Sydney")
    # 22:30 UTC on 1 March is 09:30 on 2 March in Sydney (AEDT, +11).
    at = datetime(2027, 3, 1, 22, 30, tzinfo=UTC)
    assert reminder_day(at, sydney, 9, None) == date(2027, 3, 2)
    assert reminder_day(at, sydney, 10, None) is None  # not 10:00 there yet
    assert reminder_day(at, sydney, 9, date(2027, 3, 2)) is None  # run already
    assert reminder_day(at, sydney, 9, date(2027, 3, 1)) == date(2027, 3, 2)


def test_a_refund_draws_on_the_oldest_credit_first_and_never_beyond_it() -> None:
    from cloud.billing.accounts import AllocationError, Source, draw_credit

    t0 = datetime(2026, 12, 1, tzinfo=UTC)
    older = Source("credit", 7, t0, Decimal("3.45"), applies_to=5)
    newer = Source("payment", 2, t0 + timedelta(days=1), Decimal("31.05"))
    drawn = draw_credit([newer, older], Decimal("20.00"))
    assert [(s.kind, s.source_id, a) for s, a in drawn] == [
        ("credit", 7, Decimal("3.45")),
        ("payment", 2, Decimal("16.55")),
    ]
    with pytest.raises(AllocationError, match=r"credit is 34\.50"):
        draw_credit([newer, older], Decimal("34.51"))
    with pytest.raises(AllocationError):
        draw_credit([newer], Decimal("0"))
