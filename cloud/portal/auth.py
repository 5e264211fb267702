"""The one authorisation dependency of every regional route.

:func:`access_dependencies` turns a request's bearer token into a caller with an
injected ``verify(token) -> Caller`` (raising ``TokenError``), then asks the policy
(:mod:`cloud.portal.authz`), in this order:

1. no or a bad token → 401;
2. the caller's role may not call the route → 403 (before any parameter is looked at,
   so a refused role learns nothing from 404 or 422);
3. the URL's region is not served by this process (``POTR_API_REGION``: misrouted) or is
   outside the caller's scope → 404;
4. otherwise the route gets :class:`cloud.scope.Access`, whose scope (narrowed to the
   URL's region) the services filter their SQL by; an object outside it is not found.
"""

# No ``from __future__ import annotations``: the dependencies below are local functions,
# and FastAPI resolves string annotations in the module's globals only.

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Path, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from cloud.identity import TokenError
from cloud.portal.authz import ROUTES, Caller, may_call, regional_scope
from cloud.scope import Access
from contracts.topics import Region

__all__ = ["AccessFactory", "Verify", "access_dependencies"]

#: ``verify(token) -> Caller``; raises :class:`cloud.identity.TokenError` to refuse.
Verify = Callable[[str], Caller]
#: ``factory(route_key)`` → that route's (async) dependency, returning :class:`Access`.
AccessFactory = Callable[[str], Callable[..., Any]]

bearer = HTTPBearer(auto_error=False, description="access token (JWT) from the identity service")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
RegionPath = Annotated[
    Region, Path(description="the region whose data the request is about (au, us, es)")
]


def _unauthorised(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"}
    )


def access_dependencies(verify: Verify, *, api_region: Region | None = None) -> AccessFactory:
    """The dependency factory: ``factory("sites.list")`` is the dependency of the route
    whose key (``operationId``) is ``sites.list``. ``api_region``: the one region this
    process serves (None: all, the one-process demo)."""

    async def caller(credentials: Credentials) -> Caller:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise _unauthorised("missing bearer token")
        try:
            return verify(credentials.credentials)
        except TokenError as exc:
            raise _unauthorised(str(exc)) from None

    def for_route(route: str) -> Callable[..., Any]:
        if route not in ROUTES:
            raise KeyError(f"route {route!r} is not in the authorisation table")

        async def permitted(who: Annotated[Caller, Depends(caller)]) -> Caller:
            if not may_call(who.role, route):
                raise HTTPException(
                    status.HTTP_403_FORBIDDEN, f"role {who.role.value!r} may not do this"
                )
            return who

        async def access(who: Annotated[Caller, Depends(permitted)], region: RegionPath) -> Access:
            scope = regional_scope(who, region, api_region)
            if isinstance(scope, str):
                raise HTTPException(status.HTTP_404_NOT_FOUND, scope)
            return Access(who.subject, who.role.value, scope, who.employee_no)

        return access

    return for_route
