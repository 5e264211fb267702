"""IdentityService: identity's published interface (users, logins, sessions, keys, audit).

Every way in — password, PIN, API key — runs the same steps: count the attempt against
the client's address and the submitted identifier (row-locked, so several API processes
share one count; refused with :class:`Throttled` while either is locked), look the user
up, verify (a dummy hash when there is no user, so both answers take as long), then
either start a session or record the failure. Every failure raises the same
:class:`InvalidCredentials`.

Sessions: an access token (EdDSA JWT, at most 15 minutes) and an opaque refresh token
(stored as its SHA-256). A refresh marks its token used and issues the next of the same
family; a used token presented again means it was copied, so the whole family is
revoked. Disabling a user or resetting their password revokes all their families; an
access token already issued lives out its (short) life.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID, uuid4

from cloud.adapters.postgres import Connection, ConnectionPool, UniqueViolation, ping
from cloud.events.outbox import emit
from cloud.events.users import (
    USER_CREATED,
    USER_DISABLED,
    USER_ENABLED,
    USER_UPDATED,
    UserChanged,
    UserContact,
    contact_event,
    user_event,
)
from cloud.identity import repository as repo
from cloud.identity.keys import load_signing_key
from cloud.identity.logic import (
    Admission,
    ThrottlePolicy,
    address_key,
    admit,
    after_success,
    fingerprint,
    identifier_key,
    new_api_key,
    new_opaque_token,
    new_pin,
    parse_api_key,
    password_problem,
    token_hash,
)
from cloud.identity.models import (
    AccessToken,
    ApiKey,
    ApiKeyCreated,
    ApiKeyIn,
    AuditEntry,
    PinReset,
    TokenPair,
    User,
    UserCreated,
    UserIn,
    UserPatch,
)
from cloud.identity.passwords import CredentialHasher
from cloud.identity.roles import EMPLOYEE_ROLES, ROLE_SCOPES, Role
from cloud.identity.settings import IdentitySettings
from cloud.identity.tokens import VerifyingKeys, issue_access_token
from contracts.signing import SigningKey
from contracts.timeutil import utc_now

__all__ = [
    "SCHEMA",
    "ConflictError",
    "IdentityError",
    "IdentityOptions",
    "IdentityService",
    "InvalidCredentials",
    "NotFoundError",
    "RefusedError",
    "ResetMail",
    "Throttled",
    "create_identity_service",
]

log = logging.getLogger(__name__)

#: Identity's PostgreSQL schema (its outbox too).
SCHEMA = "identity"
Pool = ConnectionPool[Connection[Any]]
#: (throttle kind, key, policy) of one counter an attempt is charged to.
Charge = tuple[str, str, ThrottlePolicy]
T = TypeVar("T")


class IdentityError(Exception):
    """Base of identity's refusals; ``str()`` is fit for an API answer."""


class InvalidCredentials(IdentityError):
    """Any failed login or refresh: one message, whatever failed."""

    def __init__(self, message: str = "invalid credentials") -> None:
        super().__init__(message)


class Throttled(IdentityError):
    """Too many attempts for the identifier or the address; retry after ``retry_after_s``."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__("too many attempts; try again later")
        self.retry_after_s = retry_after_s


class NotFoundError(IdentityError):
    pass


class ConflictError(IdentityError):
    pass


class RefusedError(IdentityError):
    """A request the rules refuse (weak password, scope beyond the role, spent token)."""


#: The settings' defaults: 5 failures per identifier in 15 minutes lock it for 15 minutes
#: (doubling, at most a day); 50 attempts per address in 15 minutes throttle it for the rest
#: of the window; 3 reset mails per address in 15 minutes.
PER_IDENTIFIER = ThrottlePolicy(5, 900, 900, 86_400)
PER_ADDRESS = ThrottlePolicy(50, 900, 900, 900)
RESET_REQUESTS = ThrottlePolicy(3, 900, 900, 900)


@dataclass(frozen=True)
class IdentityOptions:
    """Lifetimes (seconds) and throttles; :meth:`from_settings` reads them from the
    ``POTR_IDENTITY_*`` settings."""

    access_ttl_s: int = 900
    refresh_ttl_s: int = 14 * 86_400
    session_max_s: int = 30 * 86_400
    reset_ttl_s: int = 1800
    password: ThrottlePolicy = PER_IDENTIFIER
    pin: ThrottlePolicy = PER_IDENTIFIER
    address: ThrottlePolicy = PER_ADDRESS
    reset: ThrottlePolicy = RESET_REQUESTS

    @classmethod
    def from_settings(cls, s: IdentitySettings) -> IdentityOptions:
        per_identifier = ThrottlePolicy(
            s.identity_max_attempts,
            s.identity_attempt_window_s,
            s.identity_lockout_s,
            s.identity_max_lockout_s,
        )
        window = s.identity_attempt_window_s
        return cls(
            access_ttl_s=s.identity_access_ttl_s,
            refresh_ttl_s=s.identity_refresh_ttl_s,
            session_max_s=s.identity_session_max_s,
            reset_ttl_s=s.identity_reset_ttl_s,
            password=per_identifier,
            pin=per_identifier,
            address=ThrottlePolicy(s.identity_address_max_attempts, window, window, window),
            reset=ThrottlePolicy(s.identity_reset_max_requests, window, window, window),
        )


@dataclass(frozen=True)
class ResetMail:
    """A reset to send: the token goes to ``to`` and nowhere else."""

    to: str
    display_name: str
    token: str
    expires_at: datetime


def _contact(user: User) -> UserContact:
    return UserContact(user_id=user.id, home_region=user.home_region, email=user.email)


def _changed(user: User) -> UserChanged:
    return UserChanged(
        user_id=user.id,
        role=user.role.value,
        home_region=user.home_region,
        account_id=user.account_id,
        employee_no=user.employee_no,
        broker_username=user.broker_username,
        disabled=user.disabled,
    )


#: Unique constraints of ``identity.users`` → the field a conflict names.
_UNIQUE_FIELDS = {
    "users_email_idx": "email",
    "users_employee_no_key": "employee_no",
    "users_broker_username_key": "broker_username",
}


class IdentityService:
    """Thread-safe (each call takes a pooled connection); blocking: call it from a
    thread (the routes use the thread pool)."""

    def __init__(
        self,
        pool: Pool,
        key: SigningKey,
        hasher: CredentialHasher,
        options: IdentityOptions | None = None,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._pool = pool
        self._key = key
        self._hasher = hasher
        self._options = options or IdentityOptions()
        self._clock = clock
        self._public = VerifyingKeys([key.public_key])

    @property
    def public_keys(self) -> VerifyingKeys:
        """The public half of the signing key (what regional APIs are given)."""
        return self._public

    @property
    def options(self) -> IdentityOptions:
        return self._options

    def ping(self) -> None:
        ping(self._pool)

    # -- throttles ------------------------------------------------------------------------
    def _admit(
        self,
        charges: Sequence[Charge],
        now: datetime,
        lookup: Callable[[Connection[Any]], T],
    ) -> tuple[list[Admission], T]:
        """Count one attempt on every counter, or none when one is locked; then
        ``lookup`` (who the attempt names) in the same transaction, one round trip less."""
        with self._pool.connection() as conn:
            # The counters' rows stay locked until commit: not waiting for the WAL flush
            # halves that time on a hot row (one office's address). A crash may forget
            # the last fraction of a second's counts; nothing else is written here.
            conn.execute("SET LOCAL synchronous_commit TO off")
            # One lock order for every process: no deadlock between two attempts.
            order = sorted(range(len(charges)), key=lambda i: charges[i][:2])
            states = {i: repo.lock_throttle(conn, *charges[i][:2], now) for i in order}
            admissions = [admit(states[i], now, charges[i][2]) for i in range(len(charges))]
            refused = [a.retry_after_s for a in admissions if not a.allowed]
            if not refused:
                for (kind, key, _), a in zip(charges, admissions, strict=True):
                    repo.store_throttle(conn, kind, key, a.state)
                found = lookup(conn)
        if refused:
            raise Throttled(max(refused))
        return admissions, found

    def _settle(
        self, conn: Connection[Any], charges: Sequence[Charge], admissions: Sequence[Admission]
    ) -> None:
        """After a success: the identifier's counter is cleared, the address refunded."""
        for (kind, key, _), a in sorted(zip(charges, admissions, strict=True), key=_by_key):
            state = repo.lock_throttle(conn, kind, key, a.state.window_start)
            repo.store_throttle(conn, kind, key, after_success(state, a, forget=kind != "address"))

    def _fail(
        self,
        action: str,
        record: repo.UserRecord | None,
        identifier: str,
        address: str,
        admissions: Sequence[Admission],
        now: datetime,
        reason: str,
    ) -> InvalidCredentials:
        user_id = record.user.id if record else None
        shown = None if record else fingerprint(identifier)
        with self._pool.connection() as conn:
            repo.insert_audit(
                conn,
                now,
                action,
                user_id=user_id,
                identifier=shown,
                address=address,
                detail={"reason": reason},
            )
            if any(a.locked_now for a in admissions):
                until = max(a.state.locked_until or now for a in admissions if a.locked_now)
                repo.insert_audit(
                    conn,
                    now,
                    "login.locked",
                    user_id=user_id,
                    identifier=shown,
                    address=address,
                    detail={"via": action, "until": until.isoformat()},
                )
        return InvalidCredentials()

    # -- logins ---------------------------------------------------------------------------
    def login(self, email: str, password: str, address: str | None) -> TokenPair:
        """A session for ``email`` + ``password``; :class:`Throttled`, or
        :class:`InvalidCredentials` for any failure."""
        now, where = self._clock(), address_key(address)
        charges = [
            ("address", where, self._options.address),
            ("password", identifier_key("password", email), self._options.password),
        ]
        admissions, record = self._admit(charges, now, lambda c: repo.find_by_email(c, email))
        verified = self._hasher.verify_password(record.password_hash if record else None, password)
        reason = _why_not(record, verified.ok)
        if record is None or reason:
            raise self._fail("login.failed", record, email, where, admissions, now, reason)
        rehashed = self._hasher.hash_password(password) if verified.rehash else None
        with self._pool.connection() as conn:
            self._settle(conn, charges, admissions)
            if rehashed:
                repo.set_password_hash(conn, record.user.id, rehashed, now)
            repo.insert_audit(
                conn, now, "login.succeeded", user_id=record.user.id, address=where,
                detail={"via": "password"},
            )  # fmt: skip
            return self._start_session(conn, record.user, now)

    def pin_login(self, employee_no: str, pin: str, address: str | None) -> TokenPair:
        """A session for an employee number + PIN (employees and MOSIEs)."""
        now, where = self._clock(), address_key(address)
        number = employee_no.strip().upper()
        charges = [
            ("address", where, self._options.address),
            ("pin", identifier_key("pin", number), self._options.pin),
        ]
        admissions, record = self._admit(
            charges, now, lambda c: repo.find_by_employee_no(c, number)
        )
        verified = self._hasher.verify_pin(record.pin_hash if record else None, pin)
        reason = _why_not(record, verified.ok)
        if record is None or reason:
            raise self._fail("pin_login.failed", record, number, where, admissions, now, reason)
        with self._pool.connection() as conn:
            self._settle(conn, charges, admissions)
            repo.insert_audit(
                conn, now, "login.succeeded", user_id=record.user.id, address=where,
                detail={"via": "pin"},
            )  # fmt: skip
            return self._start_session(conn, record.user, now)

    def api_key_login(self, api_key: str, address: str | None) -> AccessToken:
        """An access token (no refresh token) for a machine client's API key, with the
        key's scopes within its owner's role."""
        now, where = self._clock(), address_key(address)
        charges = [("address", where, self._options.address)]
        key_id = parse_api_key(api_key)

        def lookup(conn: Connection[Any]) -> tuple[repo.KeyRecord | None, repo.UserRecord | None]:
            found = repo.get_api_key(conn, key_id) if key_id else None
            return found, repo.get_user(conn, found.key.user_id) if found else None

        admissions, (found, owner) = self._admit(charges, now, lookup)
        reason = _why_not_key(found, owner, api_key, now)
        if found is None or owner is None or reason:
            raise self._fail(
                "api_key.failed", owner, key_id or "malformed", where, admissions, now, reason
            )
        scopes = set(found.key.scopes) & ROLE_SCOPES[owner.user.role]
        with self._pool.connection() as conn:
            self._settle(conn, charges, admissions)
            repo.touch_api_key(conn, found.key.id, now)
        token = self._access_token(owner.user, now, scopes)
        return AccessToken(access_token=token, expires_in=self._options.access_ttl_s)

    # -- sessions -------------------------------------------------------------------------
    def _access_token(self, user: User, now: datetime, scopes: set[str] | None = None) -> str:
        return issue_access_token(
            self._key,
            subject=user.id,
            role=user.role,
            region=user.home_region,
            scopes=ROLE_SCOPES[user.role] if scopes is None else scopes,
            account_id=user.account_id,
            employee_no=user.employee_no,
            ttl_s=self._options.access_ttl_s,
            now=now,
        )

    def _start_session(
        self,
        conn: Connection[Any],
        user: User,
        now: datetime,
        *,
        family: UUID | None = None,
        parent: bytes | None = None,
        family_expires_at: datetime | None = None,
    ) -> TokenPair:
        opts = self._options
        ends = family_expires_at or now + timedelta(seconds=opts.session_max_s)
        expires = min(now + timedelta(seconds=opts.refresh_ttl_s), ends)
        refresh = new_opaque_token("rt")
        repo.insert_refresh(
            conn,
            token_hash(refresh),
            family_id=family or uuid4(),
            user_id=user.id,
            parent_hash=parent,
            issued_at=now,
            expires_at=expires,
            family_expires_at=ends,
        )
        return TokenPair(
            access_token=self._access_token(user, now),
            expires_in=opts.access_ttl_s,
            refresh_token=refresh,
            refresh_expires_in=int((expires - now).total_seconds()),
        )

    def refresh(self, refresh_token: str) -> TokenPair:
        """The next token pair of the session; a token used before revokes its whole
        family (it was copied: whoever holds the newest one is thrown out too)."""
        now, hashed = self._clock(), token_hash(refresh_token)
        with self._pool.connection() as conn:
            found = repo.get_refresh_for_update(conn, hashed)
            if found is None or found.revoked_at is not None:
                raise InvalidCredentials("invalid refresh token")
            if found.used_at is not None:
                revoked = repo.revoke_family(conn, found.family_id, now)
                repo.insert_audit(
                    conn, now, "refresh.reused", user_id=found.user_id,
                    detail={"family": str(found.family_id), "revoked": revoked},
                )  # fmt: skip
                pair = None
            elif now >= min(found.expires_at, found.family_expires_at):
                raise InvalidCredentials("invalid refresh token")
            else:
                owner = repo.get_user(conn, found.user_id)
                assert owner is not None, "refresh_tokens.user_id is a foreign key"
                if owner.user.disabled:
                    repo.revoke_family(conn, found.family_id, now)
                    pair = None
                else:
                    repo.mark_refresh_used(conn, hashed, now)
                    pair = self._start_session(
                        conn,
                        owner.user,
                        now,
                        family=found.family_id,
                        parent=hashed,
                        family_expires_at=found.family_expires_at,
                    )
        if pair is None:  # after the commit: the revocation stands
            raise InvalidCredentials("invalid refresh token")
        return pair

    def logout(self, refresh_token: str, *, everywhere: bool = False) -> None:
        """End the session of ``refresh_token`` (``everywhere``: every session of its
        user). Unknown or spent tokens are ignored: the answer is the same."""
        now = self._clock()
        with self._pool.connection() as conn:
            found = repo.get_refresh_for_update(conn, token_hash(refresh_token))
            if found is None:
                return
            if everywhere:
                repo.revoke_user_sessions(conn, found.user_id, now)
            else:
                repo.revoke_family(conn, found.family_id, now)
            repo.insert_audit(
                conn, now, "logout", user_id=found.user_id, detail={"everywhere": everywhere}
            )

    # -- password reset -------------------------------------------------------------------
    def request_password_reset(self, email: str, address: str | None) -> ResetMail | None:
        """A one-time token for ``email``'s user (None when there is no such enabled
        user: the caller answers the same either way and sends mail only when given one)."""
        now, where = self._clock(), address_key(address)
        charges = [
            ("address", where, self._options.address),
            ("reset", identifier_key("reset", email), self._options.reset),
        ]
        self._admit(charges, now, lambda _: None)
        with self._pool.connection() as conn:
            record = repo.find_by_email(conn, email)
            if record is None or record.user.disabled:
                repo.insert_audit(
                    conn, now, "password_reset.requested", identifier=fingerprint(email),
                    address=where, detail={"sent": False},
                )  # fmt: skip
                return None
            token = new_opaque_token("prt")
            expires = now + timedelta(seconds=self._options.reset_ttl_s)
            repo.insert_reset(conn, token_hash(token), record.user.id, now, expires)
            repo.insert_audit(
                conn, now, "password_reset.requested", user_id=record.user.id, address=where,
                detail={"sent": True},
            )  # fmt: skip
            return ResetMail(record.user.email, record.user.display_name, token, expires)

    def confirm_password_reset(self, token: str, new_password: str) -> None:
        """Set the password of the token's user; the token and any other open one are
        spent, every session ends and the user's password lock-out is lifted.
        :class:`RefusedError` for an unknown, spent or expired token, or a weak password."""
        now, hashed = self._clock(), token_hash(token)
        with self._pool.connection() as conn:
            found = repo.get_reset_for_update(conn, hashed)
            owner = repo.get_user(conn, found.user_id) if found else None
        if found is None or owner is None or found.used_at or now >= found.expires_at:
            raise RefusedError("invalid or expired reset token")
        problem = password_problem(new_password, owner.user.email)
        if problem:
            raise RefusedError(problem)
        new_hash = self._hasher.hash_password(new_password)
        with self._pool.connection() as conn:
            again = repo.get_reset_for_update(conn, hashed)
            if again is None or again.used_at is not None:
                raise RefusedError("invalid or expired reset token")
            user_id = owner.user.id
            repo.set_password_hash(conn, user_id, new_hash, now)
            repo.use_user_resets(conn, user_id, now)
            repo.revoke_user_sessions(conn, user_id, now)
            repo.clear_throttles(conn, [("password", identifier_key("password", owner.user.email))])
            repo.insert_audit(conn, now, "password_reset.completed", user_id=user_id)

    # -- users ----------------------------------------------------------------------------
    def create_user(self, data: UserIn, *, actor: str | None = None) -> UserCreated:
        """A new user; an employee number gets a first PIN (returned once)."""
        if data.employee_no is not None and data.role is Role.CUSTOMER:
            raise RefusedError("customers have no employee number")
        if data.password is not None and (problem := password_problem(data.password, data.email)):
            raise RefusedError(problem)
        password_hash = self._hasher.hash_password(data.password) if data.password else None
        pin = new_pin() if data.employee_no else None
        pin_hash = self._hasher.hash_pin(pin) if pin else None
        now = self._clock()
        fields = data.model_dump(exclude={"password"}, mode="json") | {"id": f"usr_{uuid4().hex}"}
        try:
            with self._pool.connection() as conn:
                user = repo.insert_user(
                    conn, fields, password_hash=password_hash, pin_hash=pin_hash, now=now
                )
                emit(conn, SCHEMA, user_event(USER_CREATED, _changed(user), occurred_at=now))
                if user.role in EMPLOYEE_ROLES:  # staff mail; a customer's is their account's
                    emit(conn, SCHEMA, contact_event(_contact(user), occurred_at=now))
                repo.insert_audit(
                    conn, now, "user.created", user_id=user.id, actor=actor,
                    detail={"role": user.role.value, "region": user.home_region.value},
                )  # fmt: skip
        except UniqueViolation as exc:
            field = _UNIQUE_FIELDS.get(exc.diag.constraint_name or "", "a unique field")
            raise ConflictError(f"a user with this {field} exists") from None
        return UserCreated(**user.model_dump(), pin=pin)

    def get_user(self, user_id: str) -> User | None:
        with self._pool.connection() as conn:
            record = repo.get_user(conn, user_id)
        return record.user if record else None

    def find_user(self, key: str) -> User | None:
        """By id (``usr_…``), e-mail address (has ``@``) or employee number."""
        with self._pool.connection() as conn:
            if key.startswith("usr_"):
                record = repo.get_user(conn, key)
            elif "@" in key:
                record = repo.find_by_email(conn, key)
            else:
                record = repo.find_by_employee_no(conn, key.strip().upper())
        return record.user if record else None

    def list_users(
        self,
        *,
        role: Role | None = None,
        region: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[User]:
        with self._pool.connection() as conn:
            return repo.list_users(
                conn, role=role.value if role else None, region=region, limit=limit, offset=offset
            )

    def _existing(self, conn: Connection[Any], user_id: str) -> User:
        record = repo.get_user(conn, user_id, lock=True)
        if record is None:
            raise NotFoundError(f"user {user_id} does not exist")
        return record.user

    def update_user(self, user_id: str, patch: UserPatch, *, actor: str | None = None) -> User:
        """Change a user's name, role, home region or account (a role change is audited
        and takes effect at their next refresh, within 15 minutes)."""
        changes = patch.model_dump(exclude_unset=True, mode="json")
        required = [k for k in ("display_name", "role", "home_region") if k in changes]
        if any(changes[k] is None for k in required):
            raise RefusedError("display_name, role and home_region cannot be emptied")
        now = self._clock()
        with self._pool.connection() as conn:
            before = self._existing(conn, user_id)
            if changes.get("role") == Role.CUSTOMER and before.employee_no:
                raise RefusedError("a user with an employee number cannot be a customer")
            if not changes:
                return before
            after = repo.update_user(conn, user_id, changes, now)
            assert after is not None
            emit(conn, SCHEMA, user_event(USER_UPDATED, _changed(after), occurred_at=now))
            if after.role in EMPLOYEE_ROLES and before.role not in EMPLOYEE_ROLES:
                emit(conn, SCHEMA, contact_event(_contact(after), occurred_at=now))
            if after.role != before.role:
                repo.insert_audit(
                    conn, now, "role.changed", user_id=user_id, actor=actor,
                    detail={"from": before.role.value, "to": after.role.value},
                )  # fmt: skip
            return after

    def disable_user(self, user_id: str, *, actor: str | None = None) -> User:
        """Disable a user and end every session of theirs; the ``user.disabled`` event
        names their broker identity, if any, for revocation at the broker."""
        if actor == user_id:
            raise RefusedError("you cannot disable yourself")
        now = self._clock()
        with self._pool.connection() as conn:
            current = self._existing(conn, user_id)
            if current.disabled:
                return current
            user = repo.set_disabled(conn, user_id, now, now)
            assert user is not None
            sessions = repo.revoke_user_sessions(conn, user_id, now)
            emit(conn, SCHEMA, user_event(USER_DISABLED, _changed(user), occurred_at=now))
            repo.insert_audit(
                conn, now, "user.disabled", user_id=user_id, actor=actor,
                detail={"sessions_revoked": sessions, "broker_username": user.broker_username},
            )  # fmt: skip
            return user

    def enable_user(self, user_id: str, *, actor: str | None = None) -> User:
        now = self._clock()
        with self._pool.connection() as conn:
            current = self._existing(conn, user_id)
            if not current.disabled:
                return current
            user = repo.set_disabled(conn, user_id, None, now)
            assert user is not None
            emit(conn, SCHEMA, user_event(USER_ENABLED, _changed(user), occurred_at=now))
            repo.insert_audit(conn, now, "user.enabled", user_id=user_id, actor=actor)
            return user

    def unlock(self, user_id: str, *, actor: str | None = None) -> User:
        """Lift the user's password and PIN lock-outs (their addresses' counters stay)."""
        now = self._clock()
        with self._pool.connection() as conn:
            user = self._existing(conn, user_id)
            keys = [("password", identifier_key("password", user.email))]
            if user.employee_no:
                keys.append(("pin", identifier_key("pin", user.employee_no)))
            repo.clear_throttles(conn, keys)
            repo.insert_audit(conn, now, "user.unlocked", user_id=user_id, actor=actor)
            return user

    def reset_pin(self, user_id: str, *, actor: str | None = None) -> PinReset:
        """A new random PIN for an employee (returned once) and their PIN lock-out lifted."""
        pin = new_pin()
        pin_hash = self._hasher.hash_pin(pin)
        now = self._clock()
        with self._pool.connection() as conn:
            user = self._existing(conn, user_id)
            if user.employee_no is None:
                raise RefusedError(f"user {user_id} has no employee number, so no PIN")
            repo.set_pin_hash(conn, user_id, pin_hash, now)
            repo.clear_throttles(conn, [("pin", identifier_key("pin", user.employee_no))])
            repo.insert_audit(conn, now, "pin.reset", user_id=user_id, actor=actor)
        return PinReset(user_id=user_id, pin=pin)

    # -- API keys -------------------------------------------------------------------------
    def create_api_key(
        self, user_id: str, data: ApiKeyIn, *, actor: str | None = None
    ) -> ApiKeyCreated:
        """A key for a machine client acting as ``user_id``, with scopes within the user's
        role; the key is returned once, only its SHA-256 is kept."""
        key_id, key = new_api_key()
        now = self._clock()
        with self._pool.connection() as conn:
            user = self._existing(conn, user_id)
            beyond = set(data.scopes) - ROLE_SCOPES[user.role]
            if beyond:
                raise RefusedError(f"role {user.role.value} may not hold {sorted(beyond)}")
            if user.disabled:
                raise RefusedError(f"user {user_id} is disabled")
            expires = now + timedelta(days=data.expires_in_days) if data.expires_in_days else None
            made = repo.insert_api_key(
                conn,
                key_id,
                token_hash(key),
                user_id=user_id,
                name=data.name,
                scopes=sorted(set(data.scopes)),
                now=now,
                expires_at=expires,
            )
            repo.insert_audit(
                conn, now, "api_key.created", user_id=user_id, actor=actor,
                detail={"key_id": key_id, "scopes": made.scopes},
            )  # fmt: skip
        return ApiKeyCreated(**made.model_dump(), key=key)

    def list_api_keys(self, user_id: str) -> list[ApiKey]:
        with self._pool.connection() as conn:
            self._existing(conn, user_id)
            return repo.list_api_keys(conn, user_id)

    def revoke_api_key(self, key_id: str, *, actor: str | None = None) -> ApiKey:
        now = self._clock()
        with self._pool.connection() as conn:
            revoked = repo.revoke_api_key(conn, key_id, now)
            if revoked is None:
                raise NotFoundError(f"API key {key_id} does not exist")
            repo.insert_audit(
                conn, now, "api_key.revoked", user_id=revoked.user_id, actor=actor,
                detail={"key_id": key_id},
            )  # fmt: skip
            return revoked

    # -- audit and housekeeping -----------------------------------------------------------
    def audit_log(
        self, *, user_id: str | None = None, action: str | None = None, limit: int = 100
    ) -> list[AuditEntry]:
        """The newest entries first."""
        with self._pool.connection() as conn:
            return repo.list_audit(conn, user_id=user_id, action=action, limit=limit)

    def purge(self, *, older_than_s: float = 86_400) -> int:
        """Delete counters and tokens that ended more than ``older_than_s`` ago."""
        with self._pool.connection() as conn:
            return repo.purge(conn, self._clock() - timedelta(seconds=older_than_s))


def _by_key(pair: tuple[Charge, Admission]) -> tuple[str, str]:
    return pair[0][0], pair[0][1]


def _why_not(record: repo.UserRecord | None, verified: bool) -> str:
    """Why a verified-or-not credential does not log in ("" when it does): for the audit
    only — the caller's answer is the same whatever the reason."""
    if record is None:
        return "unknown identifier"
    if not verified:
        return "wrong secret"
    if record.user.disabled:
        return "disabled"
    return ""


def _why_not_key(
    found: repo.KeyRecord | None, owner: repo.UserRecord | None, api_key: str, now: datetime
) -> str:
    if found is None or owner is None:
        return "unknown key"
    if not hmac.compare_digest(found.secret_hash, token_hash(api_key)):
        return "wrong secret"
    if found.key.revoked_at is not None:
        return "revoked"
    if found.key.expires_at is not None and now >= found.key.expires_at:
        return "expired"
    if owner.user.disabled:
        return "disabled"
    return ""


def create_identity_service(settings: IdentitySettings, pool: Pool) -> IdentityService:
    """The service from its settings over ``pool``: the signing key (refused when missing,
    or a demo key in production: :class:`~cloud.keyfiles.KeyFileError`), the PIN pepper,
    the argon2id cost and the throttles."""
    production = settings.env == "production"
    key = load_signing_key(settings.identity_signing_key_file, production=production)
    hasher = CredentialHasher(
        settings.pin_pepper(),
        memory_kib=settings.identity_argon2_memory_kib,
        time_cost=settings.identity_argon2_time_cost,
        concurrency=settings.identity_hash_concurrency,
    )
    return IdentityService(pool, key, hasher, IdentityOptions.from_settings(settings))
