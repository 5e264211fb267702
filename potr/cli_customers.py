"""``potr customer add|list|link-site|announce-installations``: customer accounts
(cloud/customers), which sites they own (the registry's, linked by
:func:`cloud.bootstrap.link_site`), and their sites' installation records announced
again."""

from __future__ import annotations

from typing import Any

import typer

from potr.console import CallConsole
from potr.runtime import load_settings

console = CallConsole()
customer_app = typer.Typer(help="Customer accounts and the sites they own", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(customer_app, name="customer")


def _pool() -> Any:
    from cloud.bootstrap import open_pool
    from cloud.settings import DatabaseSettings

    return open_pool(load_settings(DatabaseSettings, console), "cli")


def _fail(exc: Exception) -> typer.Exit:
    console.print(f"[red]{exc}[/red]", highlight=False)
    return typer.Exit(1)


@customer_app.command("add")
def customer_add(
    name: str = typer.Option(..., help="the customer's name"),
    email: str = typer.Option(..., help="contact email"),
    region: str = typer.Option(..., help="home region: au, us or es"),
    plan: str | None = typer.Option(None, help="billing plan code"),
    user_id: str | None = typer.Option(None, help="identity user that signs in (usr_…)"),
) -> None:
    """Create a customer account; prints its id."""
    from pydantic import ValidationError

    from cloud.customers import AccountIn, CustomersError, CustomersService
    from contracts.topics import Region

    try:
        home = Region(region)
        given = AccountIn(name=name, email=email, plan_code=plan, user_id=user_id)
    except (ValueError, ValidationError) as exc:
        raise typer.BadParameter(_reason(exc)) from None
    pool = _pool()
    try:
        account = CustomersService(pool).add_account(home, given)
    except CustomersError as exc:
        raise _fail(exc) from None
    finally:
        pool.close()
    console.print(f"account {account.id} added: {account.name} ({account.region})")


@customer_app.command("list")
def customer_list(
    region: str | None = typer.Option(None, help="only this region's accounts"),
    limit: int = typer.Option(100, min=1, max=1000),
) -> None:
    """List customer accounts."""
    from cloud.customers import CustomersService
    from contracts.topics import Region

    try:
        only = Region(region) if region else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    pool = _pool()
    try:
        accounts = CustomersService(pool).list_accounts(only, limit=limit)
    finally:
        pool.close()
    # One line each, the id first and whole (a table wraps it in a narrow terminal).
    for a in accounts:
        plan = a.plan_code or "-"
        line = f"{a.id}  {a.region.value}  {a.status.value:<9}  {plan}  {a.name} <{a.email}>"
        console.print(line, highlight=False, markup=False, soft_wrap=True)


@customer_app.command("link-site")
def customer_link_site(
    account: str = typer.Option(..., help="the account (acc_…)"),
    site: int = typer.Option(..., min=1, help="the registry's site id"),
) -> None:
    """Make an account the owner of a site of its region (its gateways are told)."""
    from cloud.bootstrap import link_site
    from cloud.customers import CustomersError, CustomersService
    from cloud.registry import RegistryError, RegistryService

    pool = _pool()
    try:
        linked = link_site(RegistryService(pool), CustomersService(pool), site, account)
    except (CustomersError, RegistryError, ValueError) as exc:
        raise _fail(exc) from None
    finally:
        pool.close()
    console.print(f"site {linked.id} ({linked.region}) now belongs to account {account}")


@customer_app.command("announce-installations")
def customer_announce_installations(
    region: str = typer.Option(..., help="the region whose records to announce: au, us or es"),
) -> None:
    """Announce every installation record of a region again (site.installation_changed),
    so services that keep a site's meters learn the records made before they did."""
    from cloud.customers import CustomersService
    from contracts.topics import Region

    try:
        where = Region(region)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    pool = _pool()
    try:
        announced = CustomersService(pool).announce_installations(where)
    finally:
        pool.close()
    console.print(f"{announced} installation record(s) of {where.value} announced")


def _reason(exc: Exception) -> str:
    """A refusal without echoing the values given (field: reason)."""
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        return "; ".join(
            ".".join(str(p) for p in e["loc"]) + ": " + e["msg"]
            for e in exc.errors(include_url=False, include_input=False)
        )
    return str(exc)
