"""``potr tech``: what a field technician (MOSIE) does from their own machine over MQTT."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import typer
from pydantic import SecretStr

from cloud.adapters.mqtt import MqttOptions
from cloud.settings import MqttEndpoint
from contracts.topics import Region
from potr.console import CallConsole
from potr.tech import TechPushError, new_request, push

__all__ = ["register"]

tech_app = typer.Typer(help="Field technicians: configuration pushes over MQTT")
console = CallConsole()


def register(app: typer.Typer) -> None:
    app.add_typer(tech_app, name="tech")


@tech_app.command("push")
def push_profile(
    site: int = typer.Option(..., help="the site's id (the work order's)"),
    profile: str = typer.Option(..., help="the grid-code profile id, e.g. au-a-2020"),
    employee: str = typer.Option(..., envvar="POTR_TECH_EMPLOYEE", help="your employee number"),
    broker: str = typer.Option(
        ..., envvar="POTR_TECH_BROKER", help="your region's broker, mqtts://host:port"
    ),
    region: Region = typer.Option(..., envvar="POTR_TECH_REGION", help="au, us or es"),
    username: str = typer.Option(
        ..., envvar="POTR_TECH_USERNAME", help="your broker identity, _tech/<name>"
    ),
    password_file: Path | None = typer.Option(
        None,
        envvar="POTR_TECH_PASSWORD_FILE",
        help="a file holding the identity's password (else POTR_TECH_PASSWORD, else asked)",
    ),
    ca_file: Path | None = typer.Option(
        None, envvar="POTR_TECH_CA_FILE", help="the CA that signed the broker's certificate"
    ),
    timeout: float = typer.Option(15.0, min=1, max=300, help="seconds to wait for the answer"),
) -> None:
    """Ask the config service to put PROFILE into effect on SITE's devices; prints its
    answer (exit 0 accepted, 1 refused, 2 no answer in time or not sent)."""
    endpoint = MqttEndpoint(broker)
    password = _password(password_file)
    options = MqttOptions(
        host=endpoint.host,
        port=endpoint.port,
        client_id=f"potr-tech-{uuid.uuid4().hex[:8]}",
        username=username,
        password=password,
        tls=endpoint.tls,
        ca_file=str(ca_file) if ca_file else None,
    )
    request = new_request(employee, site, profile)
    try:
        answer = push(options, region, request, timeout_s=timeout)
    except TechPushError as exc:
        console.print(f"[red]not sent: {exc}[/red]")
        raise typer.Exit(2) from None
    if answer is None:
        console.print(f"[yellow]request {request.id}: no answer within {timeout:g} s[/yellow]")
        raise typer.Exit(2)
    if not answer.ok:
        console.print(f"[red]request {request.id} refused ({answer.code}): {answer.detail}[/red]")
        raise typer.Exit(1)
    console.print(f"[green]request {request.id} accepted[/green]: {answer.detail}")
    console.print(f"work order {answer.work_order_id}")
    for gateway_id, version in sorted(answer.versions.items()):
        console.print(f"  {gateway_id}: config version {version}")


def _password(password_file: Path | None) -> SecretStr:
    """The broker password: from its file (the owner's alone, like an ssh key), the
    environment or a hidden prompt — never a command-line argument, which every user of
    the machine can read in the process list."""
    if password_file is not None:
        from cloud.credentials import SecretFileTooOpenError, read_owner_only

        try:
            text = read_owner_only(password_file).decode("utf-8").strip()
        except SecretFileTooOpenError as exc:
            raise typer.BadParameter(str(exc)) from None
        except OSError as exc:
            raise typer.BadParameter(f"cannot read the password file: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise typer.BadParameter("the password file is not UTF-8 text") from None
        if not text:
            raise typer.BadParameter("the password file is empty")
        return SecretStr(text)
    given = os.environ.get("POTR_TECH_PASSWORD")
    if given:
        return SecretStr(given)
    return SecretStr(typer.prompt("Broker password", hide_input=True))
