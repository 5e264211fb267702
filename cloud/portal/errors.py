"""Domain errors to HTTP answers, once for every route: the services raise their own
refusals and know nothing of HTTP; the routes do not catch them."""

from __future__ import annotations

import math

from fastapi import FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from cloud import config, employees, registry

__all__ = ["add_error_handlers"]

#: Status per refusal; an exception's nearest listed class decides (Starlette walks the MRO).
STATUS: dict[type[Exception], int] = {
    registry.NotFoundError: status.HTTP_404_NOT_FOUND,
    registry.ConflictError: status.HTTP_409_CONFLICT,
    config.NotFoundError: status.HTTP_404_NOT_FOUND,
    config.ConflictError: status.HTTP_409_CONFLICT,
    config.RefusedError: 422,  # Unprocessable Content (its constant was renamed in Starlette)
    config.ConfigError: status.HTTP_400_BAD_REQUEST,
    employees.NotFoundError: status.HTTP_404_NOT_FOUND,
    employees.ConflictError: status.HTTP_409_CONFLICT,
    employees.InvalidError: 422,
}


def _detail(exc: Exception) -> object:
    """The answer's ``detail``: a refusal names its field, limit and reason."""
    if isinstance(exc, config.RefusedError):
        return {"field": exc.field, "limit": exc.limit, "reason": exc.reason, "message": str(exc)}
    return str(exc)


async def _answer(_request: Request, exc: Exception) -> JSONResponse:
    code = next(STATUS[cls] for cls in type(exc).__mro__ if cls in STATUS)
    return JSONResponse({"detail": _detail(exc)}, status_code=code)


def _json_safe(value: object) -> object:
    """NaN and ±Infinity as strings: Python's JSON reader accepts them in a request, and
    a refusal that echoes them must still be JSON (FastAPI's own answer raised, a 500)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


async def _invalid(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse({"detail": _json_safe(jsonable_encoder(exc.errors()))}, status_code=422)


def add_error_handlers(app: FastAPI) -> None:
    for error in STATUS:
        app.add_exception_handler(error, _answer)
    app.add_exception_handler(RequestValidationError, _invalid)
