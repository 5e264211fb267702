"""The migration that gives ingest its device keys (ingest/008, registry/003), applied to a
database that already holds keys the registry handed out: every key survives, and new
keys start above them."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from cloud.ingest.repository import allocate_device_keys
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
        # The next key is above them and says its region (au: n * 4 + 1; 5 is the first
        # such number above 3).
        assert allocate_device_keys(conn, {(GW, "SN-D")}) == {(GW, "SN-D"): 5}
        # Only the allocation gives keys: the column has no default any more.
        with pytest.raises(psycopg.errors.NotNullViolation), conn.transaction():
            conn.execute(
                "INSERT INTO ingest.device_keys (gateway_id, local_id) VALUES (%s, 'SN-X')",
                (GW,),
            )
        # The registry no longer allocates: an id must come from ingest.
        with pytest.raises(psycopg.errors.NotNullViolation):
            conn.execute(
                "INSERT INTO registry.devices (gateway_id, local_id) VALUES (%s, 'SN-E')", (GW,)
            )


def test_a_fresh_databases_keys_say_their_gateways_region(database_url: str) -> None:
    migrate(database_url)
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO ingest.gateways (gateway_id, region, time_zone, updated_at) VALUES"
            " ('gw-au-1', 'au', 'Australia/Sydney', now()), ('gw-es-1', 'es', 'Europe/Madrid',"
            " now()), ('gw-us-1', 'us', 'America/Denver', now())"
        )
        keys = allocate_device_keys(
            conn, {("gw-au-1", "SN-A"), ("gw-es-1", "SN-A"), ("gw-us-1", "SN-A")}
        )
    # One sequence, n = 1, 2, 3 in (gateway, local id) order; key = n * 4 + code with
    # au 1, us 2, es 3.
    assert keys == {("gw-au-1", "SN-A"): 5, ("gw-es-1", "SN-A"): 11, ("gw-us-1", "SN-A"): 14}
