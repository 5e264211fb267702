"""The event model: names, routing keys and JSON-safe payloads."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest
from pydantic import ValidationError

from cloud.events.outbox import Event


def _event(**kw: object) -> Event:
    fields: dict[str, object] = {"name": "gateway.birth", "region": "au", "source": "ingest"}
    fields.update(kw)
    return Event.model_validate(fields)


def test_routing_key_is_region_service_event() -> None:
    assert _event().routing_key == "au.ingest.gateway.birth"


def test_event_round_trips_through_bytes() -> None:
    stream = uuid4()
    event = _event(payload={"stream_id": stream, "ts": datetime(2026, 1, 1, tzinfo=UTC)})
    again = Event.from_bytes(event.to_bytes())
    assert again == event
    assert again.payload["stream_id"] == str(stream)


@pytest.mark.parametrize("name", ["birth", "Gateway.birth", "gateway..birth", "gateway.birth."])
def test_event_name_must_be_dotted_lower_snake(name: str) -> None:
    with pytest.raises(ValidationError):
        _event(name=name)


@pytest.mark.parametrize(
    "payload",
    [{"x": float("nan")}, {"x": float("inf")}, {"x": "a\x00b"}, {"x": [1, {"y": object()}]}],
)
def test_payload_must_be_json_postgres_can_hold(payload: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        _event(payload=payload)


def test_occurred_at_must_be_aware() -> None:
    with pytest.raises(ValidationError):
        _event(occurred_at=datetime(2026, 1, 1))
