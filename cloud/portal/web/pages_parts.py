"""The region's parts stock in the web UI (issue 19, inventory): ``/ui/{region}/parts``
for its admins and operators — each part's quantity on hand, unit cost and value
(quantity times unit cost), the stock's total value, in the region's currency formatted
in the viewer's language, and the parts at or below their reorder level marked (what the
``part_reorder_needed`` notification links to). Figures are
:meth:`cloud.dispatch.DispatchService.stock_value`'s, exact to the cent.

An admin changes a part's unit cost and reorder settings with the page's form (CSRF
checked; a field left empty stays as it was). It never adds stock, so a retried post
changes nothing more: post/redirect/get. A value out of bounds or not a number is the
page again with the reason, 422 — never a 500.
"""

# No ``from __future__ import annotations``: the routes' dependencies are local to
# ``create_parts_pages`` and FastAPI resolves string annotations in the module's globals.

import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from cloud.dispatch import DispatchService, RefusedError
from cloud.dispatch.models import PART_NO_PATTERN
from cloud.identity import Role
from cloud.portal.web.csrf import check_csrf
from cloud.portal.web.render import Renderer
from cloud.portal.web.session import PageRefused, Sessions, Viewer

__all__ = ["create_parts_pages", "parse_settings"]

_COUNT = re.compile(r"^[0-9]{1,7}$")
_MONEY = re.compile(r"^[0-9]{1,10}(?:\.[0-9]{1,2})?$")
#: A form's number as typed: short, so nothing long reaches a parser.
FormNumber = Annotated[str, Form(max_length=20)]


def parse_settings(
    unit_value: str, reorder_level: str, reorder_quantity: str
) -> tuple[Decimal | None, int | None, int | None]:
    """The settings form's fields (each empty: unchanged) as the service takes them;
    :class:`RefusedError` naming a field that is not a number of its kind. Bounds are
    the service's to judge."""
    value = unit_value.strip()
    if value and _MONEY.fullmatch(value) is None:
        raise RefusedError("unit_value", "an amount with at most 2 decimals", "not an amount")
    try:
        cost = Decimal(value) if value else None
    except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
        raise RefusedError("unit_value", "an amount", "not an amount") from None

    def count(field: str, typed: str) -> int | None:
        typed = typed.strip()
        if typed and _COUNT.fullmatch(typed) is None:
            raise RefusedError(field, "a whole number", "not a whole number")
        return int(typed) if typed else None

    return cost, count("reorder_level", reorder_level), count("reorder_quantity", reorder_quantity)


def create_parts_pages(
    sessions: Sessions, renderer: Renderer, service: DispatchService
) -> APIRouter:
    router = APIRouter(prefix="/ui/{region}", include_in_schema=False)

    def viewer(route_key: str) -> Any:
        return Depends(sessions.viewer(route_key))

    async def page(
        request: Request, who: Viewer, refusal: str | None, status_code: int
    ) -> Response:
        stock = await run_in_threadpool(service.stock_value, who.region)
        return renderer.page(
            request, "parts.html", language=who.language, viewer=who, stock=stock,
            may_change=who.role == Role.ADMIN, refusal=refusal, status_code=status_code,
        )  # fmt: skip

    @router.get("/parts", operation_id="ui.parts")
    async def parts(request: Request, who: Annotated[Viewer, viewer("ui.parts")]) -> Response:
        return await page(request, who, None, 200)

    @router.post("/parts", operation_id="ui.parts.update", dependencies=[Depends(check_csrf)])
    async def update(
        request: Request,
        who: Annotated[Viewer, viewer("ui.parts.update")],
        part_no: Annotated[str, Form(pattern=PART_NO_PATTERN, max_length=64)],
        unit_value: FormNumber = "",
        reorder_level: FormNumber = "",
        reorder_quantity: FormNumber = "",
    ) -> Response:
        stocked = {line.part_no for line in await run_in_threadpool(service.stock, who.region)}
        if part_no not in stocked:
            raise PageRefused(404, "no such part in the region's stock")
        try:
            cost, level, again = parse_settings(unit_value, reorder_level, reorder_quantity)
            await run_in_threadpool(
                lambda: service.add_stock(
                    who.region, part_no, 0, unit_value=cost, reorder_level=level,
                    reorder_quantity=again,
                )
            )  # fmt: skip
        except RefusedError as exc:
            return await page(request, who, str(exc), 422)
        # Post/redirect/get: a reload shows the page, it does not post again.
        return RedirectResponse(request.url.path, status_code=303)

    return router
