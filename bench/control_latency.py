"""Control path latency (issue 7): a signed command or config, from the cloud's publish to
the agent's answer, beside the raw MQTT and Modbus round trips of the same run.

    .venv/bin/python -m bench.control_latency [--commands 200] [--configs 30] [--json FILE]

One process: a private Mosquitto on a free loopback port, a simulated site (``DeviceSite``,
``sim-der-inverter`` on unit 1), one agent in-process (``edge_agent.app.Agent``, trusting a
generated Ed25519 key, buffer and control store on disk with ``synchronous=FULL``) and a
signing "cloud" over aiomqtt that also plays ingest's ``stored`` watermark.

Figures:
- command: N signed ``set_power_limit`` (50 / 60 alternately), one after another, publish
  → ``done`` cmd_ack received (p50/p95/p99, commands/s; publish → ``accepted`` too);
- config: M configs of increasing version (a power limit; every other one also a 4-point
  volt-var curve), publish (retained) → the ``config_state`` of that version (p50/p95);
- baselines: (a) one MQTT hop through the same broker: QoS 1 publish of a command-sized
  payload on one aiomqtt client → received on another subscribed at QoS 1; (b) a raw
  pymodbus FC16 write of 704.WMaxLimPct + FC3 read-back against the same simulator;
- overhead = command p50 - (MQTT p50 + Modbus write+read p50), and command p50 / that sum;
- components (same run, in isolation): Ed25519 signing and ``verify_command``, a durable
  seen-id insert (``ControlStore.remember``) and a durable outbox append (``Outbox.append``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import orjson
from pymodbus.client import AsyncModbusTcpClient

from contracts.control import ReplayGuard, command_document, config_document, verify_command
from contracts.messages import StoredMsg
from contracts.signing import SigningKey, TrustedKeys, sign_document
from contracts.timeutil import utc_now
from contracts.topics import topic
from edge_agent.buffer import Outbox
from edge_agent.control_store import ControlStore
from potr.servers.mosquitto import PrivateMosquitto
from simulators.device_site import DeviceSite, DeviceSiteSettings, DeviceSpec
from tests.integration.control_harness import (
    NOON_SYDNEY,
    PROFILE,
    agent_settings,
    running_agent,
    write_public_key,
)

REGION = "au"
UNIT = 1
LIMIT_POINT = "704.WMaxLimPct"
COMMAND_VALUES = (50.0, 60.0)
CURVES = (
    ([92.0, 98.0, 102.0, 108.0], [30.0, 0.0, 0.0, -30.0]),
    ([90.0, 97.0, 103.0, 110.0], [40.0, 0.0, 0.0, -40.0]),
)
WAIT_S = 15.0  # bound on every single wait for an answer


def pct(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of ``values``."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def ms(values: Sequence[float]) -> dict[str, float]:
    return {
        "p50_ms": round(statistics.median(values) * 1000, 3),
        "p95_ms": round(pct(values, 95) * 1000, 3),
        "p99_ms": round(pct(values, 99) * 1000, 3),
        "mean_ms": round(statistics.fmean(values) * 1000, 3),
        "n": len(values),
    }


class BenchCloud:
    """Signs and publishes documents for one gateway (``pub``, as the config service
    does); timestamps what it answers and answers ``stored`` as ingest would (``client``:
    contiguous watermark, every 0.5 s). Two connections, as in the cloud."""

    def __init__(
        self, client: aiomqtt.Client, pub: aiomqtt.Client, gateway_id: str, key: SigningKey
    ) -> None:
        self.client = client
        self.pub = pub
        self.gateway_id = gateway_id
        self.key = key
        self.acks: dict[str, dict[str, tuple[float, str]]] = {}  # id -> status -> (t, detail)
        self.states: dict[int, tuple[float, dict[str, Any]]] = {}  # first state per version
        self.birth_devices: set[str] = set()
        self.arrived = asyncio.Event()
        self._seqs: dict[str, set[int]] = {}
        self._upto: dict[str, int] = {}
        self._told: dict[str, int] = {}

    def topic(self, kind: str) -> str:
        return topic(REGION, self.gateway_id, kind)

    async def run(self) -> None:
        async for message in self.client.messages:
            received = time.perf_counter()
            kind = message.topic.value.rsplit("/", 1)[1]
            if kind in ("cmd", "config", "stored") or not isinstance(message.payload, bytes):
                continue  # our own documents come back too
            if not message.payload:
                continue
            body = orjson.loads(message.payload)
            stream, seq = body.get("stream_id"), body.get("seq")
            if stream is not None and isinstance(seq, int):
                seen = self._seqs.setdefault(stream, set())
                if seq <= self._upto.get(stream, 0) or seq in seen:
                    continue  # a resend
                seen.add(seq)
                upto = self._upto.get(stream, 0)
                while upto + 1 in seen:
                    seen.discard(upto)
                    upto += 1
                self._upto[stream] = upto
            if kind == "cmd_ack":
                self.acks.setdefault(body["id"], {}).setdefault(
                    body["status"], (received, body.get("detail", ""))
                )
            elif kind == "config_state":
                version = body.get("version")
                if isinstance(version, int) and version not in self.states:
                    self.states[version] = (received, body)
            elif kind == "birth":
                self.birth_devices |= {d["device"] for d in body.get("devices", [])}
            self.arrived.set()

    async def answer_stored(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            for stream, upto in list(self._upto.items()):
                if upto > self._told.get(stream, 0):
                    msg = StoredMsg(stream_id=uuid.UUID(stream), upto_seq=upto, ts=utc_now())
                    await self.client.publish(self.topic("stored"), msg.to_json(), qos=1)
                    self._told[stream] = upto

    async def until(self, check: Callable[[], Any], what: str, within: float = WAIT_S) -> None:
        try:
            async with asyncio.timeout(within):
                while not check():
                    self.arrived.clear()
                    await self.arrived.wait()
        except TimeoutError:
            raise RuntimeError(f"timed out after {within:g} s waiting for {what}") from None

    def command(self, name: str, device: str, args: dict[str, Any]) -> dict[str, Any]:
        expires_at = utc_now() + timedelta(seconds=120)
        doc = command_document(
            uuid.uuid4(), self.gateway_id, name, device, args, expires_at, "bench"
        )
        return sign_document(doc, self.key)

    def config(self, version: int, devices: dict[str, Any]) -> dict[str, Any]:
        not_after = utc_now() + timedelta(hours=1)
        doc = config_document(self.gateway_id, version, PROFILE, devices, not_after, "bench")
        return sign_document(doc, self.key)


@contextlib.asynccontextmanager
async def bench_cloud(port: int, gateway_id: str, key: SigningKey) -> AsyncIterator[BenchCloud]:
    async with (
        aiomqtt.Client("127.0.0.1", port, identifier=f"bench-ingest-{uuid.uuid4()}") as c,
        aiomqtt.Client("127.0.0.1", port, identifier=f"bench-config-{uuid.uuid4()}") as pub,
    ):
        await c.subscribe(f"potr/v1/{REGION}/{gateway_id}/#", qos=1)
        cloud = BenchCloud(c, pub, gateway_id, key)
        tasks = [asyncio.create_task(cloud.run()), asyncio.create_task(cloud.answer_stored())]
        try:
            yield cloud
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                    await task
            with contextlib.suppress(aiomqtt.MqttError):  # clear the retained config
                await pub.publish(cloud.topic("config"), b"", qos=1, retain=True)


# ----- baselines --------------------------------------------------------------------------
async def mqtt_hop(port: int, payload: bytes, samples: int) -> list[float]:
    """QoS 1 publish on one client → receipt on another (QoS 1 subscription)."""
    name = f"bench/rtt/{uuid.uuid4().hex[:8]}"
    out: list[float] = []
    async with (
        aiomqtt.Client("127.0.0.1", port, identifier=f"rtt-pub-{uuid.uuid4()}") as pub,
        aiomqtt.Client("127.0.0.1", port, identifier=f"rtt-sub-{uuid.uuid4()}") as sub,
    ):
        await sub.subscribe(name, qos=1)
        received: asyncio.Queue[float] = asyncio.Queue()

        async def listen() -> None:
            async for _ in sub.messages:
                received.put_nowait(time.perf_counter())

        task = asyncio.create_task(listen())
        try:
            for _ in range(samples + 5):  # 5 warm-up round trips
                t0 = time.perf_counter()
                await pub.publish(name, payload, qos=1)
                async with asyncio.timeout(WAIT_S):
                    t1 = await received.get()
                out.append(t1 - t0)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await task
    return out[5:]


def limit_register(site: DeviceSite) -> tuple[int, int]:
    """Absolute register address of 704.WMaxLimPct on the simulator and its scale factor."""
    device = site.device(UNIT)
    block = device.block(704)
    slot = block.lay.slot("WMaxLimPct")
    assert slot is not None
    sf = device.sf(704, slot)
    return block.addr + slot.offset, 0 if sf is None else sf


async def modbus_write_read(port: int, address: int, sf: int, samples: int) -> list[float]:
    """FC16 write of one register + FC3 read-back, raw pymodbus, same simulator."""
    raws = [round(v / 10**sf) for v in COMMAND_VALUES]
    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2.0)
    out: list[float] = []
    try:
        async with asyncio.timeout(WAIT_S):
            if not await client.connect():
                raise RuntimeError(f"Modbus connect to 127.0.0.1:{port} failed")
        for i in range(samples + 5):
            raw = raws[i % 2]
            t0 = time.perf_counter()
            async with asyncio.timeout(WAIT_S):
                wr = await client.write_registers(address, [raw], device_id=UNIT)
                rr = await client.read_holding_registers(address, count=1, device_id=UNIT)
            t1 = time.perf_counter()
            if wr.isError() or rr.isError() or rr.registers != [raw]:
                raise RuntimeError(f"raw Modbus write/read of {raw} at {address}: {wr} / {rr}")
            out.append(t1 - t0)
    finally:
        client.close()
    return out[5:]


def components(workdir: Path, key: SigningKey, gateway_id: str, device: str) -> dict[str, Any]:
    """What a command costs in pieces, each timed alone (same machine, same run)."""
    trusted = TrustedKeys([key.public_key])
    n = 200

    def doc() -> dict[str, Any]:
        expires_at = utc_now() + timedelta(seconds=120)
        return command_document(
            uuid.uuid4(), gateway_id, "set_power_limit", device, {"pct": 50}, expires_at, "bench"
        )

    raw = [doc() for _ in range(n)]
    t0 = time.perf_counter()
    signed = [sign_document(d, key) for d in raw]
    sign_s = (time.perf_counter() - t0) / n
    guard = ReplayGuard(10_000, max_lifetime=timedelta(days=1))
    t0 = time.perf_counter()
    for s in signed:
        verify_command(s, gateway_id=gateway_id, trusted=trusted, now=utc_now(), seen=guard)
    verify_s = (time.perf_counter() - t0) / n
    store = ControlStore(workdir / "side-control.sqlite")
    times = []
    for _ in range(50):
        t0 = time.perf_counter()
        store.remember(uuid.uuid4(), utc_now() + timedelta(seconds=120))
        times.append(time.perf_counter() - t0)
    store.close()
    box = Outbox(workdir / "side-outbox.sqlite")
    appends = []
    payload = b'{"v":1,"status":"done","detail":"read back 704.WMaxLimPct=50"}'
    for _ in range(50):
        t0 = time.perf_counter()
        box.append("cmd_ack", lambda _stream, _seq: payload)
        appends.append(time.perf_counter() - t0)
    box.close()
    return {
        "sign_us": round(sign_s * 1e6, 1),
        "verify_command_us": round(verify_s * 1e6, 1),
        "seen_id_insert_fsync_ms": round(statistics.median(times) * 1000, 3),
        "outbox_append_fsync_ms": round(statistics.median(appends) * 1000, 3),
    }


# ----- the run ----------------------------------------------------------------------------
async def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    key = SigningKey.generate()
    pem = write_public_key(key, workdir / "trusted.pem")
    gateway_id = f"gw-bench-ctl-{uuid.uuid4().hex[:8]}"
    site_settings = DeviceSiteSettings(
        site_id="bench-ctl",
        start_time=NOON_SYDNEY,
        update_period_s=3600.0,  # physics still: only writes change registers
        devices=[DeviceSpec(profile="sim-der-inverter", unit_id=UNIT)],
    )
    results: dict[str, Any] = {"commands": args.commands, "configs": args.configs}
    broker = PrivateMosquitto()
    if args.broker_nodelay:  # an experiment: Mosquitto's default leaves Nagle on
        with (broker.root / "mosquitto.conf").open("a", encoding="utf-8") as conf:
            conf.write("set_tcp_nodelay true\n")
    results["broker_tcp_nodelay"] = args.broker_nodelay
    with broker:
        async with contextlib.AsyncExitStack() as stack:
            site = await stack.enter_async_context(DeviceSite(site_settings))
            device = site.device(UNIT).serial
            cloud = await stack.enter_async_context(bench_cloud(broker.port, gateway_id, key))
            settings = agent_settings(
                broker.url,
                site,
                workdir,
                gateway_id,
                [pem],
                poll_interval_s=args.poll,
                config_check_interval_s=60.0,
                endpoints=[
                    {
                        "name": "site",
                        "host": "127.0.0.1",
                        "port": site.port,
                        "unit_ids": [UNIT],
                        "unit_profiles": {UNIT: "sim-der-inverter"},
                        "timeout_s": 1.0,
                    }
                ],
            )
            await stack.enter_async_context(running_agent(settings))
            await cloud.until(lambda: device in cloud.birth_devices, "discovery (birth)", 30.0)
            print(f"agent up, {device} discovered; gateway {gateway_id}, broker :{broker.port}")

            # baselines, same broker and simulator, agent running (idle between polls)
            sample_doc = orjson.dumps(cloud.command("set_power_limit", device, {"pct": 50}))
            hop = await mqtt_hop(broker.port, sample_doc, args.commands)
            address, sf = limit_register(site)
            modbus = await modbus_write_read(site.port, address, sf, args.commands)
            results["mqtt_hop"] = ms(hop)
            results["modbus_write_read"] = ms(modbus) | {"address": address, "sf": sf}

            # commands
            done: list[float] = []
            accepted: list[float] = []
            t_start = time.perf_counter()
            for i in range(args.commands):
                value = COMMAND_VALUES[i % 2]
                doc = cloud.command("set_power_limit", device, {"pct": value})
                payload = orjson.dumps(doc)
                cid = doc["id"]
                t0 = time.perf_counter()
                await cloud.pub.publish(cloud.topic("cmd"), payload, qos=1)

                def finished(cid: str = cid) -> bool:
                    return bool(set(cloud.acks.get(cid, {})) - {"accepted"})

                await cloud.until(finished, f"the final ack of command {i}")
                acks = cloud.acks[cid]
                final = next(s for s in acks if s != "accepted")
                if final != "done":
                    raise RuntimeError(f"command {i} ended {final}: {acks[final][1]}")
                done.append(acks["done"][0] - t0)
                if "accepted" in acks:
                    accepted.append(acks["accepted"][0] - t0)
            elapsed = time.perf_counter() - t_start
            last = site.point(UNIT, LIMIT_POINT)
            expected = COMMAND_VALUES[(args.commands - 1) % 2]
            if last is None or abs(float(last) - expected) > 0.5 * 10**sf:
                raise RuntimeError(f"simulator shows {LIMIT_POINT} = {last}, expected {expected}")
            results["command_done"] = ms(done) | {"per_s": round(args.commands / elapsed, 1)}
            results["command_accepted"] = ms(accepted)
            results["simulator_last_value"] = last

            # configs
            plain: list[float] = []
            curved: list[float] = []
            for j in range(args.configs):
                version = j + 1
                settings_doc: dict[str, Any] = {
                    "power_limit_pct": 40.0 + 5 * (j % 6),
                    "power_limit_enable": 1,
                }
                if j % 2 == 1:
                    v, q = CURVES[(j // 2) % 2]
                    settings_doc |= {
                        "volt_var_enable": 1,
                        "volt_var_v_pct": v,
                        "volt_var_q_pct": q,
                    }
                doc = cloud.config(version, {device: settings_doc})
                payload = orjson.dumps(doc)
                t0 = time.perf_counter()
                await cloud.pub.publish(cloud.topic("config"), payload, qos=1, retain=True)

                def answered(version: int = version) -> bool:
                    return version in cloud.states

                await cloud.until(answered, f"config_state of version {version}")
                t1, state = cloud.states[version]
                if state.get("status") != "applied":
                    raise RuntimeError(f"config {version}: {state.get('status')} {state}")
                (curved if j % 2 == 1 else plain).append(t1 - t0)
            results["config_state"] = ms(plain + curved)
            results["config_limit_only"] = ms(plain) if plain else None
            results["config_with_curve"] = ms(curved) if curved else None
    results["components"] = components(workdir, key, gateway_id, device)
    return results


def report(r: dict[str, Any]) -> None:
    hop, mb = r["mqtt_hop"], r["modbus_write_read"]
    cmd, acc, cfg = r["command_done"], r["command_accepted"], r["config_state"]
    floor = hop["p50_ms"] + mb["p50_ms"]
    r["overhead_ms"] = round(cmd["p50_ms"] - floor, 3)
    r["ratio"] = round(cmd["p50_ms"] / floor, 2)
    rows: list[tuple[str, dict[str, Any] | None]] = [
        ("baseline (a): MQTT hop, QoS 1 pub -> sub", hop),
        (f"baseline (b): Modbus FC16 + FC3 @ {mb['address']}", mb),
        ("command: publish -> accepted ack", acc),
        ("command: publish -> done ack", cmd),
        ("config: publish -> config_state (all)", cfg),
        ("config: power limit only", r["config_limit_only"]),
        ("config: + 4-point volt-var curve", r["config_with_curve"]),
    ]
    print()
    print(f"{'path':<46} {'n':>5} {'p50 ms':>9} {'p95 ms':>9} {'p99 ms':>9}")
    for name, row in rows:
        if row is not None:
            print(
                f"{name:<46} {row['n']:>5} {row['p50_ms']:>9.2f} "
                f"{row['p95_ms']:>9.2f} {row['p99_ms']:>9.2f}"
            )
    print()
    print(f"commands/s (one after another):      {cmd['per_s']:,.1f}")
    print(f"simulator {LIMIT_POINT} after the last command: {r['simulator_last_value']}")
    print(
        f"overhead = command p50 - (MQTT p50 + Modbus p50) = {cmd['p50_ms']:.2f} - "
        f"({hop['p50_ms']:.2f} + {mb['p50_ms']:.2f}) = {r['overhead_ms']:.2f} ms "
        f"(command p50 = {r['ratio']:.2f}x the sum)"
    )
    c = r["components"]
    print(
        f"components alone: sign {c['sign_us']:.0f} us, verify_command {c['verify_command_us']:.0f}"
        f" us, seen-id insert (fsync) {c['seen_id_insert_fsync_ms']:.2f} ms, "
        f"outbox append (fsync) {c['outbox_append_fsync_ms']:.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--commands", type=int, default=200)
    parser.add_argument("--configs", type=int, default=30)
    parser.add_argument("--poll", type=float, default=1.0, help="agent poll interval, s")
    parser.add_argument(
        "--broker-nodelay",
        action="store_true",
        help="add set_tcp_nodelay true to the private broker's config (Nagle off)",
    )
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args()
    if args.commands < 1 or args.configs < 1:
        parser.error("--commands and --configs must be at least 1")
    with tempfile.TemporaryDirectory(prefix="potr-ctl-bench-", dir="/tmp") as tmp:
        try:
            results = asyncio.run(run(args, Path(tmp)))
        except RuntimeError as exc:
            print(f"control_latency: {exc}", file=sys.stderr)
            raise SystemExit(1) from None
    report(results)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
