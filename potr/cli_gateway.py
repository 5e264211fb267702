"""``potr gateway provision|revoke|rotate`` and ``potr broker identity|sync``: broker
identities, their credentials and the region's broker files (potr/provisioning.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from potr.console import CallConsole
from potr.runtime import load_settings

console = CallConsole()
gateway_app = typer.Typer(
    help="Gateway identities: provision, revoke, rotate", no_args_is_help=True
)
broker_app = typer.Typer(help="Regional brokers: config, identities, reload", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(gateway_app, name="gateway")
    app.add_typer(broker_app, name="broker")


def _context(**overrides: Any) -> tuple[Any, Any, Any]:
    """(registry, identities, broker place) from ``POTR_*`` settings and the command's
    options (``overrides``: region, broker dir, CA dir, given on the command line)."""
    from cloud.bootstrap import open_pool
    from cloud.registry import BrokerIdentities, RegistryService
    from cloud.settings import DatabaseSettings
    from potr.broker_settings import BrokerSiteSettings
    from potr.provisioning import BrokerPlace

    given = {k: v for k, v in overrides.items() if v is not None}
    site = load_settings(lambda: BrokerSiteSettings(**given), console)
    pool = open_pool(load_settings(DatabaseSettings, console), "cli")
    place = BrokerPlace(
        site.broker_region, site.broker_dir, site.pki_dir, site.broker_url, site.broker_cert_url
    )
    return RegistryService(pool), BrokerIdentities(pool), place


def _fail(exc: Exception) -> typer.Exit:
    console.print(f"[red]{exc}[/red]", soft_wrap=True)
    return typer.Exit(1)


def _reloaded(ok: bool) -> None:
    if ok:
        console.print("broker reloaded")
    else:
        console.print("[yellow]no broker running from POTR_BROKER_DIR: reload it (SIGHUP)[/yellow]")


@gateway_app.command("provision")
def gateway_provision(
    gateway_id: str = typer.Option(..., "--id", help="gateway id, as in its MQTT topics"),
    site_id: int = typer.Option(..., "--site", min=1, help="the site it stands on"),
    credential: str = typer.Option("password", help="password or certificate"),
    out: Path = typer.Option(..., help="folder for the agent's bundle (copy it to the gateway)"),
    install_dir: Path = typer.Option(
        Path("/etc/potr"), help="where the bundle will live on the gateway"
    ),
) -> None:
    """Register a gateway, create its credential, write its agent bundle, reload the broker."""
    from potr.provisioning import ProvisioningError, provision_gateway

    if credential not in ("password", "certificate"):
        raise typer.BadParameter("credential must be password or certificate")
    registry, identities, place = _context()
    try:
        done = provision_gateway(
            registry,
            identities,
            place,
            gateway_id=gateway_id,
            site_id=site_id,
            credential=credential,  # type: ignore[arg-type]
            out_dir=out,
            install_dir=install_dir,
        )
    except ProvisioningError as exc:
        raise _fail(exc) from None
    console.print(f"gateway {done.username} provisioned ({done.credential}); bundle in {out}:")
    for path in done.files:
        console.print(f"  {path.name}")
    _reloaded(done.reloaded)


@gateway_app.command("revoke")
def gateway_revoke(
    gateway_id: str = typer.Option(..., "--id"),
    admin_secret_file: Path | None = typer.Option(
        None, help="the region's admin secret (default POTR_BROKER_DIR/admin.secret)"
    ),
) -> None:
    """End a gateway's access now (either credential), disable it in ingest, and clear
    its retained state, config and config_state."""
    from potr.provisioning import (
        ADMIN_SECRET_FILE,
        ProvisioningError,
        clear_retained,
        revoke_identity,
    )

    registry, identities, place = _context()
    try:
        record = revoke_identity(identities, place, gateway_id)
        registry.set_gateway_enabled(gateway_id, False)
        secret = (admin_secret_file or place.broker_dir / ADMIN_SECRET_FILE).read_text().strip()
        clear_retained(place, gateway_id, secret)
    except (ProvisioningError, OSError) as exc:
        raise _fail(exc) from None
    console.print(f"gateway {gateway_id} revoked ({record.credential}); retained state cleared")


@gateway_app.command("rotate")
def gateway_rotate(
    gateway_id: str = typer.Option(..., "--id"),
    out: Path = typer.Option(..., help="folder for the new credential (copy to the gateway)"),
    finish: bool = typer.Option(
        False, help="certificates: retire the old ones (once the gateway uses the new one)"
    ),
) -> None:
    """Rotate a gateway's credential: a new password (one reconnect), or a new
    certificate with the same CN alongside the old one until ``--finish``."""
    from potr.provisioning import (
        ProvisioningError,
        finish_certificate_rotation,
        rotate_certificate,
        rotate_password,
    )

    _, identities, place = _context()
    record = identities.get(gateway_id)
    if record is None or record.revoked:
        raise _fail(ProvisioningError(f"no live identity {gateway_id!r}"))
    try:
        if record.credential == "password":
            out.mkdir(parents=True, exist_ok=True)
            rotate_password(identities, place, gateway_id, out / "mqtt.secret")
            console.print(
                f"new secret in {out / 'mqtt.secret'}: copy it over the gateway's"
                " mqtt_password_file, then run `potr broker sync` (one reconnect)"
            )
        elif finish:
            retired = finish_certificate_rotation(identities, place, gateway_id)
            console.print("retired: " + ", ".join(c.serial_hex for c in retired))
        else:
            issued = rotate_certificate(place, gateway_id, out)
            console.print(
                f"new certificate {issued.record.serial_hex} in {out}; once the gateway"
                " uses it, run again with --finish"
            )
    except ProvisioningError as exc:
        raise _fail(exc) from None


@broker_app.command("identity")
def broker_identity(
    kind: str = typer.Option(..., help="ingest, config, admin, technician or monitor"),
    name: str = typer.Option(..., help="e.g. au-0 for ingest worker 0 of au, or a user"),
    out: Path = typer.Option(..., help="file to write the secret to (0600)"),
    credentials_file: bool = typer.Option(
        False, help="add `username: secret` to OUT as YAML (POTR_MQTT_CREDENTIALS_FILE)"
    ),
) -> None:
    """A password identity for a service or a technician (its username is printed, its
    secret only written to OUT)."""
    from contracts.identities import IdentityKind
    from potr.provisioning import ProvisioningError, provision_service

    try:
        ident_kind = IdentityKind(kind)
    except ValueError:
        kinds = "ingest, config, admin, technician or monitor"
        raise typer.BadParameter(f"kind must be {kinds}") from None
    _, identities, place = _context()
    try:
        done = provision_service(
            identities,
            place,
            kind=ident_kind,
            name=name,
            out_file=out,
            credentials_file=credentials_file,
        )
    except ProvisioningError as exc:
        raise _fail(exc) from None
    console.print(f"identity {done.username}: secret in {out}")
    _reloaded(done.reloaded)


@broker_app.command("sync")
def broker_sync() -> None:
    """Rewrite the broker's password file, ACL and CRL from the registry and reload it."""
    from potr.provisioning import sync_broker

    _, identities, place = _context()
    _reloaded(sync_broker(identities, place))


@broker_app.command("render")
def broker_render(
    port: int = typer.Option(8883, min=1, max=65535, help="TLS listener for passwords"),
    cert_port: int = typer.Option(8884, min=1, max=65535, help="TLS listener for certificates"),
    host: str | None = typer.Option(None, help="interface to listen on (default: all)"),
    server_name: list[str] = typer.Option(
        ["127.0.0.1", "localhost"], help="names/IPs clients reach the broker by (repeat)"
    ),
    dev_plain_port: int | None = typer.Option(
        None, help="development only: also a plain listener on 127.0.0.1 at this port"
    ),
    region: str | None = typer.Option(None, help="au, us or es (default POTR_BROKER_REGION)"),
    out: Path | None = typer.Option(None, help="the broker directory (default POTR_BROKER_DIR)"),
    pki_dir: Path | None = typer.Option(None, help="the CA directory (default POTR_PKI_DIR)"),
) -> None:
    """Write the region's broker directory (config, server certificate, password file,
    ACL, CRL, admin identity), checked by starting Mosquitto on it first; reload the
    broker if one runs from it."""
    from potr.broker_render import BrokerLayout, render_broker
    from potr.provisioning import ProvisioningError

    _, identities, place = _context(broker_region=region, broker_dir=out, pki_dir=pki_dir)
    layout = BrokerLayout(
        port=port,
        cert_port=cert_port,
        host=host,
        server_names=tuple(server_name),
        dev_plain_port=dev_plain_port,
    )
    try:
        result = render_broker(identities, place, layout)
    except ProvisioningError as exc:
        raise _fail(exc) from None
    console.print(f"rendered {result.conf_file} (checked: Mosquitto loads it)")
    if result.issued_server_cert:
        console.print("issued the broker's server certificate")
    if result.created_admin:
        console.print(f"created the admin identity (secret in {place.broker_dir}/admin.secret)")
    _reloaded(result.reloaded)


@broker_app.command("revoke")
def broker_revoke(
    username: str = typer.Option(..., help="a service or technician username, e.g. _tech/alice"),
) -> None:
    """End a service's or technician's access at once (gateways: `potr gateway revoke`)."""
    from contracts.identities import IdentityError, IdentityKind, parse_username
    from potr.provisioning import ProvisioningError, revoke_identity

    try:
        kind, _ = parse_username(username)
    except IdentityError as exc:
        raise typer.BadParameter(str(exc)) from None
    if kind is IdentityKind.GATEWAY:
        raise typer.BadParameter("a gateway id: use `potr gateway revoke --id`")
    _, identities, place = _context()
    try:
        revoke_identity(identities, place, username)
    except ProvisioningError as exc:
        raise _fail(exc) from None
    console.print(f"{username} revoked")
