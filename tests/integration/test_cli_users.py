"""``potr user``: add (password from stdin, a first PIN), list, reset-pin, unlock, and
disable — which revokes a technician's broker identity where this host runs the broker,
and says what to run where it does not."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from broker_config.passwords import amqtt_hash, mosquitto_hash
from cloud.adapters.postgres import create_pool
from cloud.keyfiles import write_key_file
from cloud.migrate import migrate
from cloud.registry import BrokerIdentities
from potr.cli import app
from potr.provisioning import PASSWORD_FILE

pytestmark = pytest.mark.integration


@pytest.fixture
def runner(database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    migrate(database_url)
    for name in list(os.environ):
        if name.startswith("POTR_BROKER") or name == "POTR_PKI_DIR":
            monkeypatch.delenv(name)
    monkeypatch.setenv("POTR_DATABASE_URL", database_url)
    monkeypatch.setenv("COLUMNS", "200")  # rich's tables: one user per line
    write_key_file(tmp_path / "identity.pem")
    monkeypatch.setenv("POTR_IDENTITY_SIGNING_KEY_FILE", str(tmp_path / "identity.pem"))
    return CliRunner()


def _flat(output: str) -> str:
    return " ".join(output.split())  # rich wraps long lines


def test_add_list_reset_pin_and_unlock(runner: CliRunner) -> None:
    added = runner.invoke(
        app,
        ["user", "add", "--email", "ana@potr.example", "--name", "Ana", "--role", "support",
         "--region", "es", "--employee-no", "s-100", "--password-stdin"],
        input="a long enough support password\n",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    first_pin = re.search(r"first PIN of S-100 \(shown once\): (\d{6})", added.output)
    assert first_pin, added.output
    assert "no password yet" not in added.output

    listed = runner.invoke(app, ["user", "list", "--role", "support"])
    assert "ana@potr.example" in listed.output
    assert "S-100" in listed.output

    reset = runner.invoke(app, ["user", "reset-pin", "S-100"])
    assert reset.exit_code == 0, reset.output
    new_pin = re.search(r"new PIN of S-100 \(shown once\): (\d{6})", reset.output)
    assert new_pin
    assert new_pin.group(1) != first_pin.group(1)  # 1 in a million it repeats; fine
    assert runner.invoke(app, ["user", "unlock", "ana@potr.example"]).exit_code == 0

    dup = runner.invoke(
        app, ["user", "add", "--email", "ANA@potr.example", "--name", "A", "--role", "admin",
              "--region", "au"],
    )  # fmt: skip
    assert dup.exit_code == 1
    assert "email exists" in _flat(dup.output)
    bad = runner.invoke(
        app, ["user", "add", "--email", "x@potr.example", "--name", "X", "--role", "root",
              "--region", "au"],
    )  # fmt: skip
    assert bad.exit_code == 2
    assert runner.invoke(app, ["user", "disable", "nobody@potr.example"]).exit_code == 1


def test_disable_without_the_broker_here_says_what_to_run(
    runner: CliRunner, database_url: str
) -> None:
    _technician_identity(database_url, "_tech/tess")
    add = ["user", "add", "--email", "tess@potr.example", "--name", "Tess", "--role", "mosie",
           "--region", "au", "--employee-no", "M-1", "--broker-username", "_tech/tess"]  # fmt: skip
    assert runner.invoke(app, add).exit_code == 0
    out = runner.invoke(app, ["user", "disable", "M-1"])
    assert out.exit_code == 0, out.output
    assert "disabled; sessions revoked" in _flat(out.output)
    assert "run `potr broker revoke --username _tech/tess`" in _flat(out.output)
    listed = runner.invoke(app, ["user", "list"])
    assert re.search(r"M-1\s+│\s+\d{4}-\d\d-\d\d", listed.output), listed.output


def test_disable_revokes_the_broker_identity_where_the_broker_lives(
    runner: CliRunner, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _technician_identity(database_url, "_tech/tom")
    broker_dir = tmp_path / "broker"
    monkeypatch.setenv("POTR_BROKER_REGION", "au")
    monkeypatch.setenv("POTR_BROKER_DIR", str(broker_dir))
    monkeypatch.setenv("POTR_PKI_DIR", str(tmp_path / "pki"))
    add = ["user", "add", "--email", "tom@potr.example", "--name", "Tom", "--role", "mosie",
           "--region", "au", "--broker-username", "_tech/tom"]  # fmt: skip
    assert runner.invoke(app, add).exit_code == 0
    out = runner.invoke(app, ["user", "disable", "tom@potr.example"])
    assert out.exit_code == 0, out.output
    assert "broker identity _tech/tom revoked" in out.output
    pool = create_pool(database_url, max_size=1)
    try:
        record = BrokerIdentities(pool).get("_tech/tom")
    finally:
        pool.close()
    assert record is not None
    assert record.revoked
    assert "_tech/tom" not in (broker_dir / PASSWORD_FILE).read_text()


def _technician_identity(database_url: str, username: str) -> None:
    pool = create_pool(database_url, max_size=1)
    try:
        hashes = (mosquitto_hash("tech secret"), amqtt_hash("tech secret"))
        BrokerIdentities(pool).add(username, "au", "password", hashes=hashes)
    finally:
        pool.close()
