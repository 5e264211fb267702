"""One virtual gateway as a pure state machine: its stream, its buffer, its window.

No sockets and no clocks of its own: the driver passes ``now`` (monotonic real seconds)
and tells it about connects, PUBACKs and ``stored`` messages; the gateway says what to
publish next. Seq allocation and watermark coverage come from :mod:`contracts.streams`,
the messages from :mod:`contracts.messages`, as in the real agent:

* every batch gets the next seq of the gateway's one stream and stays buffered until a
  ``stored`` watermark covers it (or, with ``expect_stored`` off, until its PUBACK);
* a PUBACKed batch not covered within ``stored_timeout_s`` is sent again;
* a lost connection puts the batches in flight back into the queue (oldest first);
* sends go through a token bucket, so a backfill after an outage is paced;
* received ``cmd``/``config`` documents are answered by :mod:`simulators.fleet.control`
  (created on the first one): ``cmd_ack`` and retained ``config_state`` take the next
  seqs of the same stream and are buffered like batches (a superseded ``config_state``
  still waiting is resent unretained, so the retained one stays the newest).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

from contracts.messages import BirthMsg, CmdAck, ConfigState, StateMsg, StoredMsg
from contracts.signing import TrustedKeys
from contracts.streams import covered, next_seq
from contracts.timeutil import utc_now
from contracts.topics import Kind, topic
from pacing import TokenBucket
from simulators.fleet.control import GatewayControl, StateAnswer, virtual_devices
from simulators.fleet.spec import FleetSpec, GatewayPlan
from simulators.fleet.stats import WorkerStats
from simulators.fleet.telemetry import (
    SitePhysics,
    device_ids,
    device_infos,
    readings,
    sample_times,
    telemetry_batch,
)

AGENT_VERSION = "fleet-sim-1"


@dataclass(slots=True)
class Buffered:
    """One batch (or control answer) kept until the cloud says it is stored."""

    seq: int
    payload: bytes
    values: int
    readings: int
    first_sent: float | None = None
    acked_at: float | None = None
    sends: int = 0
    #: Produced while the link was down: its first send is a backfill.
    offline: bool = False
    kind: Kind = Kind.TELEMETRY
    retain: bool = False

    @property
    def telemetry(self) -> bool:
        return self.kind is Kind.TELEMETRY


@dataclass(frozen=True, slots=True)
class Publish:
    topic: str
    payload: bytes
    retain: bool = False
    #: The batch's seq for telemetry; None for birth and state.
    seq: int | None = None


@dataclass
class VirtualGateway:
    plan: GatewayPlan
    spec: FleetSpec
    stream_id: UUID
    boot_id: str
    sim_first: datetime
    stats: WorkerStats
    last_seq: int = 0
    batches_made: int = 0
    connected: bool = False
    buffer: dict[int, Buffered] = field(default_factory=dict)
    #: Seqs waiting to be published, oldest first (a heap: resends jump back in order).
    queue: list[int] = field(default_factory=list)
    inflight: set[int] = field(default_factory=set)
    bucket: TokenBucket | None = None
    #: Public keys trusted for ``cmd``/``config`` (one set shared by a worker's gateways).
    trusted: TrustedKeys = field(default_factory=TrustedKeys)
    _control: GatewayControl | None = None

    def __post_init__(self) -> None:
        self.ids = device_ids(self.plan.gateway_id)
        self.physics = SitePhysics(
            self.plan.region, self.plan.pv_capacity_w, self.plan.seed, self.sim_first
        )
        burst = max(1.0, self.spec.send_rate)
        self.bucket = TokenBucket(self.spec.send_rate, burst, start=0.0)

    # ----- topics and the session's fixed messages -----------------------------------
    def topic(self, kind: Kind) -> str:
        return topic(self.plan.region, self.plan.gateway_id, kind)

    def state(self, online: bool) -> Publish:
        msg = StateMsg(online=online, boot_id=self.boot_id, ts=utc_now())
        return Publish(self.topic(Kind.STATE), msg.to_json(), retain=True)

    def birth(self) -> Publish:
        msg = BirthMsg(
            gateway_id=self.plan.gateway_id,
            region=self.plan.region,
            agent_version=AGENT_VERSION,
            stream_id=self.stream_id,
            boot_id=self.boot_id,
            poll_interval_s=self.spec.poll_interval_s,
            publish_interval_s=self.spec.cadence_s,
            devices=device_infos(self.plan.gateway_id, self.plan.pv_capacity_w),
            config_version=self._control.config_version if self._control else None,
            ts=utc_now(),
        )
        return Publish(self.topic(Kind.BIRTH), msg.to_json())

    # ----- producing ----------------------------------------------------------------
    def batch_due_at(self, t0: float, batch: int) -> float:
        """Real monotonic time at which batch ``batch`` (1-based) is complete."""
        return t0 + self.plan.phase_s + batch * self.spec.batch_interval_s

    def produce(self) -> int:
        """Sample the devices for the next batch and buffer it; return its seq."""
        self.batches_made += 1
        rows = []
        for ts in sample_times(
            self.sim_first,
            self.spec.poll_interval_s,
            self.batches_made,
            self.spec.samples_per_batch,
        ):
            rows.extend(readings(self.physics.sample(ts), self.ids))
        seq = self._next_seq()
        payload = telemetry_batch(self.stream_id, seq, rows)
        values = sum(1 for r in rows for v in r.values.values() if v is not None)
        self.buffer[seq] = Buffered(seq, payload, values, len(rows), offline=not self.connected)
        heapq.heappush(self.queue, seq)
        self.stats.count_produced(len(rows), values)
        return seq

    # ----- control --------------------------------------------------------------------
    @property
    def control(self) -> GatewayControl:
        """The gateway's control side (its devices' profiles and settings), made when the
        first document arrives: idle gateways cost nothing."""
        if self._control is None:
            self._control = GatewayControl(
                self.plan.gateway_id,
                virtual_devices(self.plan.gateway_id, self.plan.pv_capacity_w),
                self.trusted,
                fails=self.plan.fails,
            )
        return self._control

    def on_command(self, payload: bytes) -> int:
        """Verify, validate and apply a ``cmd``; buffer its acks; return how many."""
        self.stats.commands += 1
        answers = self.control.on_command(payload, utc_now())
        if not answers:
            self.stats.control_unanswered += 1
        for a in answers:
            seq = self._next_seq()
            msg = CmdAck(
                stream_id=self.stream_id,
                seq=seq,
                id=a.id,
                status=a.status,
                detail=a.detail,
                ts=utc_now(),
            )
            self._buffer_control(seq, Kind.CMD_ACK, msg.to_json())
            self.stats.cmd_acks += 1
        return len(answers)

    def on_config(self, payload: bytes) -> int:
        """Verify, validate and apply a ``config``; buffer its ``config_state`` (1) or
        nothing (0: an empty payload clears the retained config)."""
        self.stats.configs += 1
        state = self.control.on_config(payload, utc_now())
        if state is None:
            return 0
        self._buffer_config_state(state)
        return 1

    def _buffer_config_state(self, state: StateAnswer) -> None:
        for item in self.buffer.values():
            if item.kind is Kind.CONFIG_STATE:
                item.retain = False  # superseded: must not become the retained state
        seq = self._next_seq()
        msg = ConfigState(stream_id=self.stream_id, seq=seq, ts=utc_now(), **state.fields())
        self._buffer_control(seq, Kind.CONFIG_STATE, msg.to_json(), retain=True)
        self.stats.config_states += 1

    def _next_seq(self) -> int:
        seq = next_seq(self.last_seq)
        self.last_seq = seq
        return seq

    def _buffer_control(
        self, seq: int, kind: Kind, payload: bytes, *, retain: bool = False
    ) -> None:
        self.buffer[seq] = Buffered(
            seq, payload, 0, 0, offline=not self.connected, kind=kind, retain=retain
        )
        heapq.heappush(self.queue, seq)

    # ----- sending ------------------------------------------------------------------
    def next_send(self, now: float) -> Publish | None:
        """The next batch to publish, or None (not connected, window full, no token)."""
        if not self.connected or not self.queue or len(self.inflight) >= self.spec.max_inflight:
            return None
        assert self.bucket is not None
        if not self.bucket.try_take(now):
            return None
        seq = heapq.heappop(self.queue)
        item = self.buffer[seq]
        self.inflight.add(seq)
        if not item.telemetry:
            item.first_sent = item.first_sent or now
        elif item.first_sent is None:
            item.first_sent = now
            self.stats.count_sent()
            if item.offline:
                self.stats.backfilled += 1
        else:
            self.stats.count_resend()
        item.sends += 1
        return Publish(self.topic(item.kind), item.payload, retain=item.retain, seq=seq)

    def wake_at(self) -> float | None:
        """When a send blocked only by the token bucket becomes possible."""
        if self.connected and self.queue and len(self.inflight) < self.spec.max_inflight:
            assert self.bucket is not None
            return self.bucket.ready_at()
        return None

    def refused(self, seq: int) -> None:
        """The client library would not take the publish: queue it again."""
        self.inflight.discard(seq)
        heapq.heappush(self.queue, seq)
        self.stats.refused += 1

    def on_puback(self, seq: int, now: float, sent_at: float) -> None:
        self.inflight.discard(seq)
        item = self.buffer.get(seq)
        if item is None or item.telemetry:
            self.stats.puback_latency.add(now - sent_at)
        if item is None:
            return  # stored already covered it
        if item.acked_at is None and item.telemetry:
            self.stats.count_acked(item.readings, item.values)
        item.acked_at = now
        if not self.spec.expect_stored:
            del self.buffer[seq]

    def on_stored(self, msg: StoredMsg, now: float) -> int:
        """Release what the watermark covers; return how many batches it released."""
        if msg.stream_id != self.stream_id:
            return 0
        done = [s for s in self.buffer if covered(s, msg.upto_seq)]
        for seq in done:
            item = self.buffer.pop(seq)
            if not item.telemetry:
                self.stats.control_stored += 1
                continue
            if item.first_sent is not None:
                self.stats.stored_latency.add(now - item.first_sent)
            self.stats.count_stored(item.readings, item.values)
        if done:
            done_set = set(done)
            self.queue = [s for s in self.queue if s not in done_set]
            heapq.heapify(self.queue)
        return len(done)

    def requeue_stale(self, now: float) -> int:
        """PUBACKed batches not covered by ``stored`` within the timeout go out again."""
        limit = now - self.spec.stored_timeout_s
        stale = [
            s
            for s, b in self.buffer.items()
            if b.acked_at is not None and b.acked_at <= limit and s not in self.inflight
        ]
        queued = set(self.queue)
        for seq in stale:
            self.buffer[seq].acked_at = None
            if seq not in queued:
                heapq.heappush(self.queue, seq)
        return len(stale)

    def on_connected(self) -> None:
        self.connected = True

    def on_disconnected(self) -> None:
        """Whatever was in flight goes back to the queue (the agent's unacked rows)."""
        self.connected = False
        for seq in self.inflight:
            if seq in self.buffer:
                heapq.heappush(self.queue, seq)
        self.inflight.clear()

    @property
    def unstored(self) -> int:
        return len(self.buffer)

    def settled(self) -> bool:
        """Nothing left to do: everything acked (and stored, when expected)."""
        return not self.buffer if self.spec.expect_stored else not (self.queue or self.inflight)


def sim_first_sample(sim_start: datetime, plan: GatewayPlan, speed: float) -> datetime:
    """The gateway's sample grid origin: the fleet's start shifted by its phase."""
    return sim_start + timedelta(seconds=plan.phase_s * speed)
