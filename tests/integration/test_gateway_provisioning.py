"""Provisioning end to end, as an operator does it (README "Provisioning a gateway"):
``potr pki init`` → ``potr broker render`` → a real Mosquitto started from the rendered
directory → ``potr gateway provision`` (password and certificate) → the gateway's
bundle connects → ``potr gateway revoke`` cuts it off within 2 s and clears its
retained messages. Commands run in-process (typer's runner) against real PostgreSQL and
the real broker; clients are paho probes with the bundles' files.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from cloud.credentials import read_credentials
from edge_agent.settings import AgentSettings
from potr.cli import app
from potr.provisioning import PID_FILE, reload_broker
from potr.servers.ports import free_port, port_open
from tests.integration.mqtt_probe import Probe, ProbeTls
from tests.waiting import until_sync


@dataclass
class Ops:
    """The operator's shell: ``potr`` commands with the region's settings."""

    runner: CliRunner
    root: Path
    port: int
    cert_port: int
    #: The site the fixture added (its id says its region: au, so not 1).
    site: str = ""

    @property
    def broker_dir(self) -> Path:
        return self.root / "broker-au"

    def potr(self, *args: str, ok: bool = True) -> str:
        result = self.runner.invoke(app, list(args))
        if ok:
            assert result.exit_code == 0, result.output
        return result.output

    def probe(self, bundle: Path, *, cert: bool = False) -> Probe:
        """A client with exactly what the bundle holds."""
        settings = yaml.safe_load((bundle / "agent.yaml").read_text())
        tls = ProbeTls(bundle / "ca.crt")
        if cert:
            tls = ProbeTls(bundle / "ca.crt", bundle / "client.crt", bundle / "client.key")
            return Probe(self.cert_port, tls=tls)
        secret = (bundle / "mqtt.secret").read_text().strip()
        return Probe(self.port, settings["mqtt_username"], secret, tls=tls)


@pytest.fixture
def ops(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Ops]:
    # Under /tmp, traversable: started as root, Mosquitto reads its files as "mosquitto".
    root = Path(tempfile.mkdtemp(prefix="potr-provision-", dir="/tmp"))
    os.chmod(root, 0o755)
    port, cert_port = free_port(), free_port()
    env = {
        "POTR_DATABASE_URL": database_url,
        "POTR_BROKER_REGION": "au",
        "POTR_BROKER_DIR": str(root / "broker-au"),
        "POTR_PKI_DIR": str(root / "pki"),
        "POTR_BROKER_URL": f"mqtts://127.0.0.1:{port}",
        "POTR_BROKER_CERT_URL": f"mqtts://127.0.0.1:{cert_port}",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    ops = Ops(CliRunner(), root, port, cert_port)
    ops.potr("db", "migrate")
    ops.potr("pki", "init", "--dir", str(root / "pki"))
    added = ops.potr(
        "registry",
        "site",
        "add",
        "--name",
        "Roof",
        "--region",
        "au",
        "--time-zone",
        "Australia/Sydney",
    )
    found = re.search(r"site (\d+) added", added)
    assert found, added
    ops.site = found.group(1)
    monkeypatch.delenv("POTR_BROKER_DIR")  # the form: --region and --out
    ops.potr(
        "broker",
        "render",
        "--region",
        "au",
        "--out",
        str(ops.broker_dir),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--cert-port",
        str(cert_port),
    )
    monkeypatch.setenv("POTR_BROKER_DIR", str(ops.broker_dir))
    proc = subprocess.Popen(
        ["mosquitto", "-c", str(ops.broker_dir / "mosquitto.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        until_sync(lambda: port_open("127.0.0.1", cert_port), 10, "the rendered broker listens")
        until_sync(lambda: (ops.broker_dir / "run" / "mosquitto.pid").exists(), 10, "its pid file")
        yield ops
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)


def test_provision_connect_revoke_a_password_gateway(ops: Ops) -> None:
    out = ops.potr(
        "gateway",
        "provision",
        "--id",
        "gw-roof-1",
        "--site",
        ops.site,
        "--out",
        str(ops.root / "b1"),
        "--install-dir",
        str(ops.root / "b1"),
    )
    assert "broker reloaded" in out
    secret = (ops.root / "b1" / "mqtt.secret").read_text().strip()
    assert secret not in out
    assert oct((ops.root / "b1" / "mqtt.secret").stat().st_mode & 0o777) == "0o600"
    settings = yaml.safe_load((ops.root / "b1" / "agent.yaml").read_text())
    assert settings["env"] == "production"
    assert settings["mqtt_url"] == f"mqtts://127.0.0.1:{ops.port}"
    # The agent accepts the bundle as it is, in production mode, secret read from its file.
    agent = AgentSettings.from_yaml(ops.root / "b1" / "agent.yaml")
    target = agent.mqtt_target()
    assert (target.tls, target.username) == (True, "gw-roof-1")
    assert target.password is not None
    assert target.password.get_secret_value() == secret

    # Ingest workers' passwords go into one credentials file (POTR_MQTT_CREDENTIALS_FILE).
    creds = ops.root / "ingest-credentials.yaml"
    for n in ("0", "1"):
        ops.potr(
            "broker",
            "identity",
            "--kind",
            "ingest",
            "--name",
            f"au-{n}",
            "--out",
            str(creds),
            "--credentials-file",
        )
    passwords = read_credentials(creds)
    assert sorted(passwords) == ["_ingest/au-0", "_ingest/au-1"]
    ingest_secret = ops.root / "ingest.secret"
    ingest_secret.write_text(passwords["_ingest/au-0"].get_secret_value())
    ingest = Probe(
        ops.port,
        "_ingest/au-0",
        ingest_secret.read_text().strip(),
        tls=ProbeTls(ops.broker_dir / "ca.crt"),
    )
    assert ingest.connect(), ingest.reason
    ingest.subscribe("$share/ingest/potr/v1/au/+/telemetry")

    gateway = ops.probe(ops.root / "b1")
    assert gateway.connect(), gateway.reason
    gateway.publish("potr/v1/au/gw-roof-1/state", b'{"online": true}', retain=True)
    gateway.publish("potr/v1/au/gw-roof-1/telemetry", b"first")
    assert ingest.wait_for("potr/v1/au/gw-roof-1/telemetry", b"first")
    ingest.subscribe("potr/v1/au/+/state")  # the retained state is there before revoke
    assert ingest.wait_for("potr/v1/au/gw-roof-1/state", b'{"online": true}')

    started = time.monotonic()
    out = ops.potr("gateway", "revoke", "--id", "gw-roof-1")
    assert gateway.wait_disconnected(2.0), "still connected 2 s after revoke"
    assert time.monotonic() - started < 2.0 + 5.0  # the command itself: a few DB calls
    assert "revoked" in out
    again = ops.probe(ops.root / "b1")
    assert not again.connect(), "a revoked gateway reconnected"
    # Its retained state is gone: a new reader with rights gets nothing retained.
    reader = Probe(
        ops.port,
        "_ingest/au-0",
        ingest_secret.read_text().strip(),
        tls=ProbeTls(ops.broker_dir / "ca.crt"),
        client_id=f"r-{uuid.uuid4().hex[:6]}",
    )
    ingest.close()
    assert reader.connect(), reader.reason
    reader.subscribe("potr/v1/au/+/state")
    # Retained messages of a subscription come before the SUBACK of the next one (one
    # connection, in order): after this SUBACK, anything retained would have arrived.
    reader.subscribe("potr/v1/au/+/birth")
    assert reader.topics() == []
    reader.close()


def test_provision_and_revoke_a_certificate_gateway(ops: Ops) -> None:
    bundle = ops.root / "b2"
    ops.potr(
        "gateway",
        "provision",
        "--id",
        "gw-roof-2",
        "--site",
        ops.site,
        "--credential",
        "certificate",
        "--out",
        str(bundle),
        "--install-dir",
        str(bundle),
    )
    assert oct((bundle / "client.key").stat().st_mode & 0o777) == "0o600"
    agent = AgentSettings.from_yaml(bundle / "agent.yaml")
    assert agent.mqtt_url == f"mqtts://127.0.0.1:{ops.cert_port}"
    assert agent.mqtt_cert_file == bundle / "client.crt"
    observer_secret = ops.root / "config.secret"
    ops.potr(
        "broker", "identity", "--kind", "ingest", "--name", "au-9", "--out", str(observer_secret)
    )
    ingest = Probe(
        ops.port,
        "_ingest/au-9",
        observer_secret.read_text().strip(),
        tls=ProbeTls(ops.broker_dir / "ca.crt"),
    )
    assert ingest.connect(), ingest.reason
    ingest.subscribe("potr/v1/au/+/telemetry")
    gateway = ops.probe(bundle, cert=True)
    assert gateway.connect(), gateway.reason
    gateway.publish("potr/v1/au/gw-roof-2/telemetry", b"before")
    assert ingest.wait_for("potr/v1/au/gw-roof-2/telemetry", b"before")

    ops.potr("gateway", "revoke", "--id", "gw-roof-2")
    # The CRL leaves a live TLS session connected; the ACL denies it everything from
    # the reload on. Keep publishing until 2 s have passed: nothing after that arrives.
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        gateway.publish("potr/v1/au/gw-roof-2/telemetry", b"during")
    gateway.publish("potr/v1/au/gw-roof-2/telemetry", b"after")
    other = ops.root / "b3"
    ops.potr(
        "gateway",
        "provision",
        "--id",
        "gw-roof-3",
        "--site",
        ops.site,
        "--out",
        str(other),
        "--install-dir",
        str(other),
    )
    marker = ops.probe(other)
    assert marker.connect(), marker.reason
    marker.publish("potr/v1/au/gw-roof-3/telemetry", b"marker")
    assert ingest.wait_for("potr/v1/au/gw-roof-3/telemetry", b"marker")
    assert ("potr/v1/au/gw-roof-2/telemetry", b"after") not in ingest.received
    assert not ops.probe(bundle, cert=True).connect(timeout_s=3), "a revoked certificate"
    for p in (gateway, marker, ingest):
        p.close()


def test_bad_provisioning_requests_are_refused_with_the_reason(
    ops: Ops, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = ops.potr(
        "gateway",
        "provision",
        "--id",
        "GW_BAD",
        "--site",
        ops.site,
        "--out",
        str(ops.root / "x"),
        ok=False,
    )
    assert "must match" in out
    ops.potr(
        "gateway", "provision", "--id", "gw-dup", "--site", ops.site, "--out", str(ops.root / "d1")
    )
    out = ops.potr(
        "gateway",
        "provision",
        "--id",
        "gw-dup",
        "--site",
        ops.site,
        "--out",
        str(ops.root / "d2"),
        ok=False,
    )
    assert "already exists" in out
    out = ops.potr(
        "gateway",
        "provision",
        "--id",
        "gw-far",
        "--site",
        "99",
        "--out",
        str(ops.root / "d3"),
        ok=False,
    )
    assert "site 99 does not exist" in out
    monkeypatch.setenv("POTR_BROKER_REGION", "mars")
    result = ops.runner.invoke(
        app,
        [
            "gateway",
            "provision",
            "--id",
            "gw-mars",
            "--site",
            ops.site,
            "--out",
            str(ops.root / "d4"),
        ],
    )
    assert result.exit_code == 2
    assert "broker_region" in result.output
    monkeypatch.setenv("POTR_BROKER_REGION", "us")
    out = ops.potr(
        "gateway",
        "provision",
        "--id",
        "gw-us",
        "--site",
        ops.site,
        "--out",
        str(ops.root / "d5"),
        ok=False,
    )
    assert "region au, not us" in out


def test_a_technician_identity_is_revoked_at_once(ops: Ops) -> None:
    secret_file = ops.root / "alice.secret"
    out = ops.potr(
        "broker", "identity", "--kind", "technician", "--name", "alice", "--out", str(secret_file)
    )
    assert "_tech/alice" in out
    tech = Probe(
        ops.port,
        "_tech/alice",
        secret_file.read_text().strip(),
        tls=ProbeTls(ops.broker_dir / "ca.crt"),
    )
    assert tech.connect(), tech.reason
    ops.potr("broker", "revoke", "--username", "_tech/alice")
    assert tech.wait_disconnected(2.0), "still connected 2 s after revoke"
    out = ops.potr("broker", "revoke", "--username", "gw-roof-9", ok=False)
    assert "gateway revoke" in out


def test_a_password_rotation_waits_for_the_sync_then_costs_one_reconnect(ops: Ops) -> None:
    bundle = ops.root / "rot"
    ops.potr("gateway", "provision", "--id", "gw-rot", "--site", ops.site, "--out", str(bundle))
    creds = ops.root / "creds.yaml"
    ops.potr(
        "broker",
        "identity",
        "--kind",
        "ingest",
        "--name",
        "au-5",
        "--out",
        str(creds),
        "--credentials-file",
    )
    ingest = Probe(
        ops.port,
        "_ingest/au-5",
        read_credentials(creds)["_ingest/au-5"].get_secret_value(),
        tls=ProbeTls(ops.broker_dir / "ca.crt"),
    )
    assert ingest.connect(), ingest.reason
    ingest.subscribe("potr/v1/au/+/telemetry")
    old = ops.probe(bundle)
    assert old.connect(), old.reason

    out = ops.potr("gateway", "rotate", "--id", "gw-rot", "--out", str(ops.root / "rot-new"))
    assert "potr broker sync" in out
    # Not reloaded yet: the live session still publishes with the old secret.
    old.publish("potr/v1/au/gw-rot/telemetry", b"still on the old secret")
    assert ingest.wait_for("potr/v1/au/gw-rot/telemetry", b"still on the old secret")

    shutil.copy(ops.root / "rot-new" / "mqtt.secret", bundle / "mqtt.secret")  # to the gateway
    assert "broker reloaded" in ops.potr("broker", "sync")
    assert old.wait_disconnected(2.0), "the old secret's session outlived the reload"
    new = ops.probe(bundle)
    assert new.connect(), new.reason
    new.publish("potr/v1/au/gw-rot/telemetry", b"on the new secret")
    assert ingest.wait_for("potr/v1/au/gw-rot/telemetry", b"on the new secret")
    for p in (new, ingest):
        p.close()


def test_a_stale_pid_file_is_not_reported_as_a_reload(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / PID_FILE).write_text(f"{os.getpid()}\n")  # a live process, not mosquitto
    assert reload_broker(tmp_path) is False
    (tmp_path / PID_FILE).write_text("not a pid\n")
    assert reload_broker(tmp_path) is False


def test_a_config_mosquitto_refuses_is_never_installed(ops: Ops) -> None:
    conf = ops.broker_dir / "mosquitto.conf"
    before = conf.read_text()
    key = ops.broker_dir / "server.key"
    key.write_bytes(b"-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    out = ops.potr(
        "broker",
        "render",
        "--host",
        "127.0.0.1",
        "--port",
        str(free_port()),
        "--cert-port",
        str(ops.cert_port),
        ok=False,
    )
    assert "Mosquitto refused the rendered config" in out
    assert conf.read_text() == before  # the live config is untouched
