"""Cloud-side commands: db, registry, ingest, services, api, token."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import typer
from rich.table import Table

from potr.console import CallConsole
from potr.runtime import load_settings, run_until_signal, serve_http

console = CallConsole()
db_app = typer.Typer(help="Database schema", no_args_is_help=True)
registry_app = typer.Typer(help="Sites, gateways and devices", no_args_is_help=True)
site_app = typer.Typer(help="Sites", no_args_is_help=True)
gateway_app = typer.Typer(help="Gateways", no_args_is_help=True)
token_app = typer.Typer(help="Bearer tokens for the API", no_args_is_help=True)
registry_app.add_typer(site_app, name="site")
registry_app.add_typer(gateway_app, name="gateway")


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
    app.add_typer(registry_app, name="registry")
    app.add_typer(token_app, name="token")
    app.command("ingest")(ingest)
    app.command("services")(services)
    app.command("api")(api)
    app.command("identity-api")(identity_api)


def _database() -> Any:
    from cloud.settings import DatabaseSettings

    return load_settings(DatabaseSettings, console)


def _registry() -> Any:
    from cloud.bootstrap import open_pool
    from cloud.registry import RegistryService

    return RegistryService(open_pool(_database(), "cli"))


def _table(rows: list[Any], columns: list[str]) -> None:
    table = Table(*columns)
    for row in rows:
        data = row.model_dump()
        table.add_row(*("" if data[c] is None else str(data[c]) for c in columns))
    console.print(table)


@db_app.command("migrate")
def db_migrate(
    backend: str = typer.Option(
        "auto",
        help="the telemetry store's backend when first chosen: auto (timescale where the"
        " server offers the extension), plain or timescale",
    ),
) -> None:
    """Apply every service's pending migrations (safe to run twice)."""
    from cloud.migrate import MigrationError, migrate

    if backend not in ("auto", "plain", "timescale"):
        console.print(f"[red]--backend {backend!r}: auto, plain or timescale[/red]")
        raise typer.Exit(2)
    try:
        applied = migrate(_database().database_url, backend=backend)  # type: ignore[arg-type]
    except MigrationError as exc:
        console.print(f"[red]{exc}[/red]", soft_wrap=True)
        raise typer.Exit(2) from None
    console.print(
        f"applied {len(applied)} migration(s)"
        + (": " + ", ".join(applied) if applied else " (up to date)")
    )


@site_app.command("add")
def site_add(
    name: str = typer.Option(...),
    region: str = typer.Option(..., help="au, us or es"),
    time_zone: str = typer.Option(..., help="IANA zone, e.g. Australia/Sydney"),
    utility: str | None = typer.Option(None, help="grid operator"),
    latitude: float | None = typer.Option(None),
    longitude: float | None = typer.Option(None),
) -> None:
    """Add a site."""
    from pydantic import ValidationError

    from cloud.registry.models import SiteIn

    try:
        site_in = SiteIn(
            name=name,
            region=region,
            time_zone=time_zone,
            utility=utility,
            latitude=latitude,
            longitude=longitude,
        )
    except ValidationError as exc:
        raise typer.BadParameter(str(exc)) from None
    site = _registry().add_site(site_in)
    console.print(f"site {site.id} added: {site.name} ({site.region})")


@site_app.command("list")
def site_list() -> None:
    """List sites."""
    _table(_registry().list_sites(), ["id", "name", "region", "time_zone", "utility"])


@gateway_app.command("add")
def gateway_add(
    gateway_id: str = typer.Option(..., "--id", help="gateway id as in its MQTT topics"),
    site_id: int = typer.Option(..., "--site"),
) -> None:
    """Add a gateway to a site (its region is the site's)."""
    from pydantic import ValidationError

    from cloud.registry.models import GatewayIn
    from cloud.registry.service import RegistryError

    try:
        gw_in = GatewayIn(id=gateway_id, site_id=site_id)
    except ValidationError as exc:
        raise typer.BadParameter(str(exc)) from None
    try:
        gw = _registry().add_gateway(gw_in)
    except RegistryError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    console.print(f"gateway {gw.id} added to site {gw.site_id} ({gw.region})")


@gateway_app.command("list")
def gateway_list() -> None:
    """List gateways."""
    _table(_registry().list_gateways(), ["id", "site_id", "region", "created_at"])


@token_app.command("create")
def token_create(
    role: str = typer.Option(..., help="admin, operator, support, mosie or customer"),
    region: str = typer.Option(..., help="au, us or es: the region the token acts in"),
    subject: str = typer.Option("cli", help="who the token speaks for (<= 128 characters)"),
    ttl_s: int = typer.Option(
        900, min=1, max=900, help="seconds valid, at most 900 (as every access token)"
    ),
    scope: list[str] | None = typer.Option(
        None, "--scope", help="read, write or admin (repeat; default: all of the role's)"
    ),
) -> None:
    """Print an access token signed with POTR_IDENTITY_SIGNING_KEY_FILE (operators'
    scripts and tests; people log in at /api/v1/auth/login)."""
    from cloud.identity import (
        ROLE_SCOPES,
        KeyFileError,
        Role,
        issue_access_token,
        load_signing_key,
    )
    from cloud.identity.settings import SigningSettings
    from contracts.topics import Region

    try:
        role_ = Role(role)
        region_ = Region(region)
    except ValueError:
        raise typer.BadParameter(
            f"role must be one of {[r.value for r in Role]}, region one of"
            f" {[r.value for r in Region]}"
        ) from None
    scopes = set(scope or ROLE_SCOPES[role_])
    if not scopes <= ROLE_SCOPES[role_]:
        raise typer.BadParameter(f"role {role} may hold only {sorted(ROLE_SCOPES[role_])}")
    if len(subject) > 128 or not subject.isprintable():
        raise typer.BadParameter("subject: at most 128 printable characters")
    settings = load_settings(SigningSettings, console)
    try:
        key = load_signing_key(
            settings.identity_signing_key_file, production=settings.env == "production"
        )
    except KeyFileError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    typer.echo(
        issue_access_token(
            key, subject=subject, role=role_, region=region_, scopes=scopes, ttl_s=ttl_s
        )
    )


def ingest(
    workers: int | None = typer.Option(
        None, "--workers", min=1, max=64, help="worker processes (default POTR_INGEST_WORKERS)"
    ),
) -> None:
    """Run ingest workers on the shared subscription (client ids <POTR_MQTT_CLIENT_ID>-<n>,
    usernames <POTR_MQTT_USERNAME>-<n> with passwords from POTR_MQTT_CREDENTIALS_FILE)."""
    from cloud.config import ConfigSettings
    from cloud.ingest import IngestSettings
    from cloud.settings import CredentialsError
    from potr.ingest_workers import check_identities, run_ingest_workers

    settings = load_settings(IngestSettings, console)
    if workers is not None:
        settings = settings.model_copy(update={"ingest_workers": workers})
    # The consumers of the gateways' answers expire commands on the config service's terms.
    config = load_settings(ConfigSettings, console)
    try:
        users = check_identities(settings)
    except CredentialsError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    console.print(
        f"ingest: {settings.ingest_workers} worker(s) as {settings.mqtt_client_id}"
        + (f" ({', '.join(users)})" if users else "")
        + f" on {settings.mqtt.redacted}",
        highlight=False,
        soft_wrap=True,
    )

    async def main(stop: asyncio.Event) -> None:
        from cloud.bootstrap import ingest_events

        async with ingest_events(config):
            await run_ingest_workers(settings, stop)

    run_until_signal(main)


#: Set, the SAP integration runs in ``potr services`` (with the other POTR_SAP_* settings).
SAP_SWITCH = "POTR_SAP_BASE_URL"


def services() -> None:
    """Run the region's other background services until SIGINT/SIGTERM: the alerts
    service (consumers, sweeps), notify (consumers, mail through POTR_SMTP_*), dispatch
    (consumers, sweeps), billing (true-ups, daily overdue reminders), support, the monthly
    reports pack, the SAP integration when POTR_SAP_BASE_URL is set, and every outbox's
    relay. Ingest and the config service run apart (`potr ingest`, `potr config run`), so
    the processes meet on RabbitMQ (POTR_AMQP_URL; required with POTR_ENV=production)."""
    import os

    from cloud.billing import ReminderSettings
    from cloud.dispatch import DispatchSettings, FlowSettings
    from cloud.events.runtime import BusSettings
    from cloud.notify import NotifySettings
    from cloud.reports import PackSettings, ServicesSettings
    from cloud.sap import SapSettings

    notify = load_settings(NotifySettings, console)
    bus = load_settings(BusSettings, console)
    dispatch = load_settings(DispatchSettings, console)
    flow = load_settings(FlowSettings, console)
    reminders = load_settings(ReminderSettings, console)
    packs = load_settings(PackSettings, console)
    region = load_settings(ServicesSettings, console).region
    sap = load_settings(SapSettings, console) if os.environ.get(SAP_SWITCH) else None
    if bus.amqp_url is None:
        if notify.env == "production":
            # The in-process bus reaches only this process: the events ingest, the config
            # service and the API emit would be relayed to no consumer of theirs, or lost.
            console.print(
                "[red]no POTR_AMQP_URL: `potr services` shares events with `potr ingest`,"
                " `potr config run` and `potr api` over RabbitMQ (refused with"
                " POTR_ENV=production)[/red]",
                soft_wrap=True,
            )
            raise typer.Exit(2)
        console.print("no POTR_AMQP_URL: the in-process bus (this process's consumers only)")
    console.print(
        "services: alerts, notify (mail via"
        f" {notify.smtp_host}:{notify.smtp_port}), dispatch, billing, support, reports pack"
        + (f" of {region.value} only, " if region is not None else " of every region, ")
        + (f"SAP at {sap.base_url}" if sap is not None else f"SAP off (no {SAP_SWITCH})")
        + f" on the {'RabbitMQ' if bus.amqp_url else 'in-process'} bus",
        highlight=False,
        soft_wrap=True,
    )

    async def main(stop: asyncio.Event) -> None:
        from cloud.bootstrap import run_background_services

        await run_background_services(
            notify,
            stop,
            notify=notify,
            dispatch=dispatch,
            flow=flow,
            reminders=reminders,
            report_packs=packs,
            sap=sap,
            bus_settings=bus,
            region=region,
        )

    run_until_signal(main)
    console.print("services stopped")


def api() -> None:
    """Serve the REST API on POTR_API_HOST:POTR_API_PORT, and the web UI when
    POTR_PORTAL_IDENTITY_URL names the identity service to sign people in through."""
    from cloud.bootstrap import (
        create_api,
        create_cycle_runner,
        create_web_ui,
        open_pool,
        open_remote_reports,
        serve_config_service,
    )
    from cloud.config import ConfigSettings
    from cloud.dispatch import DispatchSettings
    from cloud.identity import load_verifying_keys
    from cloud.portal import PortalSettings

    settings = load_settings(PortalSettings, console)
    dispatch = load_settings(DispatchSettings, console)
    config = load_settings(ConfigSettings, console)
    # Checked before any connection: without it no token could be verified.
    _key_or_exit(load_verifying_keys, settings.identity_public_key_file, settings.env)
    if config.signing_key_file is None:
        console.print("no POTR_SIGNING_KEY_FILE: the command and config routes are off")
    if settings.portal_identity_url is None:
        console.print("no POTR_PORTAL_IDENTITY_URL: the web UI is off (the API serves)")
    if settings.api_region is not None and settings.reports_gateway_url is None:
        console.print("no POTR_REPORTS_GATEWAY_URL: the reports across every region are off")

    async def serve(stop: asyncio.Event) -> None:
        async with contextlib.AsyncExitStack() as stack:
            pool = await asyncio.to_thread(open_pool, settings, "api")
            stack.callback(pool.close)
            service = None
            if config.signing_key_file is not None:
                # Commands and configs are published at once; `potr config run` republishes
                # whatever the broker did not take.
                service, _ = await stack.enter_async_context(serve_config_service(config, pool))
            web = None
            if settings.portal_identity_url is not None:
                web = create_web_ui(settings, pool)
                stack.push_async_callback(web.aclose)
            # Billing cycles admins start run in this process's threads: asked to stop
            # (between two sites) and waited for before the pool closes.
            cycles = create_cycle_runner(pool)
            stack.push_async_callback(asyncio.to_thread, cycles.close)
            # Pinned to a region with the gateway named: the reports across every region
            # ask the other regions' reports APIs for their tables.
            remote = stack.enter_context(open_remote_reports(settings))
            app = create_api(
                settings, pool, config=service, web=web, dispatch=dispatch,
                billing_cycles=cycles, remote_reports=remote,
            )  # fmt: skip
            await serve_http(
                app,
                settings.api_host,
                settings.api_port,
                stop,
                log_level="info",
                proxy_headers=True,
                forwarded_allow_ips=settings.api_trusted_proxies,
            )

    run_until_signal(serve)


def identity_api() -> None:
    """Serve the identity API (/api/v1/auth) on POTR_IDENTITY_API_HOST:PORT, purge ended
    counters and tokens every POTR_IDENTITY_PURGE_INTERVAL_S, and relay identity's events
    to each region's RabbitMQ (POTR_IDENTITY_REGION_BUSES, on POTR_BUS_EXCHANGE)."""
    from cloud.bootstrap import create_identity_api, open_pool
    from cloud.events.runtime import BusSettings, region_relays
    from cloud.identity import (
        IdentityRelaySettings,
        IdentitySettings,
        create_identity_service,
        load_signing_key,
        run_purge_loop,
    )

    settings = load_settings(IdentitySettings, console)
    relay_settings = load_settings(IdentityRelaySettings, console)
    bus_settings = load_settings(BusSettings, console)
    # Checked before any connection: without it no token could be issued.
    _key_or_exit(load_signing_key, settings.identity_signing_key_file, settings.env)
    buses = relay_settings.buses()
    if not buses and not relay_settings.identity_relay_disabled:
        console.print(
            "[yellow]identity's user.* events are relayed to no region's bus"
            " (POTR_IDENTITY_REGION_BUSES is unset): regional services learn no one"
            " unless they share this database[/yellow]",
            soft_wrap=True,
        )

    async def serve(stop: asyncio.Event) -> None:
        # Each region's relay holds a connection while its broker confirms a batch.
        pool = await asyncio.to_thread(open_pool, settings, "identity", max_size=4 + len(buses))
        try:
            service = create_identity_service(settings, pool)
            app = create_identity_api(settings, pool, service=service)
            async with (
                region_relays(bus_settings, pool, "identity", buses),
                asyncio.TaskGroup() as tg,
            ):
                tg.create_task(
                    run_purge_loop(
                        service.purge, stop, interval_s=settings.identity_purge_interval_s
                    )
                )
                try:
                    await serve_http(
                        app,
                        settings.identity_api_host,
                        settings.identity_api_port,
                        stop,
                        log_level="info",
                        forwarded_allow_ips=settings.identity_trusted_proxies,
                    )
                finally:
                    stop.set()  # the server ended (a signal, or it gave up): so does the purge
        finally:
            pool.close()

    run_until_signal(serve)


def _key_or_exit(load: Callable[..., object], path: Any, env: str) -> None:
    """Load a key file the process needs (demo keys refused in production), or exit 2
    with the reason."""
    from cloud.identity import KeyFileError

    try:
        load(path, production=env == "production")
    except KeyFileError as exc:
        console.print(f"[red]{exc}[/red]", soft_wrap=True)
        raise typer.Exit(2) from None
