"""Who is at the door (issue 20): while a job is on its way or on site, its customer's
visits page and job page, and its MOSIE's job page, show the MOSIE's name and badge
photo and the job's door code (:mod:`cloud.dispatch.door_code`). The customer compares
the code with the one on the technician's phone; the same code on both screens says the
technician is PoTR's and is the one sent.

Only the job's customer (their account's scope) and its assignee (a MOSIE's reach) get
the panel, the code or the photo; dispatch reads the job's secret within that reach in
SQL, so staff, another customer or another MOSIE get 404, as for no job. The code is
never logged: the routes log nothing, and :class:`~cloud.dispatch.door_code.DoorCode`'s
``repr`` hides it. The panel refreshes itself (htmx, every :data:`REFRESH_S`) so both
screens move to the next code together; once the visit is over the refresh answers an
empty panel with :data:`STOP_POLLING`, so no stale code stays on screen.
"""

# No ``from __future__ import annotations``: the routes' dependencies are local to
# ``create_door_pages`` and FastAPI resolves string annotations in the module's globals.

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from cloud.dispatch import DispatchService
from cloud.dispatch.door_code import DoorCode
from cloud.dispatch.errors import NotFoundError
from cloud.employees import EmployeeService
from cloud.employees import NotFoundError as EmployeesNotFound
from cloud.identity import Role
from cloud.portal.web.render import Renderer
from cloud.portal.web.session import PageRefused, Sessions, Viewer

__all__ = ["REFRESH_S", "STOP_POLLING", "DoorPanel", "DoorPanels", "create_door_pages"]

WorkOrderId = Annotated[int, Path(ge=1, le=2**53 - 1)]
#: Well inside the code's step, so the two screens disagree for seconds at most.
REFRESH_S = 15
#: htmx's answer status that stops an element's polling (and still swaps).
STOP_POLLING = 286
#: No cache anywhere: the code changes and is the viewer's alone.
_PRIVATE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


@dataclass(frozen=True, slots=True)
class DoorPanel:
    order_id: int
    code: DoorCode
    #: The MOSIE's name as the employees service holds it (None: not served here).
    name: str | None
    has_photo: bool


class DoorPanels:
    """The panel of a job for a viewer, or None when the viewer gets none (anyone but
    the job's customer and assignee, or the job not en route or on site)."""

    def __init__(self, service: DispatchService, employees: EmployeeService | None) -> None:
        self._service = service
        self._employees = employees

    @staticmethod
    def _assignee_reach(who: Viewer) -> str | None:
        return who.caller.employee_no if who.role == Role.MOSIE else None

    def _may_ask(self, who: Viewer) -> bool:
        if who.role == Role.MOSIE:
            return bool(who.caller.employee_no)
        return who.role == Role.CUSTOMER

    def code(self, who: Viewer, order_id: int) -> DoorCode | None:
        if not self._may_ask(who):
            return None
        try:
            return self._service.door_code(order_id, who.scope, assignee=self._assignee_reach(who))
        except NotFoundError:
            return None

    def panel(self, who: Viewer, order_id: int) -> DoorPanel | None:
        """Blocking: call from a thread."""
        code = self.code(who, order_id)
        if code is None:
            return None
        name, has_photo = None, False
        if self._employees is not None:
            try:
                name = self._employees.get(code.assignee, region=who.region).name
                has_photo = self._employees.has_badge_photo(code.assignee, region=who.region)
            except EmployeesNotFound:
                pass
        return DoorPanel(order_id, code, name, has_photo)

    def reaches(self, who: Viewer, order_id: int) -> bool:
        """Whether the viewer may ask about the job's door at all (its customer or its
        MOSIE), whatever its state."""
        if not self._may_ask(who):
            return False
        try:
            self._service.get(order_id, who.scope, assignee=self._assignee_reach(who))
        except NotFoundError:
            return False
        return True

    def photo(self, who: Viewer, order_id: int) -> tuple[str, bytes] | None:
        """The badge photo of the job's MOSIE, on the same terms as the code."""
        code = self.code(who, order_id)
        if code is None or self._employees is None:
            return None
        try:
            photo = self._employees.badge_photo(code.assignee, region=who.region)
        except EmployeesNotFound:
            return None
        return photo.content_type, photo.content


def create_door_pages(sessions: Sessions, renderer: Renderer, panels: DoorPanels) -> APIRouter:
    router = APIRouter(prefix="/ui/{region}", include_in_schema=False)

    def viewer(route_key: str) -> Any:
        return Depends(sessions.viewer(route_key))

    @router.get("/workorders/{order_id}/door", operation_id="ui.workorder.door")
    async def door(
        request: Request,
        order_id: WorkOrderId,
        who: Annotated[Viewer, viewer("ui.workorder.door")],
    ) -> Response:
        """The panel alone (the pages' htmx refresh): 404 when there is none for the
        viewer, as for a job they cannot reach."""
        panel = await run_in_threadpool(panels.panel, who, order_id)
        if panel is None:
            if not await run_in_threadpool(panels.reaches, who, order_id):
                raise PageRefused(404, "no such work order")
            # The visit is over (or not yet begun): the panel empties and htmx stops
            # polling on 286, so no stale code stays on either screen.
            ended = f'<section id="door-{order_id}" data-door-ended></section>'
            return HTMLResponse(ended, status_code=STOP_POLLING, headers=_PRIVATE)
        answer = renderer.page(
            request, "_door.html", language=who.language, viewer=who, door=panel,
            refresh_s=REFRESH_S,
        )  # fmt: skip
        answer.headers.update(_PRIVATE)
        return answer

    @router.get("/workorders/{order_id}/door/photo", operation_id="ui.workorder.door_photo")
    async def photo(
        order_id: WorkOrderId, who: Annotated[Viewer, viewer("ui.workorder.door_photo")]
    ) -> Response:
        found = await run_in_threadpool(panels.photo, who, order_id)
        if found is None:
            raise PageRefused(404, "no such photo")
        content_type, content = found
        return Response(
            content,
            media_type=content_type,
            headers={**_PRIVATE, "Content-Security-Policy": "default-src 'none'; sandbox"},
        )

    return router
