"""``potr user add|list|disable|unlock|reset-pin``: the identity service's users, for
operators at a shell (the same service as ``/api/v1/auth/users``; the audit names the
actor ``cli``).

``disable`` also ends a technician's broker access when the user has a broker identity
(``_tech/<name>``): at once where this host manages that region's broker
(``POTR_BROKER_REGION``, ``POTR_BROKER_DIR``, ``POTR_PKI_DIR``), else it says what to run
there.
"""

from __future__ import annotations

import sys
from typing import Any

import typer
from rich.table import Table

from potr.console import CallConsole
from potr.runtime import load_settings

console = CallConsole(soft_wrap=True, highlight=False)
users_app = typer.Typer(help="Users: people and their roles (identity)", no_args_is_help=True)

#: Who the audit names for what this CLI does.
ACTOR = "cli"


def register(app: typer.Typer) -> None:
    app.add_typer(users_app, name="user")


def _service() -> tuple[Any, Any]:
    """(identity service, its pool) from the ``POTR_*`` settings; exit 1 without a key."""
    from cloud.bootstrap import open_pool
    from cloud.identity import IdentitySettings, KeyFileError, create_identity_service

    settings = load_settings(IdentitySettings, console)
    pool = open_pool(settings, "cli")
    try:
        return create_identity_service(settings, pool), pool
    except (KeyFileError, ValueError) as exc:
        pool.close()
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None


def _find(service: Any, who: str) -> Any:
    user = service.find_user(who)
    if user is None:
        console.print(f"[red]no user {who!r}[/red]")
        raise typer.Exit(1)
    return user


def _refused(exc: Exception) -> typer.Exit:
    console.print(f"[red]{exc}[/red]")
    return typer.Exit(1)


@users_app.command("add")
def user_add(
    email: str = typer.Option(..., help="the login, unique whatever its case"),
    name: str = typer.Option(..., help="display name"),
    role: str = typer.Option(..., help="customer, mosie, support, operator or admin"),
    region: str = typer.Option(..., help="home region: au, us or es"),
    employee_no: str | None = typer.Option(None, help="employees and MOSIEs: logs in with a PIN"),
    account_id: str | None = typer.Option(None, help="customers: their account (acc_…)"),
    broker_username: str | None = typer.Option(
        None, help="a technician's broker identity (_tech/<name>), revoked on disable"
    ),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="read the password from the first line of stdin"
    ),
) -> None:
    """Add a user. Without a password they set one by password reset; with an employee
    number they get a first PIN, printed once."""
    from pydantic import ValidationError

    from cloud.identity import IdentityError, UserIn

    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else None
    try:
        data = UserIn(
            email=email,
            display_name=name,
            role=role,
            home_region=region,
            employee_no=employee_no,
            account_id=account_id,
            broker_username=broker_username,
            password=password or None,
        )
    except ValidationError as exc:
        fields = ", ".join(".".join(map(str, e["loc"])) for e in exc.errors())
        raise typer.BadParameter(f"refused: {fields}") from None
    service, pool = _service()
    try:
        user = service.create_user(data, actor=ACTOR)
    except IdentityError as exc:
        raise _refused(exc) from None
    finally:
        pool.close()
    where = f"{user.role.value}, {user.home_region.value}"
    console.print(f"user {user.id} added: {user.email} ({where})")
    if user.pin:
        console.print(f"first PIN of {user.employee_no} (shown once): {user.pin}")
    if not password:
        console.print("no password yet: they set one at POST /api/v1/auth/password-reset/request")


@users_app.command("list")
def user_list(
    role: str | None = typer.Option(None, help="only this role"),
    region: str | None = typer.Option(None, help="only this home region"),
    limit: int = typer.Option(100, min=1, max=1000),
) -> None:
    """List users (oldest first)."""
    from cloud.identity import Role

    try:
        wanted = Role(role) if role else None
    except ValueError:
        raise typer.BadParameter(f"role must be one of {[r.value for r in Role]}") from None
    service, pool = _service()
    try:
        users = service.list_users(role=wanted, region=region, limit=limit)
    finally:
        pool.close()
    table = Table("id", "email", "name", "role", "region", "employee", "disabled")
    for u in users:
        table.add_row(
            u.id,
            u.email,
            u.display_name,
            u.role.value,
            u.home_region.value,
            u.employee_no or "",
            f"{u.disabled_at:%Y-%m-%d %H:%M}" if u.disabled_at else "",
        )
    console.print(table)


@users_app.command("disable")
def user_disable(
    who: str = typer.Argument(..., help="user id, e-mail address or employee number"),
) -> None:
    """Disable a user: their sessions end, logins fail, and their broker identity (if
    any) is revoked."""
    from cloud.identity import IdentityError

    service, pool = _service()
    try:
        user = service.disable_user(_find(service, who).id, actor=ACTOR)
        console.print(f"user {user.id} ({user.email}) disabled; sessions revoked")
        if user.broker_username:
            _revoke_broker_identity(user.broker_username, pool)
    except IdentityError as exc:
        raise _refused(exc) from None
    finally:
        pool.close()


def _revoke_broker_identity(username: str, pool: Any) -> None:
    """Revoke ``username`` at its broker when this host manages that region's broker."""
    from pydantic import ValidationError

    from cloud.registry import BrokerIdentities
    from potr.broker_settings import BrokerSiteSettings
    from potr.provisioning import BrokerPlace, ProvisioningError, revoke_identity

    run_there = f"run `potr broker revoke --username {username}`"
    identities = BrokerIdentities(pool)
    record = identities.get(username)
    if record is None or record.revoked:
        console.print(f"broker identity {username}: none live")
        return
    try:
        site = BrokerSiteSettings()
    except ValidationError:
        console.print(
            f"[yellow]{username} can still reach the {record.region.value} broker: {run_there}"
            " where POTR_BROKER_REGION/POTR_BROKER_DIR/POTR_PKI_DIR are set[/yellow]",
            soft_wrap=True,
        )
        return
    if site.broker_region != record.region:
        console.print(
            f"[yellow]{username} is on the {record.region.value} broker, this host manages"
            f" {site.broker_region.value}'s: {run_there} there[/yellow]",
            soft_wrap=True,
        )
        return
    place = BrokerPlace(
        site.broker_region, site.broker_dir, site.pki_dir, site.broker_url, site.broker_cert_url
    )
    try:
        revoke_identity(identities, place, username)
    except ProvisioningError as exc:
        raise _refused(exc) from None
    console.print(f"broker identity {username} revoked")


@users_app.command("unlock")
def user_unlock(
    who: str = typer.Argument(..., help="user id, e-mail address or employee number"),
) -> None:
    """Lift a user's password and PIN lock-outs."""
    service, pool = _service()
    try:
        user = service.unlock(_find(service, who).id, actor=ACTOR)
    finally:
        pool.close()
    console.print(f"user {user.id} ({user.email}) unlocked")


@users_app.command("reset-pin")
def user_reset_pin(
    who: str = typer.Argument(..., help="user id, e-mail address or employee number"),
) -> None:
    """Give an employee a new random PIN (printed once) and lift their PIN lock-out."""
    from cloud.identity import IdentityError

    service, pool = _service()
    try:
        user = _find(service, who)
        reset = service.reset_pin(user.id, actor=ACTOR)
    except IdentityError as exc:
        raise _refused(exc) from None
    finally:
        pool.close()
    console.print(f"new PIN of {user.employee_no} (shown once): {reset.pin}")
