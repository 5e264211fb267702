"""Bearer tokens: HS256 only, short-lived, tamper-evident."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from cloud.identity import Role, TokenError, create_token, decode_token

SECRET = "unit-test-secret-that-is-long-enough-0123456789"


def test_a_token_round_trips_subject_and_role() -> None:
    claims = decode_token(create_token(Role.OPERATOR, SECRET, 900, subject="u-1"), SECRET)
    assert claims.sub == "u-1"
    assert claims.role is Role.OPERATOR
    assert claims.exp - claims.iat == timedelta(seconds=900)


def test_an_expired_token_is_refused() -> None:
    old = datetime.now(UTC) - timedelta(hours=1)
    token = create_token("admin", SECRET, 60, subject="u-1", now=old)
    with pytest.raises(TokenError, match="expired"):
        decode_token(token, SECRET)


def test_a_tampered_payload_is_refused() -> None:
    header, payload, sig = create_token("customer", SECRET, 60, subject="u-1").split(".")
    raw = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    raw["role"] = "admin"
    forged = base64.urlsafe_b64encode(json.dumps(raw).encode()).rstrip(b"=").decode()
    with pytest.raises(TokenError, match="invalid token"):
        decode_token(f"{header}.{forged}.{sig}", SECRET)


def test_another_secret_is_refused() -> None:
    token = create_token("admin", SECRET, 60, subject="u-1")
    with pytest.raises(TokenError, match="invalid token"):
        decode_token(token, SECRET + "x")


def test_the_none_algorithm_is_refused() -> None:
    now = datetime.now(UTC)
    token = jwt.encode(
        {"sub": "u", "role": "admin", "iss": "potr", "iat": now, "exp": now + timedelta(minutes=5)},
        "",
        algorithm="none",
    )
    with pytest.raises(TokenError):
        decode_token(token, SECRET)


def test_an_unknown_role_is_refused() -> None:
    now = datetime.now(UTC)
    token = jwt.encode(
        {"sub": "u", "role": "root", "iss": "potr", "iat": now, "exp": now + timedelta(minutes=5)},
        SECRET,
        algorithm="HS256",
    )
    with pytest.raises(TokenError, match="unknown role"):
        decode_token(token, SECRET)


def test_a_token_without_expiry_is_refused() -> None:
    token = jwt.encode(
        {"sub": "u", "role": "admin", "iss": "potr", "iat": datetime.now(UTC)},
        SECRET,
        algorithm="HS256",
    )
    with pytest.raises(TokenError, match="exp"):
        decode_token(token, SECRET)
