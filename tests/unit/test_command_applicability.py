"""Whether a command applies to a device as it is now (``device_profiles.applicability``).

The expectations are the isolator's documented behaviour (its profile's description:
1 opens, 2 closes, 3 resets a trip; a tripped isolator refuses to close until reset, and
a reset leaves it open), written out here by hand, not derived from the code.
"""

from __future__ import annotations

import pytest

from device_profiles import builtin_profile
from device_profiles.applicability import (
    Applicability,
    decide_command,
    state_points,
)
from device_profiles.loader import parse_profile
from device_profiles.schema import DeviceProfile

OPEN, CLOSED, TRIPPED = 0.0, 1.0, 2.0
APPLIES, IN_EFFECT, NOT_APPLICABLE = (
    Applicability.APPLIES,
    Applicability.IN_EFFECT,
    Applicability.NOT_APPLICABLE,
)


@pytest.fixture(scope="module")
def isolator() -> DeviceProfile:
    return builtin_profile("sim-isolator")


def _decide(profile: DeviceProfile, name: str, state: dict[str, float | None]) -> Applicability:
    command = profile.command(name)
    assert command is not None
    return decide_command(profile, command, state).applicability


@pytest.mark.parametrize(
    ("name", "state", "expected"),
    [
        ("open", CLOSED, APPLIES),
        ("open", OPEN, IN_EFFECT),
        ("open", TRIPPED, NOT_APPLICABLE),  # already off the line: reset_trip opens it
        ("close", OPEN, APPLIES),
        ("close", CLOSED, IN_EFFECT),
        ("close", TRIPPED, NOT_APPLICABLE),  # the device refuses until reset
        ("reset_trip", TRIPPED, APPLIES),
        ("reset_trip", OPEN, IN_EFFECT),  # not tripped and open: what a reset leaves
        ("reset_trip", CLOSED, NOT_APPLICABLE),  # nothing to reset; closed stays closed
    ],
)
def test_every_isolator_command_in_every_state(
    isolator: DeviceProfile, name: str, state: float, expected: Applicability
) -> None:
    assert _decide(isolator, name, {"vendor.state": state}) == expected


def test_a_not_applicable_command_says_what_it_needs_and_what_the_device_shows(
    isolator: DeviceProfile,
) -> None:
    command = isolator.command("reset_trip")
    assert command is not None
    decision = decide_command(isolator, command, {"vendor.state": CLOSED})
    assert decision.detail == (
        "not applicable: reset_trip applies only while vendor.state is 2 (TRIPPED);"
        " it reads 1 (CLOSED); nothing written"
    )


def test_an_effect_already_shown_says_so(isolator: DeviceProfile) -> None:
    command = isolator.command("open")
    assert command is not None
    decision = decide_command(isolator, command, {"vendor.state": OPEN})
    assert decision.detail == "already in effect: vendor.state=0 (OPEN); nothing written"


def test_a_state_point_not_implemented_satisfies_nothing(isolator: DeviceProfile) -> None:
    assert _decide(isolator, "close", {"vendor.state": None}) == NOT_APPLICABLE
    assert _decide(isolator, "close", {}) == NOT_APPLICABLE


def test_the_points_to_read_are_effects_then_preconditions_once(isolator: DeviceProfile) -> None:
    command = isolator.command("reset_trip")
    assert command is not None
    assert state_points(command) == ["vendor.state"]


def _profile(command: dict[str, object]) -> DeviceProfile:
    return parse_profile(
        {
            "name": "two-point",
            "kind": "isolator",
            "manufacturer": "test",
            "model": "T",
            "vendor_map": {
                "registers": [
                    {"name": "state", "address": 0, "type": "uint16"},
                    {"name": "ready", "address": 1, "type": "uint16"},
                    {"name": "command", "address": 2, "type": "uint16", "access": "RW"},
                ]
            },
            "settings": [
                {
                    "name": "command",
                    "point": "vendor.command",
                    "min": 0,
                    "max": 9,
                    "source": "vendor",
                }
            ],
            "commands": [command],
        }
    )


def test_a_command_without_declared_effect_or_precondition_always_applies() -> None:
    profile = _profile({"name": "go", "writes": [{"point": "vendor.command", "value": 1}]})
    command = profile.commands[0]
    assert state_points(command) == []
    assert decide_command(profile, command, {}).applicability == APPLIES


def test_every_effect_must_show_and_every_precondition_hold() -> None:
    profile = _profile(
        {
            "name": "go",
            "writes": [{"point": "vendor.command", "value": 1}],
            "expect": [{"point": "vendor.state", "value": 5}],
            "requires": [
                {"point": "vendor.state", "values": [3, 4]},
                {"point": "vendor.ready", "values": [1]},
            ],
        }
    )
    command = profile.commands[0]
    assert state_points(command) == ["vendor.state", "vendor.ready"]

    def decide(state: dict[str, float | None]) -> Applicability:
        return decide_command(profile, command, state).applicability

    assert decide({"vendor.state": 5, "vendor.ready": 0}) == IN_EFFECT  # effect first
    assert decide({"vendor.state": 4, "vendor.ready": 1}) == APPLIES
    assert decide({"vendor.state": 3, "vendor.ready": 1}) == APPLIES
    assert decide({"vendor.state": 4, "vendor.ready": 0}) == NOT_APPLICABLE
    assert decide({"vendor.state": 2, "vendor.ready": 1}) == NOT_APPLICABLE
