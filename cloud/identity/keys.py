"""The identity service's key pair, read with :mod:`cloud.keyfiles`' rules (a demo key
is refused in production, either half): the private key signs access tokens, the public
half — the only part a regional API gets — verifies them."""

from __future__ import annotations

from pathlib import Path

from cloud.identity.tokens import VerifyingKeys
from cloud.keyfiles import KeyFileError, public_key_path, read_private_key, read_public_keys
from contracts.signing import SigningKey

__all__ = ["KeyFileError", "load_signing_key", "load_verifying_keys", "public_key_path"]

SIGNING_SETTING = "POTR_IDENTITY_SIGNING_KEY_FILE"
PUBLIC_SETTING = "POTR_IDENTITY_PUBLIC_KEY_FILE"
_HOW = "create a pair with `potr keys generate --out FILE` (FILE.pub is the public half)"


def load_signing_key(path: Path | None, *, production: bool) -> SigningKey:
    """The key access tokens are signed with; :class:`KeyFileError` when unusable."""
    if path is None:
        raise KeyFileError(f"{SIGNING_SETTING} is not set: {_HOW}")
    return read_private_key(path, setting=SIGNING_SETTING, production=production)


def load_verifying_keys(path: Path | None, *, production: bool) -> VerifyingKeys:
    """The public key(s) tokens are verified with; :class:`KeyFileError` when unusable."""
    if path is None:
        raise KeyFileError(f"{PUBLIC_SETTING} is not set: {_HOW}")
    return VerifyingKeys(read_public_keys(path, setting=PUBLIC_SETTING, production=production))
