"""``potr keys``: the cloud's signing keys (generation for rotation and for the demo)."""

from __future__ import annotations

from pathlib import Path

import typer

from potr.console import CallConsole

console = CallConsole()
keys_app = typer.Typer(help="The cloud's Ed25519 signing keys", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")


@keys_app.command("generate")
def keys_generate(
    out: Path = typer.Option(..., "--out", help="private key file (PEM, written 0600)"),
    demo: bool = typer.Option(
        False, "--demo", help="mark it as the demo key (refused in production)"
    ),
) -> None:
    """Write a new key to FILE and its public half to FILE.pub; print its key id.

    Rotation: give FILE.pub to every gateway (POTR_TRUSTED_KEY_FILES) first, then point
    POTR_SIGNING_KEY_FILE at FILE, then retire the old public key from the gateways.
    """
    from cloud.config import SigningKeyError, public_key_path, write_key_file

    try:
        key = write_key_file(out, demo=demo)
    except (SigningKeyError, OSError) as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    typer.echo(f"kid {key.kid}")
    typer.echo(f"private key {out}")
    typer.echo(f"public key {public_key_path(out)}")
