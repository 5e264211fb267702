"""``potr-agent``: the agent's lean entry point (what the systemd unit runs)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "potr.agent_main", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_settings_it_refuses_exit_2_naming_the_file(tmp_path: Path) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text("gateway_id: gw-1\nregion: mars\n", encoding="utf-8")
    done = _run("--config", str(config))
    assert done.returncode == 2
    assert f"refused {config}" in done.stderr
    assert "region" in done.stderr


def test_a_missing_config_is_a_usage_error(tmp_path: Path) -> None:
    done = _run("--config", str(tmp_path / "nowhere.yaml"))
    assert done.returncode == 2
    assert "no such file" in done.stderr


def test_it_loads_neither_the_cli_framework_nor_the_signing_library() -> None:
    code = (
        "import sys, potr.agent_main, edge_agent.app;"
        "heavy = ('typer', 'rich', 'cryptography', 'potr.cli');"
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"


def test_a_trusted_key_file_that_is_no_key_is_refused_before_start(tmp_path: Path) -> None:
    key = tmp_path / "cloud.pub"
    key.write_text("not a key\n", encoding="utf-8")
    config = tmp_path / "agent.yaml"
    config.write_text(
        f"gateway_id: gw-1\nregion: au\nbuffer_path: {tmp_path / 'b.sqlite'}\n"
        f"trusted_key_files: [{key}]\n",
        encoding="utf-8",
    )
    done = _run("--config", str(config))
    assert done.returncode == 2
    assert "trusted_key_files" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_plaintext_broker_in_production_is_refused_at_start_with_the_reason(
    tmp_path: Path,
) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text(
        f"gateway_id: gw-1\nregion: au\nenv: production\nbuffer_path: {tmp_path / 'b.sqlite'}\n"
        "mqtt_url: mqtt://gw-1:s3cret@broker.example:1883\n",
        encoding="utf-8",
    )
    done = _run("--config", str(config))
    assert done.returncode == 2
    assert "plaintext MQTT is refused in production" in done.stderr
    assert "s3cret" not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr
