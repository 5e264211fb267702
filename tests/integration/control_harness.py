"""The cloud's side of the control path for agent tests: sign documents with a generated
key, publish them to the agent's ``cmd`` / ``config`` topics, collect ``cmd_ack`` and
``config_state`` as ingest would; a simulated site of controllable devices."""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from uuid import uuid4

import aiomqtt
import orjson

from contracts.control import command_document, config_document
from contracts.signing import SigningKey, sign_document
from contracts.timeutil import utc_now
from edge_agent.settings import AgentSettings
from simulators.device_site import DeviceSite, DeviceSiteSettings, DeviceSpec
from tests.integration.harness import running_agent
from tests.waiting import until

NOON_SYDNEY = datetime(2024, 1, 10, 2, 0, tzinfo=UTC)
INVERTER, BATTERY, ISOLATOR = 1, 3, 4
PROFILE = {"id": "au-test", "region": "au", "version": 1}


def control_site(site_id: str) -> DeviceSite:
    return DeviceSite(
        DeviceSiteSettings(
            site_id=site_id,
            start_time=NOON_SYDNEY,
            update_period_s=3600.0,  # physics still: writes only change what they write
            devices=[
                DeviceSpec(profile="sim-der-inverter", unit_id=INVERTER),
                DeviceSpec(profile="sim-battery", unit_id=BATTERY),
                DeviceSpec(profile="sim-isolator", unit_id=ISOLATOR),
            ],
        )
    )


def write_public_key(key: SigningKey, path: Path) -> Path:
    path.write_bytes(key.public_pem())
    return path


def agent_settings(
    url: str, site: DeviceSite, workdir: Path, gateway_id: str, keys: list[Path], **kw: Any
) -> AgentSettings:
    values: dict[str, Any] = {
        "gateway_id": gateway_id,
        "region": "au",
        "mqtt_url": url,
        "buffer_path": workdir / "buffer.sqlite",
        "poll_interval_s": 0.5,
        "stored_timeout_s": 30,
        "reconnect_min_s": 0.1,
        "reconnect_max_s": 0.5,
        "trusted_key_files": keys,
        "config_check_interval_s": 0.5,
        "curve_adopt_timeout_s": 2.0,
        "endpoints": [
            {
                "name": "site",
                "host": "127.0.0.1",
                "port": site.port,
                "unit_ids": [INVERTER, BATTERY, ISOLATOR],
                "unit_profiles": {
                    INVERTER: "sim-der-inverter",
                    BATTERY: "sim-battery",
                    ISOLATOR: "sim-isolator",
                },
                "timeout_s": 1.0,
            }
        ],
    }
    values.update(kw)
    return AgentSettings(**values)


class Cloud:
    """Signs and publishes documents for one gateway; records what it answers."""

    def __init__(self, client: aiomqtt.Client, gateway_id: str, key: SigningKey) -> None:
        self.client = client
        self.gateway_id = gateway_id
        self.key = key
        self.acks: list[dict[str, Any]] = []
        self.states: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.births: list[dict[str, Any]] = []
        self.arrived = asyncio.Event()
        self._seqs: set[int] = set()
        self.version = 0

    def topic(self, kind: str) -> str:
        return f"potr/v1/au/{self.gateway_id}/{kind}"

    async def run(self) -> None:
        async for message in self.client.messages:
            kind = message.topic.value.rsplit("/", 1)[1]
            if kind not in ("cmd_ack", "config_state", "event", "birth"):
                continue  # our own cmd/config (and their garbage) come back too
            assert isinstance(message.payload, bytes)
            body = orjson.loads(message.payload)
            seq = body.get("seq") if isinstance(body, dict) else None
            if seq is not None:
                if seq in self._seqs:
                    continue  # a resend (no stored watermark here)
                self._seqs.add(seq)
            {"cmd_ack": self.acks, "config_state": self.states, "event": self.events}.get(
                kind, self.births if kind == "birth" else []
            ).append(body)
            self.arrived.set()

    async def until(self, check: Callable[[], Any], within: float = 10.0, what: str = "") -> None:
        await until(check, within, what or "the gateway's answer", changed=self.arrived)

    # ----- documents ------------------------------------------------------------------
    def command(
        self,
        name: str,
        device: str | None,
        args: Any = None,
        *,
        expires_in_s: float = 60,
        sign: bool = True,
    ) -> dict[str, Any]:
        expires_at = utc_now() + timedelta(seconds=expires_in_s)
        doc = command_document(
            uuid4(), self.gateway_id, name, device, {} if args is None else args, expires_at, "test"
        )
        return sign_document(doc, self.key) if sign else doc

    def config(
        self,
        devices: Any,
        *,
        version: int | None = None,
        not_after_s: float = 3600,
        sign: bool = True,
    ) -> dict[str, Any]:
        if version is None:
            self.version += 1
            version = self.version
        not_after = utc_now() + timedelta(seconds=not_after_s)
        doc = config_document(self.gateway_id, version, PROFILE, devices, not_after, "test")
        return sign_document(doc, self.key) if sign else doc

    async def send(self, kind: str, doc: Any) -> None:
        """Publish ``doc`` (bytes as they are; a dict with ``payload``: those bytes)."""
        if isinstance(doc, dict) and "payload" in doc:
            doc = doc["payload"]
        payload = doc if isinstance(doc, bytes) else orjson.dumps(doc)
        await self.client.publish(self.topic(kind), payload, qos=1, retain=kind == "config")

    def acks_of(self, command_id: str) -> list[dict[str, Any]]:
        return [a for a in self.acks if a["id"] == command_id]

    def final_ack(self, command_id: str, after: int = 0) -> dict[str, Any] | None:
        finals = [
            a for a in self.acks[after:] if a["id"] == command_id and a["status"] != "accepted"
        ]
        return finals[-1] if finals else None

    async def command_result(self, doc: Any, within: float = 10.0) -> dict[str, Any]:
        """The first final ack of ``doc`` sent from now on."""
        before = len(self.acks)
        await self.send("cmd", doc)
        await self.until(
            lambda: self.final_ack(doc["id"], before), within, f"ack of {doc.get('name')}"
        )
        ack = self.final_ack(doc["id"], before)
        assert ack is not None
        return ack

    async def config_result(self, doc: Any, within: float = 10.0) -> dict[str, Any]:
        before = len(self.states)
        await self.send("config", doc)
        await self.until(lambda: len(self.states) > before, within, "config_state")
        return self.states[before]

    def devices_discovered(self, ids: set[str]) -> bool:
        return any(ids <= {d["device"] for d in b["devices"]} for b in self.births)


@contextlib.asynccontextmanager
async def cloud_for(url: str, gateway_id: str, key: SigningKey) -> AsyncIterator[Cloud]:
    parts = urlsplit(url)
    async with aiomqtt.Client(parts.hostname or "127.0.0.1", parts.port or 1883) as client:
        await client.subscribe(f"potr/v1/au/{gateway_id}/#", qos=1)
        cloud = Cloud(client, gateway_id, key)
        task = asyncio.create_task(cloud.run())
        try:
            yield cloud
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await task
            # Retained configs would outlive the test on a shared broker.
            with contextlib.suppress(aiomqtt.MqttError):
                await client.publish(cloud.topic("config"), b"", qos=1, retain=True)


def _unsignable(value: Any, tokens: dict[str, bytes]) -> Any:
    """``value`` with what canonical JSON cannot carry (NaN, infinities, integers beyond
    2**53) replaced by marker strings; ``tokens`` gets each marker's raw JSON text."""
    if isinstance(value, bool):
        return value
    if isinstance(value, float) and not math.isfinite(value):
        raw = b"NaN" if math.isnan(value) else (b"Infinity" if value > 0 else b"-Infinity")
    elif isinstance(value, int) and abs(value) > 2**53:
        raw = str(value).encode()
    elif isinstance(value, dict):
        return {k: _unsignable(v, tokens) for k, v in value.items()}
    elif isinstance(value, list):
        return [_unsignable(v, tokens) for v in value]
    else:
        return value
    marker = f"__raw{len(tokens)}__"
    tokens[marker] = raw
    return marker


def signed_payload(doc: dict[str, Any], key: SigningKey) -> bytes:
    """``doc`` signed and serialised. What canonical JSON cannot sign (NaN, infinities,
    huge integers) is signed as marker strings, then written as the raw tokens a sloppy
    producer would send: the signature cannot match, or the payload is not JSON at all."""
    tokens: dict[str, bytes] = {}
    payload = orjson.dumps(sign_document(_unsignable(doc, tokens), key))
    for marker, raw in tokens.items():
        payload = payload.replace(f'"{marker}"'.encode(), raw)
    return payload


def device_ids(site: DeviceSite) -> dict[int, str]:
    return {d.unit_id: d.serial for d in site.devices}


class ThreadedRig:
    """Site, agent and cloud on an event loop in a background thread, for synchronous
    property tests (hypothesis) that run many examples against one running agent."""

    def __init__(self, url: str, workdir: Path, key: SigningKey, **settings: Any) -> None:
        self._url, self._workdir, self.key, self._extra = url, workdir, key, settings
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._stack = contextlib.AsyncExitStack()
        self.gateway_id = f"gw-f-{uuid4().hex[:10]}"

    def call(self, coro: Any, timeout: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _start(self) -> None:
        self.site = await self._stack.enter_async_context(control_site(f"fz-{uuid4().hex[:6]}"))
        pem = write_public_key(self.key, self._workdir / "trusted.pem")
        settings = agent_settings(
            self._url, self.site, self._workdir, self.gateway_id, [pem], **self._extra
        )
        self.cloud = await self._stack.enter_async_context(
            cloud_for(self._url, self.gateway_id, self.key)
        )
        self.agent = await self._stack.enter_async_context(running_agent(settings))
        self.ids = device_ids(self.site)
        await self.cloud.until(
            lambda: self.cloud.devices_discovered(set(self.ids.values())), 15, "birth"
        )

    def __enter__(self) -> ThreadedRig:
        self._thread.start()
        self.call(self._start())
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self.call(self._stack.aclose())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self.loop.close()
