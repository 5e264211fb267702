"""Billing's documents as notifications (:mod:`cloud.notify.invoices`, pure): one to the
account's users per event, its id the event's, linked to the document's page; amounts
written as money in the reader's language; every kind renders in both languages."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from cloud.events.invoices import InvoiceOverdue, invoice_overdue_event
from cloud.notify.invoices import money_words, plan_invoice_notices
from cloud.notify.mail import builtin_templates

AT = datetime(2026, 11, 23, 17, tzinfo=UTC)
ACCOUNT = "acc_" + "5" * 32


def test_an_overdue_reminder_names_the_document_the_amount_owed_and_the_due_date() -> None:
    overdue = InvoiceOverdue(number="AU-2026-0000123", kind="debit_note", region="au",
                             account_id=ACCOUNT, currency="AUD", due_date=date(2026, 11, 2),
                             level=21, outstanding=Decimal("12.50"))  # fmt: skip
    event = invoice_overdue_event(overdue)
    [notice] = plan_invoice_notices(event, overdue, AT)
    n = notice.notification
    assert (notice.account_id, n.kind, n.link) == (
        ACCOUNT,
        "bill_overdue",
        "/ui/au/bills/AU-2026-0000123",
    )
    assert plan_invoice_notices(event, overdue, AT)[0].notification.id == n.id
    templates = builtin_templates()
    en = templates.render(n, "en", "Australia/Sydney")
    es = templates.render(n, "es", "Australia/Sydney")
    assert en.title == "Reminder: debit note AU-2026-0000123 is overdue, A$12.50 still owed"
    assert "was due on Nov 2, 2026, 21 days ago" in " ".join(en.body.split())
    assert es.title.startswith("Recordatorio: su nota de cargo AU-2026-0000123 está vencida")


def test_money_keeps_its_cents_in_both_languages() -> None:
    words = money_words(Decimal("10.50"), "EUR")
    assert (words.en, words.in_language("es")) == ("€10.50", "10,50\xa0€")
