"""Ed25519 signatures over canonical JSON (RFC 8785), with key ids and a trusted set.

The signed bytes are the document without its ``sig`` field, canonicalised. Verify the
document *as received* (the parsed JSON object), never a re-serialised model, so both
sides agree byte for byte.

Verifying (every gateway) uses PyNaCl (libsodium); signing (the cloud, ``potr keys``)
uses ``cryptography``, imported only when a private key is handled: its bundled OpenSSL
costs a gateway about 9 MiB of resident memory for nothing, since a gateway never signs
(docs/ARCHITECTURE.md, decision 31). Both are PyCA libraries; Ed25519 (RFC 8032) is one
algorithm, so either verifies the other's signatures.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import rfc8785
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

#: DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410 §4): the 32 raw key bytes follow.
_ED25519_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")
_PEM_PUBLIC = (b"-----BEGIN PUBLIC KEY-----", b"-----END PUBLIC KEY-----")


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


def key_id(public_key: bytes) -> str:
    """A stable key id: the first 16 hex digits of SHA-256 of the raw 32-byte public key."""
    return hashlib.sha256(public_key).hexdigest()[:16]


def public_key_from_pem(pem: bytes) -> bytes:
    """The raw 32 bytes of the one Ed25519 public key (SubjectPublicKeyInfo) in ``pem``;
    text around the block (comments, a byte-order mark) is ignored, as RFC 7468 asks;
    any other key, a second key or no key is refused. The DER is fixed (RFC 8410), so
    it is checked exactly."""
    begin, end = _PEM_PUBLIC
    if pem.count(begin) != 1 or pem.count(end) != 1:
        raise SignatureError("trusted key file must hold exactly one PEM public key")
    start = pem.index(begin) + len(begin)
    stop = pem.find(end, start)
    if stop < 0:
        raise SignatureError("trusted key is not a PEM public key")
    try:
        der = base64.b64decode(b"".join(pem[start:stop].split()), validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError("trusted key is not valid PEM") from None
    if len(der) != len(_ED25519_SPKI_PREFIX) + 32 or not der.startswith(_ED25519_SPKI_PREFIX):
        raise SignatureError("trusted key is not an Ed25519 public key")
    return der[len(_ED25519_SPKI_PREFIX) :]


@dataclass(frozen=True)
class SigningKey:
    """The cloud's private key (``cryptography``, imported here only)."""

    kid: str
    private_key: Ed25519PrivateKey

    @classmethod
    def generate(cls) -> SigningKey:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        private = Ed25519PrivateKey.generate()
        return cls(key_id(private.public_key().public_bytes_raw()), private)

    @classmethod
    def from_pem(cls, pem: bytes) -> SigningKey:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        try:
            private = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError) as exc:
            raise SignatureError(f"signing key cannot be read: {exc}") from None
        if not isinstance(private, Ed25519PrivateKey):
            raise SignatureError("signing key is not an Ed25519 private key")
        return cls(key_id(private.public_key().public_bytes_raw()), private)

    @classmethod
    def load(cls, path: Path) -> SigningKey:
        return cls.from_pem(path.read_bytes())

    def private_pem(self) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @property
    def public_key(self) -> bytes:
        """The raw 32-byte public key (what :class:`TrustedKeys` takes)."""
        return self.private_key.public_key().public_bytes_raw()

    def public_pem(self) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return self.private_key.public_key().public_bytes(
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

    def __init__(self, keys: Iterable[bytes] = ()) -> None:
        self._keys: dict[str, VerifyKey] = {}
        for k in keys:
            self.add(k)

    @classmethod
    def from_pems(cls, pems: Iterable[bytes]) -> TrustedKeys:
        return cls(public_key_from_pem(pem) for pem in pems)

    def add(self, public_key: bytes) -> str:
        """Trust a raw 32-byte Ed25519 public key; its key id."""
        if len(public_key) != 32:
            raise SignatureError("an Ed25519 public key is 32 bytes")
        kid = key_id(public_key)
        self._keys[kid] = VerifyKey(public_key)
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
        if len(raw_sig) != 64:
            raise SignatureError("signature does not match the document")
        try:
            self._keys[kid].verify(canonical_bytes(document), raw_sig)
        except BadSignatureError:
            raise SignatureError("signature does not match the document") from None
