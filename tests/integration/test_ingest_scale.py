"""Ingest at scale (issue 6): offline detection across several workers, completeness
against a scripted outage, events in the outbox exactly once, replays (scenario 6) and a
worker process killed between commit and ack (scenario 7)."""

from __future__ import annotations

import json
import os
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from cloud.adapters.mqtt import InboundMessage
from cloud.adapters.postgres import create_pool
from cloud.bootstrap import create_ingest_worker
from cloud.ingest import CompletenessReader, IngestWorker
from cloud.ingest.deadletters import LimiterConfig
from cloud.ingest.limits import IngestLimits
from cloud.ingest.pipeline import IngestPipeline
from cloud.ingest.validate import Accepted, Rejected, validate
from cloud.registry import RegistryService
from cloud.telemetry import TelemetryStore
from contracts.timeutil import to_wire, utc_now
from contracts.topics import topic
from potr.ingest_workers import IngestSupervisor
from tests.integration.test_cloud_ingest import (
    DEADLINE_S,
    GW,
    TestGateway,
    _query,
    _settings,
    gateway,
    registry,
)
from tests.waiting import until_sync

pytestmark = pytest.mark.integration
__all__ = ["gateway", "registry"]  # fixtures used here


def _outbox(database_url: str, name: str) -> list[dict[str, Any]]:
    rows = _query(
        database_url, "SELECT payload FROM ingest.outbox WHERE name = %s ORDER BY id", (name,)
    )
    return [r[0] for r in rows]


def _birth(
    stream_id: uuid.UUID, *, poll_s: float, publish_s: float, status: str = "online"
) -> dict[str, Any]:
    return {
        "v": 1,
        "gateway_id": GW,
        "region": "au",
        "agent_version": "test",
        "stream_id": str(stream_id),
        "boot_id": "boot-1",
        "poll_interval_s": poll_s,
        "publish_interval_s": publish_s,
        "devices": [
            {
                "device": "SN-INV-1",
                "endpoint": "e",
                "unit_id": 1,
                "models": [1, 103],
                "status": status,
            }
        ],
        "ts": to_wire(utc_now()),
    }


# -- offline detection ---------------------------------------------------------------
@pytest.fixture
def three_workers(
    database_url: str, mosquitto_url: str, registry: RegistryService
) -> Iterator[list[IngestWorker]]:
    workers = [
        create_ingest_worker(_settings(database_url, mosquitto_url, offline_check_interval_s=0.1))
        for _ in range(3)
    ]
    for w in workers:
        w.start()
    yield workers
    for w in workers:
        w.stop()


def test_one_offline_and_one_online_event_per_transition_with_several_workers(
    three_workers: list[IngestWorker], gateway: TestGateway, database_url: str
) -> None:
    gateway.publish("birth", _birth(gateway.stream_id, poll_s=0.5, publish_s=0.5))
    gateway.publish(
        "state", {"v": 1, "online": True, "boot_id": "boot-1", "ts": to_wire(utc_now())}
    )
    gateway.publish("telemetry", gateway.telemetry(1))
    until_sync(
        lambda: len(_outbox(database_url, "gateway.online")) == 1, DEADLINE_S, "gateway.online"
    )
    # Silent for 3 x 0.5 s: offline, announced once although three workers check.
    until_sync(
        lambda: len(_outbox(database_url, "gateway.offline")) == 1, DEADLINE_S, "gateway.offline"
    )
    [offline] = _outbox(database_url, "gateway.offline")
    assert offline["gateway_id"] == GW
    assert "silent" in offline["reason"]
    gateway.publish("telemetry", gateway.telemetry(2, ts_offset_s=-1))
    until_sync(lambda: len(_outbox(database_url, "gateway.online")) == 2, DEADLINE_S, "back online")

    now = to_wire(utc_now())
    sid = str(gateway.stream_id)
    down = {
        "v": 1,
        "stream_id": sid,
        "seq": 3,
        "ts": now,
        "event": "device_unreachable",
        "severity": "warning",
        "device": "SN-INV-1",
    }
    gateway.publish("event", down)
    gateway.publish("event", down)  # a redelivery changes nothing
    until_sync(
        lambda: len(_outbox(database_url, "device.offline")) == 1, DEADLINE_S, "device.offline"
    )
    up = down | {"seq": 4, "event": "device_reachable", "ts": to_wire(utc_now())}
    gateway.publish("event", up)
    until_sync(
        lambda: len(_outbox(database_url, "device.online")) == 1, DEADLINE_S, "device.online"
    )
    gateway.publish(
        "state", {"v": 1, "online": False, "boot_id": "boot-1", "ts": to_wire(utc_now())}
    )
    until_sync(
        lambda: len(_outbox(database_url, "gateway.offline")) == 2, DEADLINE_S, "state offline"
    )
    # Let every worker run several more rounds: still one event per transition.
    rounds = sum(w.stats.batches for w in three_workers)
    until_sync(lambda: sum(w.stats.batches for w in three_workers) >= rounds, DEADLINE_S, "settled")
    assert [
        len(_outbox(database_url, n))
        for n in ("gateway.online", "gateway.offline", "device.offline", "device.online")
    ] == [2, 2, 1, 1]
    names = [r[0] for r in _query(database_url, "SELECT name FROM ingest.outbox ORDER BY id")]
    assert names.count("gateway.device_unreachable") == 1
    assert names.count("gateway.birth") == 1


# -- the pipeline without MQTT ---------------------------------------------------------
@pytest.fixture
def pipeline(database_url: str, registry: RegistryService) -> Iterator[IngestPipeline]:
    pool = create_pool(database_url, name="test-pipeline")
    yield IngestPipeline(pool, TelemetryStore(pool))
    pool.close()


def _message(kind: str, doc: dict[str, Any]) -> InboundMessage:
    return InboundMessage(topic("au", GW, kind), orjson.dumps(doc), 1, 1, utc_now())


def _batch(stream_id: uuid.UUID, seq: int, stamps: list[datetime]) -> dict[str, Any]:
    return {
        "v": 1,
        "stream_id": str(stream_id),
        "seq": seq,
        "readings": [
            {"device": "SN-INV-1", "ts": to_wire(ts), "values": {"pv_w": 1.0, "pv_hz": 50.0}}
            for ts in stamps
        ],
    }


def test_completeness_per_local_day_matches_a_scripted_outage(
    pipeline: IngestPipeline, database_url: str
) -> None:
    stream = uuid.uuid4()
    pipeline.process([_message("birth", _birth(stream, poll_s=60, publish_s=300))])
    sydney = ZoneInfo("Australia/Sydney")
    day = (utc_now().astimezone(sydney) - timedelta(days=3)).date()
    start = datetime.combine(day, datetime.min.time(), sydney).astimezone(UTC)
    minutes = [start + timedelta(minutes=m) for m in range(1440)]
    outage = set(range(600, 720))  # 10:00-12:00 local: the link was down, data dropped
    kept = [ts for m, ts in enumerate(minutes) if m not in outage]
    for seq, i in enumerate(range(0, len(kept), 240), start=1):
        pipeline.process([_message("telemetry", _batch(stream, seq, kept[i : i + 240]))])
    [device_id] = [r[0] for r in _query(database_url, "SELECT device_id FROM ingest.device_keys")]
    pool = create_pool(database_url, name="test-completeness")
    try:
        result = CompletenessReader(pool).device(device_id, day - timedelta(days=1), day)
    finally:
        pool.close()
    assert result is not None
    assert result.time_zone == "Australia/Sydney"
    before, target = result.days
    assert (target.day, target.expected, target.stored) == (day, 1440, 1320)
    assert target.percent == pytest.approx(91.67)
    assert (before.stored, before.percent) == (0, 0.0)


def test_replayed_three_times_stores_and_announces_once(
    pipeline: IngestPipeline, database_url: str
) -> None:
    stream = uuid.uuid4()
    now = utc_now()
    telemetry = _message(
        "telemetry", _batch(stream, 1, [now - timedelta(seconds=s) for s in (1, 2, 3)])
    )
    event = _message(
        "event",
        {
            "v": 1,
            "stream_id": str(stream),
            "seq": 2,
            "ts": to_wire(now),
            "event": "isolator_open",
            "severity": "critical",
        },
    )
    ack = _message(
        "cmd_ack",
        {
            "v": 1,
            "stream_id": str(stream),
            "seq": 3,
            "id": str(uuid.uuid4()),
            "status": "done",
            "ts": to_wire(now),
        },
    )
    pipeline.process([telemetry, event, ack])
    snapshot = _query(database_url, "SELECT * FROM telemetry.readings ORDER BY 1, 2, 3")
    for _ in range(2):
        pipeline.process([telemetry, event, ack])
        pipeline.process([telemetry])
    assert _query(database_url, "SELECT * FROM telemetry.readings ORDER BY 1, 2, 3") == snapshot
    assert len(snapshot) == 6
    [received] = _outbox(database_url, "telemetry.received")
    assert (received["messages"], received["readings"], received["values"]) == (1, 3, 6)
    [alarm] = _outbox(database_url, "gateway.isolator_open")
    assert (alarm["gateway_id"], alarm["severity"]) == (GW, "critical")
    assert len(_outbox(database_url, "command.acked")) == 1


def test_telemetry_received_carries_the_announced_metrics_values_for_the_alert_rules(
    pipeline: IngestPipeline, database_url: str
) -> None:
    stream = uuid.uuid4()
    now = utc_now().replace(microsecond=0)
    t = [now - timedelta(seconds=s) for s in (30, 20, 10)]

    def meter(ts: datetime, volts: float, quality: str = "good") -> dict[str, Any]:
        values = {"grid_w": -1200.0, "grid_l1_v": volts, "grid_hz": None}
        return {"device": "MTR-1", "ts": to_wire(ts), "quality": quality, "values": values}

    def inverter(ts: datetime, wh: float) -> dict[str, Any]:
        return {"device": "INV-1", "ts": to_wire(ts), "values": {"pv_w": 900.0, "pv_wh": wh}}

    readings = [
        meter(t[0], 251.5),
        inverter(t[0], 1000.0),
        meter(t[1], 999.0, quality="bad"),  # a bad reading is stored, judges no rule
        inverter(t[1], 1002.5),
        meter(t[2], 254.0),
        inverter(t[2], 1005.0),
    ]
    batch = {"v": 1, "stream_id": str(stream), "seq": 1, "readings": readings}
    pipeline.process([_message("telemetry", batch)])

    [received] = _outbox(database_url, "telemetry.received")
    samples = [(d, m, datetime.fromisoformat(ts), v) for d, m, ts, v in received["samples"]]
    # Every gauge sample (grid_w is not announced, grid_hz was unavailable); the counter
    # only as its newest value.
    assert samples == [
        ("MTR-1", "grid_l1_v", t[0], 251.5),
        ("INV-1", "pv_wh", t[2], 1005.0),
        ("MTR-1", "grid_l1_v", t[2], 254.0),
    ]
    assert received["values"] == 12  # 6 readings x 2 non-null values, the bad one's too


# -- scenario 7: killed between commit and ack ------------------------------------------
@pytest.mark.chaos
def test_a_worker_killed_after_commit_before_ack_is_redelivered_and_stored_once(
    database_url: str,
    mosquitto_url: str,
    registry: RegistryService,
    gateway: TestGateway,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("POTR_INGEST_TEST_CRASH_AFTER_COMMIT", "1")
    settings = _settings(
        database_url,
        mosquitto_url,
        ingest_workers=2,
        telemetry_maintenance_interval_s=0.2,
        telemetry_open_bucket_wait_s=0,
    )
    supervisor = IngestSupervisor(settings)
    supervisor.start()
    try:
        supervisor.wait_ready(60)
        # The store's maintenance runs beside the workers, in its own process, niced.
        pid = supervisor.maintenance_pid
        assert pid is not None
        assert pid not in supervisor.pids
        assert os.getpriority(os.PRIO_PROCESS, pid) == min(
            os.getpriority(os.PRIO_PROCESS, 0) + 10, 19
        )
        for seq in range(1, 7):
            gateway.publish("telemetry", gateway.telemetry(seq, ts_offset_s=-seq))

        def settled() -> bool:
            supervisor.watch()
            return (
                supervisor.restarts >= 1
                and _query(database_url, "SELECT watermark FROM ingest.streams") == [(6,)]
                and _query(database_url, "SELECT count(*) FROM telemetry.dirty") == [(0,)]
            )

        until_sync(settled, DEADLINE_S, "worker 0 killed, restarted, stored, maintained")
        assert gateway.wait_stored(6).upto_seq == 6
    finally:
        supervisor.stop()
    assert _query(database_url, "SELECT count(*) FROM telemetry.readings") == [(12,)]
    # Every stored reading is in a 5-minute rollup: the maintenance process made them.
    assert _query(database_url, "SELECT sum(count) FROM telemetry.rollup_5m") == [(12,)]
    dupes = (
        "SELECT count(*) FROM (SELECT 1 FROM telemetry.readings"
        " GROUP BY device_id, metric_id, ts HAVING count(*) > 1) d"
    )
    assert _query(database_url, dupes) == [(0,)]
    [received_seqs] = _query(
        database_url,
        "SELECT count(*) FROM ingest.outbox o, jsonb_array_elements(o.payload->'seqs') s"
        " WHERE o.name = 'telemetry.received'",
    )
    assert received_seqs == (6,)


# -- fuzz: random and mutated payloads -------------------------------------------------
def _mutations(rng: random.Random, n: int) -> list[tuple[str, bytes]]:
    """``n`` (kind, payload) pairs: valid telemetry/events, mutated ones, random bytes."""
    stream = uuid.uuid4()
    out: list[tuple[str, bytes]] = []
    junk: list[Any] = [
        None,
        True,
        -1,
        0,
        2**63,
        2**70,
        1e308,
        -1e-308,
        "",
        "x\u0000y",
        [],
        {},
        "NaN",
    ]
    for i in range(n):
        seq = i + 1
        ts = utc_now() - timedelta(seconds=rng.randrange(1, 86_400))
        doc: dict[str, Any] = {
            "v": 1,
            "stream_id": str(stream),
            "seq": seq,
            "readings": [
                {
                    "device": f"SN-{rng.randrange(5)}",
                    "ts": to_wire(ts),
                    "values": {"pv_w": rng.uniform(0, 5000), "pv_hz": 50.0, "pv_va": None},
                }
            ],
        }
        kind = "telemetry"
        roll = rng.random()
        if roll < 0.1:
            kind = "event"
            doc = {"v": 1, "stream_id": str(stream), "seq": seq, "ts": to_wire(ts), "event": "x"}
        if roll < 0.35:
            out.append((kind, orjson.dumps(doc)))  # valid
            continue
        if roll < 0.45:
            out.append((kind, bytes(rng.randrange(256) for _ in range(rng.randrange(40)))))
            continue
        raw = orjson.dumps(doc)
        if roll < 0.55:  # byte-level damage
            cut = bytearray(raw)
            for _ in range(rng.randrange(1, 4)):
                cut[rng.randrange(len(cut))] = rng.randrange(256)
            out.append((kind, bytes(cut)))
            continue
        if roll < 0.6:
            out.append((kind, raw[: rng.randrange(len(raw))]))
            continue
        # structural damage: replace / drop / add one field somewhere
        target: dict[str, Any] = doc
        if kind == "telemetry" and rng.random() < 0.6:
            target = doc["readings"][0]
            if rng.random() < 0.5:
                target = target["values"]
        key = rng.choice([*target.keys(), "extra", "pv_bogus_w"])
        op = rng.random()
        if op < 0.3:
            target.pop(key, None)
        elif op < 0.4 and kind == "telemetry":
            doc["readings"][0]["ts"] = to_wire(utc_now() + timedelta(hours=rng.choice([1, 2])))
        else:
            target[key] = rng.choice(junk)
        out.append((kind, json.dumps(doc).encode()))  # stdlib: integers beyond 64 bits too
    return out


def test_fuzzed_payloads_never_crash_ingest_and_each_is_stored_or_dead_lettered(
    database_url: str, registry: RegistryService
) -> None:
    # Every dead letter stored, every device keyed: the rate limit and the device cap
    # are tested on their own (test_ingest_checks.py).
    unlimited = 10**9
    pool = create_pool(database_url, name="test-fuzz")
    pipeline = IngestPipeline(
        pool,
        TelemetryStore(pool),
        limits=IngestLimits(
            max_new_devices_per_day=unlimited,
            dead_letter_rate=LimiterConfig(unlimited, unlimited, unlimited, unlimited),
        ),
    )
    try:
        _fuzz(pipeline, database_url)
    finally:
        pool.close()


def _fuzz(pipeline: IngestPipeline, database_url: str) -> None:
    count = 10_000 if os.environ.get("POTR_CHAOS_FULL") == "1" else 2_000
    payloads = _mutations(random.Random(6), count)
    now = utc_now()
    verdicts = [validate(topic("au", GW, k), p, now=now) for k, p in payloads]
    for i in range(0, len(payloads), 200):
        pipeline.process([_message_raw(k, p) for k, p in payloads[i : i + 200]])  # never raises
    bad = {
        (k, p)
        for (k, p), v in zip(payloads, verdicts, strict=True)
        if isinstance(v, Rejected) or v.quarantine_reason is not None
    }
    keys = {
        (r.device, name, r.ts)
        for v in verdicts
        if isinstance(v, Accepted)
        for r in v.readings
        for name, value in r.values.items()
        if value is not None
    }
    assert len(bad) > count // 3
    [(dead,)] = _query(database_url, "SELECT count(*) FROM ingest.dead_letters")
    assert dead == len(bad)
    [(stored,)] = _query(database_url, "SELECT count(*) FROM telemetry.readings")
    assert stored == len(keys)
    future = "SELECT count(*) FROM telemetry.readings WHERE ts > now() + interval '5 minutes'"
    assert _query(database_url, future) == [(0,)]  # scenario 9, cloud half


def _message_raw(kind: str, payload: bytes) -> InboundMessage:
    return InboundMessage(topic("au", GW, kind), payload, 1, 1, utc_now())
