"""A minimal HTTP endpoint on loopback: ``/healthz`` (JSON) and ``/metrics`` (Prometheus text).

Plain asyncio streams, no framework: the gateway has 1 GB of RAM.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import orjson

if TYPE_CHECKING:
    from edge_agent.app import Agent


async def _snapshot(agent: Agent) -> dict[str, object]:
    counts = await agent.outbox.counts()
    return {
        "gateway_id": agent.settings.gateway_id,
        "mqtt_connected": agent.publisher.connected.is_set(),
        "stream_id": str(agent.outbox.stream_id),
        "outbox_rows": counts["rows"],
        "outbox_unsent": counts["unsent"],
        "published": agent.publisher.published,
        "batches": agent.batches,
        "devices": {s.device_id: s.status for s in agent.registry.devices.values()},
    }


def _metrics(snap: dict[str, object]) -> str:
    gw = snap["gateway_id"]
    lines = [
        f'potr_agent_mqtt_connected{{gateway="{gw}"}} {int(bool(snap["mqtt_connected"]))}',
        f'potr_agent_outbox_rows{{gateway="{gw}"}} {snap["outbox_rows"]}',
        f'potr_agent_outbox_unsent{{gateway="{gw}"}} {snap["outbox_unsent"]}',
        f'potr_agent_published_total{{gateway="{gw}"}} {snap["published"]}',
        f'potr_agent_batches_total{{gateway="{gw}"}} {snap["batches"]}',
    ]
    devices = snap["devices"]
    assert isinstance(devices, dict)
    for device, status in devices.items():
        up = int(status == "online")
        lines.append(f'potr_agent_device_up{{gateway="{gw}",device="{device}"}} {up}')
    return "\n".join(lines) + "\n"


async def serve_health(agent: Agent, port: int, host: str = "127.0.0.1") -> None:
    """Serve until cancelled."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(5):
                request = await reader.readline()
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass
            path = request.split(b" ")[1] if request.count(b" ") >= 2 else b"/"
            snap = await _snapshot(agent)
            if path == b"/healthz":
                status, ctype, body = "200 OK", "application/json", orjson.dumps(snap)
            elif path == b"/metrics":
                status, ctype, body = "200 OK", "text/plain; version=0.0.4", _metrics(snap).encode()
            else:
                status, ctype, body = "404 Not Found", "text/plain", b"not found\n"
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}"
                "\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (TimeoutError, OSError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, host, port)
    async with server:
        await server.serve_forever()
