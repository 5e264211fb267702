"""Verification of signed ``cmd`` and ``config`` documents, shared by agent and simulators.

Pure: no I/O, no clock (``now`` is passed in), no MQTT. A document is trusted only if
every check passes, in this order:

1. it is a JSON object, signed (``sig``) by a key id (``kid``) in the trusted set, and the
   signature matches the document **as received** (never a re-serialised model);
2. it meets the message schema (:class:`~contracts.messages.CommandMsg` /
   :class:`~contracts.messages.ConfigDoc`);
3. it is addressed to this gateway;
4. for a config, its version is not older than the applied one (equal = a no-op that
   re-reports ``config_state``, even after ``not_after``: nothing is written);
5. it has not expired (``expires_at`` / ``not_after`` ≤ ``now`` is expired);
6. for a command, its id was not seen before (:class:`ReplayGuard`).

Anything else raises :class:`ControlRefusal` with the ack ``status`` (``rejected`` or
``expired``), a :class:`RefusalCode` and a ``reason`` naming what was wrong.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol, TypeVar
from uuid import UUID

import orjson
from pydantic import BaseModel, ValidationError

from contracts.messages import AckStatus, CommandMsg, ConfigDoc, summarise_validation_error
from contracts.signing import SignatureError, TrustedKeys, canonical_bytes
from contracts.timeutil import to_wire

__all__ = [
    "ConfigAction",
    "ConfigVerdict",
    "ControlRefusal",
    "RefusalCode",
    "ReplayGuard",
    "SeenStore",
    "command_document",
    "config_document",
    "config_hash",
    "document_id",
    "verify_command",
    "verify_config",
]


class RefusalCode(StrEnum):
    """Why a document was refused (the first word of :attr:`ControlRefusal.reason`)."""

    UNSIGNED = "unsigned"
    BAD_SIGNATURE = "bad signature"
    UNTRUSTED_KEY = "untrusted key"
    SCHEMA_INVALID = "schema-invalid"
    WRONG_GATEWAY = "wrong gateway"
    EXPIRED = "expired"
    REPLAYED = "replayed"
    STALE_VERSION = "stale version"
    TOO_LONG_LIVED = "expiry too far ahead"
    REPLAY_GUARD_FULL = "replay guard full"


class ControlRefusal(Exception):
    """A refused ``cmd``/``config``: the ack ``status``, a ``code`` and a ``reason``.

    ``document_id`` is the command id (or ``None`` when the document had none that
    parses), so the agent can still answer ``cmd_ack``.
    """

    def __init__(
        self,
        status: AckStatus,
        reason: str,
        *,
        code: RefusalCode,
        document_id: UUID | None = None,
    ) -> None:
        if status not in (AckStatus.REJECTED, AckStatus.EXPIRED):
            raise ValueError(f"a refusal is rejected or expired, not {status.value}")
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.code = code
        self.document_id = document_id


def _refuse(code: RefusalCode, detail: str, document_id: UUID | None = None) -> ControlRefusal:
    status = AckStatus.EXPIRED if code is RefusalCode.EXPIRED else AckStatus.REJECTED
    return ControlRefusal(status, f"{code.value}: {detail}", code=code, document_id=document_id)


# --- replay guard ---------------------------------------------------------------------


class SeenStore(Protocol):
    """Where a :class:`ReplayGuard` persists seen ids (the agent implements it)."""

    def remember(self, command_id: UUID, expires_at: datetime) -> None:
        """Record ``command_id`` as seen until ``expires_at``; durable on return."""

    def forget(self, command_ids: Iterable[UUID]) -> None:
        """Drop ids whose commands have expired (they are refused as expired anyway)."""


class ReplayGuardFull(Exception):
    """Every slot holds an id whose command has not expired yet."""


class ReplayGuard:
    """A bounded set of seen command ids, each kept until its command expires.

    An id can be dropped once its ``expires_at`` has passed: the expiry check refuses
    that command from then on. The set is bounded by ``capacity``; ``max_lifetime``
    bounds how far ahead a command may expire, so a full guard empties in time. When it
    is full of unexpired ids a new command is refused rather than an id forgotten early.
    Load persisted entries with ``seen=``; ``store`` (optional) is told of every change.
    """

    def __init__(
        self,
        capacity: int = 10_000,
        *,
        max_lifetime: timedelta = timedelta(days=7),
        seen: Iterable[tuple[UUID, datetime]] = (),
        store: SeenStore | None = None,
    ) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self.max_lifetime = max_lifetime
        self._store = store
        self._expiry: dict[UUID, datetime] = {}
        self._heap: list[tuple[datetime, UUID]] = []
        for command_id, expires_at in seen:
            self._insert(command_id, expires_at)

    def __len__(self) -> int:
        return len(self._expiry)

    def __contains__(self, command_id: object) -> bool:
        return command_id in self._expiry

    def _insert(self, command_id: UUID, expires_at: datetime) -> None:
        self._expiry[command_id] = expires_at
        heapq.heappush(self._heap, (expires_at, command_id))

    def purge(self, now: datetime) -> list[UUID]:
        """Drop ids whose commands expired at or before ``now``; return them."""
        dropped: list[UUID] = []
        while self._heap and self._heap[0][0] <= now:
            expires_at, command_id = heapq.heappop(self._heap)
            if self._expiry.get(command_id) == expires_at:
                del self._expiry[command_id]
                dropped.append(command_id)
        if dropped and self._store is not None:
            self._store.forget(dropped)
        return dropped

    def remember(self, command_id: UUID, expires_at: datetime, now: datetime) -> None:
        """Record a verified command; :class:`ReplayGuardFull` if no slot is free."""
        self.purge(now)
        if command_id in self._expiry:
            return
        if len(self._expiry) >= self.capacity:
            raise ReplayGuardFull(f"{len(self._expiry)} unexpired command ids held")
        if self._store is not None:
            self._store.remember(command_id, expires_at)
        self._insert(command_id, expires_at)


# --- verification -----------------------------------------------------------------------


_M = TypeVar("_M", bound=BaseModel)


def document_id(raw: object) -> UUID | None:
    """A parsed document's ``id`` if it is a UUID string, else ``None`` (trust it only
    once the document is verified)."""
    if isinstance(raw, Mapping):
        value = raw.get("id")
        if isinstance(value, str):
            try:
                return UUID(value)
            except ValueError:
                return None
    return None


def _check_now(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")


def _verified(
    raw: object, model: type[_M], trusted: TrustedKeys, doc_id: UUID | None, what: str
) -> _M:
    """Signature on the raw mapping first, then the schema."""
    if not isinstance(raw, Mapping):
        raise _refuse(
            RefusalCode.SCHEMA_INVALID,
            f"a {what} is a JSON object, not {type(raw).__name__}",
            doc_id,
        )
    sig, kid = raw.get("sig"), raw.get("kid")
    if sig is None or sig == "":
        raise _refuse(RefusalCode.UNSIGNED, f"the {what} has no signature", doc_id)
    if not isinstance(sig, str):
        raise _refuse(RefusalCode.BAD_SIGNATURE, "sig is not a string", doc_id)
    if not isinstance(kid, str) or kid not in trusted.kids():
        shown = repr(kid) if isinstance(kid, str) or kid is None else type(kid).__name__
        raise _refuse(RefusalCode.UNTRUSTED_KEY, f"key id {shown} is not trusted", doc_id)
    try:
        trusted.verify(raw)
    except SignatureError as exc:
        raise _refuse(RefusalCode.BAD_SIGNATURE, str(exc), doc_id) from None
    # Strict JSON-mode validation: no coercion ("4" is not a version), wire strings for
    # times and ids. The signature was checked on ``raw`` above, not on these bytes.
    try:
        return model.model_validate_json(orjson.dumps(dict(raw)), strict=True)
    except orjson.JSONEncodeError as exc:
        raise _refuse(RefusalCode.SCHEMA_INVALID, f"not JSON: {exc}", doc_id) from None
    except ValidationError as exc:
        raise _refuse(RefusalCode.SCHEMA_INVALID, summarise_validation_error(exc), doc_id) from None


def _addressed(gateway_id: str, expected: str, doc_id: UUID | None, what: str) -> None:
    if gateway_id != expected:
        raise _refuse(
            RefusalCode.WRONG_GATEWAY,
            f"the {what} is for gateway {gateway_id!r}, this is {expected!r}",
            doc_id,
        )


def verify_command(
    raw: Mapping[str, Any],
    *,
    gateway_id: str,
    trusted: TrustedKeys,
    now: datetime,
    seen: ReplayGuard,
) -> CommandMsg:
    """The verified command, recorded in ``seen``; else :class:`ControlRefusal`."""
    _check_now(now)
    doc_id = document_id(raw)
    cmd = _verified(raw, CommandMsg, trusted, doc_id, "command")
    _addressed(cmd.gateway_id, gateway_id, cmd.id, "command")
    if cmd.expires_at <= now:
        raise _refuse(
            RefusalCode.EXPIRED, f"expires_at {cmd.expires_at.isoformat()} is past", cmd.id
        )
    if cmd.expires_at - now > seen.max_lifetime:
        raise _refuse(
            RefusalCode.TOO_LONG_LIVED,
            f"expires_at {cmd.expires_at.isoformat()} is more than {seen.max_lifetime} ahead",
            cmd.id,
        )
    if cmd.id in seen:
        raise _refuse(RefusalCode.REPLAYED, f"command {cmd.id} was already received", cmd.id)
    try:
        seen.remember(cmd.id, cmd.expires_at, now)
    except ReplayGuardFull as exc:
        raise _refuse(RefusalCode.REPLAY_GUARD_FULL, str(exc), cmd.id) from None
    return cmd


def command_document(
    command_id: UUID,
    gateway_id: str,
    name: str,
    device: str | None,
    args: Mapping[str, Any],
    expires_at: datetime,
    issued_by: str,
) -> dict[str, Any]:
    """The unsigned ``cmd`` document (:class:`~contracts.messages.CommandMsg`), values as
    given (a test may hand in wrong types on purpose); sign it with
    :func:`contracts.signing.sign_document`."""
    return {
        "v": 1,
        "id": str(command_id),
        "gateway_id": gateway_id,
        "name": name,
        "device": device,
        "args": args,
        "expires_at": to_wire(expires_at),
        "issued_by": issued_by,
    }


def config_document(
    gateway_id: str,
    version: int,
    profile: Mapping[str, Any],
    devices: Mapping[str, Any],
    not_after: datetime,
    issued_by: str,
) -> dict[str, Any]:
    """The unsigned ``config`` document (:class:`~contracts.messages.ConfigDoc`), values
    as given."""
    return {
        "v": 1,
        "gateway_id": gateway_id,
        "version": version,
        "profile": profile,
        "devices": devices,
        "not_after": to_wire(not_after),
        "issued_by": issued_by,
    }


def config_hash(document: Mapping[str, Any]) -> str:
    """``sha256:<hex>`` of a config document's canonical form (its ``sig`` excluded):
    the same on the cloud (what it signed) and the gateway (what it applied)."""
    return "sha256:" + hashlib.sha256(canonical_bytes(document)).hexdigest()


class ConfigAction(StrEnum):
    APPLY = "apply"
    #: The applied version again: write nothing, re-report ``config_state``.
    REREPORT = "rereport"


@dataclass(frozen=True, slots=True)
class ConfigVerdict:
    doc: ConfigDoc
    action: ConfigAction


def verify_config(
    raw: Mapping[str, Any],
    *,
    gateway_id: str,
    trusted: TrustedKeys,
    now: datetime,
    applied_version: int | None,
    applied_hash: str | None = None,
) -> ConfigVerdict:
    """What to do with a received config document; else :class:`ControlRefusal`.

    ``applied_hash`` (the :func:`config_hash` of the applied version's document), when
    given, tells a re-delivery of that version from a *different* document with the same
    number (a cloud that lost its versions): refused as stale, never taken as a no-op.
    """
    _check_now(now)
    doc = _verified(raw, ConfigDoc, trusted, None, "config")
    _addressed(doc.gateway_id, gateway_id, None, "config")
    if applied_version is not None:
        if doc.version < applied_version:
            raise _refuse(
                RefusalCode.STALE_VERSION,
                f"version {doc.version} is older than the applied version {applied_version}",
            )
        if doc.version == applied_version:
            if applied_hash is not None and config_hash(raw) != applied_hash:
                raise _refuse(
                    RefusalCode.STALE_VERSION,
                    f"version {doc.version} was applied from a different document"
                    " (a new config needs a new version)",
                )
            return ConfigVerdict(doc, ConfigAction.REREPORT)
    if doc.not_after <= now:
        raise _refuse(RefusalCode.EXPIRED, f"not_after {doc.not_after.isoformat()} is past")
    return ConfigVerdict(doc, ConfigAction.APPLY)
