"""The outcome letter of a resolved support ticket (cloud.notify.tickets): a complaint's
carries the outcome, the reasons and the customer's right to go further — their state's
ombudsman in Australia — in the reader's language; other tickets the outcome only."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from cloud.events.outbox import Event
from cloud.events.support import TicketResolved
from cloud.notify import builtin_templates
from cloud.notify.tickets import plan_ticket_notice
from contracts.topics import Region

AT = datetime(2026, 12, 8, 1, tzinfo=UTC)


def _event(
    kind: str, jurisdiction: str, region: Region = Region.AU
) -> tuple[Event, TicketResolved]:
    payload = TicketResolved(
        ticket_id=41, region=region, account_id="acc_" + "0" * 32, at=AT, kind=kind,
        subject="Bill too high", language="en", jurisdiction=jurisdiction,
        outcome="We refunded 12.50", reasons="The meter was misread",
    )  # fmt: skip
    event = Event(
        id=uuid.uuid4(), name="ticket.resolved", region=region, source="support",
        occurred_at=AT, payload=payload.model_dump(mode="json"),
    )  # fmt: skip
    return event, payload


def test_a_victorian_complaint_names_ewov_in_english_and_spanish() -> None:
    notice = plan_ticket_notice(*_event("complaint", "AU-VIC"), AT)
    assert notice is not None
    assert notice.notification.kind == "complaint_resolved"
    assert notice.notification.link == "/ui/au/support/tickets/41"
    en = builtin_templates().render(notice.notification, "en", "Australia/Melbourne")
    assert "Outcome: We refunded 12.50" in en.body
    assert "Reasons: The meter was misread" in en.body
    assert "Energy and Water Ombudsman Victoria (EWOV)" in en.body
    es = builtin_templates().render(notice.notification, "es", "Australia/Melbourne")
    assert "Motivos: The meter was misread" in es.body
    assert "Defensor de Energía y Agua de Victoria (EWOV)" in es.body


def test_the_act_sends_complaints_to_acat_and_spain_to_consumer_arbitration() -> None:
    act = plan_ticket_notice(*_event("complaint", "AU-ACT"), AT)
    assert act is not None
    assert "(ACAT)" in builtin_templates().render(act.notification, "en", "UTC").body
    spain = plan_ticket_notice(*_event("complaint", "ES", Region.ES), AT)
    assert spain is not None
    assert (
        "Junta Arbitral de Consumo"
        in builtin_templates().render(spain.notification, "es", "UTC").body
    )


def test_a_question_gets_the_outcome_without_rights() -> None:
    notice = plan_ticket_notice(*_event("question", "AU-NSW"), AT)
    assert notice is not None
    assert notice.notification.kind == "ticket_resolved"
    body = builtin_templates().render(notice.notification, "en", "UTC").body
    assert "Outcome: We refunded 12.50" in body
    assert "Ombudsman" not in body
