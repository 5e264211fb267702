import json
import math
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.messages import MessageError, Reading, TelemetryBatch, decode, json_schemas
from contracts.metrics import BY_ID, BY_NAME, CATALOG
from contracts.timeutil import to_wire
from contracts.topics import Kind


def _batch(**overrides: object) -> dict[str, object]:
    doc: dict[str, object] = {
        "v": 1,
        "stream_id": "5f135104-f3ca-46b7-bcb0-1972460ec260",  # fixed: it names a test case
        "seq": 1,
        "readings": [
            {"device": "SN123", "ts": "2026-11-26T01:02:03.456Z", "values": {"pv_w": 1234.5}}
        ],
    }
    doc.update(overrides)
    return doc


def test_valid_batch_decodes_and_round_trips() -> None:
    raw = json.dumps(_batch()).encode()
    msg = decode(Kind.TELEMETRY, raw)
    assert isinstance(msg, TelemetryBatch)
    assert msg.readings[0].ts == datetime(2026, 11, 26, 1, 2, 3, 456000, tzinfo=UTC)
    again = decode(Kind.TELEMETRY, msg.to_json())
    assert again == msg
    assert json.loads(msg.to_json())["readings"][0]["ts"] == "2026-11-26T01:02:03.456Z"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{not json", "not JSON"),
        (b"[1,2]", "not a JSON object"),
        (json.dumps(_batch(v=2)).encode(), "unsupported schema version"),
        (json.dumps({k: v for k, v in _batch().items() if k != "seq"}).encode(), "seq"),
        (json.dumps(_batch(seq="one")).encode(), "seq"),
        (json.dumps(_batch(seq=0)).encode(), "seq"),
        (json.dumps(_batch(readings=[])).encode(), "readings"),
        (json.dumps(_batch(extra=1)).encode(), "extra"),
    ],
)
def test_bad_payloads_are_refused_with_a_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(MessageError) as exc:
        decode(Kind.TELEMETRY, payload)
    assert reason in exc.value.reason


def test_nan_and_unknown_metrics_are_refused() -> None:
    doc = _batch()
    doc["readings"] = [
        {"device": "d1", "ts": "2026-01-01T00:00:00.000Z", "values": {"pv_w": "NaN"}}
    ]
    with pytest.raises(MessageError):
        decode(Kind.TELEMETRY, json.dumps(doc).encode())
    with pytest.raises(ValueError, match="unknown metrics"):
        Reading(device="d1", ts=datetime.now(UTC), values={"volts": 1.0})
    with pytest.raises(ValueError, match="finite"):
        Reading(device="d1", ts=datetime.now(UTC), values={"pv_w": math.inf})


def test_naive_timestamps_are_refused() -> None:
    doc = _batch()
    doc["readings"] = [{"device": "d1", "ts": "2026-01-01T00:00:00", "values": {"pv_w": 1}}]
    with pytest.raises(MessageError, match="timezone"):
        decode(Kind.TELEMETRY, json.dumps(doc).encode())


_NOW = "2026-11-26T01:02:03.456Z"
_SID = "0b6f1f4e-8a59-4f43-9d1b-6f1d3a0c2e11"


@pytest.mark.parametrize(
    ("kind", "doc", "where"),
    [
        # Each fits the old contract but not PostgreSQL: int4 overflow, NUL in text/jsonb.
        (Kind.CONFIG_STATE, {"seq": 1, "version": 2**40}, "version"),
        (Kind.EVENT, {"seq": 1, "event": "x", "detail": {"why": "a\u0000b"}}, "detail"),
        (Kind.EVENT, {"seq": 1, "event": "x", "detail": {"k": [{"\u0000": 1}]}}, "detail"),
        (Kind.EVENT, {"seq": 1, "event": "a\u0000"}, "event"),
        (
            Kind.CMD_ACK,
            {"seq": 1, "id": _SID, "status": "done", "detail": "\u0000"},
            "detail",
        ),
        (Kind.CONFIG_STATE, {"seq": 1, "version": 1, "drift": ["x\u0000"]}, "drift"),
        (Kind.CONFIG_STATE, {"seq": 1, "version": 1, "points": {"a\u0000": {}}}, "points"),
        (Kind.TELEMETRY, {"seq": 2**63, "readings": []}, "seq"),
    ],
)
def test_what_postgresql_cannot_store_is_refused(
    kind: Kind, doc: dict[str, object], where: str
) -> None:
    raw = {"v": 1, "stream_id": _SID, "ts": _NOW} | doc
    if kind is Kind.TELEMETRY:
        del raw["ts"]
    with pytest.raises(MessageError, match=where):
        decode(kind, json.dumps(raw).encode())


def test_the_largest_storable_values_and_other_control_characters_pass() -> None:
    state = {"v": 1, "stream_id": _SID, "seq": 2**63 - 1, "ts": _NOW, "version": 2**31 - 1}
    assert decode(Kind.CONFIG_STATE, json.dumps(state).encode())
    event = {"v": 1, "stream_id": _SID, "seq": 1, "ts": _NOW, "event": "x"}
    event["detail"] = {"text": "tab\tline\nü", "n": 2**70, "list": [None, True]}
    assert decode(Kind.EVENT, json.dumps(event).encode())


def test_every_kind_has_a_json_schema() -> None:
    schemas = json_schemas()
    assert set(schemas) == {k.value for k in Kind}
    assert schemas["telemetry"]["properties"]["v"]["const"] == 1


def test_catalog_names_carry_their_unit_and_ids_are_unique() -> None:
    assert len(BY_ID) == len(BY_NAME) == len(CATALOG)
    suffix = {
        "W": "_w",
        "VA": "_va",
        "var": "_var",
        "V": "_v",
        "A": "_a",
        "Hz": "_hz",
        "Wh": "_wh",
        "%": "_pct",
        "°C": "_c",
    }
    for m in CATALOG:
        if m.unit in suffix:
            assert m.name.endswith(suffix[m.unit]), m.name


@given(
    st.datetimes(
        timezones=st.just(UTC), min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)
    )
)
def test_wire_time_keeps_milliseconds(ts: datetime) -> None:
    text = to_wire(ts)
    assert text.endswith("Z")
    assert len(text) == 24
    back = datetime.fromisoformat(text)
    assert back == ts.replace(microsecond=ts.microsecond // 1000 * 1000)
