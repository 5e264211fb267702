"""The PostgreSQL adapter: the only cloud module that imports psycopg.

Repositories take connections from here and use the names re-exported below, so
swapping the driver touches this module only.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import Connection, sql
from psycopg.errors import (
    ForeignKeyViolation,
    OperationalError,
    QueryCanceled,
    UniqueViolation,
)
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

DatabaseError = psycopg.Error

__all__ = [
    "Connection",
    "ConnectionPool",
    "DatabaseError",
    "ForeignKeyViolation",
    "Jsonb",
    "OperationalError",
    "QueryCanceled",
    "UniqueViolation",
    "connect",
    "create_pool",
    "dict_row",
    "ping",
    "sql",
    "transaction",
]


def create_pool(
    url: str,
    *,
    min_size: int = 1,
    max_size: int = 4,
    name: str = "potr",
    timeout_s: float = 10.0,
    statement_timeout_ms: int = 0,
    prepare_threshold: int | None = 5,
) -> ConnectionPool[Connection[Any]]:
    """An open pool whose connections are checked before use (survives a server restart).

    ``statement_timeout_ms`` > 0 makes the server cancel any statement running longer
    (``QueryCanceled``), so a hung query cannot hold a caller forever; 0 leaves the
    server's default. ``prepare_threshold``: psycopg's (None: never prepare; for a
    server whose connections share one session, PGlite, where a prepared statement
    outlives its connection and the next one's collides with it).
    """
    kwargs: dict[str, Any] = {"prepare_threshold": prepare_threshold}
    if statement_timeout_ms > 0:
        given = psycopg.conninfo.conninfo_to_dict(url).get("options")
        option = f"-c statement_timeout={int(statement_timeout_ms)}"
        kwargs["options"] = f"{given} {option}" if given else option
    pool: ConnectionPool[Connection[Any]] = ConnectionPool(
        url,
        min_size=min_size,
        max_size=max_size,
        name=name,
        timeout=timeout_s,
        kwargs=kwargs,
        check=ConnectionPool.check_connection,
        open=False,
    )
    pool.open(wait=True, timeout=timeout_s)
    return pool


def connect(
    url: str, *, autocommit: bool = False, prepare_threshold: int | None = 5
) -> Connection[Any]:
    return psycopg.connect(
        url, autocommit=autocommit, connect_timeout=10, prepare_threshold=prepare_threshold
    )


@contextmanager
def transaction(pool: ConnectionPool[Connection[Any]]) -> Iterator[Connection[Any]]:
    """A pooled connection inside one transaction: commit on success, roll back on error."""
    with pool.connection() as conn:
        yield conn


def ping(pool: ConnectionPool[Connection[Any]], timeout_s: float = 2.0) -> None:
    """Raise unless the database answers ``SELECT 1``."""
    with pool.connection(timeout=timeout_s) as conn:
        conn.execute("SELECT 1")
