"""Ed25519 signatures over canonical JSON (RFC 8785), with key ids and a trusted set.

The signed bytes are the document without its ``sig`` field, canonicalised. Verify the
document *as received* (the parsed JSON object), never a re-serialised model, so both
sides agree byte for byte.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey


class SignatureError(ValueError):
    """A document that must not be trusted; the message says why."""


def canonical_bytes(document: Mapping[str, Any]) -> bytes:
    """RFC 8785 canonical form of ``document`` without its ``sig`` field."""
    body = {k: v for k, v in document.items() if k != "sig"}
    try:
        return rfc8785.dumps(body)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise SignatureError(f"document cannot be canonicalised: {exc}") from None


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def key_id(public_key: Ed25519PublicKey) -> str:
    """A stable key id: the first 16 hex digits of SHA-256 of the raw public key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: Ed25519PrivateKey

    @classmethod
    def generate(cls) -> SigningKey:
        private = Ed25519PrivateKey.generate()
        return cls(key_id(private.public_key()), private)

    @classmethod
    def from_pem(cls, pem: bytes) -> SigningKey:
        private = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(private, Ed25519PrivateKey):
            raise SignatureError("signing key is not an Ed25519 private key")
        return cls(key_id(private.public_key()), private)

    @classmethod
    def load(cls, path: Path) -> SigningKey:
        return cls.from_pem(path.read_bytes())

    def private_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    def public_pem(self) -> bytes:
        return self.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def sign_document(document: Mapping[str, Any], key: SigningKey) -> dict[str, Any]:
    """Return a copy of ``document`` with ``kid`` and ``sig`` set."""
    body = {k: v for k, v in document.items() if k != "sig"}
    body["kid"] = key.kid
    body["sig"] = _b64url(key.private_key.sign(canonical_bytes(body)))
    return body


class TrustedKeys:
    """The set of public keys a verifier accepts, by key id (rotation = add, then retire)."""

    def __init__(self, keys: Iterable[Ed25519PublicKey] = ()) -> None:
        self._keys: dict[str, Ed25519PublicKey] = {}
        for k in keys:
            self.add(k)

    @classmethod
    def from_pems(cls, pems: Iterable[bytes]) -> TrustedKeys:
        keys = []
        for pem in pems:
            public = serialization.load_pem_public_key(pem)
            if not isinstance(public, Ed25519PublicKey):
                raise SignatureError("trusted key is not an Ed25519 public key")
            keys.append(public)
        return cls(keys)

    def add(self, public_key: Ed25519PublicKey) -> str:
        kid = key_id(public_key)
        self._keys[kid] = public_key
        return kid

    def retire(self, kid: str) -> None:
        self._keys.pop(kid, None)

    def kids(self) -> frozenset[str]:
        return frozenset(self._keys)

    def verify(self, document: Mapping[str, Any]) -> None:
        """Raise :class:`SignatureError` unless a trusted key signed ``document``."""
        kid, sig = document.get("kid"), document.get("sig")
        if not isinstance(sig, str) or not sig:
            raise SignatureError("document is not signed")
        if not isinstance(kid, str) or kid not in self._keys:
            raise SignatureError(f"key id {kid!r} is not trusted")
        try:
            raw_sig = _unb64url(sig)
        except ValueError:
            raise SignatureError("signature is not base64url") from None
        try:
            self._keys[kid].verify(raw_sig, canonical_bytes(document))
        except InvalidSignature:
            raise SignatureError("signature does not match the document") from None
