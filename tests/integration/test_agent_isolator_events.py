"""Isolator transitions, end to end on the edge: a simulated isolator (real Modbus TCP) is
opened and closed through its command register and tripped by a fault; the agent polls
it, raises ``isolator_opened`` / ``isolator_closed`` / ``isolator_tripped`` with the
reading that showed each, buffers them and publishes them over MQTT (a private
Mosquitto, a witness subscriber). A restarted agent raises nothing for the state it
finds (no event flood on restart).

Expected states come from the simulator's own register (``vendor["state"]``), not from
the agent's decoding.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from edge_agent.settings import AgentSettings
from potr.servers.mosquitto import PrivateMosquitto
from simulators.device_site import DeviceSite, DeviceSiteSettings, DeviceSpec
from tests.integration.harness import running_agent
from tests.integration.witness import Witness
from tests.waiting import until

pytestmark = pytest.mark.integration

UNIT = 5
COMMAND_REGISTER = 103  # sim-isolator.yaml vendor map: 1 open, 2 close, 3 reset
OPEN, CLOSE = 1, 2


@pytest.fixture
async def site() -> AsyncIterator[DeviceSite]:
    settings = DeviceSiteSettings(
        site_id=f"iso-{uuid4().hex[:6]}",
        start_time=datetime(2024, 1, 10, 2, 0, tzinfo=UTC),
        update_period_s=3600.0,  # physics still: only the test moves the isolator
        devices=[DeviceSpec(profile="sim-isolator", unit_id=UNIT)],
    )
    async with DeviceSite(settings) as sim:
        yield sim


def _settings(gw: str, mqtt_url: str, port: int, buffer: Path) -> AgentSettings:
    return AgentSettings(
        gateway_id=gw,
        region="au",
        mqtt_url=mqtt_url,
        buffer_path=buffer,
        poll_interval_s=0.2,
        reconnect_min_s=0.1,
        reconnect_max_s=0.5,
        endpoints=[
            {  # type: ignore[list-item]
                "name": "site",
                "host": "127.0.0.1",
                "port": port,
                "unit_ids": [UNIT],
                "unit_profiles": {UNIT: "sim-isolator"},
            }
        ],
    )


def _isolator_events(w: Witness) -> list[dict[str, Any]]:
    return [d.doc for d in w.of("event") if d.doc["event"].startswith("isolator_")]


def _readings(w: Witness) -> dict[str, float | None]:
    """Every isolator reading published so far: reading time → state value."""
    return {
        r["ts"]: r["values"].get("isolator_state_code")
        for d in w.of("telemetry")
        for r in d.doc["readings"]
    }


async def _state_becomes(site: DeviceSite, state: int) -> None:
    await until(lambda: site.device(UNIT).vendor["state"] == state, 5, f"state {state}")


async def test_isolator_transitions_reach_mqtt_with_the_reading_that_showed_them(
    mosquitto: PrivateMosquitto, site: DeviceSite, tmp_path: Path
) -> None:
    gw = f"gw-iso-{uuid4().hex[:8]}"
    settings = _settings(gw, mosquitto.url, site.port, tmp_path / "b.sqlite")
    device = site.device(UNIT)
    states = [device.vendor["state"]]  # what the simulator serves, step by step
    with Witness(mosquitto.port, gw) as w:
        await until(w.connected.is_set, 10, "the witness to subscribe")
        async with running_agent(settings) as agent:
            await until(lambda: len(_readings(w)) >= 2, 15, "isolator telemetry")
            endpoint = agent.endpoints["site"]

            await endpoint.write(UNIT, COMMAND_REGISTER, [OPEN])
            await until(lambda: len(_isolator_events(w)) == 1, 10, "isolator_opened")
            states.append(device.vendor["state"])

            await endpoint.write(UNIT, COMMAND_REGISTER, [CLOSE])
            await until(lambda: len(_isolator_events(w)) == 2, 10, "isolator_closed")
            states.append(device.vendor["state"])

            site.activate_fault({"kind": "isolator_trip", "unit": UNIT})
            await until(lambda: len(_isolator_events(w)) == 3, 10, "isolator_tripped")
            states.append(device.vendor["state"])
            tripped_ts = _isolator_events(w)[2]["detail"]["ts"]
            await until(lambda: tripped_ts in _readings(w), 10, "the trip's reading")

    # The simulator's symbols: CLOSED 1 → OPEN 0 → CLOSED 1 → TRIPPED 2.
    assert states == [1, 0, 1, 2]
    events = _isolator_events(w)
    assert [(e["event"], e["severity"], e["device"]) for e in events] == [
        ("isolator_opened", "warning", device.serial),
        ("isolator_closed", "info", device.serial),
        ("isolator_tripped", "critical", device.serial),
    ]
    readings = _readings(w)
    for event, (previous, value) in zip(events, itertools.pairwise(states), strict=True):
        detail = event["detail"]
        assert detail["metric"] == "isolator_state_code"
        assert (detail["previous"], detail["value"]) == (previous, value)
        # The reading that showed it went out as telemetry with that very time and value.
        assert readings[detail["ts"]] == value
    # Every event is in the stream's one seq space, after the telemetry before it.
    assert len({e["seq"] for e in events}) == 3


async def test_an_agent_starting_or_restarting_raises_nothing_for_the_state_it_finds(
    mosquitto: PrivateMosquitto, site: DeviceSite, tmp_path: Path
) -> None:
    gw = f"gw-iso-{uuid4().hex[:8]}"
    settings = _settings(gw, mosquitto.url, site.port, tmp_path / "b.sqlite")
    site.activate_fault({"kind": "isolator_trip", "unit": UNIT})  # tripped while it was down
    assert site.device(UNIT).vendor["state"] == 2
    with Witness(mosquitto.port, gw) as w:
        await until(w.connected.is_set, 10, "the witness to subscribe")
        async with running_agent(settings):
            await until(lambda: len(_readings(w)) >= 5, 15, "five isolator readings")
    assert set(_readings(w).values()) == {2.0}
    assert _isolator_events(w) == []
