"""Access tokens for API tests: the one place tests mint them, and the settings an app
built for tests verifies them with.

TRANSITIONAL: today the API verifies HS256 tokens (``cloud.portal.legacy_tokens``),
whose extra claims ``region``/``acct``/``scopes`` follow identity's access-token
contract. When identity's EdDSA ``verify_access_token`` is wired in, swap the body of
:func:`mint_token` for identity's signer and :func:`api_settings` for its public key:
no test changes elsewhere.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from cloud.identity import Role
from cloud.portal import ApiSettings
from contracts.topics import Region

#: The test deployment's signing secret (HS256 for now).
SECRET = "api-test-secret-0123456789abcdef0123456789abcdef"


def mint_token(
    role: Role | str,
    *,
    region: Region | str | None = Region.AU,
    account_id: str | None = None,
    subject: str | None = None,
    ttl_s: int = 300,
    now: datetime | None = None,
    secret: str = SECRET,
) -> str:
    """A signed access token for ``role`` in ``region`` (a customer's names its
    ``account_id``); ``now``/``ttl_s`` to make an expired one, ``secret`` a forged one."""
    issued = (now or datetime.now(UTC)).replace(microsecond=0)
    claims: dict[str, Any] = {
        "iss": "potr",
        "sub": subject or f"usr_{uuid.uuid4().hex}",
        "role": Role(role).value,
        "iat": issued,
        "exp": issued + timedelta(seconds=ttl_s),
        "jti": uuid.uuid4().hex,
        "scopes": [],
        "acct": account_id,
    }
    if region is not None:
        claims["region"] = Region(region).value
    return jwt.encode(claims, secret, algorithm="HS256")


def bearer(role: Role | str, **kwargs: Any) -> dict[str, str]:
    """``Authorization`` header with :func:`mint_token`'s token."""
    return {"Authorization": f"Bearer {mint_token(role, **kwargs)}"}


def api_settings(database_url: str, **kwargs: Any) -> ApiSettings:
    """Settings of an API that accepts :func:`mint_token`'s tokens."""
    return ApiSettings(env="test", jwt_secret=SECRET, database_url=database_url, **kwargs)
