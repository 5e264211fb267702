"""What the regional broker's security costs: TLS + passwords + the rendered ACL against a
plain, anonymous, ACL-free Mosquitto, in the same run (issue 12).

Two private Mosquitto 2.0.11 brokers, same generated settings (persistence on,
``set_tcp_nodelay``, inflight 100), started with the file limit raised for 10,000+
connections (``potr.fleet.inherited_nofile``):

* **plain**: development mode, one plain listener, anonymous, no password file, no ACL;
* **secure**: ``PrivateMosquitto(security=BrokerSecurity(...))`` — TLS password listener,
  a ``$7$`` password per gateway (``--gateways`` of them) and per ingest worker, the ACL
  from ``broker_config.acl.render_acl`` (gateway ``pattern`` lines, ingest ``user``
  blocks). Its plain loopback listener (same passwords and ACL, no TLS) splits the cost
  of TLS from that of authentication and ACL checks.

**Throughput**: ``--publishers`` gateways (over ``--publisher-procs`` processes; paho, a
network thread each, ``TCP_NODELAY`` as the agent sets it) publish ``--payload-bytes``
QoS 1 to their own ``potr/v1/au/<id>/telemetry``, ``--window`` in flight each, refilled
at PUBACK; ``--subscribers`` processes read them as ingest does
(``$share/ingest/potr/v1/au/+/telemetry`` as ``_ingest/au-<n>``, MQTT 5, Receive Maximum
1,000). Publishers also hold back while more than ``--backlog`` messages are published
but not yet received, so the run measures what flows end to end rather than filling the
broker's queue (which drops the newest past ``max_queued_messages``). Messages/s =
deliveries in the ``--seconds`` window after ``--warmup``; publish→PUBACK latency of the
messages published in it; CPU of the broker and of the clients from ``/proc/<pid>/stat``.
Plain and secure runs alternate ``--rounds`` times (medians: other load on the machine
moves single runs); the secure/plain ratio of messages/s is checked against 0.7.

**Connect storm**: ``--gateways`` connections opened as fast as ``--storm-procs``
processes x ``--storm-threads`` threads can, each thread one blocking TCP (+ TLS)
connect and an MQTT 5 CONNECT/CONNACK at a time, every connection held until all are
in. The CONNECT is written by hand: paho would add a network loop per client, and a
thread per handshake in flight costs less client CPU than asyncio's TLS (measured here:
1.2 vs 1.7 ms per connection); either way the client competes with the broker for the
2 cores, so its CPU is reported too.

    .venv/bin/python -m bench.broker_security      # 10,000 gateways, 3 rounds of 10 s runs
    .venv/bin/python -m bench.broker_security --gateways 1000 --seconds 5 --rounds 1  # quick
"""

from __future__ import annotations

import argparse
import array
import contextlib
import json
import multiprocessing as mp
import os
import socket
import ssl
import statistics
import struct
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from bench.edge_footprint import cpu_seconds, status_kib
from broker_config.acl import render_acl
from broker_config.passwords import mosquitto_hash, new_secret, render_password_file
from contracts.identities import BrokerIdentity
from contracts.topics import Region
from potr.fleet import inherited_nofile
from potr.servers.mosquitto import BrokerSecurity, PrivateMosquitto

INGEST_FILTER = "$share/ingest/potr/v1/au/+/telemetry"
TARGET_RATIO = 0.7
_SPAWN = mp.get_context("spawn")  # never fork a process holding threads and brokers

#: (username = client id, password or None for anonymous)
Credential = tuple[str, str | None]


@dataclass(frozen=True)
class Endpoint:
    """Where a client connects; ``ca_file`` set = TLS, verified against it."""

    host: str
    port: int
    ca_file: str | None = None

    def tls_context(self) -> ssl.SSLContext | None:
        return None if self.ca_file is None else ssl.create_default_context(cafile=self.ca_file)


# ----- identities and brokers ----------------------------------------------------------
@dataclass(frozen=True)
class Identities:
    gateways: list[Credential]
    ingest: list[Credential]

    def security(self) -> BrokerSecurity:
        users = {u: pw for u, pw in (*self.gateways, *self.ingest) if pw is not None}
        hashes = {u: mosquitto_hash(pw) for u, pw in users.items()}
        return BrokerSecurity(
            passwords=render_password_file(hashes),
            acl=render_acl([Region.AU], [BrokerIdentity(u, Region.AU) for u in users]),
            dev_plain=True,
        )


def make_identities(gateways: int, ingest_workers: int) -> Identities:
    return Identities(
        [(f"bench-gw-{n:05d}", new_secret()) for n in range(gateways)],
        [(f"_ingest/au-{n}", new_secret()) for n in range(ingest_workers)],
    )


@contextlib.contextmanager
def brokers(identities: Identities) -> Iterator[tuple[PrivateMosquitto, PrivateMosquitto]]:
    """(plain, secure), both running, both with the raised file limit."""
    plain = PrivateMosquitto()
    secure = PrivateMosquitto(security=identities.security())
    try:
        with inherited_nofile():
            plain.start()
            secure.start()
        yield plain, secure
    finally:
        plain.cleanup()
        secure.cleanup()


def endpoints(
    plain: PrivateMosquitto, secure: PrivateMosquitto
) -> tuple[tuple[int, Endpoint], tuple[int, Endpoint], Endpoint]:
    """(plain broker pid, its listener), (secure broker pid, its TLS password listener),
    and the secure broker's plain listener (passwords and ACL without TLS)."""
    assert plain.proc is not None
    assert secure.proc is not None
    assert plain.plain_port is not None
    assert secure.tls_port is not None
    assert secure.plain_port is not None
    return (
        (plain.proc.pid, Endpoint("127.0.0.1", plain.plain_port)),
        (secure.proc.pid, Endpoint("127.0.0.1", secure.tls_port, str(secure.ca_file))),
        Endpoint("127.0.0.1", secure.plain_port),
    )


def _nodelay(sock: Any) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _paho(ep: Endpoint, cred: Credential) -> paho.Client:
    c = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=cred[0], protocol=MQTTProtocolVersion.MQTTv5
    )
    if cred[1] is not None:
        c.username_pw_set(cred[0], cred[1])
    context = ep.tls_context()
    if context is not None:
        c.tls_set_context(context)
    return c


# ----- throughput: publishers --------------------------------------------------------------
@dataclass(frozen=True)
class Flow:
    """End-to-end flow control shared by every process of a run: one counter slot per
    publisher and per subscriber, each written by one client only."""

    published: Any  # multiprocessing Array('q')
    received: Any  # multiprocessing Array('q')
    backlog: int

    def open(self) -> bool:
        outstanding: int = sum(self.published[:]) - sum(self.received[:])
        return outstanding < self.backlog


class _Publisher:
    """One gateway's paho client keeping up to ``window`` QoS 1 publishes in flight."""

    def __init__(
        self,
        ep: Endpoint,
        cred: Credential,
        slot: int,
        flow: Flow,
        payload: bytes,
        window: int,
        nodelay: bool,
    ) -> None:
        self.topic = f"potr/v1/au/{cred[0]}/telemetry"
        self.slot, self.flow, self.payload, self.window = slot, flow, payload, window
        self.running = False
        self.lock = threading.Lock()  # never held while calling paho: no lock-order deadlock
        self.sent: dict[int, float] = {}
        self.early: dict[int, float] = {}
        self.held = 0  # window slots waiting for the flow to open
        self.times = array.array("d")  # (publish, PUBACK) monotonic time pairs
        self.refused: Counter[str] = Counter()
        self.connected = threading.Event()
        c = _paho(ep, cred)
        c.max_inflight_messages_set(window)
        if nodelay:
            c.on_socket_open = lambda _c, _u, s: _nodelay(s)
        c.on_connect = lambda *_a: self.connected.set()
        c.on_publish = self._acked
        self.client = c
        c.connect(ep.host, ep.port, keepalive=60)
        c.loop_start()

    def next(self) -> None:
        """Publish one more if the flow allows, else hold its window slot."""
        if not self.running:
            return
        if not self.flow.open():
            with self.lock:
                self.held += 1
            return
        t = time.monotonic()
        info = self.client.publish(self.topic, self.payload, qos=1)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            self.refused[f"publish rc {info.rc}"] += 1
            return
        with self.lock:
            self.flow.published[self.slot] += 1
            acked = self.early.pop(info.mid, None)
            if acked is None:
                self.sent[info.mid] = t
            else:
                self.times.extend((t, acked))

    def release_held(self) -> None:
        while self.running and self.flow.open():
            with self.lock:
                if not self.held:
                    return
                self.held -= 1
            self.next()

    def _acked(self, _c: Any, _u: Any, mid: int, rc: Any, _p: Any) -> None:
        now = time.monotonic()
        if rc.is_failure:
            self.refused[str(rc)] += 1
        with self.lock:
            t = self.sent.pop(mid, None)
            if t is None:  # the PUBACK beat next()'s bookkeeping
                self.early[mid] = now
            elif not rc.is_failure:
                self.times.extend((t, now))
        self.next()

    def in_flight(self) -> int:
        with self.lock:
            return len(self.sent)


def publisher_proc(
    ep: Endpoint,
    creds: list[tuple[int, Credential]],
    flow: Flow,
    args: dict[str, Any],
    ready: Event,
    go: Event,
    stop: Event,
    out: Any,
) -> None:
    payload = os.urandom(args["payload_bytes"])
    pubs = [
        _Publisher(ep, cred, slot, flow, payload, args["window"], args["nodelay"])
        for slot, cred in creds
    ]
    for p in pubs:
        if not p.connected.wait(30):
            raise RuntimeError(f"{p.topic}: not connected in 30 s")
    ready.set()
    go.wait()
    for p in pubs:
        p.running = True
        for _ in range(p.window):
            p.next()
    while not stop.wait(0.001):  # re-open held window slots as the subscribers catch up
        for p in pubs:
            p.release_held()
    for p in pubs:
        p.running = False
    deadline = time.monotonic() + 15
    while any(p.in_flight() for p in pubs) and time.monotonic() < deadline:
        time.sleep(0.01)  # the last window's PUBACKs: nothing to wait on but the count
    for p in pubs:
        p.client.disconnect()
        p.client.loop_stop()
    unacked = sum(p.in_flight() for p in pubs)  # after loop_stop: no callback still running
    times = array.array("d")
    refused: Counter[str] = Counter()
    for p in pubs:
        times.extend(p.times)
        refused.update(p.refused)
    out.put({"times": times.tobytes(), "refused": dict(refused), "unacked": unacked})


# ----- throughput: the ingest-like subscribers ----------------------------------------------
def subscriber_proc(
    ep: Endpoint, cred: Credential, slot: int, flow: Flow, ready: Event, stop: Event, out: Any
) -> None:
    times = array.array("d")
    c = _paho(ep, cred)

    def on_message(_c: Any, _u: Any, _m: Any) -> None:
        times.append(time.monotonic())
        flow.received[slot] += 1  # one writer: this network thread

    c.on_connect = lambda client, *_a: client.subscribe(INGEST_FILTER, qos=1)
    c.on_subscribe = lambda *_a: ready.set()
    c.on_message = on_message
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.ReceiveMaximum = 1000  # as ingest asks
    c.connect(ep.host, ep.port, keepalive=60, properties=props)
    c.loop_start()
    stop.wait()
    c.disconnect()
    c.loop_stop()
    out.put({"times": times.tobytes()})


@dataclass
class Throughput:
    label: str
    msgs_per_s: float
    acked_per_s: float
    p50_ms: float
    p99_ms: float
    published: int
    received: int
    refused: dict[str, int]
    unacked: int
    broker_cpu_pct: float
    broker_us_per_msg: float
    clients_cpu_pct: float


def _pct(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run_throughput(
    label: str,
    broker_pid: int,
    ep: Endpoint,
    publishers: list[Credential],
    subscribers: list[Credential],
    args: argparse.Namespace,
) -> Throughput:
    out = _SPAWN.Queue()
    go, pubs_stop, subs_stop = _SPAWN.Event(), _SPAWN.Event(), _SPAWN.Event()
    flow = Flow(
        _SPAWN.Array("q", len(publishers), lock=False),
        _SPAWN.Array("q", len(subscribers), lock=False),
        args.backlog,
    )
    subs: list[Any] = []
    for slot, cred in enumerate(subscribers):
        ready = _SPAWN.Event()
        proc = _SPAWN.Process(
            target=subscriber_proc,
            args=(ep, cred, slot, flow, ready, subs_stop, out),
            daemon=True,
        )
        proc.start()
        if not ready.wait(30):
            raise RuntimeError(f"{label}: subscriber {cred[0]} did not subscribe in 30 s")
        subs.append(proc)
    numbered = list(enumerate(publishers))
    knobs = {k: getattr(args, k) for k in ("payload_bytes", "window", "nodelay")}
    pubs: list[Any] = []
    for i in range(args.publisher_procs):
        ready = _SPAWN.Event()
        proc = _SPAWN.Process(
            target=publisher_proc,
            args=(ep, numbered[i :: args.publisher_procs], flow, knobs, ready, go, pubs_stop, out),
            daemon=True,
        )
        proc.start()
        if not ready.wait(60):
            raise RuntimeError(f"{label}: publishers did not connect in 60 s")
        pubs.append(proc)
    pids = [p.pid for p in (*subs, *pubs)]
    go.set()
    time.sleep(args.warmup)  # the measured window is wall-clock time by definition
    t0, b0, c0 = time.monotonic(), cpu_seconds(broker_pid), _cpu_sum(pids)
    time.sleep(args.seconds)
    t1, b1, c1 = time.monotonic(), cpu_seconds(broker_pid), _cpu_sum(pids)
    pubs_stop.set()
    results = [out.get(timeout=60) for _ in pubs]
    deadline = time.monotonic() + 30
    while sum(flow.received[:]) < sum(flow.published[:]) and time.monotonic() < deadline:
        time.sleep(0.01)  # the subscribers taking the last messages: bounded
    subs_stop.set()
    received_at = array.array("d")
    for _ in subs:
        received_at.frombytes(out.get(timeout=60)["times"])
    for proc in (*pubs, *subs):
        proc.join(30)
    pairs = array.array("d")
    refused: Counter[str] = Counter()
    for r in results:
        pairs.frombytes(r["times"])
        refused.update(r["refused"])
    window = t1 - t0
    starts, acks = pairs[0::2], pairs[1::2]
    latencies = [a - s for s, a in zip(starts, acks, strict=True) if t0 <= s < t1]
    received_in_window = sum(1 for t in received_at if t0 <= t < t1)
    return Throughput(
        label=label,
        msgs_per_s=received_in_window / window,
        acked_per_s=sum(1 for a in acks if t0 <= a < t1) / window,
        p50_ms=_pct(latencies, 0.50) * 1000,
        p99_ms=_pct(latencies, 0.99) * 1000,
        published=len(acks),
        received=len(received_at),
        refused=dict(refused),
        unacked=sum(r["unacked"] for r in results),
        broker_cpu_pct=100 * (b1 - b0) / window,
        broker_us_per_msg=1e6 * (b1 - b0) / max(1, received_in_window),
        clients_cpu_pct=100 * (c1 - c0) / window,
    )


def _cpu_sum(pids: Sequence[int | None]) -> float:
    return sum(cpu_seconds(pid) for pid in pids if pid is not None)


# ----- connect storm ---------------------------------------------------------------------------
def _utf8(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("!H", len(raw)) + raw


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def connect_packet(client_id: str, password: str | None, keepalive_s: int) -> bytes:
    """An MQTT 5 CONNECT, clean start, no properties; username = client id when a
    password is given (a gateway's username is its id)."""
    flags = 0x02 | (0xC0 if password is not None else 0)
    body = _utf8("MQTT") + bytes([5, flags]) + struct.pack("!H", keepalive_s) + b"\x00"
    body += _utf8(client_id)
    if password is not None:
        body += _utf8(client_id) + _utf8(password)
    return b"\x10" + _varint(len(body)) + body


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed before CONNACK")
        data += chunk
    return data


def read_connack(sock: socket.socket) -> int:
    """The CONNACK's reason code (0 = accepted)."""
    head = _recv_exactly(sock, 1)[0]
    if head >> 4 != 2:
        raise ConnectionError(f"expected CONNACK, got packet type {head >> 4}")
    length, shift = 0, 0
    while True:
        byte = _recv_exactly(sock, 1)[0]
        length |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    return _recv_exactly(sock, length)[1]


class _StormThread(threading.Thread):
    """Connects its share one after another and keeps every connection open."""

    def __init__(self, ep: Endpoint, context: ssl.SSLContext | None, share: list[Credential]):
        super().__init__(daemon=True)
        self.ep, self.context, self.share = ep, context, share
        self.go = threading.Event()
        self.socks: list[socket.socket] = []
        self.latencies: list[float] = []
        self.failures: Counter[str] = Counter()
        self.finished = 0.0

    def run(self) -> None:
        self.go.wait()
        for cred in self.share:
            t = time.monotonic()
            try:
                sock = socket.create_connection((self.ep.host, self.ep.port), timeout=60)
                if self.context is not None:
                    sock = self.context.wrap_socket(sock, server_hostname=self.ep.host)
                sock.sendall(connect_packet(cred[0], cred[1], keepalive_s=900))
                code = read_connack(sock)
            except OSError as exc:  # ssl.SSLError, timeouts and refusals included
                self.failures[type(exc).__name__] += 1
                continue
            if code != 0:
                self.failures[f"CONNACK 0x{code:02x}"] += 1
                sock.close()
                continue
            self.latencies.append(time.monotonic() - t)
            self.socks.append(sock)
        self.finished = time.monotonic()


def _alive(sock: socket.socket) -> bool:
    """Still connected: nothing to read, no EOF."""
    sock.setblocking(False)
    try:
        return sock.recv(1) != b""
    except (BlockingIOError, ssl.SSLWantReadError):
        return True
    except OSError:
        return False


def storm_proc(
    ep: Endpoint,
    creds: list[Credential],
    threads: int,
    ready: Event,
    go: Event,
    release: Event,
    out: Any,
) -> None:
    context = ep.tls_context()
    workers = [_StormThread(ep, context, creds[i::threads]) for i in range(threads)]
    for w in workers:
        w.start()
    ready.set()
    go.wait()
    cpu0 = time.process_time()
    for w in workers:
        w.go.set()
    for w in workers:
        w.join()
    out.put(
        {
            "ok": sum(len(w.socks) for w in workers),
            "failures": dict(sum((w.failures for w in workers), Counter())),
            "latencies": [x for w in workers for x in w.latencies],
            "finished": max(w.finished for w in workers),
            "cpu_s": time.process_time() - cpu0,
        }
    )
    release.wait()
    socks = [s for w in workers for s in w.socks]
    out.put({"alive": sum(1 for s in socks if _alive(s))})
    for sock in socks:
        with contextlib.suppress(OSError):
            sock.setblocking(True)
            sock.sendall(b"\xe0\x00")  # DISCONNECT
        sock.close()


@dataclass
class Storm:
    label: str
    connections: int
    ok: int
    failures: dict[str, int]
    alive_at_end: int
    seconds: float
    per_s: float
    p50_ms: float
    p99_ms: float
    broker_cpu_s: float
    broker_ms_per_conn: float
    clients_cpu_s: float
    broker_rss_before_mib: float
    broker_rss_after_mib: float


def run_storm(
    label: str, broker_pid: int, ep: Endpoint, creds: list[Credential], args: argparse.Namespace
) -> Storm:
    out = _SPAWN.Queue()
    go, release = _SPAWN.Event(), _SPAWN.Event()
    procs = []
    for i in range(args.storm_procs):
        ready = _SPAWN.Event()
        proc = _SPAWN.Process(
            target=storm_proc,
            args=(ep, creds[i :: args.storm_procs], args.storm_threads, ready, go, release, out),
            daemon=True,
        )
        proc.start()
        if not ready.wait(60):
            raise RuntimeError(f"{label}: storm process not ready in 60 s")
        procs.append(proc)
    rss0 = status_kib(broker_pid, "VmRSS") / 1024
    b0 = cpu_seconds(broker_pid)
    t_go = time.monotonic()
    go.set()
    shares = [out.get(timeout=900) for _ in procs]
    b1 = cpu_seconds(broker_pid)
    rss1 = status_kib(broker_pid, "VmRSS") / 1024
    release.set()
    alive = sum(out.get(timeout=120)["alive"] for _ in procs)
    for proc in procs:
        proc.join(60)
    ok = sum(s["ok"] for s in shares)
    failures: Counter[str] = Counter()
    for s in shares:
        failures.update(s["failures"])
    seconds = max(s["finished"] for s in shares) - t_go
    latencies = [x for s in shares for x in s["latencies"]]
    return Storm(
        label=label,
        connections=len(creds),
        ok=ok,
        failures=dict(failures),
        alive_at_end=alive,
        seconds=seconds,
        per_s=ok / seconds,
        p50_ms=_pct(latencies, 0.5) * 1000,
        p99_ms=_pct(latencies, 0.99) * 1000,
        broker_cpu_s=b1 - b0,
        broker_ms_per_conn=1000 * (b1 - b0) / max(1, ok),
        clients_cpu_s=sum(s["cpu_s"] for s in shares),
        broker_rss_before_mib=rss0,
        broker_rss_after_mib=rss1,
    )


# ----- main ---------------------------------------------------------------------------------------
def _print_throughput(runs: list[Throughput]) -> None:
    base = runs[0].msgs_per_s
    print(
        f"\n{'throughput':<38} {'msg/s':>8} {'x plain':>7} {'p50 ms':>7} {'p99 ms':>7}"
        f" {'broker':>7} {'µs/msg':>7} {'clients':>8}"
    )
    for r in runs:
        print(
            f"{r.label:<38} {r.msgs_per_s:>8,.0f} {r.msgs_per_s / base:>7.2f} {r.p50_ms:>7.2f}"
            f" {r.p99_ms:>7.2f} {r.broker_cpu_pct:>6.0f}% {r.broker_us_per_msg:>7.1f}"
            f" {r.clients_cpu_pct:>7.0f}%"
        )
        print(
            f"    PUBACKed {r.published:,} ({r.acked_per_s:,.0f}/s in the window),"
            f" received {r.received:,}, refused {r.refused or 0}, unacked {r.unacked}"
        )


def _print_storms(storms: list[Storm]) -> None:
    print(
        f"\n{'connect storm':<38} {'conn/s':>7} {'s':>6} {'p50 ms':>7} {'p99 ms':>7}"
        f" {'broker s':>8} {'ms/conn':>7} {'clients s':>9} {'broker RSS MiB':>14}"
    )
    for s in storms:
        print(
            f"{s.label:<38} {s.per_s:>7,.0f} {s.seconds:>6.2f} {s.p50_ms:>7.1f} {s.p99_ms:>7.1f}"
            f" {s.broker_cpu_s:>8.2f} {s.broker_ms_per_conn:>7.3f} {s.clients_cpu_s:>9.2f}"
            f" {s.broker_rss_before_mib:>6.0f} → {s.broker_rss_after_mib:<5.0f}"
        )
        print(
            f"    {s.ok:,}/{s.connections:,} connected, failures {s.failures or 0},"
            f" still connected when all were in {s.alive_at_end:,}"
        )


def _throughput(
    plain: PrivateMosquitto, secure: PrivateMosquitto, ids: Identities, args: argparse.Namespace
) -> dict[str, Any]:
    n, m = args.publishers, args.subscribers
    gateways, ingest = ids.gateways[:n], ids.ingest[:m]
    anonymous: list[Credential] = [(gid, None) for gid, _ in gateways]
    plain_subs: list[Credential] = [(f"bench-ingest-{i}", None) for i in range(m)]
    print(
        f"throughput: {n} publishers in {args.publisher_procs} processes, {args.payload_bytes} B"
        f" QoS 1, window {args.window}, backlog ≤ {args.backlog}; {m} subscriber(s)"
        f" {INGEST_FILTER}; {args.seconds:g} s after {args.warmup:g} s"
    )
    (p_pid, p_ep), (s_pid, s_ep), a_ep = endpoints(plain, secure)
    runs: list[Throughput] = []
    for _ in range(args.rounds):
        runs.append(
            run_throughput(
                "plain: no TLS, anonymous, no ACL",
                p_pid,
                p_ep,
                anonymous,
                plain_subs,
                args,
            )
        )
        runs.append(
            run_throughput("secure: TLS + passwords + ACL", s_pid, s_ep, gateways, ingest, args)
        )
    runs.append(
        run_throughput("split: passwords + ACL, no TLS", s_pid, a_ep, gateways, ingest, args)
    )
    _print_throughput(runs)
    secure_runs = [r for r in runs if r.label.startswith("secure")]
    plain_runs = [r for r in runs if r.label.startswith("plain")]

    def median(rs: list[Throughput], key: str) -> float:
        return float(statistics.median(getattr(r, key) for r in rs))

    ratio = median(secure_runs, "msgs_per_s") / median(plain_runs, "msgs_per_s")
    verdict = "met" if ratio >= TARGET_RATIO else "NOT met"
    print(f"secure / plain messages/s = {ratio:.2f} (target ≥ {TARGET_RATIO}: {verdict})")
    # What a broker-bound region would carry: the clients share these 2 cores here.
    cpu_ratio = median(plain_runs, "broker_us_per_msg") / median(secure_runs, "broker_us_per_msg")
    print(f"plain / secure broker CPU per message = {cpu_ratio:.2f}")
    return {"throughput": [asdict(r) for r in runs], "ratio": ratio, "broker_cpu_ratio": cpu_ratio}


def _storms(
    plain: PrivateMosquitto, secure: PrivateMosquitto, ids: Identities, args: argparse.Namespace
) -> dict[str, Any]:
    print(
        f"\nconnect storm: {args.gateways:,} connections, {args.storm_procs} client processes"
        f" x {args.storm_threads} threads (one connect in flight each)"
    )
    anonymous: list[Credential] = [(gid, None) for gid, _ in ids.gateways]
    (p_pid, p_ep), (s_pid, s_ep), a_ep = endpoints(plain, secure)
    storms = [
        run_storm("plain: no TLS, anonymous", p_pid, p_ep, anonymous, args),
        run_storm("split: passwords, no TLS", s_pid, a_ep, ids.gateways, args),
        run_storm("secure: TLS + passwords", s_pid, s_ep, ids.gateways, args),
    ]
    _print_storms(storms)
    return {"storms": [asdict(s) for s in storms]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gateways", type=int, default=10_000, help="identities; storm size")
    parser.add_argument("--publishers", type=int, default=8, help="gateways publishing")
    parser.add_argument("--publisher-procs", type=int, default=2)
    parser.add_argument("--subscribers", type=int, default=1, help="ingest-like subscribers")
    parser.add_argument("--payload-bytes", type=int, default=1536)
    parser.add_argument("--window", type=int, default=20, help="QoS 1 in flight per publisher")
    parser.add_argument("--backlog", type=int, default=1000, help="published, not yet received")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured window per run")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=3, help="plain/secure pairs, alternated")
    parser.add_argument(
        "--nodelay", action=argparse.BooleanOptionalAction, default=True, help="client TCP_NODELAY"
    )
    parser.add_argument("--storm-procs", type=int, default=2)
    parser.add_argument("--storm-threads", type=int, default=16, help="per storm process")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-storm", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if args.publishers > args.gateways:
        parser.error("--publishers must not exceed --gateways")

    t = time.monotonic()
    ids = make_identities(args.gateways, args.subscribers)
    with brokers(ids) as (plain, secure):
        print(
            f"{args.gateways:,} gateway identities hashed, password file and ACL rendered,"
            f" brokers up in {time.monotonic() - t:.1f} s"
        )
        figures: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}}
        if not args.skip_throughput:
            figures |= _throughput(plain, secure, ids, args)
        if not args.skip_storm:
            figures |= _storms(plain, secure, ids, args)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
