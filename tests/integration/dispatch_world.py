"""The world the dispatch and alerts services' tests share: the service's schema
migrated once for a test module, a pool over it with the tables a test module names
emptied before each test, and the injected clocks.

A test module takes the fixtures as module attributes (pytest finds them there)::

    clock = clock_fixture(TickingClock, T0)
    migrated_url, pool = database_fixtures("dispatch", TABLES, max_size=4, name="test-x")

The scopes are the ones the modules had: the migrated database is the module's (built
once, never changed by a test); the pool with its emptied tables, and the clock (a new
one from the start each time: tests move it), are one test's. Nothing here holds
state from one test to the next (the suite runs under pytest-xdist).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any, Protocol

import psycopg
import pytest

from cloud.adapters.postgres import Connection, ConnectionPool, create_pool
from tests.integration.api_world import migrated_database

__all__ = [
    "SetClock",
    "TickingClock",
    "clock_fixture",
    "database_fixtures",
    "emptied_pool_fixture",
    "migrated_url_fixture",
]

Pool = ConnectionPool[Connection[Any]]


class _Clock(Protocol):
    def __init__(self, start: datetime) -> None: ...

    def __call__(self) -> datetime: ...


class TickingClock:
    """From ``start``, every reading one second after the last: every step a distinct,
    increasing instant."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


class SetClock:
    """Reads ``now``, which only the test moves."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def migrated_url_fixture(schema: str) -> Callable[..., Any]:
    """A module-scoped fixture: a private database with ``schema`` migrated, dropped
    after the module's tests."""

    @pytest.fixture(scope="module")
    def migrated_url(postgres_server_url: str) -> Iterator[str]:
        with migrated_database(postgres_server_url, schema) as url:
            yield url

    return migrated_url


def emptied_pool_fixture(tables: str, *, max_size: int, name: str) -> Callable[..., Any]:
    """A fixture of one test: ``tables`` (comma-separated) of ``migrated_url`` emptied
    (identities restarted), then a pool of ``max_size`` named ``name``, closed after."""

    @pytest.fixture
    def pool(migrated_url: str) -> Iterator[Pool]:
        with psycopg.connect(migrated_url) as conn:
            conn.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
        pool = create_pool(migrated_url, max_size=max_size, name=name)
        try:
            yield pool
        finally:
            pool.close()

    return pool


def database_fixtures(
    schema: str, tables: str, *, max_size: int, name: str
) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """``migrated_url, pool``: :func:`migrated_url_fixture` and
    :func:`emptied_pool_fixture` together."""
    return migrated_url_fixture(schema), emptied_pool_fixture(tables, max_size=max_size, name=name)


def clock_fixture(kind: type[_Clock], start: datetime) -> Callable[..., Any]:
    """A fixture of one test: a new clock of ``kind`` at ``start``."""

    @pytest.fixture
    def clock() -> _Clock:
        return kind(start)

    return clock
