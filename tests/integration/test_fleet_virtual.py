"""Virtual fleet → private Mosquitto → real ingest → PostgreSQL: every batch the fleet
sent is stored, and the fleet's own counts equal the database's."""

from __future__ import annotations

import pytest

from potr.fleet import run_virtual_fleet
from potr.servers.mosquitto import PrivateMosquitto
from simulators.fleet import FleetSpec, Outage
from simulators.fleet.spec import parse_region_mix

pytestmark = pytest.mark.integration


def small_fleet(**overrides: object) -> FleetSpec:
    base: dict[str, object] = {
        "count": 20,
        "id_prefix": "vt",
        "regions": parse_region_mix("au=2,us=1,es=1"),
        "cadence_s": 60.0,
        "speed": 60.0,  # one batch per gateway per real second
        "duration_s": 4.0,
        "samples_per_batch": 2,
        "workers": 2,
        "stored_timeout_s": 5.0,
        "drain_timeout_s": 20.0,
        "connect_rate": 200.0,
    }
    base.update(overrides)
    return FleetSpec.model_validate(base)


async def test_every_sent_batch_is_stored_and_counts_match_the_database(
    mosquitto: PrivateMosquitto, database_url: str
) -> None:
    run = await run_virtual_fleet(small_fleet(), mqtt_url=mosquitto.url, database_url=database_url)
    s = run.summary()
    db = s["database"]
    assert s["connects"] == 20
    assert s["batches"] >= 20 * 3
    assert s["sent"] == s["acked"] == s["stored"] == s["batches"]
    assert s["unstored"] == 0
    assert db["readings"] == s["stored_values"] == s["values"]
    assert db["stored_batches"] == db["high_seq_sum"] == s["batches"]
    assert db["streams"] == 20
    assert db["open_gaps"] == 0
    assert db["dead_letters"] == 0
    assert s["latency_ms"]["publish_to_stored"]["n"] == s["stored"]
    assert s["backfilled"] == 0


async def test_an_outage_is_backfilled_without_loss(
    mosquitto: PrivateMosquitto, database_url: str
) -> None:
    spec = small_fleet(duration_s=5.0, outages=(Outage(start_s=1.0, duration_s=2.5, fraction=0.5),))
    run = await run_virtual_fleet(spec, mqtt_url=mosquitto.url, database_url=database_url)
    s = run.summary()
    db = s["database"]
    assert s["disconnects"] == 10
    assert s["connects"] == 30  # half the fleet came back
    assert s["stored"] == s["batches"]
    assert db["readings"] == s["values"]
    assert db["stored_batches"] == s["batches"]
    assert db["open_gaps"] == 0
    # Batches produced while offline went out after the link came back (2 per gateway
    # per outage second, 10 gateways, 2.5 s).
    assert s["backfilled"] >= 10 * 2
