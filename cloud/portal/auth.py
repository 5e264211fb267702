"""Bearer-token authorisation for the portal's routes (function level, by role)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Annotated

from fastapi import Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from cloud.identity import Role, TokenClaims, TokenError, decode_token

bearer = HTTPBearer(auto_error=False, description="JWT from the identity service (HS256)")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]

#: Fleet-wide reads. Customers are refused until their queries are scoped to their sites.
FLEET_READERS = frozenset({Role.ADMIN, Role.OPERATOR, Role.SUPPORT, Role.MOSIE})
FLEET_WRITERS = frozenset({Role.ADMIN, Role.OPERATOR})


def _unauthorised(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"}
    )


def require_roles(secret: str, roles: Iterable[Role]) -> Callable[..., TokenClaims]:
    """A dependency: 401 without a valid token, 403 when its role is not in ``roles``."""
    allowed = frozenset(roles)

    def dependency(credentials: Credentials) -> TokenClaims:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise _unauthorised("missing bearer token")
        try:
            claims = decode_token(credentials.credentials, secret)
        except TokenError as exc:
            raise _unauthorised(str(exc)) from None
        if claims.role not in allowed:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"role {claims.role.value!r} may not do this"
            )
        return claims

    return dependency
