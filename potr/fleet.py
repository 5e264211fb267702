"""Fleet runs in the composition root: brokers, registry, ingest, and the fleet itself.

Two modes (issue 4 item 6):

* :func:`run_virtual_fleet` — N virtual gateways speaking the MQTT contract directly
  (:mod:`simulators.fleet`, spread over worker processes), for broker and ingest load;
  they also answer signed ``cmd``/``config`` (``spec.trusted_key_files``, failure
  injection by ``spec.fail_gateways`` / ``fail_fraction`` / ``seed``) with ``cmd_ack``
  and ``config_state`` on their stream, for control and rollout tests;
* :func:`run_site_fleet` — N full sites: a :class:`~simulators.device_site.DeviceSite`
  (region preset, Modbus TCP) each, polled by a real ``potr agent`` process, for end-to-end tests.

With a database URL both register every gateway (ingest dead-letters unknown ones) and
run one ingest worker, so ``stored`` flows back and the summary carries database counts.
Without one there is no ``stored``: virtual gateways forget a batch at its PUBACK.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import resource
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from cloud.adapters.postgres import create_pool
from cloud.bootstrap import deliver_registry_events, run_ingest
from cloud.ingest import IngestSettings
from cloud.migrate import migrate
from cloud.registry import ConflictError, GatewayIn, RegistryService, SiteIn
from cloud.settings import redact_url
from contracts.topics import Region
from potr.servers.mosquitto import PrivateMosquitto
from simulators.fleet import FleetProgress, FleetResult, FleetSpec, run_fleet
from simulators.fleet.spec import assign_regions, gateway_id
from simulators.regions import REGIONS

log = logging.getLogger(__name__)

#: Open files a private Mosquitto may hold: one per connection plus its own.
BROKER_NOFILE = 65_536


# ----- servers -----------------------------------------------------------------------
@contextlib.contextmanager
def inherited_nofile(want: int = BROKER_NOFILE) -> Iterator[int]:
    """Raise this process's RLIMIT_NOFILE for the block, so children started in it
    (Mosquitto) inherit it; yields the soft limit they get.

    Mosquitto drops to its own user right after start, and ``prlimit`` on a process of
    another user needs capabilities a container may lack, so the limit is set before the
    exec instead. Without CAP_SYS_RESOURCE the hard limit caps it.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = soft
    for candidate in ((want, max(hard, want)), (min(want, hard), hard)):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, candidate)
            target = candidate[0]
            break
        except (PermissionError, ValueError):
            continue
    try:
        yield target
    finally:
        with contextlib.suppress(PermissionError, ValueError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, target), max(hard, target)))


def start_fleet_broker(*, persistence: bool = True) -> PrivateMosquitto:
    """A private Mosquitto for a fleet, its file limit raised for 10,000+ connections."""
    with inherited_nofile() as limit:
        broker = PrivateMosquitto(persistence=persistence).start()
    log.info("private Mosquitto on %s with RLIMIT_NOFILE %d", broker.url, limit)
    return broker


def register_gateways(
    registry: RegistryService, gateways: Sequence[tuple[str, Region]], *, label: str = "Fleet"
) -> int:
    """One site and gateway per ``(gateway id, region)``; existing gateways are kept.

    Returns how many were added."""
    added = 0
    for gid, region in gateways:
        if registry.get_gateway(gid) is not None:
            continue
        site = registry.add_site(
            SiteIn(name=f"{label} {gid}", region=region, time_zone=REGIONS[region.value].tz)
        )
        try:
            registry.add_gateway(GatewayIn(id=gid, site_id=site.id))
            added += 1
        except ConflictError:
            pass
    return added


def _row(conn: Any, query: str, params: tuple[Any, ...] = ()) -> tuple[Any, ...]:
    row = conn.execute(query, params).fetchone()
    if row is None:
        raise RuntimeError(f"no row from {query!r}")
    return tuple(row)


def database_counts(database_url: str, gateway_ids: Sequence[str]) -> dict[str, int]:
    """What the database holds for these gateways: readings (rows), the sum of their
    streams' stored watermarks (batches), gaps still open, and dead letters."""
    ids = list(gateway_ids)
    pool = create_pool(database_url, min_size=1, max_size=1, name="fleet-counts")
    try:
        with pool.connection() as conn:
            (readings,) = _row(
                conn,
                "SELECT count(*) FROM telemetry.readings r"
                " JOIN ingest.device_keys k ON k.device_id = r.device_id"
                " WHERE k.gateway_id = ANY(%s)",
                (ids,),
            )
            watermarks, highs, streams = _row(
                conn,
                "SELECT coalesce(sum(watermark), 0), coalesce(sum(high_seq), 0), count(*)"
                " FROM ingest.streams WHERE gateway_id = ANY(%s)",
                (ids,),
            )
            (gaps,) = _row(
                conn,
                "SELECT count(*) FROM ingest.gaps g JOIN ingest.streams s USING (stream_id)"
                " WHERE s.gateway_id = ANY(%s) AND g.closed_at IS NULL",
                (ids,),
            )
            (dead,) = _row(conn, "SELECT count(*) FROM ingest.dead_letters")
    finally:
        pool.close()
    return {
        "readings": int(readings),
        "stored_batches": int(watermarks),
        "high_seq_sum": int(highs),
        "streams": int(streams),
        "open_gaps": int(gaps),
        "dead_letters": int(dead),
    }


@contextlib.asynccontextmanager
async def _ingest(
    database_url: str,
    mqtt_url: str,
    client_id: str,
    gateways: Sequence[tuple[str, Region]],
    *,
    label: str = "Fleet",
) -> Any:
    """Migrate, register ``gateways`` (ingest learns them from the registry's events
    before it starts), then one ingest worker until the block ends."""
    await asyncio.to_thread(migrate, database_url)
    pool = create_pool(database_url, min_size=1, max_size=4, name="fleet-registry")
    stop, ready = asyncio.Event(), asyncio.Event()
    settings = IngestSettings(
        database_url=database_url, mqtt_url=mqtt_url, mqtt_client_id=client_id
    )
    try:
        await asyncio.to_thread(register_gateways, RegistryService(pool), gateways, label=label)
        await deliver_registry_events(pool)
    except BaseException:
        pool.close()
        raise
    task = asyncio.create_task(run_ingest(settings, stop, ready=ready))
    try:
        async with asyncio.timeout(30):
            waiter = asyncio.create_task(ready.wait())
            done, _ = await asyncio.wait({waiter, task}, return_when=asyncio.FIRST_COMPLETED)
            if task in done:
                waiter.cancel()
                task.result()
                raise RuntimeError("ingest ended before it was ready")
        yield
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 30)
        pool.close()


def _split_mqtt_url(url: str) -> tuple[str, int]:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 1883


# ----- virtual gateways ------------------------------------------------------------------
@dataclass
class VirtualFleetRun:
    result: FleetResult
    mqtt_url: str
    database: dict[str, int] | None = None

    def summary(self) -> dict[str, Any]:
        out = self.result.summary()
        out["mode"] = "virtual"
        out["mqtt_url"] = redact_url(self.mqtt_url)
        if self.database is not None:
            out["database"] = self.database
        return out


async def run_virtual_fleet(
    spec: FleetSpec,
    *,
    mqtt_url: str | None = None,
    database_url: str | None = None,
    on_progress: Callable[[FleetProgress], None] | None = None,
    stop: asyncio.Event | None = None,
    broker_persistence: bool = True,
    start_ingest: bool = True,
) -> VirtualFleetRun:
    """Run ``spec`` against ``mqtt_url`` (or a private Mosquitto it starts); with
    ``database_url`` also register the gateways and run ingest (``stored`` expected).

    ``start_ingest=False``: ingest runs elsewhere (e.g. ``potr ingest --workers N``);
    the gateways are still registered and the database counted."""
    async with AsyncExitStack() as stack:
        if mqtt_url is None:
            broker = await asyncio.to_thread(start_fleet_broker, persistence=broker_persistence)
            stack.callback(broker.cleanup)
            mqtt_url = broker.url
        host, port = _split_mqtt_url(mqtt_url)
        spec = spec.model_copy(
            update={
                "mqtt": spec.mqtt.model_copy(update={"host": host, "port": port}),
                "expect_stored": database_url is not None and spec.expect_stored,
            }
        )
        gateways = [
            (gateway_id(spec.id_prefix, i), r)
            for i, r in enumerate(assign_regions(spec.regions, spec.count))
        ]
        if database_url is not None and start_ingest:
            client_id = f"potr-ingest-fleet-{uuid.uuid4().hex[:8]}"
            await stack.enter_async_context(_ingest(database_url, mqtt_url, client_id, gateways))
        elif database_url is not None:
            await asyncio.to_thread(_register_only, database_url, gateways)
        thread_stop = threading.Event()
        watcher = asyncio.create_task(_relay_stop(stop, thread_stop)) if stop else None
        try:
            result = await asyncio.to_thread(
                run_fleet, spec, on_progress=on_progress, stop=thread_stop
            )
        finally:
            thread_stop.set()
            if watcher is not None:
                watcher.cancel()
        counts = None
        if database_url is not None:
            counts = await asyncio.to_thread(
                database_counts, database_url, [g for g, _ in gateways]
            )
        return VirtualFleetRun(result, mqtt_url, counts)


def _register_only(database_url: str, gateways: Sequence[tuple[str, Region]]) -> None:
    """Register, and hand the registry's events to ingest's table at once (its workers
    run elsewhere), so the fleet's first messages are not refused as unknown."""
    migrate(database_url)
    pool = create_pool(database_url, min_size=1, max_size=2, name="fleet-registry")
    try:
        register_gateways(RegistryService(pool), gateways)
        asyncio.run(deliver_registry_events(pool))
    finally:
        pool.close()


async def _relay_stop(source: asyncio.Event, target: threading.Event) -> None:
    await source.wait()
    target.set()


# ----- full sites with real agent processes ----------------------------------------------
@dataclass
class SiteAgent:
    gateway_id: str
    region: Region
    config: Path
    log_path: Path
    port: int = 0
    proc: asyncio.subprocess.Process | None = None
    returncode: int | None = None


@dataclass
class SiteFleetRun:
    agents: list[SiteAgent]
    mqtt_url: str
    elapsed_s: float
    database: dict[str, int] | None = None
    per_gateway: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "mode": "sites",
            "sites": len(self.agents),
            "mqtt_url": redact_url(self.mqtt_url),
            "elapsed_s": round(self.elapsed_s, 3),
            "agents": {
                a.gateway_id: {"port": a.port, "exit": a.returncode, "log": str(a.log_path)}
                for a in self.agents
            },
            "readings_per_gateway": self.per_gateway,
            "database": self.database,
        }


def agent_settings(
    gateway: str,
    region: Region,
    *,
    mqtt_url: str,
    modbus_port: int,
    buffer_path: Path,
    poll_interval_s: float,
    stored_timeout_s: float = 10.0,
) -> dict[str, Any]:
    """The YAML settings of one site's agent (see ``edge_agent.settings.AgentSettings``)."""
    return {
        "gateway_id": gateway,
        "region": region.value,
        "mqtt_url": mqtt_url,
        "buffer_path": str(buffer_path),
        "poll_interval_s": poll_interval_s,
        "stored_timeout_s": stored_timeout_s,
        # A handful of local agents: back within seconds (the fleet default spreads
        # reconnects over 30 s, for many gateways on one broker).
        "reconnect_min_s": 1.0,
        "reconnect_max_s": 5.0,
        "endpoints": [
            {"name": "site", "host": "127.0.0.1", "port": modbus_port, "unit_ids": [1, 2]}
        ],
    }


def agent_command(config: Path) -> list[str]:
    """``potr agent --config …`` from this interpreter's environment."""
    script = Path(sys.executable).with_name("potr")
    if script.exists():
        return [str(script), "agent", "--config", str(config)]
    return [sys.executable, "-m", "potr.cli", "agent", "--config", str(config)]


def readings_per_gateway(database_url: str, gateway_ids: Sequence[str]) -> dict[str, int]:
    pool = create_pool(database_url, min_size=1, max_size=1, name="fleet-counts")
    try:
        with pool.connection() as conn:
            rows = conn.execute(
                "SELECT k.gateway_id, count(*) FROM telemetry.readings r"
                " JOIN ingest.device_keys k ON k.device_id = r.device_id"
                " WHERE k.gateway_id = ANY(%s) GROUP BY k.gateway_id",
                (list(gateway_ids),),
            ).fetchall()
    finally:
        pool.close()
    found = {str(g): int(n) for g, n in rows}
    return {g: found.get(g, 0) for g in gateway_ids}


async def run_site_fleet(
    count: int,
    *,
    stop: asyncio.Event,
    mqtt_url: str | None = None,
    database_url: str | None = None,
    regions: dict[Region, float] | None = None,
    id_prefix: str = "site",
    speed: float = 1.0,
    poll_interval_s: float = 5.0,
    duration_s: float | None = None,
    workdir: Path | None = None,
    on_started: Callable[[list[SiteAgent]], None] | None = None,
) -> SiteFleetRun:
    """Serve ``count`` sites and run one ``potr agent`` process per site until ``stop``
    is set (or ``duration_s`` real seconds pass); agents get SIGTERM (clean shutdown)."""
    from simulators.device_site import DeviceSite, region_site

    workdir = workdir or Path(tempfile.mkdtemp(prefix="potr-fleet-sites-"))
    workdir.mkdir(parents=True, exist_ok=True)
    regions = regions or {Region.AU: 1.0}
    plan = [(gateway_id(id_prefix, i), r) for i, r in enumerate(assign_regions(regions, count))]
    # Simulated time ends near now: ingest quarantines readings from the future.
    span = (duration_s or 3600.0) * speed
    sim_start = datetime.now(UTC) - timedelta(seconds=span if speed > 1 else 0)
    t0 = time.monotonic()
    async with AsyncExitStack() as stack:
        if mqtt_url is None:
            broker = await asyncio.to_thread(start_fleet_broker)
            stack.callback(broker.cleanup)
            mqtt_url = broker.url
        if database_url is not None:
            client_id = f"potr-ingest-sites-{uuid.uuid4().hex[:8]}"
            await stack.enter_async_context(
                _ingest(database_url, mqtt_url, client_id, plan, label="Site fleet")
            )
        agents: list[SiteAgent] = []
        for gid, region in plan:
            site = DeviceSite(
                region_site(
                    gid,
                    region.value,
                    speed=speed,
                    start_time=sim_start,
                    update_period_s=min(1.0, poll_interval_s / 2),
                )
            )
            await stack.enter_async_context(site)
            config = workdir / f"{gid}.yaml"
            settings = agent_settings(
                gid,
                region,
                mqtt_url=mqtt_url,
                modbus_port=site.port,
                buffer_path=workdir / f"{gid}.sqlite",
                poll_interval_s=poll_interval_s,
            )
            config.write_text(yaml.safe_dump(settings), encoding="utf-8")
            agents.append(SiteAgent(gid, region, config, workdir / f"{gid}.log", site.port))
        stack.push_async_callback(_stop_agents, agents)
        for agent in agents:
            with agent.log_path.open("ab") as out:
                agent.proc = await asyncio.create_subprocess_exec(
                    *agent_command(agent.config),
                    stdout=out,
                    stderr=asyncio.subprocess.STDOUT,
                    stdin=asyncio.subprocess.DEVNULL,
                )
        if on_started is not None:
            on_started(agents)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(duration_s):
                await stop.wait()
        await _stop_agents(agents)
        elapsed = time.monotonic() - t0
        per_gateway: dict[str, int] = {}
        counts = None
        if database_url is not None:
            ids = [a.gateway_id for a in agents]
            per_gateway = await asyncio.to_thread(readings_per_gateway, database_url, ids)
            counts = await asyncio.to_thread(database_counts, database_url, ids)
        return SiteFleetRun(agents, mqtt_url, elapsed, counts, per_gateway)


async def _stop_agents(agents: list[SiteAgent], timeout_s: float = 15.0) -> None:
    """SIGTERM every agent (each says goodbye), then SIGKILL what is left, by pid."""
    running = [a for a in agents if a.proc is not None and a.proc.returncode is None]
    for a in running:
        assert a.proc is not None
        with contextlib.suppress(ProcessLookupError):
            a.proc.send_signal(signal.SIGTERM)
    for a in running:
        assert a.proc is not None
        try:
            a.returncode = await asyncio.wait_for(a.proc.wait(), timeout_s)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                a.proc.kill()
            a.returncode = await a.proc.wait()
    for a in agents:
        if a.proc is not None and a.returncode is None:
            a.returncode = a.proc.returncode


def write_json(path: Path, summary: dict[str, Any]) -> None:
    path.write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")


__all__ = [
    "SiteAgent",
    "SiteFleetRun",
    "VirtualFleetRun",
    "agent_settings",
    "database_counts",
    "inherited_nofile",
    "register_gateways",
    "run_site_fleet",
    "run_virtual_fleet",
    "start_fleet_broker",
    "write_json",
]
