"""The agent's local HTTP endpoint: ``/healthz`` (JSON) and ``/metrics`` (Prometheus text).

Plain asyncio streams, no framework: the gateway has 1 GB of RAM. Metrics live in one
:class:`prometheus_client.CollectorRegistry` per agent, never the process-global one
(tests run several agents in one process). Only poll durations are observed as they
happen; everything else is read from the agent's parts when scraped, so an agent nobody
scrapes pays nothing for its metrics.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector

from edge_agent import __version__

if TYPE_CHECKING:
    from edge_agent.app import Agent
    from edge_agent.poller import DeviceState

#: Device states a gauge is exported for (one series each, 1 for the current state).
DEVICE_STATES = ("online", "asleep", "unreachable", "faulty")
#: Modbus TCP on a LAN answers in milliseconds; a dead device costs its timeout (seconds).
POLL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
REQUEST_TIMEOUT_S = 5.0

__all__ = ["AgentMetrics", "BufferStats", "health_snapshot", "serve_health"]


@dataclass(frozen=True, slots=True)
class BufferStats:
    rows: int = 0
    unsent: int = 0
    bytes: int = 0
    oldest_age_s: float | None = None


class AgentMetrics:
    """One agent's metrics registry; ``observe_poll`` is the poller's hook."""

    def __init__(self, agent: Agent) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.poll_seconds = Histogram(
            "potr_agent_poll_duration_seconds",
            "Duration of one device poll (all mapped models), by outcome",
            ["device", "outcome"],
            buckets=POLL_BUCKETS,
            registry=self.registry,
        )
        self.buffer = BufferStats()
        self.registry.register(_AgentCollector(agent, self))

    def observe_poll(self, state: DeviceState, seconds: float, ok: bool) -> None:
        self.poll_seconds.labels(state.device_id, "ok" if ok else "error").observe(seconds)

    async def refresh(self, agent: Agent) -> BufferStats:
        """Read the buffer's figures (on the outbox thread) for the next render."""
        counts = await agent.outbox.counts()
        oldest = await agent.outbox.oldest_created_at()
        self.buffer = BufferStats(
            rows=counts["rows"],
            unsent=counts["unsent"],
            bytes=counts["bytes"],
            oldest_age_s=None if oldest is None else round(max(time.time() - oldest, 0.0), 3),
        )
        return self.buffer

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _AgentCollector(Collector):
    """Counters and gauges read from the agent at scrape time."""

    def __init__(self, agent: Agent, metrics: AgentMetrics) -> None:
        self._agent = agent
        self._metrics = metrics

    def collect(self) -> Iterator[Any]:
        agent, pub = self._agent, self._agent.publisher
        s = agent.settings
        info = InfoMetricFamily("potr_agent", "The agent's identity")
        info.add_metric(
            [],
            {
                "gateway": s.gateway_id,
                "region": s.region.value,
                "version": __version__,
                "stream_id": str(agent.outbox.stream_id),
            },
        )
        yield info
        states = GaugeMetricFamily(
            "potr_agent_device_state",
            "1 for the device's current state (online, asleep, unreachable, faulty)",
            labels=["device", "endpoint", "unit_id", "state"],
        )
        for dev in agent.registry.devices.values():
            for state in DEVICE_STATES:
                states.add_metric(
                    [dev.device_id, dev.endpoint, str(dev.unit_id), state],
                    float(dev.status == state),
                )
        yield states
        buf = self._metrics.buffer
        for name, doc, value in (
            ("buffer_bytes", "Payload bytes held in the store-and-forward buffer", buf.bytes),
            ("buffer_rows", "Messages held in the buffer (sent or not)", buf.rows),
            ("buffer_unsent_rows", "Buffered messages not yet PUBACKed", buf.unsent),
            (
                "buffer_oldest_age_seconds",
                "Age of the oldest buffered message (0 when empty)",
                buf.oldest_age_s or 0.0,
            ),
            ("mqtt_connected", "1 while the MQTT session is up", float(pub.connected.is_set())),
            (
                "stored_upto_seq",
                "Last stored watermark received from the cloud (-1 before the first)",
                -1 if pub.stored_upto is None else pub.stored_upto,
            ),
        ):
            yield GaugeMetricFamily(f"potr_agent_{name}", doc, value=value)
        for name, doc, total in (
            ("batches", "Telemetry batches buffered", agent.batches),
            ("dropped_batches", "Telemetry batches dropped to make room", agent.dropped_batches),
            ("published", "Messages PUBACKed by the broker", pub.published),
            ("resent", "Messages made unsent again for lack of a stored watermark", pub.resent),
            ("mqtt_reconnects", "MQTT sessions after the first", max(pub.sessions - 1, 0)),
        ):
            yield CounterMetricFamily(f"potr_agent_{name}", doc, value=total)
        stats = agent.control.stats
        for name, doc, label, counts in (
            ("commands", "Command acks sent, by status", "status", stats.commands),
            ("config_states", "config_state reports sent, by status", "status", stats.configs),
            ("control_refusals", "Refused cmd/config documents, by reason", "code", stats.refusals),
            (
                "modbus_writes",
                "Modbus writes, by outcome (ok, error, refused)",
                "outcome",
                stats.writes,
            ),
        ):
            family = CounterMetricFamily(f"potr_agent_{name}", doc, labels=[label])
            for key, total in sorted(counts.items()):
                family.add_metric([key], total)
            yield family


async def health_snapshot(agent: Agent) -> dict[str, object]:
    """The ``/healthz`` body. ``status`` is ``ok`` while MQTT is up and every device is
    online or asleep, else ``degraded`` (the agent still buffers)."""
    metrics = agent.metrics
    buffer = await metrics.refresh(agent) if metrics is not None else BufferStats()
    pub = agent.publisher
    devices = {
        dev.device_id: {
            "status": dev.status,
            "endpoint": dev.endpoint,
            "unit_id": dev.unit_id,
            "last_error": dev.last_error or None,
        }
        for dev in agent.registry.devices.values()
    }
    connected = pub.connected.is_set()
    healthy = connected and all(d["status"] in ("online", "asleep") for d in devices.values())
    return {
        "status": "ok" if healthy else "degraded",
        "gateway_id": agent.settings.gateway_id,
        "stream_id": str(agent.outbox.stream_id),
        "mqtt_connected": connected,
        "stored_upto_seq": pub.stored_upto,
        "devices": devices,
        "buffer": asdict(buffer),
        "published": pub.published,
        "resent": pub.resent,
        "batches": agent.batches,
        "dropped_batches": agent.dropped_batches,
    }


async def _respond(agent: Agent, path: bytes) -> tuple[str, str, bytes]:
    path = path.split(b"?", 1)[0]
    if path == b"/healthz":
        return "200 OK", "application/json", orjson.dumps(await health_snapshot(agent))
    if path == b"/metrics" and agent.metrics is not None:
        await agent.metrics.refresh(agent)
        return "200 OK", CONTENT_TYPE_LATEST, agent.metrics.render()
    return "404 Not Found", "text/plain", b"not found\n"


async def serve_health(agent: Agent, port: int, host: str = "127.0.0.1") -> None:
    """Serve ``/healthz`` and ``/metrics`` on ``host:port`` until cancelled."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT_S):
                request = await reader.readline()
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass
            parts = request.split(b" ")
            status, ctype, body = await _respond(agent, parts[1] if len(parts) >= 3 else b"/")
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
