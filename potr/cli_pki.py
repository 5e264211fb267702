"""``potr pki init|issue|revoke|crl|list``: the brokers' private CA (``broker_config.pki``).

Prints serials, names, dates and paths — never a key.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from potr.console import CallConsole

if TYPE_CHECKING:
    from broker_config.pki import IssuedFiles

console = CallConsole()
pki_app = typer.Typer(help="The brokers' private certificate authority", no_args_is_help=True)

_DIR = typer.Option(..., "--dir", help="the CA directory (ca.key, ca.crt, crl.pem, index.json)")


def register(app: typer.Typer) -> None:
    app.add_typer(pki_app, name="pki")


def _fail(exc: Exception) -> typer.Exit:
    console.print(f"[red]{exc}[/red]", soft_wrap=True)
    return typer.Exit(1)


@pki_app.command("init")
def pki_init(
    directory: Path = _DIR,
    name: str = typer.Option("PoTR brokers CA", help="the CA certificate's common name"),
    days: int = typer.Option(3650, help="CA validity in days"),
) -> None:
    """Make a new CA: key (0600), self-signed certificate, empty CRL, index.

    Refuses a directory that already holds one."""
    from broker_config import pki

    try:
        ca = pki.init(directory, name=name, days=days)
    except (pki.PkiError, OSError) as exc:
        raise _fail(exc) from None
    typer.echo(f"CA {ca.cn!r} serial {ca.serial_hex} valid until {ca.not_after:%Y-%m-%d}")
    typer.echo(f"certificate {directory / 'ca.crt'}")


@pki_app.command("issue")
def pki_issue(
    directory: Path = _DIR,
    out: Path = typer.Option(..., "--out", help="folder for the certificate, key and ca.crt"),
    server: str | None = typer.Option(None, "--server", help="a broker's name"),
    host: list[str] = typer.Option([], "--host", help="the broker's IP or DNS name (repeat)"),
    client: str | None = typer.Option(None, "--client", help="a gateway id (the CN)"),
    days: int = typer.Option(365, help="validity in days (capped at the CA's)"),
    key_group: str | None = typer.Option(
        None, "--key-group", help="server key 0640 for this group (mosquitto), else 0600"
    ),
) -> None:
    """Issue a broker certificate (--server NAME --host H [--host H2]) or a gateway's
    client certificate (--client CN) into --out."""
    from broker_config import pki

    if (server is None) == (client is None):
        raise _fail(ValueError("give exactly one of --server NAME or --client CN"))
    if client is not None and (host or key_group):
        raise _fail(ValueError("--host and --key-group are for --server"))
    try:
        if server is not None:
            issued = pki.issue_server(directory, server, host, out, days=days, key_group=key_group)
        else:
            assert client is not None
            issued = pki.issue_client(directory, client, out, days=days)
    except (pki.PkiError, OSError) as exc:
        raise _fail(exc) from None
    _report(issued)


def _report(issued: IssuedFiles) -> None:
    r = issued.record
    typer.echo(f"{r.kind} {r.cn!r} serial {r.serial_hex} valid until {r.not_after:%Y-%m-%d}")
    typer.echo(f"certificate {issued.cert_file}")
    typer.echo(f"key {issued.key_file} (mode {issued.key_file.stat().st_mode & 0o777:o})")
    typer.echo(f"CA certificate {issued.ca_file}")


@pki_app.command("revoke")
def pki_revoke(
    directory: Path = _DIR,
    serial: str | None = typer.Option(None, "--serial", help="one certificate (hex serial)"),
    cn: str | None = typer.Option(None, "--cn", help="every unrevoked certificate of this CN"),
) -> None:
    """Revoke by serial or CN and re-sign crl.pem; then give brokers the new crl.pem and
    reload them (SIGHUP): new connections with it are refused."""
    from broker_config import pki

    if (serial is None) == (cn is None):
        raise _fail(ValueError("give exactly one of --serial S or --cn CN"))
    try:
        done = pki.revoke(
            directory, serial=pki.parse_serial(serial) if serial is not None else None, cn=cn
        )
    except (pki.PkiError, OSError) as exc:
        raise _fail(exc) from None
    for record in done:
        typer.echo(f"revoked {record.kind} {record.cn!r} serial {record.serial_hex}")
    typer.echo(f"CRL {directory / 'crl.pem'}")


@pki_app.command("crl")
def pki_crl(
    directory: Path = _DIR,
    days: int = typer.Option(30, help="days until the CRL's next update"),
) -> None:
    """Re-sign the CRL with a new next update. A CRL past it makes brokers refuse *every*
    client certificate: run this well before (e.g. weekly) and reload the brokers."""
    from broker_config import pki

    try:
        until = pki.refresh_crl(directory, crl_days=days)
    except (pki.PkiError, OSError) as exc:
        raise _fail(exc) from None
    typer.echo(f"CRL {directory / 'crl.pem'} next update {until:%Y-%m-%d %H:%M} UTC")


@pki_app.command("list")
def pki_list(directory: Path = _DIR) -> None:
    """Every certificate the CA issued: serial, CN, kind, validity, status."""
    from broker_config import pki

    try:
        records = pki.listing(directory)
    except (pki.PkiError, OSError) as exc:
        raise _fail(exc) from None
    now = dt.datetime.now(dt.UTC)
    table = Table("serial", "cn", "kind", "not after", "status", "hosts", box=None)
    for r in records:
        status = r.status(now)
        if r.revoked_at is not None:
            status += f" {r.revoked_at:%Y-%m-%d %H:%M}"
        table.add_row(
            r.serial_hex, r.cn, r.kind, f"{r.not_after:%Y-%m-%d}", status, " ".join(r.hosts)
        )
    Console(width=200).print(table)
