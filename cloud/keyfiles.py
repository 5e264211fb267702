"""Ed25519 key files the cloud signs with (config documents, identity tokens): made for
the demo or for rotation, read with production rules. Knows no service.

A private key file holds one PKCS#8 PEM key; its public half is ``<file>.pub``. A demo
key pair starts with :data:`DEMO_KEY_MARKER` (a comment before ``-----BEGIN``, which PEM
readers skip), in both files, so it stays recognisable wherever it is copied; production
(``POTR_ENV=production``) refuses either half.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from contracts.signing import SignatureError, SigningKey, public_key_from_pem

__all__ = [
    "DEMO_KEY_MARKER",
    "KeyFileError",
    "is_demo_key",
    "public_key_path",
    "read_private_key",
    "read_public_keys",
    "write_key_file",
]

DEMO_KEY_MARKER = b"# potr DEMO signing key: for the demo and tests only, refused in production\n"
_PUBLIC_BLOCK = re.compile(rb"-----BEGIN PUBLIC KEY-----.*?-----END PUBLIC KEY-----", re.S)


class KeyFileError(RuntimeError):
    """No usable key; the message names the setting and says what to do."""


def public_key_path(key_file: Path) -> Path:
    """Where the public half of ``key_file`` lives: ``<key_file>.pub``."""
    return key_file.with_name(key_file.name + ".pub")


def write_key_file(key_file: Path, *, demo: bool = False) -> SigningKey:
    """Generate a key; write the private PEM (mode 0600) and ``<key_file>.pub``.

    Refuses to overwrite an existing key file (a lost key cannot be recovered).
    """
    if key_file.exists():
        raise KeyFileError(f"{key_file} exists; choose another file for a new key")
    key = SigningKey.generate()
    key_file.parent.mkdir(parents=True, exist_ok=True)
    marker = DEMO_KEY_MARKER if demo else b""
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(marker + key.private_pem())
    public_key_path(key_file).write_bytes(marker + key.public_pem())
    return key


def is_demo_key(pem: bytes) -> bool:
    """True for either half of a key pair written with ``demo=True``, or a file of public
    keys holding one (the marker cannot occur inside a PEM block: base64 has no ``#``)."""
    return DEMO_KEY_MARKER.strip() in pem


def _read(path: Path, setting: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"cannot read {setting} {path}: {exc}") from None


def _refuse_demo(pem: bytes, path: Path, setting: str, production: bool) -> None:
    if production and is_demo_key(pem):
        raise KeyFileError(
            f"{setting} {path} is the demo key, refused with POTR_ENV=production;"
            " create a real one with `potr keys generate --out FILE`"
        )


def read_private_key(path: Path, *, setting: str, production: bool) -> SigningKey:
    """The private key in ``path`` (``setting``: the variable that named it, for the
    message); :class:`KeyFileError` when unreadable, not Ed25519, or a demo key in
    production."""
    pem = _read(path, setting)
    _refuse_demo(pem, path, setting, production)
    try:
        return SigningKey.from_pem(pem)
    except (SignatureError, ValueError, TypeError) as exc:
        raise KeyFileError(f"{setting} {path}: {exc}") from None


def read_public_keys(path: Path, *, setting: str, production: bool) -> list[bytes]:
    """The raw 32-byte Ed25519 public keys in ``path``: one PEM block or several (the
    current key and the next during a rotation); :class:`KeyFileError` when unreadable,
    holding none, holding anything but Ed25519 keys, or a demo key in production."""
    pem = _read(path, setting)
    _refuse_demo(pem, path, setting, production)
    blocks = _PUBLIC_BLOCK.findall(pem)
    if not blocks:
        raise KeyFileError(f"{setting} {path} holds no PEM public key")
    try:
        return [public_key_from_pem(block) for block in blocks]
    except SignatureError as exc:
        raise KeyFileError(f"{setting} {path}: {exc}") from None
