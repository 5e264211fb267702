"""The portal's browser cookies, in one place: their names and attributes, and the ASGI
middleware that adds the cookies a request's dependencies decided on to whatever
response the route returns (a template, a redirect, JSON or an error page).

Every cookie is ``HttpOnly`` (no page script reads any of them: the CSRF token reaches
the page in the HTML it renders, not from ``document.cookie``), ``SameSite=Strict`` (a
request started by another site carries none of them) and, unless the settings turn it
off outside production, ``Secure``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "CSRF_COOKIE",
    "LANG_COOKIE",
    "REFRESH_COOKIE",
    "SESSION_COOKIE",
    "CookieJar",
    "PendingCookies",
    "queue_cookie",
]

#: The identity service's access token (a 15-minute EdDSA JWT).
SESSION_COOKIE = "potr_session"
#: The identity service's refresh token: the portal trades it for a new pair when the
#: access token has expired (identity revokes the session if one is ever used twice).
REFRESH_COOKIE = "potr_refresh"
#: The double-submit CSRF token (:mod:`cloud.portal.web.csrf`).
CSRF_COOKIE = "potr_csrf"
#: The person's language choice (not a secret; a year).
LANG_COOKIE = "potr_lang"
_STATE_KEY = "potr_cookies"


@dataclass(frozen=True)
class CookieJar:
    """Sets and clears the portal's cookies with the right attributes."""

    secure: bool = True

    def set(self, request: Request, name: str, value: str, max_age_s: int) -> None:
        queue_cookie(request, self._header(name, value, max_age_s))

    def clear(self, request: Request, name: str) -> None:
        queue_cookie(request, self._header(name, "", 0))

    def _header(self, name: str, value: str, max_age_s: int) -> bytes:
        carrier = Response()
        carrier.set_cookie(
            name,
            value,
            max_age=max_age_s,
            path="/",
            secure=self.secure,
            httponly=True,
            samesite="strict",
        )
        return carrier.headers["set-cookie"].encode("latin-1")


def queue_cookie(request: Request, header: bytes) -> None:
    """Remember a ``Set-Cookie`` value for the response to this request."""
    pending: list[bytes] = request.scope.setdefault("state", {}).setdefault(_STATE_KEY, [])
    pending.append(header)


class PendingCookies:
    """ASGI middleware: adds the queued ``Set-Cookie`` headers to the response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_cookies(message: Message) -> None:
            if message["type"] == "http.response.start":
                state: dict[str, Any] = scope.get("state", {})
                pending: list[bytes] = state.get(_STATE_KEY, [])
                if pending:
                    headers = MutableHeaders(scope=message)
                    for value in pending:
                        headers.append("set-cookie", value.decode("latin-1"))
            await send(message)

        await self.app(scope, receive, send_with_cookies)
