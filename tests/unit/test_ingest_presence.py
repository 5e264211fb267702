"""Presence decisions (pure): which gateway and device transitions ingest announces."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cloud.ingest.presence import Announced, DeviceSeen, GatewaySeen, decide
from contracts.messages import DeviceStatus

NOW = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
NOBODY = Announced(gateways={}, devices={})


def _device(status: DeviceStatus) -> DeviceSeen:
    return DeviceSeen("gw-1", "SN-1", "au", status, 7)


def _told(status: DeviceStatus) -> Announced:
    return Announced(gateways={}, devices={"gw-1/SN-1": status})


def test_a_device_first_seen_online_is_not_announced() -> None:
    assert decide([], [_device("online")], NOBODY, NOW, 3.0) == []


def test_a_device_asleep_is_announced_asleep_not_offline() -> None:
    [t] = decide([], [_device("asleep")], _told("online"), NOW, 3.0)
    assert t.event_name == "device.asleep"
    assert t.event.payload == {
        "gateway_id": "gw-1",
        "device": "SN-1",
        "device_id": 7,
        "status": "asleep",
        "previous": "online",
    }
    assert t.online  # asleep is not offline
    assert (t.kind, t.key, t.status) == ("device", "gw-1/SN-1", "asleep")


def test_a_device_first_seen_asleep_or_faulty_is_announced_so() -> None:
    assert [t.event_name for t in decide([], [_device("asleep")], NOBODY, NOW, 3.0)] == [
        "device.asleep"
    ]
    assert [t.event_name for t in decide([], [_device("faulty")], NOBODY, NOW, 3.0)] == [
        "device.faulty"
    ]


def test_a_faulty_device_is_announced_faulty_and_online_once_it_recovers() -> None:
    [faulty] = decide([], [_device("faulty")], _told("online"), NOW, 3.0)
    assert (faulty.event_name, faulty.reason) == ("device.faulty", "reported faulty")
    [back] = decide([], [_device("online")], _told("faulty"), NOW, 3.0)
    assert back.event_name == "device.online"
    assert back.event.payload["previous"] == "faulty"


def test_unreachable_stays_device_offline_and_waking_up_is_device_online() -> None:
    [down] = decide([], [_device("unreachable")], _told("online"), NOW, 3.0)
    assert (down.event_name, down.online) == ("device.offline", False)
    [asleep] = decide([], [_device("asleep")], _told("unreachable"), NOW, 3.0)
    assert asleep.event_name == "device.asleep"
    [awake] = decide([], [_device("online")], _told("asleep"), NOW, 3.0)
    assert awake.event_name == "device.online"


def test_an_unchanged_status_is_announced_once_only() -> None:
    for status in ("online", "asleep", "unreachable", "faulty"):
        assert decide([], [_device(status)], _told(status), NOW, 3.0) == []


def test_a_silent_gateway_goes_offline_with_its_reason() -> None:
    silent = GatewaySeen("gw-1", "au", True, 60.0, NOW - timedelta(seconds=200))
    [t] = decide([silent], [], Announced(gateways={"gw-1": True}, devices={}), NOW, 3.0)
    assert (t.event_name, t.status, t.online) == ("gateway.offline", "offline", False)
    assert t.event.payload["reason"] == "silent for 200 s (limit 180 s)"
    assert t.event.region.value == "au"
