"""Reliability scenario 5: the gateway's disk fills up (a real ENOSPC from a small tmpfs).

The agent keeps running, telemetry is dropped and counted, a ``data_dropped`` alarm names
every dropped seq, and buffering resumes when space returns. No broker is reachable
meanwhile, so everything the agent produced is still in its buffer to be checked.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from edge_agent.app import Agent
from edge_agent.buffer import AsyncOutbox, Outbox, PayloadFactory
from edge_agent.pending import HeldMessages
from edge_agent.settings import AgentSettings, EndpointSettings
from potr.servers.ports import free_port
from simulators.device_site import DeviceSite, region_site
from tests.waiting import until

pytestmark = [pytest.mark.integration, pytest.mark.chaos]


def _mount(path: Path, size: str, *, remount: bool = False) -> None:
    opts = f"remount,size={size}" if remount else f"size={size},mode=0755"
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", opts, "potr-test-tmpfs", str(path)],
        check=True,
        capture_output=True,
    )


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs: the buffer's own disk, which fills up for real."""
    if os.geteuid() != 0:
        pytest.fail("the disk-full scenario mounts a tmpfs and needs root (CI runs as root)")
    mount = tmp_path / "disk"
    mount.mkdir()
    _mount(mount, "1m")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False, capture_output=True)


async def test_disk_full_drops_telemetry_with_an_alarm_and_recovers(small_disk: Path) -> None:
    noon = datetime.now(UTC).replace(hour=2, minute=0, second=0, microsecond=0)
    async with DeviceSite(
        region_site(site_id="disk-full", region="au", start_time=noon, update_period_s=0.2)
    ) as sim:
        settings = AgentSettings(
            gateway_id="disk-full-gw",
            region="au",
            mqtt_url=f"mqtt://127.0.0.1:{free_port()}",  # nobody listens: all stays buffered
            buffer_path=small_disk / "buffer.sqlite",
            # The scenario is the buffer's: its 1 MiB disk is sized for the buffer alone
            # (the control store writes only when a command or config arrives).
            control_state_path=small_disk.parent / "control.sqlite",
            poll_interval_s=0.05,
            reconnect_min_s=0.2,
            drop_report_interval_s=0.2,
            reconnect_max_s=0.5,
            endpoints=[
                EndpointSettings(
                    name="site", host="127.0.0.1", port=sim.port, unit_ids=[1, 2], timeout_s=1.0
                )
            ],
        )
        stop = asyncio.Event()
        async with AsyncOutbox(settings.buffer_path, max_bytes=settings.buffer_max_bytes) as box:
            agent = Agent(settings, box)
            task = asyncio.create_task(agent.run(stop))
            await until(lambda: agent.dropped_batches >= 3, 60, "the disk to fill up")
            assert not task.done(), "the agent stopped on a full disk"
            dropped_at_full = agent.dropped_batches
            await until(
                lambda: agent.dropped_batches >= dropped_at_full + 5,
                30,
                "polling to go on while the disk is full",
            )
            assert all(p.state.status == "online" for p in agent.pollers)

            _mount(small_disk, "8m", remount=True)  # space returns
            seq_at_remount = await box.last_seq()
            buffered_before = agent.batches
            await until(
                lambda: agent.batches >= buffered_before + 5, 30, "telemetry to be buffered again"
            )
            stop.set()
            async with asyncio.timeout(15):
                await task

    box = Outbox(settings.buffer_path)
    assert box.integrity_ok()
    rows = box.rows()
    events = [orjson.loads(r.payload) for r in rows if r.kind == "event"]
    alarms = [e for e in events if e["event"] == "data_dropped"]
    assert alarms, "no data_dropped alarm was buffered"
    assert {a["detail"]["reason"] for a in alarms} == {"disk full"}
    dropped = {s for a in alarms for lo, hi in a["detail"]["seq_ranges"] for s in range(lo, hi + 1)}
    assert sum(a["detail"]["batches"] for a in alarms) == agent.dropped_batches
    present = {r.seq for r in rows}
    assert not present & dropped
    # Every seq the stream ever allocated is either still buffered or reported dropped.
    assert present | dropped == set(range(1, box.last_seq + 1))
    # Telemetry is buffered again after the space returned. (A drop may have had no seq:
    # when the disk refused even the seq's allocation, the batch is counted, not sequenced.)
    after = max(max(dropped, default=0), seq_at_remount)
    assert any(r.kind == "telemetry" and r.seq > after for r in rows)


def _fill(directory: Path) -> Path:
    """Write a ballast file until the disk refuses more (a real ENOSPC)."""
    ballast = directory / "ballast"
    with ballast.open("wb", buffering=0) as f:  # unbuffered: nothing left to flush
        try:
            for _ in range(4096):  # far beyond 1 MiB: the loop ends on ENOSPC
                f.write(b"\0" * 4096)
        except OSError:
            pass
    return ballast


async def test_events_and_answers_a_full_disk_refuses_are_held_in_order_and_bounded(
    small_disk: Path,
) -> None:
    """Events and control answers share one bounded in-memory queue while the disk is
    full: buffered in the order they were produced once space returns; past the bound
    the oldest is lost and counted."""
    wake = asyncio.Event()
    async with AsyncOutbox(small_disk / "buffer.sqlite") as box:
        held = HeldMessages(box, wake, "gw-held", maxlen=4)
        ballast = _fill(small_disk)
        produced: list[str] = []
        # The WAL may still have a free page or two: produce until one is held.
        for i in range(200):
            name = f"{'event' if i % 2 else 'cmd_ack'}-{i}"
            produced.append(name)
            await held.append(name.split("-")[0], _payload(name))
            if len(held):
                break
        assert len(held) == 1, "the full disk never refused a message"
        first_held = len(produced) - 1
        for i in range(first_held + 1, first_held + 6):  # 5 more: 6 held, bound 4
            name = f"config_state-{i}"
            produced.append(name)
            await held.append("config_state", _payload(name))
        assert (len(held), held.lost) == (4, 2)
        ballast.unlink()  # space returns
        await held.flush()
        assert len(held) == 0
    buffered = [
        orjson.loads(r.payload)["name"] for r in Outbox(small_disk / "buffer.sqlite").rows()
    ]
    lost = produced[first_held : first_held + 2]  # the two oldest held
    assert buffered == [n for n in produced if n not in lost]


async def test_past_the_bound_held_events_go_before_any_command_answer(
    small_disk: Path,
) -> None:
    """A lost ``cmd_ack``/``config_state`` leaves the cloud waiting (it expires the
    command); a lost event does not: past the bound the oldest *event* is dropped."""
    wake = asyncio.Event()
    async with AsyncOutbox(small_disk / "buffer.sqlite") as box:
        held = HeldMessages(box, wake, "gw-held", maxlen=3)
        ballast = _fill(small_disk)
        for i in range(200):  # until the disk refuses one: that one is held
            await held.append("event", _payload(f"filler-{i}"))
            if len(held):
                break
        assert len(held) == 1, "the full disk never refused a message"
        await held.append("cmd_ack", _payload("ack-1"))
        await held.append("event", _payload("event-2"))
        await held.append("config_state", _payload("state-3"))  # bound 3: an event goes
        await held.append("cmd_ack", _payload("ack-4"))  # and the other event
        await held.append("cmd_ack", _payload("ack-5"))  # only answers left: oldest goes
        assert (len(held), held.lost) == (3, 3)
        ballast.unlink()
        await held.flush()
    names = [orjson.loads(r.payload)["name"] for r in Outbox(small_disk / "buffer.sqlite").rows()]
    assert names[-3:] == ["state-3", "ack-4", "ack-5"]
    assert "event-2" not in names
    assert "ack-1" not in names


def _payload(name: str) -> PayloadFactory:
    return lambda stream_id, seq: orjson.dumps({"name": name, "seq": seq})
