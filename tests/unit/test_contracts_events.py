"""The gateway event catalogue: names on the wire, one detail model each, tolerant parsing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from contracts.events import (
    CATALOGUE,
    ClockJumped,
    DeviceDown,
    EventType,
    GatewayEvent,
    device_status,
    event_type,
    parse_detail,
)
from contracts.messages import EventMsg, MessageError

T0 = datetime(2026, 1, 10, 2, 0, tzinfo=UTC)


def _msg(event: str, **detail: object) -> EventMsg:
    return EventMsg(stream_id=uuid.uuid4(), seq=5, ts=T0, event=event, detail=detail)


def test_the_wire_names_are_the_ones_agents_in_the_field_send() -> None:
    assert {t.value for t in EventType} == {
        "device_reachable",
        "device_asleep",
        "device_unreachable",
        "device_faulty",
        "device_models_changed",
        "isolator_opened",
        "isolator_closed",
        "isolator_tripped",
        "data_dropped",
        "buffer_corrupt",
        "clock_jump",
        "config_drift",
    }
    assert set(CATALOGUE) == set(EventType)


def test_an_event_is_built_from_its_model_and_keeps_the_old_wire_form() -> None:
    down = DeviceDown(endpoint="inv", unit_id=1, error="timeout")
    event = GatewayEvent(type=EventType.DEVICE_UNREACHABLE, device="SN-1", detail=down)
    wire = event.message(uuid.uuid4(), 3, T0).model_dump(mode="json")
    assert (wire["event"], wire["severity"], wire["device"]) == (
        "device_unreachable",
        "warning",
        "SN-1",
    )
    assert wire["detail"] == {"endpoint": "inv", "unit_id": 1, "error": "timeout"}


def test_an_event_refuses_another_events_detail() -> None:
    down = DeviceDown(endpoint="inv", unit_id=1)
    with pytest.raises(ValueError, match="clock_jump carries ClockJumped, not DeviceDown"):
        GatewayEvent(type=EventType.CLOCK_JUMP, detail=down)


def test_severity_defaults_to_the_catalogues_and_can_be_raised() -> None:
    jump = ClockJumped(delta_s=-3.0, from_=T0, to=T0)
    assert GatewayEvent(type=EventType.CLOCK_JUMP, detail=jump).effective_severity == "warning"
    louder = GatewayEvent(type=EventType.CLOCK_JUMP, detail=jump, severity="critical")
    assert louder.message(uuid.uuid4(), 1, T0).severity == "critical"


def test_a_clock_jump_keeps_from_and_to_on_the_wire() -> None:
    jump = ClockJumped(delta_s=-3.0, from_=T0, to=T0)
    assert jump.wire() == {
        "delta_s": -3.0,
        "from": "2026-01-10T02:00:00.000Z",
        "to": "2026-01-10T02:00:00.000Z",
    }


def test_details_ignore_fields_they_do_not_know() -> None:
    parsed = parse_detail(
        _msg("device_faulty", endpoint="inv", unit_id=1, error="x", firmware_hint="2.1")
    )
    assert parsed == DeviceDown(endpoint="inv", unit_id=1, error="x")


def test_an_unknown_event_has_no_type_and_no_detail_model() -> None:
    assert event_type("isolator_open") is None
    assert parse_detail(_msg("isolator_open", anything=1)) is None


def test_a_known_event_with_a_detail_that_does_not_fit_is_refused_with_a_reason() -> None:
    with pytest.raises(MessageError, match="invalid device_faulty detail: unit_id"):
        parse_detail(_msg("device_faulty", endpoint="inv", unit_id=900))


def test_device_events_say_the_device_status() -> None:
    assert [
        device_status(n)
        for n in (
            "device_reachable",
            "device_asleep",
            "device_unreachable",
            "device_faulty",
            "data_dropped",
            "x",
        )
    ] == ["online", "asleep", "unreachable", "faulty", None, None]
