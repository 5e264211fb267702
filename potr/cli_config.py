"""``potr config``: signed commands and versioned configs, straight to the config service.

Like the other cloud commands, these talk to the database (and the broker) directly
with the POTR_* settings; a document the broker could not take now is published by
``potr config run``.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from uuid import UUID

import typer
import yaml
from rich.table import Table

from potr.console import CallConsole
from potr.runtime import load_settings, run_until_signal

console = CallConsole()
config_app = typer.Typer(help="Signed commands and configs to gateways", no_args_is_help=True)

_FINAL = ("done", "failed", "rejected", "expired")


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")


def _settings() -> Any:
    from cloud.config import ConfigSettings

    return load_settings(ConfigSettings, console)


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


@contextmanager
def _service() -> Iterator[Any]:
    """The config service with a connected publisher (if the broker answers)."""
    from cloud.bootstrap import open_config_service, open_pool
    from cloud.config import SigningKeyError

    settings = _settings()
    pool = open_pool(settings, "cli")
    try:
        with open_config_service(settings, pool) as (service, connected):
            if not connected:
                console.print(
                    f"[yellow]broker {settings.mqtt.host}:{settings.mqtt.port} not reachable:"
                    " documents are stored and `potr config run` publishes them[/yellow]"
                )
            yield service
    except SigningKeyError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    finally:
        pool.close()


def _refused(exc: Exception) -> typer.Exit:
    console.print(f"[red]refused: {exc}[/red]")
    return typer.Exit(1)


def _parse_arg(item: str) -> tuple[str, Any]:
    name, sep, raw = item.partition("=")
    if not sep or not name:
        raise typer.BadParameter(f"--arg {item!r}: use name=value")
    try:
        return name, json.loads(raw)  # numbers as numbers; anything else stays text
    except json.JSONDecodeError:
        return name, raw


@config_app.command("cmd")
def config_cmd(
    gateway: str = typer.Argument(..., help="gateway id"),
    name: str = typer.Argument(..., help="command: one of the device profile's, or ping/rescan"),
    device: str | None = typer.Option(None, "--device", help="local device id (none: the gateway)"),
    arg: list[str] = typer.Option([], "--arg", help="name=value (repeat)"),
    expires_in: float | None = typer.Option(None, "--expires-in", min=0.001, help="seconds"),
    reason: str = typer.Option(..., "--reason", help="why (kept in the audit log)"),
    wait: bool = typer.Option(False, "--wait", help="follow it to a final status"),
    wait_timeout: float = typer.Option(
        600.0, "--wait-timeout", min=1, help="give up waiting after SECONDS (the command stays)"
    ),
) -> None:
    """Send a signed command to a device or the gateway."""
    from pydantic import ValidationError

    from cloud.config import CommandIn, ConfigError

    try:
        request = CommandIn(
            name=name,
            device=device,
            args=dict(_parse_arg(a) for a in arg),
            expires_in_s=expires_in,
            reason=reason,
        )
    except ValidationError as exc:
        raise typer.BadParameter(str(exc)) from None
    with _service() as service:
        try:
            command = service.send_command(gateway, request, _actor())
        except ConfigError as exc:
            raise _refused(exc) from None
        published = "published" if command.published_at else "stored, not yet published"
        typer.echo(
            f"command {command.id} {command.status} ({published}),"
            f" expires {command.expires_at.isoformat()}"
        )
        if wait:
            status = _follow(service, command.id, command.expires_at.timestamp(), wait_timeout)
            if status != "done":
                raise typer.Exit(1)


def _follow(service: Any, command_id: UUID, expires_at: float, timeout_s: float) -> str:
    """Print each status change until a final one or the deadline; the last status."""
    settings = _settings()
    # The service marks it expired by expires_at + grace; a little more for its loop.
    deadline = min(
        time.monotonic() + timeout_s,
        time.monotonic()
        + max(0.0, expires_at - time.time())
        + settings.command_expiry_grace_s
        + 2 * settings.config_republish_interval_s,
    )
    last = "pending"
    while True:
        command = service.get_command(command_id)
        if command is not None and command.status != last:
            last = command.status
            typer.echo(f"{last}" + (f": {command.detail}" if command.detail else ""))
        if last in _FINAL:
            return last
        if time.monotonic() > deadline:
            typer.echo(f"still {last} after waiting; see `potr config show`")
            return last
        time.sleep(0.5)


def _load_config_file(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))  # YAML is a superset of JSON
    except (OSError, yaml.YAMLError) as exc:
        raise typer.BadParameter(f"{path}: {exc}") from None
    if not isinstance(data, dict):
        raise typer.BadParameter(
            f"{path}: expected {{profile: {{id, region, version}}, devices: …}}"
        )
    return data


@config_app.command("set")
def config_set(
    gateway: str = typer.Argument(..., help="gateway id"),
    file: Path = typer.Option(
        ..., "--file", help="YAML/JSON: {profile: {id, region, version}, devices: {...}}"
    ),
    reason: str = typer.Option(..., "--reason", help="why (kept in the audit log)"),
) -> None:
    """Set the gateway's desired config: a new version, signed, published retained."""
    from pydantic import ValidationError

    from cloud.config import ConfigError, ConfigIn

    try:
        request = ConfigIn.model_validate({**_load_config_file(file), "reason": reason})
    except ValidationError as exc:
        raise typer.BadParameter(str(exc)) from None
    with _service() as service:
        try:
            desired = service.set_config(gateway, request, _actor())
        except ConfigError as exc:
            raise _refused(exc) from None
    _print_version(desired)


@config_app.command("rollback")
def config_rollback(
    gateway: str = typer.Argument(..., help="gateway id"),
    to_version: int | None = typer.Option(
        None, "--to-version", min=1, help="default: the previous version"
    ),
    reason: str = typer.Option(..., "--reason", help="why (kept in the audit log)"),
) -> None:
    """Publish a new version carrying an earlier version's settings."""
    from cloud.config import ConfigError, RollbackIn

    with _service() as service:
        try:
            desired = service.rollback(
                gateway, RollbackIn(to_version=to_version, reason=reason), _actor()
            )
        except ConfigError as exc:
            raise _refused(exc) from None
    _print_version(desired)


def _print_version(desired: Any) -> None:
    published = "published" if desired.published_at else "stored, not yet published"
    rollback = f" (rollback to version {desired.rollback_of})" if desired.rollback_of else ""
    typer.echo(f"version {desired.version}{rollback} {desired.hash} ({published})")


@config_app.command("show")
def config_show(gateway: str = typer.Argument(..., help="gateway id")) -> None:
    """Desired config, what the gateway reported per device, and the version history."""
    from cloud.config import ConfigError

    with _service() as service:
        try:
            view = service.show_config(gateway)
        except ConfigError as exc:
            raise _refused(exc) from None
    desired, reported = view.desired, view.reported
    console.print(f"desired: {f'version {desired.version} {desired.hash}' if desired else 'none'}")
    if reported:
        console.print(f"reported: version {reported.version} {reported.status} {reported.detail}")
    devices = Table("device", "status", "version", "drift", "detail")
    for d in view.devices:
        devices.add_row(d.device, d.status, str(d.version or ""), ", ".join(d.drift), d.detail)
    console.print(devices)
    history = Table("version", "created", "by", "reason", "rollback of", "published")
    for h in view.history:
        history.add_row(
            str(h.version),
            h.created_at.isoformat(timespec="seconds"),
            h.created_by,
            h.reason,
            str(h.rollback_of or ""),
            "yes" if h.published_at else "no",
        )
    console.print(history)


@config_app.command("audit")
def config_audit(
    gateway: str = typer.Argument(..., help="gateway id"),
    limit: int = typer.Option(50, min=1, max=1000),
) -> None:
    """Who asked for what, when and why, and what came of it (newest first)."""
    with _service() as service:
        entries = service.audit(gateway, limit=limit)
    table = Table("at", "actor", "action", "target", "reason", "outcome")
    for e in entries:
        table.add_row(
            e.at.isoformat(timespec="seconds"),
            e.actor,
            e.action,
            e.target or "",
            e.reason,
            e.outcome,
        )
    console.print(table)


@config_app.command("run")
def config_run(
    consume: bool = typer.Option(
        True, help="also consume births/acks/reports (needs POTR_AMQP_URL across processes)"
    ),
) -> None:
    """Run the service's loops: republish, expiry, its outbox relay and its consumers."""
    from cloud.bootstrap import run_config_service
    from cloud.config import SigningKeyError

    settings = _settings()

    async def main(stop: asyncio.Event) -> None:
        await run_config_service(settings, stop, consume=consume)

    try:
        run_until_signal(main)
    except SigningKeyError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
