"""The ``potr`` command line (typer + rich)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import typer

from potr import (
    cli_billing,
    cli_cloud,
    cli_config,
    cli_customers,
    cli_edge,
    cli_employees,
    cli_gateway,
    cli_gateway_config,
    cli_keys,
    cli_notify,
    cli_pki,
    cli_profiles,
    cli_rollout,
    cli_sap,
    cli_tech,
    cli_users,
)
from potr.console import CallConsole

app = typer.Typer(
    help="Power on the Roof platform", no_args_is_help=True, pretty_exceptions_enable=False
)
contracts_app = typer.Typer(help="The wire contract", no_args_is_help=True)
app.add_typer(contracts_app, name="contracts")
cli_edge.register(app)
cli_cloud.register(app)
cli_profiles.register(app)
cli_config.register(app)
cli_rollout.register(app)
cli_keys.register(app)
cli_gateway.register(app)
cli_gateway_config.register(app)
cli_pki.register(app)
cli_customers.register(app)
cli_employees.register(app)
cli_users.register(app)
cli_notify.register(app)
cli_tech.register(app)
cli_sap.register(app)
cli_billing.register(app)
console = CallConsole()


@app.callback()
def _main(verbose: bool = typer.Option(False, "--verbose", "-v", help="debug logging")) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@contracts_app.command("export")
def contracts_export(
    out: Path = typer.Option(Path("docs/schemas"), help="folder for the JSON Schema files"),
) -> None:
    """Write the JSON Schema of every wire message and every gateway event's detail."""
    from contracts.schema_export import export_schemas

    for path in export_schemas(out):
        console.print(f"wrote {path}")


def main() -> None:
    app()


@app.command("demo")
def demo(
    duration: float | None = typer.Option(None, help="stop by itself after SECONDS"),
    broker: str = typer.Option(
        "auto",
        help="mosquitto (private, TLS + passwords + ACL), amqtt (embedded, no TLS), or auto:"
        " mosquitto when installed",
    ),
) -> None:
    """Run a small fleet (au, us, es) end to end on embedded defaults."""
    from potr.demo import run_demo
    from potr.runtime import run_until_signal

    if broker not in ("auto", "amqtt", "mosquitto"):
        raise typer.BadParameter("broker must be auto, amqtt or mosquitto")
    result: list[dict[str, int]] = []

    async def main(stop: asyncio.Event) -> None:
        result.extend(
            await run_demo(
                stop,
                duration_s=duration,
                broker=broker,  # type: ignore[arg-type]
                console=console.now(),
            )
        )

    run_until_signal(main)
    last: dict[str, int] = result[-1] if result else {}
    missing = [r for r in ("au", "us", "es") if not last.get(r)]
    if missing:
        console.print(f"[red]no readings stored for {', '.join(missing)}[/red]")
        raise typer.Exit(1)
    console.print("demo stopped cleanly")
