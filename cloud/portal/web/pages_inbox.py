"""Every person's inbox: their own notifications, newest first, unread ones marked, with
"mark read" and "mark all read" (CSRF-checked forms) and a live feed
(:mod:`inbox_feed`, server-sent events) that ``portal.js`` inserts into the page.

The inbox belongs to the signed-in person, not to a region: every query is by their
user id (:class:`cloud.notify.InboxService` filters by it), and any region URL they may
reach shows the same inbox (each region's database holds that region's entries).
"""

# No ``from __future__ import annotations``: the routes' dependencies are local to
# ``create_inbox_pages`` and FastAPI resolves string annotations in the module's globals.

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from cloud.notify import InboxEntry, InvalidCursorError
from cloud.portal.web.csrf import check_csrf
from cloud.portal.web.inbox_feed import InboxFeed
from cloud.portal.web.render import Renderer
from cloud.portal.web.session import PageRefused, Sessions, Viewer

__all__ = ["create_inbox_pages"]

Cursor = Annotated[str | None, Query(max_length=19, pattern=r"^[0-9]+$")]
_PAGE = 50


def create_inbox_pages(sessions: Sessions, renderer: Renderer, feed: InboxFeed) -> APIRouter:
    router = APIRouter(prefix="/ui/{region}", include_in_schema=False)
    inbox = feed.inbox

    def viewer(route: str) -> Any:
        return Depends(sessions.viewer(route))

    @router.get("/inbox", operation_id="ui.inbox")
    async def page(
        request: Request, who: Annotated[Viewer, viewer("ui.inbox")], before: Cursor = None
    ) -> Response:
        user = who.caller.subject

        def gather() -> dict[str, Any]:
            # The feed's cursor first: an entry posted meanwhile comes by the feed.
            live = inbox.changes_since(user, None)
            listed = inbox.list(user, limit=_PAGE, cursor=before)
            return {"entries": listed.entries, "older": listed.next_cursor, "cursor": live.cursor}

        try:
            found = await run_in_threadpool(gather)
        except InvalidCursorError:
            raise PageRefused(404, "no such page of the inbox") from None
        return renderer.page(
            request, "inbox.html", language=who.language, viewer=who, first_page=before is None,
            **found,
        )  # fmt: skip

    @router.get("/inbox/events", operation_id="ui.inbox.events")
    async def events(
        request: Request,
        who: Annotated[Viewer, viewer("ui.inbox.events")],
        cursor: Cursor = None,
        last_event_id: Annotated[str | None, Header(max_length=19)] = None,
    ) -> Response:
        # A reconnecting EventSource sends the id of the last event it saw.
        start = last_event_id if last_event_id and last_event_id.isdigit() else cursor
        env = renderer.environment(who.language)
        entry_template = env.get_template("_inbox_entry.html")
        context = {"fmt": who.formats, "region": who.region.value}
        context |= renderer.form_context(request)

        def render(entry: InboxEntry) -> str:
            return entry_template.render(e=entry, **context)

        async def gone() -> bool:
            return await request.is_disconnected()

        return StreamingResponse(
            feed.stream(who.caller.subject, start, render, gone),
            media_type="text/event-stream",
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        )

    @router.post(
        "/inbox/{entry_id}/read", operation_id="ui.inbox.read", dependencies=[Depends(check_csrf)]
    )
    async def read(
        request: Request,
        entry_id: Annotated[uuid.UUID, Path()],
        who: Annotated[Viewer, viewer("ui.inbox.read")],
    ) -> Response:
        mine = await run_in_threadpool(inbox.mark_read, who.caller.subject, entry_id)
        if not mine:
            raise PageRefused(404, "no such entry")
        return RedirectResponse(f"/ui/{who.region.value}/inbox", status_code=303)

    @router.post(
        "/inbox/read-all",
        operation_id="ui.inbox.read_all",
        dependencies=[Depends(check_csrf)],
    )
    async def read_all(
        request: Request, who: Annotated[Viewer, viewer("ui.inbox.read_all")]
    ) -> Response:
        await run_in_threadpool(inbox.mark_all_read, who.caller.subject)
        return RedirectResponse(f"/ui/{who.region.value}/inbox", status_code=303)

    return router
