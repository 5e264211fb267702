"""Shared pieces of the integration tests: waiting without sleeping blind, real agent
processes, and what ingest knows of a stream."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import yaml

from edge_agent.app import Agent
from edge_agent.buffer import AsyncOutbox
from edge_agent.clock import ClockGuard
from edge_agent.poll_clock import PollClock
from edge_agent.settings import AgentSettings


@contextlib.asynccontextmanager
async def running_agent(
    settings: AgentSettings,
    *,
    clock: ClockGuard | None = None,
    poll_clock: PollClock | None = None,
) -> AsyncIterator[Agent]:
    """The agent in this event loop (its parts visible to the test), stopped cleanly on
    exit within 20 s; ``poll_clock``: an injected clock for its pollers."""
    stop = asyncio.Event()
    async with AsyncOutbox(settings.buffer_path) as outbox:
        agent = Agent(settings, outbox, clock=clock, poll_clock=poll_clock)
        task = asyncio.create_task(agent.run(stop))
        try:
            yield agent
        finally:
            stop.set()
            async with asyncio.timeout(20):
                await task


def migrations_before(root: Path, first_later: dict[str, int]) -> Path:
    """A copy of every service's migrations under ``root``, without those of each schema
    in ``first_later`` numbered from the given number on: a database as it was before
    them, to apply them to with data in it (``migrate(url, root)``, then ``migrate(url)``)."""
    from cloud.migrate import CLOUD_ROOT

    for schema_dir in CLOUD_ROOT.glob("*/schema"):
        service = schema_dir.parent.name
        target = root / service / "schema"
        target.mkdir(parents=True)
        for sql in schema_dir.glob("*.sql"):
            if int(sql.name[:3]) < first_later.get(service, 1000):
                shutil.copy(sql, target)
    return root


def write_agent_config(path: Path, **settings: Any) -> Path:
    path.write_text(yaml.safe_dump(settings), encoding="utf-8")
    return path


def site_agent_config(
    path: Path, gateway_id: str, mqtt_url: str, modbus_port: int, **overrides: Any
) -> Path:
    """An agent for one simulated site (inverter unit 1, meter unit 2), quick to react;
    an override of None leaves that setting to the agent's default."""
    settings: dict[str, Any] = {
        "gateway_id": gateway_id,
        "region": "au",
        "mqtt_url": mqtt_url,
        "buffer_path": str(path.parent / "buffer.sqlite"),
        "poll_interval_s": 0.5,
        "stored_timeout_s": 2.0,
        "reconnect_min_s": 0.1,
        "reconnect_max_s": 1.0,
        "endpoints": [
            {
                "name": "site",
                "host": "127.0.0.1",
                "port": modbus_port,
                "unit_ids": [1, 2],
                "timeout_s": 1.0,
            }
        ],
    }
    merged = {**settings, **overrides}
    return write_agent_config(path, **{k: v for k, v in merged.items() if v is not None})


class AgentProcess:
    """``python -m potr agent --config FILE`` as a real process."""

    def __init__(self, config: Path, log: Path) -> None:
        self._log = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "potr", "agent", "--config", str(config)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, no drain — what a power cut does."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._log.close()

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(timeout=10)
            self._log.close()


def stream_progress(database_url: str, gateway_id: str) -> tuple[int, int, int]:
    """(watermark, high seq, open gaps) of the gateway's newest stream, per ingest."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT s.watermark, s.high_seq, (SELECT count(*) FROM ingest.gaps g"
            " WHERE g.stream_id = s.stream_id AND g.closed_at IS NULL)"
            " FROM ingest.streams s WHERE s.gateway_id = %s ORDER BY s.started_at DESC LIMIT 1",
            (gateway_id,),
        ).fetchone()
    return (0, 0, 0) if row is None else (int(row[0]), int(row[1]), int(row[2]))


async def watermark(database_url: str, gateway_id: str) -> int:
    return (await asyncio.to_thread(stream_progress, database_url, gateway_id))[0]
