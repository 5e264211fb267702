"""Rule evaluation: samples and events in, condition transitions out.

Pure and deterministic: every time comes from the inputs (a sample's ``ts``, an event's
``at``, the ``now`` handed to :meth:`Evaluator.advance`), never from the wall clock. The
:class:`Evaluator` keeps what it must remember in plain objects that
:meth:`Evaluator.snapshot` turns into :class:`EvaluatorState` (JSON), so the service can
persist it in the transaction that marks its inbox, and restore it after a restart; the
same inputs then give the same transitions as without the restart.

A *condition* is one rule on one :class:`Subject` (site, gateway, device or None). It is
raised (:class:`Raised`) and cleared (:class:`Cleared`) alternately, never raised twice
in a row. Per kind of rule:

* threshold / battery_soh — fed by :meth:`Evaluator.samples`: raised when the metric has
  stayed beyond the threshold for ``on_delay_s`` (measured between samples), cleared when
  it has stayed back past the deadband for ``off_delay_s``; a signal chattering inside
  the deadband raises once. Per series (subject and metric) a sample older than the newest
  already seen is ignored (counted in :attr:`Evaluator.stale`).
* state, config, gateway_offline — fed by :meth:`Evaluator.occurrence` (bus events by
  name); a ``daylight_only`` raise at night waits for :meth:`Evaluator.daylight`; an
  offline condition is raised ``after_min`` after the offline event by
  :meth:`Evaluator.advance` (or, when the online event comes first but later than that,
  raised and cleared at once); an asleep device is never offline.
* completeness — fed by :meth:`Evaluator.completeness` (one device-day at a time).
* shortfall — fed by :meth:`Evaluator.production` (a window's production and its
  clear-sky expectation, computed elsewhere).

Rules are indexed by metric and device kind, and within that sorted by level, so a sample
costs two bisections unless it is beyond a threshold or its series has a condition open.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Literal, NamedTuple, get_args

from pydantic import BaseModel, ConfigDict, Field

from cloud.alerts.rules import (
    BatterySohRule,
    CompletenessRule,
    ConfigRule,
    DeviceKind,
    GatewayOfflineRule,
    RuleSet,
    ShortfallRule,
    StateRule,
    ThresholdRule,
    is_shortfall,
)
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
)

__all__ = [
    "Cleared",
    "ConditionState",
    "DayCompleteness",
    "Evaluator",
    "EvaluatorState",
    "GatewayMark",
    "Occurrence",
    "Phase",
    "ProductionWindow",
    "Raised",
    "Sample",
    "SeriesMark",
    "Subject",
    "Transition",
    "suppressed",
]


# -- inputs and outputs ------------------------------------------------------------------
class Subject(NamedTuple):
    """What a condition is about: a site's gateway, or one of its devices (local id)."""

    site_id: int
    gateway_id: str
    device: str | None = None


class Sample(NamedTuple):
    """One stored reading of one metric: ``value`` in the catalogue's unit and sign
    convention (:mod:`contracts.metrics`; not None — skip unavailable values), ``ts``
    timezone-aware. ``device_kind`` selects the rules that name kinds; None meets only
    rules for any kind."""

    subject: Subject
    metric: str
    ts: datetime
    value: float
    device_kind: DeviceKind | None = None


class Occurrence(NamedTuple):
    """A bus event as rules see it: its ``name`` (``gateway.isolator_opened``,
    ``device.faulty``, ``gateway.offline`` …), the subject it is about, when it happened
    and — for ``daylight_only`` rules — whether the site was in daylight then (None:
    unknown, taken as daylight: a safety notice too many beats one missed)."""

    subject: Subject
    name: str
    at: datetime
    daylight: bool | None = None


class DayCompleteness(NamedTuple):
    """How complete a device's local ``day`` is (percent of the expected readings),
    known at ``at``; a revised day comes again with the same ``day``."""

    subject: Subject
    day: date
    pct: float
    at: datetime
    device_kind: DeviceKind | None = None


class ProductionWindow(NamedTuple):
    """Production over the ``window_h`` hours ending at ``end`` and the clear-sky
    expectation of the same window (Wh, >= 0); only shortfall rules of that window length
    look at it."""

    subject: Subject
    end: datetime
    window_h: float
    produced_wh: float
    expected_wh: float


@dataclass(frozen=True, slots=True)
class Raised:
    """Condition ``rule_id`` on ``subject`` became present at ``at`` (``value``: the sample,
    completeness percent or production fraction that raised it, None for events).
    ``suppressed``: a device's condition while its gateway is offline — record it as
    suppressed by design, do not announce it."""

    rule_id: str
    subject: Subject
    at: datetime
    value: float | None = None
    suppressed: bool = False


@dataclass(frozen=True, slots=True)
class Cleared:
    """Condition ``rule_id`` on ``subject`` returned to normal at ``at``."""

    rule_id: str
    subject: Subject
    at: datetime
    value: float | None = None


Transition = Raised | Cleared


def suppressed(subject: Subject, offline_gateways: Collection[str]) -> bool:
    """True for a device's condition while its gateway is offline: a child of an offline
    parent is suppressed by design (ISA-18.2), not announced."""
    return subject.device is not None and subject.gateway_id in offline_gateways


# -- persisted state ---------------------------------------------------------------------
#: ``normal`` is only kept for event-fed conditions (a tombstone: when it last changed, so
#: an older event is recognised as stale); ``held``: raised at night, waiting for daylight.
Phase = Literal["normal", "pending_on", "active", "pending_off", "held"]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConditionState(_Frozen):
    """One condition as persisted; ``metric`` names a threshold condition's series."""

    rule: str
    subject: Subject
    metric: str | None = None
    phase: Phase
    since: datetime | None = None
    value: float | None = None
    last: datetime | None = None
    day: date | None = None


class SeriesMark(_Frozen):
    """The newest sample seen of a series (older ones are stale)."""

    subject: Subject
    metric: str
    last: datetime


class GatewayMark(_Frozen):
    """A gateway's presence as its last presence event told it."""

    gateway_id: str
    offline: bool
    at: datetime


class EvaluatorState(_Frozen):
    """Everything an :class:`Evaluator` remembers; its size is bounded by the fleet
    (series and gateways seen) and the conditions (each a fixed handful of fields)."""

    v: Literal[1] = 1
    conditions: list[ConditionState] = Field(default_factory=list)
    series: list[SeriesMark] = Field(default_factory=list)
    gateways: list[GatewayMark] = Field(default_factory=list)


# -- compiled rules ----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Threshold:
    rule_id: str
    metric: str
    above: bool
    level: float
    #: Back to normal past this (level ∓ deadband).
    clear: float
    on_delay: timedelta
    off_delay: timedelta
    kinds: frozenset[str]


@dataclass(slots=True)
class _Bank:
    """The thresholds of one metric for one device kind, each side sorted by level."""

    above_levels: list[float] = field(default_factory=list)
    above: list[_Threshold] = field(default_factory=list)
    below_levels: list[float] = field(default_factory=list)
    below: list[_Threshold] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _EventRule:
    rule_id: str
    daylight_only: bool = False
    #: How long the condition must last before it is raised (offline rules), else None.
    delay: timedelta | None = None


class _Cond:
    """One condition's mutable state (a fixed handful of slots)."""

    __slots__ = ("day", "last", "phase", "since", "value")

    def __init__(
        self,
        phase: Phase,
        since: datetime | None = None,
        value: float | None = None,
        last: datetime | None = None,
        day: date | None = None,
    ) -> None:
        self.phase: Phase = phase
        self.since = since
        self.value = value
        self.last = last
        self.day = day


class _Series:
    """A series' newest sample time and its open threshold conditions (None: none)."""

    __slots__ = ("last", "open")

    def __init__(self, last: datetime) -> None:
        self.last = last
        self.open: dict[str, _Cond] | None = None


_KINDS: tuple[DeviceKind | None, ...] = (*get_args(DeviceKind), None)
_EMPTY = _Bank()


def _thresholds(rules: RuleSet) -> list[_Threshold]:
    out: list[_Threshold] = []
    for rule in rules.enabled:
        if isinstance(rule, ThresholdRule):
            above = rule.above is not None
            band = -rule.deadband if above else rule.deadband
            out.append(
                _Threshold(
                    rule.id,
                    rule.metric,
                    above,
                    rule.level,
                    rule.level + band,
                    timedelta(seconds=rule.on_delay_s),
                    timedelta(seconds=rule.off_delay_s),
                    frozenset(rule.device_kinds),
                )
            )
        elif isinstance(rule, BatterySohRule):
            out.append(
                _Threshold(
                    rule.id,
                    "battery_soh_pct",
                    False,
                    rule.below_pct,
                    rule.below_pct + rule.deadband,
                    timedelta(seconds=rule.on_delay_s),
                    timedelta(seconds=rule.off_delay_s),
                    frozenset(rule.device_kinds),
                )
            )
    return out


def _index(thresholds: Iterable[_Threshold]) -> dict[str, dict[DeviceKind | None, _Bank]]:
    """metric → device kind → bank; a kind no rule of the metric applies to is left out."""
    by_metric: dict[str, list[_Threshold]] = {}
    for t in thresholds:
        by_metric.setdefault(t.metric, []).append(t)
    index: dict[str, dict[DeviceKind | None, _Bank]] = {}
    for metric, ts in by_metric.items():
        banks: dict[DeviceKind | None, _Bank] = {}
        for kind in _KINDS:
            mine = [t for t in ts if not t.kinds or (kind is not None and kind in t.kinds)]
            if not mine:
                continue
            above = sorted((t for t in mine if t.above), key=lambda t: (t.level, t.rule_id))
            below = sorted((t for t in mine if not t.above), key=lambda t: (t.level, t.rule_id))
            banks[kind] = _Bank([t.level for t in above], above, [t.level for t in below], below)
        index[metric] = banks
    return index


def _signals(rules: RuleSet) -> dict[str, list[tuple[_EventRule, bool]]]:
    """Event name → (rule, True to raise / False to clear) for every event-fed rule."""
    out: dict[str, list[tuple[_EventRule, bool]]] = {}

    def on(name: str, rule: _EventRule, raises: bool) -> None:
        out.setdefault(name, []).append((rule, raises))

    for rule in rules.enabled:
        if isinstance(rule, StateRule):
            compiled = _EventRule(rule.id, daylight_only=rule.daylight_only)
            for name in sorted(rule.raise_on):
                on(name, compiled, True)
            for name in sorted(rule.clear_on):
                on(name, compiled, False)
        elif isinstance(rule, ConfigRule):
            compiled = _EventRule(rule.id)
            for status in sorted(rule.statuses):
                on(CONFIG_FAILED if status == "failed" else CONFIG_DRIFTED, compiled, True)
            on(CONFIG_APPLIED, compiled, False)
        elif isinstance(rule, GatewayOfflineRule):
            compiled = _EventRule(rule.id, delay=timedelta(minutes=rule.after_min))
            if rule.target == "gateway":
                on(GATEWAY_OFFLINE, compiled, True)
                on(GATEWAY_ONLINE, compiled, False)
            else:
                # asleep (a PV device at night) and faulty (it answers) are not offline
                on(DEVICE_OFFLINE, compiled, True)
                for name in (DEVICE_ONLINE, DEVICE_ASLEEP, DEVICE_FAULTY):
                    on(name, compiled, False)
    return out


def _sort_key(item: tuple[datetime, str, Subject]) -> tuple[datetime, str, int, str, str]:
    at, rule_id, s = item
    return at, rule_id, s.site_id, s.gateway_id, s.device or ""


# -- the evaluator -----------------------------------------------------------------------
class Evaluator:
    """Evaluates ``rules`` (the enabled ones) over samples and events.

    Built from a :meth:`snapshot` it continues where that left off; conditions of rules
    that are gone or disabled are dropped, and the active ones among them are listed in
    :attr:`retired` (their alarms must be closed by whoever holds them).
    """

    def __init__(self, rules: RuleSet, state: EvaluatorState | None = None) -> None:
        self.rules = rules
        thresholds = _thresholds(rules)
        self._thresholds = {t.rule_id: t for t in thresholds}
        self._index = _index(thresholds)
        self._signals = _signals(rules)
        self._event_rules = {r.rule_id: r for pairs in self._signals.values() for r, _ in pairs}
        self._completeness = [r for r in rules.enabled if isinstance(r, CompletenessRule)]
        self._shortfall = [r for r in rules.enabled if isinstance(r, ShortfallRule)]
        self._judged = {r.id for r in (*self._completeness, *self._shortfall)}
        self._series: dict[tuple[Subject, str], _Series] = {}
        #: Event-, completeness- and shortfall-fed conditions, tombstones included.
        self._conds: dict[tuple[str, Subject], _Cond] = {}
        #: Offline conditions waiting for their delay: key → when they are due.
        self._due: dict[tuple[str, Subject], datetime] = {}
        #: Daylight-only conditions raised at night.
        self._held: dict[tuple[str, Subject], _Cond] = {}
        self._gateways: dict[str, tuple[bool, datetime]] = {}
        self._offline: set[str] = set()
        #: Inputs ignored because they were older than what their condition had seen.
        self.stale = 0
        self.retired: tuple[tuple[str, Subject], ...] = ()
        if state is not None:
            self._restore(state)

    # -- samples -----------------------------------------------------------------------
    def samples(self, samples: Iterable[Sample]) -> list[Transition]:
        """Evaluate ``samples`` in order against the threshold and battery-health rules."""
        out: list[Transition] = []
        index, series = self._index, self._series
        for subject, metric, ts, value, kind in samples:
            banks = index.get(metric)
            if banks is None:
                continue
            bank = banks.get(kind, _EMPTY)
            key = (subject, metric)
            ser = series.get(key)
            if ser is None:
                if bank is _EMPTY:
                    continue
                ser = series[key] = _Series(ts)
            elif ts < ser.last:
                self.stale += 1
                continue
            else:
                ser.last = ts
            n_above = bisect_left(bank.above_levels, value)
            first_below = bisect_right(bank.below_levels, value)
            opened = ser.open
            if opened is None and n_above == 0 and first_below == len(bank.below):
                continue  # the common case: normal, and nothing beyond
            if opened is not None:
                for rule_id, cond in tuple(opened.items()):
                    self._step(self._thresholds[rule_id], cond, ser, subject, ts, value, out)
            for i in range(n_above):
                self._start(bank.above[i], ser, subject, ts, value, out)
            for i in range(first_below, len(bank.below)):
                self._start(bank.below[i], ser, subject, ts, value, out)
            if ser.open is not None and not ser.open:
                ser.open = None
        return out

    def _start(
        self,
        t: _Threshold,
        ser: _Series,
        subject: Subject,
        ts: datetime,
        value: float,
        out: list[Transition],
    ) -> None:
        """``value`` is beyond ``t``: open its condition unless it is open already."""
        if ser.open is None:
            ser.open = {}
        elif t.rule_id in ser.open:
            return  # stepped above
        if t.on_delay:
            ser.open[t.rule_id] = _Cond("pending_on", since=ts, value=value)
        else:
            ser.open[t.rule_id] = _Cond("active", since=ts, value=value)
            out.append(Raised(t.rule_id, subject, ts, value, suppressed(subject, self._offline)))

    def _step(
        self,
        t: _Threshold,
        cond: _Cond,
        ser: _Series,
        subject: Subject,
        ts: datetime,
        value: float,
        out: list[Transition],
    ) -> None:
        """Advance an open threshold condition by one sample."""
        assert ser.open is not None
        assert cond.since is not None
        if cond.phase == "pending_on":
            if not (value > t.level if t.above else value < t.level):
                del ser.open[t.rule_id]  # not beyond for long enough: never raised
            elif ts - cond.since >= t.on_delay:
                cond.phase, cond.since, cond.value = "active", ts, value
                sup = suppressed(subject, self._offline)
                out.append(Raised(t.rule_id, subject, ts, value, sup))
            return
        back = value < t.clear if t.above else value > t.clear
        if not back:
            cond.phase = "active"  # beyond or in the deadband: stays (a pending clear ends)
        elif cond.phase == "active" and t.off_delay:
            cond.phase, cond.since = "pending_off", ts
        elif cond.phase == "active" or ts - cond.since >= t.off_delay:
            del ser.open[t.rule_id]
            out.append(Cleared(t.rule_id, subject, ts, value))

    # -- events ------------------------------------------------------------------------
    def occurrence(self, occurrence: Occurrence) -> list[Transition]:
        """Evaluate one bus event against the state, config and offline rules (gateway
        presence events also decide which device conditions are suppressed)."""
        subject, name, at, daylight = occurrence
        if name in (GATEWAY_OFFLINE, GATEWAY_ONLINE):
            self._presence(subject.gateway_id, name == GATEWAY_OFFLINE, at)
        out: list[Transition] = []
        for rule, raises in self._signals.get(name, ()):
            key = (rule.rule_id, subject)
            cond = self._conds.get(key)
            if cond is None:
                cond = self._conds[key] = _Cond("normal", last=at)
            elif cond.last is not None and at < cond.last:
                self.stale += 1
                continue
            cond.last = at
            if raises:
                self._raise_event(rule, key, cond, at, daylight, out)
            else:
                self._clear_event(rule, key, cond, at, out)
        return out

    def _presence(self, gateway_id: str, offline: bool, at: datetime) -> None:
        known = self._gateways.get(gateway_id)
        if known is not None and at < known[1]:
            return
        self._gateways[gateway_id] = (offline, at)
        if offline:
            self._offline.add(gateway_id)
        else:
            self._offline.discard(gateway_id)

    def _raise_event(
        self,
        rule: _EventRule,
        key: tuple[str, Subject],
        cond: _Cond,
        at: datetime,
        daylight: bool | None,
        out: list[Transition],
    ) -> None:
        if cond.phase != "normal":
            return  # present already: a repeat changes nothing
        cond.since = at
        if rule.delay is not None:
            cond.phase = "pending_on"
            self._due[key] = at + rule.delay
        elif rule.daylight_only and daylight is False:
            cond.phase = "held"
            self._held[key] = cond
        else:
            cond.phase = "active"
            out.append(Raised(rule.rule_id, key[1], at, None, suppressed(key[1], self._offline)))

    def _clear_event(
        self,
        rule: _EventRule,
        key: tuple[str, Subject],
        cond: _Cond,
        at: datetime,
        out: list[Transition],
    ) -> None:
        phase, subject = cond.phase, key[1]
        cond.phase = "normal"
        if phase == "active":
            out.append(Cleared(rule.rule_id, subject, at))
        elif phase == "pending_on":
            due = self._due.pop(key, None)
            if (
                due is not None and at >= due
            ):  # it lasted long enough; nobody advanced the clock meanwhile
                out.append(
                    Raised(rule.rule_id, subject, due, None, suppressed(subject, self._offline))
                )
                out.append(Cleared(rule.rule_id, subject, at))
        elif phase == "held":
            del self._held[key]

    def daylight(self, site_id: int, at: datetime) -> list[Transition]:
        """Site ``site_id`` is in daylight from ``at`` (sunrise, or any time it is known
        to be day): its held daylight-only conditions are raised."""
        ready = sorted(
            (
                (max(at, cond.since or at), *key)
                for key, cond in self._held.items()
                if key[1].site_id == site_id
            ),
            key=_sort_key,
        )
        out: list[Transition] = []
        for when, rule_id, subject in ready:
            self._held.pop((rule_id, subject)).phase = "active"
            out.append(Raised(rule_id, subject, when, None, suppressed(subject, self._offline)))
        return out

    def advance(self, now: datetime) -> list[Transition]:
        """Time has reached ``now`` (the service's clock): raise the offline conditions
        that have lasted their ``after_min`` (each at the moment it became due)."""
        ready = sorted(((due, *key) for key, due in self._due.items() if due <= now), key=_sort_key)
        out: list[Transition] = []
        for due, rule_id, subject in ready:
            del self._due[(rule_id, subject)]
            self._conds[(rule_id, subject)].phase = "active"
            out.append(Raised(rule_id, subject, due, None, suppressed(subject, self._offline)))
        return out

    # -- completeness and production ---------------------------------------------------
    def completeness(self, day: DayCompleteness) -> list[Transition]:
        """Evaluate one device-day's completeness; an older day than the newest seen for
        the condition is stale, the same day again is a revision."""
        out: list[Transition] = []
        for rule in self._completeness:
            if rule.device_kinds and day.device_kind not in rule.device_kinds:
                continue
            key = (rule.id, day.subject)
            cond = self._conds.get(key)
            if cond is None:
                cond = self._conds[key] = _Cond("normal", day=day.day)
            elif cond.day is not None and day.day < cond.day:
                self.stale += 1
                continue
            cond.day = day.day
            self._judge(rule.id, cond, day.pct < rule.below_pct, day.subject, day.at, day.pct, out)
        return out

    def production(self, window: ProductionWindow) -> list[Transition]:
        """Evaluate one production window against the shortfall rules of its length."""
        out: list[Transition] = []
        for rule in self._shortfall:
            if rule.window_h != window.window_h:
                continue
            key = (rule.id, window.subject)
            cond = self._conds.get(key)
            if cond is None:
                cond = self._conds[key] = _Cond("normal", last=window.end)
            elif cond.last is not None and window.end < cond.last:
                self.stale += 1
                continue
            cond.last = window.end
            short = is_shortfall(rule, window.produced_wh, window.expected_wh)
            if short is None:
                continue
            fraction = window.produced_wh / window.expected_wh
            self._judge(rule.id, cond, short, window.subject, window.end, fraction, out)
        return out

    def _judge(
        self,
        rule_id: str,
        cond: _Cond,
        present: bool,
        subject: Subject,
        at: datetime,
        value: float,
        out: list[Transition],
    ) -> None:
        if present and cond.phase == "normal":
            cond.phase, cond.since, cond.value = "active", at, value
            out.append(Raised(rule_id, subject, at, value, suppressed(subject, self._offline)))
        elif not present and cond.phase == "active":
            cond.phase = "normal"
            out.append(Cleared(rule_id, subject, at, value))

    # -- what it knows -----------------------------------------------------------------
    def held(self) -> list[Subject]:
        """Subjects of daylight-only conditions raised at night, waiting for daylight."""
        return sorted({key[1] for key in self._held}, key=lambda s: (s.site_id, s.gateway_id))

    @property
    def offline_gateways(self) -> frozenset[str]:
        """Gateways whose latest presence event said offline."""
        return frozenset(self._offline)

    def active(self) -> list[tuple[str, Subject]]:
        """Conditions currently raised (and not yet cleared), as (rule id, subject)."""
        out = [
            (rule_id, subject)
            for (subject, _), ser in self._series.items()
            for rule_id, cond in (ser.open or {}).items()
            if cond.phase in ("active", "pending_off")
        ]
        out += [key for key, cond in self._conds.items() if cond.phase == "active"]
        return out

    def snapshot(self) -> EvaluatorState:
        """Everything needed to continue exactly here after a restart (JSON-ready)."""
        conditions = [
            ConditionState(
                rule=rule_id,
                subject=subject,
                metric=metric,
                phase=cond.phase,
                since=cond.since,
                value=cond.value,
            )
            for (subject, metric), ser in self._series.items()
            for rule_id, cond in (ser.open or {}).items()
        ]
        conditions += [
            ConditionState(
                rule=rule_id,
                subject=subject,
                phase=cond.phase,
                since=cond.since,
                value=cond.value,
                last=cond.last,
                day=cond.day,
            )
            for (rule_id, subject), cond in self._conds.items()
        ]
        return EvaluatorState(
            conditions=conditions,
            series=[
                SeriesMark(subject=subject, metric=metric, last=ser.last)
                for (subject, metric), ser in self._series.items()
            ],
            gateways=[
                GatewayMark(gateway_id=gateway_id, offline=offline, at=at)
                for gateway_id, (offline, at) in self._gateways.items()
            ],
        )

    def _restore(self, state: EvaluatorState) -> None:
        for mark in state.series:
            self._series[(mark.subject, mark.metric)] = _Series(mark.last)
        for g in state.gateways:
            self._presence(g.gateway_id, g.offline, g.at)
        retired: list[tuple[str, Subject]] = []
        for c in state.conditions:
            cond = _Cond(c.phase, c.since, c.value, c.last, c.day)
            if not self._adopt(c, cond) and c.phase in ("active", "pending_off"):
                retired.append((c.rule, c.subject))
        self.retired = tuple(retired)

    def _adopt(self, c: ConditionState, cond: _Cond) -> bool:
        """Put a restored condition where it belongs; False when its rule is gone."""
        if c.metric is not None:
            t = self._thresholds.get(c.rule)
            ser = self._series.get((c.subject, c.metric))
            if t is None or t.metric != c.metric or ser is None:
                return False
            if ser.open is None:
                ser.open = {}
            ser.open[c.rule] = cond
            return True
        key = (c.rule, c.subject)
        event_rule = self._event_rules.get(c.rule)
        if event_rule is None:
            if c.rule not in self._judged or c.phase not in ("normal", "active"):
                return False
        elif c.phase == "pending_on":
            if event_rule.delay is None or c.since is None:
                return False
            self._due[key] = c.since + event_rule.delay
        elif c.phase == "held":
            if not event_rule.daylight_only:
                return False
            self._held[key] = cond
        self._conds[key] = cond
        return True
