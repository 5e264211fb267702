"""The ``potr`` CLI against a real database: migrate, registry, tokens, refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cloud.identity import MAX_ACCESS_TTL_S, load_verifying_keys, verify_access_token
from cloud.keyfiles import public_key_path, write_key_file
from potr.cli import app

pytestmark = pytest.mark.integration


@pytest.fixture
def runner(database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    monkeypatch.setenv("POTR_DATABASE_URL", database_url)
    write_key_file(tmp_path / "identity.pem")
    monkeypatch.setenv("POTR_IDENTITY_SIGNING_KEY_FILE", str(tmp_path / "identity.pem"))
    return CliRunner()


def test_migrate_refuses_a_backend_the_server_cannot_give(runner: CliRunner) -> None:
    asked = runner.invoke(app, ["db", "migrate", "--backend", "timescale"])
    assert asked.exit_code == 2
    assert "no timescaledb extension" in asked.output
    unknown = runner.invoke(app, ["db", "migrate", "--backend", "mars"])
    assert unknown.exit_code == 2
    assert "auto, plain or timescale" in unknown.output
    plain = runner.invoke(app, ["db", "migrate", "--backend", "plain"])
    assert plain.exit_code == 0, plain.output
    assert "telemetry/002_rollups.plain.sql" in plain.output


def test_migrate_twice_then_add_and_list_sites_and_gateways(runner: CliRunner) -> None:
    first = runner.invoke(app, ["db", "migrate"])
    assert first.exit_code == 0, first.output
    assert "registry/001_registry.sql" in first.output
    again = runner.invoke(app, ["db", "migrate"])
    assert "up to date" in again.output
    added = runner.invoke(
        app,
        [
            "registry",
            "site",
            "add",
            "--name",
            "Roof 1",
            "--region",
            "es",
            "--time-zone",
            "Europe/Madrid",
            "--utility",
            "i-DE",
        ],
    )
    assert added.exit_code == 0, added.output
    site_id = added.output.split()[1]
    gw = runner.invoke(app, ["registry", "gateway", "add", "--id", "gw-es-0001", "--site", site_id])
    assert gw.exit_code == 0, gw.output
    assert "(es)" in gw.output
    listed = runner.invoke(app, ["registry", "gateway", "list"])
    assert "gw-es-0001" in listed.output
    dup = runner.invoke(
        app, ["registry", "gateway", "add", "--id", "gw-es-0001", "--site", site_id]
    )
    assert dup.exit_code == 1
    assert "already exists" in dup.output


def test_bad_registry_input_is_refused_with_the_field_named(runner: CliRunner) -> None:
    assert runner.invoke(app, ["db", "migrate"]).exit_code == 0
    bad = runner.invoke(
        app,
        ["registry", "site", "add", "--name", "X", "--region", "fr", "--time-zone", "Europe/Paris"],
    )
    assert bad.exit_code == 2
    assert "region" in bad.output
    bad_gw = runner.invoke(app, ["registry", "gateway", "add", "--id", "BAD ID", "--site", "1"])
    assert bad_gw.exit_code == 2


def test_token_create_signs_a_short_lived_token_with_the_identity_key(
    runner: CliRunner, tmp_path: Path
) -> None:
    create = ["token", "create", "--role", "support", "--region", "us", "--scope", "read"]
    out = runner.invoke(app, create)
    assert out.exit_code == 0, out.output
    keys = load_verifying_keys(public_key_path(tmp_path / "identity.pem"), production=True)
    principal = verify_access_token(out.output.strip(), keys)
    assert principal.role.value == "support"
    assert principal.region.value == "us"
    assert principal.scopes == frozenset({"read"})
    unknown = ["token", "create", "--role", "root", "--region", "au"]
    assert runner.invoke(app, unknown).exit_code == 2
    beyond = ["token", "create", "--role", "support", "--region", "au", "--scope", "admin"]
    assert runner.invoke(app, beyond).exit_code == 2


def test_token_create_refuses_a_ttl_beyond_the_cap(runner: CliRunner) -> None:
    too_long = ["token", "create", "--role", "admin", "--region", "es"]
    too_long += ["--ttl-s", str(MAX_ACCESS_TTL_S + 1)]
    assert runner.invoke(app, too_long).exit_code == 2
    longest = runner.invoke(app, [*too_long[:-1], str(MAX_ACCESS_TTL_S)])
    assert longest.exit_code == 0, longest.output


def test_token_create_without_a_key_says_how_to_make_one(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("POTR_IDENTITY_SIGNING_KEY_FILE")
    out = runner.invoke(app, ["token", "create", "--role", "admin", "--region", "au"])
    assert out.exit_code == 1
    assert "potr keys generate" in " ".join(out.output.split())
