"""A private Mosquitto on a free loopback port, from a generated config."""

from __future__ import annotations

import dataclasses
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from broker_config.mosquitto import MosquittoConfig, MosquittoListener
from potr.servers.ports import free_port, port_open


class MosquittoError(RuntimeError):
    pass


class PrivateMosquitto:
    """Start, kill (SIGKILL) and restart one Mosquitto we own, on the same port."""

    def __init__(
        self, *, port: int = 0, persistence: bool = True, max_packet_size: int | None = None
    ) -> None:
        self.binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(self.binary).exists():
            raise MosquittoError("mosquitto not installed: apt-get install mosquitto")
        # /tmp, world-readable: started as root, mosquitto drops to its own user first.
        self.root = Path(tempfile.mkdtemp(prefix="potr-mosq-", dir="/tmp"))
        os.chmod(self.root, 0o755)
        self.port = port or free_port()
        self.persistence = persistence
        #: None: the generated config's default (the regional brokers' limit).
        self.max_packet_size = max_packet_size
        self.proc: subprocess.Popen[bytes] | None = None
        self._write_config()

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def _write_config(self) -> None:
        data = self.root / "data"
        data.mkdir(exist_ok=True)
        if os.geteuid() == 0:
            pw = pwd.getpwnam("mosquitto")
            os.chown(data, pw.pw_uid, pw.pw_gid)
        conf = MosquittoConfig(
            listener=MosquittoListener(self.port),
            persistence_dir=data if self.persistence else None,
            log_file=None,
        )
        if self.max_packet_size is not None:
            conf = dataclasses.replace(conf, max_packet_size=self.max_packet_size)
        path = self.root / "mosquitto.conf"
        path.write_text(conf.render(), encoding="utf-8")
        os.chmod(path, 0o644)

    def start(self, timeout: float = 10.0) -> PrivateMosquitto:
        if self.proc is not None and self.proc.poll() is None:
            return self
        self.proc = subprocess.Popen(
            [self.binary, "-c", str(self.root / "mosquitto.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout
        while not port_open("127.0.0.1", self.port):
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise MosquittoError(f"mosquitto exited {self.proc.returncode}: {err[-500:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise MosquittoError(f"mosquitto did not listen on {self.port} in {timeout}s")
            time.sleep(0.02)  # polling a port we wait for; no event to await
        return self

    def kill(self) -> None:
        """SIGKILL: the broker loses whatever it had not yet saved."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.proc is not None and self.proc.stderr:
            self.proc.stderr.close()

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PrivateMosquitto:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()
