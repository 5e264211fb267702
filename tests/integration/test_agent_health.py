"""The agent's loopback health and metrics endpoint, against running agents, a simulated
site over Modbus TCP and a real Mosquitto."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from uuid import uuid4

import aiomqtt
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from contracts.messages import StoredMsg
from contracts.timeutil import utc_now
from contracts.topics import topic
from edge_agent.app import run_agent
from edge_agent.settings import AgentSettings
from potr.servers.ports import free_port
from simulators.device_site import DeviceSite, region_site

pytestmark = pytest.mark.integration

NOON_SYDNEY = datetime(2024, 1, 10, 2, 0, tzinfo=UTC)
Health = dict[str, Any]


async def _get(port: int, path: str) -> tuple[str, str, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    data = await reader.read()
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return lines[0], headers.get("Content-Type", ""), body


async def _health_until(port: int, check: Callable[[Health], bool], within: float = 15.0) -> Health:
    """Ask ``/healthz`` until ``check`` holds (the port opens once the agent has started)."""
    health: Health = {}
    try:
        async with asyncio.timeout(within):
            while True:
                with contextlib.suppress(OSError):
                    _, _, body = await _get(port, "/healthz")
                    health = orjson.loads(body)
                    if check(health):
                        return health
                await asyncio.sleep(0.05)
    except TimeoutError:
        pytest.fail(f"healthz never satisfied the check; last answer: {health}")


def _samples(text: bytes) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def _value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return samples[(name, frozenset(labels.items()))]


@contextlib.asynccontextmanager
async def _running(settings: AgentSettings) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(run_agent(settings, stop))
    try:
        yield
    finally:
        stop.set()
        async with asyncio.timeout(10):
            await task


@pytest.fixture
async def site() -> AsyncIterator[DeviceSite]:
    settings = region_site(
        site_id=f"hz-{uuid4().hex[:6]}", region="au", start_time=NOON_SYDNEY, update_period_s=0.2
    )
    async with DeviceSite(settings) as sim:
        yield sim


def _settings(url: str, tmp_path: Path, gateway_id: str, **kw: Any) -> AgentSettings:
    values: dict[str, Any] = {
        "gateway_id": gateway_id,
        "region": "au",
        "mqtt_url": url,
        "buffer_path": tmp_path / f"{gateway_id}.sqlite",
        "poll_interval_s": 0.25,
        "health_port": free_port(),
        "endpoints": [],
    }
    values.update(kw)
    return AgentSettings(**values)


async def test_healthz_reports_devices_buffer_and_stored_watermark(
    mosquitto_url: str, tmp_path: Path, site: DeviceSite
) -> None:
    endpoint = {"name": "site", "host": "127.0.0.1", "port": site.port, "unit_ids": [1, 2]}
    settings = _settings(mosquitto_url, tmp_path, "gw-health-1", endpoints=[endpoint])
    port = settings.health_port
    assert port is not None
    async with _running(settings):
        health = await _health_until(
            port,
            lambda h: h["status"] == "ok" and len(h["devices"]) == 2 and h["published"] >= 2,
        )
        assert health["mqtt_connected"] is True
        assert health["stored_upto_seq"] is None
        assert {d["status"] for d in health["devices"].values()} == {"online"}
        assert {d["unit_id"] for d in health["devices"].values()} == {1, 2}
        assert health["buffer"]["rows"] >= 2  # nothing is stored yet: everything is kept
        assert health["buffer"]["bytes"] > 0
        assert health["buffer"]["oldest_age_s"] >= 0

        parts = urlsplit(mosquitto_url)
        async with aiomqtt.Client(parts.hostname or "127.0.0.1", parts.port or 1883) as client:
            stored = StoredMsg(stream_id=health["stream_id"], upto_seq=2, ts=utc_now())
            await client.publish(topic("au", "gw-health-1", "stored"), stored.to_json(), qos=1)
        await _health_until(port, lambda h: h["stored_upto_seq"] == 2)


async def test_metrics_expose_polls_states_buffer_and_counters(
    mosquitto_url: str, tmp_path: Path, site: DeviceSite
) -> None:
    dead = free_port()  # nothing listens there: an unreachable device
    endpoints = [
        {"name": "site", "host": "127.0.0.1", "port": site.port, "unit_ids": [1, 2]},
        {"name": "dead", "host": "127.0.0.1", "port": dead, "unit_ids": [1], "timeout_s": 0.2},
    ]
    settings = _settings(mosquitto_url, tmp_path, "gw-health-2", endpoints=endpoints)
    port = settings.health_port
    assert port is not None
    async with _running(settings):
        health = await _health_until(
            port,
            lambda h: (
                sum(d["status"] == "online" for d in h["devices"].values()) == 2
                and h["published"] >= 2
            ),
        )
        assert health["status"] == "degraded"  # one device is unreachable
        assert health["devices"]["dead-u1"]["status"] == "unreachable"
        assert "connect" in health["devices"]["dead-u1"]["last_error"]
        status, ctype, body = await _get(port, "/metrics")
    assert status.endswith("200 OK")
    assert ctype.startswith("text/plain")
    samples = _samples(body)
    online = [d for d, v in health["devices"].items() if v["status"] == "online"]
    for device in online:
        count = _value(
            samples, "potr_agent_poll_duration_seconds_count", device=device, outcome="ok"
        )
        assert count >= 1
        state = {"device": device, "endpoint": "site", "state": "online"}
        unit = str(health["devices"][device]["unit_id"])
        assert _value(samples, "potr_agent_device_state", unit_id=unit, **state) == 1
    assert (
        _value(samples, "potr_agent_poll_duration_seconds_count", device="dead-u1", outcome="error")
        >= 1
    )
    dead_state = {"device": "dead-u1", "endpoint": "dead", "unit_id": "1"}
    assert _value(samples, "potr_agent_device_state", state="unreachable", **dead_state) == 1
    assert _value(samples, "potr_agent_device_state", state="online", **dead_state) == 0
    assert _value(samples, "potr_agent_mqtt_connected") == 1
    assert _value(samples, "potr_agent_published_total") >= 2
    assert _value(samples, "potr_agent_buffer_rows") >= 2
    assert _value(samples, "potr_agent_buffer_bytes") > 0
    assert _value(samples, "potr_agent_buffer_oldest_age_seconds") >= 0
    for counter in ("resent", "dropped_batches", "mqtt_reconnects"):
        assert _value(samples, f"potr_agent_{counter}_total") == 0
    assert _value(samples, "potr_agent_stored_upto_seq") == -1
    info = {
        k: v
        for (name, labels), _ in samples.items()
        if name == "potr_agent_info"
        for k, v in labels
    }
    assert info["gateway"] == "gw-health-2"
    assert info["stream_id"] == health["stream_id"]


async def test_two_agents_in_one_process_keep_their_own_metrics(
    mosquitto_url: str, tmp_path: Path
) -> None:
    first = _settings(mosquitto_url, tmp_path, "gw-health-a")
    second = _settings(mosquitto_url, tmp_path, "gw-health-b")
    async with _running(first), _running(second):
        for settings in (first, second):
            assert settings.health_port is not None
            health = await _health_until(settings.health_port, lambda h: h["mqtt_connected"])
            assert health["gateway_id"] == settings.gateway_id
            assert health["status"] == "ok"  # connected, and no device is failing
            _, _, body = await _get(settings.health_port, "/metrics")
            assert f'gateway="{settings.gateway_id}"'.encode() in body
        status, _, _ = await _get(first.health_port or 0, "/nope")
        assert status.endswith("404 Not Found")


async def test_control_refusals_show_in_the_metrics(mosquitto_url: str, tmp_path: Path) -> None:
    """Every refusal is counted by reason: an unsigned command (rejected, acked) and a
    payload that is not JSON (no id to answer: only the log and this counter)."""
    gateway = "gw-health-ctl"
    settings = _settings(mosquitto_url, tmp_path, gateway)
    port = settings.health_port
    assert port is not None
    parts = urlsplit(mosquitto_url)
    unsigned = {
        "v": 1,
        "id": str(uuid4()),
        "gateway_id": gateway,
        "name": "ping",
        "device": None,
        "args": {},
        "expires_at": "2099-01-01T00:00:00.000Z",
        "issued_by": "test",
    }

    def refusals(h: bytes) -> dict[str, float]:
        return {
            dict(labels)["code"]: value
            for (name, labels), value in _samples(h).items()
            if name == "potr_agent_control_refusals_total"
        }

    async with (
        _running(settings),
        aiomqtt.Client(parts.hostname or "127.0.0.1", parts.port or 1883) as cloud,
    ):
        await _health_until(port, lambda h: h["mqtt_connected"])
        await cloud.publish(topic("au", gateway, "cmd"), orjson.dumps(unsigned), qos=1)
        await cloud.publish(topic("au", gateway, "cmd"), b"{not json", qos=1)
        async with asyncio.timeout(15):
            while True:
                _, _, body = await _get(port, "/metrics")
                if len(refusals(body)) == 2:
                    break
                await asyncio.sleep(0.05)
    assert refusals(body) == {"unsigned": 1, "schema-invalid": 1}
    assert _value(_samples(body), "potr_agent_commands_total", status="rejected") == 1
