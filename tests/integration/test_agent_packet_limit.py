"""The broker's packet limit (issue 12, point 5): a batch at the limit goes through as one
message; a larger one is cut into messages that each fit, with one seq each, and every
reading arrives; a reading no packet can hold is dropped with a reason and the rest goes
on — and the agent never loops reconnecting on a message the broker refuses.

A real Mosquitto with a small ``max_packet_size`` (it disconnects a client that sends
more); a witness subscriber counts what it delivers. Packet sizes are counted by hand
here (MQTT 5, QoS 1: fixed header, remaining length, topic, packet id, properties).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from contracts.messages import Quality, Reading, TelemetryBatch
from contracts.metrics import BY_NAME
from contracts.topics import topic
from edge_agent.buffer import AsyncOutbox
from edge_agent.settings import AgentSettings
from potr.servers.mosquitto import PrivateMosquitto
from tests.integration.harness import running_agent
from tests.integration.witness import Witness
from tests.waiting import until

pytestmark = pytest.mark.integration

GATEWAY = "pl-au-0001"
TOPIC = topic("au", GATEWAY, "telemetry")
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def _packet(payload: bytes) -> int:
    """A QoS 1 MQTT 5 PUBLISH of ``payload`` on the telemetry topic, in bytes."""
    remaining = 2 + len(TOPIC) + 2 + 1 + len(payload)
    varint = 1 if remaining < 128 else 2 if remaining < 16_384 else 3
    return 1 + varint + remaining


def _reading(i: int, device: str | None = None, metrics: int = 1) -> Reading:
    # Flagged already, so a suspect clock changes nothing of their size.
    return Reading(
        device=device or f"d{i:03d}",
        ts=T0 + timedelta(seconds=i),
        quality=Quality.SUSPECT,
        flags=["clock_suspect"],
        values={name: 1000.0 + i for name in list(BY_NAME)[:metrics]},
    )


def _exactly(limit: int, seq: int, stream_id: Any) -> list[Reading]:
    """Readings whose batch with ``seq`` is a packet of exactly ``limit`` bytes: as many as
    stay under it, then device ids lengthened by the bytes still missing."""
    readings: list[Reading] = []

    def size(rs: list[Reading]) -> int:
        return _packet(TelemetryBatch(stream_id=stream_id, seq=seq, readings=rs).to_json())

    while size([*readings, _reading(len(readings))]) <= limit:
        readings.append(_reading(len(readings)))
    missing = limit - size(readings)
    for i, r in enumerate(readings):
        more = min(missing, 100)
        readings[i] = _reading(i, device=r.device + "x" * more)
        missing -= more
    assert size(readings) == limit
    return readings


def _settings(broker: PrivateMosquitto, tmp_path: Path, **kw: Any) -> AgentSettings:
    values: dict[str, Any] = {
        "gateway_id": GATEWAY,
        "region": "au",
        "mqtt_url": broker.url,
        "buffer_path": tmp_path / "buffer.sqlite",
        "reconnect_min_s": 0.1,
        "reconnect_max_s": 0.5,
        "drop_report_interval_s": 0.2,
        **kw,
    }
    return AgentSettings(**values)


@pytest.fixture
def small_broker() -> Iterator[PrivateMosquitto]:
    with PrivateMosquitto(max_packet_size=4096) as broker:
        yield broker


@pytest.fixture
def tiny_broker() -> Iterator[PrivateMosquitto]:
    with PrivateMosquitto(max_packet_size=1024) as broker:
        yield broker


def _received(w: Witness) -> list[Reading]:
    """Every reading delivered, in seq order (messages of one window may overtake)."""
    deliveries = sorted(w.of("telemetry"), key=lambda d: int(d.doc["seq"]))
    return [Reading.model_validate(r) for d in deliveries for r in d.doc["readings"]]


async def test_a_batch_at_the_limit_is_one_message_and_a_larger_one_is_cut_to_fit(
    small_broker: PrivateMosquitto, tmp_path: Path
) -> None:
    limit = 4096
    settings = _settings(small_broker, tmp_path, mqtt_max_packet_bytes=limit)
    with Witness(small_broker.port, GATEWAY) as w:
        await until(w.connected.is_set, 10, "the witness to subscribe")
        async with running_agent(settings) as agent:
            await until(agent.publisher.connected.is_set, 10, "the agent to connect")
            seq = await agent.outbox.last_seq() + 1
            at_limit = _exactly(limit, seq, agent.outbox.stream_id)
            await agent.batcher.persist(at_limit)
            await until(lambda: len(w.of("telemetry")), 10, "the batch at the limit")
            [one] = w.of("telemetry")
            assert one.doc["seq"] == seq
            assert _packet(b"x" * one.size) == limit

            # One character more would be one byte over: two messages, consecutive seqs.
            over = [*at_limit[:-1], _reading(999, device=at_limit[-1].device + "y")]
            await agent.batcher.persist(over)
            big = [_reading(1000 + i, metrics=5) for i in range(300)]  # about 40 kB
            await agent.batcher.persist(big)
            wanted = len(at_limit) + len(over) + len(big)
            await until(lambda: len(_received(w)), 20, "every reading", at_least=wanted)

            assert agent.publisher.sessions == 1, "the broker dropped the agent"
            assert agent.publisher.too_large == 0  # cut when formed, never at publish
    deliveries = w.of("telemetry")
    assert all(_packet(b"x" * d.size) <= limit for d in deliveries)
    assert sorted(d.doc["seq"] for d in deliveries) == list(range(seq, seq + len(deliveries)))
    assert len(deliveries) >= 2 + 1 + 10  # at the limit, over it (2), 40 kB (10 or more)
    assert _received(w) == [*at_limit, *over, *big]  # in order, none twice, none lost


async def test_the_brokers_smaller_limit_cuts_buffered_batches_and_drops_what_fits_nothing(
    tiny_broker: PrivateMosquitto, tmp_path: Path
) -> None:
    """Buffered before the agent knew the broker's 1 KiB limit (its own setting is the
    default 256 KiB): learnt from CONNACK, the batch is cut again in the buffer — the first
    piece keeps the seq — and a reading of every metric (1.1 kB) that fits no packet
    is dropped, reported ``data_dropped`` "too large" under a seq of its own."""
    small = [_reading(i) for i in range(30)]
    huge = Reading(  # every metric, the longest device id: over 1.1 kB of JSON alone
        device="h" * 128,
        ts=T0 + timedelta(seconds=500),
        quality=Quality.SUSPECT,
        flags=["clock_suspect"],
        values={name: 123456.789 + k for k, name in enumerate(BY_NAME)},
    )
    settings = _settings(tiny_broker, tmp_path)
    async with AsyncOutbox(settings.buffer_path) as outbox:
        await outbox.append(
            "telemetry",
            lambda sid, seq: TelemetryBatch(
                stream_id=sid, seq=seq, readings=[*small[:15], huge, *small[15:]]
            ).to_json(),
        )
    with Witness(tiny_broker.port, GATEWAY) as w:
        await until(w.connected.is_set, 10, "the witness to subscribe")
        async with running_agent(settings) as agent:
            await until(lambda: len(_received(w)), 20, "the buffered readings", at_least=30)
            await until(lambda: w.of("event"), 10, "the drop report")
            assert agent.packet_limit.bytes == 1024, "the broker's CONNACK limit"
            assert agent.publisher.sessions == 1, "the broker dropped the agent"
            assert agent.publisher.too_large == 1
            assert agent.status().too_large_readings == 1

            live = [_reading(600 + i, metrics=3) for i in range(40)]
            await agent.batcher.persist(live)  # cut to the broker's limit when formed
            await until(lambda: len(_received(w)), 20, "the live readings", at_least=70)
            assert agent.publisher.too_large == 1
    assert _received(w) == [*small, *live]
    deliveries = w.of("telemetry")
    assert min(d.doc["seq"] for d in deliveries) == 1  # the first piece kept the seq
    assert all(_packet(b"x" * d.size) <= 1024 for d in deliveries)
    [event] = w.of("event")
    assert event.doc["event"] == "data_dropped"
    detail = event.doc["detail"]
    assert detail["reason"] == "too large"
    [[skipped, same]] = detail["seq_ranges"]
    assert skipped == same
    assert skipped not in {d.doc["seq"] for d in deliveries}
    assert detail["from"] == detail["to"] == "2025-01-01T00:08:20.000Z"  # the huge one's ts
