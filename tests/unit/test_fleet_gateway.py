"""The virtual gateway's pure core: seqs, window, PUBACK, ``stored``, resends, pacing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import orjson
import pytest

from contracts.messages import StoredMsg, TelemetryBatch
from contracts.timeutil import utc_now
from contracts.topics import Region
from simulators.fleet.gateway import VirtualGateway
from simulators.fleet.spec import FleetSpec, plan
from simulators.fleet.stats import WorkerStats

T0 = datetime(2026, 1, 15, 0, 0, tzinfo=UTC)


def gateway(**spec: object) -> VirtualGateway:
    s = FleetSpec.model_validate(
        {"count": 1, "cadence_s": 300, "speed": 60, "send_rate": 1000, **spec}
    )
    return VirtualGateway(
        plan=plan(s)[0],
        spec=s,
        stream_id=uuid.uuid4(),
        boot_id="b",
        sim_first=T0,
        stats=WorkerStats(gateways=1),
    )


def stored(gw: VirtualGateway, upto: int) -> StoredMsg:
    return StoredMsg(stream_id=gw.stream_id, upto_seq=upto, ts=utc_now())


def test_batches_take_consecutive_seqs_of_one_stream_and_validate() -> None:
    gw = gateway(samples_per_batch=3)
    assert [gw.produce(), gw.produce()] == [1, 2]
    batch = TelemetryBatch.model_validate(orjson.loads(gw.buffer[2].payload))
    assert batch.stream_id == gw.stream_id
    assert batch.seq == 2
    assert len(batch.readings) == 6  # 3 samples x inverter + meter
    # the second batch's samples follow the first's on the 100 s grid
    assert batch.readings[0].ts == T0 + (batch.readings[0].ts - T0)
    assert (batch.readings[-1].ts - T0).total_seconds() == 600


def test_nothing_is_sent_before_the_connection_is_up() -> None:
    gw = gateway()
    gw.produce()
    assert gw.next_send(0.0) is None
    gw.on_connected()
    p = gw.next_send(0.0)
    assert p is not None
    assert p.seq == 1
    assert p.topic.endswith("/telemetry")


def test_window_bounds_publishes_in_flight() -> None:
    gw = gateway(max_inflight=2)
    gw.on_connected()
    for _ in range(4):
        gw.produce()
    sent = [gw.next_send(0.0), gw.next_send(0.0), gw.next_send(0.0)]
    assert [p.seq if p else None for p in sent] == [1, 2, None]
    gw.on_puback(1, 0.01, 0.0)
    nxt = gw.next_send(0.02)
    assert nxt is not None
    assert nxt.seq == 3


def test_stored_watermark_releases_covered_batches_only() -> None:
    gw = gateway()
    gw.on_connected()
    for _ in range(3):
        gw.produce()
    for seq in (1, 2, 3):
        assert gw.next_send(0.0) is not None
        gw.on_puback(seq, 0.001, 0.0)
    assert gw.on_stored(stored(gw, 2), 0.5) == 2
    assert sorted(gw.buffer) == [3]
    assert gw.stats.stored == 2
    assert gw.stats.stored_latency.n == 2


def test_stored_for_another_stream_is_ignored() -> None:
    gw = gateway()
    gw.produce()
    other = StoredMsg(stream_id=uuid.uuid4(), upto_seq=10, ts=utc_now())
    assert gw.on_stored(other, 0.0) == 0
    assert list(gw.buffer) == [1]


def test_acked_but_unstored_batches_are_resent_after_the_timeout() -> None:
    gw = gateway(stored_timeout_s=10)
    gw.on_connected()
    gw.produce()
    gw.next_send(0.0)
    gw.on_puback(1, 1.0, 0.0)
    assert gw.requeue_stale(5.0) == 0
    assert gw.requeue_stale(11.0) == 1
    again = gw.next_send(11.0)
    assert again is not None
    assert again.seq == 1
    assert gw.stats.sent == 1
    assert gw.stats.resends == 1


def test_a_lost_link_requeues_what_was_in_flight_oldest_first() -> None:
    gw = gateway()
    gw.on_connected()
    for _ in range(3):
        gw.produce()
    gw.next_send(0.0)
    gw.next_send(0.0)
    gw.on_disconnected()
    gw.on_connected()
    seqs = [p.seq for p in (gw.next_send(1.0), gw.next_send(1.0), gw.next_send(1.0)) if p]
    assert seqs == [1, 2, 3]


def test_batches_made_offline_count_as_backfill_when_sent() -> None:
    gw = gateway()
    gw.produce()
    gw.on_connected()
    gw.produce()
    gw.next_send(0.0)
    gw.next_send(0.0)
    assert gw.stats.backfilled == 1


def test_token_bucket_paces_a_backlog() -> None:
    gw = gateway(send_rate=2, max_inflight=100)
    gw.on_connected()
    for _ in range(10):
        gw.produce()
    now = 100.0
    first = [gw.next_send(now) for _ in range(5)]
    assert sum(p is not None for p in first) == 2  # burst of 2
    wake = gw.wake_at()
    assert wake == pytest.approx(now + 0.5)
    assert gw.next_send(wake) is not None


def test_without_stored_a_batch_is_forgotten_at_its_puback() -> None:
    gw = gateway(expect_stored=False)
    gw.on_connected()
    gw.produce()
    gw.next_send(0.0)
    gw.on_puback(1, 0.001, 0.0)
    assert gw.buffer == {}
    assert gw.settled()


def test_birth_lists_both_devices_and_state_is_retained() -> None:
    gw = gateway(regions={Region.US: 1.0})
    birth = orjson.loads(gw.birth().payload)
    assert birth["stream_id"] == str(gw.stream_id)
    assert [d["device"] for d in birth["devices"]] == [gw.ids.inverter, gw.ids.meter]
    state = gw.state(False)
    assert state.retain
    assert state.topic == f"potr/v1/us/{gw.plan.gateway_id}/state"
