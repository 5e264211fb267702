"""An embedded PostgreSQL: the machine's binaries in a private data directory (storage.md).

As root, PostgreSQL refuses to run, so initdb and the server run as the ``postgres``
user, with a data and socket directory that user owns outside root's home.
"""

from __future__ import annotations

import glob
import logging
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from potr.servers.ports import free_port

log = logging.getLogger(__name__)


class EmbeddedPostgresError(RuntimeError):
    pass


def find_bindir() -> Path | None:
    """Where ``initdb``/``pg_ctl`` live: ``pg_config --bindir``, else the newest Debian one."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if out.returncode == 0:
            candidates.append(Path(out.stdout.strip()))
    debian = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
        reverse=True,
    )
    candidates += [Path(p) for p in debian]
    for cand in candidates:
        if (cand / "initdb").exists() and (cand / "pg_ctl").exists():
            return cand
    return None


@dataclass
class EmbeddedPostgres:
    """A private PostgreSQL cluster on a free loopback port.

    ``fsync=False`` is for tests only: the demo keeps its data durable.
    """

    data_root: Path | None = None
    fsync: bool = True
    port: int = 0
    _root: Path | None = field(default=None, init=False)
    _owned_root: bool = field(default=False, init=False)
    _bindir: Path | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"postgresql://potr@127.0.0.1:{self.port}/postgres"

    def _as_user(self) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--"]
        return []

    def _run(self, args: list[str]) -> None:
        assert self._root is not None
        proc = subprocess.run(
            self._as_user() + args, capture_output=True, text=True, cwd=self._root, check=False
        )
        if proc.returncode != 0:
            raise EmbeddedPostgresError(
                f"{Path(args[0]).name} failed ({proc.returncode}): {proc.stderr.strip()[-800:]}"
            )

    def start(self) -> EmbeddedPostgres:
        self._bindir = find_bindir()
        if self._bindir is None:
            raise EmbeddedPostgresError(
                "no PostgreSQL server binaries found: apt-get install postgresql "
                "(or set POTR_DATABASE_URL)"
            )
        if self.data_root is None:
            # Outside root's 0700 home so the postgres user can reach it.
            self._root = Path(tempfile.mkdtemp(prefix="potr-pg-", dir="/tmp"))
            self._owned_root = True
        else:
            self._root = self.data_root
            self._root.mkdir(parents=True, exist_ok=True)
        os.chmod(self._root, 0o755)
        data, sock = self._root / "data", self._root / "sock"
        sock.mkdir(exist_ok=True)
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            for path in (self._root, sock):
                os.chown(path, pw.pw_uid, pw.pw_gid)
            if data.exists():
                os.chown(data, pw.pw_uid, pw.pw_gid)
        if not (data / "PG_VERSION").exists():
            self._run(
                [
                    str(self._bindir / "initdb"),
                    "--no-sync",
                    "-A",
                    "trust",
                    "-U",
                    "potr",
                    "-E",
                    "UTF8",
                    "-D",
                    str(data),
                ]
            )
        self.port = self.port or free_port()
        opts = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {sock}"
        if not self.fsync:
            opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run(
            [
                str(self._bindir / "pg_ctl"),
                "-D",
                str(data),
                "-o",
                opts,
                "-w",
                "-t",
                "60",
                "-l",
                str(self._root / "postgres.log"),
                "start",
            ]
        )
        log.info("embedded PostgreSQL on 127.0.0.1:%s (data %s)", self.port, data)
        return self

    def stop(self) -> None:
        if self._root is None or self._bindir is None:
            return
        data = self._root / "data"
        if (data / "postmaster.pid").exists():
            try:
                self._run(
                    [str(self._bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]
                )
            except EmbeddedPostgresError as exc:
                log.warning("embedded PostgreSQL did not stop cleanly: %s", exc)
        if self._owned_root:
            shutil.rmtree(self._root, ignore_errors=True)

    def __enter__(self) -> EmbeddedPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
