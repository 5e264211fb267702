"""Messages in the reader's language (cloud.notify.mail): the shipped templates, rendering
with Babel's formats in the reader's zone, refusals, the e-mail's headers; and the
settings' production refusals.

Expected texts are written out by hand from the templates and CLDR's formats (Spanish
"5 abr 2025, 14:30"; English "Apr 5, 2025, 11:30 PM" with a narrow no-break space).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from email import message_from_bytes
from email import policy as email_policy
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from cloud.notify import (
    Category,
    LocalText,
    Notification,
    NotifySettings,
    Severity,
    TemplateError,
    Templates,
    builtin_templates,
)
from cloud.notify.attachments import AttachmentUnavailable, MailAttachment, checked
from cloud.notify.mail import email_message
from contracts.topics import Region

RAISED = datetime(2025, 4, 5, 12, 30, tzinfo=UTC)
SHIPPED = Path(__file__).resolve().parents[2] / "cloud" / "notify" / "templates"


def _notification(kind: str = "alarm_raised", **params: object) -> Notification:
    defaults: dict[str, object] = {"site": "Calle Mayor 1", "alarm": "Fallo de red"}
    return Notification.model_validate(
        {
            "id": uuid.uuid4(),
            "kind": kind,
            "category": Category.ALARM,
            "severity": Severity.WARNING,
            "region": Region.ES,
            "link": "/es/sites/41",
            "params": (defaults | {"raised_at": RAISED} | params)
            if kind == "alarm_raised"
            else params,
            "created_at": RAISED,
        }
    )


def test_every_kind_exists_in_english_and_spanish_with_the_same_fields() -> None:
    templates = builtin_templates()
    assert templates.kinds == {
        "isolator_open",
        "alarm_raised",
        "alarm_cleared",
        "gateway_offline",
        "plan_change",
        "notice",
        "offer",
        # work orders (cloud.notify.workorders)
        "visit_arranged",
        "technician_on_the_way",
        "visit_not_completed",
        "repair_done",
        "repair_confirmed",
        "visit_cancelled",
        "job_assigned",
        "job_reassigned",
        "job_cancelled",
        "job_reopened",
        "job_needs_dispatch",
        "appointment_offered",
        "appointment_confirmed",
        "appointment_reminder",
        "job_appointment",
        # the parts stock (cloud.notify.parts)
        "part_reorder_needed",
        # billing's documents (cloud.notify.invoices)
        "bill_issued",
        "bill_credited",
        "bill_overdue",
        # the monthly reports pack (cloud.reports.packs via the composition root)
        "reports_monthly_pack",
        "reports_monthly_pack_region",
        # support's resolved tickets (cloud.notify.tickets)
        "ticket_resolved",
        "complaint_resolved",
    }
    assert templates.fields("appointment_offered") == {
        "site",
        "job",
        "windows",
        "first_start",
        "first_end",
    }
    assert templates.fields("appointment_reminder") == {"site", "job", "window_start", "window_end"}
    assert templates.fields("visit_arranged") == {"site", "job"}
    assert templates.fields("job_needs_dispatch") == {
        "work_order",
        "priority",
        "job",
        "site",
        "reason",
    }
    assert templates.fields("isolator_open") == {"site", "detected_at"}
    assert templates.fields("offer") == {"title", "text"}


def test_spanish_reads_madrid_time_in_spanish_formats() -> None:
    rendered = builtin_templates().render(_notification(), "es", "Europe/Madrid")
    assert rendered.title == "Alarma en Calle Mayor 1: Fallo de red"
    # 12:30Z is 14:30 CEST
    assert (
        rendered.body == "Se activó la alarma «Fallo de red» en Calle Mayor 1 el 5 abr 2025, 14:30."
    )


def test_english_reads_sydney_time_in_english_formats() -> None:
    rendered = builtin_templates().render(_notification(), "en", "Australia/Sydney")
    # 12:30Z is 23:30 AEDT (Sydney leaves DST on 6 April 2025)
    assert rendered.body == (
        'The alarm "Fallo de red" was raised at Calle Mayor 1 on Apr 5, 2025, 11:30\u202fPM.'
    )


def test_dates_and_numbers_follow_the_language() -> None:
    plan = _notification(
        "plan_change",
        plan="Solar Plus",
        effective_on=date(2025, 7, 1),
        details=LocalText(en="Rate {x} stays", es="La tarifa se mantiene"),
    )
    templates = builtin_templates()
    assert templates.render(plan, "es", "UTC").title == "Su plan cambia el 1 jul 2025"
    assert templates.render(plan, "en", "UTC").title == "Your plan changes on Jul 1, 2025"
    # a parameter's own braces are text, never a field
    assert templates.render(plan, "en", "UTC").body.endswith("Rate {x} stays")
    numbers = _notification("alarm_raised", alarm=Decimal("1234.5"))
    assert "«1.234,5»" in templates.render(numbers, "es", "UTC").body
    assert '"1,234.5"' in templates.render(numbers, "en", "UTC").body


def test_free_text_falls_back_to_english_and_titles_stay_on_one_line() -> None:
    offer = _notification(
        "offer",
        title=LocalText(en="Battery offer\nBcc: everyone@example.com"),
        text=LocalText(en="Add a battery.", es="Añada una batería."),
    )
    rendered = builtin_templates().render(offer, "es", "UTC")
    assert rendered.title == "Battery offer Bcc: everyone@example.com"
    assert rendered.body == "Añada una batería."


@pytest.mark.parametrize(
    ("kind", "params", "why"),
    [
        ("no_such_kind", {}, "no template"),
        ("offer", {"title": "x"}, r"missing: \['text'\]"),
        ("offer", {"title": "x", "text": "y", "link": "z"}, "filled in by the service"),
    ],
)
def test_a_notification_its_template_cannot_render_is_refused(
    kind: str, params: dict[str, object], why: str
) -> None:
    with pytest.raises(TemplateError, match=why):
        builtin_templates().check(_notification(kind, **params))


def test_the_mail_body_has_the_link_and_the_footer_in_the_language() -> None:
    templates = builtin_templates()
    rendered = templates.render(_notification(), "es", "Europe/Madrid")
    text = templates.email_text(
        rendered,
        link="https://portal.example/es/sites/41",
        settings_url="https://portal.example/settings/notifications",
        time_zone="Europe/Madrid",
    )
    assert text == (
        "Se activó la alarma «Fallo de red» en Calle Mayor 1 el 5 abr 2025, 14:30.\n\n"
        "Detalles: https://portal.example/es/sites/41\n\n"
        "-- \n"
        "Las horas se muestran en Europe/Madrid.\n"
        "Recibe este mensaje según sus preferencias de notificación:"
        " https://portal.example/settings/notifications\n"
        "Power on the Roof\n"
    )


def test_the_mail_carries_its_delivery_id_and_says_it_is_automatic() -> None:
    message = email_message(
        sender="PoTR <no-reply@potr.example>",
        to="ana@example.es",
        subject="Alarma\nBcc: x@example.com",
        text="Hola",
        language="es",
        message_id="<0f7c@notify.potr>",
        sent_at=RAISED,
        settings_url="https://portal.example/settings/notifications",
    )
    assert message["Subject"] == "Alarma Bcc: x@example.com"
    assert message["Bcc"] is None
    assert message["Message-ID"] == "<0f7c@notify.potr>"
    assert message["Date"] == "Sat, 05 Apr 2025 12:30:00 +0000"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Content-Language"] == "es"
    assert message["List-Unsubscribe"] == "<https://portal.example/settings/notifications>"


def _copy_templates(tmp_path: Path) -> Path:
    for name in ("en.yaml", "es.yaml"):
        (tmp_path / name).write_text((SHIPPED / name).read_text(encoding="utf-8"), encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize(
    ("old", "new", "why"),
    [
        (
            'subject: "{title}"\n    body: |\n      {text}\n  offer:',
            'subject: "{title}"\n    body: |\n      {text}\n  offers:',
            "kinds differ",
        ),
        ("en {site} el {raised_at}.", "en {site}.", "fields differ"),
        ("Alarma en {site}: {alarm}", "Alarma en {site.__class__}: {alarm}", "plain name"),
        ("Alarma en {site}: {alarm}", "Alarma en {site!r}: {alarm}", "plain name"),
        ("Alarma en {site}: {alarm}", "Alarma en {site:>99}: {alarm}", "plain name"),
        ("Detalles: {link}", "Detalles: {site}", "only"),
        ("Alarma en {site}: {alarm}", "Alarma en {site: {alarm}", "es/alarm_raised"),
    ],
)
def test_a_broken_template_set_is_refused(tmp_path: Path, old: str, new: str, why: str) -> None:
    directory = _copy_templates(tmp_path)
    es = directory / "es.yaml"
    text = es.read_text(encoding="utf-8")
    assert old in text
    es.write_text(text.replace(old, new), encoding="utf-8")
    with pytest.raises(TemplateError, match=why):
        Templates.load(directory)


def test_production_refuses_what_only_suits_a_laptop() -> None:
    production: dict[str, Any] = {
        "env": "production",
        "smtp_starttls": True,
        "smtp_host": "smtp.example",
    }
    assert NotifySettings(**production).notify_webhook_allow_http is False
    cases: list[tuple[dict[str, Any], str]] = [
        ({"smtp_starttls": False}, "STARTTLS"),
        ({"notify_webhook_allow_http": True}, "ALLOW_HTTP"),
        ({"notify_webhook_allowed_networks": "10.0.0.0/8,127.0.0.1"}, "loopback or link-local"),
        ({"notify_webhook_allowed_networks": "169.254.0.0/16"}, "loopback or link-local"),
    ]
    for change, why in cases:
        with pytest.raises(ValidationError, match=why):
            NotifySettings(**(production | change))
    assert NotifySettings(**(production | {"notify_webhook_allowed_networks": "10.0.0.0/8"}))


def test_a_lease_shorter_than_an_attempt_is_refused() -> None:
    with pytest.raises(ValidationError, match="LEASE"):
        NotifySettings(notify_attempt_timeout_s=60, notify_lease_s=60)
    with pytest.raises(ValidationError):
        NotifySettings(notify_webhook_allowed_networks="not-a-network")


def test_a_mail_carries_its_attachments_after_the_text() -> None:
    pdf = MailAttachment("potr-reports-2026-11-au.pdf", "application/pdf", b"%PDF-1.4 x")
    message = email_message(
        sender="potr@example.com", to="boss@example.com", subject="Reports", text="Hello",
        language="en", message_id="<1@notify.potr>", sent_at=datetime(2026, 12, 1, tzinfo=UTC),
        settings_url="", attachments=[checked(pdf)],
    )  # fmt: skip
    read = message_from_bytes(message.as_bytes(), policy=email_policy.default)
    assert read.get_content_type() == "multipart/mixed"
    body = read.get_body(("plain",))
    assert body is not None
    assert body.get_content().strip() == "Hello"
    [file] = list(read.iter_attachments())
    assert (file.get_filename(), file.get_content_type()) == (pdf.filename, "application/pdf")
    assert file.get_content() == pdf.content
    for bad in (
        MailAttachment("../etc/passwd", "application/pdf", b"x"),
        MailAttachment("a.pdf", "application/pdf\r\nX-Evil: 1", b"x"),
        MailAttachment("a.pdf", "application/pdf", b""),
    ):
        with pytest.raises(AttachmentUnavailable):
            checked(bad)
