"""Support REST routes, relative to the portal's regional prefix ``/api/v1/{region}``.

Every route takes its caller's :class:`~cloud.scope.Access` from the portal's one
authorisation dependency (``access(route_key)``; the key is the route's ``operationId``)
and passes the scope to the service, which filters tickets in SQL by region and, for a
customer, by its account: another account's ticket is not found (404).

The service's refusals propagate to the portal's handlers: ``NotFoundError`` 404,
``ConflictError`` 409, ``InvalidError`` 422. Every route lists every status it answers.
"""

# No ``from __future__ import annotations``: FastAPI resolves the routes' annotations.

from collections.abc import Callable
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field, StrictBool
from starlette.concurrency import run_in_threadpool

from cloud.events.types import ACCOUNT_ID_PATTERN
from cloud.scope import Access
from cloud.support.lifecycle import Kind, Priority, State
from cloud.support.models import (
    Note,
    PersonId,
    QueueFilter,
    StaffMove,
    Ticket,
    TicketDetail,
    TicketIn,
    TicketRate,
)
from cloud.support.privacy import ErasureRecord, PrivacyDesk
from cloud.support.service import CUSTOMER, Actor, SupportService
from contracts.topics import Region

__all__ = ["create_router"]

Limit = Annotated[int, Query(ge=1, le=200, description="page size")]
Offset = Annotated[int, Query(ge=0, le=1_000_000, description="rows to skip")]
#: A local month, YYYY-MM (2020-2099).
MONTH_PATTERN = r"^20[2-9][0-9]-(0[1-9]|1[0-2])$"
TicketId = Annotated[int, Path(ge=1, le=2**62, description="the ticket's id")]

_AUTH: dict[int | str, dict[str, Any]] = {
    401: {"description": "no valid bearer token"},
    403: {"description": "the token's role may not do this"},
    422: {"description": "a field unknown or out of bounds (the answer names it)"},
}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "no such ticket in the caller's reach (a customer: its own only)"}
}
_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"description": "the ticket's state does not allow this (the answer says why)"}
}


class ReplyIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    text: Note
    #: Staff only: a note the customer does not see.
    internal: StrictBool = False  # 0 or "no" is malformed, not False


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    note: str = Field(default="", max_length=4000)


class AssignIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: An employee number or user id; null unassigns.
    assignee: PersonId | None


def _actor(who: Access) -> Actor:
    return Actor(who.employee_no or who.subject, who.role)


def _region(who: Access) -> Region:
    assert who.scope.region is not None, "the portal narrows every scope to the URL's region"
    return who.scope.region


class ExportOut(BaseModel):
    """An export archive ready for the customer to download until ``expires_at``."""

    model_config = ConfigDict(frozen=True)

    ticket_id: int
    size: int = Field(description="bytes of the zip archive")
    expires_at: datetime


def create_router(
    service: SupportService,
    *,
    access: Callable[[str], Callable[..., Any]],
    privacy: PrivacyDesk | None = None,
) -> APIRouter:
    """Routes under ``/support/tickets``; ``access(key)`` authorises. With ``privacy``,
    the routes that carry out privacy requests too."""
    router = APIRouter(tags=["support"])
    if privacy is not None:
        _privacy_routes(router, privacy, access)

    @router.get(
        "/support/tickets",
        response_model=list[Ticket],
        operation_id="support.tickets.list",
        summary="List tickets",
        description="A customer: its account's tickets. Staff: the region's queue (one "
        "account's with `account_id`), most "
        "urgent first (the next SLA due time; paused clocks last), with filters. "
        "`open_only` (default) leaves out resolved and closed tickets unless `state` is given.",
        responses=_AUTH,
    )
    async def list_tickets(
        who: Annotated[Access, Depends(access("support.tickets.list"))],
        state: State | None = None,
        kind: Kind | None = None,
        priority: Priority | None = None,
        assignee: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
        account_id: Annotated[str | None, Query(pattern=ACCOUNT_ID_PATTERN)] = None,
        open_only: bool = True,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> list[Ticket]:
        given = QueueFilter(
            state=state,
            kind=kind,
            priority=priority,
            assignee=assignee,
            account_id=account_id,
            open_only=open_only,
        )
        return await run_in_threadpool(
            service.list_tickets, who.scope, given, limit=limit, offset=offset
        )

    @router.get(
        "/support/ticket-rates",
        response_model=list[TicketRate],
        operation_id="support.ticket_rates",
        summary="Tickets per 1,000 customers, per month and kind",
        description="Staff: for each of the `months` local months of the URL's region "
        "ending with `to` (default: the last whole month), the tickets raised of each kind "
        "(and `all`) per 1,000 of the region's customers at the month's end (accounts "
        "created by then and not closed). `per_thousand` is null without customers.",
        responses=_AUTH,
    )
    async def ticket_rates(
        who: Annotated[Access, Depends(access("support.ticket_rates"))],
        months: Annotated[int, Query(ge=1, le=24, description="how many months")] = 6,
        to: Annotated[
            str | None, Query(pattern=MONTH_PATTERN, max_length=7, description="YYYY-MM")
        ] = None,
    ) -> list[TicketRate]:
        last = date(int(to[:4]), int(to[5:7]), 1) if to is not None else None
        return await run_in_threadpool(service.ticket_rates, who.scope, months=months, last=last)

    @router.post(
        "/support/tickets",
        response_model=Ticket,
        status_code=status.HTTP_201_CREATED,
        operation_id="support.tickets.create",
        summary="Raise a ticket",
        description="A customer raises one for its own account; support staff for the "
        "account named by `account_id`. A fault report names the site (the account's); "
        "a plan change the plan and the date it starts.",
        responses={
            **_AUTH,
            201: {"description": "raised (state new)"},
            404: {"description": "no such account in the region (a customer: not its own)"},
            422: {"description": "a field out of bounds, or a site not the account's"},
        },
    )
    async def create(
        who: Annotated[Access, Depends(access("support.tickets.create"))],
        given: Annotated[TicketIn, Body()],
        account_id: Annotated[str | None, Query(pattern=ACCOUNT_ID_PATTERN)] = None,
    ) -> Ticket:
        if who.role == CUSTOMER:
            if account_id is not None and account_id != who.scope.account_id:
                raise HTTPException(status.HTTP_404_NOT_FOUND, f"no account {account_id}")
            account_id = who.scope.account_id
        return await run_in_threadpool(service.create, _region(who), account_id, given, _actor(who))

    @router.get(
        "/support/tickets/{ticket_id}",
        response_model=TicketDetail,
        operation_id="support.tickets.get",
        summary="A ticket with its history and SLA clocks",
        description="A customer sees the history lines meant for it (not staff notes or "
        "assignments).",
        responses={**_AUTH, **_NOT_FOUND},
    )
    async def get(
        who: Annotated[Access, Depends(access("support.tickets.get"))], ticket_id: TicketId
    ) -> TicketDetail:
        return await run_in_threadpool(
            service.detail, ticket_id, who.scope, customer=who.role == CUSTOMER
        )

    @router.post(
        "/support/tickets/{ticket_id}/replies",
        response_model=Ticket,
        operation_id="support.tickets.reply",
        summary="Reply on a ticket",
        description="Staff: the first reply is the first response; a new ticket opens; "
        "`internal` makes it a note. A customer's reply takes a pending ticket back to open.",
        responses={**_AUTH, **_NOT_FOUND, **_CONFLICT},
    )
    async def reply(
        who: Annotated[Access, Depends(access("support.tickets.reply"))],
        ticket_id: TicketId,
        given: Annotated[ReplyIn, Body()],
    ) -> Ticket:
        return await run_in_threadpool(
            service.reply, ticket_id, who.scope, _actor(who), given.text, internal=given.internal
        )

    @router.post(
        "/support/tickets/{ticket_id}/reopen",
        response_model=Ticket,
        operation_id="support.tickets.reopen",
        summary="Reopen a resolved ticket",
        description="Within the region's reopen window after its resolution.",
        responses={**_AUTH, **_NOT_FOUND, **_CONFLICT},
    )
    async def reopen(
        who: Annotated[Access, Depends(access("support.tickets.reopen"))],
        ticket_id: TicketId,
        given: Annotated[NoteIn, Body()],
    ) -> Ticket:
        return await run_in_threadpool(
            service.reopen, ticket_id, who.scope, _actor(who), given.note
        )

    @router.put(
        "/support/tickets/{ticket_id}/assignee",
        response_model=Ticket,
        operation_id="support.tickets.assign",
        summary="Assign a ticket",
        responses={**_AUTH, **_NOT_FOUND, **_CONFLICT},
    )
    async def assign(
        who: Annotated[Access, Depends(access("support.tickets.assign"))],
        ticket_id: TicketId,
        given: Annotated[AssignIn, Body()],
    ) -> Ticket:
        return await run_in_threadpool(
            service.assign, ticket_id, who.scope, _actor(who), given.assignee
        )

    @router.post(
        "/support/tickets/{ticket_id}/state",
        response_model=Ticket,
        operation_id="support.tickets.move",
        summary="Move a ticket (open, pending, resolved, closed)",
        description="Resolving says the outcome to the customer (a complaint: outcome and "
        "reasons, required), written to it by notify.",
        responses={
            **_AUTH,
            **_NOT_FOUND,
            **_CONFLICT,
            422: {"description": "a field out of bounds, or a resolution without its outcome"},
        },
    )
    async def move(
        who: Annotated[Access, Depends(access("support.tickets.move"))],
        ticket_id: TicketId,
        given: Annotated[StaffMove, Body()],
    ) -> Ticket:
        return await run_in_threadpool(service.move, ticket_id, who.scope, _actor(who), given)

    @router.post(
        "/support/tickets/{ticket_id}/approve",
        response_model=Ticket,
        operation_id="support.tickets.approve",
        summary="Approve a change request",
        description="A plan change then reaches the customer's account (from its date) "
        "and billing.",
        responses={**_AUTH, **_NOT_FOUND, **_CONFLICT},
    )
    async def approve(
        who: Annotated[Access, Depends(access("support.tickets.approve"))],
        ticket_id: TicketId,
        given: Annotated[NoteIn, Body()],
    ) -> Ticket:
        return await run_in_threadpool(
            service.approve, ticket_id, who.scope, _actor(who), given.note
        )

    @router.post(
        "/support/tickets/{ticket_id}/work-order",
        response_model=Ticket,
        operation_id="support.tickets.work_order",
        summary="Ask dispatch for a work order for a fault report",
        description="Once per ticket; the work order links back when dispatch raises it.",
        responses={**_AUTH, **_NOT_FOUND, **_CONFLICT},
    )
    async def work_order(
        who: Annotated[Access, Depends(access("support.tickets.work_order"))],
        ticket_id: TicketId,
        given: Annotated[NoteIn, Body()],
    ) -> Ticket:
        return await run_in_threadpool(
            service.request_work, ticket_id, who.scope, _actor(who), given.note
        )

    return router


def _privacy_routes(
    router: APIRouter, desk: PrivacyDesk, access: Callable[[str], Callable[..., Any]]
) -> None:
    """A data export or erasure request is a ticket the customer raises like any other;
    staff carry it out here, and the customer downloads its export from the ticket."""

    @router.post(
        "/support/tickets/{ticket_id}/privacy-export",
        response_model=ExportOut,
        operation_id="support.tickets.privacy_export",
        summary="Carry out a data export request",
        description="Every service's personal data of the ticket's account into one zip "
        "archive (a JSON file per service), downloadable from the ticket until it expires. "
        "Once per `data_export` ticket; 409 for another kind or when done.",
        responses={**_AUTH, **_NOT_FOUND, **_CONFLICT},
    )
    async def privacy_export(
        who: Annotated[Access, Depends(access("support.tickets.privacy_export"))],
        ticket_id: TicketId,
    ) -> ExportOut:
        ready = await run_in_threadpool(desk.export, ticket_id, who.scope, _actor(who).subject)
        return ExportOut(ticket_id=ready.ticket_id, size=ready.size, expires_at=ready.expires_at)

    @router.get(
        "/support/tickets/{ticket_id}/privacy-export",
        operation_id="support.tickets.privacy_export_download",
        summary="Download a data export",
        response_class=Response,
        responses={
            200: {"content": {"application/zip": {}}, "description": "the archive"},
            **_AUTH,
            404: {"description": "no such ticket in reach, or no export (or it expired)"},
        },
    )
    async def privacy_export_download(
        who: Annotated[Access, Depends(access("support.tickets.privacy_export_download"))],
        ticket_id: TicketId,
    ) -> Response:
        archive = await run_in_threadpool(desk.download, ticket_id, who.scope)
        return Response(
            archive,
            media_type="application/zip",
            headers={
                "Content-Disposition": f'attachment; filename="potr-export-{ticket_id}.zip"',
                "Cache-Control": "private, no-store",
            },
        )

    @router.post(
        "/support/tickets/{ticket_id}/erasure",
        response_model=ErasureRecord,
        operation_id="support.tickets.erasure",
        summary="Carry out a data erasure request",
        description="Every service erases or pseudonymises the account's personal data, "
        "keeping what law requires (invoices and payments, bare ticket and work-order "
        "rows under the opaque account id); the account's users can no longer sign in. "
        "The answer is the erasure record: counts per service, no personal data. Once per "
        "`data_erasure` ticket; 409 for another kind or when done.",
        responses={**_AUTH, **_NOT_FOUND, **_CONFLICT},
    )
    async def erasure(
        who: Annotated[Access, Depends(access("support.tickets.erasure"))],
        ticket_id: TicketId,
    ) -> ErasureRecord:
        return await run_in_threadpool(desk.erase, ticket_id, who.scope, _actor(who).subject)
