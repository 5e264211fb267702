"""Simulator over real Modbus TCP → agent discovery and polling → normalised values.

Expected values are computed independently from the simulator's raw registers with
hand-typed SunSpec 103/203 offsets (an oracle that does not share the agent's decoder).
"""

from __future__ import annotations

import asyncio
import itertools
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from contracts.events import GatewayEvent
from contracts.messages import Reading
from edge_agent.modbus import ModbusEndpoint
from edge_agent.poller import DevicePoller, DeviceRegistry
from edge_agent.settings import EndpointSettings
from simulators.device_site import DeviceSite, region_site

pytestmark = pytest.mark.integration

NOON_SYDNEY = datetime(2024, 1, 10, 2, 0, tzinfo=UTC)
PERIOD_S = 0.4


def _s16(r: int) -> int:
    return r - 0x10000 if r & 0x8000 else r


def _models(regs: list[int]) -> dict[int, int]:
    """model id → index of its ID register in ``regs`` (``regs[0]`` is 40000)."""
    found, i = {}, 2
    while regs[i] != 0xFFFF:
        found[regs[i]] = i
        i += 2 + regs[i + 1]
    return found


def oracle_inverter(regs: list[int]) -> dict[str, float]:
    m = _models(regs)
    b = m[103]
    p = regs[b : b + 52]

    def sc(off: int, sf_off: int, signed: bool = False) -> float:
        raw = _s16(p[off]) if signed else p[off]
        return round(raw * 10.0 ** _s16(p[sf_off]), 6)

    c = regs[m[123] : m[123] + 26]
    n = regs[m[120] : m[120] + 28]
    return {
        "pv_ac_a": sc(2, 6),
        "pv_l1_v": sc(10, 13),
        "pv_l2_v": sc(11, 13),
        "pv_l3_v": sc(12, 13),
        "pv_w": sc(14, 15, True),
        "pv_hz": sc(16, 17),
        "pv_va": sc(18, 19, True),
        "pv_var": sc(20, 21, True),
        "pv_pf_pct": sc(22, 23, True),
        "pv_wh": float((p[24] << 16 | p[25]) * 10 ** _s16(p[26])),
        "pv_dc_w": sc(31, 32, True),
        "pv_cabinet_c": sc(33, 37, True),
        "pv_state_code": float(p[38]),
        "pv_limit_pct": round(c[5] * 10.0 ** _s16(c[23]), 6),
        "pv_connected_code": float(c[4]),
        "pv_rating_w": round(n[3] * 10.0 ** _s16(n[4]), 6),
    }


def oracle_meter(regs: list[int]) -> dict[str, float]:
    b = _models(regs)[203]
    p = regs[b : b + 107]

    def sc(off: int, sf_off: int) -> float:
        return round(_s16(p[off]) * 10.0 ** _s16(p[sf_off]), 6)

    return {
        "grid_a": sc(2, 6),
        "grid_l1_v": sc(8, 15),
        "grid_l2_v": sc(9, 15),
        "grid_l3_v": sc(10, 15),
        "grid_hz": sc(16, 17),
        "grid_w": sc(18, 22),
        "grid_l1_w": sc(19, 22),
        "grid_l2_w": sc(20, 22),
        "grid_l3_w": sc(21, 22),
        "grid_va": sc(23, 27),
        "grid_var": sc(28, 32),
        "grid_pf_pct": sc(33, 37),
        "export_wh": float((p[38] << 16 | p[39]) * 10 ** _s16(p[54])),
        "import_wh": float((p[46] << 16 | p[47]) * 10 ** _s16(p[54])),
    }


@pytest.fixture
async def site() -> AsyncIterator[DeviceSite]:
    settings = region_site(site_id="poll-test", region="au", start_time=NOON_SYDNEY)
    async with DeviceSite(settings) as sim:
        yield sim


class Events:
    def __init__(self) -> None:
        self.items: list[tuple[str, str | None, dict[str, Any]]] = []
        self.arrived = asyncio.Event()

    async def __call__(self, event: GatewayEvent) -> None:
        self.items.append((event.type.value, event.device, event.detail.wire()))
        self.arrived.set()


def _poller(
    endpoint: ModbusEndpoint,
    settings: EndpointSettings,
    unit: int,
    registry: DeviceRegistry,
    queue: asyncio.Queue[Reading],
    events: Events,
    interval_s: float = 0.2,
) -> DevicePoller:
    return DevicePoller(
        endpoint,
        settings,
        unit,
        registry=registry,
        readings=queue,
        emit_event=events,
        interval_s=interval_s,
        backoff_max_s=0.4,
    )


def _values_close(actual: dict[str, float | None], expected: dict[str, float]) -> None:
    for metric, value in expected.items():
        assert actual[metric] == pytest.approx(value, abs=1e-6), metric


async def test_polled_values_match_the_raw_registers(site: DeviceSite) -> None:
    site.pause_updates()
    _, images = site.history()[-1]
    ep_settings = EndpointSettings(name="site", host="127.0.0.1", port=site.port, unit_ids=[1, 2])
    endpoint = ModbusEndpoint("site", "127.0.0.1", site.port, 2.0)
    registry, queue, events = DeviceRegistry(), asyncio.Queue[Reading](), Events()
    try:
        inverter = _poller(endpoint, ep_settings, 1, registry, queue, events)
        meter = _poller(endpoint, ep_settings, 2, registry, queue, events)
        async with asyncio.timeout(10):
            inv_reading = await inverter.poll_once()
            mtr_reading = await meter.poll_once()
    finally:
        endpoint.close()
    serials = {d.unit_id: d.serial for d in site.devices}
    assert inv_reading.device == serials[1]
    assert mtr_reading.device == serials[2]
    _values_close(inv_reading.values, oracle_inverter(images[1][1]))
    _values_close(mtr_reading.values, oracle_meter(images[2][1]))
    assert inv_reading.values["pv_w"] > 0  # simulated noon
    assert inv_reading.quality.value == "good"
    info = inverter.state.info
    assert info is not None
    assert info.models == [1, 103, 120, 121, 122, 123, 126, 132, 160]  # sim-inverter-103
    assert info.manufacturer == "PoTR Sim"
    assert info.nameplate["WRtg"] == 5000.0


async def test_meter_sign_follows_the_simulator_convention(site: DeviceSite) -> None:
    site.pause_updates()
    sample = site.state
    endpoint = ModbusEndpoint("site", "127.0.0.1", site.port, 2.0)
    ep_settings = EndpointSettings(name="site", host="127.0.0.1", port=site.port, unit_ids=[2])
    try:
        poller = _poller(endpoint, ep_settings, 2, DeviceRegistry(), asyncio.Queue(), Events())
        async with asyncio.timeout(10):
            reading = await poller.poll_once()
    finally:
        endpoint.close()
    # > 0 import, < 0 export; the plant's power is real-valued, served in whole W (W_SF 0)
    assert reading.values["grid_w"] == pytest.approx(sample.grid_w, abs=0.5)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_unreachable_devices_do_not_stall_a_healthy_one(site: DeviceSite) -> None:
    # A listener that never answers (timeouts) and a closed port (refused).
    silent = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    silent_port = silent.sockets[0].getsockname()[1]
    dead_port = _closed_port()
    registry, queue, events = DeviceRegistry(), asyncio.Queue[Reading](), Events()
    healthy_s = EndpointSettings(name="site", host="127.0.0.1", port=site.port, unit_ids=[1])
    silent_s = EndpointSettings(name="silent", host="127.0.0.1", port=silent_port, timeout_s=0.5)
    dead_s = EndpointSettings(name="dead", host="127.0.0.1", port=dead_port, timeout_s=0.5)
    endpoints = [
        ModbusEndpoint(s.name, s.host, s.port, s.timeout_s) for s in (healthy_s, silent_s, dead_s)
    ]
    pollers = [
        _poller(ep, s, 1, registry, queue, events, interval_s=PERIOD_S)
        for ep, s in zip(endpoints, (healthy_s, silent_s, dead_s), strict=True)
    ]
    tasks = [asyncio.create_task(p.run()) for p in pollers]
    try:
        readings: list[Reading] = []
        async with asyncio.timeout(15):
            while len(readings) < 9:
                readings.append(await queue.get())
        async with asyncio.timeout(10):
            while {d for _, d, _ in events.items} != {"silent-u1", "dead-u1"}:
                events.arrived.clear()
                await events.arrived.wait()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for ep in endpoints:
            ep.close()
        silent.close()
        await silent.wait_closed()
    assert {r.device for r in readings} == {site.device(1).serial}
    # The healthy device kept its period: every interval between its polls within 10 %.
    intervals = [(b.ts - a.ts).total_seconds() for a, b in itertools.pairwise(readings)]
    assert all(abs(i - PERIOD_S) <= 0.1 * PERIOD_S for i in intervals), intervals
    assert pollers[0].state.status == "online"
    assert pollers[1].state.status == "unreachable"
    assert pollers[2].state.status == "unreachable"
    unreachable = [d for e, d, _ in events.items if e == "device_unreachable"]
    assert sorted(unreachable) == ["dead-u1", "silent-u1"]  # once per transition
    # Never-discovered devices have no serial yet: birth leaves them out (no phantom
    # registry devices under fallback ids); the events above report them.
    statuses = {i.device: i.status for i in registry.infos()}
    assert statuses == {site.device(1).serial: "online"}
