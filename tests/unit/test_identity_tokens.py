"""Access tokens: EdDSA only, our issuer and audience, at most 15 minutes, a trusted key."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from cloud.identity import (
    MAX_ACCESS_TTL_S,
    Role,
    TokenError,
    VerifyingKeys,
    issue_access_token,
    verify_access_token,
)
from cloud.identity.tokens import access_claims, sign_claims
from contracts.signing import SigningKey
from contracts.topics import Region

KEY = SigningKey.generate()
OTHER = SigningKey.generate()
KEYS = VerifyingKeys([KEY.public_key])


def _token(key: SigningKey = KEY, **overrides: Any) -> str:
    claims: dict[str, Any] = {"subject": "usr_" + "a" * 32, "role": "mosie", "region": "es"}
    return issue_access_token(key, **(claims | overrides))


def _b64(raw: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(raw).encode()).rstrip(b"=").decode()


def _unb64(part: str) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


def test_a_token_carries_who_where_and_what_it_may_do() -> None:
    token = _token(scopes=["read", "write"], account_id=None, employee_no="E-7", token_id="j" * 32)
    principal = verify_access_token(token, KEYS)
    assert principal.subject == "usr_" + "a" * 32
    assert principal.role is Role.MOSIE
    assert principal.region is Region.ES
    assert principal.scopes == frozenset({"read", "write"})
    assert (principal.employee_no, principal.account_id) == ("E-7", None)
    assert principal.token_id == "j" * 32


def test_the_claims_name_issuer_audience_and_a_15_minute_life() -> None:
    now = datetime(2030, 1, 2, 3, 4, 5, 678, tzinfo=UTC)
    claims = access_claims(subject="s", role="admin", region="au", now=now)
    assert (claims["iss"], claims["aud"]) == ("potr-identity", "potr-api")
    assert claims["exp"] - claims["iat"] == 900 == MAX_ACCESS_TTL_S
    assert claims["iat"] == int(now.replace(microsecond=0).timestamp())
    assert len(claims["jti"]) == 32
    with pytest.raises(ValueError, match="900"):
        access_claims(subject="s", role="admin", region="au", ttl_s=901)


def test_the_header_names_eddsa_and_the_key_id() -> None:
    header = jwt.get_unverified_header(_token())
    assert header["alg"] == "EdDSA"
    assert header["kid"] == KEY.kid


def test_an_expired_token_is_refused() -> None:
    token = _token(now=datetime.now(UTC) - timedelta(minutes=16))
    with pytest.raises(TokenError, match="expired"):
        verify_access_token(token, KEYS)


def test_a_tampered_payload_is_refused() -> None:
    header, payload, sig = _token(role="customer").split(".")
    forged = _unb64(payload) | {"role": "admin"}
    with pytest.raises(TokenError, match="invalid token"):
        verify_access_token(f"{header}.{_b64(forged)}.{sig}", KEYS)


def test_a_token_for_another_audience_is_refused() -> None:
    with pytest.raises(TokenError, match=r"(?i)audience"):
        verify_access_token(_token(audience="potr-billing"), KEYS)


def test_a_token_signed_by_another_key_is_refused() -> None:
    with pytest.raises(TokenError, match="unknown key"):
        verify_access_token(_token(OTHER), KEYS)


def test_another_key_cannot_pass_itself_off_with_our_key_id() -> None:
    claims = access_claims(subject="s", role="admin", region="au")
    forged = jwt.encode(claims, OTHER.private_key, algorithm="EdDSA", headers={"kid": KEY.kid})
    with pytest.raises(TokenError, match="invalid token"):
        verify_access_token(forged, KEYS)


def test_alg_none_is_refused() -> None:
    claims = access_claims(subject="s", role="admin", region="au")
    token = jwt.encode(claims, "", algorithm="none", headers={"kid": KEY.kid})
    with pytest.raises(TokenError, match="algorithm"):
        verify_access_token(token, KEYS)


def test_hs256_keyed_with_the_public_key_is_refused() -> None:
    # Algorithm confusion: an HMAC "signed" with the public key everyone has.
    header = _b64({"alg": "HS256", "typ": "JWT", "kid": KEY.kid})
    payload = _b64(access_claims(subject="s", role="admin", region="au"))
    with pytest.raises(TokenError, match="algorithm"):
        verify_access_token(f"{header}.{payload}.c2lnbmF0dXJl", KEYS)


def test_a_token_living_longer_than_15_minutes_is_refused_whoever_signed_it() -> None:
    claims = access_claims(subject="s", role="admin", region="au")
    claims["exp"] = claims["iat"] + MAX_ACCESS_TTL_S + 1
    with pytest.raises(TokenError, match="longer than 900"):
        verify_access_token(sign_claims(claims, KEY), KEYS)


@pytest.mark.parametrize("claim", ["jti", "aud", "region", "scopes", "exp"])
def test_a_token_missing_a_claim_is_refused(claim: str) -> None:
    claims = access_claims(subject="s", role="admin", region="au")
    del claims[claim]
    with pytest.raises(TokenError, match="invalid token"):
        verify_access_token(sign_claims(claims, KEY), KEYS)


@pytest.mark.parametrize(
    ("claim", "value"),
    [("role", "root"), ("region", "fr"), ("scopes", "read"), ("scopes", [1]), ("emp", 7)],
)
def test_a_claim_of_the_wrong_kind_is_refused(claim: str, value: object) -> None:
    claims = access_claims(subject="s", role="admin", region="au") | {claim: value}
    with pytest.raises(TokenError, match="invalid token"):
        verify_access_token(sign_claims(claims, KEY), KEYS)


@pytest.mark.parametrize("garbage", ["", "x", "a.b.c", "é" * 10, "a" * 5000])
def test_garbage_is_refused(garbage: str) -> None:
    with pytest.raises(TokenError):
        verify_access_token(garbage, KEYS)


def test_during_a_rotation_both_keys_verify_given_as_pem_or_raw() -> None:
    both = [KEY.public_pem(), OTHER.public_key]
    assert verify_access_token(_token(KEY), both).role is Role.MOSIE
    assert verify_access_token(_token(OTHER), both).role is Role.MOSIE
    assert VerifyingKeys(both).kids() == {KEY.kid, OTHER.kid}
