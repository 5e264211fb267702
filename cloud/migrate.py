"""Apply every service's ``schema/NNN_*.sql`` in order, once, tracked per schema.

A service package ``cloud/<service>/schema/`` owns the PostgreSQL schema ``<service>``;
its applied files are recorded in ``<service>.schema_migrations``. The whole run holds a
session advisory lock, so concurrent runs (several workers starting at once) serialise
and the second one finds nothing left to do.

**Backend variants.** A step may come in two files, ``NNN_name.plain.sql`` and
``NNN_name.timescale.sql`` (the telemetry store: ARCHITECTURE decision 46). A schema's
backend is chosen once, when its first variant step is applied — ``timescale`` where the
server offers the ``timescaledb`` extension (``pg_available_extensions``), else
``plain``, unless the caller asks for one — and kept for good: the applied names say
which (a schema whose variant steps were applied before variants existed is ``plain``).
A step counts as applied by its number, whatever file applied it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

from cloud.adapters.postgres import Connection, connect, sql

log = logging.getLogger(__name__)

CLOUD_ROOT = Path(__file__).resolve().parent
_FILE_RE = re.compile(r"^(\d{3})_[a-z0-9_]+(?:\.(plain|timescale))?\.sql$")
#: Arbitrary but fixed: the advisory lock key of migrations ("potrmig" in ASCII-ish).
_LOCK_KEY = 0x706F74726D6967

Backend = Literal["plain", "timescale"]
BACKENDS: tuple[Backend, ...] = ("plain", "timescale")
#: What a caller may ask for: a backend, or whatever the server offers.
BackendChoice = Literal["auto", "plain", "timescale"]


class MigrationError(RuntimeError):
    """A migration set or a backend request that cannot be applied."""


@dataclass(frozen=True, order=True)
class Migration:
    schema: str
    number: int
    path: Path
    #: The backend this file is for; None: every backend.
    variant: Backend | None = None

    @property
    def name(self) -> str:
        return f"{self.schema}/{self.path.name}"


def discover(root: Path = CLOUD_ROOT) -> list[Migration]:
    """Every ``<service>/schema/NNN_name[.backend].sql`` under ``root``, sorted by schema
    then number. A number has one file for every backend, or one file per backend."""
    found: list[Migration] = []
    for schema_dir in sorted(root.glob("*/schema")):
        service = schema_dir.parent.name
        by_number: dict[int, list[Migration]] = {}
        for path in sorted(schema_dir.glob("*.sql")):
            match = _FILE_RE.match(path.name)
            if not match:
                raise ValueError(
                    f"migration {path} must be named NNN_lower_snake.sql"
                    " (or NNN_lower_snake.plain.sql and NNN_lower_snake.timescale.sql)"
                )
            number = int(match.group(1))
            variant = cast("Backend | None", match.group(2))
            by_number.setdefault(number, []).append(Migration(service, number, path, variant))
        for number, files in by_number.items():
            variants = sorted(m.variant or "" for m in files)
            if variants not in ([""], sorted(BACKENDS)):
                raise ValueError(
                    f"migration {number:03d} in {schema_dir}: one file, or one per backend"
                    f" ({', '.join(BACKENDS)}); found {[m.path.name for m in files]}"
                )
            found.extend(files)
    return sorted(found)


def migrate(
    database_url: str,
    root: Path = CLOUD_ROOT,
    *,
    backend: BackendChoice = "auto",
    schemas: Collection[str] | None = None,
) -> list[str]:
    """Apply pending migrations; return the names applied (empty when up to date).

    ``backend``: for a schema with variant steps whose backend is not chosen yet (see the
    module); asking for another than a schema already has is an error. ``schemas``: only
    these (default: all).
    """
    migrations = [m for m in discover(root) if schemas is None or m.schema in schemas]
    applied: list[str] = []
    # Nothing prepared: a migration run is no hot path, and on a server whose connections
    # share one session (PGlite) a prepared statement would outlive this connection.
    with connect(database_url, autocommit=True, prepare_threshold=None) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            for schema in sorted({m.schema for m in migrations}):
                _ensure_schema(conn, schema)
            chosen = {
                schema: _schema_backend(conn, schema, migrations, backend)
                for schema in sorted({m.schema for m in migrations if m.variant})
            }
            # Read once under the lock: only this run adds to them until it ends.
            done = {
                schema: {int(name[:3]) for name in _applied(conn, schema)}
                for schema in {m.schema for m in migrations}
            }
            for m in migrations:
                if m.variant is not None and m.variant != chosen[m.schema]:
                    continue
                if m.number in done[m.schema]:  # by number, whatever file applied it
                    continue
                with conn.transaction():
                    conn.execute(m.path.read_text(encoding="utf-8"))
                    conn.execute(
                        sql.SQL("INSERT INTO {}.schema_migrations (name) VALUES (%s)").format(
                            sql.Identifier(m.schema)
                        ),
                        (m.path.name,),
                    )
                log.info("applied migration %s", m.name)
                applied.append(m.name)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied


def schema_backend(conn: Connection[Any], schema: str) -> Backend | None:
    """The backend a schema's variant steps were applied for (None: none applied yet)."""
    names = _applied(conn, schema)
    if any(n.endswith(".timescale.sql") for n in names):
        return "timescale"
    if any(n.endswith(".plain.sql") for n in names):
        return "plain"
    return None


def timescale_available(conn: Connection[Any]) -> bool:
    row = conn.execute(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
    ).fetchone()
    return row is not None


def _ensure_schema(conn: Connection[Any], schema: str) -> None:
    ident = sql.Identifier(schema)
    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(ident))
    conn.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {}.schema_migrations ("
            " name text PRIMARY KEY,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        ).format(ident)
    )


def _applied(conn: Connection[Any], schema: str) -> list[str]:
    rows = conn.execute(
        sql.SQL("SELECT name FROM {}.schema_migrations").format(sql.Identifier(schema))
    ).fetchall()
    return [r[0] for r in rows]


def _schema_backend(
    conn: Connection[Any], schema: str, migrations: list[Migration], wanted: BackendChoice
) -> Backend:
    have = schema_backend(conn, schema)
    if have is None:
        variant_numbers = {m.number for m in migrations if m.schema == schema and m.variant}
        legacy = any(int(n[:3]) in variant_numbers for n in _applied(conn, schema))
        # Steps applied before they had variants were the plain backend's.
        have = "plain" if legacy else None
    if have is not None:
        if wanted not in ("auto", have):
            raise MigrationError(
                f"schema {schema} uses the {have} backend; it cannot become {wanted}"
            )
        return have
    available = timescale_available(conn)
    if wanted == "timescale" and not available:
        raise MigrationError(
            f"schema {schema}: the timescale backend was asked for, but this server has no"
            " timescaledb extension (pg_available_extensions)"
        )
    choice: Backend = wanted if wanted != "auto" else ("timescale" if available else "plain")
    log.info("schema %s: %s backend", schema, choice)
    return choice
