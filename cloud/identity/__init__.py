"""Identity: roles and bearer tokens (users, PINs and API keys come later)."""

from cloud.identity.settings import DEV_JWT_SECRET, MAX_JWT_TTL_S, TokenSettings
from cloud.identity.tokens import Role, TokenClaims, TokenError, create_token, decode_token

__all__ = [
    "DEV_JWT_SECRET",
    "MAX_JWT_TTL_S",
    "Role",
    "TokenClaims",
    "TokenError",
    "TokenSettings",
    "create_token",
    "decode_token",
]
