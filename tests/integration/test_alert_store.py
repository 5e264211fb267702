"""The alarm store against a real PostgreSQL: one open alarm per rule and subject even
when raisers race, history and ``alert.*`` events in the transaction of every
transition, operators scoped, masks, sweepers on an injected clock, flood metrics."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from cloud.adapters.postgres import Connection, ConnectionPool, UniqueViolation, create_pool
from cloud.alerts import repository as repo
from cloud.alerts.alarms import (
    OPEN_STATES,
    AlarmChanged,
    AlarmCondition,
    AlarmNotFound,
    AlarmState,
    AlarmStatus,
    AlarmSubject,
    IllegalTransition,
    Raise,
    Severity,
    ShelveRefused,
    apply,
)
from cloud.alerts.store import AlarmStore
from cloud.scope import Scope
from contracts.topics import Region
from tests.integration.api_world import migrated_database
from tests.waiting import until_sync

pytestmark = pytest.mark.integration

Pool = ConnectionPool[Connection[Any]]
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
HOUR = timedelta(hours=1)
ACCOUNT = "acc_" + "1" * 32
OTHER_ACCOUNT = "acc_" + "2" * 32
AU = Scope.of_region(Region.AU)
TABLES = (
    "alerts.alarms, alerts.alarm_history, alerts.outbox, alerts.suppressed_gateways,"
    " alerts.sites_out_of_service"
)


class Clock:
    """The store's time: set by the test, never the machine's."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, by: timedelta) -> datetime:
        self.now += by
        return self.now


@pytest.fixture(scope="module")
def migrated_url(postgres_server_url: str) -> Iterator[str]:
    """One database for the module with the alerts schema only."""
    with migrated_database(postgres_server_url, "alerts") as url:
        yield url


@pytest.fixture
def database_url(migrated_url: str) -> str:
    with psycopg.connect(migrated_url) as conn:
        conn.execute(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE")
    return migrated_url


@pytest.fixture
def pool(database_url: str) -> Iterator[Pool]:
    pool = create_pool(database_url, max_size=8, name="test-alarms")
    yield pool
    pool.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(pool: Pool, clock: Clock) -> AlarmStore:
    return AlarmStore(pool, clock=clock)


def condition(**changes: Any) -> AlarmCondition:
    fields: dict[str, Any] = {
        "region": "au",
        "rule_id": "isolator_open",
        "site_id": 5,
        "gateway_id": "gw-aaa",
        "device": "inv1",
        "severity": "high",
        "account_id": ACCOUNT,
        "title": "DC isolator open",
        "detail": {"pv_v": 0.0},
    }
    return AlarmCondition.model_validate({**fields, **changes})


def subject(**changes: Any) -> AlarmSubject:
    c = condition(**changes)
    return AlarmSubject(
        rule_id=c.rule_id, site_id=c.site_id, gateway_id=c.gateway_id, device=c.device
    )


def rows(url: str, query: str, params: Any = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(query, params).fetchall()


def history_of(url: str, alarm_id: int) -> list[tuple[Any, ...]]:
    return rows(
        url,
        "SELECT action, actor, from_state, to_state, at FROM alerts.alarm_history"
        " WHERE alarm_id = %s ORDER BY id",
        (alarm_id,),
    )


def events(url: str) -> list[tuple[str, str, int]]:
    return [
        (name, payload["state"], payload["alarm_id"])
        for name, payload in rows(url, "SELECT name, payload FROM alerts.outbox ORDER BY id")
    ]


def open_count(url: str) -> int:
    return int(rows(url, "SELECT count(*) FROM alerts.alarms WHERE closed_at IS NULL")[0][0])


# -- raising and dedupe -------------------------------------------------------------------


def test_a_raise_stores_the_alarm_its_history_and_its_event_together(
    store: AlarmStore, database_url: str
) -> None:
    alarm = store.raise_condition(condition())
    assert (alarm.state, alarm.count, alarm.region, alarm.account_id) == (
        AlarmStatus.UNACKNOWLEDGED,
        1,
        Region.AU,
        ACCOUNT,
    )
    assert alarm.id % 4 == 1  # an AU id (cloud/regional_ids.py)
    assert history_of(database_url, alarm.id) == [("raise", None, "normal", "unacknowledged", T0)]
    [(name, region, payload)] = rows(
        database_url, "SELECT name, region, payload FROM alerts.outbox"
    )
    assert (name, region) == ("alert.raised", "au")
    assert payload["alarm_id"] == alarm.id
    assert (payload["announce"], payload["closed"], payload["severity"]) == (True, False, "high")
    assert (payload["from_state"], payload["state"]) == ("normal", "unacknowledged")
    told = AlarmChanged.model_validate(payload)  # what a consumer reads
    assert (told.action, told.site_id, told.device, told.first_raised_at) == (
        "raise",
        5,
        "inv1",
        T0,
    )


def test_repeats_count_into_the_open_alarm_without_history_or_events(
    store: AlarmStore, clock: Clock, database_url: str
) -> None:
    first = store.raise_condition(condition())
    clock.advance(MIN)
    again = store.raise_condition(condition(detail={"pv_v": 0.5}))
    assert (again.id, again.count, again.first_raised_at, again.last_seen_at) == (
        first.id,
        2,
        T0,
        T0 + MIN,
    )
    assert again.detail == {"pv_v": 0.5}
    assert len(history_of(database_url, first.id)) == 1
    assert len(events(database_url)) == 1


def test_the_open_alarm_index_refuses_a_second_open_alarm_for_a_subject(
    database_url: str,
) -> None:
    state = apply(AlarmState(severity=Severity.HIGH), Raise(), T0)
    with psycopg.connect(database_url) as conn:
        assert repo.insert_alarm(conn, condition(), state) is not None
        assert repo.insert_alarm(conn, condition(), state) is None  # ON CONFLICT: nothing
        with pytest.raises(UniqueViolation):
            conn.execute(
                "INSERT INTO alerts.alarms (id, region, rule_id, severity, site_id, gateway_id,"
                " device, state, active, count, first_raised_at, last_seen_at, unacked_since,"
                " title) SELECT 99, region, rule_id, severity, site_id, gateway_id, device,"
                " state, active, count, first_raised_at, last_seen_at, unacked_since, title"
                " FROM alerts.alarms"
            )


def test_a_raiser_racing_an_uncommitted_raise_counts_into_its_alarm(
    store: AlarmStore, database_url: str
) -> None:
    state = apply(AlarmState(severity=Severity.HIGH), Raise(), T0)
    with psycopg.connect(database_url) as first:
        mine = repo.insert_alarm(first, condition(), state)  # not committed yet
        assert mine is not None
        with ThreadPoolExecutor(1) as worker:
            racing = worker.submit(store.raise_condition, condition())
            until_sync(
                lambda: rows(
                    database_url,
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND datname = current_database()",
                )[0][0],
                5,
                "the second raiser to wait on the open-alarm index",
            )
            first.commit()
            second = racing.result(timeout=10)
    assert (second.id, second.count) == (mine.id, 2)
    assert open_count(database_url) == 1


def test_many_raisers_at_once_make_one_alarm_that_counts_them_all(
    store: AlarmStore, database_url: str
) -> None:
    n = 8
    start = threading.Barrier(n)

    def raise_one(_: int) -> int:
        start.wait(timeout=10)
        return store.raise_condition(condition()).id

    with ThreadPoolExecutor(n) as workers:
        ids = set(workers.map(raise_one, range(n)))
    assert len(ids) == 1
    assert rows(database_url, "SELECT count FROM alerts.alarms") == [(n,)]
    assert [e[0] for e in events(database_url)] == ["alert.raised"]


def test_subjects_differ_by_rule_site_gateway_and_device(store: AlarmStore) -> None:
    ids = {
        store.raise_condition(condition()).id,
        store.raise_condition(condition(rule_id="riso_fault")).id,
        store.raise_condition(condition(device="inv2")).id,
        store.raise_condition(condition(device=None)).id,
        store.raise_condition(condition(gateway_id=None, device=None)).id,
        store.raise_condition(condition(site_id=9)).id,
    }
    assert len(ids) == 6
    assert store.raise_condition(condition(gateway_id=None, device=None)).count == 2


# -- clearing, acknowledging, closing -----------------------------------------------------


def test_acknowledged_then_cleared_closes_and_the_next_raise_opens_a_new_alarm(
    store: AlarmStore, clock: Clock, database_url: str
) -> None:
    first = store.raise_condition(condition())
    clock.advance(MIN)
    store.acknowledge(first.id, "usr_op", AU)
    clock.advance(MIN)
    closed = store.clear_condition(subject())
    assert closed is not None
    assert (closed.state, closed.closed_at) == (AlarmStatus.NORMAL, T0 + 2 * MIN)
    assert store.clear_condition(subject()) is None  # nothing open to clear
    clock.advance(MIN)
    second = store.raise_condition(condition())
    assert second.id != first.id
    assert second.count == 1
    assert history_of(database_url, first.id) == [
        ("raise", None, "normal", "unacknowledged", T0),
        ("acknowledge", "usr_op", "unacknowledged", "acknowledged", T0 + MIN),
        ("clear", None, "acknowledged", "normal", T0 + 2 * MIN),
    ]
    assert [e[0] for e in events(database_url)] == [
        "alert.raised",
        "alert.acknowledged",
        "alert.cleared",
        "alert.raised",
    ]


def test_cleared_before_acknowledgement_closes_on_acknowledgement(
    store: AlarmStore, clock: Clock
) -> None:
    alarm = store.raise_condition(condition())
    clock.advance(MIN)
    rtn = store.clear_condition(subject())
    assert rtn is not None
    assert rtn.state is AlarmStatus.RTN_UNACKNOWLEDGED
    closed = store.acknowledge(alarm.id, "usr_op", AU)
    assert (closed.state, closed.acked_by) == (AlarmStatus.NORMAL, "usr_op")


def test_a_refused_transition_writes_nothing(store: AlarmStore, database_url: str) -> None:
    alarm = store.raise_condition(condition())
    store.acknowledge(alarm.id, "usr_op", AU)
    with pytest.raises(IllegalTransition, match="state acknowledged"):
        store.acknowledge(alarm.id, "usr_op2", AU)
    with pytest.raises(ShelveRefused, match="beyond the high maximum"):
        store.shelve(alarm.id, T0 + 8 * HOUR + MIN, "usr_op", "storm", AU)
    assert len(history_of(database_url, alarm.id)) == 2
    assert len(events(database_url)) == 2
    assert store.get(alarm.id, AU).state is AlarmStatus.ACKNOWLEDGED


# -- scope --------------------------------------------------------------------------------


def test_operators_reach_only_alarms_in_their_scope(store: AlarmStore, database_url: str) -> None:
    alarm = store.raise_condition(condition())
    outside = [
        Scope.of_region(Region.US),
        Scope.of_account(Region.AU, OTHER_ACCOUNT),
        Scope.of_account(Region.AU, None),
    ]
    for scope in outside:
        with pytest.raises(AlarmNotFound):
            store.acknowledge(alarm.id, "usr_op", scope)
        with pytest.raises(AlarmNotFound):
            store.history(alarm.id, scope)
        assert store.list_alarms(scope).items == []
    assert len(history_of(database_url, alarm.id)) == 1
    mine = Scope.of_account(Region.AU, ACCOUNT)
    assert store.acknowledge(alarm.id, "usr_cust", mine).acked_by == "usr_cust"


def test_lists_are_scoped_filtered_and_paged_newest_first(store: AlarmStore, clock: Clock) -> None:
    au = [store.raise_condition(condition(device=f"inv{i}")).id for i in range(5)]
    us = store.raise_condition(
        condition(region="us", site_id=6, gateway_id="gw-us1", account_id=None)
    ).id
    store.acknowledge(au[0], "usr_op", AU)
    page = store.list_alarms(AU, limit=2)
    assert ([a.id for a in page.items], page.next_cursor) == ([au[4], au[3]], au[3])
    page = store.list_alarms(AU, limit=2, cursor=page.next_cursor)
    assert ([a.id for a in page.items], page.next_cursor) == ([au[2], au[1]], au[1])
    page = store.list_alarms(AU, limit=2, cursor=page.next_cursor)
    assert ([a.id for a in page.items], page.next_cursor) == ([au[0]], None)
    acked = store.list_alarms(Scope.everything(), states=[AlarmStatus.ACKNOWLEDGED])
    assert [a.id for a in acked.items] == [au[0]]
    assert [a.id for a in store.list_alarms(Scope.everything(), Region.US).items] == [us]
    assert store.list_alarms(AU, Region.US).items == []
    on_board = store.list_alarms(Scope.of_account(Region.AU, ACCOUNT), states=OPEN_STATES)
    assert sorted(a.id for a in on_board.items) == sorted(au)


# -- shelving -----------------------------------------------------------------------------


def test_a_shelf_runs_out_by_the_sweeper_and_the_alarm_comes_back(
    store: AlarmStore, clock: Clock, database_url: str
) -> None:
    alarm = store.raise_condition(condition())
    shelved = store.shelve(alarm.id, T0 + 2 * HOUR, "usr_op", "crew on the way", AU)
    assert (shelved.state, shelved.shelved_until) == (AlarmStatus.SHELVED, T0 + 2 * HOUR)
    assert store.unshelve_due(T0 + 2 * HOUR - MIN) == []
    [back] = store.unshelve_due(T0 + 2 * HOUR)
    assert (back.state, back.unacked_since) == (AlarmStatus.UNACKNOWLEDGED, T0 + 2 * HOUR)
    assert history_of(database_url, alarm.id)[1:] == [
        ("shelve", "usr_op", "unacknowledged", "shelved", T0),
        ("unshelve", None, "shelved", "unacknowledged", T0 + 2 * HOUR),
    ]
    assert rows(
        database_url, "SELECT detail FROM alerts.alarm_history WHERE action = 'shelve'"
    ) == [({"until": (T0 + 2 * HOUR).isoformat(), "reason": "crew on the way"},)]


def test_a_raise_after_a_run_out_shelf_of_a_cleared_alarm_opens_a_new_one(
    store: AlarmStore, clock: Clock, database_url: str
) -> None:
    alarm = store.raise_condition(condition())
    store.shelve(alarm.id, T0 + HOUR, "usr_op", "known", AU)
    clock.advance(MIN)
    store.clear_condition(subject())
    clock.advance(2 * HOUR)  # no sweeper ran meanwhile
    again = store.raise_condition(condition())
    assert again.id != alarm.id
    assert again.state is AlarmStatus.UNACKNOWLEDGED
    assert store.get(alarm.id, AU).state is AlarmStatus.NORMAL
    assert history_of(database_url, alarm.id)[-1] == (
        "unshelve",
        None,
        "shelved",
        "normal",
        T0 + MIN + 2 * HOUR,
    )


# -- masks --------------------------------------------------------------------------------


def test_a_gateway_offline_suppresses_its_devices_alarms_not_its_own(
    store: AlarmStore, clock: Clock
) -> None:
    device_alarm = store.raise_condition(condition())
    own = store.raise_condition(condition(rule_id="gateway_offline", device=None))
    clock.advance(MIN)
    changed = store.suppress_children("gw-aaa", True)
    assert [(a.id, a.state) for a in changed] == [(device_alarm.id, AlarmStatus.SUPPRESSED)]
    assert store.suppress_children("gw-aaa", True) == []
    assert store.get(own.id, AU).state is AlarmStatus.UNACKNOWLEDGED
    raised_meanwhile = store.raise_condition(condition(device="inv2"))
    assert raised_meanwhile.state is AlarmStatus.SUPPRESSED
    clock.advance(MIN)
    store.clear_condition(subject(device="inv2"))
    clock.advance(MIN)
    back = {a.id: a.state for a in store.suppress_children("gw-aaa", False)}
    assert back == {device_alarm.id: AlarmStatus.UNACKNOWLEDGED, raised_meanwhile.id: "normal"}
    assert store.raise_condition(condition(device="inv3")).state is AlarmStatus.UNACKNOWLEDGED


def test_a_site_under_work_is_out_of_service_with_who_did_it(
    store: AlarmStore, clock: Clock, database_url: str
) -> None:
    alarm = store.raise_condition(condition())
    clock.advance(MIN)
    [oos] = store.set_out_of_service(5, True, "usr_dispatch")
    assert (oos.id, oos.state) == (alarm.id, AlarmStatus.OUT_OF_SERVICE)
    assert store.raise_condition(condition(rule_id="riso_fault")).state is (
        AlarmStatus.OUT_OF_SERVICE
    )
    assert store.raise_condition(condition(site_id=9)).state is AlarmStatus.UNACKNOWLEDGED
    with pytest.raises(IllegalTransition):
        store.acknowledge(alarm.id, "usr_op", AU)
    clock.advance(MIN)
    store.clear_condition(subject())
    clock.advance(MIN)
    back = {a.rule_id: a.state for a in store.set_out_of_service(5, False, "usr_dispatch")}
    assert back == {"isolator_open": AlarmStatus.NORMAL, "riso_fault": "unacknowledged"}
    assert history_of(database_url, alarm.id)[1:] == [
        ("out_of_service", "usr_dispatch", "unacknowledged", "out_of_service", T0 + MIN),
        ("clear", None, "out_of_service", "out_of_service", T0 + 2 * MIN),
        ("return_to_service", "usr_dispatch", "out_of_service", "normal", T0 + 3 * MIN),
    ]


# -- escalation ---------------------------------------------------------------------------


def test_unacknowledged_alarms_escalate_one_level_per_timer(
    store: AlarmStore, clock: Clock, database_url: str
) -> None:
    high = store.raise_condition(condition())  # 15 min per level, 2 levels
    medium = store.raise_condition(condition(rule_id="riso_fault", severity="medium"))  # 1 h
    acked = store.raise_condition(condition(rule_id="grid_trip"))
    store.acknowledge(acked.id, "usr_op", AU)
    assert store.escalate_due(T0 + 14 * MIN) == []
    [one] = store.escalate_due(T0 + 31 * MIN)
    assert (one.id, one.escalation_level, one.escalated_at) == (high.id, 2, T0 + 31 * MIN)
    assert store.escalate_due(T0 + 31 * MIN) == []
    assert [(a.id, a.escalation_level) for a in store.escalate_due(T0 + 3 * HOUR)] == [
        (medium.id, 2)
    ]
    assert history_of(database_url, high.id)[1:] == [
        ("escalate", None, "unacknowledged", "unacknowledged", T0 + 31 * MIN),
        ("escalate", None, "unacknowledged", "unacknowledged", T0 + 31 * MIN),
    ]
    levels = rows(
        database_url,
        "SELECT payload->'escalation_level' FROM alerts.outbox"
        " WHERE name = 'alert.escalated' AND (payload->>'alarm_id')::bigint = %s ORDER BY id",
        (high.id,),
    )
    assert levels == [(1,), (2,)]


# -- flood metrics ------------------------------------------------------------------------


def test_flood_metrics_count_annunciations_per_window_stale_alarms_and_the_mix(
    store: AlarmStore, clock: Clock
) -> None:
    now = T0 + 2 * 24 * HOUR
    # A stale one: raised 25 h before now, still on the board (its raise is outside the day).
    clock.now = now - 25 * HOUR
    store.raise_condition(condition(rule_id="stale", severity="low"))
    # Window 0 of the day ([now - 24 h, + 10 min)): 11 alarms, a flood.
    clock.now = now - 24 * HOUR
    for i in range(11):
        store.raise_condition(condition(device=f"d{i}", severity="low"))
    # The last window: 2 alarms, and a repeat (no new annunciation).
    clock.now = now - 5 * MIN
    store.raise_condition(condition(rule_id="late", severity="medium"))
    store.raise_condition(condition(rule_id="late", severity="medium"))
    store.raise_condition(condition(rule_id="late2", severity="high"))
    # Another region's alarms are another queue.
    store.raise_condition(condition(region="us", site_id=6, gateway_id="gw-us1"))
    metrics = store.flood_metrics(Region.AU, now)
    assert (metrics.since, metrics.until) == (now - 24 * HOUR, now)
    assert len(metrics.windows) == 144
    assert metrics.windows[0].start == now - 24 * HOUR
    assert [(w.annunciated, w.flood) for w in metrics.windows[:2]] == [(11, True), (0, False)]
    assert (metrics.windows[-1].start, metrics.windows[-1].annunciated) == (now - 10 * MIN, 2)
    assert (metrics.annunciated, metrics.peak, metrics.windows_in_flood) == (13, 11, 1)
    assert metrics.per_hour == pytest.approx(13 / 24)
    assert metrics.flood_percent == pytest.approx(100 / 144)
    assert metrics.stale == 1
    assert metrics.priority_mix == {
        Severity.LOW: 11, Severity.MEDIUM: 1, Severity.HIGH: 1, Severity.URGENT: 0
    }  # fmt: skip
    theirs = store.flood_metrics(Region.AU, now, scope=Scope.of_account(Region.AU, OTHER_ACCOUNT))
    assert (theirs.annunciated, theirs.stale) == (0, 0)


def test_an_alarm_raised_while_its_gateway_is_being_suppressed_ends_up_suppressed(
    store: AlarmStore, database_url: str
) -> None:
    with psycopg.connect(database_url) as first:  # suppress_children's steps, not committed
        repo.lock_gateway_mask(first, "gw-aaa")
        repo.set_gateway_suppressed(first, "gw-aaa", True, T0)
        with ThreadPoolExecutor(1) as worker:
            racing = worker.submit(store.raise_condition, condition())
            until_sync(
                lambda: rows(
                    database_url,
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'advisory'"
                    " AND datname = current_database()",
                )[0][0],
                5,
                "the raiser to wait for the gateway's mask",
            )
            first.commit()
            raised = racing.result(timeout=10)
    assert raised.state is AlarmStatus.SUPPRESSED
