"""Bills in the web UI (issue 19 point 6): a customer's own documents with what each
still owes, the balance per currency and the payments, and each document's page with
its lines and taxes; and support's read-only view of the same for a customer they looked
up, written to the portal's audit log (:class:`cloud.portal.audit.ViewAudit`) before the
page is answered, like support's other views of a customer. With a usage reader, the
account page shows the billed kWh per month and tariff period (the last 12 billed
months) and a document's page its kWh per tariff period and per day; with the PDFs, a
document's page links its PDF (in the customer's language), which support's view
records in the audit log like the page.

Everything is read through :class:`cloud.billing.BillsReader` with a scope: the
customer's own, or for support the account's inside the URL's region — so support sees
exactly the customer's view and no more, and a document of another account is not found
(404). Money is formatted with Babel in the viewer's language (``fmt.money``).
"""

# No ``from __future__ import annotations``: the routes' dependencies are local to
# ``create_bills_pages`` and FastAPI resolves string annotations in the module's globals.

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from cloud.billing import (
    BillPdfs,
    BillsReader,
    UsageReader,
    billed_periods,
    pdf_response,
    period_table,
)
from cloud.customers import CustomersService
from cloud.portal.audit import ViewAudit
from cloud.portal.web.pages_sites import AsCustomer
from cloud.portal.web.render import Renderer
from cloud.portal.web.session import PageRefused, Sessions, Viewer
from cloud.scope import Scope

__all__ = ["create_bills_pages"]

AccountPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
NumberPath = Annotated[str, Path(pattern=r"^(AU|US|ES)-[0-9]{4}-[0-9]{7}$", max_length=15)]
#: The newest documents and payments a page lists.
_DOCUMENTS = 100
_PAYMENTS = 50


def create_bills_pages(
    sessions: Sessions,
    renderer: Renderer,
    bills: BillsReader,
    customers: CustomersService | None,
    audit: ViewAudit,
    *,
    usage: UsageReader | None = None,
    pdfs: BillPdfs | None = None,
) -> APIRouter:
    router = APIRouter(prefix="/ui/{region}", include_in_schema=False)

    def viewer(route: str) -> Any:
        return Depends(sessions.viewer(route))

    def gather(scope: Scope, account_id: str | None) -> dict[str, Any]:
        if account_id is None:  # a customer's token without an account reaches nothing
            return {"documents": [], "balance": {}, "payments": [], "months": None}
        months = usage.months(account_id, scope=scope) if usage is not None else None
        return {
            "documents": bills.documents(account_id, scope=scope, limit=_DOCUMENTS),
            "balance": bills.balance(account_id, scope=scope),
            "payments": bills.payments(account_id, scope=scope, limit=_PAYMENTS),
            "months": period_table((m.month, m.period, m.kwh) for m in months) if months else None,
        }

    def one(scope: Scope, number: str) -> dict[str, Any] | None:
        doc = bills.document(number, scope=scope)
        if doc is None:
            return None
        used = usage.document(number, scope=scope) if usage is not None else None
        days = period_table((d.day, d.period, d.kwh) for d in used.days) if used else None
        return {
            "doc": doc,
            "billed": billed_periods(doc.lines) if usage is not None else None,
            "days": days if days and days[1] else None,
        }

    async def list_page(
        request: Request, who: Viewer, scope: Scope, account_id: str | None, view: Any
    ) -> Response:
        found = await run_in_threadpool(gather, scope, account_id)
        base = view.base if view is not None else f"/ui/{who.region.value}"
        return renderer.page(
            request, "bills.html", language=who.language, viewer=who, as_customer=view,
            base=base, **found,
        )  # fmt: skip

    async def document_page(
        request: Request, who: Viewer, scope: Scope, number: str, view: Any
    ) -> Response:
        found = await run_in_threadpool(one, scope, number)
        if found is None:
            raise PageRefused(404, "no such bill")
        base = view.base if view is not None else f"/ui/{who.region.value}"
        pdf = f"{base}/bills/{number}/pdf" if pdfs is not None else None
        return renderer.page(
            request, "bill.html", language=who.language, viewer=who, as_customer=view,
            base=base, pdf=pdf, **found,
        )  # fmt: skip

    async def pdf_file(scope: Scope, number: str) -> Response:
        assert pdfs is not None  # the routes exist only with it
        found = await run_in_threadpool(lambda: pdfs.pdf(number, scope=scope))
        if found is None:
            raise PageRefused(404, "no such bill")
        return pdf_response(found, number)

    @router.get("/bills", operation_id="ui.bills")
    async def my_bills(request: Request, who: Annotated[Viewer, viewer("ui.bills")]) -> Response:
        return await list_page(request, who, who.scope, who.scope.account_id, None)

    @router.get("/bills/{number}", operation_id="ui.bill")
    async def my_bill(
        request: Request, number: NumberPath, who: Annotated[Viewer, viewer("ui.bill")]
    ) -> Response:
        return await document_page(request, who, who.scope, number, None)

    if pdfs is not None:

        @router.get("/bills/{number}/pdf", operation_id="ui.bill.pdf")
        async def my_bill_pdf(
            number: NumberPath, who: Annotated[Viewer, viewer("ui.bill.pdf")]
        ) -> Response:
            return await pdf_file(who.scope, number)

    if customers is None:
        return router

    async def as_customer(request: Request, who: Viewer, account_id: str, what: str) -> AsCustomer:
        """The customer's view, once the account is in support's reach (else 404), and
        the view recorded in the audit log."""
        account = await run_in_threadpool(
            lambda: customers.get_account(account_id, who.region, scope=who.scope)
        )
        if account is None:
            raise PageRefused(404, "no such customer")
        address = request.client.host if request.client else None
        await run_in_threadpool(
            lambda: audit.record(
                actor_subject=who.caller.subject, actor_role=who.role, region=who.region,
                account_id=account.id, what=what, address=address,
            )
        )  # fmt: skip
        base = f"/ui/{who.region.value}/customers/{account.id}"
        return AsCustomer(account.id, account.name, base)

    @router.get("/customers/{account_id}/bills", operation_id="ui.support.bills")
    async def customer_bills(
        request: Request,
        account_id: AccountPath,
        who: Annotated[Viewer, viewer("ui.support.bills")],
    ) -> Response:
        view = await as_customer(request, who, account_id, "customer.bills")
        scope = Scope.of_account(who.region, view.account_id)
        return await list_page(request, who, scope, view.account_id, view)

    @router.get("/customers/{account_id}/bills/{number}", operation_id="ui.support.bill")
    async def customer_bill(
        request: Request,
        account_id: AccountPath,
        number: NumberPath,
        who: Annotated[Viewer, viewer("ui.support.bill")],
    ) -> Response:
        scope = Scope.of_account(who.region, account_id)
        if await run_in_threadpool(lambda: bills.document(number, scope=scope)) is None:
            raise PageRefused(404, "no such bill")  # nothing to record: nothing was shown
        view = await as_customer(request, who, account_id, f"customer.bill {number}")
        return await document_page(request, who, scope, number, view)

    if pdfs is not None:

        @router.get(
            "/customers/{account_id}/bills/{number}/pdf", operation_id="ui.support.bill.pdf"
        )
        async def customer_bill_pdf(
            request: Request,
            account_id: AccountPath,
            number: NumberPath,
            who: Annotated[Viewer, viewer("ui.support.bill.pdf")],
        ) -> Response:
            scope = Scope.of_account(who.region, account_id)
            if await run_in_threadpool(lambda: bills.document(number, scope=scope)) is None:
                raise PageRefused(404, "no such bill")  # nothing to record: nothing was shown
            await as_customer(request, who, account_id, f"customer.bill.pdf {number}")
            return await pdf_file(scope, number)

    return router
