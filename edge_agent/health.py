"""The agent's local HTTP endpoint: ``/healthz`` (JSON) and ``/metrics`` (Prometheus text).

Plain asyncio streams, no framework: the gateway has 1 GB of RAM. Metrics live in one
:class:`prometheus_client.CollectorRegistry` per agent, never the process-global one
(tests run several agents in one process). Only poll durations are observed as they
happen; everything else is read from a :class:`~edge_agent.status.StatusSource` snapshot
when scraped, so an agent nobody scrapes pays nothing for its metrics.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector

from edge_agent import __version__
from edge_agent.status import AgentStatus, BufferStats, StatusSource

if TYPE_CHECKING:
    from edge_agent.poller import DeviceState

#: Device states a gauge is exported for (one series each, 1 for the current state).
DEVICE_STATES = ("online", "asleep", "unreachable", "faulty")
#: Modbus TCP on a LAN answers in milliseconds; a dead device costs its timeout (seconds).
POLL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
REQUEST_TIMEOUT_S = 5.0

__all__ = ["AgentMetrics", "health_snapshot", "serve_health"]


class AgentMetrics:
    """One agent's metrics registry; ``observe_poll`` is the poller's hook."""

    def __init__(self, source: StatusSource) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.poll_seconds = Histogram(
            "potr_agent_poll_duration_seconds",
            "Duration of one device poll (all mapped models), by outcome",
            ["device", "outcome"],
            buckets=POLL_BUCKETS,
            registry=self.registry,
        )
        self.buffer = BufferStats()
        self.registry.register(_AgentCollector(source, self))

    def observe_poll(self, state: DeviceState, seconds: float, ok: bool) -> None:
        self.poll_seconds.labels(state.device_id, "ok" if ok else "error").observe(seconds)

    async def refresh(self, source: StatusSource) -> BufferStats:
        """Read the buffer's figures for the next render."""
        self.buffer = await source.buffer_stats()
        return self.buffer

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _AgentCollector(Collector):
    """Counters and gauges read from the agent's status at scrape time."""

    def __init__(self, source: StatusSource, metrics: AgentMetrics) -> None:
        self._source = source
        self._metrics = metrics

    def collect(self) -> Iterator[Any]:
        status = self._source.status()
        info = InfoMetricFamily("potr_agent", "The agent's identity")
        info.add_metric(
            [],
            {
                "gateway": status.gateway_id,
                "region": status.region,
                "version": __version__,
                "stream_id": status.stream_id,
            },
        )
        yield info
        yield _device_states(status)
        yield from _gauges(status, self._metrics.buffer)
        yield from _counters(status)


def _device_states(status: AgentStatus) -> GaugeMetricFamily:
    states = GaugeMetricFamily(
        "potr_agent_device_state",
        "1 for the device's current state (online, asleep, unreachable, faulty)",
        labels=["device", "endpoint", "unit_id", "state"],
    )
    for dev in status.devices:
        for state in DEVICE_STATES:
            states.add_metric(
                [dev.device_id, dev.endpoint, str(dev.unit_id), state], float(dev.status == state)
            )
    return states


def _gauges(status: AgentStatus, buf: BufferStats) -> Iterator[GaugeMetricFamily]:
    for name, doc, value in (
        ("buffer_bytes", "Payload bytes held in the store-and-forward buffer", buf.bytes),
        ("buffer_rows", "Messages held in the buffer (sent or not)", buf.rows),
        ("buffer_unsent_rows", "Buffered messages not yet PUBACKed", buf.unsent),
        (
            "buffer_oldest_age_seconds",
            "Age of the oldest buffered message (0 when empty)",
            buf.oldest_age_s or 0.0,
        ),
        ("mqtt_connected", "1 while the MQTT session is up", float(status.mqtt_connected)),
        (
            "stored_upto_seq",
            "Last stored watermark received from the cloud (-1 before the first)",
            -1 if status.stored_upto_seq is None else status.stored_upto_seq,
        ),
        ("held_messages", "Events and answers held in memory while the disk is full", status.held),
    ):
        yield GaugeMetricFamily(f"potr_agent_{name}", doc, value=value)


def _counters(status: AgentStatus) -> Iterator[CounterMetricFamily]:
    for name, doc, total in (
        ("batches", "Telemetry batches buffered", status.batches),
        ("dropped_batches", "Telemetry batches dropped to make room", status.dropped_batches),
        ("published", "Messages PUBACKed by the broker", status.published),
        ("resent", "Messages made unsent again for lack of a stored watermark", status.resent),
        ("mqtt_reconnects", "MQTT sessions after the first", max(status.sessions - 1, 0)),
        ("stored_refused", "stored beyond the stream's last seq, ignored", status.stored_refused),
        ("too_large", "Buffered messages over the packet limit, cut or dropped", status.too_large),
        (
            "too_large_readings",
            "Readings dropped: larger than any packet",
            status.too_large_readings,
        ),
        ("held_lost", "Held events and answers lost past the in-memory bound", status.held_lost),
    ):
        yield CounterMetricFamily(f"potr_agent_{name}", doc, value=total)
    for name, doc, label, counts in (
        ("commands", "Command acks sent, by status", "status", status.commands),
        ("config_states", "config_state reports sent, by status", "status", status.configs),
        ("control_refusals", "Refused cmd/config documents, by reason", "code", status.refusals),
        (
            "modbus_writes",
            "Modbus writes, by outcome (ok, error, refused)",
            "outcome",
            status.writes,
        ),
    ):
        family = CounterMetricFamily(f"potr_agent_{name}", doc, labels=[label])
        for key, count in sorted(counts.items()):
            family.add_metric([key], count)
        yield family


async def health_snapshot(
    source: StatusSource, metrics: AgentMetrics | None = None
) -> dict[str, object]:
    """The ``/healthz`` body. ``status`` is ``ok`` while MQTT is up and every device is
    online or asleep, else ``degraded`` (the agent still buffers)."""
    buffer = await metrics.refresh(source) if metrics is not None else BufferStats()
    status = source.status()
    devices = {
        dev.device_id: {
            "status": dev.status,
            "endpoint": dev.endpoint,
            "unit_id": dev.unit_id,
            "last_error": dev.last_error,
        }
        for dev in status.devices
    }
    connected = status.mqtt_connected
    healthy = connected and all(d["status"] in ("online", "asleep") for d in devices.values())
    return {
        "status": "ok" if healthy else "degraded",
        "gateway_id": status.gateway_id,
        "stream_id": status.stream_id,
        "mqtt_connected": connected,
        "stored_upto_seq": status.stored_upto_seq,
        "devices": devices,
        "buffer": asdict(buffer),
        "published": status.published,
        "resent": status.resent,
        "batches": status.batches,
        "dropped_batches": status.dropped_batches,
    }


async def _respond(
    source: StatusSource, metrics: AgentMetrics | None, path: bytes
) -> tuple[str, str, bytes]:
    path = path.split(b"?", 1)[0]
    if path == b"/healthz":
        return "200 OK", "application/json", orjson.dumps(await health_snapshot(source, metrics))
    if path == b"/metrics" and metrics is not None:
        await metrics.refresh(source)
        return "200 OK", CONTENT_TYPE_LATEST, metrics.render()
    return "404 Not Found", "text/plain", b"not found\n"


async def serve_health(
    source: StatusSource, metrics: AgentMetrics | None, port: int, host: str = "127.0.0.1"
) -> None:
    """Serve ``/healthz`` and ``/metrics`` on ``host:port`` until cancelled."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT_S):
                request = await reader.readline()
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass
            parts = request.split(b" ")
            target = parts[1] if len(parts) >= 3 else b"/"
            status, ctype, body = await _respond(source, metrics, target)
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
