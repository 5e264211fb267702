"""The config service's signing key: :mod:`cloud.keyfiles` with its setting's name.

A demo key is an ordinary Ed25519 PEM file whose first line is :data:`DEMO_KEY_MARKER`
(a comment before ``-----BEGIN``, which PEM readers skip), so it stays recognisable
wherever it is copied; production (``POTR_ENV=production``) refuses it.
"""

from __future__ import annotations

from pathlib import Path

from cloud.keyfiles import (
    DEMO_KEY_MARKER,
    KeyFileError,
    is_demo_key,
    public_key_path,
    read_private_key,
    write_key_file,
)
from contracts.signing import SigningKey

__all__ = [
    "DEMO_KEY_MARKER",
    "SigningKeyError",
    "is_demo_key",
    "load_signing_key",
    "public_key_path",
    "write_key_file",
]

#: No usable signing key; the message says what to do.
SigningKeyError = KeyFileError


def load_signing_key(key_file: Path | None, *, production: bool) -> SigningKey:
    """The key to sign with; :class:`SigningKeyError` when missing, unreadable, not
    Ed25519, or the demo key in production."""
    if key_file is None:
        raise SigningKeyError(
            "POTR_SIGNING_KEY_FILE is not set: the config service signs every command and"
            " config; create a key with `potr keys generate --out FILE`"
        )
    return read_private_key(key_file, setting="POTR_SIGNING_KEY_FILE", production=production)
