"""Support tickets in the web UI (issue 20): ``/ui/{region}/support/tickets``.

* A **customer** raises a ticket (a question, a complaint, a fault report at one of its
  sites, a change request — a plan change names the plan and the date), follows its
  tickets and their history, replies, and reopens a resolved one within the region's
  reopen window. It reaches its own account's tickets only (the service scopes in SQL).
* **Staff** (support and admins act; operators read) see the region's queue, the most
  urgent first by SLA due time, filtered by state, kind, priority or their own; on a
  ticket they reply (or write an internal note), assign, move it (open, pending,
  resolved with the outcome — a complaint's also its reasons — or closed), approve a
  change request and ask dispatch for a fault report's work order. The office's queue
  also shows tickets per 1,000 customers for the last :data:`RATE_MONTHS` whole local
  months, per kind (``?to=YYYY-MM`` moves the last month; not a month: 422).

Every form is CSRF-checked and answers post/redirect/get; a refusal (a state that does
not allow the action, a field out of bounds) is the page again with the reason, 409 or
422 — never a 500.
"""

# No ``from __future__ import annotations``: the routes' dependencies are local to
# ``create_ticket_pages`` and FastAPI resolves string annotations in the module's globals.

import re
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from cloud.identity import Role
from cloud.portal.authz import may_call
from cloud.portal.web.csrf import check_csrf
from cloud.portal.web.render import Renderer
from cloud.portal.web.session import PageRefused, Sessions, Viewer
from cloud.registry import RegistryService
from cloud.support import (
    Actor,
    Change,
    ConflictError,
    InvalidError,
    Kind,
    NotFoundError,
    Priority,
    QueueFilter,
    StaffMove,
    State,
    SupportService,
    TicketIn,
    TicketRate,
)
from cloud.support.privacy import PrivacyDesk

__all__ = ["create_ticket_pages"]

TicketPath = Annotated[int, Path(ge=1, le=2**62)]
Short = Annotated[str, Form(max_length=200)]
Long = Annotated[str, Form(max_length=4000)]
#: Staff actions on a ticket's page.
ACTIONS = (
    "assign", "open", "pending", "resolved", "closed", "approve", "work_order",
    "privacy_export", "erasure",
)  # fmt: skip
_DESK = frozenset({Role.ADMIN, Role.SUPPORT})
#: How many local months the queue's tickets per 1,000 customers covers.
RATE_MONTHS = 6
_MONTH = re.compile(r"^(20[2-9][0-9])-(0[1-9]|1[0-2])$")


def _actor(who: Viewer) -> Actor:
    return Actor(who.caller.employee_no or who.caller.subject, who.role.value)


def _month(text: str) -> date | None:
    """``YYYY-MM`` (2020-2099) as its first day; None for anything else."""
    found = _MONTH.fullmatch(text.strip())
    return date(int(found[1]), int(found[2]), 1) if found else None


def _by_month(rates: list[TicketRate]) -> list[tuple[str, int, list[TicketRate]]]:
    """The rates per month, in order: (``YYYY-MM``, customers, each kind's then all's)."""
    months: dict[str, list[TicketRate]] = {}
    for rate in rates:
        months.setdefault(rate.month, []).append(rate)
    return [(m, found[0].customers, found) for m, found in months.items()]


def _refusal(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
    return f"{where}: {first.get('msg', 'invalid')}" if where else str(first.get("msg"))


def create_ticket_pages(
    sessions: Sessions,
    renderer: Renderer,
    service: SupportService,
    registry: RegistryService,
    privacy: PrivacyDesk | None = None,
) -> APIRouter:
    router = APIRouter(prefix="/ui/{region}/support/tickets", include_in_schema=False)

    def viewer(route_key: str) -> Any:
        return Depends(sessions.viewer(route_key))

    @router.get("", operation_id="ui.support.tickets")
    async def tickets(
        request: Request,
        who: Annotated[Viewer, viewer("ui.support.tickets")],
        state: State | None = None,
        kind: Kind | None = None,
        priority: Priority | None = None,
        mine: Annotated[bool, Query()] = False,
        closed: Annotated[bool, Query()] = False,
        to: Annotated[str, Query(max_length=20)] = "",
    ) -> Response:
        me = _actor(who).subject if mine and who.is_staff else None
        given = QueueFilter(
            state=state, kind=kind, priority=priority, assignee=me, open_only=not closed
        )
        found = await run_in_threadpool(service.list_tickets, who.scope, given, limit=200)
        last = _month(to) if to else None
        rates = None
        if may_call(who.role, "support.ticket_rates") and (last is not None or not to):
            rates = _by_month(
                await run_in_threadpool(
                    service.ticket_rates, who.scope, months=RATE_MONTHS, last=last
                )
            )
        return renderer.page(
            request, "tickets.html", language=who.language, viewer=who, tickets=found,
            filters={"state": state, "kind": kind, "priority": priority, "mine": mine,
                     "closed": closed},
            states=list(State), kinds=list(Kind), priorities=list(Priority),
            rates=rates, rates_to=to if last is not None else "",
            refusal="month" if to and last is None else None,
            status_code=422 if to and last is None else 200,
        )  # fmt: skip

    async def new_page(
        request: Request, who: Viewer, refusal: str | None, status_code: int, typed: dict[str, str]
    ) -> Response:
        sites = await run_in_threadpool(lambda: registry.list_sites(limit=100, scope=who.scope))
        return renderer.page(
            request, "ticket_new.html", language=who.language, viewer=who, sites=sites,
            kinds=list(Kind), changes=list(Change), priorities=list(Priority),
            refusal=refusal, typed=typed, status_code=status_code,
        )  # fmt: skip

    @router.get("/new", operation_id="ui.support.tickets.new")
    async def new(
        request: Request, who: Annotated[Viewer, viewer("ui.support.tickets.new")]
    ) -> Response:
        return await new_page(request, who, None, 200, {})

    @router.post("", operation_id="ui.support.tickets.create", dependencies=[Depends(check_csrf)])
    async def create(
        request: Request,
        who: Annotated[Viewer, viewer("ui.support.tickets.create")],
        kind: Annotated[str, Form(max_length=32)],
        subject: Short,
        description: Long = "",
        priority: Annotated[str, Form(max_length=16)] = "normal",
        change: Annotated[str, Form(max_length=32)] = "",
        site_id: Annotated[str, Form(max_length=20)] = "",
        invoice_number: Annotated[str, Form(max_length=64)] = "",
        plan_code: Annotated[str, Form(max_length=32)] = "",
        plan_from: Annotated[str, Form(max_length=10)] = "",
    ) -> Response:
        typed = {"kind": kind, "subject": subject, "description": description,
                 "priority": priority, "change": change, "site_id": site_id,
                 "invoice_number": invoice_number, "plan_code": plan_code,
                 "plan_from": plan_from}  # fmt: skip
        fields: dict[str, Any] = {k: v for k, v in typed.items() if v.strip()}
        fields["language"] = who.language if who.language in ("en", "es") else "en"
        try:
            given = TicketIn.model_validate(fields)
        except ValidationError as exc:
            return await new_page(request, who, _refusal(exc), 422, typed)
        try:
            ticket = await run_in_threadpool(
                service.create, who.region, who.scope.account_id, given, _actor(who)
            )
        except (InvalidError, NotFoundError) as exc:
            return await new_page(request, who, str(exc), 422, typed)
        return RedirectResponse(f"{request.url.path}/{ticket.id}", status_code=303)

    async def detail_page(
        request: Request, who: Viewer, ticket_id: int, refusal: str | None, status_code: int
    ) -> Response:
        try:
            detail = await run_in_threadpool(
                lambda: service.detail(ticket_id, who.scope, customer=not who.is_staff)
            )
        except NotFoundError:
            raise PageRefused(404, "no such ticket") from None
        privacy_request = detail.ticket.kind in {Kind.DATA_EXPORT, Kind.DATA_ERASURE}
        legal_due = privacy.due(detail.ticket) if privacy and privacy_request else None
        return renderer.page(
            request, "ticket.html", language=who.language, viewer=who, d=detail,
            legal_due=legal_due,
            desk=who.role in _DESK, may_reply=who.role in _DESK or not who.is_staff,
            today=date.today(), refusal=refusal, status_code=status_code,
        )  # fmt: skip

    @router.get("/{ticket_id}", operation_id="ui.support.ticket")
    async def ticket(
        request: Request,
        ticket_id: TicketPath,
        who: Annotated[Viewer, viewer("ui.support.ticket")],
    ) -> Response:
        return await detail_page(request, who, ticket_id, None, 200)

    async def attempt(request: Request, who: Viewer, ticket_id: int, work: Any) -> Response:
        try:
            await run_in_threadpool(work)
        except NotFoundError:
            raise PageRefused(404, "no such ticket") from None
        except ConflictError as exc:
            return await detail_page(request, who, ticket_id, str(exc), 409)
        except (InvalidError, ValidationError) as exc:
            text = _refusal(exc) if isinstance(exc, ValidationError) else str(exc)
            return await detail_page(request, who, ticket_id, text, 422)
        page = f"/ui/{who.region.value}/support/tickets/{ticket_id}"
        return RedirectResponse(page, status_code=303)

    @router.get("/{ticket_id}/export", operation_id="ui.support.ticket.export")
    async def export(
        ticket_id: TicketPath,
        who: Annotated[Viewer, viewer("ui.support.ticket.export")],
    ) -> Response:
        """A data export's archive, to its account (and the desk) until it expires."""
        if privacy is None:
            raise PageRefused(404, "no export here")
        try:
            archive = await run_in_threadpool(privacy.download, ticket_id, who.scope)
        except NotFoundError:
            raise PageRefused(404, "no export to download") from None
        return Response(
            archive,
            media_type="application/zip",
            headers={
                "Content-Disposition": f'attachment; filename="potr-export-{ticket_id}.zip"',
                "Cache-Control": "private, no-store",
            },
        )

    @router.post(
        "/{ticket_id}/reply",
        operation_id="ui.support.ticket.reply",
        dependencies=[Depends(check_csrf)],
    )
    async def reply(
        request: Request,
        ticket_id: TicketPath,
        who: Annotated[Viewer, viewer("ui.support.ticket.reply")],
        text: Annotated[str, Form(min_length=1, max_length=4000)],
        internal: Annotated[str, Form(max_length=3)] = "",
    ) -> Response:
        note = bool(internal) and who.is_staff
        return await attempt(
            request, who, ticket_id,
            lambda: service.reply(ticket_id, who.scope, _actor(who), text, internal=note),
        )  # fmt: skip

    @router.post(
        "/{ticket_id}/reopen",
        operation_id="ui.support.ticket.reopen",
        dependencies=[Depends(check_csrf)],
    )
    async def reopen(
        request: Request,
        ticket_id: TicketPath,
        who: Annotated[Viewer, viewer("ui.support.ticket.reopen")],
        note: Long = "",
    ) -> Response:
        return await attempt(
            request, who, ticket_id, lambda: service.reopen(ticket_id, who.scope, _actor(who), note)
        )

    @router.post(
        "/{ticket_id}/act",
        operation_id="ui.support.ticket.act",
        dependencies=[Depends(check_csrf)],
    )
    async def act(
        request: Request,
        ticket_id: TicketPath,
        who: Annotated[Viewer, viewer("ui.support.ticket.act")],
        action: Annotated[str, Form(max_length=16)],
        note: Long = "",
        outcome: Long = "",
        reasons: Long = "",
        assignee: Annotated[str, Form(max_length=64)] = "",
    ) -> Response:
        if action not in ACTIONS:
            return await detail_page(request, who, ticket_id, f"unknown action {action!r}", 422)
        actor, scope = _actor(who), who.scope

        def work() -> object:
            if action == "assign":
                return service.assign(ticket_id, scope, actor, assignee.strip() or None)
            if action == "approve":
                return service.approve(ticket_id, scope, actor, note)
            if action == "work_order":
                return service.request_work(ticket_id, scope, actor, note)
            if action in {"privacy_export", "erasure"}:
                if privacy is None:
                    raise ConflictError("privacy requests are not carried out here")
                if action == "erasure":
                    return privacy.erase(ticket_id, scope, actor.subject)
                return privacy.export(ticket_id, scope, actor.subject)
            move = StaffMove.model_validate(
                {"state": action, "note": note, "outcome": outcome, "reasons": reasons}
            )
            return service.move(ticket_id, scope, actor, move)

        return await attempt(request, who, ticket_id, work)

    return router
