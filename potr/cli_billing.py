"""``potr billing``: run a region's billing cycle for a period (an admin's, or the
scheduler's): every billable site invoiced once, gap-free numbers, skipped sites named;
send the overdue reminders due (once per document and level); cancel an invoice by a
reversing document; refund an account's credit (admins and support)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from enum import StrEnum

import typer

from contracts.topics import Region
from potr.console import CallConsole
from potr.runtime import load_settings

__all__ = ["register"]

console = CallConsole()


class BillingCycleName(StrEnum):
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"


billing_app = typer.Typer(
    help="Billing: cycles, invoices, reminders, cancellations and refunds", no_args_is_help=True
)


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
    """Bill REGION's sites for the period starting MONTH, once it has ended in every zone
    of the region; a period billed before issues nothing (exit 0). Prints the numbers
    issued and every skipped site with its reason."""
    from cloud.billing import period_ends_at, period_of, region_zones
    from cloud.bootstrap import create_billing_service, open_pool
    from cloud.settings import DatabaseSettings
    from contracts.timeutil import utc_now

    try:
        first = date.fromisoformat(f"{month}-01")
    except ValueError:
        raise typer.BadParameter("month must be YYYY-MM") from None
    if cycle is BillingCycleName.QUARTERLY and first.month % 3 != 1:
        raise typer.BadParameter("a quarter starts in January, April, July or October")
    ends = period_ends_at(period_of(first, cycle.value), region_zones(region))
    if ends > utc_now():  # a day still running somewhere in the region is not billed
        raise typer.BadParameter(
            f"the period has not ended everywhere in {region.value}: it ends at {ends.isoformat()}"
        )
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


@billing_app.command("reminders")
def billing_reminders(
    region: Region = typer.Option(..., help="au, us or es"),
    as_of: str | None = typer.Option(
        None, "--as-of", help="YYYY-MM-DD (default: today on the region's clock)"
    ),
) -> None:
    """Emit ``invoice.overdue`` for REGION's unpaid documents 7 and 21 days past due,
    once per document and level (a second run sends nothing new). Prints what was sent."""
    from cloud.bootstrap import create_billing_service, open_pool, region_zone
    from cloud.settings import DatabaseSettings
    from contracts.timeutil import utc_now

    try:
        day = (
            date.fromisoformat(as_of) if as_of else utc_now().astimezone(region_zone(region)).date()
        )
    except ValueError:
        raise typer.BadParameter("as-of must be YYYY-MM-DD") from None
    pool = open_pool(load_settings(DatabaseSettings, console), "potr-billing-reminders")
    try:
        sent = create_billing_service(pool).send_reminders(region, day)
    finally:
        pool.close()
    console.print(f"{region.value} as of {day}: {len(sent)} reminder(s) sent", highlight=False)
    for r in sent:
        console.print(f"  {r.number} {r.level} days overdue: {r.outstanding}", highlight=False)


@billing_app.command("cancel")
def billing_cancel(
    number: str = typer.Option(..., help="the invoice's number, e.g. AU-2026-0000123"),
    reason: str = typer.Option(..., help="why (kept with the cancellation)"),
    by: str = typer.Option(..., "--by", help="who cancels it"),
) -> None:
    """Cancel an invoice by a reversing document (never deleted); prints its number."""
    from cloud.billing import DocumentError
    from cloud.bootstrap import create_billing_service, open_pool
    from cloud.settings import DatabaseSettings

    pool = open_pool(load_settings(DatabaseSettings, console), "potr-billing-cancel")
    try:
        cancellation = create_billing_service(pool).cancel(number, reason, by)
    except DocumentError as e:
        console.print(f"[red]{e}[/red]")
        raise typer.Exit(1) from None
    finally:
        pool.close()
    console.print(f"{number} cancelled by {cancellation}", highlight=False)


class ProviderName(StrEnum):
    #: The only provider this build has: the deterministic local one (tests, the demo).
    LOCAL = "local"


@billing_app.command("refund")
def billing_refund(
    region: Region = typer.Option(..., help="au, us or es"),
    account: str = typer.Option(..., help="the account, acc_ + 32 hex digits"),
    amount: str = typer.Option(..., help="in the region's currency, e.g. 12.50"),
    key: str = typer.Option(..., help="idempotency key: the same key again refunds nothing"),
    by: str = typer.Option(..., "--by", help="who refunds (an admin or support; kept)"),
    provider: ProviderName = typer.Option(ProviderName.LOCAL, help="the payment provider"),
) -> None:
    """Pay AMOUNT of ACCOUNT's credit back through the provider; refused (exit 1, nothing
    paid) above the credit the account holds. Prints the refund and the credit left."""
    from cloud.billing import LocalPaymentProvider, PaymentDeclinedError, RefundError
    from cloud.bootstrap import create_billing_service, open_pool
    from cloud.settings import DatabaseSettings

    try:
        money = Decimal(amount)
    except InvalidOperation:
        raise typer.BadParameter("amount must be a number such as 12.50") from None
    if not (1 <= len(key) <= 200 and 1 <= len(by) <= 200):
        raise typer.BadParameter("key and --by take 1 to 200 characters")
    pool = open_pool(load_settings(DatabaseSettings, console), "potr-billing-refund")
    try:
        result = create_billing_service(pool).refund(
            LocalPaymentProvider(), region, account, money, key, by=by
        )
    except (RefundError, PaymentDeclinedError) as e:
        console.print(f"[red]{e}[/red]")
        raise typer.Exit(1) from None
    finally:
        pool.close()
    state = "refunded" if result.recorded else "refunded before under this key"
    console.print(
        f"{account}: {result.amount} {state} ({result.reference}); credit left"
        f" {result.credit_left}",
        highlight=False,
    )
