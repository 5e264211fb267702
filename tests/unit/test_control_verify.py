"""contracts.control: every refusal reason of signed commands and configs, and rotation."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from contracts.control import (
    ConfigAction,
    ControlRefusal,
    RefusalCode,
    ReplayGuard,
    config_hash,
    verify_command,
    verify_config,
)
from contracts.messages import AckStatus
from contracts.signing import SigningKey, TrustedKeys, sign_document

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
GW = "gw-0001"
KEY = SigningKey.generate()


def _wire(ts: datetime) -> str:
    return ts.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def command(**over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "v": 1,
        "id": str(uuid.uuid4()),
        "gateway_id": GW,
        "name": "set_power_limit",
        "device": "SN1",
        "args": {"pct": 50},
        "expires_at": _wire(NOW + timedelta(minutes=5)),
        "issued_by": "ops@potr",
    }
    doc.update(over)
    return doc


def config(**over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "v": 1,
        "gateway_id": GW,
        "version": 3,
        "profile": {"id": "au-default", "region": "au", "version": 1},
        "devices": {"SN1": {"power_limit_pct": 80}},
        "not_after": _wire(NOW + timedelta(days=1)),
        "issued_by": "ops@potr",
    }
    doc.update(over)
    return doc


def received(doc: dict[str, Any]) -> dict[str, Any]:
    """As the agent gets it: JSON on the wire, parsed again."""
    parsed: dict[str, Any] = json.loads(json.dumps(doc, indent=2))
    return parsed


def trusted(*keys: SigningKey) -> TrustedKeys:
    return TrustedKeys([k.public_key for k in keys or (KEY,)])


def verify_cmd(raw: Any, guard: ReplayGuard | None = None, **kw: Any) -> Any:
    return verify_command(
        raw,
        gateway_id=kw.get("gateway_id", GW),
        trusted=kw.get("trusted", trusted()),
        now=kw.get("now", NOW),
        seen=guard if guard is not None else ReplayGuard(),
    )


def verify_cfg(raw: Any, applied: int | None = None, **kw: Any) -> Any:
    return verify_config(
        raw,
        gateway_id=kw.get("gateway_id", GW),
        trusted=kw.get("trusted", trusted()),
        now=kw.get("now", NOW),
        applied_version=applied,
        applied_hash=kw.get("applied_hash"),
    )


def refusal(fn: Any, *args: Any, **kw: Any) -> ControlRefusal:
    with pytest.raises(ControlRefusal) as info:
        fn(*args, **kw)
    return info.value


# --- commands -------------------------------------------------------------------------


def test_a_signed_command_verifies_and_is_remembered() -> None:
    guard = ReplayGuard()
    doc = sign_document(command(), KEY)
    cmd = verify_cmd(received(doc), guard)
    assert cmd.name == "set_power_limit"
    assert cmd.args == {"pct": 50}
    assert UUID(doc["id"]) in guard


def test_a_replayed_command_is_rejected() -> None:
    guard = ReplayGuard()
    doc = sign_document(command(), KEY)
    verify_cmd(received(doc), guard)
    err = refusal(verify_cmd, received(doc), guard)
    assert (err.status, err.code) == (AckStatus.REJECTED, RefusalCode.REPLAYED)
    assert err.document_id == UUID(doc["id"])
    assert err.reason.startswith("replayed:")


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda d: d.pop("sig"), RefusalCode.UNSIGNED),
        (lambda d: d.__setitem__("sig", ""), RefusalCode.UNSIGNED),
        (lambda d: d.pop("kid"), RefusalCode.UNTRUSTED_KEY),
        (lambda d: d.__setitem__("kid", "0000000000000000"), RefusalCode.UNTRUSTED_KEY),
        (lambda d: d.__setitem__("sig", "***"), RefusalCode.BAD_SIGNATURE),
        (lambda d: d.__setitem__("sig", 12), RefusalCode.BAD_SIGNATURE),
        (lambda d: d["args"].__setitem__("pct", 100), RefusalCode.BAD_SIGNATURE),
        (lambda d: d.__setitem__("gateway_id", "gw-0002"), RefusalCode.BAD_SIGNATURE),
        (lambda d: d.__setitem__("extra", 1), RefusalCode.BAD_SIGNATURE),
    ],
)
def test_forged_commands_are_rejected(mutate: Any, code: RefusalCode) -> None:
    doc = received(sign_document(command(), KEY))
    mutate(doc)
    err = refusal(verify_cmd, doc)
    assert (err.status, err.code) == (AckStatus.REJECTED, code)
    assert err.reason.startswith(code.value + ":")
    assert err.document_id == UUID(doc["id"])  # the agent can still ack it


def test_a_command_signed_by_an_untrusted_key_is_rejected() -> None:
    other = SigningKey.generate()
    err = refusal(verify_cmd, received(sign_document(command(), other)))
    assert err.code is RefusalCode.UNTRUSTED_KEY
    assert other.kid in err.reason


def test_a_command_for_another_gateway_is_rejected() -> None:
    err = refusal(verify_cmd, received(sign_document(command(gateway_id="gw-0002"), KEY)))
    assert (err.status, err.code) == (AckStatus.REJECTED, RefusalCode.WRONG_GATEWAY)
    assert "gw-0002" in err.reason


@pytest.mark.parametrize("delta", [timedelta(0), timedelta(seconds=-1), timedelta(days=-3)])
def test_an_expired_command_is_refused_as_expired(delta: timedelta) -> None:
    guard = ReplayGuard()
    doc = sign_document(command(expires_at=_wire(NOW + delta)), KEY)
    err = refusal(verify_cmd, received(doc), guard)
    assert (err.status, err.code) == (AckStatus.EXPIRED, RefusalCode.EXPIRED)
    assert len(guard) == 0


def test_a_command_expiring_too_far_ahead_is_rejected() -> None:
    guard = ReplayGuard(max_lifetime=timedelta(hours=1))
    doc = sign_document(command(expires_at=_wire(NOW + timedelta(hours=2))), KEY)
    err = refusal(verify_cmd, received(doc), guard)
    assert err.code is RefusalCode.TOO_LONG_LIVED


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"v": 2}, "v"),
        ({"id": "not-a-uuid"}, "id"),
        ({"expires_at": "tomorrow"}, "expires_at"),
        ({"expires_at": "2026-11-26T13:00:00"}, "expires_at"),  # naive
        ({"args": [1, 2]}, "args"),
        ({"device": "bad id/with slash"}, "device"),
        ({"unexpected": True}, "unexpected"),
        ({"gateway_id": "GW_UPPER"}, "gateway_id"),
        ({"args": {"pct": 5}, "name": 7}, "name"),
    ],
)
def test_a_schema_invalid_command_is_rejected_naming_the_field(
    over: dict[str, Any], field: str
) -> None:
    err = refusal(verify_cmd, received(sign_document(command(**over), KEY)))
    assert (err.status, err.code) == (AckStatus.REJECTED, RefusalCode.SCHEMA_INVALID)
    assert field in err.reason


@pytest.mark.parametrize("raw", [None, [], "cmd", 3])
def test_a_non_object_is_rejected(raw: Any) -> None:
    err = refusal(verify_cmd, raw)
    assert err.code is RefusalCode.SCHEMA_INVALID
    assert err.document_id is None


def test_truncated_documents_are_rejected() -> None:
    doc = received(sign_document(command(), KEY))
    for key in list(doc):
        if key in ("sig", "kid"):
            continue
        cut = {k: v for k, v in doc.items() if k != key}
        err = refusal(verify_cmd, cut)
        assert err.code is RefusalCode.BAD_SIGNATURE, key


def test_a_document_signed_without_a_required_field_is_schema_invalid() -> None:
    doc = command()
    del doc["issued_by"]
    err = refusal(verify_cmd, received(sign_document(doc, KEY)))
    assert err.code is RefusalCode.SCHEMA_INVALID
    assert "issued_by" in err.reason


def test_signature_is_checked_on_the_raw_mapping() -> None:
    # What was signed is what was received: non-ASCII and floats verify byte for byte.
    doc = received(sign_document(command(args={"pct": 50.5, "note": "é"}), KEY))
    cmd = verify_cmd(doc)
    assert cmd.args == {"pct": 50.5, "note": "é"}


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError, match="timezone"):
        verify_cmd(received(sign_document(command(), KEY)), now=NOW.replace(tzinfo=None))


# --- replay guard ---------------------------------------------------------------------


class Store:
    def __init__(self) -> None:
        self.ids: dict[UUID, datetime] = {}

    def remember(self, command_id: UUID, expires_at: datetime) -> None:
        self.ids[command_id] = expires_at

    def forget(self, command_ids: Any) -> None:
        for c in command_ids:
            self.ids.pop(c, None)


def test_replay_guard_forgets_only_expired_ids_and_persists_through_its_store() -> None:
    store = Store()
    guard = ReplayGuard(capacity=2, store=store)
    a = sign_document(command(expires_at=_wire(NOW + timedelta(minutes=1))), KEY)
    b = sign_document(command(expires_at=_wire(NOW + timedelta(minutes=10))), KEY)
    c = sign_document(command(expires_at=_wire(NOW + timedelta(minutes=10))), KEY)
    verify_cmd(received(a), guard)
    verify_cmd(received(b), guard)
    assert set(store.ids) == {UUID(a["id"]), UUID(b["id"])}
    # full of unexpired ids: refuse rather than forget one early
    err = refusal(verify_cmd, received(c), guard)
    assert err.code is RefusalCode.REPLAY_GUARD_FULL
    later = NOW + timedelta(minutes=2)
    verify_cmd(received(c), guard, now=later)  # a expired → its slot is free
    assert UUID(a["id"]) not in guard
    assert set(store.ids) == {UUID(b["id"]), UUID(c["id"])}
    # a restarted agent loads what its store kept: b is still a replay
    reloaded = ReplayGuard(capacity=2, seen=store.ids.items())
    assert refusal(verify_cmd, received(b), reloaded, now=later).code is RefusalCode.REPLAYED


def test_a_replayed_command_after_its_expiry_is_refused_as_expired() -> None:
    guard = ReplayGuard()
    doc = sign_document(command(expires_at=_wire(NOW + timedelta(minutes=1))), KEY)
    verify_cmd(received(doc), guard)
    err = refusal(verify_cmd, received(doc), guard, now=NOW + timedelta(minutes=5))
    assert err.code is RefusalCode.EXPIRED


def test_replay_guard_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="capacity"):
        ReplayGuard(capacity=0)


def test_a_refusal_is_only_rejected_or_expired() -> None:
    with pytest.raises(ValueError, match="rejected or expired"):
        ControlRefusal(AckStatus.DONE, "x", code=RefusalCode.REPLAYED)


# --- configs --------------------------------------------------------------------------


def test_a_newer_config_is_applied() -> None:
    verdict = verify_cfg(received(sign_document(config(version=3), KEY)), applied=2)
    assert verdict.action is ConfigAction.APPLY
    assert verdict.doc.devices == {"SN1": {"power_limit_pct": 80}}


def test_the_first_config_is_applied() -> None:
    verdict = verify_cfg(received(sign_document(config(version=1), KEY)), applied=None)
    assert verdict.action is ConfigAction.APPLY


def test_the_applied_version_again_is_a_rereport_even_after_not_after() -> None:
    doc = received(sign_document(config(version=3), KEY))
    assert verify_cfg(doc, applied=3).action is ConfigAction.REREPORT
    later = NOW + timedelta(days=30)
    assert verify_cfg(doc, applied=3, now=later).action is ConfigAction.REREPORT


def test_the_applied_version_from_another_document_is_refused_not_rereported() -> None:
    applied = received(sign_document(config(version=3), KEY))
    other = config(version=3)
    other["devices"] = {"SN1": {"power_limit_pct": 20}}
    doc = received(sign_document(other, KEY))
    same = verify_cfg(applied, applied=3, applied_hash=config_hash(applied))
    assert same.action is ConfigAction.REREPORT
    err = refusal(verify_cfg, doc, applied=3, applied_hash=config_hash(applied))
    assert err.code is RefusalCode.STALE_VERSION
    assert "different document" in err.reason


def test_an_older_config_is_refused_as_stale() -> None:
    err = refusal(verify_cfg, received(sign_document(config(version=2), KEY)), applied=3)
    assert (err.status, err.code) == (AckStatus.REJECTED, RefusalCode.STALE_VERSION)
    assert "version 2 is older than the applied version 3" in err.reason


@pytest.mark.parametrize("delta", [timedelta(0), timedelta(hours=-1)])
def test_an_expired_config_is_refused(delta: timedelta) -> None:
    doc = received(sign_document(config(not_after=_wire(NOW + delta)), KEY))
    err = refusal(verify_cfg, doc, applied=1)
    assert (err.status, err.code) == (AckStatus.EXPIRED, RefusalCode.EXPIRED)


def test_a_config_for_another_gateway_is_refused() -> None:
    err = refusal(verify_cfg, received(sign_document(config(gateway_id="gw-0009"), KEY)))
    assert err.code is RefusalCode.WRONG_GATEWAY


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda d: d.pop("sig"), RefusalCode.UNSIGNED),
        (lambda d: d.__setitem__("kid", "ffffffffffffffff"), RefusalCode.UNTRUSTED_KEY),
        (lambda d: d.__setitem__("version", 99), RefusalCode.BAD_SIGNATURE),
        (
            lambda d: d["devices"]["SN1"].__setitem__("power_limit_pct", 100),
            RefusalCode.BAD_SIGNATURE,
        ),
        (lambda d: d.pop("devices"), RefusalCode.BAD_SIGNATURE),
    ],
)
def test_forged_configs_are_refused(mutate: Any, code: RefusalCode) -> None:
    doc = copy.deepcopy(received(sign_document(config(), KEY)))
    mutate(doc)
    assert refusal(verify_cfg, doc, applied=1).code is code


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"version": 0}, "version"),
        ({"version": "4"}, "version"),
        ({"version": 4.0}, "version"),
        ({"profile": {"id": "x", "region": "zz", "version": 1}}, "profile.region"),
        ({"devices": {"SN1": 5}}, "devices"),
        ({"not_after": None}, "not_after"),
    ],
)
def test_schema_invalid_configs_are_refused(over: dict[str, Any], field: str) -> None:
    err = refusal(verify_cfg, received(sign_document(config(**over), KEY)))
    assert err.code is RefusalCode.SCHEMA_INVALID
    assert field in err.reason


# --- key rotation ---------------------------------------------------------------------


def test_key_rotation_old_and_new_trusted_then_old_retired() -> None:
    old, new = SigningKey.generate(), SigningKey.generate()
    both = trusted(old, new)
    guard = ReplayGuard()
    # during the rotation, documents signed by either key verify
    verify_cmd(received(sign_document(command(), old)), guard, trusted=both)
    verify_cmd(received(sign_document(command(), new)), guard, trusted=both)
    assert verify_cfg(received(sign_document(config(), old)), trusted=both).action == "apply"
    assert verify_cfg(received(sign_document(config(), new)), trusted=both).action == "apply"
    # after retiring the old key, only the new one is trusted
    both.retire(old.kid)
    err = refusal(verify_cmd, received(sign_document(command(), old)), guard, trusted=both)
    assert err.code is RefusalCode.UNTRUSTED_KEY
    verify_cmd(received(sign_document(command(), new)), guard, trusted=both)
