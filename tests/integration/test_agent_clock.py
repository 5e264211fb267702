"""Reliability scenario 9, edge side: the gateway clock is off by ±2 h, then corrected.

Readings are flagged ``clock_suspect`` while the clock is wrong (the cloud's ``stored``
time disagrees, and the OS does not vouch for it), the correction is reported as one
``clock_jump`` event, and once the cloud's time agrees readings are no longer flagged.
The wall clock the agent's clock guard sees is a fake one, ``offset`` seconds off.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import pytest

from edge_agent.clock import ClockGuard
from edge_agent.settings import AgentSettings
from potr.servers.mosquitto import PrivateMosquitto
from simulators.device_site import DeviceSite, region_site
from tests.integration.harness import running_agent
from tests.integration.witness import Witness
from tests.waiting import until

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

TWO_HOURS = 7200.0


@pytest.fixture
async def site() -> AsyncIterator[DeviceSite]:
    settings = region_site(
        site_id=f"ck-{uuid4().hex[:6]}",
        region="au",
        start_time=datetime(2024, 1, 10, 2, 0, tzinfo=UTC),
        update_period_s=0.2,
    )
    async with DeviceSite(settings) as sim:
        yield sim


def _suspect(batch: dict[str, object]) -> bool:
    readings = batch["readings"]
    assert isinstance(readings, list)
    return all("clock_suspect" in r["flags"] and r["quality"] == "suspect" for r in readings)


@pytest.mark.parametrize("error", [TWO_HOURS, -TWO_HOURS], ids=["ahead", "behind"])
async def test_clock_off_by_two_hours_then_corrected(
    error: float, mosquitto: PrivateMosquitto, site: DeviceSite, tmp_path: Path
) -> None:
    gw = f"gw-ck-{uuid4().hex[:8]}"
    offset = [error]
    clock = ClockGuard(
        wall=lambda: time.time() + offset[0],
        os_synced=lambda: None,  # the OS cannot tell (no NTP daemon)
        jump_threshold_s=1.0,
        max_skew_s=5.0,
    )
    settings = AgentSettings(
        gateway_id=gw,
        region="au",
        mqtt_url=mosquitto.url,
        buffer_path=tmp_path / "b.sqlite",
        poll_interval_s=0.2,
        reconnect_min_s=0.1,
        reconnect_max_s=0.5,
        endpoints=[{"name": "site", "host": "127.0.0.1", "port": site.port, "unit_ids": [1, 2]}],  # type: ignore[list-item]
    )
    with Witness(mosquitto.port, gw) as w:
        await until(w.connected.is_set, 10, "the witness to subscribe")
        async with running_agent(settings, clock=clock):
            await until(lambda: len(w.of("telemetry")) >= 3, 15, "telemetry")
            stream = w.of("telemetry")[0].doc["stream_id"]
            # The cloud (a good clock) says it stored them: 2 h apart, still suspect.
            w.publish_stored(stream, max(w.seqs()))
            await until(lambda: clock.cloud_skew_s is not None, 5, "stored to arrive")
            assert clock.suspect
            seen = len(w.of("telemetry"))
            await until(lambda: len(w.of("telemetry")) >= seen + 3, 10, "more telemetry")

            offset[0] = 0.0  # NTP steps the clock
            await until(
                lambda: any(d.doc["event"] == "clock_jump" for d in w.of("event")),
                10,
                "the clock_jump event",
            )
            w.publish_stored(stream, max(w.seqs()))

            def unflagged() -> bool:
                return any(not _suspect(d.doc) for d in w.of("telemetry"))

            await until(unflagged, 10, "readings no longer flagged")

    jumps = [d.doc for d in w.of("event") if d.doc["event"] == "clock_jump"]
    assert len(jumps) == 1
    assert jumps[0]["detail"]["delta_s"] == pytest.approx(-error, abs=1.0)
    batches = sorted((d.doc for d in w.of("telemetry")), key=lambda b: b["seq"])
    before_jump = [b for b in batches if b["seq"] < jumps[0]["seq"]]
    assert len(before_jump) >= 6
    assert all(_suspect(b) for b in before_jump), "a reading taken on the wrong clock is unflagged"
    assert not _suspect(batches[-1])
