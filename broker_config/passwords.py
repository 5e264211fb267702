"""Password hashes for the brokers' password files, computed at provisioning while the
secret is known (the secret itself is never stored).

Mosquitto 2.0 wants its ``$7$`` format (what ``mosquitto_passwd`` writes: PBKDF2-HMAC-
SHA512, 101 iterations, 12-byte salt); there is no library for that file format, and
running ``mosquitto_passwd -b`` would put the secret on a command line other users can
read in ``ps``. amqtt 0.12.1 verifies argon2 hashes (pwdlib), which argon2-cffi makes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from argon2 import PasswordHasher

__all__ = [
    "amqtt_hash",
    "mosquitto_hash",
    "mosquitto_verify",
    "new_secret",
    "render_password_file",
]

_MOSQ_ITERATIONS = 101
_MOSQ_SALT_BYTES = 12


def new_secret() -> str:
    """A random broker password (256 bits, URL-safe: fits a settings file verbatim)."""
    return secrets.token_urlsafe(32)


def mosquitto_hash(password: str, *, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else secrets.token_bytes(_MOSQ_SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, _MOSQ_ITERATIONS)
    b64 = base64.b64encode
    return f"$7${_MOSQ_ITERATIONS}${b64(salt).decode()}${b64(digest).decode()}"


def mosquitto_verify(password: str, hashed: str) -> bool:
    """True when ``password`` matches a ``$7$`` hash (tests and rotation checks)."""
    try:
        _, seven, rounds, salt, digest = hashed.split("$")
        if seven != "7":
            return False
        want = base64.b64decode(digest)
        got = hashlib.pbkdf2_hmac("sha512", password.encode(), base64.b64decode(salt), int(rounds))
    except ValueError:
        return False
    return hmac.compare_digest(want, got)


def amqtt_hash(password: str) -> str:
    return PasswordHasher().hash(password)


def render_password_file(hashes: dict[str, str]) -> str:
    """``username:hash`` lines; one hash per username (Mosquitto keeps only the last)."""
    for user in hashes:
        if ":" in user or "\n" in user:
            raise ValueError(f"username {user!r} cannot go into a password file")
    return "".join(f"{user}:{hashes[user]}\n" for user in sorted(hashes))
