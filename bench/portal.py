"""The portal's web pages under concurrent users (issue 15), beside a static file served
by the same process in the same run.

    .venv/bin/python -m bench.portal                          # 50 users x 20 rounds, closed loop
    .venv/bin/python -m bench.portal --think-ms 1000          # each user pauses 1 s
    .venv/bin/python -m bench.portal --servers 2              # a region's pool of two
    .venv/bin/python -m bench.portal --users 10 --rounds 5    # quick

World (a fresh bench database, ``migrate``; every row through the services' own paths):
one customer account in au with a site (Australia/Sydney) and a gateway with two devices
— an inverter (``pv_w``, ``pv_wh``) and a grid meter (``grid_w``, ``import_wh``,
``export_wh``) — that sent ``--hours`` (24) of readings at a 5 s interval up to now, in
one message per device and 5 minutes, through ingest's pipeline (validation, dedupe,
COPY); the registry learns the devices from ingest's events; then the store's
maintenance job (``StoreMaintenance.run_once``: rollups, 15-minute energy, site days).
Around it ``--other-sites`` (100) sites of other accounts, each with a gateway, so the
registry's scope filters have something to filter.

Server: the portal app (``cloud.bootstrap.create_api`` with the web UI, as a regional
``potr api`` process would build it: its pool of 4 connections) under uvicorn
(``potr.runtime.serve_http``, loopback, a free port), ``--servers`` (1) child processes
of their own, so the clients' CPU is not the server's; the users are split among them
as the gateway's round robin would.

Users: ``--users`` (50) httpx clients in this process, each on its own keep-alive
connection with a minted access token in its ``potr_session`` cookie — every fifth an
au operator, the others the site's customer — each in a loop (the next request when the
last is answered, after a pause of ``--think-ms`` on average: 0 by default; with one,
each user starts at a random instant within it and pauses for exponentially distributed
times, so arrivals are not in step) for ``--rounds`` rounds of the four
requests a site page makes: the page itself ``/ui/au/sites/{id}``, its live fragment
``/live``, its chart's ``today.json`` and the energy fragment ``/energy?view=month``
(``--energy-view``).
Baseline, same run, same users and count: the page's stylesheet ``/static/portal.css?v=…``
(Starlette's static files from the same process). The two phases alternate ``--repeats``
(2) times after a warm-up round of each.

Latency is from the request sent to the answer read, queueing in the server included:
what a person waits. The target of issue 15: p99 of the page < 200 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson

from bench.common import bench_database
from cloud.adapters.mqtt import InboundMessage
from cloud.adapters.postgres import create_pool
from cloud.customers import AccountIn, CustomersService
from cloud.identity import Role
from cloud.ingest import IngestPipeline
from cloud.migrate import migrate
from cloud.registry import GatewayIn, RegistryService, SiteIn
from cloud.telemetry import TelemetryStore
from cloud.telemetry.maintenance import StoreMaintenance
from cloud.telemetry.settings import StoreSettings
from contracts.timeutil import to_wire
from contracts.topics import Region
from potr.servers.ports import free_port, port_open
from tests.api_tokens import mint_token, public_key_file
from tests.integration.registry_events import deliver_gateway_events, deliver_ingest_events

ZONE = "Australia/Sydney"
STEP_S = 5
#: One message per device and 5 minutes (the field's publish interval).
PER_MESSAGE = 300 // STEP_S
INVERTER, METER = "SN-INV-1", "SN-MTR-1"
TARGET_P99_MS = 200.0
PAGES = ("site page", "live fragment", "today.json", "energy")
STATIC = "static portal.css"


@dataclass(frozen=True)
class World:
    site_id: int
    account_id: str
    readings: int


def log(msg: str, t0: float) -> None:
    print(f"[{time.perf_counter() - t0:6.1f} s] {msg}", flush=True)


# -- the world ------------------------------------------------------------------------
def _solar_w(ts: datetime) -> float:
    """A clear-sky curve on Sydney's solar noon (≈ 02:00 UTC), 0 at night; 5 kW peak."""
    hour = (ts.hour + ts.minute / 60 + ts.second / 3600 + 10) % 24  # ≈ local solar time
    return round(max(0.0, 5000.0 * math.sin(math.pi * (hour - 6) / 12)), 1)


def _messages(gateway: str, start: datetime, count: int) -> list[InboundMessage]:
    """``count`` readings per device from ``start`` at 5 s, one message per device and
    5 minutes; counters in whole Wh, monotonic."""
    topic = f"potr/v1/au/{gateway}/telemetry"
    stream = str(uuid.uuid4())
    pv_wh = imported = exported = 10_000_000.0
    out: list[InboundMessage] = []
    seq = 0
    for first in range(0, count, PER_MESSAGE):
        inverter, meter = [], []
        for i in range(first, min(first + PER_MESSAGE, count)):
            ts = start + timedelta(seconds=STEP_S * i)
            pv = _solar_w(ts)
            grid = 800.0 - pv  # the home draws 800 W; > 0 imports
            pv_wh += pv * STEP_S / 3600
            imported += max(grid, 0.0) * STEP_S / 3600
            exported += max(-grid, 0.0) * STEP_S / 3600
            wire = to_wire(ts)
            inverter.append(
                {"device": INVERTER, "ts": wire, "values": {"pv_w": pv, "pv_wh": round(pv_wh)}}
            )
            meter.append(
                {
                    "device": METER,
                    "ts": wire,
                    "values": {
                        "grid_w": grid,
                        "import_wh": round(imported),
                        "export_wh": round(exported),
                    },
                }
            )
        for readings in (inverter, meter):
            seq += 1
            body = {"v": 1, "stream_id": stream, "seq": seq, "readings": readings}
            out.append(InboundMessage(topic, orjson.dumps(body), 1, 1, datetime.now(UTC)))
    return out


def seed(url: str, hours: float, other_sites: int, t0: float) -> World:
    migrate(url)
    pool = create_pool(url, max_size=4, name="bench-portal-seed")
    try:
        registry, customers = RegistryService(pool), CustomersService(pool)
        # Site 0 is the measured one; the others only fill the registry.
        owned: list[tuple[int, str, str]] = []
        for n in range(other_sites + 1):
            account = customers.add_account(
                Region.AU, AccountIn(name=f"customer {n}", email=f"c{n}@example.com")
            )
            site = registry.add_site(SiteIn(name=f"site {n}", region=Region.AU, time_zone=ZONE))
            registry.set_site_account(site.id, account.id)
            gw = registry.add_gateway(GatewayIn(id=f"bench-gw-{n:04d}", site_id=site.id))
            owned.append((site.id, account.id, gw.id))
        site_id, account_id, gateway = owned[0]
        deliver_gateway_events(pool)
        log(f"{other_sites + 1} accounts, sites and gateways", t0)
        count = int(hours * 3600 / STEP_S)
        now = datetime.now(UTC).replace(microsecond=0)
        start = now - timedelta(seconds=STEP_S * (count - 1))
        messages = _messages(gateway, start, count)
        pipeline = IngestPipeline(pool, TelemetryStore(pool))
        added = 0
        for i in range(0, len(messages), 24):  # two hours a transaction
            added += pipeline.process(messages[i : i + 24]).readings_added
        deliver_ingest_events(pool, RegistryService(pool))
        log(f"{count:,} readings a device, {added:,} values (rows) through ingest", t0)
        maintenance = StoreMaintenance(pool, StoreSettings(database_url=url))
        maintenance.run_once()
        log(f"maintenance: rollups and energy ({maintenance.stats.dirty_rows} ranges)", t0)
        return World(site_id, account_id, added)
    finally:
        pool.close()


# -- the server (a child process) -------------------------------------------------------
def serve(url: str, key_file: Path, port: int) -> None:
    """The portal app with its web UI on 127.0.0.1:``port`` until SIGTERM/SIGINT."""
    from cloud.bootstrap import create_api, create_web_ui, open_pool
    from cloud.portal import PortalSettings
    from potr.runtime import run_until_signal, serve_http

    # Signing in is not measured: identity is never asked (tokens are minted), so its
    # URL names a port where nothing listens.
    settings = PortalSettings(
        env="test",
        database_url=url,
        identity_public_key_file=key_file,
        portal_identity_url=f"http://127.0.0.1:{free_port()}",
    )

    async def main(stop: asyncio.Event) -> None:
        pool = await asyncio.to_thread(open_pool, settings, "api")
        web = create_web_ui(settings, pool)
        try:
            app = create_api(settings, pool, web=web)
            await serve_http(app, "127.0.0.1", port, stop, log_level="warning")
        finally:
            await web.aclose()
            pool.close()

    run_until_signal(main)


class Server:
    """One portal process (``python -m bench.portal --serve …``) on a free port."""

    def __init__(self, url: str) -> None:
        self.port = free_port()
        command = [sys.executable, "-m", "bench.portal", "--serve", url, "--port", str(self.port)]
        command += ["--key", str(public_key_file())]
        self.proc = subprocess.Popen(command, cwd=Path(__file__).resolve().parent.parent)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not port_open("127.0.0.1", self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the portal server did not start")
            time.sleep(0.05)  # polling a port, bounded: no event to wait on across processes

    def cpu_s(self) -> float:
        """CPU seconds the process has used (user + system, from /proc)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


# -- the users ------------------------------------------------------------------------
@dataclass
class Phase:
    latencies: dict[str, list[float]]
    requests: int
    seconds: float
    #: CPU seconds the portal processes used during the phase.
    server_cpu_s: float = 0.0


async def _user(
    client: httpx.AsyncClient,
    requests: Sequence[tuple[str, str]],
    rounds: int,
    think_s: float,
    out: dict[str, list[float]],
    rng: random.Random,
) -> None:
    if think_s:  # people do not arrive in step: a random start, random pauses
        await asyncio.sleep(rng.uniform(0, think_s))
    for _ in range(rounds):
        for label, path in requests:
            started = time.perf_counter()
            answer = await client.get(path)
            elapsed = time.perf_counter() - started
            if answer.status_code != 200:
                raise RuntimeError(f"{path}: {answer.status_code} {answer.text[:200]}")
            out[label].append(elapsed * 1000)
            if think_s:  # the person reading (exponential, mean think_s): not synchronisation
                await asyncio.sleep(rng.expovariate(1 / think_s))


async def phase(
    bases: Sequence[str],
    cookies: Sequence[str],
    requests: Sequence[tuple[str, str]],
    rounds: int,
    think_s: float = 0.0,
) -> Phase:
    """Each user (one cookie) on its own connection to ``bases[i % len(bases)]``."""
    out: dict[str, list[float]] = defaultdict(list)
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    clients = [
        httpx.AsyncClient(
            base_url=bases[i % len(bases)],
            headers={"Cookie": f"potr_session={c}"},
            timeout=60,
            limits=limits,
        )
        for i, c in enumerate(cookies)
    ]
    try:
        started = time.perf_counter()
        await asyncio.gather(
            *(
                _user(c, requests, rounds, think_s, out, random.Random(i))
                for i, c in enumerate(clients)
            )
        )
        seconds = time.perf_counter() - started
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
    return Phase(dict(out), sum(len(v) for v in out.values()), seconds)


def _pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]  # nearest rank


def print_table(pages: list[Phase], static: list[Phase]) -> None:
    def merged(phases: list[Phase]) -> dict[str, list[float]]:
        out: dict[str, list[float]] = defaultdict(list)
        for p in phases:
            for label, values in p.latencies.items():
                out[label] += values
        return out

    def rate(phases: list[Phase]) -> float:
        return sum(p.requests for p in phases) / sum(p.seconds for p in phases)

    def cpu_ms(phases: list[Phase]) -> float:
        return 1000 * sum(p.server_cpu_s for p in phases) / sum(p.requests for p in phases)

    def busy(phases: list[Phase]) -> float:
        return sum(p.server_cpu_s for p in phases) / sum(p.seconds for p in phases)

    page_lat, static_lat = merged(pages), merged(static)
    print()
    print(f"{'request':<22} {'n':>6} {'p50 ms':>9} {'p95 ms':>9} {'p99 ms':>9} {'max ms':>9}")
    for label in (*PAGES, STATIC):
        values = static_lat[label] if label == STATIC else page_lat[label]
        print(
            f"{label:<22} {len(values):>6} {_pct(values, 50):>9.1f} {_pct(values, 95):>9.1f}"
            f" {_pct(values, 99):>9.1f} {max(values):>9.1f}"
        )
    pages_rate, static_rate = rate(pages), rate(static)
    print()
    print(
        f"pages phase:  {pages_rate:8,.1f} requests/s  (the four requests mixed);"
        f" server CPU {cpu_ms(pages):.2f} ms a request, {busy(pages):.2f} cores busy"
    )
    print(
        f"static phase: {static_rate:8,.1f} requests/s  (baseline);"
        f" server CPU {cpu_ms(static):.2f} ms a request, {busy(static):.2f} cores busy"
    )
    print(f"pages / static: {pages_rate / static_rate:.2f}x of baseline's rate")
    p99 = _pct(page_lat[PAGES[0]], 99)
    verdict = "meets" if p99 < TARGET_P99_MS else "MISSES"
    print(f"site page p99 {p99:.1f} ms: {verdict} the target (< {TARGET_P99_MS:.0f} ms)")
    means = {label: statistics.fmean(page_lat[label]) for label in PAGES}
    print("means ms: " + ", ".join(f"{k} {v:.1f}" for k, v in means.items()))


async def measured(servers: Sequence[Server], run: Awaitable[Phase]) -> Phase:
    """``run``, with the CPU the portal processes used meanwhile."""
    before = sum(s.cpu_s() for s in servers)
    done = await run
    done.server_cpu_s = sum(s.cpu_s() for s in servers) - before
    return done


async def measure(args: argparse.Namespace, world: World, servers: list[Server], t0: float) -> None:
    bases = [s.url for s in servers]
    from cloud.portal.web.assets import Assets

    site = f"/ui/au/sites/{world.site_id}"
    pages = [
        (PAGES[0], site),
        (PAGES[1], f"{site}/live"),
        (PAGES[2], f"{site}/today.json"),
        (PAGES[3], f"{site}/energy?view={args.energy_view}"),
    ]
    static = [(STATIC, Assets().url("portal.css"))]

    def cookies() -> list[str]:
        # Fresh for each phase: identity's access tokens live 15 minutes at most.
        return [
            mint_token(Role.OPERATOR, ttl_s=900)
            if i % 5 == 4
            else mint_token(Role.CUSTOMER, account_id=world.account_id, ttl_s=900)
            for i in range(args.users)
        ]

    await phase(bases, cookies(), pages, 1)  # warm-up: connections, caches, the pool
    await phase(bases, cookies(), static * 4, 1)
    log("warmed up", t0)
    think = args.think_ms / 1000
    page_phases: list[Phase] = []
    static_phases: list[Phase] = []
    for repeat in range(args.repeats):
        page_phases.append(
            await measured(servers, phase(bases, cookies(), pages, args.rounds, think))
        )
        log(f"pages {repeat + 1}: {page_phases[-1].requests} requests", t0)
        statics = static * len(pages)
        static_phases.append(
            await measured(servers, phase(bases, cookies(), statics, args.rounds, think))
        )
        log(f"static {repeat + 1}: {static_phases[-1].requests} requests", t0)
    print_table(page_phases, static_phases)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=20, help="rounds of 4 requests a user")
    parser.add_argument("--repeats", type=int, default=2, help="alternations of the phases")
    parser.add_argument("--hours", type=float, default=24.0, help="readings up to now")
    parser.add_argument("--other-sites", type=int, default=100)
    parser.add_argument(
        "--think-ms", type=float, default=0.0, help="a user's pause after each answer"
    )
    parser.add_argument(
        "--energy-view", choices=("day", "month", "year"), default="month", help="its ?view="
    )
    parser.add_argument("--servers", type=int, default=1, help="portal processes (users split)")
    parser.add_argument("--serve", metavar="DATABASE_URL", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--key", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.key, args.port)
        return
    t0 = time.perf_counter()
    with bench_database() as url:
        world = seed(url, args.hours, args.other_sites, t0)
        servers: list[Server] = []
        try:
            for _ in range(args.servers):
                servers.append(Server(url))
            for server in servers:
                server.wait_ready()
            pids = ", ".join(str(s.proc.pid) for s in servers)
            log(f"{len(servers)} portal process(es) on loopback (pid {pids})", t0)
            print(f"load average before: {Path('/proc/loadavg').read_text().strip()}")
            asyncio.run(measure(args, world, servers, t0))
            print(f"load average after:  {Path('/proc/loadavg').read_text().strip()}")
        finally:
            for server in servers:
                server.stop()


if __name__ == "__main__":
    main()
