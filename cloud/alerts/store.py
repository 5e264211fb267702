"""AlarmStore: alarms in PostgreSQL (schema ``alerts``), moved only by the lifecycle.

Every call is one transaction on a pooled connection: it locks the alarm rows it changes,
asks :func:`cloud.alerts.lifecycle.apply` for each new state, and writes the row, a
history entry and an ``alert.*`` event (the outbox) together, so none of the three exists
without the others. A repeat raise of an alarm whose condition is present only counts
(``count``, ``last_seen_at``): no history, no event.

* Rules raise and clear by subject (:meth:`AlarmStore.raise_condition`,
  :meth:`AlarmStore.clear_condition`). The partial unique index ``alarms_one_open_idx``
  keeps one open alarm per rule and subject even when raisers race. Given ``conn``, these
  and :meth:`AlarmStore.suppress_children` work in the caller's transaction (the alerts
  service's: its inbox mark and evaluator state commit with the alarms).
* Operators act on an alarm by id inside their :class:`~cloud.scope.Scope`; an alarm
  outside it is :class:`~cloud.alerts.alarms.AlarmNotFound`, like one that does not exist.
* Masks: a gateway offline suppresses its devices' alarms, a site out of service hides
  all of its alarms — the open ones now and those raised while the mask holds.
* Sweepers (call them every minute or so): :meth:`AlarmStore.escalate_due` and
  :meth:`AlarmStore.unshelve_due`. Any transition of a shelved alarm whose time is up
  unshelves it first, so a late sweeper never shows an alarm shelved past its time.

Time comes from the injected ``clock`` (aware datetimes), never from the machine.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from cloud.adapters.postgres import Connection, ConnectionPool, ping
from cloud.alerts import repository as repo
from cloud.alerts.alarms import (
    DEFAULT_POLICY,
    FLOOD_THRESHOLD,
    FLOOD_WINDOW_MINUTES,
    STALE_AFTER_HOURS,
    Acknowledge,
    Action,
    Alarm,
    AlarmCondition,
    AlarmNotFound,
    AlarmPage,
    AlarmPolicy,
    AlarmState,
    AlarmStatus,
    AlarmSubject,
    Clear,
    Escalate,
    FloodMetrics,
    FloodWindow,
    HistoryEntry,
    Raise,
    RemoveFromService,
    ReturnToService,
    Severity,
    Shelve,
    Suppress,
    Unshelve,
    Unsuppress,
    alarm_changed_event,
    apply,
    due_escalations,
    is_open,
    settle,
    shelf_expired,
)
from cloud.events.outbox import emit
from cloud.scope import Scope
from contracts.timeutil import utc_now
from contracts.topics import Region

__all__ = ["MAX_PAGE", "SCHEMA", "AlarmStore"]

log = logging.getLogger(__name__)

#: The alerts service's PostgreSQL schema (and its outbox).
SCHEMA = "alerts"
#: The largest page :meth:`AlarmStore.list_alarms` returns.
MAX_PAGE = 500
#: Rows one sweep handles in one transaction; the next sweep takes the rest.
_SWEEP_BATCH = 500
#: A racing raiser's row can close before this one counts into it: try again, boundedly.
_RAISE_ATTEMPTS = 3
_SUBJECT_FIELDS = set(AlarmSubject.model_fields)
# The system's actions carry nothing: one of each serves every call.
_CLEAR, _SUPPRESS, _UNSUPPRESS, _ESCALATE = Clear(), Suppress(), Unsuppress(), Escalate()


class AlarmStore:
    """Alarms, their history and their events; thread-safe (pooled connections)."""

    def __init__(
        self,
        pool: ConnectionPool[Connection[Any]],
        *,
        clock: Callable[[], datetime] = utc_now,
        policy: AlarmPolicy = DEFAULT_POLICY,
    ) -> None:
        self._pool = pool
        self._clock = clock
        self._policy = policy

    @property
    def policy(self) -> AlarmPolicy:
        return self._policy

    def ping(self) -> None:
        ping(self._pool)

    # -- rules ----------------------------------------------------------------------------
    def raise_condition(
        self, condition: AlarmCondition, *, conn: Connection[Any] | None = None
    ) -> Alarm:
        """Raise ``condition``'s alarm: a new one (hidden from the start under its site's
        or gateway's mask) when its subject has none open, else a repeat into the open
        one (``count`` + 1, latest ``title`` and ``detail``; its severity stays).
        ``conn``: in that connection's transaction (else one of its own)."""
        at = self._clock()
        subject = AlarmSubject.model_validate(condition.model_dump(include=_SUBJECT_FIELDS))
        with self._transaction(conn) as conn:
            repo.share_masks(conn, subject.site_id, subject.gateway_id)
            for _ in range(_RAISE_ATTEMPTS):
                alarm = repo.open_alarm(conn, subject)
                if alarm is not None:
                    alarm = self._settle(conn, alarm, at)  # its shelf's end may close it
                if alarm is not None and is_open(alarm):
                    latest = alarm.model_copy(
                        update={"title": condition.title, "detail": condition.detail}
                    )
                    return self._step(conn, latest, Raise(), at)
                alarm = self._open(conn, condition, subject, at)
                if alarm is not None:
                    return alarm
                # A concurrent raiser's row was committed meanwhile: count into it.
        raise RuntimeError(f"alarm of {subject} kept closing while being raised")

    def clear_condition(
        self, subject: AlarmSubject, *, conn: Connection[Any] | None = None
    ) -> Alarm | None:
        """The condition of ``subject``'s rule is gone: the alarm after that, or None when
        no open alarm of the subject has its condition present (nothing to clear).
        ``conn``: in that connection's transaction (else one of its own)."""
        at = self._clock()
        with self._transaction(conn) as conn:
            alarm = repo.open_alarm(conn, subject)
            if alarm is None:
                return None
            alarm = self._settle(conn, alarm, at)
            if not is_open(alarm) or not alarm.active:
                return None
            return self._step(conn, alarm, _CLEAR, at)

    # -- operators ------------------------------------------------------------------------
    def get(self, alarm_id: int, scope: Scope) -> Alarm:
        with self._pool.connection() as conn:
            return _found(repo.get_alarm(conn, alarm_id, scope), alarm_id)

    def acknowledge(self, alarm_id: int, actor: str, scope: Scope) -> Alarm:
        """Acknowledge (``unacknowledged`` → ``acknowledged``; ``rtn_unacknowledged`` →
        closed); :class:`IllegalTransition` in any other state."""
        return self._act(alarm_id, scope, Acknowledge(actor))

    def shelve(
        self, alarm_id: int, until: datetime, actor: str, reason: str, scope: Scope
    ) -> Alarm:
        """Hide an alarm on the board until ``until`` (aware), at most the severity's
        :attr:`AlarmPolicy.max_shelve` ahead (:class:`ShelveRefused` beyond)."""
        return self._act(alarm_id, scope, Shelve(until, actor, reason))

    def unshelve(self, alarm_id: int, actor: str, scope: Scope) -> Alarm:
        return self._act(alarm_id, scope, Unshelve(actor))

    def list_alarms(
        self,
        scope: Scope,
        region: Region | None = None,
        states: Collection[AlarmStatus] | None = None,
        limit: int = 100,
        cursor: int | None = None,
        *,
        site_id: int | None = None,
    ) -> AlarmPage:
        """Alarms in ``scope`` (within ``region`` when given), newest first; ``states``
        None: every state (:data:`OPEN_STATES` for the board). ``cursor``: the previous
        page's ``next_cursor``. ``limit`` is held to 1 … :data:`MAX_PAGE`."""
        within = scope.within(region) if region is not None else scope
        if within is None or (states is not None and not states):
            return AlarmPage(items=[], next_cursor=None)
        size = max(1, min(limit, MAX_PAGE))
        with self._pool.connection() as conn:
            rows = repo.list_alarms(conn, within, states, site_id, size + 1, cursor)
        more = len(rows) > size
        items = rows[:size]
        return AlarmPage(items=items, next_cursor=items[-1].id if more else None)

    def history(self, alarm_id: int, scope: Scope) -> list[HistoryEntry]:
        """Every transition of the alarm, oldest first."""
        with self._pool.connection() as conn:
            _found(repo.get_alarm(conn, alarm_id, scope), alarm_id)
            return repo.history(conn, alarm_id)

    def flood_metrics(
        self, region: Region, now: datetime | None = None, *, scope: Scope | None = None
    ) -> FloodMetrics:
        """``region``'s operator queue over the day before ``now`` (default: the clock):
        annunciations (alarms coming up unacknowledged — new, back, or unhidden) per
        10-minute window, windows in flood, stale alarms, priority mix; only alarms
        ``scope`` reaches (default: the whole region)."""
        until = now if now is not None else self._clock()
        since = until - timedelta(days=1)
        window = timedelta(minutes=FLOOD_WINDOW_MINUTES)
        within = (scope or Scope.of_region(region)).within(region)
        counts: list[tuple[int, Severity, int]] = []
        stale = 0
        if within is not None:
            with self._pool.connection() as conn:
                counts = repo.annunciations(conn, within, since, until, window)
                stale = repo.stale_count(conn, within, until - timedelta(hours=STALE_AFTER_HOURS))
        return _flood(region, since, until, window, counts, stale)

    # -- masks ----------------------------------------------------------------------------
    def set_out_of_service(
        self,
        site_id: int,
        on: bool,
        actor: str | None,
        *,
        conn: Connection[Any] | None = None,
    ) -> list[Alarm]:
        """Take a site out of service (``on``; dispatch, for a technician's work) or return
        it: its open alarms follow, and alarms raised meanwhile start out of service. The
        alarms changed; calling it twice changes nothing the second time. ``conn``: in
        that connection's transaction (else one of its own)."""
        at = self._clock()
        with self._transaction(conn) as conn:
            repo.lock_site_mask(conn, site_id)
            repo.set_site_out_of_service(conn, site_id, on, actor, at)
            action: Action = RemoveFromService(actor) if on else ReturnToService(actor)
            alarms = repo.open_alarms_of_site(conn, site_id)
            return self._mask_each(conn, alarms, action, lambda a: a.out_of_service != on, at)

    def suppress_children(
        self, gateway_id: str, on: bool, *, conn: Connection[Any] | None = None
    ) -> list[Alarm]:
        """The gateway went offline (``on``) or came back: its devices' alarms (not its
        own) are suppressed by design meanwhile, including those raised meanwhile. The
        alarms changed; calling it twice changes nothing the second time. ``conn``: in
        that connection's transaction (else one of its own)."""
        at = self._clock()
        with self._transaction(conn) as conn:
            repo.lock_gateway_mask(conn, gateway_id)
            repo.set_gateway_suppressed(conn, gateway_id, on, at)
            action: Action = _SUPPRESS if on else _UNSUPPRESS
            alarms = repo.open_device_alarms_of_gateway(conn, gateway_id)
            return self._mask_each(conn, alarms, action, lambda a: a.suppressed != on, at)

    # -- sweepers -------------------------------------------------------------------------
    def escalate_due(self, now: datetime | None = None) -> list[Alarm]:
        """Escalate every unacknowledged alarm past its severity's timer, one level (one
        history entry, one ``alert.escalated``) at a time up to the level due; the
        alarms escalated."""
        at = now if now is not None else self._clock()
        timers = {s: t for s, t in self._policy.escalate_after.items() if t > timedelta(0)}
        if not timers or self._policy.max_escalation_level == 0:
            return []
        with self._pool.connection() as conn:
            waiting = repo.unacknowledged_before(conn, at - min(timers.values()), _SWEEP_BATCH)
            due = due_escalations(waiting, at, timers, max_level=self._policy.max_escalation_level)
            escalated = []
            for alarm, level in due:
                while alarm.escalation_level < level:
                    alarm = self._step(conn, alarm, _ESCALATE, at)
                escalated.append(alarm)
        return escalated

    def unshelve_due(self, now: datetime | None = None) -> list[Alarm]:
        """Unshelve every alarm whose shelf's time is up: back unacknowledged when its
        condition is present, else closed. The alarms unshelved."""
        at = now if now is not None else self._clock()
        with self._pool.connection() as conn:
            return [
                self._settle(conn, alarm, at)
                for alarm in repo.shelves_run_out(conn, at, _SWEEP_BATCH)
            ]

    # -- transitions ----------------------------------------------------------------------
    @contextmanager
    def _transaction(self, conn: Connection[Any] | None) -> Iterator[Connection[Any]]:
        """``conn`` as it is (its owner commits), else a pooled one committed at the end."""
        if conn is not None:
            yield conn
            return
        with self._pool.connection() as own:
            yield own

    def _open(
        self, conn: Connection[Any], condition: AlarmCondition, subject: AlarmSubject, at: datetime
    ) -> Alarm | None:
        suppressed, out_of_service = repo.masks_for(conn, subject)
        action = Raise(suppressed=suppressed, out_of_service=out_of_service)
        state = apply(AlarmState(severity=condition.severity), action, at, self._policy)
        alarm = repo.insert_alarm(conn, condition, state)
        if alarm is not None:
            self._record(conn, AlarmStatus.NORMAL, alarm, action, at)
            log.info(
                "alarm %s raised: %s on site %s (%s)",
                alarm.id,
                alarm.rule_id,
                alarm.site_id,
                alarm.state.value,
            )
        return alarm

    def _mask_each(
        self,
        conn: Connection[Any],
        alarms: list[Alarm],
        action: Action,
        differs: Callable[[Alarm], bool],
        at: datetime,
    ) -> list[Alarm]:
        """``action`` on each of ``alarms`` still open (once settled) whose mask flag
        ``differs`` from the one asked for."""
        changed = []
        for alarm in alarms:
            settled = self._settle(conn, alarm, at)
            if is_open(settled) and differs(settled):
                changed.append(self._step(conn, settled, action, at))
        return changed

    def _act(self, alarm_id: int, scope: Scope, action: Action) -> Alarm:
        at = self._clock()
        with self._pool.connection() as conn:
            alarm = _found(repo.get_alarm(conn, alarm_id, scope, for_update=True), alarm_id)
            return self._step(conn, alarm, action, at)

    def _step(self, conn: Connection[Any], alarm: Alarm, action: Action, at: datetime) -> Alarm:
        """Apply ``action`` to the locked ``alarm`` and record it; a shelf whose time is
        up is unshelved (and recorded) first."""
        alarm = self._settle(conn, alarm, at)
        after = apply(alarm, action, at, self._policy)
        repo.update_alarm(conn, after)
        if not (isinstance(action, Raise) and alarm.active):  # a repeat only counts
            self._record(conn, alarm.state, after, action, at)
        return after

    def _settle(self, conn: Connection[Any], alarm: Alarm, at: datetime) -> Alarm:
        if not shelf_expired(alarm, at):
            return alarm
        after = settle(alarm, at)
        repo.update_alarm(conn, after)
        self._record(conn, alarm.state, after, Unshelve(), at)
        return after

    @staticmethod
    def _record(
        conn: Connection[Any], before: AlarmStatus, after: Alarm, action: Action, at: datetime
    ) -> None:
        repo.insert_history(
            conn,
            after.id,
            at,
            action.kind.value,
            action.actor,
            before,
            after.state,
            _history_detail(action, after),
        )
        emit(conn, SCHEMA, alarm_changed_event(before, after, action, at))


def _found(alarm: Alarm | None, alarm_id: int) -> Alarm:
    if alarm is None:
        raise AlarmNotFound(f"alarm {alarm_id} does not exist")
    return alarm


def _history_detail(action: Action, after: Alarm) -> dict[str, Any]:
    """What a history entry says beyond its states."""
    if isinstance(action, Raise):
        return {"count": after.count}
    if isinstance(action, Shelve):
        return {"until": action.until.isoformat(), "reason": action.reason}
    if isinstance(action, Escalate):
        return {"level": after.escalation_level}
    return {}


def _flood(
    region: Region,
    since: datetime,
    until: datetime,
    window: timedelta,
    counts: list[tuple[int, Severity, int]],
    stale: int,
) -> FloodMetrics:
    n_windows = int((until - since) / window)
    per_window = [0] * n_windows
    mix = dict.fromkeys(Severity, 0)
    for k, severity, n in counts:
        per_window[min(max(k, 0), n_windows - 1)] += n
        mix[severity] += n
    windows = [
        FloodWindow(start=since + i * window, annunciated=n, flood=n > FLOOD_THRESHOLD)
        for i, n in enumerate(per_window)
    ]
    total = sum(per_window)
    in_flood = sum(w.flood for w in windows)
    return FloodMetrics(
        region=region,
        since=since,
        until=until,
        windows=windows,
        annunciated=total,
        per_hour=total / ((until - since) / timedelta(hours=1)),
        peak=max(per_window, default=0),
        windows_in_flood=in_flood,
        flood_percent=100.0 * in_flood / n_windows if n_windows else 0.0,
        stale=stale,
        priority_mix=mix,
    )
