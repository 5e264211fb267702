"""Edge agent footprint: CPU % of one core and peak RSS of the agent process polling
simulated devices every second, beside a bare pymodbus loop reading the same registers,
measured the same way in the same run.

    .venv/bin/python -m bench.edge_footprint [--seconds 60] [--devices 10]

The bench process serves the devices (``DeviceSite`` region preset: inverter unit 1 + meter
unit 2 per site) and plays the cloud's ``stored`` watermark once a second, so the agent runs in
its steady state (buffer drained as ingest would); a private Mosquitto is the broker.
Both measured programs are subprocesses: ``potr agent --config <yaml>`` (with its
``/healthz`` + ``/metrics`` port on, as in production) and a synchronous pymodbus loop.
CPU is utime + stime from ``/proc/<pid>/stat`` (all threads) over the measured window,
which starts once every device is online (start-up is reported apart); peak RSS is
``VmHWM`` from ``/proc/<pid>/status`` at the end (start-up included).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from potr.servers.mosquitto import PrivateMosquitto
from potr.servers.ports import free_port

GATEWAY = "gw-bench-footprint"
REGION = "au"
NOON_SYDNEY = datetime(2024, 1, 10, 2, 0, tzinfo=UTC)
CLK_TCK = os.sysconf("SC_CLK_TCK")
#: (port, unit id, [(address, count), ...]) per device: what one poll reads.
Plan = list[tuple[int, int, list[tuple[int, int]]]]


# ----- measuring a process ---------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    """utime + stime of every thread of ``pid``, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of stat(5)


def status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    raise KeyError(key)


@dataclass
class Figures:
    name: str
    startup_cpu_s: float
    cpu_pct: float
    peak_rss_mib: float
    rss_mib: float


class Measured:
    """A subprocess whose CPU is counted from ``mark()`` to ``figures()``."""

    def __init__(self, name: str, argv: list[str]) -> None:
        self.name = name
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        self._t0 = 0.0
        self._cpu0 = 0.0

    def mark(self) -> None:
        self._t0, self._cpu0 = time.monotonic(), cpu_seconds(self.proc.pid)

    def figures(self) -> Figures:
        pid = self.proc.pid
        cpu, wall = cpu_seconds(pid) - self._cpu0, time.monotonic() - self._t0
        return Figures(
            self.name,
            self._cpu0,
            100.0 * cpu / wall,
            status_kib(pid, "VmHWM") / 1024,
            status_kib(pid, "VmRSS") / 1024,
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# ----- the devices and the cloud's side, on a thread of the bench process -----------------
class Sites:
    """``n`` simulated sites and a ``stored`` responder on their own event loop."""

    def __init__(self, n: int, mqtt_url: str) -> None:
        self._n = n
        self._mqtt_url = mqtt_url
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self.plan: Plan = []
        self.stored = 0
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._main(),))

    def __enter__(self) -> Sites:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("simulators did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(15)

    async def _main(self) -> None:
        from device_profiles.sunspec_codec import ModelBlock, read_plan
        from edge_agent.normalise import POINT_MAP
        from simulators.device_site import DeviceSite, region_site

        self._stop = asyncio.Event()
        async with contextlib.AsyncExitStack() as stack:
            for i in range(self._n):
                settings = region_site(site_id=f"fp{i}", region=REGION, start_time=NOON_SYDNEY)
                site = await stack.enter_async_context(DeviceSite(settings))
                for device in site.devices:
                    seen: set[int] = set()
                    reads: list[tuple[int, int]] = []
                    for b in device.blocks:
                        if b.model_id in POINT_MAP and b.model_id not in seen:
                            seen.add(b.model_id)
                            reads += read_plan(ModelBlock(b.model_id, b.addr, b.length))
                    self.plan.append((site.port, device.unit_id, reads))
            responder = asyncio.create_task(self._stored_responder())
            self._ready.set()
            await self._stop.wait()
            responder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await responder

    async def _stored_responder(self) -> None:
        """Every second, ``stored`` up to the highest seq seen (what ingest would send)."""
        import aiomqtt
        import orjson

        from contracts.messages import StoredMsg
        from contracts.timeutil import utc_now
        from contracts.topics import topic

        parts = urlsplit(self._mqtt_url)
        async with aiomqtt.Client(parts.hostname or "127.0.0.1", parts.port or 1883) as client:
            for kind in ("telemetry", "event"):
                await client.subscribe(topic(REGION, GATEWAY, kind), qos=1)
            stream, upto, told = None, 0, 0

            async def tell() -> None:
                nonlocal told
                while True:
                    await asyncio.sleep(1.0)
                    if stream is not None and upto > told:
                        msg = StoredMsg(stream_id=stream, upto_seq=upto, ts=utc_now())
                        await client.publish(topic(REGION, GATEWAY, "stored"), msg.to_json(), qos=1)
                        told = self.stored = upto

            teller = asyncio.create_task(tell())
            try:
                async for message in client.messages:
                    body = orjson.loads(message.payload)
                    stream, upto = body["stream_id"], max(upto, int(body["seq"]))
            finally:
                teller.cancel()


# ----- the baseline: a bare synchronous pymodbus loop -------------------------------------
def baseline_worker(plan: Plan, interval_s: float) -> None:
    """Every ``interval_s`` (aligned), read every device's blocks; print ``ready`` once."""
    from pymodbus.client import ModbusTcpClient

    clients = {port: ModbusTcpClient("127.0.0.1", port=port, timeout=2) for port, _, _ in plan}
    for client in clients.values():
        client.connect()
    ready = False
    while True:
        for port, unit, reads in plan:
            for address, count in reads:
                response = clients[port].read_holding_registers(
                    address, count=count, device_id=unit
                )
                if response.isError():
                    raise SystemExit(f"baseline read failed: {response}")
        if not ready:
            print("ready", flush=True)
            ready = True
        now = time.time()
        time.sleep(interval_s - now % interval_s)


# ----- the run ----------------------------------------------------------------------------
def healthz(port: int) -> dict[str, object] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
            return json.loads(resp.read())  # type: ignore[no-any-return,unused-ignore]
    except OSError:
        return None


def agent_config(workdir: Path, mqtt_url: str, plan: Plan, health_port: int) -> Path:
    ports = sorted({port for port, _, _ in plan})
    endpoints = [
        {
            "name": f"site{i}",
            "host": "127.0.0.1",
            "port": port,
            "unit_ids": sorted(u for p, u, _ in plan if p == port),
        }
        for i, port in enumerate(ports)
    ]
    config = {
        "gateway_id": GATEWAY,
        "region": REGION,
        "mqtt_url": mqtt_url,
        "buffer_path": str(workdir / "buffer.sqlite"),
        "poll_interval_s": 1.0,
        "health_port": health_port,
        "log_format": "json",
        "endpoints": endpoints,
    }
    path = workdir / "agent.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def wait_ready(agent: Measured, baseline: Measured, health_port: int, devices: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for m in (agent, baseline):
            if m.proc.poll() is not None:
                raise SystemExit(f"{m.name} exited with {m.proc.returncode}")
        health = healthz(health_port)
        statuses = health["devices"] if health else {}
        assert isinstance(statuses, dict)
        online = sum(d["status"] == "online" for d in statuses.values())
        if online == devices and health and health["mqtt_connected"]:
            break
        time.sleep(0.2)
    else:
        raise SystemExit(f"agent not ready within 60 s: {healthz(health_port)}")
    assert baseline.proc.stdout is not None
    if baseline.proc.stdout.readline().strip() != "ready":
        raise SystemExit("baseline did not start")


@contextlib.contextmanager
def measured(name: str, argv: list[str]) -> Iterator[Measured]:
    m = Measured(name, argv)
    try:
        yield m
    finally:
        m.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0, help="measured window")
    parser.add_argument("--devices", type=int, default=10, help="even: inverter + meter per site")
    parser.add_argument(
        "--entry",
        choices=("potr-agent", "potr agent"),
        default="potr-agent",
        help="the agent's lean entry point (what the systemd unit runs) or the full CLI",
    )
    parser.add_argument(
        "--agent-profile", type=Path, help="run the agent under cProfile, stats to this file"
    )
    parser.add_argument("--baseline-worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline_worker:
        baseline_worker(json.loads(args.baseline_worker), 1.0)
        return
    if args.devices < 2 or args.devices % 2:
        parser.error("--devices must be an even number >= 2")
    broker = PrivateMosquitto(persistence=True).start()
    try:
        with (
            tempfile.TemporaryDirectory(prefix="potr-footprint-") as tmp,
            Sites(args.devices // 2, broker.url) as sites,
        ):
            health_port = free_port()
            config = agent_config(Path(tmp), broker.url, sites.plan, health_port)
            entry = ["potr.agent_main"] if args.entry == "potr-agent" else ["potr", "agent"]
            agent_argv = [sys.executable, "-m", *entry, "--config", str(config)]
            if args.agent_profile:
                agent_argv[1:1] = ["-m", "cProfile", "-o", str(args.agent_profile.resolve())]
            base_argv = [sys.executable, "-m", "bench.edge_footprint"]
            base_argv += ["--baseline-worker", json.dumps(sites.plan)]
            with (
                measured(args.entry, agent_argv) as agent,
                measured("baseline: bare pymodbus loop", base_argv) as baseline,
            ):
                wait_ready(agent, baseline, health_port, args.devices)
                agent.mark()
                baseline.mark()
                time.sleep(args.seconds)
                figures = [baseline.figures(), agent.figures()]
                final = healthz(health_port) or {}
    finally:
        broker.stop()
    reads = sum(len(r) for _, _, r in sites.plan)
    print(
        f"{args.devices} devices polled every 1 s ({reads} Modbus reads/s), "
        f"{args.seconds:.0f} s measured; {os.cpu_count()} cores"
    )
    print(f"{'':<30} {'CPU % core':>11} {'peak RSS MiB':>13} {'RSS MiB':>8} {'start-up CPU s':>15}")
    for f in figures:
        print(
            f"{f.name:<30} {f.cpu_pct:>11.2f} {f.peak_rss_mib:>13.1f} {f.rss_mib:>8.1f}"
            f" {f.startup_cpu_s:>15.2f}"
        )
    base, agent_f = figures
    print(
        f"agent - baseline: {agent_f.cpu_pct - base.cpu_pct:+.2f} % of a core, "
        f"{agent_f.peak_rss_mib - base.peak_rss_mib:+.1f} MiB peak RSS; "
        f"target <= 3 % and <= 80 MB: "
        f"{'met' if agent_f.cpu_pct <= 3 and agent_f.peak_rss_mib * 1.048576 <= 80 else 'MISSED'}"
    )
    buffer = final.get("buffer", {})
    print(
        f"agent at the end: published {final.get('published')}, stored upto "
        f"{final.get('stored_upto_seq')}, buffer {buffer}"
    )


if __name__ == "__main__":
    main()
