"""``potr pki``: init, issue, revoke, crl, list — and never a key on the terminal."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from potr.cli import app


class Pki:
    """The CLI against one CA directory, keeping everything it printed."""

    def __init__(self, tmp_path: Path) -> None:
        self.runner = CliRunner()
        self.dir = tmp_path / "ca"
        self.printed: list[str] = []

    def __call__(self, *args: str, ok: bool = True) -> str:
        result = self.runner.invoke(app, ["pki", args[0], "--dir", str(self.dir), *args[1:]])
        self.printed.append(result.output)
        assert (result.exit_code == 0) == ok, result.output
        return result.output


@pytest.fixture
def cli(tmp_path: Path) -> Pki:
    pki = Pki(tmp_path)
    pki("init")
    return pki


def _key_lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if not line.startswith("-----")]


def test_init_twice_is_refused(cli: Pki) -> None:
    assert "already holds a CA" in cli("init", ok=False)


def test_issue_a_broker_certificate_and_a_gateway_certificate(cli: Pki, tmp_path: Path) -> None:
    out = cli(
        "issue",
        "--server",
        "broker-au",
        "--host",
        "10.0.0.5",
        "--host",
        "mqtt.au.example",
        "--out",
        str(tmp_path / "broker"),
    )
    assert f"key {tmp_path / 'broker' / 'server.key'} (mode 600)" in out
    cli("issue", "--client", "gw-au-0001", "--out", str(tmp_path / "gw"))
    key = tmp_path / "gw" / "client.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    listed = cli("list")
    assert re.search(r"broker-au\s+server\s+\S+\s+valid\s+10\.0\.0\.5 mqtt\.au\.example", listed)
    assert re.search(r"gw-au-0001\s+client\s+\S+\s+valid", listed)


def test_revoke_by_the_serial_list_prints(cli: Pki, tmp_path: Path) -> None:
    issued = cli("issue", "--client", "gw-au-0001", "--out", str(tmp_path / "old"))
    cli("issue", "--client", "gw-au-0001", "--out", str(tmp_path / "new"))
    serial = re.search(r"serial ([0-9A-F]+)", issued)
    assert serial is not None
    out = cli("revoke", "--serial", serial.group(1))
    assert f"serial {serial.group(1)}" in out
    statuses = re.findall(r"gw-au-0001\s+client\s+\S+\s+(\w+)", cli("list"))
    assert statuses == ["revoked", "valid"]


def test_revoke_by_cn_and_refresh_the_crl(cli: Pki, tmp_path: Path) -> None:
    cli("issue", "--client", "gw-au-0001", "--out", str(tmp_path / "gw"))
    assert "revoked client 'gw-au-0001'" in cli("revoke", "--cn", "gw-au-0001")
    assert "next update" in cli("crl", "--days", "7")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("issue", "--out", "x"), "exactly one of --server NAME or --client CN"),
        (("issue", "--client", "gw-au-0001", "--host", "h", "--out", "x"), "for --server"),
        (("issue", "--client", "Bad Name", "--out", "x"), "client CN"),
        (("revoke",), "exactly one of --serial S or --cn CN"),
        (("revoke", "--serial", "zz"), "not hexadecimal"),
        (("revoke", "--cn", "gw-nobody"), "no issued certificate"),
    ],
)
def test_mistakes_are_refused_with_the_reason(
    cli: Pki, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    assert message in cli(*args, ok=False)


def test_without_a_ca_it_says_to_run_init(tmp_path: Path) -> None:
    pki = Pki(tmp_path)
    assert "pki init" in pki("list", ok=False)


def test_no_key_is_ever_printed(cli: Pki, tmp_path: Path) -> None:
    cli("issue", "--server", "b", "--host", "127.0.0.1", "--out", str(tmp_path / "b"))
    cli("issue", "--client", "gw-au-0001", "--out", str(tmp_path / "gw"))
    cli("revoke", "--cn", "gw-au-0001")
    cli("list")
    printed = "\n".join(cli.printed)
    assert "PRIVATE KEY" not in printed
    for key in (cli.dir / "ca.key", tmp_path / "b" / "server.key", tmp_path / "gw" / "client.key"):
        for line in _key_lines(key):
            assert line not in printed
