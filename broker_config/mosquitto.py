"""Render Mosquitto 2.0 configuration files (pure text; no processes here).

A regional broker has two TLS listeners, because ``require_certificate`` is per listener
(pitfalls.md): one where gateways log in with a password over TLS, one where they present
a client certificate from the private CA (``broker_config.pki``) and the broker takes its
CN as the username. A plain listener exists only in development mode, on loopback.

With ``per_listener_settings false`` the security lines (``allow_anonymous``,
``password_file``, ``acl_file``) are global, and they are written *after* the listeners:
placed before the first listener they silently open a default listener on 0.0.0.0:1883.
``use_username_as_clientid`` is not one of them: Mosquitto 2.0.11 keeps it per listener
whatever ``per_listener_settings`` says (placed once after the last listener it bound
only that listener's client ids — a client of the other could take over a gateway's
session: test_scenario13_mqtt_identity.py), so every listener block carries it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = [
    "Listener",
    "MosquittoConfig",
    "MosquittoConfigError",
    "MosquittoListener",
    "PlainListener",
    "TlsCertificateListener",
    "TlsFiles",
    "TlsPasswordListener",
]


class MosquittoConfigError(ValueError):
    """A configuration refused before it is written; the message names the setting."""


@dataclass(frozen=True)
class MosquittoListener:
    """A plain (unencrypted) listener: development mode only, loopback only."""

    port: int
    host: str = "127.0.0.1"


PlainListener = MosquittoListener


@dataclass(frozen=True)
class TlsFiles:
    """The broker's side of TLS: the CA that signed client certificates, its own
    certificate and key (the key readable by user ``mosquitto``: ``broker_config.files``)."""

    cafile: Path
    certfile: Path
    keyfile: Path
    #: Minimum protocol version (Mosquitto 2.0: a minimum, 1.6: the only one allowed).
    tls_version: Literal["tlsv1.2", "tlsv1.3"] = "tlsv1.2"


@dataclass(frozen=True)
class TlsPasswordListener:
    """TLS without client certificates: clients log in with username and password."""

    port: int
    tls: TlsFiles
    #: None: every interface.
    host: str | None = None


@dataclass(frozen=True)
class TlsCertificateListener:
    """TLS with a client certificate required; its CN becomes the username, so the
    password file plays no part here. ``crlfile`` is required: revoking is the only way
    to refuse a certificate before it expires (new connections; a live one stays)."""

    port: int
    tls: TlsFiles
    crlfile: Path
    host: str | None = None


Listener = MosquittoListener | TlsPasswordListener | TlsCertificateListener


@dataclass(frozen=True)
class MosquittoConfig:
    """One broker's ``mosquitto.conf``. Outside ``development`` it refuses plain
    listeners, anonymous access, client ids not bound to usernames and a missing ACL."""

    listeners: tuple[Listener, ...]
    #: Allows a plain loopback listener, anonymous clients and free client ids.
    development: bool = False
    persistence_dir: Path | None = None
    # Seconds between persistence saves; the default 1800 s loses a lot on SIGKILL.
    autosave_interval_s: int = 1
    allow_anonymous: bool = False
    #: Binds the client id to the username, so nobody can take over another gateway's
    #: session by connecting with its client id (pitfalls.md, "Identities").
    use_username_as_clientid: bool = True
    password_file: Path | None = None
    acl_file: Path | None = None
    #: For ``kill -HUP $(cat pid_file)`` (reload users, ACL, certificates, CRL). Written
    #: after the broker has dropped root: its directory must be writable by ``mosquitto``.
    pid_file: Path | None = None
    #: Outgoing QoS 1/2 messages unacknowledged per MQTT 3.1.1 client, and the Receive
    #: Maximum the broker announces to MQTT 5 clients (how many un-PUBACKed publishes a
    #: gateway may have in flight to it). 100 is five times the agent's window (20) and
    #: bounds a 3.1.1 ingest worker's batch; an MQTT 5 subscriber's own Receive Maximum
    #: sets its window instead (ingest asks for 1,000). Measured on 2.0.11.
    max_inflight_messages: int = 100
    #: Messages queued per client beyond those in flight (a disconnected persistent
    #: session: an ingest worker being restarted). With one telemetry message per gateway
    #: every 5 minutes, 100,000 is ≈ 50 minutes of a 10,000-gateway region. Past it
    #: Mosquitto drops the *newest*; that costs no data: the agents keep every batch until ingest's
    #: `stored` covers it and resend (ARCHITECTURE decision 1).
    max_queued_messages: int = 100_000
    #: The same queue bounded in bytes (per client), so a burst of large batches cannot
    #: take the broker's memory: 256 MiB ≈ 1,000 packets at the size limit.
    max_queued_bytes: int = 256 * 1024 * 1024
    #: Largest MQTT packet accepted (bytes, topic and headers included); a client sending
    #: a bigger one is disconnected, and MQTT 5 clients are told the limit in CONNACK.
    #: (Not ``message_size_limit``: with Mosquitto 2.0.11 it broke redelivery from a
    #: persistent session across a broker restart in test_ingest_survives_a_broker_restart.)
    max_packet_size: int = 256 * 1024
    #: Where the broker logs: a file, stderr (a container's or systemd's log; not
    #: stdout, which Mosquitto 2.0.11 buffers when it is a pipe: lines arrive in 4 KiB
    #: lumps or at exit), or nowhere. Errors, warnings and notices: connections and
    #: refusals ("Client <id> disconnected, not authorised."), not the information
    #: level, which with ``autosave_interval`` 1 s would log every save.
    log_file: Path | None = None
    log_stderr: bool = False
    user: str | None = None

    def __post_init__(self) -> None:
        _check(self)

    def render(self) -> str:
        lines = [
            "# generated by broker_config.mosquitto — do not edit by hand",
            "per_listener_settings false",
        ]
        if self.user:
            lines.append(f"user {self.user}")
        if self.persistence_dir is not None:
            lines += [
                "persistence true",
                f"persistence_location {self.persistence_dir}/",
                f"autosave_interval {self.autosave_interval_s}",
            ]
        else:
            lines.append("persistence false")
        if self.pid_file is not None:
            lines.append(f"pid_file {self.pid_file}")
        lines += [
            f"max_inflight_messages {self.max_inflight_messages}",
            f"max_queued_messages {self.max_queued_messages}",
            f"max_queued_bytes {self.max_queued_bytes}",
            f"max_packet_size {self.max_packet_size}",
            # Nagle off: a PUBACK followed by a small publish otherwise waits for the
            # peer's delayed ACK (~40 ms per hop; bench/control_latency.py).
            "set_tcp_nodelay true",
        ]
        if self.log_file is not None or self.log_stderr:
            lines += [
                f"log_dest file {self.log_file}" if self.log_file else "log_dest stderr",
                "log_type error",
                "log_type warning",
                "log_type notice",
            ]
        else:
            lines.append("log_dest none")
        for listener in self.listeners:
            lines += _listener_lines(listener)
            lines.append(f"use_username_as_clientid {_bool(self.use_username_as_clientid)}")
        lines += [
            "# security: global (per_listener_settings false), after the listeners",
            f"allow_anonymous {_bool(self.allow_anonymous)}",
        ]
        if self.password_file is not None:
            lines.append(f"password_file {self.password_file}")
        if self.acl_file is not None:
            lines.append(f"acl_file {self.acl_file}")
        return "\n".join(lines) + "\n"


def _listener_lines(listener: Listener) -> list[str]:
    head = f"listener {listener.port}" + (f" {listener.host}" if listener.host else "")
    if isinstance(listener, MosquittoListener):
        return [head]
    tls = listener.tls
    lines = [
        head,
        f"cafile {tls.cafile}",
        f"certfile {tls.certfile}",
        f"keyfile {tls.keyfile}",
        f"tls_version {tls.tls_version}",
    ]
    if isinstance(listener, TlsPasswordListener):
        return [*lines, "require_certificate false"]
    return [
        *lines,
        "require_certificate true",
        "use_identity_as_username true",
        f"crlfile {listener.crlfile}",
    ]


def _check(conf: MosquittoConfig) -> None:
    if not conf.listeners:
        raise MosquittoConfigError("a broker needs at least one listener")
    ports = [listener.port for listener in conf.listeners]
    if len(set(ports)) != len(ports):
        raise MosquittoConfigError(f"listener ports must differ: {ports}")
    for listener in conf.listeners:
        if not isinstance(listener, MosquittoListener):
            continue
        if not _loopback(listener.host):
            raise MosquittoConfigError(
                f"plain listener {listener.port} must be on loopback, not {listener.host!r}"
            )
        if not conf.development:
            raise MosquittoConfigError(
                f"plain listener {listener.port} refused: plain MQTT only in development mode"
            )
    if conf.development:
        return
    if conf.allow_anonymous:
        raise MosquittoConfigError("allow_anonymous refused outside development mode")
    if not conf.use_username_as_clientid:
        raise MosquittoConfigError("use_username_as_clientid must be true outside development")
    if conf.acl_file is None:
        raise MosquittoConfigError("acl_file is required outside development mode")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _bool(value: bool) -> str:
    return "true" if value else "false"
