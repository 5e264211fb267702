"""Alert rules as data: pydantic models of every kind of rule, and the YAML loader.

A region's rule set is ``rule_files/base.yaml`` with the region's overlay
(``rule_files/<region>.yaml``, only where values differ) applied on top: an overlay
overrides fields of a rule by id, disables rules, or adds rules. Everything is validated
when it loads; a refusal is a :class:`RuleError` naming the file, the rule and the
reason, so a bad deployment stops at start-up instead of alarming wrongly for weeks.

Rules are discriminated on ``kind``:

* ``threshold`` — a gauge of the metric catalogue (:mod:`contracts.metrics`) ``above`` or
  ``below`` a value, with a deadband (hysteresis) and on/off delays;
* ``state`` — raised and cleared by named bus events (``gateway.isolator_opened`` …,
  ``device.faulty``); ``daylight_only`` holds a raise until the site is in daylight;
* ``gateway_offline`` — a gateway (or a device: ``target: device``) offline longer than
  ``after_min`` minutes; an asleep device is never offline;
* ``config`` — a gateway's configuration failed or drifted (the config service's events);
* ``completeness`` — a device-day's completeness below ``below_pct``;
* ``shortfall`` — production below ``below_fraction`` of the clear-sky expectation over a
  window (the expectation is an input: computing it is pvlib's business elsewhere);
* ``battery_soh`` — battery state of health below ``below_pct``.

Pure: the loader reads files only when asked; nothing happens at import.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from cloud.alerts.lifecycle import Severity
from cloud.events.types import (
    CONFIG_APPLIED,
    CONFIG_DRIFTED,
    CONFIG_FAILED,
    DEVICE_ASLEEP,
    DEVICE_FAULTY,
    DEVICE_OFFLINE,
    DEVICE_ONLINE,
    GATEWAY_OFFLINE,
    GATEWAY_ONLINE,
    gateway_event_name,
)
from contracts.events import EventType
from contracts.metrics import BY_NAME, MetricKind
from contracts.topics import Region

__all__ = [
    "RULES_DIR",
    "SIGNALS",
    "Audience",
    "BatterySohRule",
    "CompletenessRule",
    "ConfigRule",
    "DeviceKind",
    "GatewayOfflineRule",
    "Notify",
    "Rule",
    "RuleError",
    "RuleSet",
    "Severity",
    "ShortfallRule",
    "StateRule",
    "ThresholdRule",
    "is_shortfall",
    "load_rules",
    "metric_range",
    "parse_rules",
]

#: The rule files shipped with the service: ``base.yaml`` and the regional overlays.
RULES_DIR = Path(__file__).resolve().parent / "rule_files"

#: Who hears of an alert: the site's customer, the region's operators, field technicians.
Audience = Literal["customer", "operators", "mosie"]
#: Device kinds as device profiles name them (``device_profiles.schema.DeviceKind``; a
#: unit test keeps the two equal without this pure module importing the profiles).
DeviceKind = Literal["inverter", "hybrid_inverter", "battery", "meter", "isolator"]
#: A rule's id: a lowercase slug, stable (alarms and the message catalogue refer to it).
RuleId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$", max_length=64)]
Title = Annotated[str, Field(min_length=3, max_length=80, pattern=r"^\S(?:.*\S)?$")]
Seconds = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Finite = Annotated[float, Field(allow_inf_nan=False)]
Percent = Annotated[float, Field(gt=0, le=100, allow_inf_nan=False)]

#: Bus event names a ``state`` rule may raise or clear on (:mod:`cloud.events.types`):
#: every gateway event of the catalogue as ingest names it, and device presence.
SIGNALS: frozenset[str] = frozenset(
    {gateway_event_name(t) for t in EventType}
    | {DEVICE_ONLINE, DEVICE_OFFLINE, DEVICE_ASLEEP, DEVICE_FAULTY}
    | {GATEWAY_ONLINE, GATEWAY_OFFLINE, CONFIG_APPLIED, CONFIG_FAILED, CONFIG_DRIFTED}
)


class RuleError(ValueError):
    """A rule file that must not load: ``file``, ``rule`` (its id, or its position when it
    has none) and ``reason``."""

    def __init__(self, file: str, rule: str, reason: str) -> None:
        self.file, self.rule, self.reason = file, rule, reason
        super().__init__(f"{file}: rule {rule}: {reason}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Notify(_Strict):
    """Who is told: ``to`` (at least one audience) and whether the customer gets a
    safety notice (which ignores quiet hours; it needs ``customer`` in ``to``)."""

    to: frozenset[Audience] = Field(default=frozenset({"operators"}), min_length=1)
    safety_notice: bool = False

    @model_validator(mode="after")
    def _safety_notice_reaches_the_customer(self) -> Self:
        if self.safety_notice and "customer" not in self.to:
            raise ValueError("a safety notice goes to the customer: add customer to notify.to")
        return self


class _RuleBase(_Strict):
    id: RuleId
    severity: Severity
    #: Short English text; also the message key its translations are filed under.
    title: Title
    notify: Notify = Notify()
    enabled: bool = True


def metric_range(name: str) -> tuple[float, float]:
    """The values metric ``name`` can take by its unit and sign convention (unbounded
    where the catalogue allows either sign): a rule must be able to raise and to clear
    inside it."""
    unit = BY_NAME[name].unit
    if unit == "%":
        return (-100.0, 100.0) if name.endswith("_pf_pct") else (0.0, 100.0)
    if unit in {"V", "Hz", "VA"} or name in {"pv_w", "pv_dc_w", "pv_rating_w", "pv_ac_a"}:
        return 0.0, math.inf
    if unit == "°C":
        return -273.15, math.inf
    return -math.inf, math.inf


def _check_levels(metric: str, above: bool, value: float, deadband: float) -> None:
    """Refuse a threshold that could never raise or never clear inside the metric's range."""
    lo, hi = metric_range(metric)
    unit = BY_NAME[metric].unit
    if above:
        if not lo <= value < hi:
            raise ValueError(f"above {value:g} {unit}: {metric} stays within [{lo:g}, {hi:g}]")
        clear = value - deadband
        if clear <= lo:
            raise ValueError(
                f"deadband {deadband:g} puts the clear level at {clear:g} {unit}, at or below"
                f" the lowest {metric} ({lo:g}): the alert could never clear"
            )
    else:
        if not lo < value <= hi:
            raise ValueError(f"below {value:g} {unit}: {metric} stays within [{lo:g}, {hi:g}]")
        clear = value + deadband
        if clear >= hi:
            raise ValueError(
                f"deadband {deadband:g} puts the clear level at {clear:g} {unit}, at or above"
                f" the highest {metric} ({hi:g}): the alert could never clear"
            )


class ThresholdRule(_RuleBase):
    """Raised once ``metric`` stays beyond the threshold (``above`` or ``below``, exactly
    one) for ``on_delay_s``; cleared once it stays back past ``deadband`` for
    ``off_delay_s``. ``device_kinds``: the kinds it applies to (empty: any device)."""

    kind: Literal["threshold"]
    metric: str
    above: Finite | None = None
    below: Finite | None = None
    deadband: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 0.0
    on_delay_s: Seconds = 0.0
    off_delay_s: Seconds = 0.0
    device_kinds: frozenset[DeviceKind] = frozenset()

    @field_validator("metric")
    @classmethod
    def _known_gauge(cls, name: str) -> str:
        known = BY_NAME.get(name)
        if known is None:
            raise ValueError(f"unknown metric {name!r} (not in contracts.metrics)")
        if known.kind is MetricKind.COUNTER:
            raise ValueError(f"{name} is a counter: a threshold on a running total is no alert")
        return name

    @model_validator(mode="after")
    def _one_sane_threshold(self) -> Self:
        if (self.above is None) == (self.below is None):
            raise ValueError("a threshold rule needs exactly one of above / below")
        _check_levels(self.metric, self.above is not None, self.level, self.deadband)
        return self

    @property
    def level(self) -> float:
        """The threshold, whichever side it is on."""
        if self.above is not None:
            return self.above
        assert self.below is not None  # the validator saw to it
        return self.below


class StateRule(_RuleBase):
    """Raised by any event of ``raise_on``, cleared by any of ``clear_on`` (bus names,
    :data:`SIGNALS`). ``daylight_only``: a raise at night waits until the site's daylight
    (a DC isolator open at night harms nobody; found open at sunrise it does)."""

    kind: Literal["state"]
    raise_on: frozenset[str] = Field(min_length=1)
    clear_on: frozenset[str] = Field(min_length=1)
    daylight_only: bool = False

    @field_validator("raise_on", "clear_on")
    @classmethod
    def _known_signals(cls, names: frozenset[str]) -> frozenset[str]:
        unknown = sorted(names - SIGNALS)
        if unknown:
            raise ValueError(f"unknown event(s) {', '.join(unknown)} (known: {sorted(SIGNALS)})")
        return names

    @model_validator(mode="after")
    def _raise_and_clear_differ(self) -> Self:
        both = sorted(self.raise_on & self.clear_on)
        if both:
            raise ValueError(f"{', '.join(both)} both raises and clears")
        return self


class GatewayOfflineRule(_RuleBase):
    """Raised when a gateway (``target: gateway``, from ``gateway.offline``) or a device
    (``target: device``, from ``device.offline`` = unreachable) has been offline longer
    than ``after_min`` minutes; an asleep device is never offline."""

    kind: Literal["gateway_offline"]
    after_min: Annotated[float, Field(gt=0, le=7 * 24 * 60, allow_inf_nan=False)]
    target: Literal["gateway", "device"] = "gateway"


class ConfigRule(_RuleBase):
    """Raised when a gateway's config ends in one of ``statuses`` (``config.failed`` /
    ``config.drifted``); cleared by ``config.applied``. (Not ``on``: YAML 1.1 reads that
    key as ``true``.)"""

    kind: Literal["config"]
    statuses: frozenset[Literal["failed", "drifted"]] = Field(min_length=1)


class CompletenessRule(_RuleBase):
    """Raised when a device-day's completeness (percent of the expected readings) is below
    ``below_pct``; cleared by a later (or revised) day at or above it."""

    kind: Literal["completeness"]
    below_pct: Percent
    device_kinds: frozenset[DeviceKind] = frozenset()


class ShortfallRule(_RuleBase):
    """Raised when production over a window of ``window_h`` hours is below
    ``below_fraction`` of the clear-sky expectation; cleared once it is back at or above
    ``below_fraction + deadband``. Windows expecting less than ``min_expected_wh`` decide
    nothing (dawn, dusk, a tiny system)."""

    kind: Literal["shortfall"]
    below_fraction: Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False)]
    deadband: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 0.0
    window_h: Annotated[float, Field(gt=0, le=31 * 24, allow_inf_nan=False)]
    min_expected_wh: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 0.0

    @model_validator(mode="after")
    def _can_clear(self) -> Self:
        if self.below_fraction + self.deadband >= 1:
            raise ValueError(
                f"below_fraction {self.below_fraction:g} + deadband {self.deadband:g} reaches"
                " the whole expectation: the alert could never clear"
            )
        return self


class BatterySohRule(_RuleBase):
    """Raised when ``battery_soh_pct`` stays below ``below_pct`` for ``on_delay_s``
    (a threshold on that metric, with the same deadband and delays)."""

    kind: Literal["battery_soh"]
    below_pct: Percent
    deadband: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 1.0
    on_delay_s: Seconds = 0.0
    off_delay_s: Seconds = 0.0
    device_kinds: frozenset[DeviceKind] = frozenset({"battery", "hybrid_inverter"})

    @model_validator(mode="after")
    def _sane_level(self) -> Self:
        _check_levels("battery_soh_pct", False, self.below_pct, self.deadband)
        return self


Rule = Annotated[
    ThresholdRule
    | StateRule
    | GatewayOfflineRule
    | ConfigRule
    | CompletenessRule
    | ShortfallRule
    | BatterySohRule,
    Field(discriminator="kind"),
]


class RuleSet(_Strict):
    """A region's rules (disabled ones included, so an alarm can still name its rule)."""

    region: Region
    rules: tuple[Rule, ...]
    _by_id: dict[str, Rule] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _unique_ids(self) -> Self:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.id in seen:
                raise ValueError(f"duplicate rule id {rule.id!r}")
            seen.add(rule.id)
        return self

    def model_post_init(self, context: Any, /) -> None:
        self._by_id = {rule.id: rule for rule in self.rules}

    def get(self, rule_id: str) -> Rule:
        """The rule ``rule_id``; ``KeyError`` names an unknown one."""
        try:
            return self._by_id[rule_id]
        except KeyError:
            raise KeyError(f"unknown rule {rule_id!r}") from None

    @property
    def enabled(self) -> tuple[Rule, ...]:
        return tuple(rule for rule in self.rules if rule.enabled)

    def shortfall_windows(self) -> frozenset[float]:
        """The window lengths (hours) enabled shortfall rules want expectations for."""
        return frozenset(r.window_h for r in self.enabled if isinstance(r, ShortfallRule))


def is_shortfall(rule: ShortfallRule, produced_wh: float, expected_wh: float) -> bool | None:
    """Whether production ``produced_wh`` over a window falls short of the clear-sky
    ``expected_wh`` (Wh, >= 0, the same window) by ``rule``: True below
    ``below_fraction`` of it, False at or above ``below_fraction + deadband``, None in the
    deadband or when the expectation is below ``rule.min_expected_wh`` (nothing to judge:
    an alert stays as it is)."""
    if expected_wh <= 0 or expected_wh < rule.min_expected_wh:
        return None
    if produced_wh < rule.below_fraction * expected_wh:
        return True
    if produced_wh >= (rule.below_fraction + rule.deadband) * expected_wh:
        return False
    return None


# -- loading ---------------------------------------------------------------------------
class _BaseFile(_Strict):
    rules: list[Any] = Field(default_factory=list)


class _OverlayFile(_Strict):
    override: dict[str, dict[str, Any]] = Field(default_factory=dict)
    disable: list[str] = Field(default_factory=list)
    add: list[Any] = Field(default_factory=list)


def _label(raw: Mapping[str, Any], index: int) -> str:
    rule_id = raw.get("id")
    return repr(rule_id) if isinstance(rule_id, str) else f"#{index + 1}"


def _reason(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"] if p not in _KINDS)
        msg = str(err["msg"]).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


_RULE_ADAPTER: TypeAdapter[Rule] = TypeAdapter(Rule)
#: The tags pydantic puts into error locations of the discriminated union.
_KINDS = frozenset(
    {"threshold", "state", "gateway_offline", "config", "completeness", "shortfall"}
    | {"battery_soh"}
)


def _rule(raw: Any, file: str, index: int) -> Rule:
    if not isinstance(raw, Mapping):
        raise RuleError(file, f"#{index + 1}", "a rule is a mapping of fields")
    try:
        return _RULE_ADAPTER.validate_python(raw)
    except ValidationError as exc:
        raise RuleError(file, _label(raw, index), _reason(exc)) from None


def _merge(base: Mapping[str, Any], change: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``change`` on top; nested mappings (``notify``) merge key by key."""
    out = dict(base)
    for key, value in change.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _file(model: type[_BaseFile] | type[_OverlayFile], raw: Any, file: str) -> Any:
    try:
        return model.model_validate({} if raw is None else raw)
    except ValidationError as exc:
        raise RuleError(file, "-", _reason(exc)) from None


def parse_rules(
    region: Region | str,
    base: Any,
    overlay: Any = None,
    *,
    base_file: str = "base.yaml",
    overlay_file: str | None = None,
) -> RuleSet:
    """The rule set of ``region`` from parsed YAML: ``base`` (``{rules: [...]}``) and an
    optional ``overlay`` (``{override: {id: {field: value}}, disable: [id], add: [...]}``).
    Raises :class:`RuleError` naming the file and the rule."""
    region = Region(region)
    overlay_file = overlay_file or f"{region.value}.yaml"
    #: Each rule as written (merged with its overrides), validated, and where from.
    raws: dict[str, dict[str, Any]] = {}
    rules: dict[str, Rule] = {}
    origin: dict[str, str] = {}

    def keep(raw: Any, file: str, index: int) -> None:
        rule = _rule(raw, file, index)
        if rule.id in rules:
            where = "" if origin[rule.id] == file else f" (already in {origin[rule.id]})"
            raise RuleError(file, repr(rule.id), f"duplicate rule id{where}")
        raws[rule.id], rules[rule.id], origin[rule.id] = dict(raw), rule, file

    for index, raw in enumerate(_file(_BaseFile, base, base_file).rules):
        keep(raw, base_file, index)
    if overlay is not None:
        changes: _OverlayFile = _file(_OverlayFile, overlay, overlay_file)
        for rule_id, fields in changes.override.items():
            _check_target(rule_id, rules, overlay_file, "overrides")
            if "id" in fields or "kind" in fields:
                raise RuleError(overlay_file, repr(rule_id), "an override cannot change id or kind")
            raws[rule_id] = _merge(raws[rule_id], fields)
            rules[rule_id] = _rule(raws[rule_id], overlay_file, 0)
        for rule_id in changes.disable:
            _check_target(rule_id, rules, overlay_file, "disables")
            rules[rule_id] = rules[rule_id].model_copy(update={"enabled": False})
        for index, raw in enumerate(changes.add):
            keep(raw, overlay_file, index)
    return RuleSet(region=region, rules=tuple(rules.values()))


def _check_target(rule_id: str, rules: Mapping[str, Rule], file: str, verb: str) -> None:
    if rule_id not in rules:
        raise RuleError(file, repr(rule_id), f"{verb} a rule that does not exist")


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text("utf-8"))
    except yaml.YAMLError as exc:
        raise RuleError(path.name, "-", f"not YAML: {exc}") from None


def load_rules(region: Region | str, directory: Path = RULES_DIR) -> RuleSet:
    """The rule set of ``region``: ``directory/base.yaml``, then ``<region>.yaml`` on top
    when it exists. Raises :class:`RuleError` naming the file and the rule."""
    region = Region(region)
    overlay_path = directory / f"{region.value}.yaml"
    overlay = _read_yaml(overlay_path) if overlay_path.exists() else None
    return parse_rules(
        region,
        _read_yaml(directory / "base.yaml"),
        overlay,
        overlay_file=overlay_path.name,
    )
