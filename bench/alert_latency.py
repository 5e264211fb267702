"""Fault → notification latency through the real pipeline (issue 16), beside the raw I/O
of the path's two ends measured in the same run.

    .venv/bin/python -m bench.alert_latency [--rounds 20] [--phase-s 10] [--seed 16]

One process runs the demo stack (``potr.demo.demo_stack``: private TLS Mosquitto,
simulated sites on real Modbus TCP, one agent per site polling every
``POLL_INTERVAL_S`` = 2 s, ingest, alerts, notify) on a fresh database from
``bench.common.bench_database`` (``POTR_BENCH_DATABASE_URL``, the local 5432 server, or an
embedded cluster), with its mail going to an aiosmtpd sink of this module that stamps each
message as it arrives. After one warm-up round, each of ``--rounds`` rounds:

1. after a random pause of up to ``--phase-s`` (10 s; without it every round would meet
   the agent's poll and notify's worker at the same phase, as the rounds last about a
   whole number of polls), trips the au site's DC isolator (simulator fault
   ``isolator_trip`` on unit ``ISOLATOR_UNIT``) and notes the wall-clock time;
2. waits for (a) the ``isolator-tripped`` alarm row (its ``first_raised_at``), (b) the
   customer's inbox entry for that alarm (``notify.inbox.created_at``), (c) the e-mail to
   the customer in the sink (its arrival stamp) — all on this host's clock, so polling
   only finds them and adds nothing to the figures;
3. resets and closes the isolator through its command register (Modbus FC6 to register
   103 of the sim-isolator vendor map: 3 reset, then 2 close), waits for the alarm to
   clear, acknowledges it as the au operator (``rtn_unacknowledged`` → closed, so the next
   trip opens a new episode and is notified again: a raise into an open alarm is a
   repeat that tells nobody) and for notify's outbox to drain.

Also per round: the alarm's ``detail.since`` (the agent's event time: when its poll saw
the trip) splits each stage into the wait for the poll and the pipeline after it, and
``notify.alarm_notifications.latency_ms`` (alarm raised → notification filed, the
figure the pipeline records itself), and the inbox entry → e-mail gap: notify's delivery
worker, idle, looks for due deliveries every 5 s (a filed notification does not wake it).

Raw baselines (same run, same servers): a Modbus FC3 read of the isolator's state
register on the simulator (what the agent does to see the trip) and an SMTP send of a
message of the same size to the same sink over loopback (notify's last hop). Their sum is
the floor of the I/O the path cannot avoid; everything above it is the poll wait plus
MQTT, ingest, the event bus, alerts, notify and their database transactions.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import random
import smtplib
import statistics
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from pymodbus.client import AsyncModbusTcpClient
from rich.console import Console

from bench.common import bench_database
from cloud.alerts.store import AlarmStore
from cloud.scope import Scope
from contracts.topics import Region
from potr.demo import ISOLATOR_UNIT, POLL_INTERVAL_S, DemoStack, demo_stack
from potr.servers.ports import free_port

GATEWAY = "demo-au-01"
RULE = "isolator-tripped"
STATE_REGISTER = 100  # sim-isolator vendor map (0-based holding registers)
COMMAND_REGISTER = 103  # 1 open, 2 close, 3 reset
RESET, CLOSE = 3, 2
CLOSED = 1
WAIT_S = 30.0  # bound on every single wait
POLL_S = 0.02
#: notify's delivery worker looks for due deliveries this often when idle
#: (``DeliveryWorker.run``'s ``idle_s``; a filed notification does not wake it).
WORKER_IDLE_S = 5.0


# ----- the mail sink ----------------------------------------------------------------------
class StampingSink:
    """aiosmtpd handler keeping (arrival time UTC, To, Subject, size) of each message."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._mail: list[tuple[datetime, str, str, int]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        at = datetime.now(UTC)
        head = envelope.content.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
        fields = dict(
            (k.strip().lower(), v.strip())
            for k, _, v in (line.partition(":") for line in head.splitlines())
        )
        with self._lock:
            self._mail.append(
                (at, fields.get("to", ""), fields.get("subject", ""), len(envelope.content))
            )
        return "250 OK"

    def mail(self) -> list[tuple[datetime, str, str, int]]:
        with self._lock:
            return list(self._mail)


@contextmanager
def stamping_sink() -> Iterator[tuple[StampingSink, int]]:
    sink = StampingSink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield sink, controller.port
    finally:
        controller.stop()


# ----- helpers ----------------------------------------------------------------------------
def pct(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def line(name: str, seconds: Sequence[float]) -> str:
    ms = [s * 1000 for s in seconds]
    return (
        f"{name:<52} {statistics.median(ms):9.1f} {pct(ms, 95):9.1f} {pct(ms, 99):9.1f}"
        f" {min(ms):9.1f} {max(ms):9.1f}"
    )


async def wait_for(check: Callable[[], Awaitable[Any]], what: str, within: float = WAIT_S) -> Any:
    """Re-check every ``POLL_S`` until ``check()`` gives something truthy (returned)."""
    deadline = time.monotonic() + within
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {within:g} s waiting for {what}")
        await asyncio.sleep(POLL_S)


class Db:
    """Queries off the event loop (the stack's services share it)."""

    def __init__(self, stack: DemoStack) -> None:
        self.pool = stack.pool

    def _rows(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self.pool.connection() as conn:
            return list(conn.execute(sql, params).fetchall())

    async def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        return await asyncio.to_thread(self._rows, sql, params)


# ----- baselines --------------------------------------------------------------------------
async def modbus_reads(port: int, samples: int) -> list[float]:
    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2.0)
    out: list[float] = []
    try:
        if not await client.connect():
            raise RuntimeError(f"Modbus connect to 127.0.0.1:{port} failed")
        for _ in range(samples + 5):
            t0 = time.perf_counter()
            rr = await client.read_holding_registers(
                STATE_REGISTER, count=1, device_id=ISOLATOR_UNIT
            )
            out.append(time.perf_counter() - t0)
            if rr.isError():
                raise RuntimeError(f"raw read of the isolator state: {rr}")
    finally:
        client.close()
    return out[5:]


def smtp_sends(port: int, to: str, size: int, samples: int) -> list[float]:
    """Connect, send one message of ``size`` bytes, quit: as a mailer does per message."""
    out: list[float] = []
    for i in range(samples + 5):
        msg = EmailMessage()
        msg["From"] = "bench@potr.example"
        msg["To"] = to
        msg["Subject"] = f"baseline {i}"
        msg.set_content("x" * max(0, size - 200))
        t0 = time.perf_counter()
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            smtp.send_message(msg)
        out.append(time.perf_counter() - t0)
    return out[5:]


# ----- one round --------------------------------------------------------------------------
async def write_command(port: int, *commands: int) -> None:
    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2.0)
    try:
        if not await client.connect():
            raise RuntimeError(f"Modbus connect to 127.0.0.1:{port} failed")
        for command in commands:
            wr = await client.write_register(COMMAND_REGISTER, command, device_id=ISOLATOR_UNIT)
            if wr.isError():
                raise RuntimeError(f"isolator command {command}: {wr}")
    finally:
        client.close()


async def trip_round(
    stack: DemoStack,
    db: Db,
    sink: StampingSink,
    store: AlarmStore,
    operator_id: str,
    to: str,
    phase_s: float,
) -> dict[str, Any]:
    sim = stack.sims["au"]
    await asyncio.sleep(phase_s)  # a fault comes at any point of the poll and worker cycles
    before = len(sink.mail())
    [(last_alarm,)] = await db.rows(
        "SELECT coalesce(max(id), 0) FROM alerts.alarms WHERE gateway_id = %s AND rule_id = %s",
        GATEWAY,
        RULE,
    )
    tripped = datetime.now(UTC)
    sim.activate_fault({"kind": "isolator_trip", "unit": ISOLATOR_UNIT})
    sim.clear_faults("isolator_trip", ISOLATOR_UNIT)  # it tripped; the next one trips anew

    async def alarm() -> list[tuple[Any, ...]]:
        return await db.rows(
            "SELECT id, first_raised_at, detail->>'since' FROM alerts.alarms"
            " WHERE gateway_id = %s AND rule_id = %s AND id > %s",
            GATEWAY,
            RULE,
            last_alarm,
        )

    [(alarm_id, raised_at, since)] = await wait_for(alarm, "the alarm")

    async def inbox() -> list[tuple[Any, ...]]:
        return await db.rows(
            "SELECT i.created_at FROM notify.inbox i JOIN notify.alarm_notifications n"
            " USING (notification_id) WHERE n.alarm_id = %s AND n.audience = 'customer'"
            " AND n.event_name = 'alert.raised'",
            alarm_id,
        )

    [(inbox_at,)] = await wait_for(inbox, "the customer's inbox entry")

    async def mail() -> list[tuple[datetime, str, str, int]]:
        return [
            m
            for m in sink.mail()[before:]
            if m[1] == to and m[2].startswith("Alarm at") and m[0] >= tripped
        ]

    [(mailed_at, _, _, size), *_] = await wait_for(mail, "the customer's e-mail")
    latencies = dict(
        await db.rows(
            "SELECT audience, latency_ms FROM notify.alarm_notifications"
            " WHERE alarm_id = %s AND event_name = 'alert.raised'",
            alarm_id,
        )
    )

    # Back to normal: reset and close, the clear, the operator's acknowledgement, and
    # notify's outbox drained (the clear's mail to the customer).
    await write_command(sim.port, RESET, CLOSE)
    if sim.device(ISOLATOR_UNIT).vendor["state"] != CLOSED:
        raise RuntimeError("the isolator did not close")

    async def settled() -> bool:
        open_alarms = await db.rows(
            "SELECT id, active FROM alerts.alarms WHERE gateway_id = %s AND closed_at IS NULL",
            GATEWAY,
        )
        for aid, active in open_alarms:
            if not active:
                await asyncio.to_thread(
                    store.acknowledge, aid, operator_id, Scope.of_region(Region.AU)
                )
        pending = await db.rows("SELECT 1 FROM notify.deliveries WHERE status = 'pending' LIMIT 1")
        return not open_alarms and not pending

    await wait_for(settled, "the alarm to clear and close")
    return {
        "detect": datetime.fromisoformat(since) - tripped,
        "alarm": raised_at - tripped,
        "inbox": inbox_at - tripped,
        "mail": mailed_at - tripped,
        "recorded_customer_ms": latencies.get("customer"),
        "recorded_staff_ms": latencies.get("staff"),
        "size": size,
    }


# ----- the run ----------------------------------------------------------------------------
async def run(args: argparse.Namespace) -> None:
    with bench_database() as url, stamping_sink() as (sink, smtp_port):
        async with demo_stack(
            broker="mosquitto",
            console=Console(file=io.StringIO()),
            database_url=url,
            smtp=("127.0.0.1", smtp_port),
        ) as stack:
            db = Db(stack)
            customer = next(p for p in stack.people if p.role == "customer" and p.region == "au")
            await wait_for(
                lambda: db.rows(
                    "SELECT 1 FROM registry.devices WHERE gateway_id = %s AND kind = 'isolator'",
                    GATEWAY,
                ),
                "the isolator to be discovered",
                60,
            )
            [(operator_id,)] = await wait_for(
                lambda: db.rows(
                    "SELECT user_id FROM notify.people WHERE role = 'operator' AND region = 'au'"
                ),
                "notify to know the au operator",
            )
            await wait_for(
                lambda: db.rows("SELECT 1 FROM notify.people WHERE role = 'customer'"),
                "notify to know the customer",
            )
            store = AlarmStore(stack.pool)
            rng = random.Random(args.seed)
            await trip_round(stack, db, sink, store, operator_id, customer.email, 0.0)  # warm-up
            rounds = []
            for i in range(args.rounds):
                phase = rng.uniform(0, args.phase_s)
                rounds.append(
                    await trip_round(stack, db, sink, store, operator_id, customer.email, phase)
                )
                print(
                    f"round {i + 1}: alarm {rounds[-1]['alarm'].total_seconds():.3f} s,"
                    f" mail {rounds[-1]['mail'].total_seconds():.3f} s",
                    flush=True,
                )
            size = rounds[-1]["size"]
            modbus = await modbus_reads(stack.sims["au"].port, 200)
            smtp = await asyncio.to_thread(smtp_sends, smtp_port, customer.email, size, 100)

    def of(key: str) -> list[float]:
        return [r[key].total_seconds() for r in rounds]

    detect = of("detect")
    print(
        f"\n{args.rounds} trips of the au DC isolator (after 1 warm-up); agent poll interval"
        f" {POLL_INTERVAL_S:g} s; customer e-mail {size:,} bytes"
    )
    print(f"{'':<52} {'p50 ms':>9} {'p95 ms':>9} {'p99 ms':>9} {'min ms':>9} {'max ms':>9}")
    print(line("baseline: Modbus FC3 read of the isolator state", modbus))
    print(line("baseline: SMTP send, same size, same sink", smtp))
    floor = [statistics.median(modbus) + statistics.median(smtp)]
    print(line("baseline: the two together (p50 + p50)", floor))
    print(line("trip → agent's poll sees it (detail.since)", detect))
    for key, name in (
        ("alarm", "trip → (a) alarm row (first_raised_at)"),
        ("inbox", "trip → (b) customer's inbox entry"),
        ("mail", "trip → (c) e-mail in the sink"),
    ):
        print(line(name, of(key)))
        after = [t - d for t, d in zip(of(key), detect, strict=True)]
        print(line("    of which after the poll saw it", after))
    for key, name in (
        ("recorded_customer_ms", "recorded alarm → notification (customer)"),
        ("recorded_staff_ms", "recorded alarm → notification (staff)"),
    ):
        values = [r[key] / 1000 for r in rounds if r[key] is not None]
        if values:
            print(line(f"{name}, n={len(values)}", values))
    mail = of("mail")
    worker = [m - i for m, i in zip(mail, of("inbox"), strict=True)]
    print(line(f"inbox entry → e-mail (worker idles {WORKER_IDLE_S:g} s)", worker))
    print(
        f"\nthe poll wait is {statistics.fmean(detect) / statistics.fmean(mail):.0%} of the"
        f" mean trip → e-mail ({statistics.fmean(detect) * 1000:.0f} of"
        f" {statistics.fmean(mail) * 1000:.0f} ms; expected mean wait {POLL_INTERVAL_S / 2:g} s);"
        f" the worker's idle wait {statistics.fmean(worker) / statistics.fmean(mail):.0%};"
        f" e-mail p50 = {statistics.median(mail) / floor[0]:.0f}x the raw I/O floor"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument(
        "--phase-s",
        type=float,
        default=10.0,
        help="a random pause of up to this before each trip (10 s: both the agent's 2 s poll"
        " and the worker's 5 s idle wait are met at any phase)",
    )
    parser.add_argument("--seed", type=int, default=16)
    args = parser.parse_args()
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
