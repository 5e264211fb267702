"""What the cloud checks that the broker cannot (issue 12, point 4), against the real
PostgreSQL (and Mosquitto where acknowledgements matter): a disabled gateway is refused,
junk cannot fill the dead letters, messages are bounded, a forged batch cannot create
hundreds of devices, no partition is created outside the window, and a dead letter keeps
a bounded prefix of its payload.

Why: an attacker "stored forged telemetry for another gateway (and a 987,654 W reading
on a real inverter), created 500 devices with one batch".
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest

from cloud.adapters.mqtt import InboundMessage
from cloud.adapters.postgres import Connection, ConnectionPool, create_pool
from cloud.bootstrap import create_ingest_worker
from cloud.ingest.deadletters import LimiterConfig
from cloud.ingest.limits import IngestLimits
from cloud.ingest.pipeline import IngestPipeline
from cloud.ingest.repository import allocate_device_keys, lock_new_devices
from cloud.ingest.validate import Bounds
from cloud.migrate import migrate
from cloud.registry import GatewayIn, NotFoundError, RegistryService
from cloud.telemetry import TelemetryStore
from contracts.timeutil import to_wire, utc_now
from contracts.topics import topic
from tests.integration.harness import migrations_before
from tests.integration.registry_events import deliver_gateway_events
from tests.integration.test_cloud_ingest import (
    DEADLINE_S,
    GW,
    TestGateway,
    _query,
    _settings,
    gateway,
    registry,
)
from tests.integration.test_ingest_gateways_by_event import _publish, _registry_events
from tests.waiting import until_sync

pytestmark = [pytest.mark.integration, pytest.mark.security]
__all__ = ["gateway", "registry"]  # fixtures used here

Pool = ConnectionPool[Connection[Any]]


@pytest.fixture
def pool(database_url: str, registry: RegistryService) -> Iterator[Pool]:
    """A pool on a database where the registry's ``GW`` (region au) is known to ingest."""
    pool = create_pool(database_url, min_size=1, max_size=4, name="test-checks")
    yield pool
    pool.close()


def _pipeline(pool: Pool, **limits: Any) -> IngestPipeline:
    """A pipeline that reads the gateway table for every batch (no cache)."""
    return IngestPipeline(
        pool, TelemetryStore(pool), limits=IngestLimits(gateway_cache_s=0, **limits)
    )


def _message(doc: dict[str, Any] | bytes, kind: str = "telemetry", gw: str = GW) -> InboundMessage:
    raw = doc if isinstance(doc, bytes) else orjson.dumps(doc)
    return InboundMessage(topic("au", gw, kind), raw, 1, 1, utc_now())


def _telemetry(
    stream: uuid.UUID, seq: int, devices: list[str], ts: datetime | None = None
) -> dict[str, Any]:
    at = to_wire(ts or utc_now())
    return {
        "v": 1,
        "stream_id": str(stream),
        "seq": seq,
        "readings": [{"device": d, "ts": at, "values": {"pv_w": 1.0}} for d in devices],
    }


def _birth(stream: uuid.UUID, devices: list[str]) -> dict[str, Any]:
    return {
        "v": 1,
        "gateway_id": GW,
        "region": "au",
        "agent_version": "test",
        "stream_id": str(stream),
        "boot_id": "boot-1",
        "poll_interval_s": 60,
        "publish_interval_s": 60,
        "devices": [
            {"device": d, "endpoint": "e", "unit_id": 1, "models": [1], "status": "online"}
            for d in devices
        ],
        "ts": to_wire(utc_now()),
    }


def _reasons(database_url: str) -> list[str]:
    return [
        r[0] for r in _query(database_url, "SELECT reason FROM ingest.dead_letters ORDER BY id")
    ]


def _count(database_url: str, table: str) -> int:
    [(n,)] = _query(database_url, f"SELECT count(*) FROM {table}")
    return int(n)


# -- enabled / disabled gateways ------------------------------------------------------------
def test_a_disabled_gateway_is_refused_once_its_update_arrives_and_accepted_again_after(
    pool: Pool, registry: RegistryService, database_url: str
) -> None:
    pipeline = _pipeline(pool)
    stream = uuid.uuid4()
    assert pipeline.process([_message(_telemetry(stream, 1, ["SN-1"]))]).readings_added == 1

    revoked = registry.set_gateway_enabled(GW, False)
    assert revoked.enabled is False
    assert registry.get_gateway(GW) == revoked
    assert deliver_gateway_events(pool) == 1
    assert _query(database_url, "SELECT enabled FROM ingest.gateways") == [(False,)]

    refused = pipeline.process([_message(_telemetry(stream, 2, ["SN-1"]))])
    assert (refused.readings_added, refused.dead_letters, refused.stored) == (0, 1, [])
    assert _reasons(database_url) == [f"gateway {GW!r} is disabled (revoked)"]
    # Not counted in its stream: a revoked gateway advances nothing.
    assert _query(database_url, "SELECT high_seq FROM ingest.streams") == [(1,)]

    registry.set_gateway_enabled(GW, True)
    assert deliver_gateway_events(pool) == 1
    again = pipeline.process([_message(_telemetry(stream, 2, ["SN-1"]))])
    assert again.readings_added == 1
    assert [n.upto_seq for n in again.stored] == [2]


async def test_an_older_enabled_event_never_overrides_a_newer_disable(
    pool: Pool, registry: RegistryService, database_url: str
) -> None:
    [site] = registry.list_sites()
    registry.add_gateway(GatewayIn(id="gw-late-1", site_id=site.id))
    registry.set_gateway_enabled("gw-late-1", False)
    registered, updated = _registry_events(database_url)[-2:]
    assert (registered.name, registered.payload["enabled"]) == ("gateway.registered", True)
    assert (updated.name, updated.payload["enabled"]) == ("gateway.updated", False)

    await _publish(pool, [updated], [registered])  # out of order (two queues)
    enabled = "SELECT enabled FROM ingest.gateways WHERE gateway_id = 'gw-late-1'"
    assert _query(database_url, enabled) == [(False,)]


def test_disabling_a_gateway_never_registered_is_refused(registry: RegistryService) -> None:
    with pytest.raises(NotFoundError, match="gw-nowhere"):
        registry.set_gateway_enabled("gw-nowhere", False)


# -- dead-letter rate limit -----------------------------------------------------------------
def test_junk_from_one_gateway_stores_a_burst_counts_the_rest_and_is_all_acked(
    database_url: str,
    mosquitto_url: str,
    registry: RegistryService,
    gateway: TestGateway,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = _settings(
        database_url,
        mosquitto_url,
        ingest_dead_letter_source_burst=5,
        ingest_dead_letters_per_source_per_min=0.001,  # no refill within the test
        ingest_dead_letter_summary_s=0.05,
    )
    junk = 30
    caplog.set_level(logging.WARNING, logger="cloud.ingest.pipeline")
    with create_ingest_worker(settings) as worker:
        for seq in range(1, junk + 1):  # each one different: no dedupe folds them
            doc = gateway.telemetry(seq)
            doc["readings"][0]["values"] = {"bogus_w": float(seq)}
            gateway.publish("telemetry", doc)
        # Every seq counted (each junk message committed and its stream advanced) …
        assert gateway.wait_stored(junk).upto_seq == junk
        until_sync(lambda: worker.stats.messages == junk, DEADLINE_S, "all acknowledged")
        until_sync(lambda: _suppressed_in_logs(caplog.messages) == junk - 5, DEADLINE_S, "summary")
    # … but only the burst stored; the rest counted.
    assert _count(database_url, "ingest.dead_letters") == 5
    assert (worker.stats.dead_letters, worker.stats.dead_letters_suppressed) == (5, 25)
    assert all("unknown metrics" in r for r in _reasons(database_url))


def _suppressed_in_logs(messages: list[str]) -> int:
    found = (re.match(r"(\d+) dead letters not stored", m) for m in messages)
    return sum(int(m.group(1)) for m in found if m)


def test_sprayed_gateway_ids_are_bounded_by_the_workers_total(
    pool: Pool, database_url: str
) -> None:
    pipeline = _pipeline(
        pool, dead_letter_rate=LimiterConfig(source_burst=5, total_burst=10, total_per_s=0.001)
    )
    batch = [_message(_telemetry(uuid.uuid4(), 1, ["SN-1"]), gw=f"gw-x{i:03d}") for i in range(60)]
    outcome = pipeline.process(batch)
    assert (outcome.dead_letters, outcome.dead_letters_suppressed) == (10, 50)
    assert _count(database_url, "ingest.dead_letters") == 10
    assert pipeline.dead_letters_suppressed == 50


# -- message bounds -------------------------------------------------------------------------
def test_oversized_messages_and_batches_are_dead_lettered_and_their_seqs_counted(
    pool: Pool, database_url: str
) -> None:
    pipeline = _pipeline(pool, bounds=Bounds(max_bytes=2_048, max_readings=3))
    stream = uuid.uuid4()
    big = orjson.dumps(_telemetry(stream, 1, [f"SN-{i}" for i in range(30)]))
    assert len(big) > 2_048
    outcome = pipeline.process(
        [
            _message(big),
            _message(_telemetry(stream, 2, ["SN-1", "SN-2", "SN-3", "SN-4"])),
            _message(_telemetry(stream, 3, ["SN-1", "SN-2", "SN-3"])),  # at the limit
        ]
    )
    assert outcome.readings_added == 3
    assert _reasons(database_url) == [
        f"message of {len(big)} bytes exceeds the limit of 2048 bytes",
        "4 readings exceed the limit of 3 per message",
    ]
    # The gateway is not stuck: its watermark passes both refusals.
    assert [n.upto_seq for n in outcome.stored] == [3]


# -- new devices ------------------------------------------------------------------------------
def test_a_forged_batch_naming_500_devices_creates_at_most_the_cap(
    pool: Pool, database_url: str
) -> None:
    pipeline = _pipeline(pool)  # the default cap: 64 new devices per gateway and UTC day
    devices = [f"F-{i:03d}" for i in range(500)]
    outcome = pipeline.process([_message(_telemetry(uuid.uuid4(), 1, devices))])

    keyed = _query(database_url, "SELECT local_id FROM ingest.device_keys ORDER BY local_id")
    assert [k for (k,) in keyed] == devices[:64]  # by local id: F-000 … F-063
    assert outcome.readings_added == 64
    assert _count(database_url, "ingest.outbox WHERE name = 'device.discovered'") == 64
    assert _reasons(database_url) == [
        f"436 of 500 readings name devices over gateway {GW!r}'s limit of 64 new devices "
        "per UTC day (first: device 'F-064')"
    ]
    assert [n.upto_seq for n in outcome.stored] == [1]  # the batch's seq still counts


def test_a_birth_gets_keys_for_the_cap_and_later_new_devices_wait_for_another_day(
    pool: Pool, database_url: str
) -> None:
    pipeline = _pipeline(pool, max_new_devices_per_day=10)
    stream = uuid.uuid4()
    announced = [f"B-{i:02d}" for i in range(25)]
    pipeline.process([_message(_birth(stream, announced), kind="birth")])
    [birth] = _query(database_url, "SELECT payload FROM ingest.outbox WHERE name = 'gateway.birth'")
    assert [d["device"] for d in birth[0]["devices"]] == announced[:10]
    assert sorted(birth[0]["device_ids"]) == announced[:10]
    assert _count(database_url, "ingest.device_reports") == 10
    assert _reasons(database_url)[0].startswith(
        f"15 of 25 devices of the birth are over gateway {GW!r}'s limit of 10 new devices"
    )

    # The day's allowance is spent: a known device's reading is stored, new ones are not.
    more = pipeline.process([_message(_telemetry(stream, 1, ["B-00", "N-1", "N-2"]))])
    assert more.readings_added == 1
    assert _reasons(database_url)[1].startswith("2 of 3 readings name devices over")

    # Keys allocated on an earlier day do not count against today.
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE ingest.device_keys SET created_at = now() - interval '1 day'")
    later = pipeline.process([_message(_telemetry(stream, 2, ["N-1", "N-2"]))])
    assert later.readings_added == 2
    assert _count(database_url, "ingest.device_keys") == 12


def test_a_worker_counts_the_days_devices_only_once_another_workers_are_committed(
    pool: Pool, database_url: str
) -> None:
    """Another writer holds the gateway's new-device lock with 60 keys uncommitted: the
    pipeline waits, then counts them, so the cap holds across workers."""
    pipeline = _pipeline(pool)  # cap 64
    outcome: list[int] = []
    with psycopg.connect(database_url) as other:
        lock_new_devices(other, [GW])
        allocate_device_keys(other, {(GW, f"O-{i}") for i in range(1, 61)})
        thread = threading.Thread(
            target=lambda: outcome.append(
                pipeline.process(
                    [_message(_telemetry(uuid.uuid4(), 1, [f"N-{i}" for i in range(10)]))]
                ).readings_added
            )
        )
        thread.start()
        until_sync(
            lambda: (
                _query(
                    database_url,
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
                )
                == [(1,)]
            ),
            DEADLINE_S,
            "the batch to wait for the gateway's lock",
        )
        other.commit()
        thread.join(DEADLINE_S)
    assert outcome == [4]  # 64 - 60
    assert _count(database_url, "ingest.device_keys") == 64


# -- the partition window ----------------------------------------------------------------------
def _partition_exists(database_url: str, day: date) -> bool:
    name = f"readings_{day:%Y%m%d}"
    return _query(database_url, "SELECT to_regclass(%s) IS NOT NULL", (f"telemetry.{name}",)) == [
        (True,)
    ]


def test_no_partition_is_created_for_readings_before_the_window(
    pool: Pool, database_url: str
) -> None:
    now = utc_now()
    # The window's first day is today (UTC) minus 400 days; the day before is outside.
    first_day = now.date() - timedelta(days=400)
    opens = datetime.combine(first_day, datetime.min.time(), UTC)
    too_old = opens - timedelta(seconds=1)
    stream = uuid.uuid4()
    outcome = _pipeline(pool).process(
        [
            _message(_telemetry(stream, 1, ["SN-1"], too_old)),
            _message(_telemetry(stream, 2, ["SN-1"], opens)),
        ]
    )
    assert outcome.readings_added == 1
    assert not _partition_exists(database_url, too_old.date())
    assert _partition_exists(database_url, first_day)
    assert _count(database_url, "telemetry.readings_default") == 0
    [reason] = _reasons(database_url)
    assert f"1 of 1 readings older than 400 days (limit {to_wire(opens)}" in reason
    assert [n.upto_seq for n in outcome.stored] == [2]


def test_the_store_never_creates_a_partition_outside_its_window(
    pool: Pool, database_url: str
) -> None:
    store = TelemetryStore(pool, past_days=10, future_days=2)
    today = date(2030, 6, 15)
    created = store.ensure_partitions(
        [date(2030, 6, 4), date(2030, 6, 5), date(2030, 6, 17), date(2030, 6, 18)], today=today
    )
    assert created == [date(2030, 6, 5), date(2030, 6, 17)]
    assert not _partition_exists(database_url, date(2030, 6, 4))
    assert not _partition_exists(database_url, date(2030, 6, 18))


# -- a dead letter's payload --------------------------------------------------------------------
def test_a_dead_letter_keeps_a_bounded_prefix_its_size_and_hash_and_still_dedupes(
    pool: Pool, database_url: str
) -> None:
    junk = bytes(range(256)) * 400  # 102,400 bytes, not JSON
    pipeline = _pipeline(pool)
    pipeline.process([_message(junk)])
    pipeline.process([_message(junk)])  # the same again: one row, counted
    [row] = _query(
        database_url,
        "SELECT payload, payload_size, repeats, payload_sha256 = sha256(%s),"
        " digest = sha256(convert_to(topic, 'UTF8') || '\\x00'::bytea || %s)"
        " FROM ingest.dead_letters",
        (junk, junk),
    )
    assert row == (junk[:4_096], 102_400, 1, True, True)


def test_the_migration_cuts_stored_payloads_to_the_prefix(
    database_url: str, tmp_path: Path
) -> None:
    migrate(database_url, migrations_before(tmp_path / "cloud", {"ingest": 12}))
    whole = b"x" * 10_000
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO ingest.dead_letters (received_at, topic, payload, reason, digest,"
            " last_received_at) VALUES (now(), 't', %s, 'old', 'd', now())",
            (whole,),
        )
    assert migrate(database_url)[0] == "ingest/012_dead_letter_prefix.sql"
    [row] = _query(
        database_url,
        "SELECT length(payload), payload_size, payload_sha256 = sha256(%s)"
        " FROM ingest.dead_letters",
        (whole,),
    )
    assert row == (4_096, 10_000, True)


def test_the_registry_event_payload_carries_enabled(
    registry: RegistryService, database_url: str
) -> None:
    registry.set_gateway_enabled(GW, False)
    payloads = [e.payload for e in _registry_events(database_url)]
    assert [p["enabled"] for p in payloads] == [True, False]
