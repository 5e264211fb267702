"""The agent's control path against real Mosquitto and a simulated site over Modbus TCP:
signed commands and configs are applied, read back, restored on failure, watched for
drift; the handled config and seen command ids survive a restart; keys rotate.

Every claim about a device is read from the simulator (its served values and its own
write log), never from the agent's word.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from uuid import uuid4

import pytest

from contracts.signing import SigningKey
from simulators.device_site import DeviceSite
from tests.integration.control_harness import (
    BATTERY,
    INVERTER,
    ISOLATOR,
    agent_settings,
    cloud_for,
    control_site,
    device_ids,
    running_agent,
    write_public_key,
)

pytestmark = [pytest.mark.integration, pytest.mark.security]


@pytest.fixture
async def site() -> AsyncIterator[DeviceSite]:
    async with control_site(f"ctl-{uuid4().hex[:6]}") as sim:
        yield sim


def _gw() -> str:
    return f"gw-c-{uuid4().hex[:10]}"


async def test_command_is_written_read_back_and_acked_done(
    mosquitto_url: str, site: DeviceSite, tmp_path: Path
) -> None:
    key = SigningKey.generate()
    gw = _gw()
    ids = device_ids(site)
    settings = agent_settings(
        mosquitto_url, site, tmp_path, gw, [write_public_key(key, tmp_path / "k.pem")]
    )
    async with cloud_for(mosquitto_url, gw, key) as cloud, running_agent(settings):
        await cloud.until(lambda: cloud.devices_discovered(set(ids.values())), 15, "birth")
        doc = cloud.command("set_power_limit", ids[INVERTER], {"pct": 42})
        ack = await cloud.command_result(doc)
        assert ack["status"] == "done", ack
        assert [a["status"] for a in cloud.acks_of(doc["id"])] == ["accepted", "done"]
        assert site.point(INVERTER, "704.WMaxLimPct") == 42
        assert site.point(INVERTER, "704.WMaxLimPctEna") == 1
        ping = await cloud.command_result(cloud.command("ping", None))
        assert (ping["status"], ping["detail"]) == ("done", "pong")
        opened = await cloud.command_result(cloud.command("open", ids[ISOLATOR]))
        assert opened["status"] == "done", opened
        assert site.device(ISOLATOR).vendor["state"] == 0  # open
        charge = await cloud.command_result(cloud.command("charge", ids[BATTERY], {"pct": 30}))
        assert charge["status"] == "done", charge
        assert site.point(BATTERY, "124.InWRte") == pytest.approx(30)
