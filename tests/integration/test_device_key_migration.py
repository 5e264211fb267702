"""The migration that gives ingest its device keys (ingest/008, registry/003), applied to a
database that already holds keys the registry handed out: every key survives, and new
keys start above them."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from cloud.migrate import migrate
from tests.integration.harness import migrations_before

pytestmark = pytest.mark.integration

GW = "gw-migrate-1"
#: The migrations this test applies second, on a database with data (and all after them).
_LATER = {"ingest": 8, "registry": 3}


def test_existing_keys_are_adopted_and_new_ones_start_above(
    database_url: str, tmp_path: Path
) -> None:
    migrate(database_url, migrations_before(tmp_path / "cloud", _LATER))
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO registry.sites (id, name, region, time_zone)"
            " VALUES (1, 'Old', 'au', 'Australia/Sydney')"
        )
        conn.execute(
            "INSERT INTO registry.gateways (id, site_id, region) VALUES (%s, 1, 'au')", (GW,)
        )
        # The registry allocated three ids (its own sequence); ingest copied the first two,
        # the third's batch failed after the registry had committed it.
        for local in ("SN-A", "SN-B", "SN-C"):
            conn.execute(
                "INSERT INTO registry.devices (gateway_id, local_id) VALUES (%s, %s)", (GW, local)
            )
        conn.execute(
            "INSERT INTO ingest.device_keys (gateway_id, local_id, device_id)"
            " VALUES (%s, 'SN-A', 1), (%s, 'SN-B', 2)",
            (GW, GW),
        )

    applied = migrate(database_url)
    assert {  # and whatever came after them
        "ingest/008_device_keys_allocated_here.sql",
        "ingest/009_gateways_by_event.sql",
        "registry/003_device_ids_from_ingest.sql",
    } <= set(applied)
    with psycopg.connect(database_url) as conn:
        keys = conn.execute(
            "SELECT local_id, device_id FROM ingest.device_keys ORDER BY device_id"
        ).fetchall()
        assert keys == [("SN-A", 1), ("SN-B", 2), ("SN-C", 3)]
        [(new,)] = conn.execute(
            "INSERT INTO ingest.device_keys (gateway_id, local_id) VALUES (%s, 'SN-D')"
            " RETURNING device_id",
            (GW,),
        ).fetchall()
        assert new == 4
        # The registry no longer allocates: an id must come from ingest.
        with pytest.raises(psycopg.errors.NotNullViolation):
            conn.execute(
                "INSERT INTO registry.devices (gateway_id, local_id) VALUES (%s, 'SN-E')", (GW,)
            )


def test_a_fresh_database_starts_keys_at_one(database_url: str) -> None:
    migrate(database_url)
    with psycopg.connect(database_url) as conn:
        [(key,)] = conn.execute(
            "INSERT INTO ingest.device_keys (gateway_id, local_id) VALUES (%s, 'SN-A')"
            " RETURNING device_id",
            (GW,),
        ).fetchall()
    assert key == 1
