"""The agent over TLS to a real Mosquitto (issue 12, point 2, agent side): it verifies the
broker against the CA it is given — a broker signed by another CA, or a certificate for
another host name, is refused — and proves itself with a client certificate when the
listener asks for one, in production mode.

The PKI is made here with ``cryptography`` (a CA, a server certificate for
``localhost``, a client certificate with the gateway id as CN); the lead's PKI tooling
gets its own tests.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import pwd
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from edge_agent.settings import AgentSettings
from potr.servers.mosquitto import PrivateMosquitto
from potr.servers.ports import free_port
from tests.integration.harness import running_agent
from tests.integration.witness import Witness
from tests.waiting import until

pytestmark = [pytest.mark.integration, pytest.mark.security]

GATEWAY = "tls-au-0001"


class _Pki:
    """A CA and certificates it signs, written as PEM files into ``root``."""

    def __init__(self, root: Path, name: str) -> None:
        self.root = root
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = dt.datetime.now(dt.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(self.name)
            .issuer_name(self.name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        pem = self.cert.public_bytes(serialization.Encoding.PEM)
        self.ca_file = self._write(f"{name}.crt", pem)

    def _write(self, filename: str, data: bytes, mode: int = 0o644) -> Path:
        path = self.root / filename
        path.write_bytes(data)
        path.chmod(mode)
        return path

    def issue(self, cn: str, *, dns: str | None = None, client: bool = False) -> tuple[Path, Path]:
        """A certificate and its key (mode 0600): for a server ``dns`` name, or a client."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(self.name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
        )
        if dns is not None:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(dns)]), critical=False
            )
        usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return (
            self._write(f"{cn}.crt", cert.public_bytes(serialization.Encoding.PEM)),
            self._write(f"{cn}.key", key_pem, 0o600),
        )


class TlsMosquitto(PrivateMosquitto):
    """The private Mosquitto plus a TLS listener that requires a client certificate."""

    def __init__(self, ca: Path, cert: Path, key: Path) -> None:
        self.tls_port = free_port()
        self._tls = (ca, cert, key)
        super().__init__(persistence=False)

    def _write_config(self) -> None:
        super()._write_config()
        # Copied into the broker's own directory: Mosquitto reads them after dropping to
        # its user, who cannot traverse pytest's private tmp_path.
        ca, cert, key = (shutil.copy(f, self.root / f.name) for f in self._tls)
        if os.geteuid() == 0:
            pw = pwd.getpwnam("mosquitto")
            os.chown(key, pw.pw_uid, pw.pw_gid)
        conf = self.root / "mosquitto.conf"
        conf.write_text(
            conf.read_text(encoding="utf-8") + f"listener {self.tls_port} 127.0.0.1\n"
            f"cafile {ca}\ncertfile {cert}\nkeyfile {key}\nrequire_certificate true\n",
            encoding="utf-8",
        )


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Any]:
    ca = _Pki(tmp_path, "potr-test-ca")
    other = _Pki(tmp_path, "some-other-ca")
    server = ca.issue("broker", dns="localhost")
    client = ca.issue(GATEWAY, client=True)
    return {"ca": ca.ca_file, "other_ca": other.ca_file, "server": server, "client": client}


@pytest.fixture
def broker(pki: dict[str, Any]) -> Iterator[TlsMosquitto]:
    b = TlsMosquitto(pki["ca"], *pki["server"])
    b.start()
    try:
        yield b
    finally:
        b.cleanup()


def _settings(url: str, tmp_path: Path, ca: Path, client: tuple[Path, Path]) -> AgentSettings:
    return AgentSettings(
        gateway_id=GATEWAY,
        region="au",
        env="production",
        mqtt_url=url,
        mqtt_ca_file=ca,
        mqtt_cert_file=client[0],
        mqtt_key_file=client[1],
        buffer_path=tmp_path / "buffer.sqlite",
        reconnect_min_s=0.1,
        reconnect_max_s=0.5,
    )


async def test_the_agent_connects_over_mutual_tls_in_production(
    broker: TlsMosquitto, pki: dict[str, Any], tmp_path: Path
) -> None:
    settings = _settings(f"mqtts://localhost:{broker.tls_port}", tmp_path, pki["ca"], pki["client"])
    with Witness(broker.port, GATEWAY) as w:
        await until(w.connected.is_set, 10, "the witness to subscribe")
        async with running_agent(settings) as agent:
            await until(agent.publisher.connected.is_set, 15, "the agent to connect over TLS")
            await until(lambda: w.of("birth"), 10, "the birth, through the TLS listener")
    assert w.of("birth")[0].doc["gateway_id"] == GATEWAY


@pytest.mark.parametrize(
    ("host", "ca", "why"),
    [
        ("localhost", "other_ca", "certificate verify failed"),  # another CA signed it
        ("127.0.0.1", "ca", "IP address mismatch"),  # issued for localhost only
    ],
)
async def test_a_broker_the_ca_does_not_vouch_for_is_refused(
    broker: TlsMosquitto,
    pki: dict[str, Any],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    host: str,
    ca: str,
    why: str,
) -> None:
    settings = _settings(f"mqtts://{host}:{broker.tls_port}", tmp_path, pki[ca], pki["client"])
    with caplog.at_level(logging.WARNING, logger="edge_agent.publisher"):
        async with running_agent(settings) as agent:
            await until(lambda: why in caplog.text, 15, "the handshake to be refused")
            assert agent.publisher.sessions == 0
    assert not agent.publisher.connected.is_set()
