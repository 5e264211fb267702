"""Gateway events through a real ingest worker (private Mosquitto, fresh PostgreSQL),
mapped by their type in :mod:`contracts.events`:

* ``data_dropped`` in the shape agents in the field send (the buffer's and the
  poller's) and in the canonical one the agent now builds: every one is stored, and the
  seqs each names are accounted for, so the ``stored`` watermark moves past them;
* ``device_asleep`` / ``device_faulty`` / ``device_reachable`` become the device's status
  in ingest and are announced once each as ``device.asleep`` / ``device.faulty`` /
  ``device.online`` — asleep is not ``device.offline``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from cloud.bootstrap import create_ingest_worker
from cloud.ingest import IngestWorker
from cloud.registry import RegistryService
from contracts.events import EventType, GatewayEvent
from contracts.timeutil import to_wire, utc_now
from edge_agent.buffer import Dropped
from tests.integration.test_cloud_ingest import (
    DEADLINE_S,
    TestGateway,
    _query,
    _settings,
    gateway,
    registry,
)
from tests.integration.test_ingest_scale import _birth, _outbox
from tests.waiting import until_sync

pytestmark = pytest.mark.integration
__all__ = ["gateway", "registry"]  # fixtures used here

DEVICE = "SN-INV-1"


@pytest.fixture
def worker(
    database_url: str, mosquitto_url: str, registry: RegistryService
) -> Iterator[IngestWorker]:
    w = create_ingest_worker(_settings(database_url, mosquitto_url, offline_check_interval_s=0.1))
    w.start()
    yield w
    w.stop()


def _event(gateway: TestGateway, seq: int, name: str, **fields: Any) -> dict[str, Any]:
    return {
        "v": 1,
        "stream_id": str(gateway.stream_id),
        "seq": seq,
        "ts": to_wire(utc_now()),
        "event": name,
        **fields,
    }


def test_every_data_dropped_shape_is_stored_and_accounts_for_its_seqs(
    worker: IngestWorker, gateway: TestGateway, database_url: str
) -> None:
    # Seqs 2-3 and 6 were dropped at the gateway; 5, 8 and 9 are its reports.
    for seq in (1, 4, 7):
        gateway.publish("telemetry", gateway.telemetry(seq, pv_w=float(seq)))
    assert gateway.wait_stored(1).upto_seq == 1
    old_buffer_shape = {
        "reason": "buffer full",
        "seq_ranges": [[2, 3]],
        "batches": 2,
        "bytes": 800,
        "from": None,
        "to": None,
    }
    gateway.publish(
        "event", _event(gateway, 5, "data_dropped", severity="warning", detail=old_buffer_shape)
    )
    assert gateway.wait_stored(5).upto_seq == 5

    # What today's agent sends: built from the buffer's record through the model.
    dropped = Dropped("disk full")
    dropped.add(6, 400, ("2026-01-01T00:00:00.000Z", "2026-01-01T00:00:01.000Z"))
    canonical = GatewayEvent(type=EventType.DATA_DROPPED, detail=dropped.detail())
    gateway.publish("event", canonical.message(gateway.stream_id, 8, utc_now()).to_json())
    old_poller_shape = {
        "reason": "reading queue full",
        "from": to_wire(utc_now()),
        "to": to_wire(utc_now()),
        "readings": 1,
    }
    gateway.publish(
        "event",
        _event(
            gateway, 9, "data_dropped", severity="warning", device=DEVICE, detail=old_poller_shape
        ),
    )
    assert gateway.wait_stored(9).upto_seq == 9

    assert _query(database_url, "SELECT count(*) FROM ingest.gaps WHERE closed_at IS NULL") == [
        (0,)
    ]
    assert _query(database_url, "SELECT high_seq FROM ingest.streams") == [(9,)]
    rows = _query(database_url, "SELECT seq, event FROM ingest.events ORDER BY seq")
    assert rows == [(5, "data_dropped"), (8, "data_dropped"), (9, "data_dropped")]
    assert len(_outbox(database_url, "gateway.data_dropped")) == 3


def test_asleep_and_faulty_devices_are_announced_as_such_not_offline(
    worker: IngestWorker, gateway: TestGateway, database_url: str
) -> None:
    gateway.publish("birth", _birth(gateway.stream_id, poll_s=60, publish_s=60))
    gateway.publish(
        "state", {"v": 1, "online": True, "boot_id": "boot-1", "ts": to_wire(utc_now())}
    )
    gateway.publish("telemetry", gateway.telemetry(1))
    until_sync(
        lambda: len(_outbox(database_url, "gateway.online")) == 1, DEADLINE_S, "gateway.online"
    )
    detail = {"endpoint": "e", "unit_id": 1}
    steps = [
        # Presumed online since birth, nothing announced yet: no previous.
        ("device_asleep", "device.asleep", "asleep", None),
        ("device_faulty", "device.faulty", "faulty", "asleep"),
        ("device_reachable", "device.online", "online", "faulty"),
    ]
    for seq, (event, announced, status, previous) in enumerate(steps, start=2):
        gateway.publish(
            "event", _event(gateway, seq, event, severity="info", device=DEVICE, detail=detail)
        )
        until_sync(
            lambda name=announced: len(_outbox(database_url, name)) == 1, DEADLINE_S, announced
        )
        [payload] = _outbox(database_url, announced)
        assert (payload["device"], payload["status"], payload["previous"]) == (
            DEVICE,
            status,
            previous,
        )
        assert _query(database_url, "SELECT status FROM ingest.device_reports") == [(status,)]
    assert gateway.wait_stored(4).upto_seq == 4
    assert _outbox(database_url, "device.offline") == []
    assert _query(
        database_url, "SELECT key, online, status FROM ingest.presence WHERE kind = 'device'"
    ) == [(f"{gateway.gateway_id}/{DEVICE}", True, "online")]


def test_a_device_born_asleep_is_announced_asleep(
    worker: IngestWorker, gateway: TestGateway, database_url: str
) -> None:
    gateway.publish("birth", _birth(gateway.stream_id, poll_s=60, publish_s=60, status="asleep"))
    gateway.publish(
        "state", {"v": 1, "online": True, "boot_id": "boot-1", "ts": to_wire(utc_now())}
    )
    until_sync(
        lambda: len(_outbox(database_url, "device.asleep")) == 1, DEADLINE_S, "device.asleep"
    )
    [payload] = _outbox(database_url, "device.asleep")
    assert (payload["status"], payload["previous"]) == ("asleep", None)
    assert _outbox(database_url, "device.offline") == []
