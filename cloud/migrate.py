"""Apply every service's ``schema/NNN_*.sql`` in order, once, tracked per schema.

A service package ``cloud/<service>/schema/`` owns the PostgreSQL schema ``<service>``;
its applied files are recorded in ``<service>.schema_migrations``. The whole run holds a
session advisory lock, so concurrent runs (several workers starting at once) serialise
and the second one finds nothing left to do.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from cloud.adapters.postgres import connect, sql

log = logging.getLogger(__name__)

CLOUD_ROOT = Path(__file__).resolve().parent
_FILE_RE = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")
#: Arbitrary but fixed: the advisory lock key of migrations ("potrmig" in ASCII-ish).
_LOCK_KEY = 0x706F74726D6967


@dataclass(frozen=True, order=True)
class Migration:
    schema: str
    number: int
    path: Path

    @property
    def name(self) -> str:
        return f"{self.schema}/{self.path.name}"


def discover(root: Path = CLOUD_ROOT) -> list[Migration]:
    """Every ``<service>/schema/NNN_name.sql`` under ``root``, sorted by schema then number."""
    found: list[Migration] = []
    for schema_dir in sorted(root.glob("*/schema")):
        service = schema_dir.parent.name
        numbers: set[int] = set()
        for path in sorted(schema_dir.glob("*.sql")):
            match = _FILE_RE.match(path.name)
            if not match:
                raise ValueError(f"migration {path} must be named NNN_lower_snake.sql")
            number = int(match.group(1))
            if number in numbers:
                raise ValueError(f"two migrations numbered {number:03d} in {schema_dir}")
            numbers.add(number)
            found.append(Migration(service, number, path))
    return sorted(found)


def migrate(database_url: str, root: Path = CLOUD_ROOT) -> list[str]:
    """Apply pending migrations; return the names applied (empty when up to date)."""
    migrations = discover(root)
    applied: list[str] = []
    with connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            for schema in sorted({m.schema for m in migrations}):
                ident = sql.Identifier(schema)
                conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(ident))
                conn.execute(
                    sql.SQL(
                        "CREATE TABLE IF NOT EXISTS {}.schema_migrations ("
                        " name text PRIMARY KEY,"
                        " applied_at timestamptz NOT NULL DEFAULT now())"
                    ).format(ident)
                )
            for m in migrations:
                ident = sql.Identifier(m.schema)
                done = conn.execute(
                    sql.SQL("SELECT 1 FROM {}.schema_migrations WHERE name = %s").format(ident),
                    (m.path.name,),
                ).fetchone()
                if done:
                    continue
                with conn.transaction():
                    conn.execute(m.path.read_text(encoding="utf-8"))
                    conn.execute(
                        sql.SQL("INSERT INTO {}.schema_migrations (name) VALUES (%s)").format(
                            ident
                        ),
                        (m.path.name,),
                    )
                log.info("applied migration %s", m.name)
                applied.append(m.name)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied
