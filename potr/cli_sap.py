"""``potr sap``: the SAP integration's process and an operator's tools — run the exporter
with its consumers and the daily reconciliation, reconcile a day by hand, see the queue,
requeue what was dead-lettered once its cause is fixed."""

from __future__ import annotations

import asyncio
from datetime import date

import typer
from rich.table import Table

from contracts.topics import Region
from potr.console import CallConsole
from potr.runtime import load_settings, run_until_signal

__all__ = ["register"]

console = CallConsole()
sap_app = typer.Typer(help="SAP integration: business partners and invoices", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(sap_app, name="sap")


@sap_app.command("run")
def sap_run() -> None:
    """Consume customers and issued documents, export them to SAP (POTR_SAP_*) exactly
    once, and reconcile every region's previous day, until SIGINT/SIGTERM."""
    from cloud.bootstrap import cloud_events, open_pool, run_sap
    from cloud.sap import SapSettings
    from cloud.settings import DatabaseSettings

    settings = load_settings(SapSettings, console)
    database = load_settings(DatabaseSettings, console)
    console.print(f"sap: exporting to {settings.base_url}", highlight=False)

    async def main(stop: asyncio.Event) -> None:
        pool = open_pool(database, "potr-sap", max_size=4)
        wake = asyncio.Event()
        try:
            # The SAP integration relays its own outbox: service_order.changed (delta poll).
            async with cloud_events(pool, sap_wake=wake.set, outboxes=("sap",)):
                await run_sap(settings, pool, stop, wake)
        finally:
            pool.close()

    run_until_signal(main)


@sap_app.command("reconcile")
def sap_reconcile(
    region: Region = typer.Option(..., help="au, us or es"),
    day: str = typer.Option(..., help="the UTC day, YYYY-MM-DD"),
) -> None:
    """Compare what SAP holds for REGION's DAY with what was sent; store and print the
    result (exit 1 when they disagree)."""
    from cloud.bootstrap import open_pool
    from cloud.sap import SapError, SapSettings, reconcile
    from cloud.sap.odata import ODataSapGateway
    from cloud.settings import DatabaseSettings

    try:
        when = date.fromisoformat(day)
    except ValueError:
        raise typer.BadParameter("day must be YYYY-MM-DD") from None
    settings = load_settings(SapSettings, console)
    pool = open_pool(load_settings(DatabaseSettings, console), "potr-sap-reconcile")
    try:
        with ODataSapGateway(settings) as gateway:
            result = reconcile(pool, gateway, settings, region, when, services=gateway)
    except SapError as exc:
        console.print(f"[red]SAP: {exc}[/red]", highlight=False)
        raise typer.Exit(2) from None
    finally:
        pool.close()
    console.print(
        f"{region.value} {when}: documents {result.documents_sent} sent,"
        f" {result.documents_in_sap} in SAP; partners {result.partners_sent} sent,"
        f" {result.partners_in_sap} in SAP; service orders {result.service_orders_sent} sent,"
        f" {result.service_orders_in_sap} in SAP; confirmations {result.confirmations_sent}"
        f" sent, {result.confirmations_in_sap} in SAP",
        highlight=False,
    )
    for finding in result.findings:
        console.print(
            f"  {finding.kind} {finding.subject} {finding.reference}: {finding.detail}",
            highlight=False,
        )
    if not result.ok:
        raise typer.Exit(1)


@sap_app.command("status")
def sap_status() -> None:
    """The export queue by state."""
    from cloud.bootstrap import open_pool
    from cloud.sap.queue import queue_counts
    from cloud.settings import DatabaseSettings

    pool = open_pool(load_settings(DatabaseSettings, console), "potr-sap-status")
    try:
        with pool.connection() as conn:
            counts = queue_counts(conn)
    finally:
        pool.close()
    table = Table("queue", "state", "rows")
    for queue, states in counts.items():
        for state, n in sorted(states.items()):
            table.add_row(queue, state, str(n))
    console.print(table)


@sap_app.command("requeue")
def sap_requeue(
    region: Region | None = typer.Option(None, help="only this region's (default: all)"),
) -> None:
    """Give dead-lettered partners, documents, service orders and confirmations a new
    round of attempts (after the cause — a closed posting period, a missing master
    record — was fixed in SAP)."""
    from cloud.bootstrap import open_pool
    from cloud.sap.queue import requeue_dead
    from cloud.settings import DatabaseSettings

    pool = open_pool(load_settings(DatabaseSettings, console), "potr-sap-requeue")
    try:
        with pool.connection() as conn:
            n = requeue_dead(conn, region.value if region else None)
    finally:
        pool.close()
    console.print(f"requeued {n}", highlight=False)
