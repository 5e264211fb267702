"""A loop of the agent's Modbus reads or MQTT publishes ends when its task is cancelled,
at whatever moment: also when the answer arrives in the same loop turn as the cancel,
which pymodbus's and aiomqtt's ``wait_for`` lose on Python 3.11 (gh-86296). A poller
that lost its cancel ran on, and the agent's stop waited for it past the harness's 20 s
(``edge_agent.cancellation``).

Each loop is cancelled at a random moment, many times over, against the real simulator
and a real Mosquitto: before the fix about one cancel in ten (Modbus) and one in four
(MQTT) was lost, so a hundred in a row all honoured is no accident.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from edge_agent.cancellation import cancel_and_wait
from edge_agent.modbus import ModbusEndpoint
from edge_agent.mqtt import LinkConfig, MqttLink
from potr.servers.mosquitto import PrivateMosquitto
from simulators.device_site import DeviceSite, region_site

pytestmark = pytest.mark.integration

TRIALS = 100
#: A cancelled loop must have ended this long after its cancel (a lost one never ends).
ENDED_WITHIN_S = 2.0


@pytest.fixture
async def site() -> AsyncIterator[DeviceSite]:
    async with DeviceSite(region_site(site_id="cancel-au-0001", region="au")) as sim:
        yield sim


async def _lost_cancels(call: Callable[[], Awaitable[object]]) -> int:
    """How many of ``TRIALS`` loops of ``call``, each cancelled at a random moment (while
    a request is in flight, its answer on the way, or just in), ran on after it."""
    rng = random.Random(86296)
    lost = 0
    for _ in range(TRIALS):

        async def loop() -> None:
            while True:
                await call()

        task = asyncio.create_task(loop())
        await asyncio.sleep(rng.uniform(0.0005, 0.005))  # not a wait: the moment to cancel
        task.cancel()
        ended, _ = await asyncio.wait({task}, timeout=ENDED_WITHIN_S)
        if not ended:
            lost += 1
            await cancel_and_wait([task])
    return lost


async def test_a_modbus_read_loop_ends_whenever_it_is_cancelled(site: DeviceSite) -> None:
    endpoint = ModbusEndpoint("site", "127.0.0.1", site.port, timeout_s=1.0)
    try:
        assert await endpoint.read(1, 40000, 2) == [0x5375, 0x6E53]  # "SunS": answering
        assert await _lost_cancels(lambda: endpoint.read(1, 40000, 2)) == 0
        assert await endpoint.read(1, 40000, 2) == [0x5375, 0x6E53]  # and still usable
    finally:
        endpoint.close()


async def test_an_mqtt_publish_loop_ends_whenever_it_is_cancelled(
    mosquitto: PrivateMosquitto,
) -> None:
    cfg = LinkConfig(
        host="127.0.0.1",
        port=mosquitto.port,
        client_id=f"cancel-{uuid.uuid4().hex[:8]}",
        keepalive_s=30,
        publish_timeout_s=5.0,
    )
    async with MqttLink(cfg) as link:
        assert await _lost_cancels(lambda: link.publish(f"test/{cfg.client_id}", b"x")) == 0
        await link.publish(f"test/{cfg.client_id}", b"still usable")
