"""Issue 19's acceptance: simulated months of five sites billed through the real pipeline,
every invoice equal to the cent to a computation made here from the simulators' own
meter registers.

Sites (each a simulated site on real Modbus with PoTR's system meter, its own agent,
one private Mosquitto, ingest, PostgreSQL): Sydney (au-ppa-tou, a battery charging from
the grid at night: the AU grid pool), Adelaide (au-ppa-tou, UTC+10:30: its agent polls
every half hour so its local hours are whole), Los Angeles (us-ppa-esc29), Madrid
(es-ppa-20td) and Gran Canaria (es-ppa-flat, IGIC). The agents' pollers and the
simulators share one clock the test steps half an hour at a time (a month takes
seconds); every reading is stamped with the simulated time its registers were read at.

November 2024 (the README's command; October to December under ``POTR_CHAOS_FULL=1``):
- Los Angeles falls back on 3 November (a 25-hour day); 1 November is a national holiday
  in Spain (2.0TD's P3 all day). Under the full form also Sydney's and Adelaide's spring
  forward (6 October), Madrid's fall back (27 October) and 6, 8 and 25 December.
- Sydney's system meter is replaced on 13 November at 10:00: the new meter (another
  serial, its register from 1 Wh) does not answer the next hour's poll, the agent finds
  it by its serial the hour after; the swap is recorded with both registers.
- Madrid's gateway loses its broker from 24 November 00:00 until after the November
  invoice: the invoice estimates that week (flagged), the buffered week arrives after
  it, the store announces the revised days and billing trues up with notes.

The expectation is computed here, independently of billing's code, from the registers
the simulators served at each poll: each pair of polls gives the energy of its interval,
on the local hour it ends in (the swap's interval on the hour it starts in: decision 134);
billable energy by each region's rule (business.md §6: US production; ES on-site = system
forward less grid export, never below 0; AU the same less the grid pool, filled by what
the system drew); the tariff periods written out below; prices escalated once (contracts
from 1 June 2023); each line rounded half up to the cent, tax on the sum.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from cloud.adapters.postgres import create_pool
from cloud.billing import BillingService
from cloud.bootstrap import create_billing_service, deliver_registry_events, link_site, run_ingest
from cloud.customers import AccountIn, CustomersService, InstallationIn, MeterReplacementIn
from cloud.events.outbox import Event
from cloud.events.types import EnergyRevised
from cloud.ingest import IngestSettings
from cloud.migrate import migrate
from cloud.registry import GatewayIn, RegistryService, SiteIn
from cloud.telemetry.rollups import RollupRefresher
from contracts.topics import Region
from edge_agent.settings import AgentSettings
from potr.servers.mosquitto import PrivateMosquitto
from simulators.device_site import SYSTEM_METER_UNIT, DeviceSite, DeviceSpec, region_site
from tests.faultproxy import FaultProxy
from tests.integration.api_world import private_database
from tests.integration.harness import running_agent
from tests.integration.stepped_clock import SteppedClock
from tests.waiting import until

pytestmark = pytest.mark.integration

FULL = os.environ.get("POTR_CHAOS_FULL") == "1"
MONTHS = [date(2024, 10, 1), date(2024, 11, 1), date(2024, 12, 1)] if FULL else [date(2024, 11, 1)]
STEP = timedelta(minutes=30)
GRID, SYSTEM, BATTERY = 2, SYSTEM_METER_UNIT, 3
Registers = tuple[int, int]  # a meter's (forward, reverse) registers, Wh


@dataclass(frozen=True)
class Spec:
    key: str
    region: Region
    zone: str
    tariff_zone: str
    plan: str
    where: tuple[float, float]
    interval_s: int
    battery: bool = False


# fmt: off
SPECS = (
    Spec("sydney", Region.AU, "Australia/Sydney", "NSW", "au-ppa-tou", (-33.9, 151.2), 3600, True),
    Spec("adelaide", Region.AU, "Australia/Adelaide", "SA", "au-ppa-tou", (-34.93, 138.6), 1800),
    Spec("la", Region.US, "America/Los_Angeles", "CA", "us-ppa-esc29", (34.1, -118.2), 3600),
    Spec("madrid", Region.ES, "Europe/Madrid", "peninsula", "es-ppa-20td", (40.42, -3.7), 3600),
    Spec("canarias", Region.ES, "Atlantic/Canary", "canarias", "es-ppa-flat", (28.1, -15.42), 3600),
)
# fmt: on

# -- the terms, written out from the plan sheets (not read from billing's data) ----------
CONTRACT_START = date(2023, 6, 1)  # one escalation by October-December 2024
PRICES = {  # per kWh, escalated once: 0.22 * 1.02, 0.14 * 1.02, 0.15 * 1.029, ...
    "au-ppa-tou": {"peak": Decimal("0.22440"), "offpeak": Decimal("0.14280")},
    "us-ppa-esc29": {"flat": Decimal("0.15435")},
    "es-ppa-20td": {"P1": Decimal("0.13260"), "P2": Decimal("0.10200"), "P3": Decimal("0.07140")},
    "es-ppa-flat": {"flat": Decimal("0.09000")},  # no escalator
}
TAX_PERCENT = {"sydney": 10, "adelaide": 10, "la": 0, "madrid": 10, "canarias": 0}
ES_HOLIDAYS = {(1, 1), (1, 6), (5, 1), (8, 15), (10, 12), (11, 1), (12, 6), (12, 8), (12, 25)}
SWAP_LOCAL = datetime(2024, 11, 13, 10, tzinfo=ZoneInfo("Australia/Sydney"))
OUTAGE_LOCAL = datetime(2024, 11, 24, tzinfo=ZoneInfo("Europe/Madrid"))


def tariff_period(plan: str, local: datetime) -> str:
    """The tariff period of the local hour starting at ``local``."""
    if plan == "au-ppa-tou":  # peak 15-21 h every day in Nov-Mar and Jun-Aug
        summer_or_winter = local.month in (1, 2, 3, 6, 7, 8, 11, 12)
        return "peak" if summer_or_winter and 15 <= local.hour < 21 else "offpeak"
    if plan == "es-ppa-20td":  # weekends and fixed national holidays: P3 all day
        if local.weekday() >= 5 or (local.month, local.day) in ES_HOLIDAYS:
            return "P3"
        if 10 <= local.hour < 14 or 18 <= local.hour < 22:
            return "P1"
        return "P2" if local.hour >= 8 else "P3"
    return "flat"


def cents(amount: Decimal) -> Decimal:
    return amount.quantize(Decimal("0.01"), ROUND_HALF_UP)


# -- what the simulators served, and what the store says was polled ------------------------
@dataclass
class SimSite:
    spec: Spec
    sim: DeviceSite
    site_id: int
    gateway: str
    #: The registers each meter served at each step: unit -> time -> (forward, reverse).
    served: dict[int, dict[datetime, Registers]] = field(
        default_factory=lambda: {GRID: {}, SYSTEM: {}}
    )

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.spec.zone)

    def record(self, at: datetime) -> None:
        for unit in (GRID, SYSTEM):
            self.served[unit][at] = (
                int(self.sim.point(unit, "203.TotWhImp")),
                int(self.sim.point(unit, "203.TotWhExp")),
            )


def _local_month(month: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    after = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    return (
        datetime.combine(month, time(), zone).astimezone(UTC),
        datetime.combine(after, time(), zone).astimezone(UTC),
    )


def _hour_closed_by(t: datetime, zone: ZoneInfo) -> datetime:
    """The start (UTC) of the local hour ``(start, end]`` holding instant ``t``."""
    local = (t - timedelta(microseconds=1)).astimezone(zone)
    return local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)


@dataclass(frozen=True)
class Polls:
    """When the store says each meter was read (the simulators say what it read)."""

    system: tuple[datetime, ...]
    grid: tuple[datetime, ...]
    #: The system meter's swap: (the old meter's last poll, the new one's first).
    swap: tuple[datetime, datetime] | None = None


def _hours(
    site: SimSite, polls: Polls, start: datetime, end: datetime
) -> dict[datetime, list[int]]:
    """Per local hour start (UTC) in ``[start, end)``: [forward, reverse, export] mWh. A
    pair of polls gives its interval's energy on the hour its later poll closes; across
    the swap, the old meter's part is zero (read at the swap), the new one's counts from
    its 1 Wh, on the hour the swap is in (decision 134), and its reverse is unmeasured."""
    zone = site.zone
    hours: dict[datetime, list[int]] = defaultdict(lambda: [0, 0, 0])
    system, grid = site.served[SYSTEM], site.served[GRID]
    for a, b in itertools.pairwise(polls.system):
        if polls.swap == (a, b):
            hours[_hour_closed_by(a + timedelta(microseconds=1), zone)][0] += (
                system[b][0] - 1
            ) * 1000
            continue
        hours[_hour_closed_by(b, zone)][0] += (system[b][0] - system[a][0]) * 1000
        hours[_hour_closed_by(b, zone)][1] += (system[b][1] - system[a][1]) * 1000
    for a, b in itertools.pairwise(polls.grid):
        hours[_hour_closed_by(b, zone)][2] += (grid[b][1] - grid[a][1]) * 1000
    return {h: v for h, v in hours.items() if start <= h < end}


def _estimates(
    site: SimSite, polls: Polls, month: date, missing: list[datetime]
) -> dict[datetime, list[int]]:
    """``missing`` hours as billing estimates them (decision 119): each register's mean
    over the same local hour of the 7 local days before the month, whole mWh half up."""
    start, _ = _local_month(month, site.zone)
    since = datetime.combine(month - timedelta(days=7), time(), site.zone).astimezone(UTC)
    sums: dict[time, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for h, (f, r, e) in _hours(site, polls, since, start).items():
        acc = sums[h.astimezone(site.zone).time()]
        acc[0], acc[1], acc[2], acc[3] = acc[0] + f, acc[1] + r, acc[2] + e, acc[3] + 1
    mean = {at: [(2 * v + n) // (2 * n) for v in (f, r, e)] for at, (f, r, e, n) in sums.items()}
    return {h: mean.get(h.astimezone(site.zone).time(), [0, 0, 0]) for h in missing}


def _billable(
    site: SimSite, hours: dict[datetime, list[int]], pool: int
) -> tuple[dict[str, int], int]:
    """Billable mWh per tariff period, and the AU grid pool after the hours."""
    by_period: dict[str, int] = defaultdict(int)
    for start in sorted(hours):
        forward, reverse, export = hours[start]
        on_site = forward if site.spec.region is Region.US else max(forward - export, 0)
        if site.spec.region is Region.AU:
            pool += reverse
            used = min(pool, on_site)
            pool -= used
            on_site -= used
        by_period[tariff_period(site.spec.plan, start.astimezone(site.zone))] += on_site
    return dict(by_period), pool


Lines = dict[str, tuple[Decimal, Decimal, Decimal]]


def _rated(
    plan: str, by_period: dict[str, int], tax_percent: int
) -> tuple[Lines, tuple[Decimal, ...]]:
    """Energy lines per period (kWh, unit price, net) and (net, tax, gross)."""
    lines = {}
    for period, mwh in by_period.items():
        if mwh:
            kwh = Decimal(mwh) / 1_000_000
            price = PRICES[plan][period]
            lines[period] = (kwh, price, cents(kwh * price))
    net = sum((n for _, _, n in lines.values()), Decimal("0.00"))
    tax = cents(net * tax_percent / 100)
    return lines, (net, tax, net + tax)


# -- the cloud and the run ---------------------------------------------------------------
def _query(pool: Any, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with pool.connection() as conn:
        return conn.execute(sql, args).fetchall()


def _poll_times(pool: Any, gateway: str, serial: str) -> tuple[datetime, ...]:
    """When the store holds a forward register reading of meter ``serial``."""
    rows = _query(
        pool,
        "SELECT r.ts FROM telemetry.readings r JOIN ingest.device_keys k"
        " ON k.device_id = r.device_id JOIN telemetry.metrics m ON m.id = r.metric_id"
        " WHERE k.gateway_id = %s AND k.local_id = %s AND m.name = 'import_wh' ORDER BY r.ts",
        gateway,
        serial,
    )
    return tuple(r[0] for r in rows)


def _setup_cloud(url: str) -> tuple[Any, dict[str, tuple[int, str]]]:
    migrate(url)
    pool = create_pool(url, name="test-billing-e2e", max_size=6)
    registry, customers = RegistryService(pool), CustomersService(pool)
    made = {}
    for spec in SPECS:
        site = registry.add_site(SiteIn(name=spec.key, region=spec.region, time_zone=spec.zone))
        gateway = f"gw-{spec.key}"
        registry.add_gateway(GatewayIn(id=gateway, site_id=site.id))
        account = customers.add_account(
            spec.region, AccountIn(name=spec.key, email="c@example.com", plan_code=spec.plan)
        )
        link_site(registry, customers, site.id, account.id)
        record = {
            "pv_kwp": "5",
            "tilt_deg": "20",
            "azimuth_deg": "0",
            "battery_kwh": "10",
            "network_operator": "Grid Co",
            "tariff_zone": spec.tariff_zone,
            "installed_on": CONTRACT_START.isoformat(),
            "warranty_until": "2035-06-01",
            "billing_meter": f"SYS-{spec.key}",
            "grid_meter": f"MTR-{spec.key}",
        }
        customers.put_installation(spec.region, site.id, InstallationIn.model_validate(record))
        made[spec.key] = (site.id, gateway)
    return pool, made


def _sim(spec: Spec, start: datetime) -> DeviceSite:
    settings = region_site(
        spec.key,
        spec.region.value,
        system_meter=True,
        start_time=start,
        update_period_s=3600.0,  # the physics moves only when the test says
        pv_capacity_w=5000.0,
        latitude=spec.where[0],
        longitude=spec.where[1],
        tz=spec.zone,
    )
    devices = list(settings.devices)
    devices[1] = devices[1].model_copy(update={"serial": f"MTR-{spec.key}"})
    if spec.battery:
        devices.append(DeviceSpec(profile="sim-battery", unit_id=BATTERY))
    return DeviceSite(settings.model_copy(update={"devices": devices}))


def _battery_plan(site: SimSite, at: datetime) -> None:
    """Sydney's battery over the half hour from ``at``: charging from the grid 1-3 am,
    discharging 6-9 pm, else left alone."""
    hour = at.astimezone(site.zone).hour
    mode = 1 if 1 <= hour < 3 else 2 if 18 <= hour < 21 else 0
    site.sim.set_point(BATTERY, "124.InWRte", 50.0)
    site.sim.set_point(BATTERY, "124.OutWRte", 60.0)
    site.sim.set_point(BATTERY, "124.StorCtl_Mod", mode)


def _agent_settings(site: SimSite, mqtt_url: str, tmp: Path) -> AgentSettings:
    return AgentSettings(
        gateway_id=site.gateway,
        region=site.spec.region.value,
        mqtt_url=mqtt_url,
        buffer_path=tmp / f"{site.spec.key}.sqlite",
        poll_interval_s=site.spec.interval_s,
        publish_interval_s=0.05,
        unreachable_backoff_max_s=site.spec.interval_s,
        stored_timeout_s=2.0,
        reconnect_min_s=0.1,
        reconnect_max_s=0.5,
        endpoints=[
            {
                "name": "site",
                "host": "127.0.0.1",
                "port": site.sim.port,
                "unit_ids": [GRID, SYSTEM],
                "timeout_s": 5.0,  # a slow answer on a loaded machine is no missed poll
            }
        ],
    )


class BillingClock:
    def __init__(self) -> None:
        self.at = datetime(2024, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.at


@dataclass
class Run:
    pool: Any
    billing: BillingService
    billing_clock: BillingClock
    customers: CustomersService
    sites: dict[str, SimSite]
    clock: SteppedClock
    proxy: FaultProxy
    #: Madrid's November invoice as issued (before its true-up): its estimated hours.
    outage_hours: list[datetime] = field(default_factory=list)


async def _stored_through(run: Run, site: SimSite, serial: str, through: datetime) -> None:
    async def check() -> bool:
        got = await asyncio.to_thread(_poll_times, run.pool, site.gateway, serial)
        return bool(got) and got[-1] >= through

    await until(check, 60, f"{site.spec.key}'s {serial} stored through {through:%Y-%m-%d %H:%M}")


def _refresh(pool: Any, now: datetime) -> None:
    with pool.connection() as conn:
        RollupRefresher("plain").catch_up(conn, now=now)


def _serial(site: SimSite, at: datetime) -> str:
    swapped = site.spec.key == "sydney" and at > SWAP_LOCAL
    return f"SYS-{site.spec.key}" + ("-2" if swapped else "")


async def _bill(run: Run, month: date, last: datetime) -> None:
    """Bill ``month`` once every connected site's readings through ``last`` are stored."""
    for site in run.sites.values():
        if not (site.spec.key == "madrid" and month == OUTAGE_LOCAL.date().replace(day=1)):
            polled = last - timedelta(seconds=last.timestamp() % site.spec.interval_s)
            await _stored_through(run, site, _serial(site, polled), polled)
    await asyncio.to_thread(_refresh, run.pool, last)
    run.billing_clock.at = last
    for region in (Region.AU, Region.US, Region.ES):
        result = await asyncio.to_thread(run.billing.run_cycle, region, month, run_by="e2e")
        assert (result.state, result.skipped) == ("billed", ())


async def _true_up(run: Run, last: datetime) -> None:
    """Madrid's link back: its buffered week reaches the store, the store announces the
    revised days, billing handles each announcement."""
    (before,) = await asyncio.to_thread(
        _query, run.pool, "SELECT coalesce(max(id), 0) FROM telemetry.outbox"
    )
    run.proxy.set("pass")
    polled = last - timedelta(seconds=last.timestamp() % 3600)
    await _stored_through(run, run.sites["madrid"], "SYS-madrid", polled)
    await asyncio.to_thread(_refresh, run.pool, last + timedelta(hours=2))
    rows = await asyncio.to_thread(
        _query,
        run.pool,
        "SELECT event_id, name, region, source, payload FROM telemetry.outbox"
        " WHERE id > %s AND name = 'energy.revised' ORDER BY id",
        before[0],
    )
    run.billing_clock.at = last + timedelta(hours=2)
    for r in rows:
        e = Event.model_validate(
            {"id": r[0], "name": r[1], "region": r[2], "source": r[3], "payload": r[4]}
        )
        await asyncio.to_thread(
            run.billing.true_up, e.id, e.region, EnergyRevised.model_validate(e.payload)
        )


async def _step(run: Run, start: datetime, end: datetime) -> None:
    """Step every site from ``start`` to ``end`` half an hour at a time; between steps,
    the swap, the outage, each month's cycle once it has ended everywhere (Los Angeles
    last), Madrid's link back after November's."""
    sydney = run.sites["sydney"]
    swap_at, outage_at = SWAP_LOCAL.astimezone(UTC), OUTAGE_LOCAL.astimezone(UTC)
    bill_at = {_local_month(m, ZoneInfo("America/Los_Angeles"))[1] + STEP: m for m in MONTHS}
    t = start
    while t < end:
        await run.clock.settle()
        if t == swap_at:  # just after the old meter's last poll
            sydney.sim.activate_fault(
                {"kind": "meter_replaced", "unit": SYSTEM, "serial": "SYS-sydney-2"}
            )
            sydney.sim.activate_fault({"kind": "no_response", "unit": SYSTEM})
            old_final = sydney.served[SYSTEM][t][0]
            replaced = MeterReplacementIn(
                old_serial="SYS-sydney",
                new_serial="SYS-sydney-2",
                replaced_at=t,
                old_register_kwh=Decimal(old_final) / 1000,
                new_register_kwh=Decimal("0.001"),
            )
            await asyncio.to_thread(
                run.customers.record_meter_replacement, Region.AU, sydney.site_id, replaced
            )
        elif t == swap_at + timedelta(hours=1):  # the new meter answers from the next poll
            sydney.sim.clear_faults("no_response", SYSTEM)
        if t == outage_at:
            await _stored_through(run, run.sites["madrid"], "SYS-madrid", t)
            run.proxy.set("cut")
        if t in bill_at:
            await _bill(run, bill_at[t], t)
            if bill_at[t] == OUTAGE_LOCAL.date().replace(day=1):
                await _true_up(run, t)
        _battery_plan(sydney, t)
        t += STEP
        for site in run.sites.values():
            site.sim.fast_forward(STEP.total_seconds())
            site.record(t)
        run.clock.advance(t)
    await run.clock.settle()
    for site in run.sites.values():  # the last polls stored too
        polled = t - timedelta(seconds=t.timestamp() % site.spec.interval_s)
        await _stored_through(run, site, f"MTR-{site.spec.key}", polled)


# -- the test ----------------------------------------------------------------------------
async def test_simulated_months_are_invoiced_to_the_cent_through_the_real_pipeline(
    postgres_server_url: str, mosquitto: PrivateMosquitto, tmp_path: Path
) -> None:
    # From 7 local days before the first month (the estimates' history) in every zone,
    # to the last month's end in Los Angeles (the last zone), billed one step later.
    start = datetime.combine(MONTHS[0] - timedelta(days=8), time(12), UTC)
    last_end = _local_month(MONTHS[-1], ZoneInfo("America/Los_Angeles"))[1]
    with private_database(postgres_server_url) as url:
        pool, made = await asyncio.to_thread(_setup_cloud, url)
        try:
            await deliver_registry_events(pool)
            clock = BillingClock()
            run = Run(
                pool=pool,
                billing=create_billing_service(pool, clock=clock),
                billing_clock=clock,
                customers=CustomersService(pool),
                sites={},
                clock=SteppedClock(start, pollers=2 * len(SPECS)),
                proxy=FaultProxy("127.0.0.1", mosquitto.port),
            )
            ingest = IngestSettings(
                database_url=url,
                mqtt_url=mosquitto.url,
                mqtt_client_id=f"ingest-{uuid.uuid4().hex[:8]}",
                stored_interval_s=0.2,
                ingest_partition_past_days=3650,  # 2024's readings are welcome
                # Retention off: the store's upkeep runs on today's clock and would drop
                # 2024's partitions; the test refreshes the energy itself on its clock.
                telemetry_maintenance_in_worker=False,
                telemetry_raw_retention_days=3650,
            )
            await _run(run, made, ingest, start, last_end + 2 * STEP, tmp_path)
            _check(run)
        finally:
            pool.close()


async def _run(
    run: Run,
    made: dict[str, tuple[int, str]],
    ingest: IngestSettings,
    start: datetime,
    end: datetime,
    tmp: Path,
) -> None:
    stop, ready = asyncio.Event(), asyncio.Event()
    worker = asyncio.create_task(run_ingest(ingest, stop, ready=ready))
    try:
        async with asyncio.timeout(20):
            await ready.wait()
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(run.proxy)
            for spec in SPECS:
                sim = await stack.enter_async_context(_sim(spec, start))
                sim.pause_updates()
                site = SimSite(spec, sim, *made[spec.key])
                site.record(start)
                run.sites[spec.key] = site
            for site in run.sites.values():
                url = run.proxy.url if site.spec.key == "madrid" else ingest.mqtt_url
                settings = _agent_settings(site, url, tmp)
                await stack.enter_async_context(running_agent(settings, poll_clock=run.clock))
            await _step(run, start, end)
    finally:
        stop.set()
        await asyncio.wait_for(worker, 20)


def _polls(run: Run, site: SimSite) -> Polls:
    """The polls the store holds, checked to be every one due (but the one the swap
    made the new meter miss): a missed poll would be billed as an estimate."""
    system = _poll_times(run.pool, site.gateway, f"SYS-{site.spec.key}")
    grid = _poll_times(run.pool, site.gateway, f"MTR-{site.spec.key}")
    due = [t for t in site.served[GRID] if t.timestamp() % site.spec.interval_s == 0]
    assert list(grid) == due[1:], f"{site.spec.key}: a grid meter poll missed"
    if site.spec.key != "sydney":
        assert system == grid, f"{site.spec.key}: a system meter poll missed"
        return Polls(system, grid)
    new = _poll_times(run.pool, site.gateway, "SYS-sydney-2")
    skipped = SWAP_LOCAL.astimezone(UTC) + timedelta(hours=1)
    assert system + new == tuple(t for t in grid if t != skipped), "sydney: a poll missed"
    return Polls(system + new, grid, (system[-1], new[0]))


def _document(run: Run, site: SimSite, kind: str, month: date) -> tuple[Lines, tuple[Decimal, ...]]:
    rows = _query(
        run.pool,
        "SELECT i.id, i.net, i.tax, i.gross FROM billing.invoices i"
        " WHERE i.site_id = %s AND i.kind = %s AND i.first_day = %s",
        site.site_id,
        kind,
        max(month, CONTRACT_START),
    )
    assert len(rows) == 1, f"{site.spec.key} {month:%Y-%m}: {len(rows)} {kind}s"
    doc_id, *totals = rows[0]
    lines = _query(
        run.pool,
        "SELECT period, kwh, unit_price, net FROM billing.invoice_lines"
        " WHERE invoice_id = %s AND period IS NOT NULL ORDER BY line_no",
        doc_id,
    )
    return {p: (k, u, n) for p, k, u, n in lines}, tuple(totals)


def _ledger(run: Run, site: SimSite, month: date) -> tuple[int, int, int]:
    """The month's current ledger lines: (forward mWh, billable mWh, estimated lines)."""
    start, end = _local_month(month, site.zone)
    ((forward, billable, estimated),) = _query(
        run.pool,
        "SELECT sum(forward_mwh), sum(billable_mwh), count(*) FILTER (WHERE estimated)"
        " FROM billing.ledger_lines WHERE site_id = %s AND superseded_by IS NULL"
        " AND hour_start >= %s AND hour_start < %s",
        site.site_id,
        start,
        end,
    )
    return int(forward), int(billable), int(estimated)


def _rise(site: SimSite, polls: Polls, start: datetime, end: datetime) -> int:
    """The forward register's rise over ``[start, end]`` (mWh), across the swap as the
    two registers read: (old at the swap - old at start) + (new at end - 1 Wh)."""
    served = site.served[SYSTEM]
    if polls.swap is None or not start < polls.swap[0] < end:
        return (served[end][0] - served[start][0]) * 1000
    old_last, _ = polls.swap
    return ((served[old_last][0] - served[start][0]) + (served[end][0] - 1)) * 1000


def _check(run: Run) -> None:
    swap_seen = outage_seen = False
    for site in run.sites.values():
        polls = _polls(run, site)
        pool = 0
        for month in MONTHS:
            start, end = _local_month(month, site.zone)
            hours = _hours(site, polls, start, end)
            label = f"{site.spec.key} {month:%Y-%m}"
            outage = site.spec.key == "madrid" and month == OUTAGE_LOCAL.date().replace(day=1)
            invoiced = dict(hours)
            if outage:  # the invoice had only what reached the store before the outage
                cut = OUTAGE_LOCAL.astimezone(UTC)
                missing = sorted(h for h in hours if h >= cut)
                assert len(missing) == 7 * 24
                invoiced = {h: v for h, v in hours.items() if h < cut}
                invoiced |= _estimates(site, polls, month, missing)
            by_period, pool_after = _billable(site, invoiced, pool)
            lines, totals = _rated(site.spec.plan, by_period, TAX_PERCENT[site.spec.key])
            assert _document(run, site, "invoice", month) == (lines, totals), label
            assert totals[0] > 0, label
            # Once trued up, the ledger is the register's rise exactly, nothing estimated.
            exact, pool = _billable(site, hours, pool)
            forward, billable, estimated = _ledger(run, site, month)
            assert (forward, billable, estimated) == (
                _rise(site, polls, start, end),
                sum(exact.values()),
                0,
            ), label
            if outage:
                _check_notes(run, site, month, exact, by_period)
                outage_seen = True
            else:
                assert pool_after == pool, label
            swap_seen |= polls.swap is not None and start < polls.swap[0] < end
    assert swap_seen
    assert outage_seen


def _check_notes(
    run: Run, site: SimSite, month: date, exact: dict[str, int], invoiced: dict[str, int]
) -> None:
    """The true-up: one credit note for the periods with less energy than invoiced and
    one debit note for those with more, each at the invoice's prices and tax."""
    periods = set(exact) | set(invoiced)
    for kind, sign in (("credit_note", -1), ("debit_note", 1)):
        difference = {
            p: sign * (exact.get(p, 0) - invoiced.get(p, 0))
            for p in periods
            if sign * (exact.get(p, 0) - invoiced.get(p, 0)) > 0
        }
        if not difference:
            continue
        expected = _rated(site.spec.plan, difference, TAX_PERCENT[site.spec.key])
        if expected[1][2] == 0:
            continue
        assert _document(run, site, kind, month) == expected, f"{site.spec.key} {kind}"
