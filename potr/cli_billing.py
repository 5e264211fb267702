"""``potr billing``: run a region's billing cycle for a period (an admin's, or the
scheduler's): every billable site invoiced once, gap-free numbers, skipped sites named."""

from __future__ import annotations

from datetime import date
from enum import StrEnum

import typer
from rich.console import Console

from contracts.topics import Region
from potr.runtime import load_settings

__all__ = ["register"]

console = Console()


class BillingCycleName(StrEnum):
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"


billing_app = typer.Typer(help="Billing: cycles and invoices", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(billing_app, name="billing")


@billing_app.command("cycle")
def billing_cycle(
    region: Region = typer.Option(..., help="au, us or es"),
    month: str = typer.Option(..., help="the period's first month, YYYY-MM"),
    cycle: BillingCycleName = typer.Option(
        BillingCycleName.MONTHLY, help="monthly or quarterly (the plans billed so)"
    ),
    run_by: str = typer.Option(..., "--run-by", help="who runs it (kept on the cycle)"),
) -> None:
    """Bill REGION's sites for the period starting MONTH; a period billed before issues
    nothing (exit 0). Prints the numbers issued and every skipped site with its reason."""
    from cloud.bootstrap import create_billing_service, open_pool
    from cloud.settings import DatabaseSettings

    try:
        first = date.fromisoformat(f"{month}-01")
    except ValueError:
        raise typer.BadParameter("month must be YYYY-MM") from None
    if cycle is BillingCycleName.QUARTERLY and first.month % 3 != 1:
        raise typer.BadParameter("a quarter starts in January, April, July or October")
    pool = open_pool(load_settings(DatabaseSettings, console), "potr-billing-cycle")
    try:
        service = create_billing_service(pool)
        result = service.run_cycle(region, first, run_by=run_by, cycle=cycle.value)
    finally:
        pool.close()
    period = result.period
    console.print(
        f"{region.value} {period.first_day}…{period.last_day}: {result.state},"
        f" {len(result.numbers)} invoice(s) issued now",
        highlight=False,
    )
    for number in result.numbers:
        console.print(f"  {number}", highlight=False)
    for skipped in result.skipped:
        console.print(f"  [yellow]skipped site {skipped.site_id}: {skipped.reason}[/yellow]")
