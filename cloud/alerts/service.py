"""The alerts service: bus events in, alarms out.

:class:`AlertService` turns what other services announce into rule inputs
(:class:`~cloud.alerts.evaluate.Occurrence`), feeds them to the region's
:class:`~cloud.alerts.evaluate.Evaluator`, and hands the transitions to the
:class:`~cloud.alerts.store.AlarmStore`: ``Raised`` → :meth:`AlarmStore.raise_condition`,
``Cleared`` → :meth:`AlarmStore.clear_condition`, a gateway's presence →
:meth:`AlarmStore.suppress_children` (as the evaluator sees it, so a late presence event
never flips the mask back).

One event is one transaction: its inbox mark, the evaluator's state (``alerts.evaluator_state``,
one row per region, locked for the event) and every alarm write commit together, so a
redelivered event changes nothing and a crash loses nothing. The region's row lock
serialises the service's work per region, which is what event rates need. The evaluator
stays in memory between events while the state's ``version`` is the one this process
wrote.

Stored telemetry (ingest's ``telemetry.received``: :meth:`AlertService.handle_samples`)
and closed device-days (``device.day_completeness``: :meth:`AlertService.handle_day`) are
evaluated per gateway instead, with that gateway's row in ``alerts.series_state``
(evaluator state and the inverters' hourly counter marks, :mod:`cloud.alerts.production`)
under the same one-transaction discipline: gateways never wait on each other. Shortfall
windows are judged against the site's clear-sky expectation
(:mod:`cloud.adapters.solar`).

Who a gateway belongs to (site, region, the site's account, its location) comes from
the registry's ``gateway.registered`` / ``gateway.updated``, kept in ``alerts.gateways``;
each site's array from the customers service's ``site.installation_changed``
(``alerts.installations``, with its meters: the system meter's ``grid_*`` values are
left to the grid meter's rules, :func:`_system_meter`); device kinds from ingest's
``gateway.birth`` (``alerts.devices``). An event of a gateway not known yet is refused
(:class:`UnknownGateway`) so the bus retries it.

:meth:`AlertService.sweep` (every minute or so, :func:`run_alert_sweeps`) raises the
offline conditions whose time has come and the daylight-only ones held at night whose
site's sun is up, escalates and unshelves. Time comes from the injected clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, get_args
from uuid import UUID

from cloud.adapters.postgres import Connection, ConnectionPool, Jsonb
from cloud.adapters.solar import PvSite, clear_sky_wh, is_daylight
from cloud.alerts.alarms import Alarm, AlarmCondition, AlarmSubject
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
)
from cloud.alerts.production import ProductionMarks, ProductionState
from cloud.alerts.rules import (
    ConfigRule,
    DeviceKind,
    GatewayOfflineRule,
    RuleSet,
    ShortfallRule,
    StateRule,
    load_rules,
)
from cloud.alerts.store import SCHEMA, AlarmStore
from cloud.events.alerts import NOTIFY_DETAIL_KEY
from cloud.events.outbox import handle_once
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
    AccountId,
    DeviceDayCompleteness,
    InstallationChanged,
)
from cloud.events.workorders import WorkOrderChanged
from contracts.timeutil import utc_now
from contracts.topics import Region

__all__ = [
    "SERIES_CACHE_MAX",
    "AlertService",
    "KnownGateway",
    "SweepResult",
    "UnknownGateway",
    "run_alert_sweeps",
]

log = logging.getLogger(__name__)

#: The counter whose hourly marks give production (every inverter's lifetime AC energy).
PRODUCTION_COUNTER = "pv_wh"
#: Gateways whose telemetry evaluators a process keeps in memory between events (the
#: least recently used beyond it are read back from their rows when next needed).
SERIES_CACHE_MAX = 20_000
#: Which kind of device a metric's family comes from, for rules that name device kinds
#: (``grid_*`` is measured by the site's meter, ``battery_*`` by a battery, ``pv_*`` by
#: an inverter): ingest's announcement names the device, not its kind.
_FAMILY_KINDS: tuple[tuple[str, DeviceKind], ...] = (
    ("grid_", "meter"),
    ("battery_", "battery"),
    ("pv_", "inverter"),
    ("isolator_", "isolator"),
)


def metric_device_kind(metric: str) -> DeviceKind | None:
    """The kind of device a catalogue metric comes from (None: no family)."""
    for prefix, kind in _FAMILY_KINDS:
        if metric.startswith(prefix):
            return kind
    return None


class UnknownGateway(LookupError):
    """An event of a gateway whose registration the service has not handled yet: not
    recorded, so the bus delivers it again (the registration is on its way)."""


@dataclass(frozen=True, slots=True)
class KnownGateway:
    """What the service knows of a gateway (``alerts.gateways``)."""

    gateway_id: str
    region: Region
    site_id: int
    account_id: AccountId | None
    time_zone: str | None = None
    site_name: str | None = None
    latitude: float | None = None
    longitude: float | None = None

    def daylight(self, at: datetime) -> bool | None:
        """Whether the gateway's site is in daylight at ``at`` (None: location unknown)."""
        if self.latitude is None or self.longitude is None:
            return None
        return is_daylight(self.latitude, self.longitude, at)


@dataclass(frozen=True, slots=True)
class SweepResult:
    """What one :meth:`AlertService.sweep` did."""

    raised: int
    escalated: int
    unshelved: int


@dataclass(slots=True)
class _Cached:
    version: int
    evaluator: Evaluator


@dataclass(slots=True)
class _Series:
    """A gateway's telemetry evaluator and production marks as of ``version``."""

    version: int
    evaluator: Evaluator
    production: ProductionMarks


class AlertService:
    """Events → evaluator → alarm store, one transaction per event (thread-safe)."""

    def __init__(
        self,
        pool: ConnectionPool[Connection[Any]],
        *,
        clock: Callable[[], datetime] = utc_now,
        rules: Mapping[Region, RuleSet] | None = None,
        store: AlarmStore | None = None,
    ) -> None:
        self._pool = pool
        self._clock = clock
        self._rules = dict(rules) if rules is not None else {r: load_rules(r) for r in Region}
        self.store = store if store is not None else AlarmStore(pool, clock=clock)
        self._listened = {region: _listened(rules) for region, rules in self._rules.items()}
        self._cache: dict[Region, _Cached] = {}
        self._series_cache: OrderedDict[str, _Series] = OrderedDict()
        self._cache_lock = threading.Lock()

    # -- gateways ------------------------------------------------------------------------
    def record_gateway(self, event_id: UUID, gateway: KnownGateway, at: datetime) -> bool:
        """Record a gateway's registration as of ``at``, once per event id (an older one
        than recorded changes nothing); False when the event was handled before."""
        return self._record_once(
            event_id,
            "INSERT INTO alerts.gateways (gateway_id, region, site_id, account_id,"
            " time_zone, site_name, latitude, longitude, updated_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (gateway_id) DO UPDATE"
            " SET region = EXCLUDED.region, site_id = EXCLUDED.site_id,"
            " account_id = EXCLUDED.account_id, time_zone = EXCLUDED.time_zone,"
            " site_name = EXCLUDED.site_name, latitude = EXCLUDED.latitude,"
            " longitude = EXCLUDED.longitude, updated_at = EXCLUDED.updated_at"
            " WHERE alerts.gateways.updated_at <= EXCLUDED.updated_at",
            (
                gateway.gateway_id,
                gateway.region.value,
                gateway.site_id,
                gateway.account_id,
                gateway.time_zone,
                gateway.site_name,
                gateway.latitude,
                gateway.longitude,
                at,
            ),
        )

    def record_installation(self, event_id: UUID, installation: InstallationChanged) -> bool:
        """Record a site's array as the customers service announced it (the newest
        record wins), once per event id; False when the event was handled before."""
        return self._record_once(
            event_id,
            "INSERT INTO alerts.installations (region, site_id, pv_kwp, tilt_deg,"
            " azimuth_deg, updated_at, billing_meter, grid_meter)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (region, site_id) DO UPDATE SET pv_kwp = EXCLUDED.pv_kwp,"
            " tilt_deg = EXCLUDED.tilt_deg, azimuth_deg = EXCLUDED.azimuth_deg,"
            " updated_at = EXCLUDED.updated_at, billing_meter = EXCLUDED.billing_meter,"
            " grid_meter = EXCLUDED.grid_meter"
            " WHERE alerts.installations.updated_at <= EXCLUDED.updated_at",
            (
                installation.region.value,
                installation.site_id,
                installation.pv_kwp,
                installation.tilt_deg,
                installation.azimuth_deg,
                installation.updated_at,
                installation.billing_meter,
                installation.grid_meter,
            ),
        )

    def _record_once(self, event_id: UUID, statement: str, params: Sequence[object]) -> bool:
        """Run one write for an event, once per event id (False: handled before)."""
        with self._pool.connection() as conn:
            if not handle_once(conn, SCHEMA, event_id):
                return False
            conn.execute(statement, params)
            return True

    def record_devices(
        self, event_id: UUID, gateway_id: str, kinds: Mapping[str, str], at: datetime
    ) -> bool:
        """Record the kinds of a gateway's devices as its birth (at ``at``) describes them
        (a newer record wins), once per event id; False when handled before."""
        with self._pool.connection() as conn:
            if not handle_once(conn, SCHEMA, event_id):
                return False
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO alerts.devices (gateway_id, device, kind, updated_at)"
                    " VALUES (%s, %s, %s, %s) ON CONFLICT (gateway_id, device) DO UPDATE"
                    " SET kind = EXCLUDED.kind, updated_at = EXCLUDED.updated_at"
                    " WHERE alerts.devices.updated_at <= EXCLUDED.updated_at",
                    [(gateway_id, device, kind, at) for device, kind in sorted(kinds.items())],
                )
            return True

    def record_work_order(self, event_id: UUID, order: WorkOrderChanged) -> list[Alarm] | None:
        """A work order's transition (dispatch's ``workorder.*``): while any work order
        has a technician on a site, the site is out of service for alarms; when the last
        leaves, it returns. The newest event of each work order wins. The alarms that
        changed; None when the event was handled before."""
        with self._pool.connection() as conn:
            if not handle_once(conn, SCHEMA, event_id):
                return None
            conn.execute(
                "INSERT INTO alerts.work_orders (work_order_id, site_id, on_site, at)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT (work_order_id) DO UPDATE"
                " SET site_id = EXCLUDED.site_id, on_site = EXCLUDED.on_site, at = EXCLUDED.at"
                " WHERE alerts.work_orders.at <= EXCLUDED.at",
                (order.work_order_id, order.site_id, order.on_site, order.at),
            )
            row = conn.execute(
                "SELECT min(work_order_id) FROM alerts.work_orders WHERE site_id = %s AND on_site",
                (order.site_id,),
            ).fetchone()
            holder = row[0] if row is not None else None
            actor = f"workorder:{holder if holder is not None else order.work_order_id}"
            return self.store.set_out_of_service(
                order.site_id, holder is not None, actor, conn=conn
            )

    def gateway(self, gateway_id: str) -> KnownGateway | None:
        with self._pool.connection() as conn:
            return _gateway(conn, gateway_id)

    # -- events --------------------------------------------------------------------------
    def listens(self, region: Region, name: str) -> bool:
        """Whether an event ``name`` in ``region`` can change anything here (an enabled
        rule names it, or it is a gateway's presence); others need no transaction."""
        listened = self._listened.get(region)
        return listened is not None and name in listened

    def handle(
        self,
        event_id: UUID,
        gateway_id: str,
        name: str,
        at: datetime,
        device: str | None = None,
        daylight: bool | None = None,
    ) -> list[Alarm] | None:
        """Bus event ``name`` about ``gateway_id`` (and ``device``) at ``at``: the alarms
        it raised or cleared, None when the event was handled before. Raises
        :class:`UnknownGateway` (nothing recorded) for a gateway not registered here."""
        with self._pool.connection() as conn:
            if not handle_once(conn, SCHEMA, event_id):
                return None
            gateway = _gateway(conn, gateway_id)
            if gateway is None:
                raise UnknownGateway(f"gateway {gateway_id} is not registered with alerts (yet)")
            subject = Subject(gateway.site_id, gateway_id, device)
            if daylight is None:
                daylight = gateway.daylight(at)
            ev, version = self._load(conn, gateway.region)
            changed = self._retire(conn, ev)
            transitions = ev.occurrence(Occurrence(subject, name, at, daylight))
            if name in (GATEWAY_OFFLINE, GATEWAY_ONLINE):
                # The mask as the evaluator now sees the gateway (a late presence event
                # changes nothing), set before any raise so a device alarm starts hidden.
                offline = gateway_id in ev.offline_gateways
                changed += self.store.suppress_children(gateway_id, offline, conn=conn)
            changed += self._apply(conn, ev.rules, transitions, name, {gateway_id: gateway})
            _save(conn, gateway.region, ev)
        self._keep(gateway.region, ev, version + 1)  # committed
        return changed

    # -- telemetry -----------------------------------------------------------------------
    def handle_samples(
        self,
        event_id: UUID,
        gateway_id: str,
        samples: Sequence[tuple[str, str, datetime, float]],
    ) -> list[Alarm] | None:
        """Ingest's stored values of a gateway's batch (``telemetry.received``: device,
        metric, time, value) against the threshold and battery-health rules: the alarms
        they raised or cleared, None when the event was handled before. One transaction
        per event with the gateway's own state row (``alerts.series_state``), so
        gateways never wait on each other. Raises :class:`UnknownGateway` (nothing
        recorded) for a gateway not registered here."""
        with self._pool.connection() as conn:
            if not handle_once(conn, SCHEMA, event_id):
                return None
            gateway = _gateway(conn, gateway_id)
            if gateway is None:
                raise UnknownGateway(f"gateway {gateway_id} is not registered with alerts (yet)")
            series = self._load_series(conn, gateway)
            ev, marks = series.evaluator, series.production
            changed = self._retire(conn, ev)
            site, kind = gateway.site_id, metric_device_kind
            system = _system_meter(conn, gateway)
            transitions = ev.samples(
                Sample(Subject(site, gateway_id, device), metric, ts, value, kind(metric))
                for device, metric, ts, value in samples
                if not (device == system and metric.startswith("grid_"))
            )
            for device, metric, ts, value in samples:
                if metric == PRODUCTION_COUNTER:
                    marks.add(device, ts, value)
            transitions += self._judge_production(conn, ev, marks, gateway)
            changed += self._apply(conn, ev.rules, transitions, "telemetry", {gateway_id: gateway})
            _save_series(conn, gateway, series)
        self._keep_series(gateway_id, _Series(series.version + 1, ev, marks))  # committed
        return changed

    def handle_day(
        self, event_id: UUID, day: DeviceDayCompleteness, at: datetime
    ) -> list[Alarm] | None:
        """Ingest closed a device's local day (``device.day_completeness``): the
        completeness rules of the device's kind judge it, in the gateway's telemetry
        state (one transaction, as :meth:`handle_samples`). None when handled before; a
        day with nothing expected (no poll interval known) judges nothing. Raises
        :class:`UnknownGateway` (nothing recorded) for a gateway not registered here."""
        with self._pool.connection() as conn:
            if not handle_once(conn, SCHEMA, event_id):
                return None
            gateway = _gateway(conn, day.gateway_id)
            if gateway is None:
                raise UnknownGateway(
                    f"gateway {day.gateway_id} is not registered with alerts (yet)"
                )
            if day.percent is None:
                return []
            series = self._load_series(conn, gateway)
            ev = series.evaluator
            changed = self._retire(conn, ev)
            subject = Subject(gateway.site_id, gateway.gateway_id, day.device)
            kind = _device_kind(conn, gateway.gateway_id, day.device)
            transitions = ev.completeness(DayCompleteness(subject, day.day, day.percent, at, kind))
            changed += self._apply(
                conn, ev.rules, transitions, "day", {gateway.gateway_id: gateway}
            )
            _save_series(conn, gateway, series)
        self._keep_series(gateway.gateway_id, _Series(series.version + 1, ev, series.production))
        return changed

    def _judge_production(
        self,
        conn: Connection[Any],
        ev: Evaluator,
        marks: ProductionMarks,
        gateway: KnownGateway,
    ) -> list[Transition]:
        """The shortfall rules over the windows ending at each hour now due: production
        from the counter marks against the site's clear-sky expectation (its location
        from the registry, its array from the installation record; either unknown: the
        hours pass unjudged, as there is nothing fair to compare with)."""
        hours = marks.due()
        windows = sorted({r.window_h for r in ev.rules.enabled if isinstance(r, ShortfallRule)})
        if not hours or not windows:
            return []
        site = _pv_site(conn, gateway)
        if site is None:
            return []
        subject = Subject(gateway.site_id, gateway.gateway_id, None)
        out: list[Transition] = []
        for end in hours:
            for window_h in windows:
                start = end - timedelta(hours=window_h)
                produced = marks.produced(start, end)
                if produced is None:
                    continue
                expected = clear_sky_wh(site, start, end)
                out += ev.production(ProductionWindow(subject, end, window_h, produced, expected))
        return out

    def _load_series(self, conn: Connection[Any], gateway: KnownGateway) -> _Series:
        """The gateway's telemetry evaluator and its stored version, the row locked until
        the transaction ends (as :meth:`_load` does for a region's events). A gateway
        that moved region goes on under its new region's rules (conditions of rules the
        new region lacks are retired)."""
        gw = gateway.gateway_id
        lock = "SELECT version FROM alerts.series_state WHERE gateway_id = %s FOR UPDATE"
        row = conn.execute(lock, (gw,)).fetchone()
        if row is None:  # the gateway's first batch
            conn.execute(
                "INSERT INTO alerts.series_state (gateway_id, region) VALUES (%s, %s)"
                " ON CONFLICT DO NOTHING",
                (gw, gateway.region.value),
            )
            row = conn.execute(lock, (gw,)).fetchone()
            assert row is not None
        version = int(row[0])
        rules = self._rules[gateway.region]
        with self._cache_lock:
            cached = self._series_cache.pop(gw, None)
        if cached is not None and cached.version == version and cached.evaluator.rules is rules:
            return cached
        stored = conn.execute(
            "SELECT state, production FROM alerts.series_state WHERE gateway_id = %s", (gw,)
        ).fetchone()
        assert stored is not None
        state = EvaluatorState.model_validate(stored[0]) if stored[0] is not None else None
        marks = ProductionState.model_validate(stored[1]) if stored[1] is not None else None
        return _Series(version, Evaluator(rules, state), ProductionMarks(marks))

    def _keep_series(self, gateway_id: str, series: _Series) -> None:
        with self._cache_lock:
            self._series_cache[gateway_id] = series
            while len(self._series_cache) > SERIES_CACHE_MAX:
                self._series_cache.popitem(last=False)

    # -- sweeps --------------------------------------------------------------------------
    def sweep(self, now: datetime | None = None) -> SweepResult:
        """Raise the offline conditions due by ``now`` (default: the clock), escalate
        unacknowledged alarms past their timers and unshelve those whose time is up."""
        at = now if now is not None else self._clock()
        raised = sum(self._advance(region, at) for region in self._regions())
        escalated = self.store.escalate_due(at)
        unshelved = self.store.unshelve_due(at)
        return SweepResult(raised, len(escalated), len(unshelved))

    def _regions(self) -> list[Region]:
        with self._pool.connection() as conn:
            rows = conn.execute("SELECT region FROM alerts.evaluator_state ORDER BY region")
            return [Region(r[0]) for r in rows.fetchall() if Region(r[0]) in self._rules]

    def _advance(self, region: Region, now: datetime) -> int:
        with self._pool.connection() as conn:
            ev, version = self._load(conn, region)
            self._retire(conn, ev)
            transitions = ev.advance(now) + self._dawn(conn, ev, now)
            if transitions:  # else the state is as stored: nothing to write
                gateways = _gateways(conn, {t.subject.gateway_id for t in transitions})
                self._apply(conn, ev.rules, transitions, "clock", gateways)
                _save(conn, region, ev)
                version += 1
        self._keep(region, ev, version)  # committed
        return len(transitions)

    def _dawn(self, conn: Connection[Any], ev: Evaluator, now: datetime) -> list[Transition]:
        """Raise the daylight-only conditions held at night whose site is in daylight
        at ``now`` (by the site's location; unknown location counts as daylight)."""
        held = ev.held()
        if not held:
            return []
        gateways = _gateways(conn, {s.gateway_id for s in held})
        out: list[Transition] = []
        for site_id in sorted({s.site_id for s in held}):
            mine = [gateways.get(s.gateway_id) for s in held if s.site_id == site_id]
            if any(g is None or g.daylight(now) is not False for g in mine):
                out += ev.daylight(site_id, now)
        return out

    # -- the evaluator -------------------------------------------------------------------
    def _load(self, conn: Connection[Any], region: Region) -> tuple[Evaluator, int]:
        """The region's evaluator and the version of its stored state, the row locked
        until the transaction ends. A process keeps the evaluator it saved only once its
        transaction committed (:meth:`_keep`), so an evaluator in memory with the stored
        version is exactly the stored state; any other is read from the row."""
        conn.execute(
            "INSERT INTO alerts.evaluator_state (region) VALUES (%s) ON CONFLICT DO NOTHING",
            (region.value,),
        )
        row = conn.execute(
            "SELECT version FROM alerts.evaluator_state WHERE region = %s FOR UPDATE",
            (region.value,),
        ).fetchone()
        assert row is not None
        version = int(row[0])
        with self._cache_lock:
            # Taken out: an evaluator that failed halfway is never seen again.
            cached = self._cache.pop(region, None)
        if cached is not None and cached.version == version:
            return cached.evaluator, version
        state_row = conn.execute(
            "SELECT state FROM alerts.evaluator_state WHERE region = %s", (region.value,)
        ).fetchone()
        stored = state_row[0] if state_row is not None else None
        state = EvaluatorState.model_validate(stored) if stored is not None else None
        return Evaluator(self._rules[region], state), version

    def _keep(self, region: Region, ev: Evaluator, version: int) -> None:
        with self._cache_lock:
            self._cache[region] = _Cached(version, ev)

    def _retire(self, conn: Connection[Any], ev: Evaluator) -> list[Alarm]:
        """Close the alarms of conditions whose rules are gone or disabled (once)."""
        retired, ev.retired = ev.retired, ()
        changed = []
        for rule_id, s in retired:
            subject = AlarmSubject(
                rule_id=rule_id, site_id=s.site_id, gateway_id=s.gateway_id, device=s.device
            )
            alarm = self.store.clear_condition(subject, conn=conn)
            if alarm is not None:
                changed.append(alarm)
        return changed

    def _apply(
        self,
        conn: Connection[Any],
        rules: RuleSet,
        transitions: Iterable[Transition],
        cause: str,
        gateways: Mapping[str, KnownGateway],
    ) -> list[Alarm]:
        changed: list[Alarm] = []
        for t in transitions:
            s = t.subject
            if isinstance(t, Raised):
                condition = _condition(rules, t, cause, gateways.get(s.gateway_id))
                changed.append(self.store.raise_condition(condition, conn=conn))
            elif isinstance(t, Cleared):
                subject = AlarmSubject(
                    rule_id=t.rule_id, site_id=s.site_id, gateway_id=s.gateway_id, device=s.device
                )
                alarm = self.store.clear_condition(subject, conn=conn)
                if alarm is not None:
                    changed.append(alarm)
        return changed


def _listened(rules: RuleSet) -> frozenset[str]:
    """The event names ``rules`` react to, and gateway presence (the masks)."""
    names = {GATEWAY_OFFLINE, GATEWAY_ONLINE}
    for rule in rules.enabled:
        if isinstance(rule, StateRule):
            names |= rule.raise_on | rule.clear_on
        elif isinstance(rule, ConfigRule):
            names |= {CONFIG_APPLIED, CONFIG_FAILED, CONFIG_DRIFTED}
        elif isinstance(rule, GatewayOfflineRule) and rule.target == "device":
            names |= {DEVICE_OFFLINE, DEVICE_ONLINE, DEVICE_ASLEEP, DEVICE_FAULTY}
    return frozenset(names)


def _save(conn: Connection[Any], region: Region, ev: Evaluator) -> None:
    conn.execute(
        "UPDATE alerts.evaluator_state SET state = %s, version = version + 1,"
        " updated_at = now() WHERE region = %s",
        (Jsonb(ev.snapshot().model_dump(mode="json")), region.value),
    )


def _save_series(conn: Connection[Any], gateway: KnownGateway, series: _Series) -> None:
    """Write the gateway's state back; the production marks (a week of them, tens of
    kB) only when they changed, about once an hour per inverter."""
    state = Jsonb(series.evaluator.snapshot().model_dump(mode="json"))
    marks = series.production
    if marks.changed:
        conn.execute(
            "UPDATE alerts.series_state SET state = %s, production = %s,"
            " version = version + 1, region = %s, updated_at = now() WHERE gateway_id = %s",
            (
                state,
                Jsonb(marks.snapshot().model_dump(mode="json")),
                gateway.region.value,
                gateway.gateway_id,
            ),
        )
        marks.saved()
    else:
        conn.execute(
            "UPDATE alerts.series_state SET state = %s, version = version + 1, region = %s,"
            " updated_at = now() WHERE gateway_id = %s",
            (state, gateway.region.value, gateway.gateway_id),
        )


def _device_kind(conn: Connection[Any], gateway_id: str, device: str) -> DeviceKind | None:
    """The device's kind as its gateway's birth described it (None: not known, or a
    kind no rule names)."""
    row = conn.execute(
        "SELECT kind FROM alerts.devices WHERE gateway_id = %s AND device = %s",
        (gateway_id, device),
    ).fetchone()
    kind = row[0] if row is not None else None
    return kind if kind in get_args(DeviceKind) else None


def _system_meter(conn: Connection[Any], gateway: KnownGateway) -> str | None:
    """The serial of the site's system meter (its record's billing meter) when another
    meter watches the grid — the record names a grid meter, or the gateway has another
    meter — else None: then the system meter's ``grid_*`` values are the only ones."""
    row = conn.execute(
        "SELECT i.billing_meter FROM alerts.installations i"
        " WHERE i.region = %s AND i.site_id = %s AND i.billing_meter IS NOT NULL"
        " AND (i.grid_meter IS NOT NULL OR EXISTS (SELECT 1 FROM alerts.devices d"
        "  WHERE d.gateway_id = %s AND d.kind = 'meter' AND d.device <> i.billing_meter))",
        (gateway.region.value, gateway.site_id, gateway.gateway_id),
    ).fetchone()
    return None if row is None else str(row[0])


def _gateway(conn: Connection[Any], gateway_id: str) -> KnownGateway | None:
    return _gateways(conn, {gateway_id}).get(gateway_id)


def _gateways(conn: Connection[Any], ids: Iterable[str]) -> dict[str, KnownGateway]:
    rows = conn.execute(
        "SELECT gateway_id, region, site_id, account_id, time_zone, site_name, latitude,"
        " longitude FROM alerts.gateways WHERE gateway_id = ANY(%s)",
        (sorted(ids),),
    ).fetchall()
    return {
        g: KnownGateway(g, Region(r), s, a, z, n, lat, lon) for g, r, s, a, z, n, lat, lon in rows
    }


def _pv_site(conn: Connection[Any], gateway: KnownGateway) -> PvSite | None:
    """The gateway's site as the clear-sky model needs it (None: location or array
    unknown)."""
    if gateway.latitude is None or gateway.longitude is None:
        return None
    row = conn.execute(
        "SELECT pv_kwp, tilt_deg, azimuth_deg FROM alerts.installations"
        " WHERE region = %s AND site_id = %s",
        (gateway.region.value, gateway.site_id),
    ).fetchone()
    if row is None:
        return None
    kwp, tilt, azimuth = row
    return PvSite(
        latitude=gateway.latitude,
        longitude=gateway.longitude,
        tilt_deg=float(tilt),
        azimuth_deg=float(azimuth),
        kwp=float(kwp),
    )


def _condition(
    rules: RuleSet, raised: Raised, cause: str, gateway: KnownGateway | None
) -> AlarmCondition:
    """The alarm of ``raised`` as its rule describes it: severity, title, and who is told
    (``detail.notify``: audiences and the customer's safety notice, as
    :func:`cloud.events.alerts.alarm_audiences` reads them; the site's name and zone)."""
    rule = rules.get(raised.rule_id)
    s = raised.subject
    detail: dict[str, Any] = {
        # The shape notify reads (cloud.events.alerts.alarm_audiences).
        NOTIFY_DETAIL_KEY: {
            "to": sorted(rule.notify.to),
            "safety_notice": rule.notify.safety_notice,
        },
        "cause": cause,
        "since": raised.at.isoformat(),
    }
    if gateway is not None and gateway.site_name:
        detail["site_name"] = gateway.site_name
    if gateway is not None and gateway.time_zone:
        detail["time_zone"] = gateway.time_zone
    if raised.value is not None:
        detail["value"] = raised.value
    return AlarmCondition(
        region=rules.region,
        rule_id=rule.id,
        site_id=s.site_id,
        gateway_id=s.gateway_id,
        device=s.device,
        severity=rule.severity,
        account_id=gateway.account_id if gateway is not None else None,
        title=rule.title,
        detail=detail,
    )


async def run_alert_sweeps(service: AlertService, stop: asyncio.Event, every_s: float) -> None:
    """:meth:`AlertService.sweep` every ``every_s`` seconds (in a thread) until ``stop``;
    a failed sweep is logged and the next one tries again."""
    while not stop.is_set():
        try:
            result = await asyncio.to_thread(service.sweep)
            if result.raised or result.escalated or result.unshelved:
                log.info(
                    "alert sweep: %d raised, %d escalated, %d unshelved",
                    result.raised,
                    result.escalated,
                    result.unshelved,
                )
        except Exception:
            log.exception("alert sweep failed; trying again in %.0f s", every_s)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s)
