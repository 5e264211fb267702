"""``part.reorder_needed`` as a notification (:mod:`cloud.notify.parts`, pure): one to the
region's admins and operators, linked to the parts page, its id the event's, so a
redelivery tells nobody twice; the message renders in both languages."""

from __future__ import annotations

from datetime import UTC, datetime

from cloud.events.outbox import Event
from cloud.events.parts import PART_REORDER_NEEDED, PartReorderNeeded
from cloud.notify.mail import builtin_templates
from cloud.notify.parts import plan_part_notices
from contracts.topics import Region

AT = datetime(2026, 7, 1, 10, 0, tzinfo=UTC)


def _event(name: str = PART_REORDER_NEEDED, quantity: int = 2) -> tuple[Event, PartReorderNeeded]:
    part = PartReorderNeeded(
        region="es", part_no="ES-FUSE", description="Fuse\n10 A", quantity=quantity,
        reorder_level=2, reorder_quantity=20, part_use_id=7, work_order_id=9, at=AT,
    )  # fmt: skip
    event = Event(
        name=name,
        region=Region.ES,
        source="dispatch",
        occurred_at=AT,
        payload=part.model_dump(mode="json"),
    )
    return event, part


def test_a_reorder_tells_the_regions_admins_and_operators_once_per_event() -> None:
    event, part = _event()
    [notice] = plan_part_notices(event, part, AT)
    assert notice.roles == ("admin", "operator")
    n = notice.notification
    assert (n.kind, n.region, n.link) == ("part_reorder_needed", Region.ES, "/ui/es/parts")
    assert n.params["description"] == "Fuse 10 A"  # no control characters in a subject
    again = plan_part_notices(event, part, AT)[0].notification
    assert again.id == n.id


def test_another_parts_event_tells_nobody() -> None:
    event, part = _event(name="part.restocked")
    assert plan_part_notices(event, part, AT) == []


def test_the_notice_has_the_same_fields_in_english_and_spanish() -> None:
    fields = {"part_no", "description", "quantity", "reorder_level", "reorder_quantity"}
    assert builtin_templates().fields("part_reorder_needed") == fields
