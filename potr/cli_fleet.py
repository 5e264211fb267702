"""``potr sim fleet``: a virtual fleet (MQTT contract, worker processes) or N full sites
with real agent processes; a live progress table and a summary, also as JSON.

Virtual gateways answer signed ``cmd``/``config`` documents (``--trusted-key``, with
failure injection by ``--fail-gateway`` / ``--fail-fraction`` and ``--seed``)."""

from __future__ import annotations

import asyncio
import os
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from rich.live import Live
from rich.table import Table

from potr.console import CallConsole
from potr.runtime import run_until_signal

console = CallConsole()


class FleetMode(StrEnum):
    VIRTUAL = "virtual"
    SITES = "sites"


def register(sim_app: typer.Typer) -> None:
    sim_app.command("fleet")(sim_fleet)


def sim_fleet(
    count: int = typer.Option(100, "--count", "-n", help="gateways (virtual) or sites"),
    mode: FleetMode = typer.Option(FleetMode.VIRTUAL, help="virtual gateways or full sites"),
    cadence: float = typer.Option(300.0, help="simulated seconds between batches (field: 300)"),
    speed: float = typer.Option(1.0, help="simulated seconds per real second"),
    duration: float | None = typer.Option(None, help="real seconds of publishing (None: Ctrl-C)"),
    regions: str = typer.Option("au", help="region mix, e.g. au=0.5,us=0.3,es=0.2"),
    outage: list[str] = typer.Option([], help="START:DURATION[:FRACTION] real seconds; repeatable"),
    samples_per_batch: int = typer.Option(1, help="samples per device in one batch"),
    workers: int = typer.Option(os.cpu_count() or 2, help="worker processes (virtual)"),
    id_prefix: str = typer.Option("vgw", help="gateway ids are PREFIX-00000…"),
    mqtt_url: str | None = typer.Option(
        None, envvar="POTR_MQTT_URL", help="broker (default: a private Mosquitto)"
    ),
    protocol: str = typer.Option("5", help="MQTT protocol: 5 or 3.1.1"),
    database_url: str | None = typer.Option(
        None, "--database-url", help="register gateways and run ingest on this database"
    ),
    connect_rate: float = typer.Option(1000.0, help="new connections per second"),
    max_inflight: int = typer.Option(10, help="QoS 1 publishes in flight per gateway"),
    stored_timeout: float = typer.Option(30.0, help="resend a batch not stored within (s)"),
    drain_timeout: float = typer.Option(30.0, help="wait this long for acks/stored at the end"),
    poll_interval: float = typer.Option(5.0, help="agent poll interval, s (sites mode)"),
    sim_start: datetime | None = typer.Option(None, help="simulated start (ISO, with zone)"),
    json_path: Path | None = typer.Option(None, "--json", help="write the summary here"),
    trusted_key: list[Path] = typer.Option(
        [],
        "--trusted-key",
        help="public key PEM trusted for cmd/config (virtual); repeatable; none = refuse all",
    ),
    fail_gateway: list[str] = typer.Option(
        [], "--fail-gateway", help="gateway id that fails configs and commands; repeatable"
    ),
    fail_fraction: float = typer.Option(
        0.0, help="share of gateways (chosen by --seed) that fail configs and commands"
    ),
    seed: int = typer.Option(0, help="seed of the fleet's deterministic choices"),
) -> None:
    """Run a fleet: N virtual gateways over MQTT, or N sites each with a real agent."""
    from pydantic import ValidationError

    from simulators.fleet import FleetSpec, MqttTarget, Outage, parse_region_mix

    try:
        mix = parse_region_mix(regions)
        outages = tuple(Outage.parse(o) for o in outage)
        spec = FleetSpec(
            count=count,
            id_prefix=id_prefix,
            regions=mix,
            cadence_s=cadence,
            samples_per_batch=samples_per_batch,
            speed=speed,
            duration_s=duration,
            sim_start=sim_start,
            mqtt=MqttTarget(protocol="3.1.1" if protocol == "3.1.1" else "5"),
            max_inflight=max_inflight,
            stored_timeout_s=stored_timeout,
            drain_timeout_s=drain_timeout,
            outages=outages,
            workers=workers,
            connect_rate=connect_rate,
            trusted_key_files=tuple(trusted_key),
            fail_gateways=tuple(fail_gateway),
            fail_fraction=fail_fraction,
            seed=seed,
        )
    except (ValueError, ValidationError) as exc:
        raise typer.BadParameter(str(exc)) from None

    if mode is FleetMode.SITES:
        run_until_signal(
            lambda stop: _sites(spec, stop, mqtt_url, database_url, poll_interval, json_path)
        )
    else:
        run_until_signal(lambda stop: _virtual(spec, stop, mqtt_url, database_url, json_path))


async def _virtual(
    spec: Any,
    stop: asyncio.Event,
    mqtt_url: str | None,
    database_url: str | None,
    json_path: Path | None,
) -> None:
    from cloud.settings import redact_url
    from potr.fleet import run_virtual_fleet, write_json
    from simulators.fleet import FleetProgress

    where = redact_url(mqtt_url) if mqtt_url else "a private Mosquitto"
    console.print(
        f"{spec.count:,} virtual gateways → {where}: one batch every {spec.cadence_s:g} s"
        f" simulated at {spec.speed:g}x ({spec.nominal_rate:,.0f} msg/s nominal),"
        f" {spec.workers} workers" + (", ingest on" if database_url else ", no ingest")
    )
    with Live(console=console.now(), refresh_per_second=4, transient=False) as live:

        def show(p: FleetProgress) -> None:
            live.update(progress_table(p))

        run = await run_virtual_fleet(
            spec, mqtt_url=mqtt_url, database_url=database_url, on_progress=show, stop=stop
        )
    summary = run.summary()
    console.print(summary_table(summary))
    if json_path is not None:
        write_json(json_path, summary)
        console.print(f"summary written to {json_path}")


async def _sites(
    spec: Any,
    stop: asyncio.Event,
    mqtt_url: str | None,
    database_url: str | None,
    poll_interval: float,
    json_path: Path | None,
) -> None:
    from potr.fleet import SiteAgent, run_site_fleet, write_json

    def started(agents: list[SiteAgent]) -> None:
        for a in agents:
            pid = a.proc.pid if a.proc else "-"
            console.print(
                f"site {a.gateway_id} ({a.region.value}) Modbus :{a.port}, agent pid {pid}"
            )
        console.print("running; Ctrl-C to stop" if spec.duration_s is None else "running…")

    run = await run_site_fleet(
        spec.count,
        stop=stop,
        mqtt_url=mqtt_url,
        database_url=database_url,
        regions=spec.regions,
        id_prefix=spec.id_prefix,
        speed=spec.speed,
        poll_interval_s=poll_interval,
        duration_s=spec.duration_s,
        on_started=started,
    )
    summary = run.summary()
    console.print_json(data=summary)
    if json_path is not None:
        write_json(json_path, summary)


def progress_table(p: Any) -> Table:
    s = p.stats
    table = Table(title=f"fleet: {p.elapsed_s:6.1f} s", show_header=True)
    for col in (
        "connected",
        "batches",
        "sent",
        "acked",
        "stored",
        "unstored",
        "resends",
        "p50 ack ms",
        "p99 ack ms",
        "p50 stored ms",
    ):
        table.add_column(col, justify="right")
    ack, st = s.puback_latency, s.stored_latency

    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v * 1000:.1f}"

    table.add_row(
        f"{s.connected:,}/{s.gateways:,}",
        f"{s.batches:,}",
        f"{s.sent:,}",
        f"{s.acked:,}",
        f"{s.stored:,}",
        f"{s.unstored:,}",
        f"{s.resends:,}",
        ms(ack.quantile(0.5)),
        ms(ack.quantile(0.99)),
        ms(st.quantile(0.5)),
    )
    return table


def summary_table(summary: dict[str, Any]) -> Table:
    table = Table(title="fleet summary", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    for key in (
        "gateways",
        "elapsed_s",
        "batches",
        "sent",
        "acked",
        "stored",
        "unstored",
        "resends",
        "backfilled",
        "disconnects",
        "connect_failures",
    ):
        table.add_row(
            key, f"{summary[key]:,}" if isinstance(summary[key], int) else str(summary[key])
        )
    for key, value in summary["rates_per_s"].items():
        table.add_row(f"rate {key}/s" if key != "window_s" else "rate window s", f"{value:,.1f}")
    for name, lat in summary["latency_ms"].items():
        if lat["n"]:
            table.add_row(
                f"{name} ms p50/p90/p99/max",
                f"{lat['p50']}/{lat['p90']}/{lat['p99']}/{lat['max']}",
            )
    control = summary.get("control") or {}
    if control.get("commands") or control.get("configs"):
        for key in ("commands", "configs", "cmd_acks", "config_states", "unanswered"):
            table.add_row(f"control {key}", f"{control[key]:,}")
    for key, value in (summary.get("database") or {}).items():
        table.add_row(f"db {key}", f"{value:,}")
    return table
