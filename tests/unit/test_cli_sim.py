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


def test_sim_site_refuses_an_unknown_region() -> None:
    out = CliRunner().invoke(app, ["sim", "site", "--site-id", "s1", "--region", "mars"])
    assert out.exit_code == 2
    assert "mars" in out.output


def test_sim_site_refuses_a_non_positive_capacity() -> None:
    args = ["sim", "site", "--site-id", "s1", "--pv-capacity-w", "0"]
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 2
    assert "pv_capacity_w" in out.output
