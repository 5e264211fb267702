"""Signing in and out, and the language switch.

Customers sign in with email + password, staff (MOSIEs, support, operators, admins) with
employee number + PIN; both through the identity service (:mod:`identity_gate`), which
throttles and audits. A successful sign-in puts the token pair in HttpOnly cookies and
goes to the page asked for (a local ``/ui/`` path only: never an open redirect) or to the
role's home. Every post is CSRF-checked (:mod:`csrf`); a refusal says one thing
whatever failed.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Awaitable
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from cloud.identity import TokenPair
from cloud.portal.web.cookies import LANG_COOKIE, REFRESH_COOKIE, CookieJar
from cloud.portal.web.csrf import check_csrf
from cloud.portal.web.i18n import LANGUAGES
from cloud.portal.web.identity_gate import (
    IdentityUnavailable,
    SignInRefused,
    SignInThrottled,
)
from cloud.portal.web.render import Renderer, home_of
from cloud.portal.web.session import Sessions

__all__ = ["create_auth_pages", "safe_next"]

_NEXT = re.compile(r"^/ui/[a-z]{2}/[A-Za-z0-9/_.?=&%-]{0,500}$")
_YEAR_S = 365 * 86_400


def safe_next(value: str | None) -> str | None:
    """``value`` if it is a local portal path, else None (no open redirect)."""
    if value and _NEXT.match(value) and "//" not in value and ".." not in value:
        return value
    return None


def _address(request: Request) -> str | None:
    """The browser's address (behind the API gateway: uvicorn's proxy headers)."""
    return request.client.host if request.client else None


def create_auth_pages(sessions: Sessions, renderer: Renderer, jar: CookieJar) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    def login_page(
        request: Request, next_: str | None, error: str | None = None, status_code: int = 200
    ) -> Response:
        return renderer.page(
            request,
            "login.html",
            language=sessions.language(request),
            next=safe_next(next_) or "",
            error=error,
            status_code=status_code,
        )

    async def signed_in(request: Request, attempt: Awaitable[TokenPair], next_: str) -> Response:
        _ = renderer.gettext(sessions.language(request))
        try:
            pair = await attempt
        except SignInRefused:
            return login_page(request, next_, _("Those details did not match."), 401)
        except SignInThrottled as exc:
            message = _("Too many attempts. Try again in %(s)s seconds.", s=exc.retry_after_s)
            return login_page(request, next_, message, 429)
        except IdentityUnavailable:
            return login_page(request, next_, _("Sign-in is unavailable right now."), 503)
        sessions.start(request, pair)
        who = sessions.verify(pair.access_token)
        target = safe_next(next_) or home_of(who.role, who.region.value, who.employee_no)
        return RedirectResponse(target, status_code=303)

    @router.get("/", name="root")
    async def root(request: Request) -> Response:
        who = await sessions.optional_caller(request)
        target = home_of(who.role, who.region.value, who.employee_no) if who else "/login"
        return RedirectResponse(target, status_code=303)

    @router.get("/login", name="login")
    async def login_form(
        request: Request, next_: Annotated[str | None, Query(alias="next", max_length=600)] = None
    ) -> Response:
        return login_page(request, next_)

    @router.post("/login", dependencies=[Depends(check_csrf)])
    async def login(
        request: Request,
        email: Annotated[str, Form(min_length=3, max_length=254)],
        password: Annotated[str, Form(min_length=1, max_length=1024)],
        next_: Annotated[str, Form(alias="next", max_length=600)] = "",
    ) -> Response:
        attempt = sessions.gate.login(email.strip(), password, _address(request))
        return await signed_in(request, attempt, next_)

    @router.post("/pin-login", dependencies=[Depends(check_csrf)])
    async def pin_login(
        request: Request,
        employee_no: Annotated[str, Form(min_length=1, max_length=32)],
        pin: Annotated[str, Form(min_length=1, max_length=32)],
        next_: Annotated[str, Form(alias="next", max_length=600)] = "",
    ) -> Response:
        attempt = sessions.gate.pin_login(employee_no.strip(), pin, _address(request))
        return await signed_in(request, attempt, next_)

    @router.post("/logout", dependencies=[Depends(check_csrf)])
    async def logout(request: Request) -> Response:
        refresh = request.cookies.get(REFRESH_COOKIE)
        if refresh:
            # The cookies go anyway; unreachable, identity ends the session when it expires.
            with contextlib.suppress(IdentityUnavailable):
                await sessions.gate.logout(refresh)
        sessions.end(request)
        return RedirectResponse("/login", status_code=303)

    @router.post("/language", dependencies=[Depends(check_csrf)])
    async def language(
        request: Request,
        language: Annotated[str, Form(max_length=8)],
        next_: Annotated[str, Form(alias="next", max_length=600)] = "",
    ) -> Response:
        if language in LANGUAGES:
            jar.set(request, LANG_COOKIE, language, _YEAR_S)
        target = safe_next(next_) or ("/login" if next_ == "/login" else "/")
        return RedirectResponse(target, status_code=303)

    return router
