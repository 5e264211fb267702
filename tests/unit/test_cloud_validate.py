"""Ingest validation: every kind of bad input gets a dead-letter reason."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from cloud.ingest.validate import Accepted, Bounds, Rejected, salvage_stream_seq, validate
from contracts.messages import TelemetryBatch
from contracts.timeutil import to_wire

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
TOPIC = "potr/v1/au/gw-one/telemetry"
STREAM = uuid.UUID("6f1c2f7e-9a43-4a8e-9f1e-3f0cb1a1d2e4")


def _telemetry(**over: object) -> dict[str, object]:
    doc: dict[str, object] = {
        "v": 1,
        "stream_id": str(STREAM),
        "seq": 7,
        "readings": [{"device": "SN1", "ts": to_wire(NOW), "values": {"pv_w": 1200.0}}],
    }
    doc.update(over)
    return doc


def _check(topic: str, payload: bytes) -> Accepted | Rejected:
    return validate(topic, payload, now=NOW, bounds=Bounds(future_skew_s=300))


def test_valid_telemetry_is_accepted_with_its_readings() -> None:
    verdict = _check(TOPIC, orjson.dumps(_telemetry()))
    assert isinstance(verdict, Accepted)
    assert isinstance(verdict.message, TelemetryBatch)
    assert len(verdict.readings) == 1
    assert verdict.quarantine_reason is None


@pytest.mark.parametrize(
    ("payload", "reason_part"),
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (orjson.dumps(_telemetry(v=2)), "unsupported schema version"),
        (orjson.dumps({k: v for k, v in _telemetry().items() if k != "seq"}), "seq"),
        (orjson.dumps(_telemetry(seq="seven")), "seq"),
        (
            b'{"v": 1, "stream_id": "x", "seq": 1, "readings": [{"device": "a", '
            b'"ts": "2025-03-01T12:00:00.000Z", "values": {"pv_w": NaN}}]}',
            "not JSON",
        ),
        (orjson.dumps(_telemetry()).replace(b"1200.0", b"1e400"), "not JSON"),
        (
            orjson.dumps(
                _telemetry(
                    readings=[{"device": "SN1", "ts": to_wire(NOW), "values": {"bogus_w": 1.0}}]
                )
            ),
            "unknown metrics",
        ),
        (orjson.dumps(_telemetry(readings=[])), "readings"),
    ],
    ids=[
        "non-json",
        "not-object",
        "unknown-v",
        "missing-field",
        "wrong-type",
        "nan",
        "infinity",
        "unknown-metric",
        "empty-batch",
    ],
)
def test_bad_payloads_are_rejected_with_a_reason(payload: bytes, reason_part: str) -> None:
    verdict = _check(TOPIC, payload)
    assert isinstance(verdict, Rejected)
    assert reason_part in verdict.reason


@pytest.mark.parametrize(
    ("topic", "reason_part"),
    [
        ("potr/v1/xx/gw-one/telemetry", "unknown region"),
        ("potr/v1/au/gw-one/bogus", "unknown kind"),
        ("potr/v1/au/GW/telemetry", "gateway id"),
        ("other/v1/au/gw-one/telemetry", "is not potr/v1"),
        ("potr/v1/au/gw-one/stored", "not sent by gateways"),
    ],
)
def test_topics_outside_the_contract_are_rejected(topic: str, reason_part: str) -> None:
    verdict = _check(topic, orjson.dumps(_telemetry()))
    assert isinstance(verdict, Rejected)
    assert reason_part in verdict.reason


def test_readings_far_in_the_future_are_quarantined_and_the_rest_kept() -> None:
    future = to_wire(NOW + timedelta(seconds=301))
    doc = _telemetry(
        readings=[
            {"device": "SN1", "ts": to_wire(NOW), "values": {"pv_w": 1.0}},
            {"device": "SN1", "ts": future, "values": {"pv_w": 2.0}},
        ]
    )
    verdict = _check(TOPIC, orjson.dumps(doc))
    assert isinstance(verdict, Accepted)
    assert [r.values["pv_w"] for r in verdict.readings] == [1.0]
    assert verdict.quarantine_reason is not None
    assert "1 of 2 readings more than 300 s in the future" in verdict.quarantine_reason


def test_a_reading_within_the_skew_is_not_quarantined() -> None:
    doc = _telemetry(
        readings=[
            {"device": "SN1", "ts": to_wire(NOW + timedelta(seconds=299)), "values": {"pv_w": 1.0}}
        ]
    )
    verdict = _check(TOPIC, orjson.dumps(doc))
    assert isinstance(verdict, Accepted)
    assert verdict.quarantine_reason is None


def _birth(gateway_id: str, region: str) -> bytes:
    return orjson.dumps(
        {
            "v": 1,
            "gateway_id": gateway_id,
            "region": region,
            "agent_version": "0.1",
            "stream_id": str(STREAM),
            "boot_id": "b1",
            "poll_interval_s": 5,
            "publish_interval_s": 60,
            "devices": [],
            "ts": to_wire(NOW),
        }
    )


def test_a_birth_naming_another_gateway_is_rejected() -> None:
    verdict = _check("potr/v1/au/gw-one/birth", _birth("gw-two", "au"))
    assert isinstance(verdict, Rejected)
    assert "names gateway 'gw-two'" in verdict.reason


def test_a_birth_naming_another_region_is_rejected() -> None:
    verdict = _check("potr/v1/au/gw-one/birth", _birth("gw-one", "us"))
    assert isinstance(verdict, Rejected)
    assert "region 'us'" in verdict.reason


def test_a_rejected_buffered_message_keeps_its_stream_seq() -> None:
    verdict = _check(TOPIC, orjson.dumps(_telemetry(readings="oops")))
    assert isinstance(verdict, Rejected)
    assert verdict.stream_seq == (STREAM, 7)


@pytest.mark.parametrize(
    "payload",
    [
        b"garbage",
        b"[]",
        orjson.dumps({"seq": 3}),
        orjson.dumps({"stream_id": "no", "seq": 3}),
        orjson.dumps({"stream_id": str(STREAM), "seq": 0}),
        orjson.dumps({"stream_id": str(STREAM), "seq": True}),
    ],
)
def test_no_stream_seq_is_salvaged_from_malformed_ids(payload: bytes) -> None:
    assert salvage_stream_seq(payload) is None
