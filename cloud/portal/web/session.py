"""Who is looking at a web page: the browser's session cookie becomes a
:class:`Viewer`, through the same token check and the same policy as the bearer API.

:meth:`Sessions.viewer` is each UI route's dependency, keyed like the API's by the
route's ``operationId`` in :data:`cloud.portal.authz.ROUTES`:

1. the access token from the ``potr_session`` cookie, verified with identity's public
   key; expired or missing, but a refresh token is there → identity issues the next pair
   (set on this response) — still nothing → :class:`SignInRequired` (a redirect to the
   sign-in page, or for htmx an ``HX-Redirect``);
2. the role may not see the page → 403;
3. the URL's region is outside the person's reach, or not served here → 404;
4. otherwise a :class:`Viewer`: the person, the scope their page's queries filter by,
   and the language and formats it is rendered in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Path, Request
from starlette.concurrency import run_in_threadpool

from cloud.identity import Role, TokenError, TokenPair
from cloud.portal.authz import ROUTES, Caller, may_call, regional_scope
from cloud.portal.web.cookies import LANG_COOKIE, REFRESH_COOKIE, SESSION_COOKIE, CookieJar
from cloud.portal.web.formatting import Formats
from cloud.portal.web.i18n import choose_language
from cloud.portal.web.identity_gate import IdentityGate, IdentityUnavailable, SignInRefused
from cloud.scope import Access, Scope
from contracts.topics import Region

__all__ = ["PageRefused", "Sessions", "SignInRequired", "Viewer"]

#: Where :meth:`Sessions.caller` keeps a token it refreshed, for :meth:`Sessions.token`.
_TOKEN_STATE = "potr_access_token"

RegionPath = Annotated[Region, Path(description="the region the page is about")]


class SignInRequired(Exception):
    """No valid session: sign in first."""


class PageRefused(Exception):
    """A page answer other than 200: 403 (role), 404 (outside reach), 503. ``missing``:
    the regions that did not answer (a 503 of figures across the regions)."""

    def __init__(self, status: int, message: str, *, missing: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.missing = missing


@dataclass(frozen=True)
class Viewer:
    caller: Caller
    region: Region
    scope: Scope
    language: str
    formats: Formats
    #: Unread inbox entries (for the navigation's badge); None on a page's parts.
    unread: int | None = None

    @property
    def role(self) -> Role:
        return self.caller.role

    @property
    def access(self) -> Access:
        return Access(self.caller.subject, self.caller.role.value, self.scope)

    @property
    def is_staff(self) -> bool:
        return self.caller.role != Role.CUSTOMER


@dataclass(frozen=True)
class Sessions:
    """Cookie sessions on top of identity's tokens."""

    verify: Callable[[str], Caller]
    gate: IdentityGate
    jar: CookieJar
    api_region: Region | None = None
    #: A person's unread inbox entries (user id → count); None: no inbox here.
    unread: Callable[[str], int] | None = None

    def start(self, request: Request, pair: TokenPair) -> None:
        """Put a fresh token pair in the browser."""
        self.jar.set(request, SESSION_COOKIE, pair.access_token, pair.expires_in)
        self.jar.set(request, REFRESH_COOKIE, pair.refresh_token, pair.refresh_expires_in)

    def end(self, request: Request) -> None:
        self.jar.clear(request, SESSION_COOKIE)
        self.jar.clear(request, REFRESH_COOKIE)

    async def caller(self, request: Request) -> Caller:
        """The signed-in person (refreshing an expired session once); else
        :class:`SignInRequired`."""
        access = request.cookies.get(SESSION_COOKIE)
        if access:
            try:
                return self.verify(access)
            except TokenError:
                pass
        refresh = request.cookies.get(REFRESH_COOKIE)
        if not refresh:
            raise SignInRequired()
        try:
            pair = await self.gate.refresh(refresh)
        except SignInRefused:
            self.end(request)
            raise SignInRequired() from None
        except IdentityUnavailable:
            raise PageRefused(503, "the sign-in service does not answer") from None
        self.start(request, pair)
        request.scope.setdefault("state", {})[_TOKEN_STATE] = pair.access_token
        return self.verify(pair.access_token)

    @staticmethod
    def token(request: Request) -> str:
        """The access token the request's caller was signed in with (after a refresh in
        this request, the new one): what a page forwards to another region's API for
        them. Never logged."""
        refreshed = request.scope.get("state", {}).get(_TOKEN_STATE)
        return str(refreshed or request.cookies.get(SESSION_COOKIE, ""))

    async def optional_caller(self, request: Request) -> Caller | None:
        try:
            return await self.caller(request)
        except SignInRequired:
            return None

    def language(self, request: Request) -> str:
        return choose_language(
            request.cookies.get(LANG_COOKIE), request.headers.get("accept-language")
        )

    def viewer(self, route: str) -> Callable[..., Any]:
        """The dependency of UI route ``route`` (a key of :data:`ROUTES`)."""
        if route not in ROUTES:
            raise KeyError(f"route {route!r} is not in the authorisation table")

        async def dependency(request: Request, region: RegionPath) -> Viewer:
            who = await self.caller(request)
            if not may_call(who.role, route):
                raise PageRefused(403, "your role may not see this page")
            scope = regional_scope(who, region, self.api_region)
            if isinstance(scope, str):
                raise PageRefused(404, scope)
            language = self.language(request)
            unread = None
            if self.unread is not None and _is_whole_page(request):
                unread = await run_in_threadpool(self.unread, who.subject)
            return Viewer(who, region, scope, language, Formats(language), unread)

        return dependency


def _is_whole_page(request: Request) -> bool:
    """A page with the navigation (not an htmx part, a form post or a JSON read)."""
    return (
        request.method == "GET"
        and request.headers.get("hx-request") != "true"
        and "text/html" in request.headers.get("accept", "text/html")
    )
