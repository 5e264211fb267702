"""A private RabbitMQ node on free loopback ports, for tests that kill and restart it.

The Debian package's ``/usr/sbin/rabbitmq-server`` wrapper switches to the ``rabbitmq``
user and writes to /var/log/rabbitmq; we run the real script
(``/usr/lib/rabbitmq/bin/rabbitmq-server``) directly instead, as ``rabbitmq`` when root,
with everything the node writes (mnesia, logs, config, cookie, enabled plugins) in a
temporary directory that user owns, a unique node name and its own AMQP and
distribution ports. epmd (port 4369) is the machine's shared name registry: fine.

The node keeps its name and data across :meth:`kill`/:meth:`start`, so durable quorum
queues and persistent messages survive a SIGKILL as they would in production.

RabbitMQ 3.10 (Debian 12) keeps a quorum queue's Raft registration in DETS files that
are written out lazily: a queue declared moments before a SIGKILL comes back leaderless
(publishes to it are never confirmed). A long-running broker has long since saved them;
a test that declares and then kills at once should :meth:`restart` cleanly first.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from potr.servers.ports import free_port

SCRIPT = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
#: AMQP 0-9-1 protocol header; a ready broker answers with a Connection.Start method frame.
_PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"


class RabbitMQError(RuntimeError):
    pass


def amqp_ready(host: str, port: int, timeout: float = 1.0) -> bool:
    """True when ``host:port`` speaks AMQP 0-9-1 (answers the protocol header)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(_PROTOCOL_HEADER)
            frame = sock.recv(7)
    except OSError:
        return False
    return len(frame) == 7 and frame[0] == 1  # frame type 1 = method


class PrivateRabbitMQ:
    """Start, SIGKILL and restart one RabbitMQ node we own, on the same ports and data."""

    def __init__(self) -> None:
        if not SCRIPT.exists():
            raise RabbitMQError("rabbitmq-server not installed: apt-get install rabbitmq-server")
        self.root = Path(tempfile.mkdtemp(prefix="potr-rabbit-", dir="/tmp"))
        os.chmod(self.root, 0o755)
        self.port = free_port()
        self.dist_port = free_port()
        self.nodename = f"potr-{uuid.uuid4().hex[:12]}@localhost"
        self.proc: subprocess.Popen[bytes] | None = None
        self._user = pwd.getpwnam("rabbitmq") if os.geteuid() == 0 else None
        self._write_files()

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def _write_files(self) -> None:
        for sub in ("mnesia", "log", "home"):
            (self.root / sub).mkdir()
        (self.root / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = 127.0.0.1:{self.port}\n"
            "loopback_users.guest = true\n"
            "disk_free_limit.absolute = 50MB\n"
            "log.console = false\n"
            "log.file.level = warning\n",
            encoding="utf-8",
        )
        # No plugins: the management plugin would open its own port.
        (self.root / "enabled_plugins").write_text("[].\n", encoding="utf-8")
        # An env file of our own, so /etc/rabbitmq/rabbitmq-env.conf's NODENAME is not read.
        (self.root / "rabbitmq-env.conf").write_text("", encoding="utf-8")
        cookie = self.root / "home" / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(20), encoding="utf-8")
        os.chmod(cookie, 0o400)
        if self._user is not None:
            for path in [self.root, *self.root.rglob("*")]:
                os.chown(path, self._user.pw_uid, self._user.pw_gid)

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
        root = str(self.root)
        env.update(
            HOME=f"{root}/home",
            RABBITMQ_CONF_ENV_FILE=f"{root}/rabbitmq-env.conf",
            RABBITMQ_NODENAME=self.nodename,
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_MNESIA_BASE=f"{root}/mnesia",
            RABBITMQ_LOG_BASE=f"{root}/log",
            RABBITMQ_CONFIG_FILE=f"{root}/rabbitmq.conf",
            RABBITMQ_ENABLED_PLUGINS_FILE=f"{root}/enabled_plugins",
            RABBITMQ_PID_FILE=f"{root}/rabbitmq.pid",
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}",
            ERL_EPMD_ADDRESS="127.0.0.1",
        )
        if self._user is not None:
            env.update(USER="rabbitmq", LOGNAME="rabbitmq")
        return env

    def start(self, timeout: float = 60.0) -> PrivateRabbitMQ:
        """Start (or restart) the node and wait until it answers AMQP."""
        if self.running:
            return self
        user = self._user
        self.proc = subprocess.Popen(
            [str(SCRIPT)],
            cwd=self.root,
            env=self._env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group: the script, erl and helpers
            user=user.pw_uid if user else None,
            group=user.pw_gid if user else None,
            extra_groups=[] if user else None,
        )
        deadline = time.monotonic() + timeout
        while not amqp_ready("127.0.0.1", self.port):
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                raise RabbitMQError(
                    f"rabbitmq-server exited {self.proc.returncode}: {err[-800:]}{self._log_tail()}"
                )
            if time.monotonic() > deadline:
                self.kill()
                raise RabbitMQError(
                    f"RabbitMQ did not answer on {self.port} in {timeout}s{self._log_tail()}"
                )
            time.sleep(0.1)  # polling a port we wait for; there is no event to await
        return self

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _log_tail(self) -> str:
        logs = sorted((self.root / "log").glob("*.log"))
        if not logs:
            return ""
        return "\n" + logs[-1].read_text(errors="replace")[-1500:]

    def kill(self) -> None:
        """SIGKILL the node's whole process group: no clean shutdown, no flush."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        if self.proc.stderr:
            self.proc.stderr.close()

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            self.kill()
            return
        self.proc.terminate()  # the script stops the VM cleanly on TERM
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=30)
        self.kill()  # whatever of its group is left

    def restart(self, timeout: float = 60.0) -> PrivateRabbitMQ:
        """A clean stop (state saved) and a start on the same ports and data."""
        self.stop()
        return self.start(timeout)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PrivateRabbitMQ:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()
