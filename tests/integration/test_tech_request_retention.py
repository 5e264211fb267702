"""The log of technicians' requests forgets what is older than it keeps (90 days), on
real PostgreSQL — never a request young enough to be replayed."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cloud.adapters.postgres import Connection, ConnectionPool, create_pool
from cloud.bootstrap import create_tracker
from cloud.config import ConfigSettings, write_key_file
from cloud.config import tech_repository as trepo
from contracts.messages import ConfigReq
from tests.integration.api_world import migrated_database

pytestmark = pytest.mark.integration

Pool = ConnectionPool[Connection[Any]]
NOW = datetime(2026, 12, 5, 12, tzinfo=UTC)


@pytest.fixture
def url(postgres_server_url: str) -> Iterator[str]:
    with migrated_database(postgres_server_url) as migrated:
        yield migrated


def _request(pool: Pool, received: datetime) -> uuid.UUID:
    request = ConfigReq(
        id=uuid.uuid4(),
        employee_no="E1001",
        site_id=12,
        profile="au-a-2020",
        ts=received,
        nonce=uuid.uuid4().hex,
    )
    with pool.connection() as conn:
        assert trepo.record_request(conn, request, "_tech/alice", "au", received)
    return request.id


def test_requests_older_than_90_days_are_forgotten_the_rest_kept(url: str, tmp_path: Path) -> None:
    key = tmp_path / "cloud.pem"
    write_key_file(key, demo=True)
    settings = ConfigSettings(database_url=url, signing_key_file=key)
    pool = create_pool(url, max_size=2, name="test-tech-retention")
    try:
        # 90 days before NOW is the edge: older goes, that instant and younger stay.
        old = _request(pool, NOW - timedelta(days=90, seconds=1))
        edge = _request(pool, NOW - timedelta(days=90))
        young = _request(pool, NOW - timedelta(minutes=1))
        tracker = create_tracker(settings, pool)
        assert tracker.purge_tech_requests(now=NOW) == 1
        assert tracker.purge_tech_requests(now=NOW) == 0
        with pool.connection() as conn:
            kept = {r[0] for r in conn.execute("SELECT request_id FROM config.tech_requests")}
        assert kept == {edge, young}
        assert old not in kept
    finally:
        pool.close()
