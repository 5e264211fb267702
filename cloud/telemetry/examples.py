"""OpenAPI examples of the telemetry routes' answers (data, shown in the document)."""

from __future__ import annotations

from typing import Any

__all__ = ["FLEET_LATEST", "RAW", "ROLLUP", "SITE_LATEST", "SITE_READINGS", "response"]

_POINT = {"ts": "2026-03-01T02:00:00Z", "value": 2350.0, "quality": "good"}
_BUCKET = {
    "bucket": "2026-03-01T02:00:00Z",
    "avg": 2212.5,
    "min": 1980.0,
    "max": 2410.0,
    "last": 2350.0,
    "last_ts": "2026-03-01T02:55:00Z",
    "count": 12,
}

RAW: dict[str, Any] = {
    "summary": "raw samples, one page of two with more to follow",
    "value": {
        "device_id": 17,
        "metric": "pv_w",
        "unit": "W",
        "from": "2026-03-01T00:00:00Z",
        "to": "2026-03-02T00:00:00Z",
        "truncated": True,
        "next_cursor": "cmF3OjE3NzIzMzA0MDAwMDAwMDA",
        "resolution": "raw",
        "points": [
            {"ts": "2026-03-01T01:55:00Z", "value": 2290.0, "quality": "good"},
            _POINT,
        ],
    },
}

ROLLUP: dict[str, Any] = {
    "summary": "hourly buckets (resolution=1h, or auto with points <= 24 over a day)",
    "value": {
        "device_id": 17,
        "metric": "pv_w",
        "unit": "W",
        "from": "2026-03-01T00:00:00Z",
        "to": "2026-03-02T00:00:00Z",
        "truncated": False,
        "next_cursor": None,
        "resolution": "1h",
        "buckets": [_BUCKET],
    },
}

SITE_READINGS: dict[str, Any] = {
    "summary": "one series per device of the site",
    "value": {
        "site_id": 5,
        "metric": "pv_w",
        "unit": "W",
        "resolution": "1h",
        "series": [ROLLUP["value"], {**ROLLUP["value"], "device_id": 21}],
    },
}

_LATEST = {"device_id": 17, "metric": "pv_w", "unit": "W", **_POINT}

SITE_LATEST: dict[str, Any] = {
    "summary": "newest value per device and metric",
    "value": {
        "site_id": 5,
        "since": "2026-02-22T02:00:00Z",
        "values": [
            _LATEST,
            {**_LATEST, "metric": "grid_w", "value": -1200.0},
            {**_LATEST, "device_id": 21, "metric": "battery_soc_pct", "unit": "%", "value": 64.0},
        ],
    },
}

FLEET_LATEST: dict[str, Any] = {
    "summary": "a page of the fleet, more to follow after device 21",
    "value": {
        "metric": "pv_w",
        "unit": "W",
        "since": "2026-02-22T02:00:00Z",
        "values": [_LATEST, {**_LATEST, "device_id": 21, "value": 0.0}],
        "next_after": 21,
    },
}


SITE_ENERGY: dict[str, Any] = {
    "summary": "PV energy of a Madrid site per local day (25 October: 25 hours)",
    "value": {
        "site_id": 7,
        "metric": "pv_wh",
        "unit": "day",
        "time_zone": "Europe/Madrid",
        "periods": [
            {
                "start": "2026-10-24T22:00:00Z",
                "end": "2026-10-25T23:00:00Z",
                "label": "2026-10-25",
                "energy_wh": "18250.500",
                "samples": 300,
                "covered_s": 90000.0,
                "complete": True,
                "flags": [],
            },
            {
                "start": "2026-10-25T23:00:00Z",
                "end": "2026-10-26T23:00:00Z",
                "label": "2026-10-26",
                "energy_wh": "9120.000",
                "samples": 250,
                "covered_s": 75600.0,
                "complete": False,
                "flags": ["gap"],
            },
        ],
    },
}


def response(**shown: dict[str, Any]) -> dict[str, Any]:
    """A 200 ``responses`` entry showing the named examples."""
    return {"content": {"application/json": {"examples": shown}}}
