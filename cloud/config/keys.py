"""The cloud's signing key: made for the demo or for rotation, loaded with production rules.

A demo key is an ordinary Ed25519 PEM file whose first line is :data:`DEMO_KEY_MARKER`
(a comment before ``-----BEGIN``, which PEM readers skip), so it stays recognisable
wherever it is copied; production (``POTR_ENV=production``) refuses it.
"""

from __future__ import annotations

import os
from pathlib import Path

from contracts.signing import SignatureError, SigningKey

__all__ = [
    "DEMO_KEY_MARKER",
    "SigningKeyError",
    "is_demo_key",
    "load_signing_key",
    "public_key_path",
    "write_key_file",
]

DEMO_KEY_MARKER = b"# potr DEMO signing key: for the demo and tests only, refused in production\n"


class SigningKeyError(RuntimeError):
    """No usable signing key; the message says what to do."""


def public_key_path(key_file: Path) -> Path:
    """Where the public half of ``key_file`` lives: ``<key_file>.pub``."""
    return key_file.with_name(key_file.name + ".pub")


def write_key_file(key_file: Path, *, demo: bool = False) -> SigningKey:
    """Generate a key; write the private PEM (mode 0600) and ``<key_file>.pub``.

    Refuses to overwrite an existing key file (a lost key cannot be recovered).
    """
    if key_file.exists():
        raise SigningKeyError(f"{key_file} exists; choose another file for a new key")
    key = SigningKey.generate()
    key_file.parent.mkdir(parents=True, exist_ok=True)
    body = (DEMO_KEY_MARKER if demo else b"") + key.private_pem()
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(body)
    public_key_path(key_file).write_bytes(key.public_pem())
    return key


def is_demo_key(pem: bytes) -> bool:
    """True for a key file written with ``demo=True``."""
    return DEMO_KEY_MARKER.strip() in pem.split(b"-----BEGIN", 1)[0]


def load_signing_key(key_file: Path | None, *, production: bool) -> SigningKey:
    """The key to sign with; :class:`SigningKeyError` when missing, unreadable, not
    Ed25519, or the demo key in production."""
    if key_file is None:
        raise SigningKeyError(
            "POTR_SIGNING_KEY_FILE is not set: the config service signs every command and"
            " config; create a key with `potr keys generate --out FILE`"
        )
    try:
        pem = key_file.read_bytes()
    except OSError as exc:
        raise SigningKeyError(f"cannot read POTR_SIGNING_KEY_FILE {key_file}: {exc}") from None
    if production and is_demo_key(pem):
        raise SigningKeyError(
            f"POTR_SIGNING_KEY_FILE {key_file} is the demo key, refused with POTR_ENV=production;"
            " create a real one with `potr keys generate --out FILE`"
        )
    try:
        return SigningKey.from_pem(pem)
    except (SignatureError, ValueError, TypeError) as exc:
        raise SigningKeyError(f"POTR_SIGNING_KEY_FILE {key_file}: {exc}") from None
