"""``potr gateway-config render``: the API gateway's nginx.conf from ``POTR_GATEWAY_*``
settings and options, checked with ``nginx -t`` before it is installed, then a reload
of the nginx running from that directory (docs/gateway.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from potr.console import CallConsole
from potr.runtime import load_settings

console = CallConsole()
gateway_config_app = typer.Typer(
    help="The API gateway (nginx): render its config", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.add_typer(gateway_config_app, name="gateway-config")


@gateway_config_app.command("render")
def render(
    out: Path | None = typer.Option(
        None, help="the gateway's nginx prefix directory [POTR_GATEWAY_DIR]"
    ),
    listen: str | None = typer.Option(None, help="host:port [POTR_GATEWAY_LISTEN]"),
    region_upstream: list[str] | None = typer.Option(
        None,
        "--region-upstream",
        help="REGION=host:port,host:port, once per region [POTR_GATEWAY_UPSTREAMS]",
    ),
    identity_upstream: str | None = typer.Option(
        None, help="identity's processes: host:port,... [POTR_GATEWAY_IDENTITY_UPSTREAMS]"
    ),
    portal_region: str | None = typer.Option(
        None,
        help="the region whose processes serve sign-in and static files"
        " (default: the first --region-upstream) [POTR_GATEWAY_PORTAL_REGION]",
    ),
    min_servers: int | None = typer.Option(
        None, min=1, help="API processes each region needs [POTR_GATEWAY_MIN_SERVERS]"
    ),
    tls_cert: Path | None = typer.Option(None, help="[POTR_GATEWAY_TLS_CERT_FILE]"),
    tls_key: Path | None = typer.Option(None, help="[POTR_GATEWAY_TLS_KEY_FILE]"),
) -> None:
    """Write nginx.conf into the gateway's directory once nginx accepts it; reload the
    gateway running from there."""
    from potr.gateway_settings import GatewaySettings
    from potr.servers.nginx import NginxError, install

    given: dict[str, Any] = {
        "gateway_dir": out,
        "gateway_listen": listen,
        "gateway_upstreams": ";".join(region_upstream) if region_upstream else None,
        "gateway_identity_upstreams": identity_upstream,
        "gateway_portal_region": portal_region,
        "gateway_min_servers": min_servers,
        "gateway_tls_cert_file": tls_cert,
        "gateway_tls_key_file": tls_key,
    }
    overrides = {k: v for k, v in given.items() if v is not None}
    settings = load_settings(lambda: GatewaySettings(**overrides), console)
    prefix = settings.gateway_dir.resolve()
    try:
        reloaded = install(settings.config(), prefix)
    except NginxError as exc:
        console.print(f"[red]{exc}[/red]", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    console.print(f"wrote {prefix / 'nginx.conf'} (nginx -t: ok)", highlight=False, soft_wrap=True)
    if reloaded:
        console.print("gateway reloaded")
    else:
        console.print(
            f"no gateway running from {prefix}: start it with"
            f" nginx -p {prefix}/ -c nginx.conf -e logs/error.log -g 'daemon off;'",
            highlight=False,
            soft_wrap=True,
        )
