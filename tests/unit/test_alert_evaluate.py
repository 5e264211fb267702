"""Rule evaluation: thresholds with hysteresis and delays, state events, offline with
sleeping devices, completeness and shortfall, suppression, persistence — and, as
hypothesis properties, no double raise, no clear inside the deadband, delays respected
and a restart anywhere changing nothing.

Expected transitions are worked out by hand in each test from the samples it feeds.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud.alerts.evaluate import (
    Cleared,
    DayCompleteness,
    Evaluator,
    EvaluatorState,
    Occurrence,
    ProductionWindow,
    Raised,
    Sample,
    Subject,
    Transition,
    suppressed,
)
from cloud.alerts.rules import RuleSet, load_rules, parse_rules
from contracts.metrics import BY_NAME

BOUNDED = settings(
    max_examples=80,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
T0 = datetime(2026, 1, 10, 0, 0, tzinfo=UTC)
SITE = 7
GATEWAY = Subject(SITE, "gw-7")
METER = Subject(SITE, "gw-7", "meter-1")
INVERTER = Subject(SITE, "gw-7", "inv-1")
ISOLATOR = Subject(SITE, "gw-7", "iso-1")


def _min(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


@cache
def _default(region: str) -> RuleSet:
    """The shipped rules of ``region`` (read once: they are immutable)."""
    return load_rules(region)


def _rules(*rules: dict[str, Any]) -> RuleSet:
    return parse_rules("es", {"rules": list(rules)})


def _high(**change: Any) -> dict[str, Any]:
    """Voltage above 253 V, back below 250 V (deadband 3), 10 min on, 5 min off."""
    rule = {
        "id": "volts-high",
        "kind": "threshold",
        "severity": "medium",
        "title": "Voltage high",
        "metric": "grid_l1_v",
        "above": 253,
        "deadband": 3,
        "on_delay_s": 600,
        "off_delay_s": 300,
        "device_kinds": ["meter"],
    }
    return {**rule, **change}


def _volts(values: list[float], start_min: float = 0, subject: Subject = METER) -> list[Sample]:
    """One meter sample every 5 minutes from ``start_min``."""
    return [
        Sample(subject, "grid_l1_v", _min(start_min + 5 * i), v, "meter")
        for i, v in enumerate(values)
    ]


def _raised(rule_id: str, subject: Subject, minutes: float, value: float | None = None) -> Raised:
    return Raised(rule_id, subject, _min(minutes), value)


def _cleared(rule_id: str, subject: Subject, minutes: float, value: float | None = None) -> Cleared:
    return Cleared(rule_id, subject, _min(minutes), value)


# -- thresholds ------------------------------------------------------------------------------
def test_a_threshold_raises_only_once_beyond_for_the_on_delay() -> None:
    ev = Evaluator(_rules(_high()))
    # beyond from minute 5; at 10 only 5 min have passed; at 15 the 10 min are up
    out = ev.samples(_volts([240, 254, 255, 256]))
    assert out == [_raised("volts-high", METER, 15, 256)]


def test_a_threshold_without_on_delay_raises_at_the_first_sample_beyond() -> None:
    ev = Evaluator(_rules(_high(on_delay_s=0)))
    assert ev.samples(_volts([240, 253, 253.5])) == [_raised("volts-high", METER, 10, 253.5)]


def test_a_dip_before_the_on_delay_restarts_it() -> None:
    ev = Evaluator(_rules(_high()))
    # beyond at 0 and 5, 252 (in the deadband, not beyond) at 10: the delay starts again at
    # 15 and is up at 25
    out = ev.samples(_volts([254, 254, 252, 254, 254, 254]))
    assert out == [_raised("volts-high", METER, 25, 254)]


def test_a_chattering_signal_around_the_threshold_raises_once() -> None:
    ev = Evaluator(_rules(_high(on_delay_s=0, off_delay_s=0)))
    chatter = [254, 252, 253.5, 250.5, 255, 251, 253.1, 250] * 10
    assert ev.samples(_volts(chatter)) == [_raised("volts-high", METER, 0, 254)]


def test_it_clears_only_back_past_the_deadband_for_the_off_delay() -> None:
    ev = Evaluator(_rules(_high(on_delay_s=0)))
    values = [254, 251, 250, 249, 250.5, 249.9, 249, 249.5]
    # raised at 0; 251 and 250 are in the deadband; 249 at 15 starts the off delay, 250.5
    # at 20 ends it; 249.9 at 25 starts it again, 249.5 at 35 is 10 min later: cleared
    assert ev.samples(_volts(values)) == [
        _raised("volts-high", METER, 0, 254),
        _cleared("volts-high", METER, 30, 249),
    ]


def test_a_below_threshold_mirrors_an_above_one() -> None:
    low = _high(id="volts-low", above=None, below=207, on_delay_s=0, off_delay_s=0)
    ev = Evaluator(_rules(low))
    # below 207 raises; back above 210 clears; 209 is in the deadband
    assert ev.samples(_volts([230, 206, 209, 208, 210.5, 209])) == [
        _raised("volts-low", METER, 5, 206),
        _cleared("volts-low", METER, 20, 210.5),
    ]


def test_an_older_sample_is_ignored_and_counted_stale() -> None:
    ev = Evaluator(_rules(_high(on_delay_s=0, off_delay_s=0)))
    assert ev.samples(_volts([240], start_min=10)) == []
    late = _volts([260], start_min=5)  # older than the 240 at 10: ignored
    assert ev.samples(late) == []
    assert ev.stale == 1
    # samples of the same time are not stale (another reading of that moment)
    assert ev.samples(_volts([254], start_min=10)) == [_raised("volts-high", METER, 10, 254)]


def test_staleness_is_per_series_so_another_metric_of_an_older_time_counts() -> None:
    hz = {**_high(id="hz-high", metric="grid_hz", above=50.5, deadband=0.1), "on_delay_s": 0}
    ev = Evaluator(_rules(_high(on_delay_s=0), hz))
    out = ev.samples(
        [
            Sample(METER, "grid_l1_v", _min(10), 240, "meter"),
            Sample(METER, "grid_hz", _min(5), 50.7, "meter"),
        ]
    )
    assert out == [_raised("hz-high", METER, 5, 50.7)]
    assert ev.stale == 0


def test_device_kinds_select_the_rules_a_sample_meets() -> None:
    any_kind = _high(id="volts-any", above=260, on_delay_s=0, device_kinds=[])
    ev = Evaluator(_rules(_high(on_delay_s=0), any_kind))
    inverter = [Sample(INVERTER, "grid_l1_v", _min(0), 270, "inverter")]
    unknown = [Sample(GATEWAY, "grid_l1_v", _min(0), 270, None)]
    meter = [Sample(METER, "grid_l1_v", _min(0), 270, "meter")]
    assert ev.samples(inverter) == [_raised("volts-any", INVERTER, 0, 270)]
    assert ev.samples(unknown) == [_raised("volts-any", GATEWAY, 0, 270)]
    assert ev.samples(meter) == [
        _raised("volts-high", METER, 0, 270),
        _raised("volts-any", METER, 0, 270),
    ]


def test_only_the_thresholds_a_value_is_beyond_open_a_condition() -> None:
    levels = [(f"volts-{n}", n) for n in (250, 255, 260)]
    ev = Evaluator(_rules(*(_high(id=i, above=n, on_delay_s=0, off_delay_s=0) for i, n in levels)))
    assert ev.samples(_volts([256])) == [
        _raised("volts-250", METER, 0, 256),
        _raised("volts-255", METER, 0, 256),
    ]
    # 251 is back past volts-255's deadband (under 252) but not volts-250's (under 247)
    assert ev.samples(_volts([251], start_min=5)) == [_cleared("volts-255", METER, 5, 251)]


def test_metrics_without_rules_and_disabled_rules_raise_nothing() -> None:
    ev = Evaluator(_rules(_high(on_delay_s=0, enabled=False)))
    assert ev.samples(_volts([300])) == []
    assert ev.samples([Sample(METER, "grid_hz", T0, 70.0, "meter")]) == []


def test_battery_health_below_its_limit_raises() -> None:
    ev = Evaluator(_default("es"))  # battery-soh-low: below 70 % for a day, deadband 2
    battery = Subject(SITE, "gw-7", "bat-1")
    day = 24 * 60
    samples = [
        Sample(battery, "battery_soh_pct", _min(d * day), soh, "battery")
        for d, soh in enumerate([71, 69, 69.5, 68, 71, 72.5, 73])
    ]
    # below from day 1, a day later (day 2) raised; 71 (day 4) is in the deadband; above 72
    # from day 5, a day later (day 6) cleared
    assert ev.samples(samples) == [
        _raised("battery-soh-low", battery, 2 * day, 69.5),
        _cleared("battery-soh-low", battery, 6 * day, 73),
    ]


# -- state events ------------------------------------------------------------------------------
def _isolator(name: str, minutes: float, daylight: bool | None = True) -> Occurrence:
    return Occurrence(ISOLATOR, f"gateway.isolator_{name}", _min(minutes), daylight)


def test_a_state_event_raises_and_its_counterpart_clears() -> None:
    ev = Evaluator(_default("es"))
    assert ev.occurrence(_isolator("tripped", 0)) == [_raised("isolator-tripped", ISOLATOR, 0)]
    assert ev.occurrence(_isolator("tripped", 1)) == []  # a repeat: still one condition
    assert ev.occurrence(_isolator("closed", 2)) == [_cleared("isolator-tripped", ISOLATOR, 2)]
    assert ev.occurrence(_isolator("closed", 3)) == []


def test_an_older_event_than_the_last_one_seen_is_stale() -> None:
    ev = Evaluator(_default("es"))
    ev.occurrence(_isolator("closed", 10))
    assert ev.occurrence(_isolator("tripped", 5)) == []
    assert ev.stale == 1


def test_a_dc_isolator_opened_in_daylight_raises_at_once() -> None:
    ev = Evaluator(_default("au"))
    assert ev.occurrence(_isolator("opened", 0, daylight=True)) == [
        _raised("dc-isolator-open", ISOLATOR, 0)
    ]


def test_a_dc_isolator_opened_at_night_raises_at_daylight() -> None:
    ev = Evaluator(_default("au"))
    assert ev.occurrence(_isolator("opened", 0, daylight=False)) == []
    assert ev.daylight(SITE + 1, _min(300)) == []  # another site's sunrise
    assert ev.daylight(SITE, _min(360)) == [_raised("dc-isolator-open", ISOLATOR, 360)]
    assert ev.daylight(SITE, _min(361)) == []


def test_a_dc_isolator_closed_before_daylight_raises_nothing() -> None:
    ev = Evaluator(_default("au"))
    ev.occurrence(_isolator("opened", 0, daylight=False))
    assert ev.occurrence(_isolator("closed", 60, daylight=False)) == []
    assert ev.daylight(SITE, _min(360)) == []


def test_unknown_daylight_counts_as_daylight_for_a_safety_rule() -> None:
    ev = Evaluator(_default("au"))
    assert ev.occurrence(_isolator("opened", 0, daylight=None)) == [
        _raised("dc-isolator-open", ISOLATOR, 0)
    ]


def test_a_faulty_device_clears_only_when_it_answers_well_again() -> None:
    ev = Evaluator(_default("es"))
    assert ev.occurrence(Occurrence(INVERTER, "device.faulty", _min(0))) == [
        _raised("device-faulty", INVERTER, 0)
    ]
    assert ev.occurrence(Occurrence(INVERTER, "device.asleep", _min(60))) == []
    assert ev.occurrence(Occurrence(INVERTER, "device.online", _min(600))) == [
        _cleared("device-faulty", INVERTER, 600)
    ]


def test_config_failed_and_drifted_raise_and_applied_clears() -> None:
    ev = Evaluator(_default("es"))
    assert ev.occurrence(Occurrence(GATEWAY, "config.failed", _min(0))) == [
        _raised("config-failed", GATEWAY, 0)
    ]
    assert ev.occurrence(Occurrence(GATEWAY, "config.drifted", _min(5))) == [
        _raised("config-drifted", GATEWAY, 5)
    ]
    assert ev.occurrence(Occurrence(GATEWAY, "config.applied", _min(9))) == [
        _cleared("config-failed", GATEWAY, 9),
        _cleared("config-drifted", GATEWAY, 9),
    ]


# -- offline -----------------------------------------------------------------------------------
def test_a_gateway_offline_raises_only_after_its_minutes() -> None:
    ev = Evaluator(_default("es"))  # gateway-offline after 30 min
    assert ev.occurrence(Occurrence(GATEWAY, "gateway.offline", _min(0))) == []
    assert ev.advance(_min(29)) == []
    assert ev.advance(_min(45)) == [_raised("gateway-offline", GATEWAY, 30)]
    assert ev.advance(_min(50)) == []
    assert ev.occurrence(Occurrence(GATEWAY, "gateway.online", _min(55))) == [
        _cleared("gateway-offline", GATEWAY, 55)
    ]


def test_a_short_outage_raises_nothing() -> None:
    ev = Evaluator(_default("es"))
    ev.occurrence(Occurrence(GATEWAY, "gateway.offline", _min(0)))
    ev.advance(_min(0.1))
    assert ev.occurrence(Occurrence(GATEWAY, "gateway.online", _min(0.2))) == []  # 12 s
    assert ev.advance(_min(120)) == []


def test_an_outage_longer_than_its_minutes_counts_even_when_nobody_advanced_the_clock() -> None:
    ev = Evaluator(_default("es"))
    ev.occurrence(Occurrence(GATEWAY, "gateway.offline", _min(0)))
    assert ev.occurrence(Occurrence(GATEWAY, "gateway.online", _min(40))) == [
        _raised("gateway-offline", GATEWAY, 30),
        _cleared("gateway-offline", GATEWAY, 40),
    ]


def test_a_device_asleep_all_night_is_never_offline() -> None:
    ev = Evaluator(_default("es"))  # device-unreachable after 60 min
    out = ev.occurrence(Occurrence(INVERTER, "device.asleep", _min(0)))
    out += ev.advance(_min(12 * 60))
    out += ev.occurrence(Occurrence(INVERTER, "device.online", _min(12 * 60)))
    assert out == []


def test_a_device_unreachable_then_asleep_is_not_offline() -> None:
    ev = Evaluator(_default("es"))
    ev.occurrence(Occurrence(INVERTER, "device.offline", _min(0)))
    assert ev.occurrence(Occurrence(INVERTER, "device.asleep", _min(20))) == []
    assert ev.advance(_min(600)) == []


def test_a_device_unreachable_for_its_minutes_raises() -> None:
    ev = Evaluator(_default("es"))
    ev.occurrence(Occurrence(INVERTER, "device.offline", _min(0)))
    assert ev.advance(_min(61)) == [_raised("device-unreachable", INVERTER, 60)]


# -- suppression -----------------------------------------------------------------------------
def test_suppressed_means_a_device_of_an_offline_gateway() -> None:
    assert suppressed(INVERTER, {"gw-7"})
    assert not suppressed(INVERTER, {"gw-8"})
    assert not suppressed(GATEWAY, {"gw-7"})  # the parent itself is not suppressed


def test_device_conditions_raised_while_their_gateway_is_offline_are_suppressed() -> None:
    ev = Evaluator(_default("es"))
    ev.occurrence(Occurrence(GATEWAY, "gateway.offline", _min(0)))
    assert ev.offline_gateways == {"gw-7"}
    ev.occurrence(Occurrence(INVERTER, "device.offline", _min(1)))
    assert ev.advance(_min(90)) == [
        Raised("gateway-offline", GATEWAY, _min(30), None, suppressed=False),
        Raised("device-unreachable", INVERTER, _min(61), None, suppressed=True),
    ]
    ev.occurrence(Occurrence(GATEWAY, "gateway.online", _min(100)))
    assert ev.offline_gateways == frozenset()
    assert ev.occurrence(Occurrence(INVERTER, "device.faulty", _min(101))) == [
        Raised("device-faulty", INVERTER, _min(101), None, suppressed=False),
        # faulty answers, so it is not unreachable any more
        Cleared("device-unreachable", INVERTER, _min(101)),
    ]


# -- completeness and shortfall ----------------------------------------------------------------
def test_an_incomplete_device_day_raises_and_a_complete_revision_clears() -> None:
    ev = Evaluator(_default("es"))  # data-incomplete below 80 %, devices that never sleep
    d1, d2 = date(2026, 1, 10), date(2026, 1, 11)

    def day(subject: Subject, d: date, pct: float, minutes: float, kind: Any) -> Any:
        return ev.completeness(DayCompleteness(subject, d, pct, _min(minutes), kind))

    assert day(METER, d1, 95.0, 0, "meter") == []
    assert day(METER, d2, 79.9, 1440, "meter") == [_raised("data-incomplete", METER, 1440, 79.9)]
    assert day(METER, d1, 10.0, 1450, "meter") == []  # an older day
    assert ev.stale == 1
    # late data filled day 2 in
    assert day(METER, d2, 80.0, 1500, "meter") == [_cleared("data-incomplete", METER, 1500, 80.0)]
    # An inverter asleep half the day, and a device of unknown kind, judge nothing.
    assert day(INVERTER, d2, 50.0, 1440, "inverter") == []
    assert day(ISOLATOR, d2, 50.0, 1440, None) == []


def test_production_far_below_clear_sky_raises_and_recovers() -> None:
    ev = Evaluator(_default("es"))  # no-production-in-daylight: < 5 % over 3 h, +5 % to clear
    site = Subject(SITE, "gw-7")

    def window(minutes: float, produced: float, expected: float, hours: float = 3) -> Any:
        return ev.production(ProductionWindow(site, _min(minutes), hours, produced, expected))

    assert window(0, 400, 10_000) == [_raised("no-production-in-daylight", site, 0, 0.04)]
    assert window(60, 900, 10_000) == []  # 9 %: in the deadband
    assert window(120, 0, 500) == []  # too little expected to judge
    assert window(130, 0, 10_000, hours=168) == []  # a week's window is another rule's
    assert window(180, 1_000, 10_000) == [_cleared("no-production-in-daylight", site, 180, 0.1)]


# -- persistence ---------------------------------------------------------------------------------
def test_a_snapshot_survives_json_and_continues_exactly() -> None:
    rules = _default("au")
    ev = Evaluator(rules)
    ev.samples(_volts([254, 254]))
    ev.occurrence(_isolator("opened", 0, daylight=False))
    ev.occurrence(Occurrence(GATEWAY, "gateway.offline", _min(5)))
    restored = Evaluator(rules, EvaluatorState.model_validate_json(ev.snapshot().model_dump_json()))
    assert restored.snapshot() == ev.snapshot()
    for e in (ev, restored):
        # the meter's gateway is offline: its condition is raised suppressed
        assert e.samples(_volts([254], start_min=10)) == [
            Raised("grid-overvoltage", METER, _min(10), 254, suppressed=True)
        ]
        assert e.advance(_min(40)) == [_raised("gateway-offline", GATEWAY, 35)]
        assert e.daylight(SITE, _min(300)) == [
            Raised("dc-isolator-open", ISOLATOR, _min(300), None, suppressed=True)
        ]


def test_conditions_of_rules_gone_are_retired_on_restore() -> None:
    ev = Evaluator(_rules(_high(on_delay_s=0), _high(id="volts-very-high", above=260)))
    ev.samples(_volts([270]))
    later = Evaluator(_rules(_high(on_delay_s=0)), ev.snapshot())
    # volts-very-high was only pending (10 min on delay): nothing to retire
    assert later.retired == ()
    assert later.active() == [("volts-high", METER)]
    gone = Evaluator(_rules(_high(id="volts-other")), ev.snapshot())
    assert gone.retired == (("volts-high", METER),)
    assert gone.active() == []


# -- properties ------------------------------------------------------------------------------
LEVEL = 100.0


@st.composite
def threshold_cases(draw: st.DrawFn) -> tuple[dict[str, Any], list[Sample]]:
    """A cabinet temperature rule above 100 °C and samples around it: mostly forward in
    time, sometimes repeating a time or going back."""
    rule = {
        "id": "hot",
        "kind": "threshold",
        "severity": "high",
        "title": "Hot",
        "metric": "pv_cabinet_c",
        "above": LEVEL,
        "deadband": draw(st.sampled_from([0.0, 0.5, 2.0, 5.0])),
        "on_delay_s": draw(st.sampled_from([0, 60, 300, 900])),
        "off_delay_s": draw(st.sampled_from([0, 60, 300, 900])),
    }
    steps = draw(
        st.lists(
            st.tuples(
                st.sampled_from([300, 300, 300, 60, 0, -300, 900]),
                st.integers(930, 1030).map(lambda tenths: tenths / 10),
            ),
            max_size=60,
        )
    )
    samples, ts = [], T0
    for dt, value in steps:
        ts += timedelta(seconds=dt)
        samples.append(Sample(INVERTER, "pv_cabinet_c", ts, value, "inverter"))
    return rule, samples


def _feed(ev: Evaluator, samples: list[Sample]) -> list[tuple[int, Transition]]:
    """Transitions with the index of the sample that caused each."""
    return [(i, t) for i, s in enumerate(samples) for t in ev.samples([s])]


def _accepted(samples: list[Sample]) -> list[int]:
    """Indexes of samples not older than every sample before them."""
    out, newest = [], None
    for i, s in enumerate(samples):
        if newest is None or s.ts >= newest:
            out.append(i)
            newest = s.ts
    return out


@BOUNDED
@given(threshold_cases())
def test_raises_and_clears_alternate_and_the_state_stays_bounded(
    case: tuple[dict[str, Any], list[Sample]],
) -> None:
    rule, samples = case
    ev = Evaluator(_rules(rule))
    kinds = [type(t) for _, t in _feed(ev, samples)]
    assert kinds == [Raised, Cleared] * (len(kinds) // 2) + [Raised] * (len(kinds) % 2)
    state = ev.snapshot()
    assert len(state.conditions) <= 1
    assert len(state.series) <= 1


@BOUNDED
@given(threshold_cases())
def test_on_and_off_delays_are_respected(case: tuple[dict[str, Any], list[Sample]]) -> None:
    rule, samples = case
    deadband, on_s, off_s = rule["deadband"], rule["on_delay_s"], rule["off_delay_s"]
    ev = Evaluator(_rules(rule))
    caused = dict(_feed(ev, samples))
    accepted = _accepted(samples)
    assert set(caused) <= set(accepted)  # a stale sample never changes anything
    streak_start: int | None = None  # of samples beyond (when normal) or back (when raised)
    raised = False
    for i in accepted:
        s = samples[i]
        counts = s.value < LEVEL - deadband if raised else s.value > LEVEL
        if not counts:
            streak_start = None
            continue
        if streak_start is None:
            streak_start = i
        t = caused.get(i)
        if t is None:
            continue
        held_for = (s.ts - samples[streak_start].ts).total_seconds()
        assert held_for >= (off_s if raised else on_s)
        assert isinstance(t, Cleared if raised else Raised)
        raised, streak_start = not raised, None


@BOUNDED
@given(threshold_cases(), st.data())
def test_a_signal_in_the_deadband_after_a_raise_never_clears(
    case: tuple[dict[str, Any], list[Sample]], data: st.DataObject
) -> None:
    rule, _ = case
    rule["deadband"] = max(rule["deadband"], 0.5)
    ev = Evaluator(_rules(rule))
    hot = [
        Sample(INVERTER, "pv_cabinet_c", T0, 101.0, None),
        Sample(INVERTER, "pv_cabinet_c", T0 + timedelta(seconds=rule["on_delay_s"]), 101.0, None),
    ]
    assert [type(t) for t in ev.samples(hot)] == [Raised]
    lowest = LEVEL - rule["deadband"]  # at or above it is not back
    values = data.draw(st.lists(st.floats(lowest, LEVEL + 10), max_size=50))
    later = [
        Sample(INVERTER, "pv_cabinet_c", T0 + timedelta(hours=1, minutes=5 * i), v, None)
        for i, v in enumerate(values)
    ]
    assert ev.samples(later) == []


@BOUNDED
@given(threshold_cases(), st.data())
def test_a_restart_anywhere_changes_nothing(
    case: tuple[dict[str, Any], list[Sample]], data: st.DataObject
) -> None:
    rule, samples = case
    rules = _rules(rule)
    cut = data.draw(st.integers(0, len(samples)))
    whole = Evaluator(rules).samples(samples)
    first = Evaluator(rules)
    out = first.samples(samples[:cut])
    saved = first.snapshot().model_dump_json()
    out += Evaluator(rules, EvaluatorState.model_validate_json(saved)).samples(samples[cut:])
    assert out == whole


DEVICE_EVENTS = ["device.online", "device.asleep", "device.faulty", "device.offline"]
GATEWAY_EVENTS = ["gateway.offline", "gateway.online"]


@st.composite
def event_cases(draw: st.DrawFn) -> list[tuple[str, float]]:
    """Presence events and clock ticks (minutes from T0, forward by up to 2 h)."""
    ops, minutes = [], 0.0
    for _ in range(draw(st.integers(0, 40))):
        minutes += draw(st.sampled_from([0, 0.25, 5, 20, 45, 90]))
        ops.append((draw(st.sampled_from([*DEVICE_EVENTS, *GATEWAY_EVENTS, "tick"])), minutes))
    return ops


def _play(ev: Evaluator, ops: list[tuple[str, float]]) -> list[Transition]:
    out: list[Transition] = []
    for name, minutes in ops:
        if name == "tick":
            out += ev.advance(_min(minutes))
        else:
            subject = INVERTER if name.startswith("device.") else GATEWAY
            out += ev.occurrence(Occurrence(subject, name, _min(minutes)))
    return out


@BOUNDED
@given(event_cases())
def test_offline_conditions_alternate_and_last_their_minutes(ops: list[tuple[str, float]]) -> None:
    out = _play(Evaluator(_default("es")), ops)
    for rule_id, after_min, went in (
        ("gateway-offline", 30, "gateway.offline"),
        ("device-unreachable", 60, "device.offline"),
    ):
        mine = [t for t in out if t.rule_id == rule_id]
        kinds = [type(t) for t in mine]
        assert kinds == [Raised, Cleared] * (len(kinds) // 2) + [Raised] * (len(kinds) % 2)
        for t in mine:
            if isinstance(t, Raised):  # due exactly `after_min` after an offline event
                assert (went, (t.at - T0) / timedelta(minutes=1) - after_min) in ops


@BOUNDED
@given(event_cases())
def test_a_device_that_only_sleeps_and_wakes_is_never_offline(ops: list[tuple[str, float]]) -> None:
    ops = [(n, m) for n, m in ops if n in ("device.asleep", "device.online", "tick")]
    assert _play(Evaluator(_default("es")), ops) == []


@BOUNDED
@given(event_cases(), st.data())
def test_a_restart_between_events_changes_nothing(
    ops: list[tuple[str, float]], data: st.DataObject
) -> None:
    rules = _default("es")
    cut = data.draw(st.integers(0, len(ops)))
    first = Evaluator(rules)
    out = _play(first, ops[:cut])
    restored = Evaluator(
        rules, EvaluatorState.model_validate_json(first.snapshot().model_dump_json())
    )
    out += _play(restored, ops[cut:])
    assert out == _play(Evaluator(rules), ops)


def test_every_threshold_metric_of_the_default_rules_is_a_gauge() -> None:
    for region in ("au", "us", "es"):
        for rule in load_rules(region).rules:
            if rule.kind == "threshold":
                assert BY_NAME[rule.metric].kind == "gauge"


@pytest.mark.parametrize("region", ["au", "us", "es"])
def test_an_evaluator_builds_from_every_default_rule_set(region: str) -> None:
    ev = Evaluator(load_rules(region))
    assert ev.samples([]) == []
    assert ev.snapshot() == EvaluatorState()
