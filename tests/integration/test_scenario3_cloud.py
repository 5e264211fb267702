"""Reliability scenario 3, the cloud half: an agent with a small buffer rides out a broker
outage, drops its oldest telemetry and says so; in the database every missing seq and
every missing reading is explained by a ``data_dropped`` event or an open gap row."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterable
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from cloud.bootstrap import run_ingest
from cloud.registry import RegistryService
from potr.servers.mosquitto import PrivateMosquitto
from simulators.device_site import DeviceSite, region_site
from tests.integration.harness import (
    AgentProcess,
    site_agent_config,
    stream_progress,
    watermark,
)
from tests.integration.test_cloud_ingest import GW, _query, _settings, registry
from tests.waiting import until

pytestmark = [pytest.mark.integration, pytest.mark.chaos]
__all__ = ["registry"]  # fixture used here

POLL_S = 0.15
#: The smallest buffer the agent accepts: a few seconds of telemetry at this poll rate.
BUFFER_MAX_BYTES = 64 * 1024
#: Consecutive readings further apart than this are a hole to explain (poll jitter on a
#: loaded 2-core machine stays well below it).
HOLE_S = 3 * POLL_S + 0.3


def _last_seq(buffer: Path) -> int:
    db = sqlite3.connect(f"file:{buffer}?mode=ro", uri=True)
    try:
        return int(db.execute("SELECT last_seq FROM meta").fetchone()[0])
    finally:
        db.close()


def _drops_logged(log: Path) -> int:
    return log.read_text(encoding="utf-8", errors="replace").count("dropped ")


def _ranges(pairs: Iterable[tuple[int, int]]) -> set[int]:
    return {seq for lo, hi in pairs for seq in range(lo, hi + 1)}


def _covered(lo: datetime, hi: datetime, spans: list[tuple[datetime, datetime]]) -> bool:
    """Is the open interval (lo, hi) free of any stretch longer than ``HOLE_S`` outside
    the dropped ``spans``?"""
    cursor = lo
    for start, end in sorted(spans):
        if end < cursor:
            continue
        if (start - cursor).total_seconds() > HOLE_S:
            return False
        cursor = max(cursor, end)
        if cursor >= hi:
            return True
    return (hi - cursor).total_seconds() <= HOLE_S


async def test_every_missing_reading_is_explained_by_data_dropped_or_a_gap(
    database_url: str,
    mosquitto: PrivateMosquitto,
    registry: RegistryService,
    tmp_path: Path,
) -> None:
    settings = _settings(database_url, mosquitto.url)
    stop, ready = asyncio.Event(), asyncio.Event()
    log = tmp_path / "agent.log"
    buffer = tmp_path / "buffer.sqlite"
    sim_settings = region_site(site_id=GW, region="au", update_period_s=0.3)
    async with DeviceSite(sim_settings) as sim:
        ingest = asyncio.create_task(run_ingest(settings, stop, ready=ready))
        async with asyncio.timeout(30):
            await ready.wait()
        config = site_agent_config(
            tmp_path / "agent.yaml",
            GW,
            mosquitto.url,
            sim.port,
            poll_interval_s=POLL_S,
            buffer_max_bytes=BUFFER_MAX_BYTES,
            stored_timeout_s=2.0,
            drop_report_interval_s=0.5,
        )
        agent = AgentProcess(config, log)
        try:
            await until(lambda: watermark(database_url, GW), 30, "first batches", at_least=10)
            await asyncio.to_thread(mosquitto.kill)
            # The outage lasts until the full buffer has dropped telemetry a few times.
            await until(lambda: _drops_logged(log), 90, "the agent to drop telemetry", at_least=3)
            await asyncio.to_thread(mosquitto.start)
            target = _last_seq(buffer) + 5
            await until(
                lambda: watermark(database_url, GW),
                60,
                f"the watermark to pass seq {target}",
                at_least=target,
            )
        finally:
            await asyncio.to_thread(agent.stop)
            stop.set()
            await asyncio.wait_for(ingest, 30)

    [(stream_id,)] = _query(
        database_url, "SELECT stream_id FROM ingest.streams WHERE gateway_id = %s", (GW,)
    )
    wm, high, _ = stream_progress(database_url, GW)
    assert wm >= target

    # ----- seqs: stored, or dropped per a data_dropped event, or in an open gap -----------
    telemetry = {
        int(seq)
        for (seq,) in _query(
            database_url,
            "SELECT (s->>'seq')::bigint FROM ingest.outbox o,"
            " jsonb_array_elements(o.payload->'seqs') s"
            " WHERE o.name = 'telemetry.received' AND s->>'stream_id' = %s",
            (str(stream_id),),
        )
    }
    buffered_kinds = {
        int(seq)
        for table in ("events", "cmd_acks", "config_states")
        for (seq,) in _query(
            database_url, f"SELECT seq FROM ingest.{table} WHERE stream_id = %s", (stream_id,)
        )
    }
    drop_events: list[dict[str, Any]] = [
        detail
        for (detail,) in _query(
            database_url,
            "SELECT detail FROM ingest.events WHERE stream_id = %s AND event = 'data_dropped'"
            " ORDER BY seq",
            (stream_id,),
        )
    ]
    dropped = _ranges(tuple(r) for d in drop_events for r in d.get("seq_ranges", []))
    gaps = _ranges(
        _query(
            database_url,
            "SELECT from_seq, to_seq FROM ingest.gaps WHERE stream_id = %s AND closed_at IS NULL",
            (stream_id,),
        )
    )
    assert len(dropped) >= 3, "the buffer dropped nothing: no scenario"
    unexplained = set(range(1, high + 1)) - telemetry - buffered_kinds - dropped - gaps
    assert not unexplained, f"seqs neither stored nor explained: {sorted(unexplained)}"

    # ----- readings: every hole in a device's series lies inside a dropped span ----------
    spans = [
        (datetime.fromisoformat(d["from"]), datetime.fromisoformat(d["to"]))
        for d in drop_events
        if d.get("from") and d.get("to")
    ]
    assert spans, "data_dropped events carry no time span"
    devices = _query(
        database_url,
        "SELECT device_id, local_id FROM ingest.device_keys WHERE gateway_id = %s",
        (GW,),
    )
    assert len(devices) == 2
    holes = 0
    for device_id, local_id in devices:
        stamps = [
            ts
            for (ts,) in _query(
                database_url,
                "SELECT DISTINCT ts FROM telemetry.readings WHERE device_id = %s ORDER BY ts",
                (device_id,),
            )
        ]
        assert len(stamps) > 20
        for a, b in pairwise(stamps):
            if (b - a).total_seconds() > HOLE_S:
                holes += 1
                assert _covered(a, b, spans), (
                    f"{local_id}: readings missing between {a} and {b}, no data_dropped span"
                )
    assert holes >= 1, "no reading is missing although telemetry was dropped"
    print(
        f"scenario 3: seqs 1..{high}, {len(telemetry)} telemetry stored, {len(dropped)} dropped"
        f" in {len(drop_events)} data_dropped events, {len(gaps)} in open gaps; {holes} holes"
    )
