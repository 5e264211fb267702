"""The whole agent against a real Mosquitto and a simulated site.

Delivery rules: telemetry is buffered before it is published; ``stored`` releases rows;
PUBACKed rows not stored in time are sent again; a restart keeps the stream and sends
what was left; a clean stop leaves a retained ``online: false``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import sys
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from uuid import uuid4

import aiomqtt
import orjson
import pytest

from contracts.messages import BirthMsg, StateMsg, StoredMsg, TelemetryBatch
from contracts.timeutil import utc_now
from contracts.topics import topic
from edge_agent.app import run_agent
from edge_agent.settings import AgentSettings
from simulators.device_site import DeviceSite, region_site
from tests.waiting import until

pytestmark = pytest.mark.integration

NOON_SYDNEY = datetime(2024, 1, 10, 2, 0, tzinfo=UTC)


@pytest.fixture
async def site() -> AsyncIterator[DeviceSite]:
    settings = region_site(
        site_id=f"mq-{uuid4().hex[:6]}",
        region="au",
        start_time=NOON_SYDNEY,
        update_period_s=0.2,
    )
    async with DeviceSite(settings) as sim:
        yield sim


def _agent_settings(
    url: str, site: DeviceSite, buffer: Path, gateway_id: str, **kw: Any
) -> AgentSettings:
    values: dict[str, Any] = {
        "gateway_id": gateway_id,
        "region": "au",
        "mqtt_url": url,
        "buffer_path": buffer,
        "poll_interval_s": 0.25,
        "stored_timeout_s": 30,
        "reconnect_min_s": 0.1,
        "reconnect_max_s": 0.5,
        "endpoints": [{"name": "site", "host": "127.0.0.1", "port": site.port, "unit_ids": [1, 2]}],
    }
    values.update(kw)
    return AgentSettings(**values)


class Watcher:
    """Subscribes to one gateway's topics and records every message by kind."""

    def __init__(self, client: aiomqtt.Client, gateway_id: str) -> None:
        self.client = client
        self.gateway_id = gateway_id
        self.messages: list[tuple[str, dict[str, Any], bool]] = []
        self.arrived = asyncio.Event()

    async def run(self) -> None:
        async for message in self.client.messages:
            kind = message.topic.value.rsplit("/", 1)[1]
            assert isinstance(message.payload, bytes)
            self.messages.append((kind, orjson.loads(message.payload), message.retain))
            self.arrived.set()

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [p for k, p, _ in self.messages if k == kind]

    async def until(self, check: Callable[[], bool], within: float = 15.0) -> None:
        await until(check, within, "the witness to see it", changed=self.arrived)

    async def publish_stored(self, stream_id: str, upto: int) -> None:
        msg = StoredMsg(stream_id=stream_id, upto_seq=upto, ts=utc_now())  # type: ignore[arg-type]
        await self.client.publish(topic("au", self.gateway_id, "stored"), msg.to_json(), qos=1)


@contextlib.asynccontextmanager
async def watching(url: str, gateway_id: str) -> AsyncIterator[Watcher]:
    parts = urlsplit(url)
    async with aiomqtt.Client(parts.hostname or "127.0.0.1", parts.port or 1883) as client:
        await client.subscribe(f"potr/v1/au/{gateway_id}/#", qos=1)
        watcher = Watcher(client, gateway_id)
        task = asyncio.create_task(watcher.run())
        try:
            yield watcher
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await task


@contextlib.asynccontextmanager
async def running(settings: AgentSettings) -> AsyncIterator[asyncio.Event]:
    stop = asyncio.Event()
    task = asyncio.create_task(run_agent(settings, stop))
    try:
        yield stop
    finally:
        stop.set()
        async with asyncio.timeout(15):
            await task


def _rows(buffer: Path) -> list[int]:
    """Seqs still in the agent's outbox (read from a second connection; WAL allows it)."""
    if not buffer.exists():
        return []
    with contextlib.closing(sqlite3.connect(buffer)) as db:
        try:
            return [r[0] for r in db.execute("SELECT seq FROM outbox ORDER BY seq")]
        except sqlite3.OperationalError:  # the agent has not created its tables yet
            return []


def _gw() -> str:
    return f"gw-t-{uuid4().hex[:10]}"


async def test_agent_announces_itself_and_publishes_telemetry(
    mosquitto_url: str, site: DeviceSite, tmp_path: Path
) -> None:
    gw = _gw()
    settings = _agent_settings(mosquitto_url, site, tmp_path / "b.sqlite", gw)
    serials = {d.serial for d in site.devices}
    async with watching(mosquitto_url, gw) as w, running(settings):
        await w.until(
            lambda: any({d["device"] for d in b["devices"]} == serials for b in w.of("birth"))
        )
        await w.until(lambda: len(w.of("telemetry")) >= 3)
    births = [BirthMsg.model_validate(b) for b in w.of("birth")]
    assert births[-1].poll_interval_s == 0.25
    devices = {d.device: d for d in births[-1].devices}
    assert devices[site.device(1).serial].models == [1, 103, 120, 121, 122, 123, 126, 132, 160]
    assert all(d.status == "online" for d in devices.values())
    states = [StateMsg.model_validate(s) for s in w.of("state")]
    assert states[0].online
    assert not states[-1].online  # clean shutdown
    batches = [TelemetryBatch.model_validate(t) for t in w.of("telemetry")]
    assert len({b.stream_id for b in batches}) == 1
    seqs = [b.seq for b in batches]
    assert seqs == sorted(seqs)
    seen = {r.device for b in batches for r in b.readings}
    assert seen == serials
    pv = [r.values["pv_w"] for b in batches for r in b.readings if "pv_w" in r.values]
    assert pv
    assert all(v is not None and v > 0 for v in pv)


async def test_clean_stop_leaves_a_retained_offline_state(
    mosquitto_url: str, site: DeviceSite, tmp_path: Path
) -> None:
    gw = _gw()
    settings = _agent_settings(mosquitto_url, site, tmp_path / "b.sqlite", gw)
    async with watching(mosquitto_url, gw) as w, running(settings):
        await w.until(lambda: len(w.of("state")) >= 1)
    async with watching(mosquitto_url, gw) as late:
        await late.until(lambda: len(late.of("state")) >= 1)
    kind, payload, retained = late.messages[0]
    assert kind == "state"
    assert retained
    assert payload["online"] is False


async def test_stored_releases_rows_and_unstored_rows_are_resent(
    mosquitto_url: str, site: DeviceSite, tmp_path: Path
) -> None:
    gw = _gw()
    buffer = tmp_path / "b.sqlite"
    settings = _agent_settings(mosquitto_url, site, buffer, gw, stored_timeout_s=1.0)
    async with watching(mosquitto_url, gw) as w, running(settings):
        await w.until(lambda: len(w.of("telemetry")) >= 3)
        first = w.of("telemetry")[0]

        def resent() -> bool:
            return sum(1 for t in w.of("telemetry") if t["seq"] == first["seq"]) >= 2

        await w.until(resent)  # PUBACKed, never stored: sent again after the timeout
        upto = max(t["seq"] for t in w.of("telemetry"))
        await w.publish_stored(first["stream_id"], upto)

        async def released() -> bool:
            return all(seq > upto for seq in _rows(buffer))

        await until(released, 10, "the agent to release covered rows")


async def test_a_stored_beyond_the_streams_last_seq_deletes_nothing(
    mosquitto_url: str, site: DeviceSite, tmp_path: Path
) -> None:
    """A ``stored`` claiming seqs the stream never allocated (forged, or another
    gateway's) is ignored: taken, it would delete rows the cloud never received."""
    gw = _gw()
    buffer = tmp_path / "b.sqlite"
    settings = _agent_settings(mosquitto_url, site, buffer, gw, stored_timeout_s=30.0)
    async with watching(mosquitto_url, gw) as w, running(settings):
        await w.until(lambda: len(w.of("telemetry")) >= 3)
        stream = w.of("telemetry")[0]["stream_id"]
        seqs = sorted(t["seq"] for t in w.of("telemetry"))
        await w.publish_stored(stream, 1_000_000_000)  # forged: far beyond the stream
        await w.publish_stored(stream, seqs[0])  # genuine, delivered after it (same topic)

        async def first_released() -> bool:
            return seqs[0] not in _rows(buffer)

        await until(first_released, 10, "the genuine stored to be applied")
        assert set(seqs[1:3]) <= set(_rows(buffer)), "the forged stored deleted rows"


async def test_restart_keeps_the_stream_and_sends_what_was_left(
    mosquitto_url: str, site: DeviceSite, tmp_path: Path
) -> None:
    gw = _gw()
    buffer = tmp_path / "b.sqlite"
    # First run with an unreachable broker: everything stays in the buffer.
    offline = _agent_settings("mqtt://127.0.0.1:1", site, buffer, gw)
    async with running(offline):

        async def buffered() -> bool:
            return len(_rows(buffer)) >= 3

        await until(buffered, 10, "the agent to buffer")
    left = _rows(buffer)
    settings = _agent_settings(mosquitto_url, site, buffer, gw)
    async with watching(mosquitto_url, gw) as w, running(settings):
        await w.until(lambda: {t["seq"] for t in w.of("telemetry")} >= set(left))
        await w.until(lambda: max(t["seq"] for t in w.of("telemetry")) > max(left))
    streams = {t["stream_id"] for t in w.of("telemetry")}
    assert len(streams) == 1
    assert w.of("birth")[0]["stream_id"] in streams


async def test_agent_reconnects_after_the_broker_is_killed(
    mosquitto: Any, site: DeviceSite, tmp_path: Path
) -> None:
    gw = _gw()
    buffer = tmp_path / "b.sqlite"
    settings = _agent_settings(mosquitto.url, site, buffer, gw, stored_timeout_s=2.0)
    async with running(settings):
        async with watching(mosquitto.url, gw) as w:
            await w.until(lambda: len(w.of("telemetry")) >= 2)
        mosquitto.kill()
        mosquitto.start()
        async with watching(mosquitto.url, gw) as w2:
            # the agent comes back (new birth) and what was not stored is resent
            await w2.until(lambda: len(w2.of("birth")) >= 1, within=20)
            await w2.until(lambda: len(w2.of("telemetry")) >= 2, within=20)
            upto = max(t["seq"] for t in w2.of("telemetry"))
            await w2.publish_stored(w2.of("telemetry")[0]["stream_id"], upto)

            async def released() -> bool:
                return all(seq > upto for seq in _rows(buffer))

            await until(released, 10, "the agent to release covered rows")
    assert w2.of("birth")[0]["stream_id"] == w2.of("telemetry")[0]["stream_id"]


async def test_agent_speaks_mqtt_311_to_the_demo_broker(
    amqtt_url: str, site: DeviceSite, tmp_path: Path
) -> None:
    gw = _gw()
    settings = _agent_settings(amqtt_url, site, tmp_path / "b.sqlite", gw, mqtt_protocol="3.1.1")
    async with watching(amqtt_url, gw) as w, running(settings):
        await w.until(lambda: len(w.of("telemetry")) >= 2)
        batch = TelemetryBatch.model_validate(w.of("telemetry")[-1])
        await w.publish_stored(str(batch.stream_id), batch.seq)

        async def released() -> bool:
            return all(seq > batch.seq for seq in _rows(tmp_path / "b.sqlite"))

        await until(released, 10, "the agent to release covered rows")


REPO_ROOT = Path(__file__).resolve().parents[2]
AGENT_MAIN = (
    "import asyncio, sys\n"
    "from edge_agent.app import run_agent\n"
    "from edge_agent.settings import AgentSettings\n"
    "asyncio.run(run_agent(AgentSettings.from_yaml(sys.argv[1])))\n"
)


async def test_a_killed_agent_leaves_its_will_and_resumes_its_stream(
    mosquitto_url: str, site: DeviceSite, tmp_path: Path
) -> None:
    gw = _gw()
    buffer = tmp_path / "b.sqlite"
    settings = _agent_settings(mosquitto_url, site, buffer, gw)
    config = tmp_path / "agent.yaml"
    config.write_text(orjson.dumps(settings.model_dump(mode="json")).decode())  # JSON is YAML
    root = REPO_ROOT
    env = {**os.environ, "PYTHONPATH": str(root)}
    async with watching(mosquitto_url, gw) as w:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", AGENT_MAIN, str(config), env=env, cwd=root
        )
        try:
            await w.until(lambda: len(w.of("telemetry")) >= 2, within=30)
        finally:
            proc.kill()  # SIGKILL: no goodbye, the broker publishes the will
            await proc.wait()
        await w.until(lambda: any(not s["online"] for s in w.of("state")))
        stream = w.of("telemetry")[0]["stream_id"]
        async with running(settings):
            await w.until(lambda: sum(1 for b in w.of("birth") if b["stream_id"] == stream) >= 2)
            last = max(t["seq"] for t in w.of("telemetry"))
            await w.until(lambda: max(t["seq"] for t in w.of("telemetry")) > last)
    with contextlib.closing(sqlite3.connect(buffer)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
