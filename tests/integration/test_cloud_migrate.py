"""Migrations against the real PostgreSQL: in order, once, safe concurrently."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from cloud.common.migrate import discover, migrate

pytestmark = pytest.mark.integration


def test_migrate_applies_everything_then_nothing(database_url: str) -> None:
    first = migrate(database_url)
    assert first == [m.name for m in discover()]
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
    assert sorted(applied) == sorted(m.name for m in discover())
