"""Pure parts of the agent's control path: register encoding, read-back comparison,
config_state bodies, and the durable control store."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import pytest

from device_profiles import builtin_profile
from edge_agent.config_report import (
    applied_body,
    device_outcome,
    drift_body,
    failed_body,
    pending_detail,
    refused_body,
    setting_for_point,
    without_pending_details,
)
from edge_agent.control_store import ControlStore, HandledConfig
from edge_agent.device_writer import no_answer
from edge_agent.setpoint_codec import (
    CodecError,
    Located,
    decode_value,
    encode_value,
    locate,
    same_value,
)

DER = builtin_profile("sim-der-inverter")


def _der_blocks() -> dict[int, tuple[int, int]]:
    from device_profiles.sunspec_codec import layout

    blocks, addr = {}, 40002
    for model in DER.models:
        length = layout(model, DER.group_counts.get(model, {})).length
        blocks[model] = (addr, length)
        addr += 2 + length
    return blocks


def test_a_curve_point_is_located_in_the_staging_curve_with_its_scale_factor() -> None:
    blocks = _der_blocks()
    point = locate(DER, blocks, "705.Crv.Pt.V", "Crv[2].Pt[0].V")
    assert point.ref == "705.Crv[2].Pt[0].V"
    assert point.address > blocks[705][0]
    assert point.sf_address is not None
    assert point.sf_address < point.address


def test_a_layout_that_does_not_match_the_discovered_length_is_refused() -> None:
    blocks = _der_blocks()
    blocks[705] = (blocks[705][0], blocks[705][1] + 1)
    with pytest.raises(CodecError, match="length"):
        locate(DER, blocks, "705.Ena")


def _int16(sf_address: int | None = 1) -> Located:
    return Located("1.X", 10, 1, "int16", True, sf_address, None)


def test_encoding_divides_by_the_scale_factor_and_decodes_back() -> None:
    words = encode_value(_int16(), 230.4, -1)
    assert words == [2304]
    assert decode_value(_int16(), words, -1) == pytest.approx(230.4)
    assert encode_value(_int16(), -5, 0) == [0xFFFB]


@pytest.mark.parametrize("value", [3276.8, -3276.8, 1e30])
def test_a_value_that_does_not_fit_the_register_is_refused(value: float) -> None:
    with pytest.raises(CodecError, match="outside int16"):
        encode_value(_int16(), value, -1)


def test_a_missing_scale_factor_or_a_non_finite_value_is_refused() -> None:
    with pytest.raises(CodecError, match="scale factor"):
        encode_value(_int16(), 1.0, None)
    with pytest.raises(CodecError, match="finite"):
        encode_value(_int16(), float("nan"), 0)


def test_uint16_never_encodes_its_not_implemented_sentinel() -> None:
    with pytest.raises(CodecError):
        encode_value(Located("1.U", 0, 1, "uint16", True), 65535, None)


def test_read_back_is_equal_within_half_the_resolution() -> None:
    assert same_value(42.5, 42.0, 0)
    assert not same_value(42.6, 42.0, 0)
    assert same_value(230.04, 230.0, -1)
    assert not same_value(1.0, None, 0)


def test_config_state_bodies() -> None:
    body = failed_body(3, "sha256:x", ["INV-1", "bad id!"], "devices.INV-1.x: unknown")
    assert body["devices"] == {"INV-1": "failed"}
    assert refused_body(body, "stale version: 2")["version"] == 3
    assert refused_body(None, "unsigned: no")["detail"] == "refused config: unsigned: no"
    applied = {**body, "status": "applied", "devices": {"INV-1": "applied"}}
    assert drift_body(applied, ["INV-1.power_limit_pct"])["status"] == "drifted"
    assert drift_body(applied, [])["status"] == "applied"
    assert setting_for_point(DER, "705.Crv[2].Pt[0].V") == "volt_var_v_pct"


def test_the_control_store_keeps_seen_ids_and_the_handled_config(tmp_path: Path) -> None:
    path = tmp_path / "control.sqlite"
    store = ControlStore(path)
    command = uuid4()
    expires = datetime(2030, 1, 1, tzinfo=UTC)
    store.remember(command, expires)
    store.save_handled(
        HandledConfig(7, "sha256:y", {"version": 7, "status": "applied"}),
        {"INV-1": {"power_limit_pct": 80, "volt_var_v_pct": [90, 100]}},
    )
    store.close()
    again = ControlStore(path)
    assert again.seen() == [(command, expires)]
    handled = again.handled()
    assert handled is not None
    assert (handled.version, handled.state["status"]) == (7, "applied")
    assert again.effective()["INV-1"]["volt_var_v_pct"] == [90, 100]
    again.forget([command])
    assert again.seen() == []
    again.close()


def test_drift_marks_the_drifted_devices_and_clearing_restores_their_status() -> None:
    """Device ids may hold dots; setting names never do."""
    body = {
        "version": 3,
        "status": "failed",
        "devices": {"INV.a-1": "applied", "BAT-1": "applied", "MTR-1": "failed"},
        "drift": [],
    }
    drifted = drift_body(body, ["INV.a-1.power_limit_pct", "MTR-1.v_ref"])
    assert drifted["status"] == "drifted"
    assert drifted["devices"] == {"INV.a-1": "drifted", "BAT-1": "applied", "MTR-1": "failed"}
    assert drifted["drift"] == ["INV.a-1.power_limit_pct", "MTR-1.v_ref"]
    cleared = drift_body(drifted, [])
    assert cleared["devices"] == body["devices"]
    assert cleared["status"] == "failed"
    assert cleared["drift"] == []


@pytest.mark.parametrize(
    ("reason", "ok", "expected"),
    [
        ("connect", False, "pending"),  # TCP refused: asleep at night
        ("timeout", False, "pending"),
        ("io", False, "pending"),  # the connection broke
        ("exception", False, "failed"),  # the device answered "no"
        ("exception", True, "applied"),
    ],
)
def test_no_answer_keeps_a_device_pending_and_a_refusal_fails_it(
    reason: str, ok: bool, expected: str
) -> None:
    """Decision 153: only a device that does not answer waits; an answer that refuses
    (or a read-back that differs: never a no-answer) stays a failure."""
    assert device_outcome(ok, unreachable=no_answer(reason)) == expected


def test_a_pending_device_makes_the_config_pending_unless_another_failed() -> None:
    note = pending_detail("INV-1", "asleep: connect: refused; retry")
    assert "; " not in note  # one detail part
    pending = applied_body(4, "sha256:z", {"INV-1": "pending", "BAT-1": "applied"}, {}, [note])
    assert pending["status"] == "pending"
    failed = applied_body(
        4, "sha256:z", {"INV-1": "pending", "MTR-1": "failed"}, {}, [note, "MTR-1.v_ref: no"]
    )
    assert failed["status"] == "failed"
    assert without_pending_details(failed["detail"], ["INV-1"]) == ["MTR-1.v_ref: no"]
    assert drift_body(pending, [])["status"] == "pending"
    assert drift_body(pending, ["BAT-1.min_reserve_pct"])["devices"] == {
        "INV-1": "pending",
        "BAT-1": "drifted",
    }


def test_the_control_store_keeps_pending_settings_until_replaced(tmp_path: Path) -> None:
    path = tmp_path / "control.sqlite"
    store = ControlStore(path)
    body = {"version": 5, "status": "pending"}
    store.save_handled(HandledConfig(5, "sha256:p", body), {}, {"INV-1": {"power_limit_pct": 55}})
    store.save_handled(HandledConfig(5, "sha256:p", body), {})  # a drift save keeps them
    store.close()
    again = ControlStore(path)
    assert again.pending() == {"INV-1": {"power_limit_pct": 55}}
    again.save_handled(HandledConfig(6, "sha256:q", body), {}, {})  # a newer version
    assert again.pending() == {}
    again.close()
