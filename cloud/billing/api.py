"""Billing's read-only REST routes, relative to the portal's regional prefix
``/api/v1/{region}``: an account's documents, one document with its lines and taxes,
the account's balance per currency and its payments.

Every route takes its caller's :class:`~cloud.scope.Access` from the portal's one
authorisation dependency (``access(route_key)``; 401/403 are its) and hands the scope to
:class:`~cloud.billing.bills.BillsReader`, which filters by it in SQL. An account a
account outside the caller's reach (a customer: any but its own; staff: one at home in
another region) or a document outside the scope answers 404; an account in reach with
nothing billed answers empty lists and an empty balance. Which accounts exist is the
customers service's: the portal passes ``account_in_scope(scope, account_id)``, asked
before every account route (billing imports no other service).
"""

# No ``from __future__ import annotations``: the routes' ``Annotated`` dependencies are
# local to ``create_router`` and FastAPI resolves string annotations in the module's
# globals only.

from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response, status
from starlette.concurrency import run_in_threadpool

from cloud.billing.bills import BillsReader, Document, DocumentDetail, Payment
from cloud.billing.pdf import BillPdfs
from cloud.scope import Access, Scope

AccountIdPath = Annotated[
    str,
    Path(pattern=r"^acc_[0-9a-f]{32}$", min_length=36, max_length=36, examples=["acc_" + "0" * 32]),
]
NumberPath = Annotated[
    str,
    Path(pattern=r"^(AU|US|ES)-[0-9]{4}-[0-9]{7}$", max_length=15, examples=["ES-2026-0000001"]),
]
Limit = Annotated[int, Query(ge=1, le=500, description="page size")]
Language = Annotated[
    str | None,
    Query(
        pattern=r"^(en|es)$",
        max_length=2,
        description="the PDF's language (default: the customer's)",
    ),
]
Offset = Annotated[int, Query(ge=0, le=1_000_000, description="rows to skip")]

Responses = dict[int | str, dict[str, Any]]


def _answers(not_found: str) -> Responses:
    return {
        401: {"description": "no valid bearer token"},
        403: {"description": "the caller's role may not read billing"},
        404: {"description": not_found},
        422: {"description": "a path or query field out of its bounds (detail names it)"},
    }


_ACCOUNT_404 = "no such account within the caller's reach (a customer: any but its own)"


def create_router(
    reader: BillsReader,
    *,
    access: Callable[[str], Callable[..., Any]],
    account_in_scope: Callable[[Scope, str], bool] | None = None,
    pdfs: BillPdfs | None = None,
) -> APIRouter:
    """Routes under ``/accounts/{account_id}/…`` and ``/documents/{number}``;
    ``account_in_scope(scope, account_id)`` (blocking; run in a thread) says whether the
    account exists within the scope. Without it, a customer reaches its own account only
    and staff any (their documents are still filtered by region in SQL). With ``pdfs``,
    also ``/documents/{number}/pdf``."""
    router = APIRouter(tags=["billing"])

    async def reach(who: Access, account_id: str) -> None:
        """Return once the account is in the caller's reach; else 404."""
        reachable = reader.reaches(who.scope, account_id)
        if reachable and account_in_scope is not None:
            reachable = await run_in_threadpool(account_in_scope, who.scope, account_id)
        if not reachable:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"account {account_id} not found")

    @router.get(
        "/accounts/{account_id}/documents",
        response_model=list[Document],
        operation_id="billing.documents.list",
        summary="An account's invoices and notes, newest first, with what each still owes",
        responses=_answers(_ACCOUNT_404),
    )
    async def list_documents(
        account_id: AccountIdPath,
        who: Annotated[Access, Depends(access("billing.documents.list"))],
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> list[Document]:
        await reach(who, account_id)
        return await run_in_threadpool(
            reader.documents, account_id, scope=who.scope, limit=limit, offset=offset
        )

    @router.get(
        "/documents/{number}",
        response_model=DocumentDetail,
        operation_id="billing.documents.get",
        summary="One invoice or note with its lines and taxes",
        responses=_answers("no such document within the caller's reach"),
    )
    async def get_document(
        number: NumberPath,
        who: Annotated[Access, Depends(access("billing.documents.get"))],
    ) -> DocumentDetail:
        found = await run_in_threadpool(reader.document, number, scope=who.scope)
        if found is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"document {number} not found")
        return found

    if pdfs is not None:

        @router.get(
            "/documents/{number}/pdf",
            operation_id="billing.documents.pdf",
            summary="One invoice or note as a PDF in the customer's language, with its usage",
            response_class=Response,
            responses={
                200: {"content": {"application/pdf": {}}, "description": "the PDF"},
                **_answers("no such document within the caller's reach"),
            },
        )
        async def get_document_pdf(
            number: NumberPath,
            who: Annotated[Access, Depends(access("billing.documents.pdf"))],
            language: Language = None,
        ) -> Response:
            found = await run_in_threadpool(pdfs.pdf, number, scope=who.scope, language=language)
            if found is None:
                raise HTTPException(status.HTTP_404_NOT_FOUND, f"document {number} not found")
            return pdf_response(found, number)

    @router.get(
        "/accounts/{account_id}/balance",
        response_model=dict[str, Decimal],
        operation_id="billing.balance.get",
        summary="An account's balance per currency (positive: owed by the customer)",
        responses=_answers(_ACCOUNT_404),
    )
    async def get_balance(
        account_id: AccountIdPath,
        who: Annotated[Access, Depends(access("billing.balance.get"))],
    ) -> dict[str, Decimal]:
        await reach(who, account_id)
        return await run_in_threadpool(reader.balance, account_id, scope=who.scope)

    @router.get(
        "/accounts/{account_id}/payments",
        response_model=list[Payment],
        operation_id="billing.payments.list",
        summary="An account's payments, newest first, with what each has not yet paid off",
        responses=_answers(_ACCOUNT_404),
    )
    async def list_payments(
        account_id: AccountIdPath,
        who: Annotated[Access, Depends(access("billing.payments.list"))],
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> list[Payment]:
        await reach(who, account_id)
        return await run_in_threadpool(
            reader.payments, account_id, scope=who.scope, limit=limit, offset=offset
        )

    return router


def pdf_response(pdf: bytes, number: str) -> Response:
    """``pdf`` as a download named for the document (private: it is one customer's)."""
    return Response(
        pdf,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="{number}.pdf"',
            "Cache-Control": "private, no-store",
        },
    )
