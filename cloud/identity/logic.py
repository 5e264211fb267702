"""Identity's pure core: guessing throttles, client addresses, opaque secrets, PINs.

No I/O here: the service loads a throttle's state (row-locked), asks :func:`admit`, and
stores what it answers; tests run these without sockets.

Throttles count *attempts* before verifying them, so attempts racing in parallel (many
requests at once, several API processes) cannot all slip under the limit: the attempt
that reaches ``max_attempts`` in a window sets the lock-out, and only a success (or an
admin) lifts it. Identifiers are counted whether or not they belong to anyone, so a
lock-out says nothing about who exists.
"""

from __future__ import annotations

import hashlib
import ipaddress
import itertools
import math
import re
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

__all__ = [
    "API_KEY_RE",
    "Admission",
    "ThrottlePolicy",
    "ThrottleState",
    "address_key",
    "admit",
    "after_success",
    "fingerprint",
    "identifier_key",
    "is_weak_pin",
    "new_api_key",
    "new_opaque_token",
    "new_pin",
    "parse_api_key",
    "password_problem",
    "token_hash",
]

#: Forget escalation (and everything else) after this long without an attempt.
QUIET_RESET = timedelta(hours=24)

API_KEY_RE = re.compile(r"^pak_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
MIN_PASSWORD_CHARS = 12
MAX_PASSWORD_CHARS = 256


# -- throttles ----------------------------------------------------------------------------
@dataclass(frozen=True)
class ThrottlePolicy:
    """``max_attempts`` failures within ``window_s`` lock for ``lockout_s``, doubling with
    each lock-out in a row up to ``max_lockout_s`` (seconds)."""

    max_attempts: int
    window_s: float
    lockout_s: float
    max_lockout_s: float

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or min(self.window_s, self.lockout_s) <= 0:
            raise ValueError("a throttle needs max_attempts >= 1 and positive durations")
        if self.max_lockout_s < self.lockout_s:
            raise ValueError("max_lockout_s must be at least lockout_s")


@dataclass(frozen=True)
class ThrottleState:
    """One identifier's or address's counter (what the database row holds)."""

    window_start: datetime
    attempts: int = 0
    locked_until: datetime | None = None
    lockouts: int = 0


@dataclass(frozen=True)
class Admission:
    """Whether an attempt may be verified; ``state`` is what to store (unchanged when
    refused); ``retry_after_s`` (whole seconds) when refused; ``locked_now``: this
    attempt started a lock-out (if it fails, audit it)."""

    allowed: bool
    state: ThrottleState
    retry_after_s: int = 0
    locked_now: bool = False


def _locked(state: ThrottleState, now: datetime) -> bool:
    return state.locked_until is not None and now < state.locked_until


def admit(state: ThrottleState | None, now: datetime, policy: ThrottlePolicy) -> Admission:
    """Count one attempt at ``now`` unless the counter is locked."""
    if state is not None and _locked(state, now):
        assert state.locked_until is not None
        wait = math.ceil((state.locked_until - now).total_seconds())
        return Admission(False, state, retry_after_s=max(1, wait))
    fresh = ThrottleState(window_start=now)
    if state is None or now - state.window_start >= QUIET_RESET:
        current = fresh
    elif (
        now - state.window_start >= timedelta(seconds=policy.window_s)
        or state.locked_until is not None
    ):
        # A new window (or the first attempt after a lock-out ended): count afresh but
        # remember the lock-outs, so the next one lasts longer.
        current = replace(fresh, lockouts=state.lockouts)
    else:
        current = state
    attempts = current.attempts + 1
    if attempts < policy.max_attempts:
        return Admission(True, replace(current, attempts=attempts))
    lockouts = current.lockouts + 1
    cool = min(policy.lockout_s * 2 ** (lockouts - 1), policy.max_lockout_s)
    locked = replace(
        current,
        attempts=attempts,
        locked_until=now + timedelta(seconds=cool),
        lockouts=lockouts,
    )
    return Admission(True, locked, locked_now=True)


def after_success(state: ThrottleState, admission: Admission, *, forget: bool) -> ThrottleState:
    """The counter once the admitted attempt succeeded: ``forget`` (the identifier's own
    counter) clears it; otherwise (an address shared by many) the attempt is refunded,
    and a lock-out it started is lifted."""
    if forget:
        return ThrottleState(window_start=state.window_start)
    if admission.locked_now:
        return replace(
            state,
            attempts=max(0, state.attempts - 1),
            locked_until=None,
            lockouts=max(0, state.lockouts - 1),
        )
    return replace(state, attempts=max(0, state.attempts - 1))


# -- keys of throttles and audit ----------------------------------------------------------
def identifier_key(kind: str, identifier: str) -> str:
    """A throttle key for a submitted identifier (case-folded e-mail or employee number):
    SHA-256 hex, so the table holds no submitted text."""
    return hashlib.sha256(f"{kind}:{identifier.strip().lower()}".encode()).hexdigest()


def fingerprint(identifier: str) -> str:
    """How the audit names an identifier that matches no user: it may be a password typed
    into the wrong field, so only a short hash (enough to see repeats)."""
    digest = hashlib.sha256(identifier.strip().lower().encode()).hexdigest()[:16]
    return f"sha256:{digest}"


def address_key(host: str | None) -> str:
    """The throttle key of a client address: IPv4 as is, IPv6 by its /64 (one host
    commonly holds a whole /64), an IPv4-mapped address as IPv4; ``unknown`` when the
    server could not tell."""
    if not host:
        return "unknown"
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


# -- opaque secrets -----------------------------------------------------------------------
def token_hash(token: str) -> bytes:
    """What the database keeps of an opaque token or API key: its SHA-256 (the value has
    256 bits of entropy, so a fast hash suffices)."""
    return hashlib.sha256(token.encode()).digest()


def new_opaque_token(prefix: str) -> str:
    """``<prefix>_`` + 256 random bits (URL-safe base64)."""
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def new_api_key() -> tuple[str, str]:
    """``(key id, key)``: ``pak_<16 hex id>_<43 chars, 256 random bits>``."""
    key_id = secrets.token_hex(8)
    return key_id, f"pak_{key_id}_{secrets.token_urlsafe(32)}"


def parse_api_key(key: str) -> str | None:
    """The key id of a well-formed API key, else None."""
    match = API_KEY_RE.match(key)
    return match.group(1) if match else None


# -- PINs and passwords -------------------------------------------------------------------
_COMMON_PINS = frozenset({"123123", "121212", "112233", "101010", "696969", "159753"})


def is_weak_pin(pin: str) -> bool:
    """One digit repeated, a run up or down (``123456``, ``876543``) or a common pick."""
    digits = [int(c) for c in pin]
    steps = {(b - a) % 10 for a, b in itertools.pairwise(digits)}
    return len(set(digits)) == 1 or steps in ({1}, {9}) or pin in _COMMON_PINS


def new_pin() -> str:
    """Six random digits, never a weak PIN."""
    while True:
        pin = f"{secrets.randbelow(1_000_000):06d}"
        if not is_weak_pin(pin):
            return pin


def password_problem(password: str, email: str) -> str | None:
    """Why ``password`` is refused (NIST SP 800-63B: length, not composition), or None."""
    if len(password) < MIN_PASSWORD_CHARS:
        return f"the password must have at least {MIN_PASSWORD_CHARS} characters"
    if len(password) > MAX_PASSWORD_CHARS:
        return f"the password must have at most {MAX_PASSWORD_CHARS} characters"
    if "\x00" in password:
        return "the password must not contain U+0000"
    folded = password.strip().lower()
    if folded in {email.lower(), email.split("@", 1)[0].lower()}:
        return "the password must not be the e-mail address"
    return None
