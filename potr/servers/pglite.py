"""A private PGlite with TimescaleDB on a free loopback port: the TimescaleDB path of the
tests on a machine without a TimescaleDB server (storage.md, "Keeping the TimescaleDB
path tested").

PGlite is PostgreSQL 17 compiled to WebAssembly, run by Node (``tools/pglite/serve.mjs``,
installed by ``scripts/bootstrap.sh test`` with ``npm ci``). It is a test engine, not a
production one, and a client must keep its rules (:data:`CLIENT_RULES`): every connection
shares one single-user session.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cloud.adapters.postgres import Connection, OperationalError, sql
from potr.servers.ports import free_port

__all__ = ["CLIENT_RULES", "PGliteError", "PrivatePGlite", "missing_install", "tool_dir"]

#: What a client of PGlite must keep to (each verified here; breaking one breaks the
#: server or the next connection, not only the caller).
CLIENT_RULES = (
    "sslmode=disable (the default 'prefer' hangs); any user with some password",
    "every connection shares ONE session: one connection at a time (or a pool of size 1),"
    " and SET, PREPARE, temporary tables and advisory locks outlive the connection",
    "prepare_threshold=None on every psycopg connection after the first: psycopg's"
    " prepared statements (_pg3_0, ...) survive a close and the next one collides",
    "no COPY FROM STDIN: it breaks the server for every later connection (multi-row INSERT)",
    "startup options (options='-c ...') are ignored: SET them after connecting",
    "no background job scheduler: CALL run_job(<id>) runs a policy now",
)

#: The user and password in the URL: PGlite accepts any user that sends some password.
_USER = "potr"
_PASSWORD = "pglite"


class PGliteError(RuntimeError):
    pass


@dataclass(frozen=True)
class _Baseline:
    """What the database held just after start, so :meth:`PrivatePGlite.reset` can
    return to it."""

    schemas: frozenset[str]
    public_relations: frozenset[str]
    job_ids: frozenset[int]
    search_path: str


def tool_dir() -> Path:
    """The Node package that serves PGlite (``tools/pglite`` in the source tree)."""
    return Path(__file__).resolve().parents[2] / "tools" / "pglite"


def missing_install(directory: Path | None = None) -> str | None:
    """Why PGlite cannot start here (None: it can): no ``node``, or the packages are
    not installed in ``directory``."""
    directory = directory or tool_dir()
    if shutil.which("node") is None:
        return "node is not installed: run scripts/bootstrap.sh test"
    if not (directory / "node_modules" / "@electric-sql" / "pglite-socket").is_dir():
        return f"PGlite is not installed in {directory}: run scripts/bootstrap.sh test"
    return None


class PrivatePGlite:
    """Start and stop one PGlite server we own on a free loopback port.

    ``data_dir`` None keeps the database in memory (gone at :meth:`stop`), started from
    ``snapshot_file``; a directory keeps it across restarts. Node's output goes to
    ``log_file``.
    """

    def __init__(self, *, data_dir: Path | None = None, directory: Path | None = None) -> None:
        self.directory = directory or tool_dir()
        self.data_dir = data_dir
        self.root = Path(tempfile.mkdtemp(prefix="potr-pglite-"))
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self._baseline: _Baseline | None = None

    @property
    def log_file(self) -> Path:
        return self.root / "pglite.log"

    @property
    def snapshot_file(self) -> Path:
        """A fresh in-memory database with TimescaleDB, dumped at the first start and
        loaded by later ones (≈ 1 s instead of ≈ 3 s)."""
        return self.directory / "node_modules" / ".potr-initdb.tgz"

    @property
    def url(self) -> str:
        return f"postgresql://{_USER}:{_PASSWORD}@127.0.0.1:{self.port}/postgres?sslmode=disable"

    def start(self, timeout: float = 30.0) -> PrivatePGlite:
        """Start Node and wait (at most ``timeout`` s) until psycopg can connect."""
        if self.proc is not None and self.proc.poll() is None:
            return self
        reason = missing_install(self.directory)
        if reason is not None:
            raise PGliteError(reason)
        self.port = self.port or free_port()
        command = ["node", "serve.mjs", "--host", "127.0.0.1", "--port", str(self.port)]
        if self.data_dir is None:
            # Beside the packages it was made with: ``npm ci`` removes it with them.
            command += ["--data", "memory", "--snapshot", str(self.snapshot_file)]
        else:
            command += ["--data", str(self.data_dir)]
        with self.log_file.open("ab") as log:
            self.proc = subprocess.Popen(
                command,
                cwd=self.directory,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C of the test run is ours to relay
            )
        self._await_ready(timeout)
        self._baseline = self._baseline or self._snapshot()
        return self

    def connect(self, timeout: float = 5.0) -> Connection[Any]:
        """An autocommit connection that keeps :data:`CLIENT_RULES`: it prepares no
        statement, so it leaves none behind in the shared session."""
        return Connection.connect(
            self.url, autocommit=True, prepare_threshold=None, connect_timeout=max(1, int(timeout))
        )

    def reset(self) -> None:
        """Return the database to its state just after start: the session's state
        discarded (settings, prepared statements, temporary tables, advisory locks), every
        schema created since dropped with all it holds (hypertables, continuous
        aggregates and their policies), new relations in ``public`` dropped, jobs added
        since deleted. Call it with no other connection open."""
        assert self._baseline is not None, "reset() before start()"
        base = self._baseline
        with self.connect() as conn:
            conn.execute("DISCARD ALL")
            # DISCARD resets search_path to the server's default (pg_catalog in PGlite),
            # not the one every new session of PGlite starts with.
            conn.execute("SELECT set_config('search_path', %s, false)", (base.search_path,))
            for schema in _schemas(conn) - base.schemas:
                conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
            _drop_public_relations(conn, keep=base.public_relations)
            for job_id in _job_ids(conn) - base.job_ids:
                conn.execute("SELECT delete_job(%s)", (job_id,))

    def _snapshot(self) -> _Baseline:
        with self.connect() as conn:
            row = conn.execute("SHOW search_path").fetchone()
            return _Baseline(
                schemas=_schemas(conn),
                public_relations=frozenset(_public_relations(conn)),
                job_ids=_job_ids(conn),
                search_path=str(row[0]) if row else "public",
            )

    def _await_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self._answers():
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise PGliteError(f"PGlite exited {self.proc.returncode}: {self._tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise PGliteError(f"PGlite did not answer in {timeout}s: {self._tail()}")
            time.sleep(0.05)  # polling a server we wait for; no event to await

    def _answers(self) -> bool:
        try:
            with self.connect(timeout=2) as conn:
                conn.execute("SELECT 1")
            return True
        except OperationalError:
            return False

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` s (PGlite's close can hang)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def cleanup(self) -> None:
        """Stop it and remove its log (a data directory given to us is kept)."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def _tail(self) -> str:
        try:
            lines = self.log_file.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(lines[-5:]) or "(empty log)"

    def __enter__(self) -> PrivatePGlite:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


def _schemas(conn: Connection[Any]) -> frozenset[str]:
    rows = conn.execute(
        "SELECT nspname FROM pg_namespace"
        " WHERE nspname NOT LIKE 'pg\\_temp\\_%' AND nspname NOT LIKE 'pg\\_toast\\_temp\\_%'"
    ).fetchall()
    return frozenset(str(r[0]) for r in rows)


def _job_ids(conn: Connection[Any]) -> frozenset[int]:
    rows = conn.execute("SELECT job_id FROM timescaledb_information.jobs").fetchall()
    return frozenset(int(r[0]) for r in rows)


#: How each kind of relation in ``public`` is dropped (``pg_class.relkind``).
_DROP_BY_KIND = {
    "r": "TABLE",
    "p": "TABLE",
    "v": "VIEW",
    "m": "MATERIALIZED VIEW",
    "S": "SEQUENCE",
    "f": "FOREIGN TABLE",
}


def _public_relations(conn: Connection[Any]) -> dict[str, str]:
    """Relations in ``public`` by name: their DROP keyword (continuous aggregates,
    views to PostgreSQL, are dropped as materialized views)."""
    rows = conn.execute(
        "SELECT c.relname, c.relkind::text,"
        " EXISTS (SELECT 1 FROM timescaledb_information.continuous_aggregates a"
        "  WHERE a.view_schema = 'public' AND a.view_name = c.relname)"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'public' AND c.relkind = ANY(%s)",
        (list(_DROP_BY_KIND),),
    ).fetchall()
    return {
        str(name): "MATERIALIZED VIEW" if is_cagg else _DROP_BY_KIND[str(kind)]
        for name, kind, is_cagg in rows
    }


def _drop_public_relations(conn: Connection[Any], keep: frozenset[str]) -> None:
    # Continuous aggregates first: dropping their hypertable first would refuse.
    found = _public_relations(conn)
    order = sorted(found, key=lambda name: found[name] != "MATERIALIZED VIEW")
    for name in order:
        if name in keep:
            continue
        statement = sql.SQL("DROP {} IF EXISTS {} CASCADE").format(
            sql.SQL(found[name]), sql.Identifier("public", name)
        )
        conn.execute(statement)
