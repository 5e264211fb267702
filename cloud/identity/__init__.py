"""Identity: roles and bearer tokens (users, PINs and API keys come later)."""

from cloud.identity.tokens import Role, TokenClaims, TokenError, create_token, decode_token

__all__ = ["Role", "TokenClaims", "TokenError", "create_token", "decode_token"]
