"""What ingest announces of a gateway event: a name by its catalogue type, a payload
consumers parse with the published model."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import orjson

from cloud.events.outbox import Event
from cloud.events.types import GatewayEventReported
from cloud.ingest.announce import TelemetryStored, gateway_event, telemetry_received
from contracts.events import CATALOGUE, EventType, StateTransition
from contracts.messages import EventMsg

T0 = datetime(2026, 1, 10, 2, 0, tzinfo=UTC)


def _msg(name: str, detail: dict[str, object]) -> EventMsg:
    return EventMsg(
        stream_id=uuid.uuid4(),
        seq=4,
        ts=T0,
        event=name,
        severity="critical",
        device="ISO-1",
        detail=detail,
    )


def test_a_catalogued_event_is_announced_under_its_type_and_parses_back() -> None:
    detail = {
        "metric": "isolator_state_code",
        "value": 2.0,
        "previous": 1.0,
        "ts": "2026-01-10T02:00:00.000Z",
    }
    event = gateway_event("au", "gw-1", _msg("isolator_tripped", detail), 42)
    assert event.name == "gateway.isolator_tripped"
    # Through JSON, as a consumer receives it from the bus.
    received = Event.model_validate_json(orjson.dumps(event.model_dump(mode="json")))
    payload = GatewayEventReported.model_validate(received.payload)
    assert (payload.gateway_id, payload.event, payload.device_id, payload.seq) == (
        "gw-1",
        "isolator_tripped",
        42,
        4,
    )
    model = CATALOGUE[EventType(payload.event)].detail
    assert model.model_validate(payload.detail) == StateTransition(
        metric="isolator_state_code", value=2.0, previous=1.0, ts=T0
    )


def test_an_event_outside_the_catalogue_is_still_announced_name_safe() -> None:
    assert gateway_event("au", "gw-1", _msg("Isolator-Open!", {}), None).name == (
        "gateway.isolator_open"
    )


def test_a_batchs_announced_values_are_gauge_samples_in_time_order_and_newest_counters() -> None:
    t = [datetime(2026, 6, 1, 2, 0, s, tzinfo=UTC) for s in range(6)]

    def stored(seq: int, *samples: tuple[str, str, datetime, float]) -> TelemetryStored:
        return TelemetryStored(
            "au", "gw-1", uuid.UUID(int=1), seq, 1, 1, frozenset({1}), None, None, samples
        )

    first = stored(1, ("M", "grid_hz", t[3], 50.1), ("I", "pv_wh", t[4], 20.0))
    second = stored(2, ("M", "grid_hz", t[1], 49.9), ("I", "pv_wh", t[2], 10.0))
    third = stored(3, ("I", "pv_wh", t[5], 30.0), ("B", "battery_soh_pct", t[0], 91.0))
    [event] = telemetry_received([first, second, third], t[5])
    assert event.payload["samples"] == [
        ["B", "battery_soh_pct", "2026-06-01T02:00:00Z", 91.0],
        ["M", "grid_hz", "2026-06-01T02:00:01Z", 49.9],
        ["M", "grid_hz", "2026-06-01T02:00:03Z", 50.1],
        ["I", "pv_wh", "2026-06-01T02:00:05Z", 30.0],  # a counter: only the newest
    ]
