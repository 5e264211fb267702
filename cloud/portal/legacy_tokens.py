"""TRANSITIONAL: today's HS256 tokens as a :class:`~cloud.portal.authz.Caller`, until
identity's ``verify_access_token`` (EdDSA, with ``region``/``acct``/``scopes`` claims)
replaces them; then this module goes.

:func:`cloud.identity.decode_token` checks the signature, issuer and expiry and returns
subject and role. The claims it does not model (``region``, ``acct``, ``emp``,
``scopes``, ``jti``) are read from the payload *it has just verified* — the same bytes
the signature covers, so nothing unverified is trusted.
"""

from __future__ import annotations

import base64
from collections.abc import Callable

import orjson

from cloud.identity import Role, TokenError, decode_token
from cloud.portal.authz import CallerData
from contracts.topics import Region

__all__ = ["hs256_verifier"]


def _payload(token: str) -> dict[str, object]:
    segment = token.split(".")[1]
    raw = orjson.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    if not isinstance(raw, dict):
        raise TokenError("invalid token: payload is not an object")
    return raw


def _optional_str(claims: dict[str, object], name: str) -> str | None:
    value = claims.get(name)
    if value is None or (isinstance(value, str) and 0 < len(value) <= 128):
        return value
    raise TokenError(f"invalid token: claim {name!r}")


def hs256_verifier(secret: str, *, api_region: Region | None) -> Callable[[str], CallerData]:
    """``verify(token) -> CallerData``, raising :class:`TokenError`.

    A token without a ``region`` claim (``potr token create``, the demo's) speaks for the
    region this process serves (``api_region``); with neither, only an admin's is
    accepted (an admin's scope does not depend on it). A customer's needs ``acct``.
    """

    def verify(token: str) -> CallerData:
        claims = decode_token(token, secret)
        extra = _payload(token)
        region_claim = _optional_str(extra, "region")
        try:
            region = Region(region_claim) if region_claim else api_region
        except ValueError:
            raise TokenError(f"invalid token: unknown region {region_claim!r}") from None
        if region is None:
            if claims.role != Role.ADMIN:
                raise TokenError("invalid token: no region claim")
            region = Region.AU  # unused: an admin reaches every region
        account = _optional_str(extra, "acct")
        if claims.role == Role.CUSTOMER and account is None:
            raise TokenError("invalid token: a customer's token names no account")
        scopes = extra.get("scopes") or []
        if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
            raise TokenError("invalid token: claim 'scopes'")
        return CallerData(
            subject=claims.sub,
            role=claims.role,
            region=region,
            account_id=account,
            employee_no=_optional_str(extra, "emp"),
            scopes=frozenset(scopes),
            token_id=_optional_str(extra, "jti") or "",
        )

    return verify
