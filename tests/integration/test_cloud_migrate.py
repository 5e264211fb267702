"""Migrations against the real PostgreSQL: in order, once, safe concurrently."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest

from cloud.migrate import MigrationError, discover, migrate, schema_backend
from tests.integration.harness import migrations_before

pytestmark = pytest.mark.integration


def test_migrate_applies_everything_then_nothing(database_url: str) -> None:
    first = migrate(database_url)
    # No timescaledb on this server: the plain backend's variants.
    assert first == [m.name for m in discover() if m.variant in (None, "plain")]
    assert migrate(database_url) == []
    with psycopg.connect(database_url) as conn:
        schemas = {
            r[0]
            for r in conn.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname IN "
                "('registry', 'ingest', 'telemetry')"
            )
        }
        tracked = conn.execute("SELECT count(*) FROM ingest.schema_migrations").fetchone()
    assert schemas == {"registry", "ingest", "telemetry"}
    assert tracked == (sum(m.schema == "ingest" for m in discover()),)


def test_concurrent_migrations_apply_each_file_once(database_url: str) -> None:
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: migrate(database_url), range(4)))
    applied = [name for r in results for name in r]
    assert sorted(applied) == sorted(m.name for m in discover() if m.variant != "timescale")


def test_dead_letters_stored_before_dedupe_are_folded_into_one_row(
    database_url: str, tmp_path: Path
) -> None:
    migrate(database_url, migrations_before(tmp_path / "cloud", {"ingest": 3}))
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO ingest.dead_letters (received_at, topic, payload, reason) VALUES"
            " ('2026-01-01T00:00Z', 't/a', 'x', 'first'),"
            " ('2026-01-03T00:00Z', 't/a', 'x', 'last'),"
            " ('2026-01-02T00:00Z', 't/a', 'x', 'middle'),"
            " ('2026-01-01T00:00Z', 't/b', 'x', 'other')"
        )
    assert migrate(database_url)[0] == "ingest/003_dead_letter_dedupe.sql"  # then later ones
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT topic, reason, repeats, received_at::date::text, last_received_at::date::text"
            " FROM ingest.dead_letters ORDER BY id"
        ).fetchall()
    assert rows == [
        ("t/a", "middle", 2, "2026-01-01", "2026-01-03"),
        ("t/b", "other", 0, "2026-01-01", "2026-01-01"),
    ]


# -- backend variants -------------------------------------------------------------------


def test_a_telemetry_schema_from_before_variants_stays_plain(
    database_url: str, tmp_path: Path
) -> None:
    # As a database migrated before the variants existed: 001 recorded by its old name.
    root = migrations_before(tmp_path / "cloud", {"telemetry": 2})
    plain = root / "telemetry" / "schema" / "001_readings.plain.sql"
    plain.rename(plain.with_name("001_readings.sql"))
    (root / "telemetry" / "schema" / "001_readings.timescale.sql").unlink()
    migrate(database_url, root)
    with pytest.raises(MigrationError, match="uses the plain backend"):
        migrate(database_url, backend="timescale")
    later = migrate(database_url)
    assert "telemetry/001_readings.plain.sql" not in later  # 001 counts as applied
    assert "telemetry/002_rollups.plain.sql" in later
    with psycopg.connect(database_url) as conn:
        assert schema_backend(conn, "telemetry") == "plain"


def test_asking_for_timescale_where_the_server_has_none_is_refused(database_url: str) -> None:
    with pytest.raises(MigrationError, match="no timescaledb extension"):
        migrate(database_url, backend="timescale")


def test_a_step_with_one_backend_variant_only_is_refused(tmp_path: Path) -> None:
    schema = tmp_path / "svc" / "schema"
    schema.mkdir(parents=True)
    (schema / "001_a.sql").write_text("SELECT 1;")
    (schema / "002_b.plain.sql").write_text("SELECT 1;")
    with pytest.raises(ValueError, match="one file, or one per backend"):
        discover(tmp_path)
