from pathlib import Path

from typer.testing import CliRunner

from potr.cli import app


def test_sim_devices_refuses_an_unknown_profile_naming_it(tmp_path: Path) -> None:
    config = tmp_path / "site.yaml"
    config.write_text("devices:\n  - {profile: no-such-inverter, unit_id: 1}\n")
    out = CliRunner().invoke(app, ["sim", "devices", "--config", str(config)])
    assert out.exit_code == 2
    assert "no-such-inverter" in out.output


def test_sim_devices_refuses_unknown_keys(tmp_path: Path) -> None:
    config = tmp_path / "site.yaml"
    config.write_text("devcies: []\n")
    out = CliRunner().invoke(app, ["sim", "devices", "--config", str(config)])
    assert out.exit_code == 2
    assert "devcies" in out.output
