"""``potr tech push`` takes the broker password from a file, the environment or a hidden
prompt — there is no command-line option that would show it in the process list."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from potr.cli import app

ARGS = ["tech", "push", "--site", "12", "--profile", "au-a-2020"]
ENV = {
    "POTR_TECH_EMPLOYEE": "E1001",
    "POTR_TECH_BROKER": "mqtt://127.0.0.1:1",
    "POTR_TECH_REGION": "au",
    "POTR_TECH_USERNAME": "_tech/alice",
}


def test_there_is_no_password_option() -> None:
    result = CliRunner().invoke(app, [*ARGS, "--password", "secret"], env=ENV)
    assert result.exit_code == 2
    assert "No such option" in result.output


def test_an_empty_password_file_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    empty = tmp_path / "password"
    empty.write_text("\n")
    empty.chmod(0o600)
    result = CliRunner().invoke(app, ARGS, env={**ENV, "POTR_TECH_PASSWORD_FILE": str(empty)})
    assert result.exit_code == 2
    assert "the password file is empty" in result.output


def test_a_missing_password_file_is_named(tmp_path: Path) -> None:
    gone = tmp_path / "nope"
    result = CliRunner().invoke(app, ARGS, env={**ENV, "POTR_TECH_PASSWORD_FILE": str(gone)})
    assert result.exit_code == 2
    assert "cannot read the password file" in result.output


def test_a_password_file_others_may_read_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "password"
    shared.write_text("secret\n")
    shared.chmod(0o644)
    result = CliRunner().invoke(app, ARGS, env={**ENV, "POTR_TECH_PASSWORD_FILE": str(shared)})
    assert result.exit_code == 2
    assert "chmod 600" in result.output
    assert "secret" not in result.output
