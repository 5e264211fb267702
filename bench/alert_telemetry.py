"""Alert rules inside the service (issue 16): ingest's ``telemetry.received`` events
through :meth:`AlertService.handle_samples` on a real PostgreSQL, beside the bare
transaction every such event needs, in the same run on the same database.

    .venv/bin/python -m bench.alert_telemetry                   # 200 gateways, threads 1 and 2
    .venv/bin/python -m bench.alert_telemetry --gateways 50 --steps 20 --threads 2  # quick
    .venv/bin/python -m bench.alert_telemetry --rules 1000      # shipped rules + synthetic

A fresh database from ``bench.common.bench_database`` with the alerts schema. For each
``--threads`` value K, a fleet of its own: ``--gateways`` au gateways registered through
:meth:`AlertService.record_gateway`; half of them located (near Sydney) with an array
(:meth:`AlertService.record_installation`) and a week of hourly counter marks already
stored (the state of a service that has been running), so the shortfall rules' hourly
judgement runs with a clear-sky expectation (the seeding computes those days, so the
process's clear-sky cache is warm, as a running service's is). Each gateway has a meter,
a battery and one or two inverters, polls every 5 s and publishes every 30 s: one event
carries 6 readings of the announced metrics (``ANNOUNCED_METRICS``): the meter's ``grid_l1_v`` and
``grid_hz`` and the battery's ``battery_soh_pct`` per reading, each inverter's newest
``pv_wh`` — 19-20 samples, built with ingest's own builder (``TelemetryStored`` →
``telemetry_received``) and read as the alerts handler reads it (``TelemetryReceived``;
that parse is not timed). Values are normal, with excursions: one gateway in ten has
its grid voltage high (257 V) through the middle half of the run (raises after the
rule's 10 min, clears 5 min after), one in ten its frequency high (50.6 Hz) for 5 min,
one in twenty-five its battery's health low (a pending condition carried in the state).
The run starts at 11:50 in Sydney, so hours end during it and get judged.

Each of the ``--steps`` publish intervals gives every gateway one event; K threads each
own a share of the gateways and handle their events in order (as one queue per gateway
would), calling ``handle_samples`` through a pool of K connections.

Baseline, same pool, same number of events, right after: the transaction the path cannot
avoid per event: ``INSERT`` into an inbox-like table ``ON CONFLICT DO NOTHING``,
``SELECT … FOR UPDATE`` of the gateway's row, and an ``UPDATE`` writing the evaluator
state as the service left it (same size, same shape). The production marks (tens of kB)
are not in it: the service writes them only when a mark is new or an hour was judged,
about once an hour per inverter.

``--rules N`` (N > the shipped au rules) adds synthetic thresholds on the announced gauges
up to N rules (``above``/``below`` ``--spread`` 3-6 standard deviations away, so the
excursions trip some and the noise few; deadbands, delays of 0-15 min), as
``bench.alerts`` does for every gauge: more conditions per gateway, a larger state.
``--spread 1.5,4`` (``bench.alerts``' levels) makes an alarm storm: the alarm writes.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from pydantic import ValidationError

from bench.alerts import TYPICAL
from bench.common import bench_database, report
from cloud.adapters.postgres import Connection, ConnectionPool, Jsonb, create_pool
from cloud.adapters.solar import PvSite, clear_sky_wh
from cloud.alerts import AlertService
from cloud.alerts.production import CounterMark, ProductionState
from cloud.alerts.rules import RuleSet, ThresholdRule, load_rules
from cloud.alerts.service import KnownGateway
from cloud.events.bus import event_payload
from cloud.events.types import InstallationChanged, TelemetryReceived
from cloud.ingest.announce import AnnouncedSample, TelemetryStored, telemetry_received
from cloud.migrate import migrate
from contracts.topics import Region

Pool = ConnectionPool[Connection[Any]]
Samples = list[tuple[str, str, datetime, float]]
POLL_S = 5
PUBLISH_S = 30
READINGS = PUBLISH_S // POLL_S
#: 11:50 in Sydney on a clear-sky summer day: hours end (and are judged) during the run.
START = datetime(2026, 3, 1, 0, 50, tzinfo=UTC)
HOUR = timedelta(hours=1)
#: The first hour of the week of counter marks already stored (a running service's).
EPOCH = START.replace(minute=0) - timedelta(days=7)
#: What a healthy array makes of its clear-sky expectation (no shortfall rule trips).
YIELD = 0.75
SYDNEY = (-33.87, 151.21)
#: The announced gauges synthetic rules may name, and the kind of device reporting them.
SYNTHETIC = {"grid_l1_v": "meter", "grid_hz": "meter", "battery_soh_pct": "battery"}


@dataclass(frozen=True, slots=True)
class Gateway:
    gateway_id: str
    site_id: int
    inverters: tuple[str, ...]
    site: PvSite | None  # located with an array: the shortfall rules judge its hours
    excursion: str | None  # "voltage", "frequency", "soh" or None


def make_rules(total: int, spread: tuple[float, float], rng: random.Random) -> RuleSet:
    """The shipped au rules, plus synthetic thresholds on the announced gauges up to
    ``total`` rules (none when ``total`` is not more than the shipped ones), their levels
    ``spread`` standard deviations from the typical value."""
    shipped = load_rules(Region.AU)
    extra: list[ThresholdRule] = []
    while len(shipped.rules) + len(extra) < total:
        metric = rng.choice(sorted(SYNTHETIC))
        mean, sd = TYPICAL[metric]
        above = rng.random() < 0.6
        k = rng.uniform(*spread)
        raw = {
            "id": f"synthetic-{len(extra)}",
            "kind": "threshold",
            "severity": "low",
            "title": f"{metric} {'high' if above else 'low'}",
            "metric": metric,
            "above" if above else "below": round(mean + (k if above else -k) * sd, 3),
            "deadband": round(sd / 5, 3),
            "on_delay_s": rng.choice([0, 300, 600, 900]),
            "off_delay_s": rng.choice([0, 300, 600, 900]),
            "device_kinds": [SYNTHETIC[metric]],
        }
        try:  # a level outside the metric's range (a percentage past 100) is refused
            extra.append(ThresholdRule.model_validate(raw))
        except ValidationError:
            continue
    return RuleSet(region=Region.AU, rules=(*shipped.rules, *extra))


def make_fleet(prefix: str, n: int, first_site: int, rng: random.Random) -> list[Gateway]:
    excursions = {0: "voltage", 5: "frequency"}
    fleet = []
    for i in range(n):
        site = None
        if i % 2 == 0:
            lat, lon = SYDNEY[0] + rng.uniform(-0.5, 0.5), SYDNEY[1] + rng.uniform(-0.5, 0.5)
            kwp = rng.choice([3.0, 5.0, 6.6, 10.0])
            site = PvSite(latitude=lat, longitude=lon, tilt_deg=20, azimuth_deg=0, kwp=kwp)
        excursion = excursions.get(i % 10, "soh" if i % 25 == 7 else None)
        inverters = ("INV-1", "INV-2") if i % 3 == 0 else ("INV-1",)
        fleet.append(Gateway(f"{prefix}{i:05d}", first_site + i, inverters, site, excursion))
    return fleet


def register(service: AlertService, fleet: Sequence[Gateway]) -> None:
    """As the registry's and the customers service's events would (one each)."""
    for g in fleet:
        lat = g.site.latitude if g.site else None
        lon = g.site.longitude if g.site else None
        known = KnownGateway(
            g.gateway_id, Region.AU, g.site_id, None, "Australia/Sydney", None, lat, lon
        )
        service.record_gateway(uuid.uuid4(), known, EPOCH)
        if g.site is not None:
            array = InstallationChanged(
                site_id=g.site_id,
                region=Region.AU,
                pv_kwp=Decimal(str(g.site.kwp)),
                tilt_deg=Decimal("20"),
                azimuth_deg=Decimal("0"),
                battery_kwh=Decimal("10"),
                updated_at=EPOCH,
            )
            service.record_installation(uuid.uuid4(), array)


class Counter:
    """A located gateway's lifetime AC energy per inverter: ``YIELD`` of the clear-sky
    expectation, hour by hour, linear inside an hour (unlocated: 500 Wh an hour)."""

    def __init__(self, g: Gateway) -> None:
        self._g = g
        self._at_hour: dict[datetime, float] = {EPOCH: 1_000_000.0}
        self._last = (EPOCH, 1_000_000.0)

    def _hour_wh(self, hour: datetime) -> float:
        site = self._g.site
        whole = YIELD * clear_sky_wh(site, hour, hour + HOUR) if site else 500.0
        return whole / len(self._g.inverters)

    def wh(self, ts: datetime) -> float:
        hour = ts.replace(minute=0, second=0, microsecond=0)
        if hour not in self._at_hour:  # hours are asked for in time order
            at, total = self._last
            while at < hour:
                total += self._hour_wh(at)
                at += HOUR
            self._at_hour[hour] = total
            self._last = (hour, total)
        into = (ts - hour) / HOUR
        return self._at_hour[hour] + into * self._hour_wh(hour)


def seed_production(pool: Pool, fleet: Sequence[Gateway], counters: dict[str, Counter]) -> None:
    """A week of hourly marks per inverter, as a running service would have stored."""
    rows = []
    for g in fleet:
        hours = [EPOCH + h * HOUR for h in range(int((START - EPOCH) / HOUR) + 1)]
        marks = [
            CounterMark(
                device=inv, hour=h, ts=h + timedelta(seconds=7), wh=counters[g.gateway_id].wh(h)
            )
            for inv in g.inverters
            for h in hours
        ]
        state = ProductionState(marks=marks, judged=hours[-2])
        rows.append((g.gateway_id, Jsonb(state.model_dump(mode="json"))))
    with pool.connection() as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO alerts.series_state (gateway_id, region, production)"
            " VALUES (%s, 'au', %s)",
            rows,
        )


def gauges(g: Gateway, step: int, steps: int, rng: random.Random) -> tuple[float, float, float]:
    middle = steps // 4 <= step < 3 * steps // 4
    burst = steps // 2 <= step < steps // 2 + 10
    volts = rng.gauss(257, 1) if g.excursion == "voltage" and middle else rng.gauss(235, 3)
    hz = rng.gauss(50.6, 0.02) if g.excursion == "frequency" and burst else rng.gauss(50, 0.04)
    soh = rng.gauss(65, 0.2) if g.excursion == "soh" else rng.gauss(92, 0.2)
    return volts, hz, soh


def make_events(
    g: Gateway, steps: int, counter: Counter, rng: random.Random
) -> list[tuple[UUID, str, Samples]]:
    """``steps`` published batches of ``g``, as ingest announces them and alerts reads them."""
    stream = uuid.uuid5(uuid.NAMESPACE_URL, g.gateway_id)
    out = []
    for step in range(steps):
        samples: list[AnnouncedSample] = []
        for r in range(READINGS):
            ts = START + timedelta(seconds=step * PUBLISH_S + r * POLL_S)
            volts, hz, soh = gauges(g, step, steps, rng)
            samples += [
                ("MTR-1", "grid_l1_v", ts, round(volts, 1)),
                ("MTR-1", "grid_hz", ts, round(hz, 3)),
                ("BAT-1", "battery_soh_pct", ts, round(soh, 1)),
            ]
            samples += [(inv, "pv_wh", ts, round(counter.wh(ts), 1)) for inv in g.inverters]
        stored = TelemetryStored(
            "au", g.gateway_id, stream, step + 1, len(samples), len(samples),
            frozenset({1, 2, 3}), samples[0][2], samples[-1][2], tuple(samples),
        )  # fmt: skip
        [event] = telemetry_received([stored], samples[-1][2])
        received = event_payload(event, TelemetryReceived)
        out.append((event.id, received.gateway_id, received.samples))
    return out


def drive(
    threads: int, work: Sequence[Sequence[Callable[[], object]]]
) -> tuple[float, list[float]]:
    """Run each thread's calls in order, all threads at once: wall time, each call's time."""
    latencies: list[list[float]] = [[] for _ in range(threads)]
    start = threading.Barrier(threads + 1)

    def run(i: int) -> None:
        start.wait()
        for call in work[i]:
            t0 = time.perf_counter()
            call()
            latencies[i].append(time.perf_counter() - t0)

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    start.wait()
    t0 = time.perf_counter()
    for w in workers:
        w.join()
    return time.perf_counter() - t0, [x for ls in latencies for x in ls]


def interleave(
    per_gateway: Sequence[Sequence[Callable[[], object]]], threads: int
) -> list[list[Callable[[], object]]]:
    """Thread i takes gateways i, i + K, …, and goes through them step by step."""
    out: list[list[Callable[[], object]]] = [[] for _ in range(threads)]
    steps = max(len(calls) for calls in per_gateway)
    for step in range(steps):
        for j, calls in enumerate(per_gateway):
            if step < len(calls):
                out[j % threads].append(calls[step])
    return out


def bare_tables(pool: Pool) -> None:
    with pool.connection() as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_inbox (event_id uuid PRIMARY KEY,"
            " handled_at timestamptz NOT NULL DEFAULT now())"
        )
        conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_state (gateway_id text PRIMARY KEY, state jsonb,"
            " production jsonb, version bigint NOT NULL DEFAULT 0,"
            " updated_at timestamptz NOT NULL DEFAULT now())"
        )


def bare(pool: Pool, gateway_id: str, state: Any, production: Any) -> None:
    """The transaction no event can do without: inbox mark, row lock, state written."""
    with pool.connection() as conn:
        conn.execute(
            "INSERT INTO bench_inbox (event_id) VALUES (%s)"
            " ON CONFLICT (event_id) DO NOTHING RETURNING 1",
            (uuid.uuid4(),),
        ).fetchone()
        conn.execute(
            "SELECT version FROM bench_state WHERE gateway_id = %s FOR UPDATE", (gateway_id,)
        ).fetchone()
        # The production marks change about hourly; the service writes them then only.
        del production
        conn.execute(
            "UPDATE bench_state SET state = %s, version = version + 1,"
            " updated_at = now() WHERE gateway_id = %s",
            (Jsonb(state), gateway_id),
        )


def alarm_summary(alarms: Sequence[tuple[str, int, int]]) -> str:
    """Alarms (still active) by rule; the synthetic rules' together."""
    shipped = [f"{rule} {n} ({active})" for rule, n, active in alarms if "synthetic" not in rule]
    synthetic = [(n, active) for rule, n, active in alarms if "synthetic" in rule]
    if synthetic:
        n, active = (sum(x) for x in zip(*synthetic, strict=True))
        shipped.append(f"{len(synthetic)} synthetic rules {n:,} ({active:,})")
    return ", ".join(shipped) or "none"


def pct(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


def latency_line(name: str, seconds: Sequence[float]) -> str:
    ms = [s * 1000 for s in seconds]
    return (
        f"{name:<44} p50 {statistics.median(ms):6.2f} ms   p99 {pct(ms, 99):6.2f} ms"
        f"   max {max(ms):7.1f} ms"
    )


def one_run(url: str, rules: RuleSet, threads: int, args: argparse.Namespace) -> float:
    """One fleet through the service with ``threads`` threads, then the baseline; the
    service's events/s."""
    rng = random.Random(args.seed + threads)
    pool = create_pool(url, min_size=threads, max_size=threads, name=f"bench-alerts-{threads}")
    try:
        service = AlertService(pool, rules={Region.AU: rules})
        fleet = make_fleet(f"k{threads}-gw-", args.gateways, 10_000 * threads, rng)
        register(service, fleet)
        counters = {g.gateway_id: Counter(g) for g in fleet}
        seed_production(pool, fleet, counters)
        events = [make_events(g, args.steps, counters[g.gateway_id], rng) for g in fleet]
        n = sum(len(e) for e in events)
        samples = sum(len(s) for e in events for _, _, s in e)

        def call(event_id: UUID, gateway_id: str, ss: Samples) -> Callable[[], object]:
            return lambda: service.handle_samples(event_id, gateway_id, ss)

        calls = [[call(*e) for e in per] for per in events]
        elapsed, latencies = drive(threads, interleave(calls, threads))
        rate = n / elapsed

        with pool.connection() as conn:
            stored = conn.execute(
                "SELECT gateway_id, state, production, octet_length(state::text),"
                " octet_length(production::text), pg_column_size(state),"
                " pg_column_size(production) FROM alerts.series_state"
                " WHERE gateway_id LIKE %s ORDER BY gateway_id",
                (f"k{threads}-gw-%",),
            ).fetchall()
            alarms = conn.execute(
                "SELECT rule_id, count(*), count(*) FILTER (WHERE active) FROM alerts.alarms"
                " WHERE gateway_id LIKE %s GROUP BY rule_id ORDER BY rule_id",
                (f"k{threads}-gw-%",),
            ).fetchall()
        bare_tables(pool)
        with pool.connection() as conn, conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO bench_state (gateway_id) VALUES (%s) ON CONFLICT DO NOTHING",
                [(row[0],) for row in stored],
            )
        by_gateway = {row[0]: (row[1], row[2]) for row in stored}

        def bare_call(gateway_id: str) -> Callable[[], object]:
            state, production = by_gateway[gateway_id]
            return lambda: bare(pool, gateway_id, state, production)

        bare_calls = [
            [bare_call(g.gateway_id)] * len(per) for g, per in zip(fleet, events, strict=True)
        ]
        bare_elapsed, bare_latencies = drive(threads, interleave(bare_calls, threads))
        baseline = n / bare_elapsed
    finally:
        pool.close()

    text = [r[3] for r in stored]
    prod = [r[4] for r in stored]
    print(
        f"\n{threads} thread(s), pool of {threads}: {len(fleet)} gateways x {args.steps}"
        f" events = {n:,} events, {samples:,} samples ({samples / n:.1f} per event)"
    )
    print(f"alarms (still active) at the end: {alarm_summary(alarms)}")
    print(
        f"stored state per gateway: evaluator {statistics.fmean(text):,.0f} B of JSON"
        f" (max {max(text):,}), production marks {statistics.fmean(prod):,.0f} B"
        f" (max {max(prod):,}); on disk (compressed) {statistics.fmean(r[5] for r in stored):,.0f}"
        f" + {statistics.fmean(r[6] for r in stored):,.0f} B"
    )
    report("baseline: inbox + row lock + state UPDATE", baseline, baseline, "events/s")
    report("AlertService.handle_samples", rate, baseline, "events/s")
    report("  as samples", samples / elapsed, samples / bare_elapsed, "samples/s")
    print(latency_line("baseline: per event", bare_latencies))
    print(latency_line("handle_samples: per event", latencies))
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gateways", type=int, default=200)
    parser.add_argument("--steps", type=int, default=60, help="30 s publishes per gateway")
    parser.add_argument(
        "--threads", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2],
        help="comma-separated thread counts, one run (and fleet) each",
    )  # fmt: skip
    parser.add_argument("--rules", type=int, default=0, help="total rules (0: the shipped au set)")
    parser.add_argument(
        "--spread", type=lambda s: tuple(float(x) for x in s.split(",")), default=(3.0, 6.0),
        help="synthetic levels, standard deviations from typical (1.5,4: bench.alerts')",
    )  # fmt: skip
    parser.add_argument("--fleet", type=int, default=10_000, help="gateways of the region compared")
    parser.add_argument("--seed", type=int, default=16)
    args = parser.parse_args()
    rules = make_rules(args.rules, args.spread, random.Random(args.seed))
    print(f"{len(rules.rules):,} rules ({len(rules.enabled):,} enabled) for au")
    with bench_database() as url:
        migrate(url, schemas={"alerts"})
        rates = [one_run(url, rules, k, args) for k in args.threads]
    need = args.fleet / PUBLISH_S
    print(
        f"\na region of {args.fleet:,} gateways publishing every {PUBLISH_S} s sends"
        f" {need:,.0f} telemetry.received/s: the best run handles {max(rates) / need:.1f}x that"
    )


if __name__ == "__main__":
    main()
