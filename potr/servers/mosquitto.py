"""A private Mosquitto on free loopback ports, from a generated config; and the check of a
candidate config by starting it.

Two modes. Development (the default, for the demo and most tests): one plain listener,
anonymous clients. Secure (``security=BrokerSecurity(...)``): the regional broker's shape
— a TLS listener for passwords, a TLS listener for client certificates (CN = username,
CRL checked), ``password_file`` + ``acl_file``, no anonymous access — with a server
certificate from a private CA (``broker_config.pki``), and optionally a plain loopback
listener as in development.
"""

from __future__ import annotations

import dataclasses
import os
import pwd
import select
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from broker_config import pki
from broker_config.files import write_public, write_secret
from broker_config.mosquitto import (
    Listener,
    MosquittoConfig,
    MosquittoListener,
    TlsCertificateListener,
    TlsFiles,
    TlsPasswordListener,
)
from potr.servers.ports import free_port, port_open

__all__ = [
    "BrokerSecurity",
    "CandidateCheck",
    "MosquittoError",
    "PrivateMosquitto",
    "broker_group",
    "for_check",
    "validate_candidate",
]

#: Started as root, Mosquitto drops to this user before it reads its password and ACL
#: files, and reads its TLS files again as this user on every reload.
BROKER_USER = "mosquitto"


class MosquittoError(RuntimeError):
    pass


@dataclass(frozen=True)
class BrokerSecurity:
    """What a secure private broker enforces."""

    #: ``password_file`` content (Mosquitto ``$7$`` lines, e.g. from ``mosquitto_passwd``).
    passwords: str
    #: ``acl_file`` content (``user``/``topic``/``pattern`` lines).
    acl: str
    #: A CA made by ``broker_config.pki`` to issue the broker's certificate; None: the
    #: broker makes one in its own temporary root (``PrivateMosquitto.pki_dir``).
    pki_dir: Path | None = None
    #: Also a plain loopback listener (development mode; still no anonymous access).
    dev_plain: bool = False
    #: The names the server certificate is issued for (a test of host-name checking
    #: leaves one out).
    server_names: tuple[str, ...] = ("127.0.0.1", "localhost")


def broker_group() -> str | None:
    """The group a broker secret must be readable by: ``mosquitto`` when we are root
    (the broker drops to that user), else none — it then runs as us and reads 0600."""
    return BROKER_USER if os.geteuid() == 0 else None


class PrivateMosquitto:
    """Start, kill (SIGKILL), restart and reload one Mosquitto we own, on the same ports."""

    def __init__(
        self,
        *,
        port: int = 0,
        persistence: bool = True,
        security: BrokerSecurity | None = None,
        max_packet_size: int | None = None,
    ) -> None:
        self.binary = _binary()
        # /tmp, world-readable: started as root, mosquitto drops to its own user first.
        self.root = Path(tempfile.mkdtemp(prefix="potr-mosq-", dir="/tmp"))
        os.chmod(self.root, 0o755)
        self.persistence = persistence
        self.security = security
        #: None: the generated config's default (the regional brokers' limit).
        self.max_packet_size = max_packet_size
        self.proc: subprocess.Popen[bytes] | None = None
        self.plain_port: int | None = None
        self.tls_port: int | None = None
        self.cert_port: int | None = None
        self.pki_dir: Path | None = None
        if security is None:
            self.plain_port = port or free_port()
        else:
            self.tls_port, self.cert_port, spare = _distinct_ports(3, taken={port})
            if security.dev_plain:
                self.plain_port = port or spare
        self.port = self.plain_port or self.tls_port or 0
        try:
            self._write_config()
        except BaseException:
            shutil.rmtree(self.root, ignore_errors=True)
            raise

    @property
    def url(self) -> str:
        if self.plain_port is not None:
            return f"mqtt://127.0.0.1:{self.plain_port}"
        return f"mqtts://127.0.0.1:{self.tls_port}"

    @property
    def certs_dir(self) -> Path:
        """The broker's TLS files: ``ca.crt``, ``server.crt``, ``server.key``, ``crl.pem``."""
        return self.root / "certs"

    @property
    def ca_file(self) -> Path:
        """The CA certificate clients verify the broker with (and present certificates of)."""
        return self.certs_dir / "ca.crt"

    @property
    def password_file(self) -> Path:
        return self.root / "passwd"

    @property
    def acl_file(self) -> Path:
        return self.root / "acl"

    def _listeners(self) -> tuple[Listener, ...]:
        plain = (MosquittoListener(self.plain_port),) if self.plain_port else ()
        if self.security is None:
            return plain
        assert self.tls_port is not None
        assert self.cert_port is not None
        tls = TlsFiles(
            cafile=self.ca_file,
            certfile=self.certs_dir / "server.crt",
            keyfile=self.certs_dir / "server.key",
        )
        return (
            TlsPasswordListener(self.tls_port, tls, host="127.0.0.1"),
            TlsCertificateListener(
                self.cert_port, tls, crlfile=self.certs_dir / "crl.pem", host="127.0.0.1"
            ),
            *plain,
        )

    def _write_config(self) -> None:
        data = self.root / "data"
        data.mkdir(exist_ok=True)
        if os.geteuid() == 0:
            pw = pwd.getpwnam(BROKER_USER)
            os.chown(data, pw.pw_uid, pw.pw_gid)
        if self.security is None:
            conf = MosquittoConfig(
                self._listeners(),
                development=True,
                allow_anonymous=True,
                use_username_as_clientid=False,
                max_queued_bytes=0,
                persistence_dir=data if self.persistence else None,
            )
        else:
            self._write_security(self.security)
            conf = MosquittoConfig(
                self._listeners(),
                development=self.security.dev_plain,
                persistence_dir=data if self.persistence else None,
                password_file=self.password_file,
                acl_file=self.acl_file,
            )
        if self.max_packet_size is not None:
            conf = dataclasses.replace(conf, max_packet_size=self.max_packet_size)
        write_public(self.root / "mosquitto.conf", conf.render().encode())

    def _write_security(self, security: BrokerSecurity) -> None:
        self.pki_dir = security.pki_dir or self.root / "pki"
        if security.pki_dir is None:
            pki.init(self.pki_dir, name="PoTR private test CA")
        pki.issue_server(
            self.pki_dir,
            "broker",
            list(security.server_names),
            self.certs_dir,
            key_group=broker_group(),
        )
        os.chmod(self.certs_dir, 0o755)
        self._install_crl()
        self._write_auth(passwords=security.passwords, acl=security.acl)

    def _install_crl(self) -> None:
        assert self.pki_dir is not None
        write_public(self.certs_dir / "crl.pem", (self.pki_dir / "crl.pem").read_bytes())

    def _write_auth(self, *, passwords: str | None, acl: str | None) -> None:
        group = broker_group()
        if passwords is not None:
            write_secret(self.password_file, passwords.encode(), group=group, overwrite=True)
        if acl is not None:
            write_secret(self.acl_file, acl.encode(), group=group, overwrite=True)

    def start(self, timeout: float = 10.0) -> PrivateMosquitto:
        if self.proc is not None and self.proc.poll() is None:
            return self
        self.proc = subprocess.Popen(
            [self.binary, "-c", str(self.root / "mosquitto.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        ports = [p for p in (self.plain_port, self.tls_port, self.cert_port) if p]
        deadline = time.monotonic() + timeout
        while not all(port_open("127.0.0.1", p) for p in ports):
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise MosquittoError(f"mosquitto exited {self.proc.returncode}: {err[-500:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise MosquittoError(f"mosquitto did not listen on {ports} in {timeout}s")
            time.sleep(0.02)  # polling a port we wait for; no event to await
        return self

    def reload(self, *, passwords: str | None = None, acl: str | None = None) -> None:
        """Give the broker new password/ACL contents (when given) and the CA's current
        CRL, then SIGHUP it. Mosquitto reloads on its next loop turn (milliseconds): a
        caller waits for the effect it expects, boundedly. A revoked certificate's *new*
        connections are refused; a live one stays connected (pitfalls.md)."""
        if self.proc is None or self.proc.poll() is not None:
            raise MosquittoError("mosquitto is not running")
        if self.security is not None:
            self._install_crl()
            self._write_auth(passwords=passwords, acl=acl)
        self.proc.send_signal(signal.SIGHUP)

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


# --- checking a candidate configuration ----------------------------------------------

#: Lines a check must not take from the candidate: they would touch the live broker's
#: pid file, persistence database or log, or hide the errors the check reads.
_NOT_FOR_CHECK = frozenset(
    {
        "pid_file",
        "persistence",
        "persistence_location",
        "persistence_file",
        "autosave_interval",
        "autosave_on_changes",
        "log_dest",
        "log_type",
        "bind_interface",
    }
)

#: Mosquitto 2.0.11's exit codes when it refuses a config (pitfalls.md).
_EXIT_MEANING = {
    1: "refused (a listener could not open, or another start-up error)",
    3: "refused: a bad keyword, value or ACL line",
    13: "refused: a file it needs is unreadable by the broker's user",
}


@dataclass(frozen=True)
class CandidateCheck:
    """The verdict on a candidate ``mosquitto.conf``."""

    ok: bool
    #: Mosquitto's exit code when it refused the config; None when it loaded.
    exit_code: int | None
    #: Why, in Mosquitto's words (its last lines on stderr) when refused.
    reason: str


def for_check(conf_text: str, next_port: Callable[[], int]) -> str:
    """The candidate rewritten to start beside a live broker: every listener (and the
    deprecated ``port``/``bind_address``) on a fresh loopback port, no pid file, no
    persistence, logs to stderr. Everything else — TLS files, password and ACL files,
    limits — is loaded exactly as written. (A bridge section would still connect to its
    remote during the check.)"""
    out: list[str] = []
    for line in conf_text.splitlines():
        words = line.split()
        key = words[0] if words else ""
        if key == "listener" and len(words) >= 2 and words[1] != "0":
            out.append(f"listener {next_port()} 127.0.0.1")
        elif key == "port":
            out.append(f"port {next_port()}")
        elif key == "bind_address":
            out.append("bind_address 127.0.0.1")
        elif key in _NOT_FOR_CHECK:
            out.append(f"# (not during the check) {line}")
        else:
            out.append(line)
    out += [
        "persistence false",
        "log_dest stderr",
        *(f"log_type {t}" for t in ("error", "warning", "notice", "information")),
    ]
    return "\n".join(out) + "\n"


def validate_candidate(conf_text: str, *, timeout_s: float = 3.0) -> CandidateCheck:
    """Start Mosquitto on ``conf_text`` (see :func:`for_check`) and report whether it
    loaded: it says "running" once its listeners, TLS files, password and ACL files are
    loaded; an exit before that is a refusal (2.0.11 has no config-test flag). Alive
    and silent at ``timeout_s`` also counts as loaded (the ``timeout 3`` rule: exit 124)."""
    with tempfile.TemporaryDirectory(prefix="potr-mosq-check-") as tmp:
        path = Path(tmp) / "candidate.conf"
        taken: set[int] = set()

        def next_port() -> int:
            port = _distinct_ports(1, taken=taken)[0]
            taken.add(port)
            return port

        path.write_text(for_check(conf_text, next_port), encoding="utf-8")
        os.chmod(tmp, 0o755)
        os.chmod(path, 0o644)
        proc = subprocess.Popen(
            [_binary(), "-c", str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            loaded, said = _await_running(proc, timeout_s)
        finally:
            # SIGKILL, not SIGTERM: the check holds no state worth a clean exit (no
            # persistence, no pid file), and a SIGTERM that lands just after start-up can
            # sit unhandled until the broker's idle wait ends (seen: several seconds).
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=5)
            assert proc.stderr is not None
            proc.stderr.close()
    if loaded:
        return CandidateCheck(ok=True, exit_code=None, reason="loaded")
    code = proc.returncode
    tail = " | ".join(said.decode(errors="replace").strip().splitlines()[-4:])
    meaning = _EXIT_MEANING.get(code, f"refused (exit {code})")
    return CandidateCheck(ok=False, exit_code=code, reason=f"{meaning}: {tail}")


def _await_running(proc: subprocess.Popen[bytes], timeout_s: float) -> tuple[bool, bytes]:
    """Read the broker's stderr until it says it is running (True), exits (False) or
    ``timeout_s`` passes while it lives (True)."""
    assert proc.stderr is not None
    fd = proc.stderr.fileno()
    said = b""
    deadline = time.monotonic() + timeout_s
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            break
        chunk = os.read(fd, 65536)
        if not chunk:  # EOF: it exited
            proc.wait(timeout=5)
            return False, said
        said += chunk
        if b" running" in said:
            return True, said
    return proc.poll() is None, said


def _distinct_ports(n: int, *, taken: set[int] | None = None) -> list[int]:
    ports: list[int] = []
    while len(ports) < n:
        port = free_port()
        if port not in ports and port not in (taken or set()):
            ports.append(port)
    return ports


def _binary() -> str:
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(binary).exists():
        raise MosquittoError("mosquitto not installed: apt-get install mosquitto")
    return binary
