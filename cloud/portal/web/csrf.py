"""Cross-site request forgery: every state-changing request of the web UI (a form post,
an htmx request) must prove it comes from a page the portal rendered.

Three independent checks, any failure a 403 before the route runs:

1. the browser's own ``Sec-Fetch-Site`` header, when sent, is ``same-origin`` (or
   ``none``: typed by the person);
2. an ``Origin`` header, when sent, names this host;
3. the double-submit token: the ``potr_csrf`` cookie (random, HttpOnly, SameSite=Strict)
   equals the ``csrf_token`` form field or the ``X-CSRF-Token`` header (htmx sends it
   from the page's ``hx-headers``), compared in constant time.

The session cookies are SameSite=Strict as well, so a cross-site post carries no
session in the first place; the token holds where that attribute is not honoured.
``starlette-csrf`` was the library candidate, but it reads the token from a header only
(a plain HTML form cannot send one) — see ARCHITECTURE decision 60.
"""

from __future__ import annotations

import hmac
import re
import secrets
from urllib.parse import urlsplit

from starlette.requests import Request

from cloud.portal.web.cookies import CSRF_COOKIE, CookieJar

__all__ = ["CSRF_FIELD", "CSRF_HEADER", "CsrfRefused", "check_csrf", "csrf_token"]

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{43}$")
#: A year: the token protects nothing by itself (the session does), so it may live long.
_MAX_AGE_S = 365 * 86_400


class CsrfRefused(Exception):
    """The request did not prove it came from one of the portal's pages."""


def csrf_token(request: Request, jar: CookieJar) -> str:
    """The request's CSRF token: the cookie's, or a new one set on the response."""
    current = request.cookies.get(CSRF_COOKIE, "")
    if _TOKEN.match(current):
        return current
    cached: str | None = request.scope.setdefault("state", {}).get("potr_csrf_new")
    if cached:
        return cached
    token = secrets.token_urlsafe(32)
    request.scope["state"]["potr_csrf_new"] = token
    jar.set(request, CSRF_COOKIE, token, _MAX_AGE_S)
    return token


async def check_csrf(request: Request) -> None:
    """Raise :class:`CsrfRefused` unless the request passes the three checks."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        raise CsrfRefused(f"request from another site ({site})")
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != request.headers.get("host", ""):
        raise CsrfRefused("request from another origin")
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and _is_form(request):
        form = await request.form()
        field = form.get(CSRF_FIELD)
        sent = field if isinstance(field, str) else None
    # Both shapes checked first: compare_digest refuses non-ASCII text with a TypeError.
    if not (_TOKEN.match(cookie) and sent and _TOKEN.match(sent)):
        raise CsrfRefused("missing or malformed CSRF token")
    if not hmac.compare_digest(cookie, sent):
        raise CsrfRefused("wrong CSRF token")


def _is_form(request: Request) -> bool:
    kind = request.headers.get("content-type", "")
    return kind.startswith(("application/x-www-form-urlencoded", "multipart/form-data"))
