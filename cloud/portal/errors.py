"""Domain errors to HTTP answers, once for every route: the services raise their own
refusals and know nothing of HTTP; the routes do not catch them. Also the two answers
the framework would give in another shape: a malformed request (422, never echoing the
input back) and an undeclared method (405, ``Allow`` listing every method of the path).
"""

from __future__ import annotations

from fastapi import FastAPI, Request, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from cloud import config, customers, dispatch, employees, registry, support
from cloud.search import SearchRefused

__all__ = ["add_error_handlers", "http_problem", "malformed_problem"]

#: Status per refusal; an exception's nearest listed class decides (Starlette walks the MRO).
STATUS: dict[type[Exception], int] = {
    registry.NotFoundError: status.HTTP_404_NOT_FOUND,
    registry.ConflictError: status.HTTP_409_CONFLICT,
    config.NotFoundError: status.HTTP_404_NOT_FOUND,
    config.ConflictError: status.HTTP_409_CONFLICT,
    config.RefusedError: 422,  # Unprocessable Content (its constant was renamed in Starlette)
    config.ConfigError: status.HTTP_400_BAD_REQUEST,
    customers.NotFoundError: status.HTTP_404_NOT_FOUND,
    customers.ConflictError: status.HTTP_409_CONFLICT,
    customers.RefusedError: 422,
    employees.NotFoundError: status.HTTP_404_NOT_FOUND,
    employees.ConflictError: status.HTTP_409_CONFLICT,
    employees.InvalidError: 422,
    dispatch.NotFoundError: status.HTTP_404_NOT_FOUND,
    dispatch.ConflictError: status.HTTP_409_CONFLICT,
    support.NotFoundError: status.HTTP_404_NOT_FOUND,
    support.ConflictError: status.HTTP_409_CONFLICT,
    support.InvalidError: 422,
    dispatch.RefusedError: 422,
    SearchRefused: 422,
}
#: Refusals of a pure core (the lifecycle's, a checklist's): 409 when the work order's
#: state does not allow it, 422 when the request itself lacks something (``invalid``).
REFUSALS = (
    dispatch.TransitionRefused,
    dispatch.TickRefused,
    dispatch.AppointmentRefused,
    dispatch.LocationRefused,
)


def _detail(exc: Exception) -> object:
    """The answer's ``detail``: a refusal names its field, limit and reason."""
    refused = config.RefusedError | customers.RefusedError | dispatch.RefusedError | SearchRefused
    if isinstance(exc, refused):
        return {"field": exc.field, "limit": exc.limit, "reason": exc.reason, "message": str(exc)}
    return str(exc)


async def _answer(_request: Request, exc: Exception) -> JSONResponse:
    code = next(STATUS[cls] for cls in type(exc).__mro__ if cls in STATUS)
    return JSONResponse({"detail": _detail(exc)}, status_code=code)


async def _refusal(_request: Request, exc: Exception) -> JSONResponse:
    """The pure core's refusal: its ``code`` and ``params`` for programs (and a client
    that words it in its own language), ``reason`` in English for people."""
    assert isinstance(exc, REFUSALS)
    detail = {
        "code": exc.code.value,
        "params": dict(exc.params),
        "reason": exc.reason,
        "message": str(exc),
    }
    code = 422 if exc.invalid else status.HTTP_409_CONFLICT
    return JSONResponse({"detail": detail}, status_code=code)


async def malformed_problem(_request: Request, exc: Exception) -> JSONResponse:
    """422 with where and why, as :class:`cloud.apitypes.Issue`: never the input itself
    (it may be huge, secret, or not JSON at all)."""
    assert isinstance(exc, RequestValidationError)
    issues = [
        {
            "loc": [str(p) if not isinstance(p, int) else p for p in e.get("loc", ())],
            "msg": str(e.get("msg", "")),
            "type": str(e.get("type", "")),
        }
        for e in exc.errors()
    ]
    return JSONResponse({"detail": issues}, status_code=422)


#: The methods a 405's ``Allow`` may list.
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


async def http_problem(request: Request, exc: Exception) -> Response:
    """A 405 lists in ``Allow`` the methods of every route of the path (Starlette names
    only those of the first route it matched). Each method is asked of the routes as a
    full match (public ``matches``): FastAPI 0.165 keeps an included router as one
    route, so reading the routes' own method sets would find none of them."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code != status.HTTP_405_METHOD_NOT_ALLOWED:
        return await http_exception_handler(request, exc)
    methods = sorted(
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL
            for route in request.app.router.routes
        )
    )
    return JSONResponse(
        {"detail": "Method Not Allowed"}, status_code=405, headers={"Allow": ", ".join(methods)}
    )


def add_error_handlers(app: FastAPI) -> None:
    for error in STATUS:
        app.add_exception_handler(error, _answer)
    for refusal in REFUSALS:
        app.add_exception_handler(refusal, _refusal)
    app.add_exception_handler(RequestValidationError, malformed_problem)
    app.add_exception_handler(StarletteHTTPException, http_problem)
