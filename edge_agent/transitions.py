"""State transitions of a device, told as events (``isolator_opened`` …): pure logic.

Which metric holds a device's state and which value raises which event is data — the
device profile's ``state_events`` — not code. A transition is a change between two
readings of the same device that both carry a value for the state metric: the first
reading after the agent starts only sets the baseline (a restart must not flood the
cloud with the current state of every device; the state itself is in the telemetry),
and a reading without the value (not available) leaves the baseline where it was, so
a change across it is still told once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from contracts.events import GatewayEvent, StateTransition
from contracts.messages import Reading
from device_profiles.schema import StateEvents


def state_transition(
    rule: StateEvents, previous: Reading | None, current: Reading
) -> GatewayEvent | None:
    """The event for the state change from ``previous`` to ``current`` of one device;
    None when there is no change, no baseline, no value, or the new value raises nothing."""
    value = current.values.get(rule.metric)
    before = None if previous is None else previous.values.get(rule.metric)
    if value is None or before is None or value == before:
        return None
    event = rule.event_for(value)
    if event is None or event == rule.event_for(before):
        return None
    detail = StateTransition(metric=rule.metric, value=value, previous=before, ts=current.ts)
    return GatewayEvent(type=event, detail=detail, device=current.device)


@dataclass(slots=True)
class StateWatch:
    """One device's baseline: the last reading that carried its state metric."""

    rule: StateEvents
    baseline: Reading | None = field(default=None)

    def observe(self, reading: Reading) -> GatewayEvent | None:
        """The transition ``reading`` shows, if any; it becomes the baseline when it
        carries the state."""
        event = state_transition(self.rule, self.baseline, reading)
        if reading.values.get(self.rule.metric) is not None:
            self.baseline = reading
        return event
