"""The SAP integration's pure core: the ``invoice.issued`` payload, the AR journal entry
an issued document becomes, the business partner's external id, the reconciliation's
comparison and the settings' refusals. Expected figures are worked out by hand here."""

from __future__ import annotations

import re
import uuid
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from cloud.events.invoices import InvoiceIssued, invoice_issued_event
from cloud.sap.documents import (
    ArRecord,
    PartnerRecord,
    PostingRules,
    ar_document,
    check_reference,
    partner_external_id,
)
from cloud.sap.errors import SapRefusedError
from cloud.sap.reconciliation import compare_documents, compare_partners
from cloud.sap.repository import SentDocument, SentPartner
from cloud.sap.settings import SapSettings

ACCOUNT = "acc_" + "0123456789abcdef" * 2
RULES = PostingRules("ES01", "41000000", "22000000")


def _issued(**overrides: Any) -> InvoiceIssued:
    values: dict[str, Any] = {
        "kind": "invoice",
        "number": "ES-2026-0000042",
        "region": "es",
        "account_id": ACCOUNT,
        "issue_date": date(2026, 3, 2),
        "due_date": date(2026, 3, 16),
        "currency": "EUR",
        # 2 lines at 21 %: 33.33 + 16.67 = 50.00 net; tax 10.50 (rounded once).
        "net": "50.00",
        "tax": "10.50",
        "gross": "60.50",
        "lines": [
            {
                "description": "P1",
                "kwh": "100",
                "unit_price": "0.3333",
                "net": "33.33",
                "tax_rate": "0.21",
                "tax": "7.00",
            },
            {
                "description": "P3",
                "kwh": "83.35",
                "unit_price": "0.2",
                "net": "16.67",
                "tax_rate": "0.21",
                "tax": "3.50",
            },
        ],
    }
    values.update(overrides)
    return InvoiceIssued.model_validate(values)


def test_an_issued_document_travels_as_decimal_strings_and_comes_back_equal() -> None:
    issued = _issued()
    event = invoice_issued_event(issued)
    assert event.payload["gross"] == "60.50"
    assert InvoiceIssued.model_validate(event.payload) == issued
    assert invoice_issued_event(issued).id == event.id  # one document, one event


@pytest.mark.parametrize(
    ("overrides", "why"),
    [
        ({"gross": "60.51"}, "gross is not net"),
        ({"net": "50.01", "gross": "60.51"}, "sum of the lines"),
        ({"number": "AU-2026-0000042"}, "not of region"),
        ({"currency": "USD"}, "bills in EUR"),
        ({"kind": "credit_note"}, "names the document it corrects"),
        ({"reference_number": "ES-2026-0000001"}, "corrects no document"),
        ({"number": "ES-2026-00000042"}, "pattern"),  # 16 digits-long: 17 characters
        ({"tax": "10.505", "gross": "60.505"}, "two decimal places"),
    ],
)
def test_an_incoherent_document_is_refused(overrides: dict[str, Any], why: str) -> None:
    with pytest.raises(ValidationError, match=why):
        _issued(**overrides)


def test_an_invoice_debits_the_customer_the_gross_and_credits_revenue_and_tax() -> None:
    entry = ar_document(_issued(), customer="0001000025", rules=RULES)
    assert [(line.role, line.amount, line.debit_credit) for line in entry.lines] == [
        ("customer", Decimal("60.50"), "S"),
        ("revenue", Decimal("-50.00"), "H"),
        ("tax", Decimal("-10.50"), "H"),
    ]
    assert (entry.reference, entry.document_type, entry.assignment) == (
        "ES-2026-0000042",
        "DR",
        "ES-2026-0000042",
    )


def test_a_credit_note_credits_the_customer_and_is_assigned_to_its_invoice() -> None:
    note = ar_document(
        _issued(kind="credit_note", number="ES-2026-0000043", reference_number="ES-2026-0000042"),
        customer="1",
        rules=RULES,
    )
    assert note.customer_amount == Decimal("-60.50")
    assert (note.document_type, note.assignment) == ("DG", "ES-2026-0000042")
    assert sum(line.amount for line in note.lines) == 0


def test_tax_that_does_not_add_up_per_rate_is_refused_not_posted() -> None:
    # Each line's tax rounded alone (7.00 + 3.50 = 10.50) vs a total of 10.51.
    with pytest.raises(SapRefusedError, match="tax per rate"):
        ar_document(_issued(tax="10.51", gross="60.51"), customer="1", rules=RULES)


@given(
    nets=st.lists(st.decimals(min_value=0, max_value=10_000, places=2), min_size=1, max_size=6),
    rates=st.lists(st.sampled_from(["0", "0.07", "0.10", "0.21"]), min_size=6, max_size=6),
)
def test_every_entry_balances(nets: list[Decimal], rates: list[str]) -> None:
    lines = [
        {
            "description": "x",
            "kwh": "1",
            "unit_price": str(n),
            "net": str(n),
            "tax_rate": rate,
            "tax": "0",
        }
        for n, rate in zip(nets, rates, strict=False)
    ]
    by_rate: dict[Decimal, Decimal] = {}
    for line in lines:
        rate = Decimal(line["tax_rate"])
        by_rate[rate] = by_rate.get(rate, Decimal(0)) + Decimal(line["net"])
    tax = sum(
        ((n * r).quantize(Decimal("0.01"), rounding="ROUND_HALF_UP") for r, n in by_rate.items()),
        Decimal(0),
    )
    net = sum(nets, Decimal(0))
    issued = _issued(net=str(net), tax=str(tax), gross=str(net + tax), lines=lines)
    entry = ar_document(issued, customer="1", rules=RULES)
    assert sum(line.amount for line in entry.lines) == 0
    assert entry.customer_amount == net + tax


def test_the_reference_field_holds_sixteen_characters_and_no_more() -> None:
    assert check_reference("AU-2026-0000123") == "AU-2026-0000123"
    assert check_reference("X" * 16) == "X" * 16
    with pytest.raises(SapRefusedError, match="17 characters"):
        check_reference("X" * 17)


def test_the_partner_external_id_is_twenty_safe_characters_derived_from_the_account() -> None:
    first = partner_external_id(ACCOUNT)
    assert re.fullmatch(r"[A-Z2-7]{20}", first)
    assert partner_external_id(ACCOUNT) == first
    others = {partner_external_id(f"acc_{uuid.uuid4().hex}") for _ in range(2000)}
    assert len(others) == 2000
    assert first not in others


def _sent(number: str, gross: str, kind: str = "invoice") -> SentDocument:
    return SentDocument(number, kind, "EUR", Decimal(gross), "exported", "0100000001")


def _held(number: str, amount: str, document: str = "0100000001") -> ArRecord:
    return ArRecord(number, "ES01", "2026", document, "EUR", Decimal(amount))


def test_reconciliation_finds_missing_extra_duplicate_and_mismatched_documents() -> None:
    sent = [
        _sent("ES-2026-0000001", "10.00"),
        _sent("ES-2026-0000002", "5.00", "credit_note"),
        _sent("ES-2026-0000003", "7.00"),
        _sent("ES-2026-0000004", "1.00"),
    ]
    held = [
        _held("ES-2026-0000001", "10.000"),
        _held("ES-2026-0000002", "-5.00"),
        _held("ES-2026-0000003", "7.01"),
        _held("ES-2026-0000001", "10.00", "0100000009"),
        _held("ES-2026-0000099", "3.00", "0100000010"),
    ]
    findings = {(f.kind, f.reference) for f in compare_documents(sent, held)}
    assert findings == {
        ("missing", "ES-2026-0000004"),
        ("extra", "ES-2026-0000001"),  # a duplicate
        ("extra", "ES-2026-0000099"),  # not ours
        ("mismatched", "ES-2026-0000003"),
    }


def test_reconciliation_of_partners_finds_missing_duplicate_and_another_number() -> None:
    sent = [
        SentPartner("acc_a", "A" * 20, "1"),
        SentPartner("acc_b", "B" * 20, "2"),
        SentPartner("acc_c", "C" * 20, "3"),
    ]
    held = {
        "A" * 20: [PartnerRecord("1", "A" * 20, "1"), PartnerRecord("7", "A" * 20, "7")],
        "C" * 20: [PartnerRecord("9", "C" * 20, "9")],
    }
    found = {(f.kind, f.reference) for f in compare_partners(sent, held)}
    assert found == {("extra", "A" * 20), ("missing", "B" * 20), ("mismatched", "C" * 20)}


def test_settings_keep_the_password_secret_and_refuse_what_production_must_not_do(
    tmp_path: Path,
) -> None:
    settings = SapSettings(password="s3cret-pass")
    assert "s3cret-pass" not in repr(settings)
    with pytest.raises(ValidationError, match="https"):
        SapSettings(env="production", password="x")
    with pytest.raises(ValidationError, match="POTR_SAP_PASSWORD"):
        SapSettings(env="production", base_url="https://sap.example")
    loose = tmp_path / "pw"
    loose.write_text("from-file\n")
    loose.chmod(0o644)
    with pytest.raises(ValueError, match="chmod 600"):
        SapSettings(password_file=loose).secret()
    loose.chmod(0o600)
    secret = SapSettings(password_file=loose).secret()
    assert secret is not None
    assert secret.get_secret_value() == "from-file"


def _moved(kind: str, reference: str, amount: str) -> Any:
    from datetime import UTC, datetime

    from cloud.events.payments import PaymentMoved

    return PaymentMoved.model_validate(
        {"kind": kind, "reference": reference, "region": "es", "account_id": ACCOUNT,
         "currency": "EUR", "amount": amount, "at": datetime(2026, 12, 5, 23, tzinfo=UTC),
         "booked_on": "2026-12-05", "provider": "bank", "provider_reference": "tx-1"}
    )  # fmt: skip


def test_a_payment_credits_the_customer_and_a_refund_debits_it_against_the_bank() -> None:
    from cloud.sap.documents import payment_document

    paid = payment_document(_moved("payment", "ES-PAY-000000012", "150.00"),
                            customer="0001000025", rules=RULES)  # fmt: skip
    assert [(line.role, line.amount, line.debit_credit) for line in paid.lines] == [
        ("customer", Decimal("-150.00"), "H"),
        ("bank", Decimal("150.00"), "S"),
    ]
    assert (paid.reference, paid.document_type, paid.assignment) == (
        "ES-PAY-000000012", "DZ", "ES-PAY-000000012",
    )  # fmt: skip
    assert paid.lines[1].gl_account == RULES.bank_account
    assert paid.posting_date == date(2026, 12, 5)
    back = payment_document(_moved("refund", "ES-RFD-000000003", "31.05"),
                            customer="0001000025", rules=RULES)  # fmt: skip
    assert back.customer_amount == Decimal("31.05")


@pytest.mark.parametrize(
    "reference", ["ES-2026-0000012", "ES-PAY-12", "ES-PAY-0000000123", "XX-PAY-000000012"]
)
def test_a_payment_reference_is_region_tag_and_nine_digits(reference: str) -> None:
    with pytest.raises(ValidationError):
        _moved("payment", reference, "1.00")
