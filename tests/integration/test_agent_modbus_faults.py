"""Reliability scenario 10: the agent's pollers against simulated devices whose faults are
switched at runtime — timeouts, exception responses, 0x8000 / NaN values, a scale-factor
change, a device asleep at night, a slow device, a wrong unit id — plus the same agent
code over Modbus RTU (socat pty pair) and a device whose models change.

Pass criteria: healthy devices keep their period (every interval between two of their
polls within 10 %); bad values are null with a quality flag; a scale-factor change is
applied in the very poll it happens; every poller task is still running at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from contracts.events import GatewayEvent
from contracts.messages import Quality, Reading
from contracts.timeutil import utc_now
from device_profiles import builtin_profile
from device_profiles.sunspec_codec import device_image
from edge_agent.modbus import ModbusEndpoint, open_endpoint
from edge_agent.poller import DevicePoller, DeviceRegistry, NightCheck
from edge_agent.settings import EndpointSettings, RtuEndpointSettings
from simulators.device_site import DeviceSite, DeviceSiteSettings, DeviceSpec
from tests.integration import sunspec_oracle as oracle
from tests.waiting import until

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

NOON_SYDNEY = datetime(2024, 1, 10, 2, 0, tzinfo=UTC)
MIDNIGHT_SYDNEY = datetime(2024, 1, 10, 13, 0, tzinfo=UTC)
PERIOD_S = 0.5


def _site(site_id: str, *specs: DeviceSpec, start: datetime = NOON_SYDNEY, **kw: Any) -> DeviceSite:
    return DeviceSite(
        DeviceSiteSettings(
            site_id=site_id,
            start_time=start,
            update_period_s=3600.0,  # physics still unless a test ticks it
            devices=list(specs),
            **kw,
        )
    )


class Events:
    def __init__(self) -> None:
        self.items: list[tuple[str, str | None, dict[str, Any]]] = []

    async def __call__(self, event: GatewayEvent) -> None:
        self.items.append((event.type.value, event.device, event.detail.wire()))

    def of(self, endpoint: str, unit: int) -> list[str]:
        return [
            e for e, _, d in self.items if (d.get("endpoint"), d.get("unit_id")) == (endpoint, unit)
        ]


class Rig:
    """Pollers as the agent runs them, their readings per (endpoint, unit), their events."""

    def __init__(self) -> None:
        self.registry = DeviceRegistry()
        self.queue: asyncio.Queue[Reading] = asyncio.Queue()
        self.events = Events()
        self.pollers: dict[tuple[str, int], DevicePoller] = {}
        self.endpoints: list[ModbusEndpoint] = []
        self.readings: dict[tuple[str, int], list[Reading]] = defaultdict(list)
        self.tasks: list[asyncio.Task[None]] = []

    def add(
        self,
        settings: EndpointSettings | RtuEndpointSettings,
        *,
        is_night: NightCheck | None = None,
    ) -> None:
        endpoint = open_endpoint(settings)
        self.endpoints.append(endpoint)
        for unit in settings.unit_ids:
            name = settings.profile_for(unit)
            self.pollers[(settings.name, unit)] = DevicePoller(
                endpoint,
                settings,
                unit,
                registry=self.registry,
                readings=self.queue,
                emit_event=self.events,
                interval_s=PERIOD_S,
                backoff_max_s=1.0,
                profile=builtin_profile(name) if name else None,
                is_night=is_night,
            )

    def status(self, endpoint: str, unit: int) -> str:
        return self.pollers[(endpoint, unit)].state.status

    def of(self, endpoint: str, unit: int) -> list[Reading]:
        device = self.pollers[(endpoint, unit)].state.device_id
        return [r for r in self.readings[(endpoint, unit)] if r.device == device]

    async def _collect(self) -> None:
        by_device = {}
        while True:
            reading = await self.queue.get()
            by_device = {p.state.device_id: key for key, p in self.pollers.items()} | by_device
            self.readings[by_device[reading.device]].append(reading)

    async def after(
        self, endpoint: str, unit: int, since: datetime, within_s: float = 5.0
    ) -> Reading:
        """The first reading of a device taken strictly after ``since``."""
        found: list[Reading] = []

        def check() -> bool:
            found[:] = [r for r in self.of(endpoint, unit) if r.ts > since]
            return bool(found)

        await until(check, within_s, f"a reading of {endpoint} unit {unit} after {since}")
        return found[0]

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Rig]:
        self.tasks = [asyncio.create_task(p.run()) for p in self.pollers.values()]
        self.tasks.append(asyncio.create_task(self._collect()))
        try:
            yield self
        finally:
            crashed = [t for t in self.tasks if t.done()]
            for task in self.tasks:
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
            for endpoint in self.endpoints:
                endpoint.close()
            assert not crashed, "a poller stopped"


def _tcp(name: str, site: DeviceSite, units: list[int], **kw: Any) -> EndpointSettings:
    return EndpointSettings(name=name, host="127.0.0.1", port=site.port, unit_ids=units, **kw)


def _register_w(site: DeviceSite, unit: int) -> float:
    """The inverter's W as its registers say now (independent oracle)."""
    device = site.device(unit)
    return oracle.inverter_values(device.registers)["pv_w"]


def _intervals(readings: list[Reading]) -> list[float]:
    return [(b.ts - a.ts).total_seconds() for a, b in itertools.pairwise(readings)]


async def test_modbus_faults_at_runtime_leave_healthy_devices_on_their_period() -> None:
    async with contextlib.AsyncExitStack() as stack:
        good = await stack.enter_async_context(
            _site(
                "good",
                DeviceSpec(profile="sim-inverter-103", unit_id=1),
                DeviceSpec(profile="sim-meter-203", unit_id=2),
            )
        )
        floaty = await stack.enter_async_context(
            _site(
                "floaty",
                DeviceSpec(profile="sim-inverter-113", unit_id=1),
                DeviceSpec(profile="sim-meter-201", unit_id=2),
            )
        )
        silent = await stack.enter_async_context(
            _site("silent", DeviceSpec(profile="sim-meter-203", unit_id=1))
        )
        slow = await stack.enter_async_context(
            _site("slow", DeviceSpec(profile="sim-inverter-103", unit_id=1))
        )
        night = await stack.enter_async_context(
            _site("night", DeviceSpec(profile="sim-inverter-103", unit_id=1), start=MIDNIGHT_SYDNEY)
        )
        night.activate_fault({"kind": "night_sleep"})
        await night.advance()  # the sun is down there: connections are refused

        rig = Rig()
        rig.add(_tcp("good", good, [1, 2, 9]))  # unit 9: nothing there (a wrong unit id)
        rig.add(_tcp("floaty", floaty, [1, 2], unit_profiles={2: "sim-meter-201"}))
        rig.add(_tcp("silent", silent, [1], timeout_s=0.4))
        rig.add(_tcp("slow", slow, [1], timeout_s=1.0))
        rig.add(_tcp("night", night, [1], timeout_s=0.4), is_night=lambda: True)

        async with rig.running():
            await until(lambda: len(rig.of("good", 1)) >= 2, 10, "first good readings")

            # Timeouts on one device, exception responses on another, switched on now.
            silent.activate_fault({"kind": "no_response", "unit": 1})
            floaty.activate_fault({"kind": "exception", "unit": 2, "code": 4})
            slow.activate_fault({"kind": "slow_response", "unit": 1, "delay_s": 0.3})
            await until(lambda: rig.status("silent", 1) == "unreachable", 10, "silent unreachable")
            await until(lambda: rig.status("floaty", 2) == "faulty", 10, "exceptions -> faulty")

            # 0x8000 on an int+SF inverter, NaN on a float one: null with a flag.
            good.activate_fault({"kind": "not_implemented", "unit": 1, "points": ["103.W"]})
            floaty.activate_fault({"kind": "not_implemented", "unit": 1, "points": ["113.W"]})
            since = utc_now()
            for endpoint, ref in (("good", "103.W"), ("floaty", "113.W")):
                bad = await rig.after(endpoint, 1, since)
                assert bad.values["pv_w"] is None, endpoint
                assert bad.quality is Quality.SUSPECT
                assert f"not_implemented:{ref}" in bad.flags
                assert bad.values["pv_hz"] is not None  # the rest of the reading stands
            good.clear_faults("not_implemented")
            floaty.clear_faults("not_implemented")

            # A scale-factor change is applied in the very poll that reads it.
            since = utc_now()
            before = await rig.after("good", 1, since)
            assert before.values["pv_w"] == pytest.approx(_register_w(good, 1))
            good.activate_fault({"kind": "scale_factor", "unit": 1, "point": "103.W_SF", "sf": 1})
            since = utc_now()
            after = await rig.after("good", 1, since)
            assert after.values["pv_w"] == pytest.approx(_register_w(good, 1))
            assert after.values["pv_w"] == pytest.approx(before.values["pv_w"], abs=10)
            assert after.quality is Quality.GOOD
            good.clear_faults("scale_factor")

            # Faults cleared: the timing-out and the refusing devices come back.
            silent.clear_faults()
            floaty.clear_faults()
            await until(lambda: rig.status("silent", 1) == "online", 10, "silent back")
            await until(lambda: rig.status("floaty", 2) == "online", 10, "exceptions over")
            since = utc_now()
            for _ in range(3):
                since = (await rig.after("good", 1, since)).ts

        # Healthy devices kept their period through all of it.
        for key in (("good", 1), ("good", 2), ("floaty", 1)):
            intervals = _intervals(rig.of(*key))
            assert len(intervals) >= 10, key
            late = [i for i in intervals if abs(i - PERIOD_S) > 0.1 * PERIOD_S]
            assert not late, (key, late)
        assert rig.of("slow", 1), "the slow device still delivers"
        assert rig.status("slow", 1) == "online"

        # Night: asleep, an info event, no alarm.
        assert rig.status("night", 1) == "asleep"
        assert rig.events.of("night", 1) == ["device_asleep"]
        # Timeouts: unreachable once, then reachable; exceptions: faulty once, then back.
        assert rig.events.of("silent", 1) == ["device_unreachable", "device_reachable"]
        assert rig.events.of("floaty", 2) == ["device_faulty", "device_reachable"]
        # A wrong unit id: faulty, once, with a message that says what to check.
        assert rig.status("good", 9) == "faulty"
        assert rig.events.of("good", 9) == ["device_faulty"]
        assert "wrong unit id" in rig.pollers[("good", 9)].state.last_error
        # The meter with a profile reads in the contract's sign (import > 0).
        meter = rig.of("floaty", 2)[-1]
        assert meter.values["grid_w"] == pytest.approx(floaty.state.grid_w, abs=1.0)


async def test_a_sleeping_inverter_wakes_with_the_sun() -> None:
    async with _site(
        "dawn", DeviceSpec(profile="sim-inverter-103", unit_id=1), start=MIDNIGHT_SYDNEY
    ) as site:
        site.activate_fault({"kind": "night_sleep"})
        await site.advance()
        night = True
        rig = Rig()
        rig.add(_tcp("dawn", site, [1], timeout_s=0.4), is_night=lambda: night)
        async with rig.running():
            await until(lambda: rig.status("dawn", 1) == "asleep", 10, "asleep")
            site.clear_faults()
            await site.advance()
            night = False
            await until(lambda: rig.status("dawn", 1) == "online", 10, "awake")
        assert rig.events.of("dawn", 1) == ["device_asleep", "device_reachable"]
        assert rig.pollers[("dawn", 1)].state.info is not None


async def test_the_isolator_is_read_through_its_vendor_map() -> None:
    async with _site(
        "iso",
        DeviceSpec(profile="sim-inverter-103", unit_id=1),
        DeviceSpec(profile="sim-isolator", unit_id=5),
    ) as site:
        rig = Rig()
        rig.add(_tcp("iso", site, [1, 5], unit_profiles={5: "sim-isolator"}))
        async with rig.running():
            first = await rig.after("iso", 5, utc_now())
            site.activate_fault({"kind": "isolator_trip", "unit": 5})
            tripped = await rig.after("iso", 5, utc_now())
        assert first.values == {"isolator_state_code": 1.0, "isolator_trip_count": 0.0}
        assert tripped.values == {"isolator_state_code": 2.0, "isolator_trip_count": 1.0}
        info = rig.pollers[("iso", 5)].state.info
        assert info is not None
        assert info.profile == "sim-isolator"
        assert info.models == [1]


async def test_the_agent_reads_devices_over_modbus_rtu(pty_pair: tuple[str, str]) -> None:
    server_end, client_end = pty_pair
    async with _site(
        "rtu",
        DeviceSpec(profile="sim-inverter-103", unit_id=1),
        DeviceSpec(profile="sim-meter-201", unit_id=2),
        DeviceSpec(profile="sim-isolator", unit_id=5),
        serial_port=server_end,
        baudrate=19200,
    ) as site:
        settings = RtuEndpointSettings(
            name="rs485",
            transport="rtu",
            serial_port=client_end,
            baudrate=19200,
            unit_ids=[1, 2, 5],
            unit_profiles={2: "sim-meter-201", 5: "sim-isolator"},
            timeout_s=1.0,
        )
        rig = Rig()
        rig.add(settings)
        async with rig.running():
            since = utc_now()
            inverter = await rig.after("rs485", 1, since, within_s=20)
            meter = await rig.after("rs485", 2, since, within_s=20)
            isolator = await rig.after("rs485", 5, since, within_s=20)
        assert inverter.device == site.device(1).serial
        want = oracle.inverter_values(site.device(1).registers)
        for metric, value in want.items():
            assert inverter.values[metric] == pytest.approx(value, abs=1e-6), metric
        assert meter.values["grid_w"] == pytest.approx(site.state.grid_w, abs=1.0)
        assert isolator.values["isolator_state_code"] == 1.0
        assert {p.state.status for p in rig.pollers.values()} == {"online"}


class SwappableImage:
    """An endpoint over an in-memory register image the test can replace (a firmware
    update that changes the model chain)."""

    def __init__(self, image: list[int]) -> None:
        self.image = image
        self.name = "mem"

    async def read(self, unit_id: int, address: int, count: int) -> list[int]:
        start = address - 40000
        if start < 0 or start + count > len(self.image):
            from edge_agent.modbus import ModbusReadError

            raise ModbusReadError("exception", f"unit {unit_id} @{address}: code 2")
        return self.image[start : start + count]

    def close(self) -> None:
        pass


async def test_a_firmware_update_that_changes_models_is_rediscovered_and_birth_resent() -> None:
    common = {"Mn": "Acme", "Md": "X1", "SN": "SN-1", "Vr": "1.0"}
    old, _ = device_image([(1, common), (103, {"W": 500, "W_SF": 0})])
    new, _ = device_image(
        [(1, {**common, "Vr": "2.0"}), (113, {"W": 480.0}), (120, {"WRtg": 5, "WRtg_SF": 3})]
    )
    endpoint = SwappableImage(old)
    registry, events = DeviceRegistry(), Events()
    poller = DevicePoller(
        endpoint,  # type: ignore[arg-type]
        EndpointSettings(name="mem", host="127.0.0.1"),
        1,
        registry=registry,
        readings=asyncio.Queue(),
        emit_event=events,
        interval_s=1.0,
        backoff_max_s=1.0,
    )
    assert (await poller.poll_once()).values["pv_w"] == 500.0
    registry.changed.clear()
    endpoint.image = new
    reading = await poller.poll_once()
    assert reading.values["pv_w"] == 480.0
    assert reading.values["pv_rating_w"] == 5000.0
    info = poller.state.info
    assert info is not None
    assert (info.models, info.firmware) == ([1, 113, 120], "2.0")
    assert registry.changed.is_set()  # birth goes out again with the new models
    changed = [d for e, _, d in events.items if e == "device_models_changed"]
    assert changed == [
        {
            "endpoint": "mem",
            "unit_id": 1,
            "old_models": [1, 103],
            "new_models": [1, 113, 120],
            "old_firmware": "1.0",
            "new_firmware": "2.0",
        }
    ]
