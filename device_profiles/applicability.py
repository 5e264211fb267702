"""Does a command apply to the device as it is now? A pure decision over profile data.

A command may declare its effect (``expect``: what the device shows once it was carried
out) and its preconditions (``requires``: the states it applies in). Before any write
the agent reads those points and asks :func:`decide_command`:

* every declared effect already shows → :attr:`Applicability.IN_EFFECT`: answered
  ``done`` without a write (re-sending a command whose first answer was lost, or opening
  an open isolator, is not an error, and writing again would only wear the device);
* a precondition does not hold → :attr:`Applicability.NOT_APPLICABLE`: ``rejected``
  without a write (resetting the trip of an isolator that is not tripped has no effect
  to wait for: answered at once instead of failing after the effect timeout);
* otherwise → :attr:`Applicability.APPLIES`: write, then wait for the effect.

The effect is checked first, so a command is idempotent: its retry answers ``done``.
Values are engineering units as read (vendor registers: their raw value); a point that
reads "not implemented" (``None``) never satisfies an effect or a precondition.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from device_profiles.schema import Command, DeviceProfile, PointRef

__all__ = ["Applicability", "CommandDecision", "decide_command", "state_points"]


class Applicability(StrEnum):
    APPLIES = "applies"
    IN_EFFECT = "already in effect"
    NOT_APPLICABLE = "not applicable"


@dataclass(frozen=True, slots=True)
class CommandDecision:
    """What to do with a command, and ``detail``: why (the ack's detail when nothing
    is written; empty when the command applies)."""

    applicability: Applicability
    detail: str = ""


def state_points(command: Command) -> list[str]:
    """The points to read before deciding: effects, then preconditions, each once."""
    refs = [e.point for e in command.expect] + [c.point for c in command.requires]
    return list(dict.fromkeys(refs))


def _same(actual: float | None, expected: float) -> bool:
    return actual is not None and math.isclose(actual, expected, rel_tol=0.0, abs_tol=1e-9)


def _shown(profile: DeviceProfile, ref: str, value: float | None) -> str:
    """``value`` as read, with its vendor symbol (``2 (TRIPPED)``) where the map has one."""
    if value is None:
        return "not implemented"
    text = f"{value:g}"
    parsed = PointRef.parse(ref)
    if parsed.model is None and profile.vendor_map is not None:
        register = profile.vendor_map.register(parsed.path)
        names = [n for n, v in (register.symbols if register else {}).items() if v == value]
        if names:
            text += f" ({names[0]})"
    return text


def decide_command(
    profile: DeviceProfile, command: Command, state: Mapping[str, float | None]
) -> CommandDecision:
    """Decide ``command`` of ``profile`` on a device whose :func:`state_points` read
    ``state`` (point reference → value; a missing point counts as not implemented)."""
    if command.expect and all(_same(state.get(e.point), e.value) for e in command.expect):
        shown = ", ".join(
            f"{e.point}={_shown(profile, e.point, state.get(e.point))}" for e in command.expect
        )
        return CommandDecision(
            Applicability.IN_EFFECT, f"already in effect: {shown}; nothing written"
        )
    for condition in command.requires:
        actual = state.get(condition.point)
        if not any(_same(actual, v) for v in condition.values):
            wanted = " or ".join(_shown(profile, condition.point, v) for v in condition.values)
            return CommandDecision(
                Applicability.NOT_APPLICABLE,
                f"not applicable: {command.name} applies only while {condition.point} is"
                f" {wanted}; it reads {_shown(profile, condition.point, actual)};"
                " nothing written",
            )
    return CommandDecision(Applicability.APPLIES)
