"""The API gateway's nginx: check a candidate config (``nginx -t``), install it into a
prefix directory and reload the nginx running from there; a private instance on a free
loopback port for tests and the demo (``PrivateNginx``).

nginx runs as ``nginx -p DIR -c nginx.conf -e logs/error.log -g 'daemon off;'``: every path
of the rendered config is relative to ``DIR``, so a private instance never meets the
system's nginx (its pid file, logs and temporary files stay in ``DIR``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from broker_config.files import write_public
from broker_config.nginx import (
    ACCESS_LOG,
    CONF_FILE,
    ERROR_LOG,
    PID_FILE,
    PREFIX_DIRS,
    GatewayConfig,
)
from potr.servers.ports import port_open

__all__ = ["ConfigCheck", "NginxError", "PrivateNginx", "check_config", "install", "reload"]


class NginxError(RuntimeError):
    pass


@dataclass(frozen=True)
class ConfigCheck:
    """The verdict of ``nginx -t`` on a candidate config."""

    ok: bool
    #: nginx's own words (its last lines) when it refused the config.
    reason: str


def check_config(conf_text: str) -> ConfigCheck:
    """``nginx -t`` on ``conf_text`` in a scratch prefix: syntax, every directive's
    arguments, host names of the pools (resolved now, as at start), TLS certificate and
    key. It binds no port and touches no live instance."""
    with tempfile.TemporaryDirectory(prefix="potr-nginx-check-") as tmp:
        prefix = Path(tmp)
        _prepare(prefix)
        (prefix / CONF_FILE).write_text(conf_text, encoding="utf-8")
        done = subprocess.run(
            [*_command(prefix), "-t", "-q"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    if done.returncode == 0:
        return ConfigCheck(ok=True, reason="nginx -t: ok")
    said = " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
    return ConfigCheck(ok=False, reason=said.replace(str(prefix), "<prefix>"))


def install(config: GatewayConfig, prefix: Path) -> bool:
    """Check ``config`` and install it as ``prefix/nginx.conf``; reload the nginx running
    from ``prefix``, if any (True when one was). A config nginx refuses is never written:
    :class:`NginxError` with nginx's reason, the live file untouched."""
    text = config.render()
    verdict = check_config(text)
    if not verdict.ok:
        raise NginxError(f"nginx refused the rendered config: {verdict.reason}")
    _prepare(prefix)
    write_public(prefix / CONF_FILE, text.encode())
    return reload(prefix)


def reload(prefix: Path) -> bool:
    """SIGHUP the nginx whose pid file is in ``prefix`` (False: none runs there). nginx
    starts workers on the new config and lets the old ones finish their requests; the
    caller waits for the effect it expects, boundedly."""
    pid = running_pid(prefix)
    if pid is None:
        return False
    os.kill(pid, signal.SIGHUP)
    return True


def running_pid(prefix: Path) -> int | None:
    """The pid of the nginx master running from ``prefix``, if its pid file names a live
    nginx (a stale file after a crash may name an unrelated process by now)."""
    try:
        pid = int((prefix / PID_FILE).read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return pid if b"nginx" in cmdline else None


class PrivateNginx:
    """Start and stop one gateway nginx we own, in its own prefix directory (``root``), on
    ``config``'s listener (a free port: ``potr.servers.ports.free_port``). To change its
    config, :func:`install` a new one into ``root``: that checks it and reloads nginx."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        # World-readable: started as root, nginx's workers run as ``nobody``.
        self.root = Path(tempfile.mkdtemp(prefix="potr-nginx-", dir="/tmp"))
        os.chmod(self.root, 0o755)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        return self.config.listen_port

    @property
    def url(self) -> str:
        scheme = "https" if self.config.tls else "http"
        return f"{scheme}://{self.config.listen_host}:{self.port}"

    @property
    def access_log(self) -> Path:
        return self.root / ACCESS_LOG

    def access_entries(self) -> list[dict[str, Any]]:
        """The access log so far, one dict per request (``request_id``, ``path``,
        ``status``, ``upstream``: the addresses tried, in order, comma-separated)."""
        if not self.access_log.exists():
            return []
        lines = self.access_log.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def start(self, timeout: float = 10.0) -> PrivateNginx:
        if self.proc is not None and self.proc.poll() is None:
            return self
        install(self.config, self.root)
        self.proc = subprocess.Popen(
            _command(self.root),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its workers are in our process group only
        )
        deadline = time.monotonic() + timeout
        while not port_open(self.config.listen_host, self.port):
            if self.proc.poll() is not None:
                raise NginxError(f"nginx exited {self.proc.returncode}: {self._errors()}")
            if time.monotonic() > deadline:
                self.stop()
                raise NginxError(f"nginx did not listen on {self.port} in {timeout}s")
            time.sleep(0.02)  # polling a port we wait for; no event to await
        return self

    def stop(self) -> None:
        """SIGTERM: nginx's fast shutdown (the master stops its workers)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def _errors(self) -> str:
        try:
            return " | ".join((self.root / ERROR_LOG).read_text().strip().splitlines()[-3:])
        except OSError:
            return "(no error log)"

    def __enter__(self) -> PrivateNginx:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


def _prepare(prefix: Path) -> None:
    """The prefix's directories; those made here are reachable by nginx's workers (user
    ``nobody`` or ``www-data`` under root), whatever the umask."""
    for path in (prefix, *(prefix / name for name in PREFIX_DIRS)):
        if not path.is_dir():
            path.mkdir(parents=True)
            os.chmod(path, 0o755)


def _command(prefix: Path) -> list[str]:
    return [
        _binary(),
        "-p",
        f"{prefix}/",
        "-c",
        CONF_FILE,
        "-e",
        ERROR_LOG,
        "-g",
        "daemon off;",
    ]


def _binary() -> str:
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(binary).exists():
        raise NginxError("nginx not installed: apt-get install nginx-light")
    return binary
