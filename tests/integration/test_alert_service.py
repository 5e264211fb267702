"""The alerts service on a real PostgreSQL and the real event runtime (in-process bus):
the registry's gateway news, ingest's gateway and device events and gateway presence go
in through the bus; alarms, their ``alert.*`` events and the evaluator's state come out in
one transaction per event. Time is an injected clock."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from cloud.adapters.postgres import Connection, ConnectionPool
from cloud.alerts import AlarmStatus, AlertService, UnknownGateway
from cloud.bootstrap import cloud_events
from cloud.events.bus import InProcessBus
from cloud.events.outbox import Event
from cloud.events.types import (
    ConfigOutcome,
    DeviceDayCompleteness,
    DevicePresence,
    GatewayBirth,
    GatewayEventReported,
    GatewayPresence,
    GatewayRegistration,
    InstallationChanged,
    config_outcome_event,
    device_day_completeness_event,
    device_presence_event,
    gateway_birth_event,
    gateway_presence_event,
    gateway_registration_event,
    installation_changed_event,
)
from cloud.events.workorders import WorkOrderChanged, workorder_event_name
from cloud.ingest.announce import TelemetryStored, telemetry_received
from cloud.scope import Scope
from contracts.messages import DeviceInfo
from contracts.topics import Region
from tests.integration.dispatch_world import SetClock, clock_fixture, database_fixtures

pytestmark = pytest.mark.integration

Pool = ConnectionPool[Connection[Any]]
T0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)  # 13:00 in Sydney
MIN = timedelta(minutes=1)
GW, GW2 = "gw-alerts-1", "gw-alerts-2"
SITE, SITE2 = 7, 8
ACCOUNT = "acc_" + "a" * 32
OTHER = "acc_" + "b" * 32
TABLES = (
    "alerts.alarms, alerts.alarm_history, alerts.outbox, alerts.inbox,"
    " alerts.suppressed_gateways, alerts.sites_out_of_service, alerts.gateways,"
    " alerts.evaluator_state, alerts.series_state, alerts.installations, alerts.devices,"
    " alerts.work_orders"
)


clock = clock_fixture(SetClock, T0)
migrated_url, pool = database_fixtures("alerts", TABLES, max_size=6, name="test-alert-service")


@pytest.fixture
def service(pool: Pool, clock: SetClock) -> AlertService:
    return AlertService(pool, clock=clock)


@pytest.fixture
async def bus(pool: Pool, service: AlertService) -> AsyncIterator[InProcessBus]:
    """The alerts service's consumers and its outbox's relay, as the bootstrap wires
    them; both gateways registered (GW: ACCOUNT's site) before any test event."""
    bus = InProcessBus()
    async with cloud_events(pool, alerts=service, outboxes=("alerts",), bus=bus):
        await bus.publish(
            [_registration(GW, SITE, ACCOUNT), _registration(GW2, SITE2, None)], timeout_s=10
        )
        yield bus
    assert bus.dead_letters == []


def _registration(
    gateway_id: str, site_id: int, account_id: str | None, *, located: bool = False
) -> Event:
    reg = GatewayRegistration(
        gateway_id=gateway_id,
        site_id=site_id,
        region=Region.AU,
        time_zone="Australia/Sydney",
        account_id=account_id,
        # Sydney, as the registry's site record gives it
        latitude=-33.87 if located else None,
        longitude=151.21 if located else None,
    )
    return gateway_registration_event(reg, registered=located is False)


def _gateway_event(name: str, at: datetime, device: str = "iso1", seq: int = 1) -> Event:
    payload = GatewayEventReported(
        gateway_id=GW,
        event=name,
        severity="critical",
        device=device,
        detail={"metric": "isolator_state", "value": 0.0, "ts": at.isoformat()},
        stream_id=uuid.UUID(int=1),
        seq=seq,
    )
    return Event(
        name=f"gateway.{name}",
        region=Region.AU,
        source="ingest",
        occurred_at=at,
        payload=payload.model_dump(mode="json"),
    )


def _presence(gateway_id: str, online: bool, at: datetime) -> Event:
    return gateway_presence_event(
        "au", online, GatewayPresence(gateway_id=gateway_id), occurred_at=at
    )


def _device(device: str, status: Any, at: datetime, gateway_id: str = GW) -> Event:
    presence = DevicePresence(gateway_id=gateway_id, device=device, status=status)
    return device_presence_event("au", presence, occurred_at=at)


def _outbox(pool: Pool) -> list[tuple[str, str]]:
    with pool.connection() as conn:
        rows = conn.execute(
            "SELECT name, payload->>'rule_id' FROM alerts.outbox ORDER BY id"
        ).fetchall()
    return [(name, rule) for name, rule in rows]


def _state_version(pool: Pool) -> int:
    with pool.connection() as conn:
        row = conn.execute(
            "SELECT version FROM alerts.evaluator_state WHERE region = 'au'"
        ).fetchone()
    assert row is not None
    return int(row[0])


def _board(service: AlertService, scope: Scope) -> list[tuple[str, str | None, AlarmStatus]]:
    page = service.store.list_alarms(scope)
    return sorted((a.rule_id, a.device or a.gateway_id, a.state) for a in page.items)


async def test_an_isolator_found_open_raises_one_urgent_alarm_for_the_sites_account(
    bus: InProcessBus, service: AlertService, pool: Pool, clock: SetClock
) -> None:
    opened = _gateway_event("isolator_opened", T0)
    await bus.publish([opened], timeout_s=10)

    [alarm] = service.store.list_alarms(Scope.of_account(Region.AU, ACCOUNT)).items
    assert (alarm.rule_id, alarm.severity.value, alarm.state) == (
        "dc-isolator-open",
        "urgent",
        AlarmStatus.UNACKNOWLEDGED,
    )
    assert (alarm.site_id, alarm.gateway_id, alarm.device, alarm.account_id) == (
        SITE,
        GW,
        "iso1",
        ACCOUNT,
    )
    assert alarm.detail["notify"] == {
        "to": ["customer", "mosie", "operators"], "safety_notice": True
    }  # fmt: skip
    assert _outbox(pool) == [("alert.raised", "dc-isolator-open")]
    # The board by scope: another account and another region see nothing of it.
    assert service.store.list_alarms(Scope.of_account(Region.AU, OTHER)).items == []
    assert service.store.list_alarms(Scope.of_region(Region.US)).items == []

    written = _state_version(pool)
    await bus.publish([opened], timeout_s=10)  # redelivered: nothing more, not even state
    [again] = service.store.list_alarms(Scope.of_region(Region.AU)).items
    assert (again.id, again.count) == (alarm.id, 1)
    assert _outbox(pool) == [("alert.raised", "dc-isolator-open")]
    assert _state_version(pool) == written

    clock.now = T0 + 5 * MIN
    await bus.publish([_gateway_event("isolator_closed", T0 + 5 * MIN, seq=2)], timeout_s=10)
    assert _board(service, Scope.of_region(Region.AU)) == [
        ("dc-isolator-open", "iso1", AlarmStatus.RTN_UNACKNOWLEDGED)
    ]
    assert _outbox(pool) == [
        ("alert.raised", "dc-isolator-open"),
        ("alert.cleared", "dc-isolator-open"),
    ]


async def test_device_alarms_are_suppressed_while_their_gateway_is_offline(
    bus: InProcessBus, service: AlertService, clock: SetClock
) -> None:
    au = Scope.of_region(Region.AU)
    await bus.publish([_device("inv1", "faulty", T0)], timeout_s=10)
    assert _board(service, au) == [("device-faulty", "inv1", AlarmStatus.UNACKNOWLEDGED)]

    clock.now = T0 + MIN
    await bus.publish([_presence(GW, False, T0 + MIN)], timeout_s=10)
    assert _board(service, au) == [("device-faulty", "inv1", AlarmStatus.SUPPRESSED)]

    clock.now = T0 + 2 * MIN  # raised meanwhile (a late event): hidden from the start
    await bus.publish([_device("inv2", "faulty", T0 + 2 * MIN)], timeout_s=10)
    assert _board(service, au) == [
        ("device-faulty", "inv1", AlarmStatus.SUPPRESSED),
        ("device-faulty", "inv2", AlarmStatus.SUPPRESSED),
    ]

    clock.now = T0 + 5 * MIN  # back before the 30 minutes of gateway-offline
    await bus.publish([_presence(GW, True, T0 + 5 * MIN)], timeout_s=10)
    assert _board(service, au) == [
        ("device-faulty", "inv1", AlarmStatus.UNACKNOWLEDGED),
        ("device-faulty", "inv2", AlarmStatus.UNACKNOWLEDGED),
    ]


async def test_offline_raises_after_its_minutes_of_clock_time_and_never_for_a_sleeper(
    bus: InProcessBus, pool: Pool, clock: SetClock
) -> None:
    au = Scope.of_region(Region.AU)
    await bus.publish(
        [
            _presence(GW2, False, T0),
            _device("inv1", "asleep", T0),  # a PV inverter at night: never offline
            _device("inv2", "unreachable", T0),
        ],
        timeout_s=10,
    )
    # A service started afresh (a restart): it goes on from the stored evaluator state.
    restarted = AlertService(pool, clock=clock)

    clock.now = T0 + 29 * MIN
    assert restarted.sweep().raised == 0
    assert _board(restarted, au) == []

    clock.now = T0 + 30 * MIN  # gateway-offline: 30 minutes
    assert restarted.sweep().raised == 1
    assert _board(restarted, au) == [("gateway-offline", GW2, AlarmStatus.UNACKNOWLEDGED)]

    clock.now = T0 + 3 * 60 * MIN  # device-unreachable: 60 minutes; the sleeper never
    assert restarted.sweep().raised == 1
    assert _board(restarted, au) == [
        ("device-unreachable", "inv2", AlarmStatus.UNACKNOWLEDGED),
        ("gateway-offline", GW2, AlarmStatus.UNACKNOWLEDGED),
    ]
    assert restarted.sweep().raised == 0

    # Back on the first service (another process, say): it sees the state the restarted
    # one wrote, not what it held in memory, so the alarm clears once, raised once.
    clock.now = T0 + 3 * 60 * MIN + MIN
    await bus.publish([_presence(GW2, True, clock.now)], timeout_s=10)
    [gateway_alarm] = [
        a for a in restarted.store.list_alarms(au).items if a.rule_id == "gateway-offline"
    ]
    assert (gateway_alarm.state, gateway_alarm.count) == (AlarmStatus.RTN_UNACKNOWLEDGED, 1)


async def test_a_failed_config_raises_until_one_applies(
    bus: InProcessBus, service: AlertService
) -> None:
    def outcome(status: Any) -> Event:
        return config_outcome_event(
            uuid.uuid4(),
            "au",
            ConfigOutcome(
                gateway_id=GW,
                version=3,
                desired_version=3,
                hash=None,
                status=status,
                devices={},
                drift=[],
                detail="",
            ),
        )

    au = Scope.of_region(Region.AU)
    await bus.publish([outcome("failed")], timeout_s=10)
    assert _board(service, au) == [("config-failed", GW, AlarmStatus.UNACKNOWLEDGED)]
    await bus.publish([outcome("applied")], timeout_s=10)
    assert _board(service, au) == [("config-failed", GW, AlarmStatus.RTN_UNACKNOWLEDGED)]


def test_an_event_of_an_unknown_gateway_is_refused_unrecorded(
    service: AlertService, pool: Pool
) -> None:
    event_id = uuid.uuid4()
    with pytest.raises(UnknownGateway):
        service.handle(event_id, "gw-nobody", "gateway.offline", T0)
    with pool.connection() as conn:
        assert conn.execute("SELECT count(*) FROM alerts.inbox").fetchone() == (0,)


def _telemetry(seq: int, *samples: tuple[str, str, datetime, float]) -> Event:
    """Ingest's ``telemetry.received`` of one stored message (built by ingest's own
    builder) carrying ``samples``."""
    stored = TelemetryStored(
        "au", GW, uuid.UUID(int=9), seq, len(samples), len(samples), frozenset({1}),
        None, None, samples,
    )  # fmt: skip
    [event] = telemetry_received([stored], samples[-1][2])
    return event


async def test_stored_voltages_raise_and_clear_after_their_delays_across_a_restart(
    bus: InProcessBus, pool: Pool, clock: SetClock
) -> None:
    # grid-overvoltage in au (base.yaml): above 253 V for 600 s raises; below 250 V
    # (253 - deadband 3) for 300 s clears; only a meter's grid_l1_v.
    au = Scope.of_region(Region.AU)
    s = timedelta(seconds=1)
    await bus.publish(
        [
            _telemetry(1, ("MTR-1", "grid_l1_v", T0, 255.0)),
            _telemetry(2, ("MTR-1", "grid_l1_v", T0 + 300 * s, 256.0)),
        ],
        timeout_s=10,
    )
    restarted = AlertService(pool, clock=clock)  # the pending condition was stored
    assert _board(restarted, au) == []
    raising = _telemetry(3, ("MTR-1", "grid_l1_v", T0 + 600 * s, 254.0))
    assert restarted.handle_samples(raising.id, GW, [("MTR-1", "grid_l1_v", T0 + 600 * s, 254.0)])
    assert _board(restarted, au) == [("grid-overvoltage", "MTR-1", AlarmStatus.UNACKNOWLEDGED)]
    [alarm] = restarted.store.list_alarms(au).items
    assert alarm.detail["value"] == 254.0

    # The same event again through the bus (the first service, another process): the
    # inbox refuses it, and that service reads the state the other one wrote.
    await bus.publish([raising], timeout_s=10)
    await bus.publish(
        [
            _telemetry(4, ("MTR-1", "grid_l1_v", T0 + 700 * s, 251.0)),  # in the deadband
            _telemetry(5, ("MTR-1", "grid_l1_v", T0 + 800 * s, 249.0)),  # back: 300 s to go
            _telemetry(6, ("MTR-1", "grid_l1_v", T0 + 1000 * s, 249.5)),
        ],
        timeout_s=10,
    )
    assert _board(restarted, au) == [
        ("grid-overvoltage", "MTR-1", AlarmStatus.UNACKNOWLEDGED)
    ]  # fmt: skip
    await bus.publish([_telemetry(7, ("MTR-1", "grid_l1_v", T0 + 1100 * s, 249.0))], timeout_s=10)
    [alarm] = restarted.store.list_alarms(au).items
    assert (alarm.rule_id, alarm.state, alarm.count) == (
        "grid-overvoltage", AlarmStatus.RTN_UNACKNOWLEDGED, 1
    )  # fmt: skip
    assert _outbox(pool) == [
        ("alert.raised", "grid-overvoltage"),
        ("alert.cleared", "grid-overvoltage"),
    ]
    with pool.connection() as conn:
        rows = conn.execute("SELECT gateway_id, version FROM alerts.series_state").fetchall()
    assert rows == [(GW, 7)]  # one row for the gateway; each event wrote it once


async def test_a_grid_voltage_both_meters_see_raises_once_for_the_grid_meter(
    bus: InProcessBus, service: AlertService
) -> None:
    # The record names PoTR's system meter (billing) and the grid meter: the grid rules
    # watch the grid meter; the system meter sees the same premises' voltage.
    record = InstallationChanged(
        site_id=SITE,
        region=Region.AU,
        pv_kwp=Decimal("5.000"),
        tilt_deg=Decimal("20.0"),
        azimuth_deg=Decimal("0.0"),
        battery_kwh=Decimal("0"),
        updated_at=T0,
        billing_meter="PWR-7",
        grid_meter="MTR-1",
    )
    s = timedelta(seconds=1)
    both = [(m, "grid_l1_v", at, 256.0) for at in (T0, T0 + 600 * s) for m in ("MTR-1", "PWR-7")]
    await bus.publish(
        [installation_changed_event(record), _telemetry(1, *both[:2]), _telemetry(2, *both[2:])],
        timeout_s=10,
    )
    au = Scope.of_region(Region.AU)
    assert _board(service, au) == [("grid-overvoltage", "MTR-1", AlarmStatus.UNACKNOWLEDGED)]


async def test_a_battery_below_its_health_for_a_day_raises_and_an_inverter_voltage_never(
    bus: InProcessBus, service: AlertService
) -> None:
    au = Scope.of_region(Region.AU)
    day = timedelta(days=1)
    await bus.publish(
        [
            _telemetry(1, ("BAT-1", "battery_soh_pct", T0, 65.0)),
            # An inverter's own phase voltage is not the grid's: no rule reads pv_l1_v.
            _telemetry(2, ("INV-1", "pv_l1_v", T0, 300.0), ("INV-1", "pv_l1_v", T0 + day, 300.0)),
            _telemetry(3, ("BAT-1", "battery_soh_pct", T0 + day, 64.5)),
        ],
        timeout_s=10,
    )
    assert _board(service, au) == [("battery-soh-low", "BAT-1", AlarmStatus.UNACKNOWLEDGED)]


def _located(at: datetime) -> list[Event]:
    """GW's site gets its location (registry) and its array (customers): 5 kWp facing
    north at 20 degrees."""
    array = InstallationChanged(
        site_id=SITE,
        region=Region.AU,
        pv_kwp=Decimal("5.000"),
        tilt_deg=Decimal("20.0"),
        azimuth_deg=Decimal("0.0"),
        battery_kwh=Decimal("0"),
        updated_at=at,
    )
    return [_registration(GW, SITE, ACCOUNT, located=True), installation_changed_event(array)]


async def test_no_production_through_a_sunny_midday_raises_and_production_clears_it(
    bus: InProcessBus, service: AlertService
) -> None:
    # no-production-in-daylight (base.yaml): a 3 h window producing below 5 % of the
    # clear-sky expectation, judged when the expectation is at least 1000 Wh. In Sydney
    # on 1 March, 09:00-15:00 AEDT (22:00-04:00 UTC) a clear sky gives a 5 kWp array far
    # more than 1000 Wh in any 3 h (over 2 kW for hours), and never more than its
    # nameplate: 5 kW x 3 h = 15000 Wh.
    au = Scope.of_region(Region.AU)
    await bus.publish(_located(T0), timeout_s=10)
    morning = datetime(2026, 2, 28, 22, 0, tzinfo=UTC)  # 09:00 AEDT on 1 March
    ten_past = timedelta(minutes=10)

    def counter(seq: int, hour: int, wh: float) -> Event:
        return _telemetry(
            seq, ("INV-1", "pv_wh", morning + hour * timedelta(hours=1) + ten_past, wh)
        )

    # The night before: the counter stands still while the expectation is nothing.
    night = datetime(2026, 2, 28, 12, 0, tzinfo=UTC)  # 23:00 AEDT
    await bus.publish(
        [_telemetry(100 + h, ("INV-1", "pv_wh", night + h * timedelta(hours=1), 5_000.0))
         for h in range(6)],
        timeout_s=10,
    )  # fmt: skip
    assert _board(service, au) == []
    # Through the morning it produces 50 Wh an hour: 150 Wh in 3 h, 1 % of 15 kWh and
    # below 5 % of any expectation above 3000 Wh.
    await bus.publish([counter(h + 1, h, 5_000.0 + 50 * h) for h in range(5)], timeout_s=10)
    assert _board(service, au) == [
        ("no-production-in-daylight", GW, AlarmStatus.UNACKNOWLEDGED)
    ]  # fmt: skip
    [alarm] = service.store.list_alarms(au).items
    assert alarm.device is None
    assert alarm.detail["value"] < 0.05
    assert alarm.detail["notify"]["to"] == ["customer", "operators"]

    # Then 3 kWh an hour: 9000 Wh in 3 h, at least 60 % of any expectation up to
    # 15000 Wh, past 5 % + the deadband: cleared.
    base = 5_000.0 + 50 * 4
    await bus.publish(
        [counter(10 + h, h, base + 3_000 * (h - 4)) for h in range(5, 9)], timeout_s=10
    )
    [alarm] = service.store.list_alarms(au).items
    assert (alarm.rule_id, alarm.state) == (
        "no-production-in-daylight", AlarmStatus.RTN_UNACKNOWLEDGED
    )  # fmt: skip


async def test_an_isolator_opened_at_night_waits_for_the_sites_sunrise(
    bus: InProcessBus, service: AlertService, clock: SetClock
) -> None:
    # Sydney, 2 March 2026: sunrise about 06:50 AEDT (19:50 UTC on 1 March).
    au = Scope.of_region(Region.AU)
    night = datetime(2026, 3, 1, 14, 0, tzinfo=UTC)  # 01:00 AEDT
    await bus.publish(_located(night), timeout_s=10)
    await bus.publish([_gateway_event("isolator_opened", night)], timeout_s=10)
    assert _board(service, au) == []
    clock.now = night + timedelta(hours=3)  # 04:00 AEDT
    assert service.sweep().raised == 0
    clock.now = night + timedelta(hours=8)  # 09:00 AEDT
    assert service.sweep().raised == 1
    [alarm] = service.store.list_alarms(au).items
    assert (alarm.rule_id, alarm.severity.value, alarm.state) == (
        "dc-isolator-open", "urgent", AlarmStatus.UNACKNOWLEDGED
    )  # fmt: skip
    assert service.sweep().raised == 0


async def test_a_meters_incomplete_day_raises_and_a_sleeping_inverters_never(
    bus: InProcessBus, service: AlertService
) -> None:
    # data-incomplete (base.yaml): a device-day below 80 % of its expected samples, for
    # devices that answer day and night (meters, batteries, isolators); the kinds come
    # from the gateway's birth (SunSpec 203: a meter; 103: an inverter).
    au = Scope.of_region(Region.AU)
    devices = [
        DeviceInfo(device="MTR-1", endpoint="tcp://10.0.0.2:502", unit_id=2, models=[1, 203]),
        DeviceInfo(device="INV-1", endpoint="tcp://10.0.0.2:502", unit_id=1, models=[1, 103]),
    ]
    birth = GatewayBirth(
        gateway_id=GW, stream_id=uuid.UUID(int=3), boot_id="b1", agent_version="1",
        publish_interval_s=60, devices=devices,
    )  # fmt: skip

    def day(device: str, d: int, stored: int | None) -> Event:
        payload = DeviceDayCompleteness(
            gateway_id=GW, device=device, site_id=SITE, day=T0.date() + timedelta(days=d),
            time_zone="Australia/Sydney", expected=288 if stored is not None else 0,
            stored=stored or 0, percent=None if stored is None else 100 * stored / 288,
        )  # fmt: skip
        closed = T0 + timedelta(days=d + 1)
        return device_day_completeness_event(payload, "au", occurred_at=closed)

    await bus.publish([gateway_birth_event("au", birth, occurred_at=T0)], timeout_s=10)
    # 216 of 288 is 75 %; the inverter's 144 (asleep half the day) is nobody's alarm.
    await bus.publish([day("MTR-1", 0, 216), day("INV-1", 0, 144)], timeout_s=10)
    assert _board(service, au) == [("data-incomplete", "MTR-1", AlarmStatus.UNACKNOWLEDGED)]
    [alarm] = service.store.list_alarms(au).items
    assert alarm.detail["value"] == 75.0
    # A day with nothing expected judges nothing; a full day clears.
    await bus.publish([day("MTR-1", 1, None)], timeout_s=10)
    assert _board(service, au) == [("data-incomplete", "MTR-1", AlarmStatus.UNACKNOWLEDGED)]
    await bus.publish([day("MTR-1", 2, 288)], timeout_s=10)
    assert _board(service, au) == [("data-incomplete", "MTR-1", AlarmStatus.RTN_UNACKNOWLEDGED)]


def _work_order(number: int, status: str, on_site: bool, at: datetime) -> Event:
    """Dispatch's ``workorder.<status>`` for a job at SITE."""
    order = WorkOrderChanged(
        work_order_id=number, region="au", site_id=SITE, gateway_ids=[GW],
        type="inverter_fault", priority="P2", status=status, at=at, on_site=on_site,
    )  # fmt: skip
    return Event(
        name=workorder_event_name(status),
        region=Region.AU,
        source="dispatch",
        occurred_at=at,
        payload=order.model_dump(mode="json"),
    )


async def test_a_site_is_out_of_service_while_any_technician_is_on_it(
    bus: InProcessBus, service: AlertService, clock: SetClock
) -> None:
    au = Scope.of_region(Region.AU)
    await bus.publish([_device("inv1", "faulty", T0)], timeout_s=10)
    first_on = _work_order(1, "on_site", True, T0 + MIN)
    await bus.publish([first_on, _work_order(2, "on_site", True, T0 + 2 * MIN)], timeout_s=10)
    assert _board(service, au) == [("device-faulty", "inv1", AlarmStatus.OUT_OF_SERVICE)]
    # Raised meanwhile: out of service from the start, told to nobody.
    await bus.publish([_device("inv2", "faulty", T0 + 3 * MIN)], timeout_s=10)
    assert _board(service, au) == [
        ("device-faulty", "inv1", AlarmStatus.OUT_OF_SERVICE),
        ("device-faulty", "inv2", AlarmStatus.OUT_OF_SERVICE),
    ]
    # The first technician leaves (resolved), the second is still there.
    await bus.publish([_work_order(1, "resolved", False, T0 + 4 * MIN)], timeout_s=10)
    await bus.publish([first_on], timeout_s=10)  # redelivered: changes nothing
    assert {state for *_, state in _board(service, au)} == {AlarmStatus.OUT_OF_SERVICE}
    await bus.publish([_work_order(2, "on_hold", False, T0 + 5 * MIN)], timeout_s=10)
    assert _board(service, au) == [
        ("device-faulty", "inv1", AlarmStatus.UNACKNOWLEDGED),
        ("device-faulty", "inv2", AlarmStatus.UNACKNOWLEDGED),
    ]
