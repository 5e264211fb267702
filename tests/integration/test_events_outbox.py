"""Outbox and inbox against the real PostgreSQL."""

from __future__ import annotations

import psycopg
import pytest

from cloud.events.outbox import Event, emit, emit_many, handle_once
from cloud.migrate import migrate

pytestmark = pytest.mark.integration


def _event(n: int) -> Event:
    return Event.model_validate(
        {"name": "gateway.birth", "region": "es", "source": "ingest", "payload": {"n": n}}
    )


def test_emit_commits_with_the_callers_transaction(database_url: str) -> None:
    migrate(database_url)
    kept, dropped = _event(1), _event(2)
    with psycopg.connect(database_url) as conn:
        emit(conn, "ingest", kept)
    with psycopg.connect(database_url) as conn:
        emit(conn, "ingest", dropped)
        conn.rollback()
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT event_id, payload FROM ingest.outbox").fetchall()
    assert rows == [(kept.id, {"n": 1})]


def test_emitting_an_event_twice_stores_it_once(database_url: str) -> None:
    migrate(database_url)
    events = [_event(i) for i in range(3)]
    with psycopg.connect(database_url) as conn:
        emit_many(conn, "ingest", events)
        emit_many(conn, "ingest", events)
        ids = [r[0] for r in conn.execute("SELECT event_id FROM ingest.outbox ORDER BY id")]
    assert ids == [e.id for e in events]


def test_handle_once_is_true_once_and_forgets_a_rolled_back_effect(database_url: str) -> None:
    migrate(database_url)
    event = _event(1)
    with psycopg.connect(database_url) as conn:
        assert handle_once(conn, "registry", event.id)
        conn.rollback()
    with psycopg.connect(database_url) as conn:
        assert handle_once(conn, "registry", event.id)
    with psycopg.connect(database_url) as conn:
        assert not handle_once(conn, "registry", event.id)
