"""Which notifications a ``workorder.*`` event makes (pure): who is told of what, the
events that tell nobody, and the texts in both languages (written out by hand from the
templates)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cloud.events.outbox import Event
from cloud.events.workorders import WorkOrderChanged, workorder_event_name
from cloud.notify import Category, Severity, builtin_templates, plan_workorder_notices
from cloud.notify.workorders import job_words, previous_technician

AT = datetime(2026, 7, 1, 10, 0, tzinfo=UTC)
ACCOUNT = "acc_" + "a" * 32


def _event(
    status: str, action: str | None, *, created: bool = False, **changes: Any
) -> tuple[Event, WorkOrderChanged]:
    payload: dict[str, Any] = {
        "work_order_id": 1234,
        "region": "es",
        "site_id": 41,
        "account_id": ACCOUNT,
        "type": "inverter_fault",
        "priority": "P2",
        "status": status,
        "from_status": None,
        "action": action,
        "actor": "E-100",
        "at": AT,
        "assignee": "E-7",
    } | changes
    order = WorkOrderChanged.model_validate(payload)
    event = Event(
        name="workorder.created" if created else workorder_event_name(status),
        region="es",
        source="dispatch",
        occurred_at=AT,
        payload=order.model_dump(mode="json"),
    )
    return event, order


def _told(status: str, action: str | None, before: str | None = None, **changes: Any) -> set[str]:
    event, order = _event(status, action, **changes)
    return {
        f"{n.audience}:{n.notification.kind}"
        for n in plan_workorder_notices(event, order, before, AT)
    }


def test_creation_tells_the_customer_a_technician_is_being_arranged() -> None:
    event, order = _event("scheduled", None, created=True, assignee=None)
    (notice,) = plan_workorder_notices(event, order, None, AT)
    assert (notice.audience, notice.account_id) == ("customer", ACCOUNT)
    n = notice.notification
    assert (n.kind, n.category, n.severity) == ("visit_arranged", Category.NOTICE, Severity.INFO)
    assert n.link == "/ui/es/sites/41"
    templates = builtin_templates()
    es = templates.render(n, "es", "UTC")
    assert es.title == "Estamos organizando la visita de un técnico a instalación 41"
    assert es.body.startswith(
        "Estamos organizando la visita de un técnico a instalación 41. Motivo: Avería del inversor."
    )
    en = templates.render(n, "en", "UTC")
    assert en.body.startswith(
        "We are arranging a technician to visit site 41. Reason: Inverter fault."
    )


def test_an_assignment_tells_the_technician_by_employee_number() -> None:
    event, order = _event("assigned", "assign", priority="P1")
    (notice,) = plan_workorder_notices(event, order, None, AT)
    assert (notice.audience, notice.employee_no) == ("assignee", "E-7")
    n = notice.notification
    assert (n.kind, n.link, n.severity) == (
        "job_assigned",
        "/ui/es/workorders/1234",
        Severity.URGENT,
    )
    title = builtin_templates().render(n, "en", "UTC").title
    assert title == "Job 1234 assigned to you: Inverter fault at site 41 (P1)"


def test_a_reassignment_tells_the_new_technician_and_the_one_it_was_taken_from() -> None:
    told = _told("assigned", "reassign", before="E-3")
    assert told == {"assignee:job_assigned", "previous:job_reassigned"}
    assert _told("assigned", "reassign", before=None) == {"assignee:job_assigned"}


@pytest.mark.parametrize(
    ("status", "action", "before", "expected"),
    [
        ("en_route", "start_travel", None, {"customer:technician_on_the_way"}),
        ("resolved", "resolve", None, {"customer:repair_done"}),
        ("verified", "verify", None, {"customer:repair_confirmed"}),
        ("cancelled", "cancel", None, {"assignee:job_cancelled", "customer:visit_cancelled"}),
        (
            "cannot_complete",
            "cannot_complete",
            None,
            {"operators:job_needs_dispatch", "customer:visit_not_completed"},
        ),
        ("on_hold", "hold", None, {"operators:job_needs_dispatch"}),
        ("scheduled", "decline", None, {"operators:job_needs_dispatch"}),
        (
            "scheduled",
            "reopen",
            "E-7",
            {"operators:job_needs_dispatch", "previous:job_reopened", "customer:visit_arranged"},
        ),
        # Internal states and re-announcements tell nobody.
        ("accepted", "accept", None, set()),
        ("on_site", "arrive", None, set()),
        ("closed", "close", None, set()),
        ("scheduled", "schedule", None, set()),
        ("assigned", "sla", None, set()),  # an SLA breach re-announces "assigned"
        ("en_route", "sla", None, set()),
    ],
)
def test_who_each_transition_tells(
    status: str, action: str, before: str | None, expected: set[str]
) -> None:
    assert _told(status, action, before) == expected


def test_no_account_no_customer_and_ids_are_per_event_and_audience() -> None:
    assert _told("en_route", "start_travel", account_id=None) == set()
    event, order = _event("cancelled", "cancel")
    first = [n.notification.id for n in plan_workorder_notices(event, order, None, AT)]
    again = [n.notification.id for n in plan_workorder_notices(event, order, None, AT)]
    assert first == again
    assert len(set(first)) == 2
    other, _ = _event("cancelled", "cancel")  # another event (a new id): new notifications
    assert not set(first) & {
        n.notification.id for n in plan_workorder_notices(other, order, None, AT)
    }


def test_an_operator_reads_why_the_job_needs_a_dispatcher() -> None:
    event, order = _event("on_hold", "hold")
    (notice,) = plan_workorder_notices(event, order, None, AT)
    assert notice.roles == ("operator",)
    es = builtin_templates().render(notice.notification, "es", "UTC")
    assert es.title == "El trabajo 1234 de instalación 41 necesita un despachador (P2)"
    assert es.body == (
        "Orden de trabajo 1234 (P2, Avería del inversor) en instalación 41: Está en espera"
        " de piezas."
    )


def test_the_previous_technician_is_judged_only_by_events_not_older_than_the_memory() -> None:
    _, order = _event("assigned", "reassign")
    assert previous_technician(("E-3", AT - timedelta(hours=1)), order) == "E-3"
    assert previous_technician(("E-3", AT + timedelta(hours=1)), order) is None
    assert previous_technician(None, order) is None


def test_an_unknown_type_reads_as_its_name() -> None:
    assert job_words("solar_tile_fault").en == "Solar tile fault"


def _appointment(name: str, action: str, **changes: Any) -> tuple[Event, WorkOrderChanged]:
    event, order = _event("assigned", action, **changes)
    return event.model_copy(update={"name": name}), order


def test_appointments_tell_the_customer_with_the_jobs_page_and_the_mosie_the_window() -> None:
    # 08:00-10:00 UTC is 10:00-12:00 in Madrid (CEST) on 2 July 2026.
    start, end = AT + timedelta(hours=22), AT + timedelta(hours=24)
    offered = [{"start": start, "end": end, "label": "Thu 2 Jul 2026, 10:00-12:00 CEST"}]
    event, order = _appointment("workorder.appointment_offered", "offer", offered=offered + offered)
    (offer,) = plan_workorder_notices(event, order, None, AT)
    assert (offer.audience, offer.notification.kind) == ("customer", "appointment_offered")
    assert offer.notification.link == "/ui/es/workorders/1234"
    es = builtin_templates().render(offer.notification, "es", "Europe/Madrid")
    assert " ".join(es.body.split()).startswith(
        "Para la visita a instalación 41 (Avería del inversor) podemos ofrecerle 2 franja(s)"
        " de llegada, la primera de 2 jul 2026, 10:00 a 2 jul 2026, 12:00."
    )

    window = {"appointment_start": start, "appointment_end": end}
    event, order = _appointment("workorder.appointment_confirmed", "confirm", **window)
    told = plan_workorder_notices(event, order, None, AT)
    assert {(n.audience, n.notification.kind) for n in told} == {
        ("customer", "appointment_confirmed"),
        ("assignee", "job_appointment"),
    }
    mosie = next(n for n in told if n.audience == "assignee")
    en = builtin_templates().render(mosie.notification, "en", "Europe/Madrid")
    # A title's whitespace is folded (Babel's narrow space before AM too).
    assert en.title == "Job 1234 at site 41: the customer expects you from Jul 2, 2026, 10:00 AM"

    event, order = _appointment("workorder.appointment_reminder", "remind", **window)
    (reminder,) = plan_workorder_notices(event, order, None, AT)
    assert reminder.notification.kind == "appointment_reminder"
    # No window in the payload: nothing to tell.
    event, order = _appointment("workorder.appointment_reminder", "remind")
    assert plan_workorder_notices(event, order, None, AT) == []
