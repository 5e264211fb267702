"""The agent's loopback health and metrics endpoint."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from pathlib import Path

import orjson
import pytest

from edge_agent.app import run_agent
from edge_agent.settings import AgentSettings

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _get(port: int, path: str) -> tuple[str, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    data = await reader.read()
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0].decode(), body


async def test_healthz_and_metrics_answer(mosquitto_url: str, tmp_path: Path) -> None:
    port = _free_port()
    settings = AgentSettings(
        gateway_id="gw-health-1",
        region="es",
        mqtt_url=mosquitto_url,
        buffer_path=tmp_path / "b.sqlite",
        health_port=port,
        endpoints=[],
    )
    stop = asyncio.Event()
    task = asyncio.create_task(run_agent(settings, stop))
    try:
        async with asyncio.timeout(10):
            while True:
                with contextlib.suppress(OSError):
                    status, body = await _get(port, "/healthz")
                    break
                await asyncio.sleep(0.05)  # the port opens when the agent has started
        assert status.endswith("200 OK")
        health = orjson.loads(body)
        assert health["gateway_id"] == "gw-health-1"
        assert health["outbox_rows"] == 0
        status, metrics = await _get(port, "/metrics")
        assert b'potr_agent_outbox_rows{gateway="gw-health-1"} 0' in metrics
        status, _ = await _get(port, "/nope")
        assert status.endswith("404 Not Found")
    finally:
        stop.set()
        async with asyncio.timeout(10):
            await task
