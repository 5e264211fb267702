"""The web UI's answers other than 200, as pages in the person's language: sign in
first (a redirect to the sign-in page, or for htmx an ``HX-Redirect``), 403, 404, a
refused CSRF check, a malformed form — never a stack trace, never the input echoed.
The JSON API keeps its own answers (:mod:`cloud.portal.errors`): these handlers pass
``/api/`` paths to them."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from cloud.portal.errors import http_problem, malformed_problem
from cloud.portal.web.csrf import CsrfRefused
from cloud.portal.web.render import Renderer
from cloud.portal.web.session import PageRefused, Sessions, SignInRequired

__all__ = ["add_page_error_handlers"]


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path == "/healthz"


def add_page_error_handlers(app: FastAPI, sessions: Sessions, renderer: Renderer) -> None:
    def page(request: Request, status: int, title: str, message: str) -> Response:
        return renderer.page(
            request, "error.html", language=sessions.language(request),
            status_code=status, title=title, message=message,
        )  # fmt: skip

    def words(request: Request) -> Callable[..., str]:
        return renderer.gettext(sessions.language(request))

    async def sign_in(request: Request, _exc: Exception) -> Response:
        target = "/login"
        path = request.url.path
        if request.method == "GET" and path.startswith("/ui/"):
            here = path + (f"?{request.url.query}" if request.url.query else "")
            target += "?next=" + quote(here, safe="")
        if request.headers.get("hx-request") == "true":
            return Response(status_code=401, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PageRefused)
        _ = words(request)
        titles = {
            403: _("Not allowed"),
            404: _("Not found"),
            503: _("Unavailable"),
        }
        messages = {
            403: _("Your role does not give access to this page."),
            404: _("There is nothing here for you."),
            503: _("A service is not answering. Try again in a minute."),
        }
        if exc.status == 503 and exc.missing:
            messages[503] = _(
                "No figures across the regions: these regions did not answer (%(regions)s)."
                " Try again in a minute.",
                regions=", ".join(r.upper() for r in exc.missing),
            )
        status = exc.status if exc.status in titles else 404
        return page(request, status, titles[status], messages[status])

    async def forged(request: Request, _exc: Exception) -> Response:
        _ = words(request)
        return page(
            request, 403, _("Request refused"),
            _("This form was not sent from this site's own page. Reload the page and try again."),
        )  # fmt: skip

    async def http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if _is_api(request) or exc.status_code == 405:
            return await http_problem(request, exc)
        return await refused(request, PageRefused(exc.status_code, str(exc.detail)))

    async def malformed(request: Request, exc: Exception) -> Response:
        if _is_api(request):
            return await malformed_problem(request, exc)
        _ = words(request)
        return page(
            request, 422, _("Not understood"),
            _("Something in the request was too long or not in the expected form."),
        )  # fmt: skip

    app.add_exception_handler(SignInRequired, sign_in)
    app.add_exception_handler(PageRefused, refused)
    app.add_exception_handler(CsrfRefused, forged)
    app.add_exception_handler(StarletteHTTPException, http)
    app.add_exception_handler(RequestValidationError, malformed)
