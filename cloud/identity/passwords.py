"""Password and PIN hashing: argon2id (argon2-cffi) at OWASP's parameters.

Default cost: 19 MiB of memory, 2 passes, 1 lane — OWASP's first recommended argon2id
configuration (Password Storage Cheat Sheet), the least memory per hash of its
equivalent set, which keeps a burst of logins from exhausting an API host's memory;
``bench/auth.py`` measures what it costs (docs/benchmarks.md). Each hash records its
parameters, so raising them later rehashes a user at their next login.

A PIN has a million values: its argon2id hash alone falls to an offline search in hours.
So the PIN is first keyed with a server-side pepper — ``HMAC-SHA256(pepper, pin)`` — and
that digest is hashed with argon2id: a stolen database without the pepper (kept out of
it, in the settings) gives nothing to search.

Unknown users cost the same as known ones: :meth:`CredentialHasher.verify_password`
given no stored hash verifies against a dummy hash of the same parameters. At most
``concurrency`` hashes run at once per process (each holds its memory while it runs).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = [
    "ARGON2_MEMORY_KIB",
    "ARGON2_PARALLELISM",
    "ARGON2_TIME_COST",
    "CredentialHasher",
    "Verified",
]

ARGON2_MEMORY_KIB = 19 * 1024
ARGON2_TIME_COST = 2
ARGON2_PARALLELISM = 1


@dataclass(frozen=True)
class Verified:
    """A verification's outcome; ``rehash``: the stored hash's parameters are outdated."""

    ok: bool
    rehash: bool = False


class CredentialHasher:
    """Hashes and verifies passwords and PINs; thread-safe."""

    def __init__(
        self,
        pepper: bytes,
        *,
        memory_kib: int = ARGON2_MEMORY_KIB,
        time_cost: int = ARGON2_TIME_COST,
        parallelism: int = ARGON2_PARALLELISM,
        concurrency: int = 4,
    ) -> None:
        if memory_kib < ARGON2_MEMORY_KIB or time_cost < ARGON2_TIME_COST:
            raise ValueError("argon2id below OWASP's minimum (19 MiB, 2 passes)")
        if len(pepper) < 16:
            raise ValueError("the PIN pepper must be at least 16 bytes")
        self._pepper = pepper
        self._hasher = PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_kib,
            parallelism=parallelism,
            hash_len=32,
            salt_len=16,
            type=Type.ID,
        )
        self._slots = threading.BoundedSemaphore(concurrency)
        self._dummy = self._hash(secrets.token_urlsafe(24))

    def _hash(self, secret: str) -> str:
        with self._slots:
            return self._hasher.hash(secret)

    def _verify(self, stored: str | None, secret: str) -> Verified:
        with self._slots:
            try:
                ok = self._hasher.verify(stored or self._dummy, secret) and stored is not None
            except (VerificationError, InvalidHashError):
                return Verified(False)
            return Verified(ok, ok and self._hasher.check_needs_rehash(stored or ""))

    def hash_password(self, password: str) -> str:
        return self._hash(password)

    def verify_password(self, stored: str | None, password: str) -> Verified:
        """``stored`` None (no such user, or no password set): the dummy is verified, so
        the answer takes as long, and is no."""
        return self._verify(stored, password)

    def _peppered(self, pin: str) -> str:
        return hmac.new(self._pepper, pin.encode(), hashlib.sha256).hexdigest()

    def hash_pin(self, pin: str) -> str:
        return self._hash(self._peppered(pin))

    def verify_pin(self, stored: str | None, pin: str) -> Verified:
        return self._verify(stored, self._peppered(pin))
