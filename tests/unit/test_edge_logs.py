"""The agent's JSON log lines."""

from __future__ import annotations

import logging
import sys

import orjson

from edge_agent.logs import JsonFormatter


def _record(msg: str, *args: object, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("edge_agent.poller", logging.WARNING, "x.py", 1, msg, args, None)
    record.__dict__.update(extra)
    return record


def test_a_json_line_carries_level_logger_message_and_gateway() -> None:
    line = JsonFormatter({"gateway_id": "gw-1"}).format(_record("device %s unreachable", "SN1"))
    out = orjson.loads(line)
    assert out["level"] == "warning"
    assert out["logger"] == "edge_agent.poller"
    assert out["msg"] == "device SN1 unreachable"
    assert out["gateway_id"] == "gw-1"
    assert out["ts"].endswith("+00:00")


def test_extra_fields_become_keys_and_exceptions_are_kept() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = _record("poll failed", device="SN7")
        record.exc_info = sys.exc_info()
    out = orjson.loads(JsonFormatter().format(record))
    assert out["device"] == "SN7"
    assert "ValueError: boom" in out["exc"]
    assert "\n" not in JsonFormatter().format(record)
