"""The ``potr`` CLI against a real database: migrate, registry, tokens, refusals."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cloud.identity import MAX_JWT_TTL_S
from cloud.identity.tokens import decode_token
from potr.cli import app

pytestmark = pytest.mark.integration


@pytest.fixture
def runner(database_url: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("POTR_DATABASE_URL", database_url)
    monkeypatch.setenv("POTR_JWT_SECRET", "cli-test-secret-" + "x" * 20)
    return CliRunner()


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


def test_token_create_issues_a_short_lived_token_for_a_known_role(runner: CliRunner) -> None:
    out = runner.invoke(app, ["token", "create", "--role", "support", "--ttl-s", "60"])
    assert out.exit_code == 0, out.output
    claims = decode_token(out.output.strip(), "cli-test-secret-" + "x" * 20)
    assert claims.role == "support"
    assert (claims.exp - claims.iat).total_seconds() == 60
    assert runner.invoke(app, ["token", "create", "--role", "root"]).exit_code == 2


def test_token_create_refuses_a_ttl_beyond_the_cap(runner: CliRunner) -> None:
    too_long = ["token", "create", "--role", "admin", "--ttl-s", str(MAX_JWT_TTL_S + 1)]
    assert runner.invoke(app, too_long).exit_code == 2
    longest = runner.invoke(app, [*too_long[:-1], str(MAX_JWT_TTL_S)])
    assert longest.exit_code == 0, longest.output
