"""Access tokens: JWTs signed with Ed25519 (``EdDSA``) by the identity service, verified
with its public key(s) everywhere else — a regional API can check a token but never mint
one. The only module that imports PyJWT (and, for the key objects, ``cryptography``).

A token is refused (:class:`TokenError`) unless: its header names ``EdDSA`` and the key
id (``kid``) of a trusted key; the signature verifies; ``iss``, ``aud`` match; it has not
expired (a few seconds of leeway for clocks); it lives at most :data:`MAX_ACCESS_TTL_S`
(``exp - iat``: a token minted with a longer life is refused whoever signed it); and
every claim has its type (``role`` a :class:`Role`, ``region`` a region, ``scopes``
strings).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from pydantic import BaseModel, ConfigDict

from cloud.identity.roles import Role
from contracts.signing import SigningKey, key_id
from contracts.topics import Region

__all__ = [
    "ALGORITHM",
    "AUDIENCE",
    "ISSUER",
    "MAX_ACCESS_TTL_S",
    "Principal",
    "TokenError",
    "VerifyingKeys",
    "access_claims",
    "issue_access_token",
    "sign_claims",
    "verify_access_token",
]

ALGORITHM = "EdDSA"
ISSUER = "potr-identity"
AUDIENCE = "potr-api"
#: The longest an access token may live (15 minutes), enforced when it is decoded.
MAX_ACCESS_TTL_S = 900
#: Longer than any token we mint (~450 bytes with a few scopes); refused before parsing.
MAX_TOKEN_CHARS = 4096
_REQUIRED = ["iss", "aud", "sub", "jti", "iat", "exp", "role", "region", "scopes"]


class TokenError(Exception):
    """A token that must be refused; ``str()`` says why (safe to return in a 401)."""


class Principal(BaseModel):
    """Who a verified access token speaks for."""

    model_config = ConfigDict(frozen=True)

    subject: str
    role: Role
    region: Region
    account_id: str | None
    employee_no: str | None
    scopes: frozenset[str]
    token_id: str


class VerifyingKeys:
    """The identity service's public keys by key id (rotation: both keys for a while)."""

    def __init__(self, keys: Iterable[bytes | Ed25519PublicKey]) -> None:
        self._keys: dict[str, Ed25519PublicKey] = {}
        for key in keys:
            public = _public_key(key)
            self._keys[key_id(public.public_bytes_raw())] = public
        if not self._keys:
            raise ValueError("no public key to verify tokens with")

    @classmethod
    def of(cls, keys: VerifyingKeys | Sequence[bytes | Ed25519PublicKey]) -> VerifyingKeys:
        return keys if isinstance(keys, VerifyingKeys) else cls(keys)

    def kids(self) -> frozenset[str]:
        return frozenset(self._keys)

    def get(self, kid: object) -> Ed25519PublicKey | None:
        return self._keys.get(kid) if isinstance(kid, str) else None


def _public_key(key: bytes | Ed25519PublicKey) -> Ed25519PublicKey:
    """A key object from a key object, raw 32 bytes, or one PEM public key."""
    if isinstance(key, Ed25519PublicKey):
        return key
    if len(key) == 32:
        return Ed25519PublicKey.from_public_bytes(key)
    loaded = load_pem_public_key(key)
    if not isinstance(loaded, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return loaded


def access_claims(
    *,
    subject: str,
    role: Role | str,
    region: Region | str,
    scopes: Iterable[str] = (),
    account_id: str | None = None,
    employee_no: str | None = None,
    ttl_s: int = MAX_ACCESS_TTL_S,
    now: datetime | None = None,
    audience: str = AUDIENCE,
    token_id: str | None = None,
) -> dict[str, Any]:
    """The claims of an access token (pure); ``ttl_s`` in seconds, 1 … 900."""
    if not 0 < ttl_s <= MAX_ACCESS_TTL_S:
        raise ValueError(f"ttl_s must be 1 … {MAX_ACCESS_TTL_S} seconds, not {ttl_s}")
    issued = (now or datetime.now(UTC)).replace(microsecond=0)
    return {
        "iss": ISSUER,
        "aud": audience,
        "sub": subject,
        "jti": token_id or uuid.uuid4().hex,
        "iat": int(issued.timestamp()),
        "exp": int((issued + timedelta(seconds=ttl_s)).timestamp()),
        "role": Role(role).value,
        "region": Region(region).value,
        "scopes": sorted(set(scopes)),
        "acct": account_id,
        "emp": employee_no,
    }


def sign_claims(claims: Mapping[str, Any], key: SigningKey) -> str:
    """A compact JWT of ``claims`` signed by ``key`` (header: ``EdDSA``, its key id)."""
    return jwt.encode(dict(claims), key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid})


def issue_access_token(key: SigningKey, **claims: Any) -> str:
    """:func:`access_claims` signed with ``key``."""
    return sign_claims(access_claims(**claims), key)


def verify_access_token(
    token: str,
    public_keys: VerifyingKeys | Sequence[bytes | Ed25519PublicKey],
    *,
    audience: str = AUDIENCE,
    leeway_s: float = 5,
) -> Principal:
    """The principal of a valid access token; :class:`TokenError` otherwise (see the
    module's docstring for every check)."""
    keys = VerifyingKeys.of(public_keys)
    if len(token) > MAX_TOKEN_CHARS:
        raise TokenError("invalid token: too long")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError:
        raise TokenError("invalid token: malformed") from None
    if header.get("alg") != ALGORITHM:
        raise TokenError(f"invalid token: algorithm must be {ALGORITHM}")
    key = keys.get(header.get("kid"))
    if key is None:
        raise TokenError("invalid token: signed by an unknown key")
    try:
        raw = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            audience=audience,
            issuer=ISSUER,
            leeway=leeway_s,
            options={"require": _REQUIRED, "strict_aud": True},
        )
    except jwt.ExpiredSignatureError:
        raise TokenError("token expired") from None
    except jwt.InvalidTokenError as exc:
        raise TokenError(f"invalid token: {exc}") from None
    return _principal(raw)


def _principal(raw: Mapping[str, Any]) -> Principal:
    if raw["exp"] - raw["iat"] > MAX_ACCESS_TTL_S:
        raise TokenError(f"invalid token: lives longer than {MAX_ACCESS_TTL_S} s")
    scopes, sub, jti = raw["scopes"], raw["sub"], raw["jti"]
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        raise TokenError("invalid token: scopes must be a list of strings")
    if not (isinstance(sub, str) and sub and isinstance(jti, str) and jti):
        raise TokenError("invalid token: sub and jti must be strings")
    account, employee = raw.get("acct"), raw.get("emp")
    if not all(v is None or isinstance(v, str) for v in (account, employee)):
        raise TokenError("invalid token: acct and emp must be strings or null")
    try:
        role, region = Role(raw["role"]), Region(raw["region"])
    except ValueError:
        raise TokenError("invalid token: unknown role or region") from None
    return Principal(
        subject=sub,
        role=role,
        region=region,
        account_id=account,
        employee_no=employee,
        scopes=frozenset(scopes),
        token_id=jti,
    )
