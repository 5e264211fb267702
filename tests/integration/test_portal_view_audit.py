"""The audit of support views (issue 15) against the real PostgreSQL: the portal's own
schema (``portal.view_audit``, found by the migrations like every service's), views
recorded bounded, and read back newest first within the reader's scope only."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from psycopg.errors import CheckViolation

from cloud.adapters.postgres import Connection, ConnectionPool, create_pool
from cloud.identity import Role
from cloud.migrate import discover, migrate
from cloud.portal.audit import ViewAudit, ViewRecord
from cloud.scope import Scope
from contracts.topics import Region
from tests.integration.api_world import private_database

pytestmark = pytest.mark.integration

Pool = ConnectionPool[Connection[Any]]
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
ACC_A, ACC_B, ACC_E = ("acc_" + c * 32 for c in "abe")


class Clock:
    """One minute later at each reading."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(minutes=1)
        return self.now


@pytest.fixture(scope="module")
def migrated_pool(postgres_server_url: str) -> Iterator[Pool]:
    with private_database(postgres_server_url) as url:
        assert "portal/001_portal.sql" in migrate(url, schemas={"portal"})
        pool = create_pool(url, max_size=2, name="test-view-audit")
        try:
            yield pool
        finally:
            pool.close()


@pytest.fixture
def pool(migrated_pool: Pool) -> Pool:
    with migrated_pool.connection() as conn:
        conn.execute("TRUNCATE portal.view_audit RESTART IDENTITY")
    return migrated_pool


def _view(audit: ViewAudit, region: Region, account: str, what: str) -> ViewRecord:
    return audit.record(
        actor_subject="usr_support1",
        actor_role=Role.SUPPORT,
        region=region,
        account_id=account,
        what=what,
    )


def test_the_portal_schema_is_one_the_migrations_find() -> None:
    assert "portal/001_portal.sql" in [m.name for m in discover()]


def test_a_view_is_recorded_with_who_what_where_and_when(pool: Pool) -> None:
    audit = ViewAudit(pool, clock=Clock())
    recorded = audit.record(
        actor_subject="usr_support1",
        actor_role="support",
        region=Region.AU,
        account_id=ACC_A,
        site_id=5,
        what="  site 5: live power  ",
        address="203.0.113.7",
    )
    assert recorded == ViewRecord(
        id=1,
        at=T0 + timedelta(minutes=1),
        actor_subject="usr_support1",
        actor_role=Role.SUPPORT,
        region=Region.AU,
        account_id=ACC_A,
        site_id=5,
        what="site 5: live power",
        address="203.0.113.7",
    )
    assert audit.recent(Scope.everything()) == [recorded]


def test_what_and_address_are_cut_to_their_bounds(pool: Pool) -> None:
    recorded = ViewAudit(pool).record(
        actor_subject="usr_support1",
        actor_role=Role.SUPPORT,
        region=Region.AU,
        account_id=ACC_A,
        what="w" * 500,
        address="a" * 100,
    )
    assert recorded.what == "w" * 199 + "…"
    assert recorded.address == "a" * 63 + "…"
    assert recorded.site_id is None


def test_a_view_that_names_nothing_valid_is_refused(pool: Pool) -> None:
    audit = ViewAudit(pool)
    fields: dict[str, Any] = {
        "actor_subject": "usr_support1",
        "actor_role": Role.SUPPORT,
        "region": Region.AU,
        "account_id": ACC_A,
        "what": "account page",
    }
    for bad, why in (
        ({"what": "   "}, "what"),
        ({"account_id": "acc_x"}, "account_id"),
        ({"actor_role": "root"}, "'root' is not a valid Role"),
        ({"actor_subject": ""}, "actor_subject"),
    ):
        with pytest.raises(ValueError, match=why):
            audit.record(**(fields | bad))
    assert audit.recent(Scope.everything()) == []
    with pool.connection() as conn, pytest.raises(CheckViolation):  # nor around the code
        conn.execute(
            "INSERT INTO portal.view_audit (actor_subject, actor_role, region, account_id, what)"
            " VALUES ('usr_x', 'support', 'fr', %s, 'page')",
            (ACC_A,),
        )


def test_recent_views_are_newest_first_within_the_readers_scope(pool: Pool) -> None:
    audit = ViewAudit(pool, clock=Clock())
    a1 = _view(audit, Region.AU, ACC_A, "account A")
    b = _view(audit, Region.AU, ACC_B, "account B")
    e = _view(audit, Region.ES, ACC_E, "account E")
    a2 = _view(audit, Region.AU, ACC_A, "site of A")

    assert audit.recent(Scope.everything()) == [a2, e, b, a1]  # admins
    assert audit.recent(Scope.of_region(Region.AU)) == [a2, b, a1]  # au's office
    assert audit.recent(Scope.of_region(Region.US)) == []
    assert audit.recent(Scope.of_region(Region.AU), account_id=ACC_A) == [a2, a1]
    assert audit.recent(Scope.of_region(Region.ES), account_id=ACC_A) == []
    assert audit.recent(Scope.of_account(Region.AU, ACC_B)) == [b]
    assert audit.recent(Scope.of_account(Region.AU, None)) == []
    assert audit.recent(Scope.everything(), limit=2) == [a2, e]
    with pytest.raises(ValueError, match="limit"):
        audit.recent(Scope.everything(), limit=501)
