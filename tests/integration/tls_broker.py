"""A private Mosquitto with TLS listeners and passwords, its PKI made here with
``cryptography``: what the cloud's MQTT clients must connect to in production.

One fixture, ``tls_broker``, so tests can move to the project's own PKI and secure
broker (``broker_config``) by replacing it alone. Listeners, both TLS on 127.0.0.1 with
``use_username_as_clientid`` (as the regional brokers): ``port`` takes passwords,
``cert_port`` client certificates (the CN is the username). The server certificate names
only ``IP:127.0.0.1``, so connecting to ``localhost`` fails the name check.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import pwd
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from broker_config.passwords import mosquitto_hash, new_secret, render_password_file
from potr.servers.mosquitto import PrivateMosquitto
from potr.servers.ports import free_port

__all__ = ["TlsBroker", "tls_broker"]

#: The identities the broker knows, each with its own password.
USERS = ("_ingest/au-0", "_ingest/au-1", "_config/au")
#: The client certificate's identity (its CN).
CERT_USER = "_ingest/au-7"


@dataclass
class _Issued:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _issue(cn: str, issuer: _Issued | None, *, ca: bool = False, server: bool = False) -> _Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    signer_key = key if issuer is None else issuer.key  # a CA signs itself
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn) if issuer is None else issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    )
    if ca:
        usage = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
        builder = builder.add_extension(usage, critical=True)
    else:
        eku = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        usage = x509.KeyUsage(True, False, False, False, False, False, False, False, False)
        builder = builder.add_extension(usage, critical=True)
        builder = builder.add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(signer_key.public_key())
        builder = builder.add_extension(aki, critical=False)
    if server:
        san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
        builder = builder.add_extension(san, critical=False)
    return _Issued(key, builder.sign(signer_key, hashes.SHA256()))


def _write(path: Path, issued: _Issued, *, key: bool) -> Path:
    pem = issued.cert.public_bytes(serialization.Encoding.PEM)
    if key:
        pem = issued.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if key else 0o644)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    return path


class TlsBroker(PrivateMosquitto):
    """Mosquitto on two TLS listeners; the PKI and passwords are in its own directory."""

    def __init__(self) -> None:
        self.cert_port = free_port()
        self.passwords = {user: new_secret() for user in USERS}
        super().__init__(persistence=False)

    @property
    def url(self) -> str:
        return f"mqtts://127.0.0.1:{self.port}"

    def _write_config(self) -> None:
        ca = _issue("potr test CA", None, ca=True)
        other = _issue("another CA", None, ca=True)
        server = _issue("broker", ca, server=True)
        client = _issue(CERT_USER, ca)
        d = self.root
        self.ca_file = _write(d / "ca.pem", ca, key=False)
        self.other_ca_file = _write(d / "other-ca.pem", other, key=False)
        server_cert = _write(d / "server.pem", server, key=False)
        server_key = _write(d / "server.key", server, key=True)
        self.client_cert = _write(d / "client.pem", client, key=False)
        self.client_key = _write(d / "client.key", client, key=True)
        password_file = d / "passwords"
        hashes_ = {u: mosquitto_hash(p) for u, p in self.passwords.items()}
        password_file.write_text(render_password_file(hashes_), encoding="utf-8")
        password_file.chmod(0o600)
        tls = [f"cafile {self.ca_file}", f"certfile {server_cert}", f"keyfile {server_key}"]
        # The certificate listener first: the broker is ready when the second one listens.
        lines = [
            "per_listener_settings false",
            "persistence false",
            "log_dest none",
            f"listener {self.cert_port} 127.0.0.1",
            *tls,
            "require_certificate true",
            "use_identity_as_username true",
            "use_username_as_clientid true",
            f"listener {self.port} 127.0.0.1",
            *tls,
            "use_username_as_clientid true",
            "allow_anonymous false",
            f"password_file {password_file}",
        ]
        conf = d / "mosquitto.conf"
        conf.write_text("\n".join(lines) + "\n", encoding="utf-8")
        conf.chmod(0o644)
        if os.geteuid() == 0:  # started as root, mosquitto reads its files as mosquitto
            pw = pwd.getpwnam("mosquitto")
            for path in (server_key, password_file):
                os.chown(path, pw.pw_uid, pw.pw_gid)


@pytest.fixture
def tls_broker() -> Iterator[TlsBroker]:
    broker = TlsBroker()
    broker.start()
    try:
        yield broker
    finally:
        broker.cleanup()
