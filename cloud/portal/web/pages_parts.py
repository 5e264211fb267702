"""The region's parts stock in the web UI (issue 19, inventory): ``/ui/{region}/parts``
for its admins and operators — each part's quantity on hand, unit cost and value
(quantity times unit cost), the stock's total value, in the region's currency formatted in
the viewer's language, and the parts at or below their reorder level marked (what the
``part_reorder_needed`` notification links to). Figures are
:meth:`cloud.dispatch.DispatchService.stock_value`'s, exact to the cent.
"""

# No ``from __future__ import annotations``: the routes' dependencies are local to
# ``create_parts_pages`` and FastAPI resolves string annotations in the module's globals.

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from cloud.dispatch import DispatchService
from cloud.portal.web.render import Renderer
from cloud.portal.web.session import Sessions, Viewer

__all__ = ["create_parts_pages"]


def create_parts_pages(
    sessions: Sessions, renderer: Renderer, service: DispatchService
) -> APIRouter:
    router = APIRouter(prefix="/ui/{region}", include_in_schema=False)

    def viewer(route_key: str) -> Any:
        return Depends(sessions.viewer(route_key))

    @router.get("/parts", operation_id="ui.parts")
    async def parts(request: Request, who: Annotated[Viewer, viewer("ui.parts")]) -> Response:
        stock = await run_in_threadpool(service.stock_value, who.region)
        return renderer.page(request, "parts.html", language=who.language, viewer=who, stock=stock)

    return router
