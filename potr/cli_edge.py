"""Edge-side commands: ``potr sim site`` and ``potr agent``."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from potr.console import CallConsole
from potr.runtime import run_until_signal

if TYPE_CHECKING:
    from simulators.device_site import DeviceSite

console = CallConsole()
sim_app = typer.Typer(help="Simulated SunSpec devices over Modbus TCP", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    from potr import cli_fleet

    cli_fleet.register(sim_app)
    app.add_typer(sim_app, name="sim")
    app.command("agent")(agent)


@sim_app.command("site")
def sim_site(
    site_id: str = typer.Option(..., help="site id (seeds serial numbers and noise)"),
    region: str = typer.Option("au", help="au, us or es"),
    host: str = typer.Option("127.0.0.1"),
    port: int = typer.Option(0, help="Modbus TCP port (0 = a free one, printed)"),
    pv_capacity_w: float = typer.Option(5000.0, help="PV inverter rating, W"),
    speed: float = typer.Option(1.0, help="simulated seconds per real second"),
    start_time: datetime | None = typer.Option(None, help="simulated start (ISO, with zone)"),
    system_meter: bool = typer.Option(
        False, help="add PoTR's system meter at the system's AC output (unit 4, SN SYS-<site>)"
    ),
) -> None:
    """Serve one site: a three-phase inverter (unit 1) and a grid meter (unit 2).

    A preset of ``sim devices``: the default devices at the region's city and grid."""
    from pydantic import ValidationError

    from simulators.device_site import DeviceSite, region_site

    if region not in ("au", "us", "es"):
        raise typer.BadParameter(f"region must be au, us or es, not {region!r}")
    try:
        settings = region_site(
            site_id,
            region,  # type: ignore[arg-type]  # checked just above
            host=host,
            port=port,
            pv_capacity_w=pv_capacity_w,
            speed=speed,
            start_time=start_time,
            system_meter=system_meter,
        )
        site = DeviceSite(settings)
    except (ValidationError, ValueError) as exc:
        raise typer.BadParameter(str(exc)) from None
    _serve(site, f"site {site_id} ({region})")


@sim_app.command("devices")
def sim_devices(
    config: Path | None = typer.Option(
        None,
        "--config",
        "-c",
        exists=True,
        dir_okay=False,
        help="site YAML (DeviceSiteSettings: devices, location, speed, scenario …)",
    ),
    port: int | None = typer.Option(None, help="Modbus TCP port (0 = a free one)"),
    serial_port: str | None = typer.Option(None, help="serve Modbus RTU on this tty instead"),
    scenario: Path | None = typer.Option(
        None, exists=True, dir_okay=False, help="fault scenario YAML"
    ),
) -> None:
    """Serve profile-described devices (inverters, batteries, meters, isolators) with faults."""
    import yaml
    from pydantic import ValidationError

    from simulators.device_site import DeviceSite, DeviceSiteSettings

    raw: dict[str, object] = {"site_id": "cli-site"}
    if config is not None:
        loaded = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
        if not isinstance(loaded, dict):
            raise typer.BadParameter(f"{config}: top level must be a mapping")
        raw.update(loaded)
    for key, value in (("port", port), ("serial_port", serial_port), ("scenario", scenario)):
        if value is not None:
            raw[key] = value
    try:
        settings = DeviceSiteSettings.model_validate(raw)
        site = DeviceSite(settings)  # checks profiles and scenario before serving
    except (ValidationError, ValueError) as exc:
        raise typer.BadParameter(str(exc)) from None

    _serve(site, f"site {settings.site_id}")


def _serve(site: DeviceSite, label: str) -> None:
    """Serve ``site`` until SIGINT/SIGTERM, printing where and what."""
    settings = site.settings

    async def serve(stop: asyncio.Event) -> None:
        async with site:
            where = settings.serial_port or f"{settings.host}:{site.port}"
            console.print(f"{label} serving Modbus on {where}")
            for device in site.devices:
                console.print(
                    f"  unit {device.unit_id}: {device.profile.kind} {device.profile.name}"
                    f" SN {device.serial} (base {device.base})"
                )
            await stop.wait()

    run_until_signal(serve)


def agent(
    config: Path = typer.Option(
        ..., "--config", "-c", exists=True, dir_okay=False, help="agent settings YAML"
    ),
) -> None:
    """Run the edge agent: discover, poll, buffer, publish (``potr-agent`` runs the same
    without the rest of the CLI)."""
    from potr.agent_main import run

    code = run(config)
    if code:
        raise typer.Exit(code)
