"""Domain errors to HTTP answers, once for every route: the services raise their own
refusals and know nothing of HTTP; the routes do not catch them."""

from __future__ import annotations

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from cloud import config, customers, employees, registry

__all__ = ["add_error_handlers"]

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
}


def _detail(exc: Exception) -> object:
    """The answer's ``detail``: a refusal names its field, limit and reason."""
    if isinstance(exc, config.RefusedError | customers.RefusedError):
        return {"field": exc.field, "limit": exc.limit, "reason": exc.reason, "message": str(exc)}
    return str(exc)


async def _answer(_request: Request, exc: Exception) -> JSONResponse:
    code = next(STATUS[cls] for cls in type(exc).__mro__ if cls in STATUS)
    return JSONResponse({"detail": _detail(exc)}, status_code=code)


#: What a refused field's answer keeps: never the input, which may be a secret, huge, or
#: unrenderable (a NaN or an infinity parsed from the body: FastAPI's own answer echoed it
#: and failed to render, so a 422 became a 500).
_KEPT = ("type", "loc", "msg")


async def _invalid(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [{k: e[k] for k in _KEPT if k in e} for e in exc.errors()]
    return JSONResponse({"detail": errors}, status_code=422)


def add_error_handlers(app: FastAPI) -> None:
    for error in STATUS:
        app.add_exception_handler(error, _answer)
    app.add_exception_handler(RequestValidationError, _invalid)
