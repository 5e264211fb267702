"""Short-lived bearer tokens (JWT, HS256 only) carrying a subject and one role."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum

import jwt
from pydantic import BaseModel, ConfigDict

ALGORITHM = "HS256"
ISSUER = "potr"


class Role(StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"
    SUPPORT = "support"
    MOSIE = "mosie"  # field technician
    CUSTOMER = "customer"


class TokenError(Exception):
    """A token that must be refused; ``str()`` says why (safe to return in a 401)."""


class TokenClaims(BaseModel):
    model_config = ConfigDict(frozen=True)

    sub: str
    role: Role
    iat: datetime
    exp: datetime


def create_token(
    role: Role | str, secret: str, ttl_s: int, *, subject: str, now: datetime | None = None
) -> str:
    """A signed token for ``subject`` acting as ``role``, valid ``ttl_s`` seconds."""
    if ttl_s <= 0:
        raise ValueError("ttl_s must be positive")
    issued = (now or datetime.now(UTC)).replace(microsecond=0)
    claims = {
        "sub": subject,
        "role": Role(role).value,
        "iss": ISSUER,
        "iat": issued,
        "exp": issued + timedelta(seconds=ttl_s),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def decode_token(token: str, secret: str, *, leeway_s: float = 5.0) -> TokenClaims:
    """Verify signature, issuer and expiry (explicitly HS256 only); raise :class:`TokenError`."""
    try:
        raw = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            leeway=leeway_s,
            options={"require": ["sub", "role", "iat", "exp", "iss"]},
        )
    except jwt.ExpiredSignatureError:
        raise TokenError("token expired") from None
    except jwt.InvalidTokenError as exc:
        raise TokenError(f"invalid token: {exc}") from None
    try:
        return TokenClaims(
            sub=raw["sub"],
            role=raw["role"],
            iat=datetime.fromtimestamp(raw["iat"], UTC),
            exp=datetime.fromtimestamp(raw["exp"], UTC),
        )
    except ValueError:
        raise TokenError(f"invalid token: unknown role {raw.get('role')!r}") from None
