"""Bills in the web UI (issue 19 point 6): a customer's own documents with what each
still owes, the balance per currency and the payments, and each document's page with
its lines and taxes; and support's read-only view of the same for a customer they looked
up, written to the portal's audit log (:class:`cloud.portal.audit.ViewAudit`) before the
page is answered, like support's other views of a customer.

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

from cloud.billing import BillsReader
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
) -> APIRouter:
    router = APIRouter(prefix="/ui/{region}", include_in_schema=False)

    def viewer(route: str) -> Any:
        return Depends(sessions.viewer(route))

    def gather(scope: Scope, account_id: str | None) -> dict[str, Any]:
        if account_id is None:  # a customer's token without an account reaches nothing
            return {"documents": [], "balance": {}, "payments": []}
        return {
            "documents": bills.documents(account_id, scope=scope, limit=_DOCUMENTS),
            "balance": bills.balance(account_id, scope=scope),
            "payments": bills.payments(account_id, scope=scope, limit=_PAYMENTS),
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
        found = await run_in_threadpool(lambda: bills.document(number, scope=scope))
        if found is None:
            raise PageRefused(404, "no such bill")
        base = view.base if view is not None else f"/ui/{who.region.value}"
        return renderer.page(
            request, "bill.html", language=who.language, viewer=who, as_customer=view,
            base=base, doc=found,
        )  # fmt: skip

    @router.get("/bills", operation_id="ui.bills")
    async def my_bills(request: Request, who: Annotated[Viewer, viewer("ui.bills")]) -> Response:
        return await list_page(request, who, who.scope, who.scope.account_id, None)

    @router.get("/bills/{number}", operation_id="ui.bill")
    async def my_bill(
        request: Request, number: NumberPath, who: Annotated[Viewer, viewer("ui.bill")]
    ) -> Response:
        return await document_page(request, who, who.scope, number, None)

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

    return router
