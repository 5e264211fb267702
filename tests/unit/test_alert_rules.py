"""Alert rules as data: the shipped rule sets, regional overlays, and every refusal naming
its file and rule."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, get_args

import pytest
import yaml

from cloud.alerts.rules import (
    SIGNALS,
    BatterySohRule,
    DeviceKind,
    GatewayOfflineRule,
    RuleError,
    RuleSet,
    ShortfallRule,
    StateRule,
    ThresholdRule,
    is_shortfall,
    load_rules,
    metric_range,
    parse_rules,
)
from contracts.topics import Region
from device_profiles.schema import DeviceKind as ProfileDeviceKind

VOLTAGE_HIGH: dict[str, Any] = {
    "id": "volts-high",
    "kind": "threshold",
    "severity": "medium",
    "title": "Voltage high",
    "metric": "grid_l1_v",
    "above": 253,
    "deadband": 3,
}
ISOLATOR: dict[str, Any] = {
    "id": "isolator-open",
    "kind": "state",
    "severity": "urgent",
    "title": "Isolator open",
    "raise_on": ["gateway.isolator_opened"],
    "clear_on": ["gateway.isolator_closed"],
}


def _write(directory: Path, name: str, content: Any) -> None:
    (directory / name).write_text(yaml.safe_dump(content), "utf-8")


def _refusal(*rules: dict[str, Any]) -> RuleError:
    with pytest.raises(RuleError) as caught:
        parse_rules("es", {"rules": list(rules)})
    return caught.value


# -- the shipped rules ---------------------------------------------------------------------
@pytest.mark.parametrize("region", list(Region))
def test_every_region_loads_a_default_set_covering_every_kind(region: Region) -> None:
    rules = load_rules(region)
    assert rules.region is region
    assert 10 <= len(rules.rules) <= 15
    kinds = {rule.kind for rule in rules.enabled}
    assert kinds == {
        "threshold",
        "state",
        "gateway_offline",
        "config",
        "completeness",
        "shortfall",
        "battery_soh",
    }


def test_a_dc_isolator_open_in_daylight_is_urgent_with_a_safety_notice_to_the_customer() -> None:
    rule = load_rules("au").get("dc-isolator-open")
    assert isinstance(rule, StateRule)
    assert rule.severity == "urgent"
    assert rule.daylight_only
    assert rule.raise_on == {"gateway.isolator_opened"}
    assert rule.notify.safety_notice
    assert "customer" in rule.notify.to


def test_the_default_rules_cover_the_faults_the_issue_names() -> None:
    rules = load_rules("es")
    tripped = rules.get("isolator-tripped")
    assert isinstance(tripped, StateRule)
    assert tripped.raise_on == {"gateway.isolator_tripped"}
    faulty = rules.get("device-faulty")
    assert isinstance(faulty, StateRule)
    assert faulty.raise_on == {"device.faulty"}
    offline = rules.get("gateway-offline")
    assert isinstance(offline, GatewayOfflineRule)
    assert offline.target == "gateway"
    soh = rules.get("battery-soh-low")
    assert isinstance(soh, BatterySohRule)
    assert soh.device_kinds == {"battery", "hybrid_inverter"}
    assert {r.id for r in rules.rules if r.kind == "config"} == {"config-failed", "config-drifted"}


def test_overlays_change_only_the_grid_levels_that_differ_by_region() -> None:
    def levels(region: str) -> dict[str, float]:
        return {r.id: r.level for r in load_rules(region).rules if isinstance(r, ThresholdRule)}

    # EN 50160 (base, Spain): 230 V +-10 % at 50 Hz
    assert levels("es") == {
        "grid-overvoltage": 253,
        "grid-undervoltage": 207,
        "grid-frequency-high": 50.5,
        "grid-frequency-low": 49.5,
    }
    # AS 61000.3.100: 230 V +10 % / -6 %
    assert levels("au") == {**levels("es"), "grid-undervoltage": 216}
    # ANSI C84.1 range A at 120 V, 60 Hz
    assert levels("us") == {
        "grid-overvoltage": 126,
        "grid-undervoltage": 114,
        "grid-frequency-high": 60.5,
        "grid-frequency-low": 59.5,
    }
    us_high = load_rules("us").get("grid-overvoltage")
    assert isinstance(us_high, ThresholdRule)
    assert (us_high.deadband, us_high.on_delay_s) == (1.5, 600)  # the rest from base


def test_device_kinds_are_those_of_the_device_profiles() -> None:
    assert set(get_args(DeviceKind)) == set(get_args(ProfileDeviceKind))


def test_state_rules_may_name_gateway_events_and_device_presence() -> None:
    assert {
        "gateway.isolator_opened",
        "gateway.isolator_tripped",
        "gateway.isolator_closed",
        "device.faulty",
        "device.online",
        "config.failed",
    } <= SIGNALS


# -- overlays -------------------------------------------------------------------------------
def test_an_overlay_overrides_disables_and_adds_by_id(tmp_path: Path) -> None:
    _write(tmp_path, "base.yaml", {"rules": [VOLTAGE_HIGH, ISOLATOR]})
    extra = {**VOLTAGE_HIGH, "id": "volts-very-high", "above": 260, "severity": "high"}
    _write(
        tmp_path,
        "us.yaml",
        {
            "override": {"volts-high": {"above": 126, "notify": {"to": ["operators", "mosie"]}}},
            "disable": ["isolator-open"],
            "add": [extra],
        },
    )
    rules = load_rules("us", tmp_path)
    high = rules.get("volts-high")
    assert isinstance(high, ThresholdRule)
    assert (high.above, high.deadband) == (126, 3)
    assert high.notify.to == {"operators", "mosie"}
    assert not rules.get("isolator-open").enabled
    assert [r.id for r in rules.enabled] == ["volts-high", "volts-very-high"]
    # another region without an overlay gets the base as written
    base = load_rules("au", tmp_path)
    assert [r.id for r in base.enabled] == ["volts-high", "isolator-open"]


def test_an_override_merges_into_notify_key_by_key(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "base.yaml",
        {"rules": [{**ISOLATOR, "notify": {"to": ["customer"], "safety_notice": True}}]},
    )
    _write(
        tmp_path, "au.yaml", {"override": {"isolator-open": {"notify": {"safety_notice": False}}}}
    )
    notify = load_rules("au", tmp_path).get("isolator-open").notify
    assert notify.to == {"customer"}
    assert not notify.safety_notice


@pytest.mark.parametrize(
    ("overlay", "reason"),
    [
        ({"override": {"nope": {"above": 1}}}, "overrides a rule that does not exist"),
        ({"disable": ["nope"]}, "disables a rule that does not exist"),
        ({"override": {"volts-high": {"kind": "state"}}}, "cannot change id or kind"),
        ({"add": [VOLTAGE_HIGH]}, "duplicate rule id (already in base.yaml)"),
        ({"override": {"volts-high": {"above": 254, "deadband": 300}}}, "could never clear"),
        ({"replace": []}, "replace: Extra inputs are not permitted"),
    ],
)
def test_an_overlay_refusal_names_the_overlay_and_the_rule(
    tmp_path: Path, overlay: dict[str, Any], reason: str
) -> None:
    _write(tmp_path, "base.yaml", {"rules": [VOLTAGE_HIGH]})
    _write(tmp_path, "au.yaml", overlay)
    with pytest.raises(RuleError) as caught:
        load_rules("au", tmp_path)
    assert caught.value.file == "au.yaml"
    assert reason in caught.value.reason


def test_a_file_that_is_not_yaml_is_refused_by_name(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text("rules: [\n", "utf-8")
    with pytest.raises(RuleError, match=r"^base\.yaml: rule -: not YAML"):
        load_rules("es", tmp_path)


# -- refusals -------------------------------------------------------------------------------
def test_duplicate_ids_are_refused() -> None:
    error = _refusal(VOLTAGE_HIGH, {**VOLTAGE_HIGH, "above": 260})
    assert str(error) == "base.yaml: rule 'volts-high': duplicate rule id"


def test_an_unknown_metric_is_refused_naming_file_and_rule() -> None:
    error = _refusal(ISOLATOR, {**VOLTAGE_HIGH, "metric": "grid_volts"})
    assert (error.file, error.rule) == ("base.yaml", "'volts-high'")
    assert "unknown metric 'grid_volts'" in error.reason


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"on_delay_s": -1}, "on_delay_s: Input should be greater than or equal to 0"),
        ({"off_delay_s": -0.5}, "off_delay_s: Input should be greater than or equal to 0"),
        ({"deadband": -1}, "deadband: Input should be greater than or equal to 0"),
        # 253 - 253 = 0 V: a voltage never falls below it, so it would never clear
        ({"deadband": 253}, "could never clear"),
        ({"above": None}, "exactly one of above / below"),
        ({"below": 200}, "exactly one of above / below"),
        ({"metric": "pv_wh"}, "pv_wh is a counter"),
        ({"above": -5, "deadband": 0}, "grid_l1_v stays within [0, inf]"),
        ({"colour": "red"}, "colour: Extra inputs are not permitted"),
        ({"id": "Volts High"}, "id: String should match pattern"),
        ({"severity": "critical"}, "severity: Input should be"),
        ({"device_kinds": ["toaster"]}, "device_kinds"),
    ],
)
def test_nonsense_thresholds_are_refused(change: dict[str, Any], reason: str) -> None:
    error = _refusal({**VOLTAGE_HIGH, **change})
    assert error.file == "base.yaml"
    assert reason in error.reason


def test_a_below_threshold_whose_deadband_reaches_the_top_of_a_percentage_is_refused() -> None:
    soc_low = {**VOLTAGE_HIGH, "metric": "battery_soc_pct", "above": None, "below": 80}
    assert "could never clear" in _refusal({**soc_low, "deadband": 20}).reason
    parse_rules("es", {"rules": [{**soc_low, "deadband": 19.9}]})  # clears above 99.9 %


@pytest.mark.parametrize(
    ("rule", "reason"),
    [
        ({**ISOLATOR, "raise_on": ["gateway.isolator_exploded"]}, "unknown event"),
        ({**ISOLATOR, "clear_on": ["gateway.isolator_opened"]}, "both raises and clears"),
        ({**ISOLATOR, "clear_on": []}, "clear_on"),
        ({**ISOLATOR, "notify": {"to": ["operators"], "safety_notice": True}}, "customer"),
        ({**ISOLATOR, "notify": {"to": []}}, "notify.to"),
        ({**ISOLATOR, "kind": "sms"}, "does not match any of the expected tags"),
        (
            {
                "id": "x",
                "kind": "gateway_offline",
                "severity": "high",
                "title": "Off",
                "after_min": 0,
            },
            "after_min: Input should be greater than 0",
        ),
        (
            {"id": "x", "kind": "config", "severity": "high", "title": "Cfg", "statuses": []},
            "statuses",
        ),
        (
            {
                "id": "x",
                "kind": "completeness",
                "severity": "low",
                "title": "Gap",
                "below_pct": 120,
            },
            "below_pct: Input should be less than or equal to 100",
        ),
        (
            {
                "id": "x",
                "kind": "shortfall",
                "severity": "low",
                "title": "Low",
                "below_fraction": 0.9,
                "deadband": 0.1,
                "window_h": 24,
            },
            "could never clear",
        ),
        (
            {
                "id": "x",
                "kind": "battery_soh",
                "severity": "low",
                "title": "SoH",
                "below_pct": 70,
                "deadband": 30,
            },
            "could never clear",
        ),
    ],
)
def test_nonsense_rules_of_every_kind_are_refused(rule: dict[str, Any], reason: str) -> None:
    assert reason in _refusal(rule).reason


def test_a_rule_that_is_no_mapping_is_refused_by_position() -> None:
    with pytest.raises(RuleError, match=r"^base\.yaml: rule #2: a rule is a mapping"):
        parse_rules("es", {"rules": [ISOLATOR, "volts-high"]})


def test_a_rule_set_refuses_duplicates_and_names_unknown_ids() -> None:
    rule = ThresholdRule.model_validate(VOLTAGE_HIGH)
    with pytest.raises(ValueError, match="duplicate rule id 'volts-high'"):
        RuleSet(region=Region.ES, rules=(rule, rule))
    with pytest.raises(KeyError, match="unknown rule 'nope'"):
        RuleSet(region=Region.ES, rules=(rule,)).get("nope")


# -- pure checks ----------------------------------------------------------------------------
def test_shortfall_compares_production_with_the_clear_sky_expectation() -> None:
    rule = ShortfallRule.model_validate(
        {
            "id": "short",
            "kind": "shortfall",
            "severity": "high",
            "title": "Short",
            "below_fraction": 0.25,
            "deadband": 0.05,
            "window_h": 3,
            "min_expected_wh": 1000,
        }
    )
    assert is_shortfall(rule, 2_499, 10_000) is True  # below 25 %
    assert is_shortfall(rule, 2_500, 10_000) is None  # in the deadband: no change
    assert is_shortfall(rule, 2_999, 10_000) is None
    assert is_shortfall(rule, 3_000, 10_000) is False  # at 30 %: back to normal
    assert is_shortfall(rule, 0, 999) is None  # too little expected to judge
    assert is_shortfall(rule, 0, 0) is None


def test_metric_ranges_follow_units_and_sign_conventions() -> None:
    assert metric_range("battery_soc_pct") == (0, 100)
    assert metric_range("grid_pf_pct") == (-100, 100)
    assert metric_range("grid_l1_v") == (0, math.inf)
    assert metric_range("pv_w") == (0, math.inf)
    assert metric_range("grid_w") == (-math.inf, math.inf)  # > 0 importing, < 0 exporting
    assert metric_range("battery_w") == (-math.inf, math.inf)


@pytest.mark.parametrize("region", list(Region))
def test_ingest_announces_every_metric_the_shipped_rules_read(region: Region) -> None:
    # Telemetry reaches the rules only through ingest's telemetry.received, which carries
    # the announced metrics: a rule on any other metric would never see a sample.
    from cloud.ingest.settings import ANNOUNCED_METRICS

    read = set()
    for rule in load_rules(region).enabled:
        if isinstance(rule, ThresholdRule):
            read.add(rule.metric)
        elif isinstance(rule, BatterySohRule):
            read.add("battery_soh_pct")
        elif isinstance(rule, ShortfallRule):
            read.add("pv_wh")  # production is the inverters' energy counter
    assert read <= set(ANNOUNCED_METRICS)


@pytest.mark.parametrize("region", list(Region))
def test_the_demo_sites_grid_stays_inside_their_regions_alarm_limits(region: Region) -> None:
    # A demo site's meter reads its simulator's grid: nominal volts, up to the site's
    # midday rise plus noise above them, noise below; nominal hertz +-0.02
    # (simulators/plant.py).
    # Outside the region's limits the demo would raise grid alarms on a healthy site.
    from potr.demo import DEMO_SITES, _site_settings
    from simulators.plant import PlantConfig

    [demo] = [d for d in DEMO_SITES if d.region == region.value]
    site, plant = _site_settings(demo), PlantConfig()
    highest = site.nominal_v * (1 + (site.grid_rise_pct + plant.voltage_noise_pct) / 100)
    lowest = site.nominal_v * (1 - plant.voltage_noise_pct / 100)
    levels = {r.id: r.level for r in load_rules(region).enabled if isinstance(r, ThresholdRule)}
    assert levels["grid-undervoltage"] < lowest < highest < levels["grid-overvoltage"]
    assert levels["grid-frequency-low"] < site.nominal_hz - 0.02
    assert site.nominal_hz + 0.02 < levels["grid-frequency-high"]
