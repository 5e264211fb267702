"""The config service's pure rules: command status, config reports, versions, rollback,
holds while a technician is on site."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from cloud.config.logic import (
    RollbackError,
    command_transition,
    config_report_changed,
    device_status,
    hold_change,
    next_version,
    overdue_before,
    rollback_target,
    shown_command_status,
    shown_config_status,
)
from contracts.control import command_document
from contracts.messages import CommandMsg

NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "closed_by", "ack", "expected"),
    [
        ("pending", None, "accepted", ("accepted", False)),
        ("pending", None, "done", ("done", True)),
        ("accepted", None, "done", ("done", True)),
        ("accepted", None, "failed", ("failed", True)),
        ("pending", None, "rejected", ("rejected", True)),
        ("pending", None, "expired", ("expired", True)),
        ("accepted", None, "accepted", None),
        ("done", "gateway", "failed", None),
        ("done", "gateway", "accepted", None),
        ("rejected", "gateway", "done", None),
        ("expired", "gateway", "done", None),
        ("expired", "cloud", "done", ("done", True)),
        ("expired", "cloud", "accepted", None),
        ("expired", "cloud", "expired", None),
    ],
)
def test_command_status_moves_only_forward(
    status: str, closed_by: str | None, ack: str, expected: tuple[str, bool] | None
) -> None:
    step = command_transition(status, closed_by, ack, "")  # type: ignore[arg-type]
    assert (None if step is None else (step.status, step.final)) == expected


def test_a_replayed_rejection_answers_a_duplicate_delivery_and_is_ignored() -> None:
    assert command_transition("accepted", None, "rejected", "replayed: command x") is None
    assert command_transition("pending", None, "rejected", "replayed: command x") is None


def test_a_command_is_overdue_after_its_expiry_plus_grace() -> None:
    assert overdue_before(NOW, 10) == NOW - timedelta(seconds=10)


def test_config_reports_are_news_only_when_status_version_or_drift_change() -> None:
    assert config_report_changed(None, 1, "applied", [])
    assert not config_report_changed(None, 1, "pending", [])
    assert not config_report_changed((1, "applied", []), 1, "applied", [])
    assert config_report_changed((1, "applied", []), 2, "applied", [])
    assert config_report_changed((1, "applied", []), 1, "drifted", ["inv.v_ref"])
    assert not config_report_changed((1, "drifted", ["a.x", "b.y"]), 1, "drifted", ["b.y", "a.x"])
    assert config_report_changed((1, "drifted", ["a.x"]), 1, "drifted", ["a.x", "b.y"])


def test_a_device_is_pending_until_it_reports_the_desired_version() -> None:
    assert device_status("applied", 1, 2) == "pending"
    assert device_status(None, None, 1) == "pending"
    assert device_status("applied", 2, 2) == "applied"
    assert device_status("drifted", 2, None) == "drifted"
    # While the desired version is held, a device not yet at it shows held.
    assert device_status("applied", 1, 2, held=True) == "held"
    assert device_status("applied", 2, 2, held=True) == "applied"


def test_a_work_order_on_site_holds_exactly_its_listed_gateways_and_off_site_none() -> None:
    arrived = hold_change(True, [], ["gw-a", "gw-b"])
    assert (arrived.hold, arrived.release) == ({"gw-a", "gw-b"}, set())
    # The same state again changes nothing; a site whose gateway list changed moves the hold.
    again = hold_change(True, ["gw-a", "gw-b"], ["gw-b", "gw-a"])
    assert (again.hold, again.release) == (set(), set())
    moved = hold_change(True, ["gw-a", "gw-b"], ["gw-b", "gw-c"])
    assert (moved.hold, moved.release) == ({"gw-c"}, {"gw-a"})
    left = hold_change(False, ["gw-a", "gw-b"], ["gw-a", "gw-b"])
    assert (left.hold, left.release) == (set(), {"gw-a", "gw-b"})
    assert hold_change(False, [], ["gw-a"]).hold == set()


@pytest.mark.parametrize(
    ("status", "published", "held_by", "shown"),
    [
        ("pending", False, [7], "held"),
        ("pending", False, [], "pending"),
        ("pending", True, [7], "pending"),  # out before the technician came
        ("accepted", True, [7], "accepted"),
        ("expired", False, [7], "expired"),  # expired while held: ends expired
    ],
)
def test_a_command_shows_held_only_while_it_waits_unpublished(
    status: str, published: bool, held_by: list[int], shown: str
) -> None:
    assert shown_command_status(status, published, held_by) == shown


def test_a_config_version_shows_its_publishing_status() -> None:
    assert shown_config_status(True, True, [7]) == "published"
    assert shown_config_status(False, False, [7]) == "superseded"
    assert shown_config_status(False, True, [7]) == "held"
    assert shown_config_status(False, True, []) == "pending"


def test_versions_are_monotonic_from_one() -> None:
    assert next_version(None) == 1
    assert next_version(7) == 8


def test_rollback_defaults_to_the_version_before_the_current_one() -> None:
    assert rollback_target([1, 2, 3], None) == 2
    assert rollback_target([1, 2, 3], 1) == 1


@pytest.mark.parametrize(
    ("versions", "to_version", "why"),
    [
        ([], None, "no config"),
        ([1], None, "only version"),
        ([1, 2], 2, "already the current"),
        ([1, 2], 5, "does not exist"),
    ],
)
def test_rollback_refuses_without_an_earlier_version(
    versions: list[int], to_version: int | None, why: str
) -> None:
    with pytest.raises(RollbackError, match=why):
        rollback_target(versions, to_version)


def test_the_command_document_meets_the_wire_schema() -> None:
    doc = command_document(
        uuid4(), "gw-one", "set_power_limit", "SN1", {"pct": 50}, NOW, "ops@example"
    )
    msg = CommandMsg.model_validate(doc)
    assert msg.expires_at == NOW
    assert msg.args == {"pct": 50}


def test_the_cloud_reads_a_reported_nameplate_as_the_gateway_does() -> None:
    """A device reporting WRtg 3000 W limits w_max to 3000 W on the cloud too (the
    profile says 5000 W): the API must refuse what the gateway would refuse."""
    from cloud.config.errors import RefusedError
    from cloud.config.repository import KnownDevice
    from cloud.config.validation import check_config
    from device_profiles import builtin_profiles

    devices = {"INV-1": KnownDevice("INV-1", "sim-inverter-103", {"WRtg": 3000.0, "VRtg": None})}
    check_config("gw-1", {"INV-1": {"w_max": 3000}}, devices, builtin_profiles())
    with pytest.raises(RefusedError) as refused:
        check_config("gw-1", {"INV-1": {"w_max": 4500}}, devices, builtin_profiles())
    assert refused.value.field == "devices.INV-1.w_max"
    assert "3000" in refused.value.limit
