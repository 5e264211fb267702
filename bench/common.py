"""Shared bench plumbing: a database to measure on, and a figure printer."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql

from potr.servers.postgres import EmbeddedPostgres


@contextmanager
def bench_database() -> Iterator[str]:
    """A fresh database on ``POTR_BENCH_DATABASE_URL``, the local 5432 server, or a private
    cluster (fsync on, as in production), dropped afterwards."""
    server = os.environ.get("POTR_BENCH_DATABASE_URL")
    embedded: EmbeddedPostgres | None = None
    if server is None:
        local = "postgresql://postgres@127.0.0.1:5432/postgres"
        try:
            psycopg.connect(local, connect_timeout=2).close()
            server = local
        except psycopg.OperationalError:
            embedded = EmbeddedPostgres().start()
            server = embedded.url
    name = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    info = psycopg.conninfo.conninfo_to_dict(server)
    info["dbname"] = name
    try:
        yield psycopg.conninfo.make_conninfo(**{k: v for k, v in info.items() if v is not None})
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
        if embedded is not None:
            embedded.stop()


def report(name: str, rate: float, baseline: float, unit: str = "readings/s") -> None:
    print(f"{name:<44} {rate:>12,.0f} {unit}   {rate / baseline:6.2f}x of baseline")
