"""One batch of inbound messages → one database transaction (no MQTT here).

Validation is pure (:mod:`cloud.ingest.validate`). Device keys are ingest's own
(``ingest.device_keys``), allocated in the batch's transaction; the registry hears of
them only through the events emitted in that transaction (``gateway.birth``,
``device.discovered``). Which gateways are registered, and in which region, ingest
reads from its own ``ingest.gateways`` (kept by the registry's ``gateway.registered`` /
``gateway.updated`` events, :mod:`cloud.ingest.handlers`): no call into the registry.

What the broker cannot check is checked here (issue 12, :class:`IngestLimits`): the
gateway is registered, in the topic's region and enabled; the message and its readings
are bounded and inside the time window; a gateway adds at most so many devices a day;
dead letters are bounded and rate-limited (:mod:`cloud.ingest.deadletters`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from cloud.adapters.mqtt import InboundMessage
from cloud.adapters.postgres import Connection, ConnectionPool
from cloud.events.outbox import Event, emit_many
from cloud.ingest import announce
from cloud.ingest import repository as repo
from cloud.ingest.coalesce import StoredNotice
from cloud.ingest.deadletters import (
    DeadLetterLimiter,
    DeadLetterRow,
    dead_letter_row,
    dead_letter_source,
)
from cloud.ingest.device_cap import admit_new_devices, birth_refusal, readings_refusal
from cloud.ingest.dropped import dropped_seqs
from cloud.ingest.gateways import GatewayCache, KnownGateway
from cloud.ingest.limits import IngestLimits
from cloud.ingest.validate import Accepted, BufferedGatewayMessage, Rejected, validate
from cloud.telemetry import RowTuple, TelemetryStore, partition_days
from contracts.events import device_status
from contracts.messages import (
    BirthMsg,
    CmdAck,
    ConfigState,
    EventMsg,
    StateMsg,
    TelemetryBatch,
)
from contracts.metrics import BY_NAME
from contracts.streams import advance
from contracts.timeutil import utc_now

log = logging.getLogger(__name__)
QUALITY = {"good": 0, "suspect": 1, "bad": 2}
_BAD = QUALITY["bad"]
_METRIC_IDS = {name: m.id for name, m in BY_NAME.items()}


#: Stream owners remembered (ownership never changes); cleared when this many are known.
_OWNER_CACHE_MAX = 100_000
#: Device keys remembered (a key never changes); cleared when this many are known.
_KEY_CACHE_MAX = 1_000_000


@dataclass(frozen=True)
class BatchOutcome:
    stored: list[StoredNotice]
    readings_added: int
    #: Dead letters written (a repeat of a stored one counts: it bumps ``repeats``).
    dead_letters: int
    #: Dead letters the rate limit held back (counted, not stored).
    dead_letters_suppressed: int = 0


class IngestPipeline:
    """Validate, resolve device keys, write readings and bookkeeping, all or nothing.

    Used by one thread at a time (the worker's writer): the caches and the dead-letter
    limiter are not locked.
    """

    def __init__(
        self,
        pool: ConnectionPool[Connection[Any]],
        store: TelemetryStore,
        *,
        limits: IngestLimits | None = None,
    ) -> None:
        self._pool = pool
        self._store = store
        self._limits = limits or IngestLimits()
        self._gateways = GatewayCache(self._limits.gateway_cache_s)
        self._dead_limiter = DeadLetterLimiter(self._limits.dead_letter_rate)
        self._device_ids: dict[tuple[str, str], int] = {}
        self._stream_gateways: dict[UUID, str] = {}

    @property
    def dead_letters_suppressed(self) -> int:
        """Dead letters not stored since start (rate limit)."""
        return self._dead_limiter.suppressed

    def log_suppressed(self) -> None:
        """Log how many dead letters the rate limit held back, once per summary
        interval (call it often: it does nothing until the interval is over)."""
        summary = self._dead_limiter.summary()
        if summary is not None:
            log.warning("%s", summary.describe())

    # -- the batch -----------------------------------------------------------------
    def process(self, batch: Sequence[InboundMessage]) -> BatchOutcome:
        """Store one batch in one transaction; raise (nothing committed) on failure."""
        now = utc_now()
        bounds = self._limits.bounds
        verdicts = [validate(m.topic, m.payload, now=now, bounds=bounds) for m in batch]
        verdicts = self._check_stream_owners(self._check_gateways(verdicts))
        # Per reading, not per value; the window is validation's (older readings are
        # quarantined), so no partition is ever created outside it.
        stamps = {r.ts for v in verdicts if isinstance(v, Accepted) for r in v.readings}
        self._store.ensure_partitions(
            partition_days(stamps, now.date(), past_days=bounds.past_days), today=now.date()
        )

        owners = self._stream_owners(verdicts)
        with self._pool.connection() as conn:
            keys, new_keys, refused = self._device_keys(
                conn, [v for v in verdicts if isinstance(v, Accepted)], now
            )
            cap = self._limits.max_new_devices_per_day
            verdicts = [_refuse_devices(v, refused, cap) for v in verdicts]
            accepted = [v for v in verdicts if isinstance(v, Accepted)]
            births = [v for v in accepted if isinstance(v.message, BirthMsg)]
            rows, last_seen, telemetry = self._reading_rows(
                accepted, keys, self._limits.announced_metrics
            )
            dead, suppressed = self._dead_letter_rows(batch, verdicts)
            repo.insert_dead_letters(conn, dead)
            for msg, verdict in zip(batch, verdicts, strict=True):
                if isinstance(verdict, Accepted):
                    self._record_session(conn, verdict, msg.received_at)
            repo.touch_sessions(conn, _last_messages(batch, verdicts))
            added = self._store.write_readings(conn, rows)
            buffered = [(v.source, v.message) for v in accepted]
            new_events = repo.insert_events(
                conn, [(s.gateway_id, m) for s, m in buffered if isinstance(m, EventMsg)]
            )
            new_acks = repo.insert_cmd_acks(
                conn, [(s.gateway_id, m) for s, m in buffered if isinstance(m, CmdAck)]
            )
            new_configs = repo.insert_config_states(
                conn, [(s.gateway_id, m) for s, m in buffered if isinstance(m, ConfigState)]
            )
            repo.upsert_device_reports(conn, _device_reports(accepted, keys))
            repo.upsert_last_seen(conn, last_seen, now)
            notices, repeats = self._advance_streams(conn, verdicts, owners)
            regions = {s.gateway_id: s.region.value for s, _ in buffered}
            event_devices = self._event_device_ids(conn, new_events, keys)
            described = _birth_devices(births)
            emit_many(
                conn,
                announce.SOURCE,
                [
                    *(_birth_event(v, keys) for v in births),
                    *(
                        announce.device_discovered(regions[gw], gw, local, dev)
                        for (gw, local), dev in sorted(new_keys.items())
                        if (gw, local) not in described
                    ),
                    *announce.telemetry_received(
                        [t for t in telemetry if (t.stream_id, t.seq) not in repeats], now
                    ),
                    *(
                        announce.gateway_event(
                            regions[gw], gw, e, event_devices.get((gw, e.device or ""))
                        )
                        for gw, e in new_events
                    ),
                    *(announce.command_acked(regions[gw], gw, a) for gw, a in new_acks),
                    *(announce.config_reported(regions[gw], gw, c) for gw, c in new_configs),
                ],
            )
        self._remember_keys(keys)  # committed: safe to remember
        self._remember_owners({s: gw for s, (_, gw) in owners.items()})
        return BatchOutcome(notices, added, len(dead), suppressed)

    def dead_letter(self, message: InboundMessage, reason: str) -> list[StoredNotice]:
        """Dead-letter a message the batch path keeps failing on, and count its seq.

        The dead letter and the stream's advance commit in one transaction, as for any
        rejected message: otherwise the stream's watermark would stop below this seq
        forever and the agent would resend it forever. The seq is counted only when the
        message comes from a registered gateway that owns its stream. Returns the
        ``stored`` notices to publish.
        """
        try:
            rejected = self._as_poison(message, reason)
        except Exception:
            log.exception("poison message on %s: checks failed; seq not counted", message.topic)
            rejected = Rejected(reason)
        rows, _ = self._dead_letter_rows([message], [rejected])
        owners = self._stream_owners([rejected])
        with self._pool.connection() as conn:
            repo.insert_dead_letters(conn, rows)
            notices, _ = self._advance_streams(conn, [rejected], owners)
        self._remember_owners({s: gw for s, (_, gw) in owners.items()})
        return notices

    def _as_poison(self, message: InboundMessage, reason: str) -> Rejected:
        verdict = validate(
            message.topic, message.payload, now=utc_now(), bounds=self._limits.bounds
        )
        [verdict] = self._check_stream_owners(self._check_gateways([verdict]))
        if isinstance(verdict, Rejected):
            return Rejected(f"{reason}; {verdict.reason}", verdict.source, verdict.stream_seq)
        msg = verdict.message
        seq = (msg.stream_id, msg.seq) if isinstance(msg, BufferedGatewayMessage) else None
        return Rejected(reason, verdict.source, seq)

    # -- steps ---------------------------------------------------------------------
    def _check_gateways(self, verdicts: list[Accepted | Rejected]) -> list[Accepted | Rejected]:
        """Unknown, disabled and other-region gateways become rejections (no seq salvage:
        their streams are not theirs to advance)."""
        mono = time.monotonic()
        known: dict[str, KnownGateway | None] = {}
        unread: set[str] = set()
        for gw in {v.source.gateway_id for v in verdicts if v.source is not None}:
            known[gw] = self._gateways.get(gw, mono)
            if known[gw] is None:
                unread.add(gw)
        if unread:
            with self._pool.connection() as conn:
                found = repo.gateway_records(conn, unread)
            for gw, (region, enabled) in found.items():
                known[gw] = record = KnownGateway(region, enabled)
                self._gateways.put(gw, record, mono)
        out: list[Accepted | Rejected] = []
        for v in verdicts:
            src = v.source
            if src is not None:
                gateway = known[src.gateway_id]
                if gateway is None:
                    v = Rejected(f"unknown gateway {src.gateway_id!r} (not in the registry)", src)
                elif gateway.region != src.region.value:
                    v = Rejected(
                        f"gateway {src.gateway_id!r} is registered in region "
                        f"{gateway.region!r}, topic says {src.region.value!r}",
                        src,
                    )
                elif not gateway.enabled:
                    v = Rejected(f"gateway {src.gateway_id!r} is disabled (revoked)", src)
            out.append(v)
        return out

    def _check_stream_owners(
        self, verdicts: list[Accepted | Rejected]
    ) -> list[Accepted | Rejected]:
        """A stream belongs to the gateway that first sent it: messages naming another
        gateway's stream are rejected and never counted toward that stream."""
        claims = [_stream_claim(v) for v in verdicts]
        unknown = {c[0] for c in claims if c is not None} - self._stream_gateways.keys()
        owners = {s: self._stream_gateways[s] for c in claims if c and (s := c[0]) not in unknown}
        if unknown:
            with self._pool.connection() as conn:
                found = repo.stream_gateways(conn, unknown)
            self._remember_owners(found)
            owners.update(found)
        out: list[Accepted | Rejected] = []
        for v, claim in zip(verdicts, claims, strict=True):
            if claim is not None:
                stream_id, gw = claim
                owner = owners.setdefault(stream_id, gw)  # first claimant of a new stream
                if owner != gw:
                    why = f"stream {stream_id} belongs to gateway {owner!r}"
                    if isinstance(v, Rejected):
                        why = f"{v.reason}; {why} (seq not counted)"
                    v = Rejected(why, v.source)
            out.append(v)
        return out

    def _remember_owners(self, owners: Mapping[UUID, str]) -> None:
        if len(self._stream_gateways) + len(owners) > _OWNER_CACHE_MAX:
            self._stream_gateways.clear()
        self._stream_gateways.update(owners)

    @staticmethod
    def _reading_rows(
        accepted: list[Accepted],
        ids: Mapping[tuple[str, str], int],
        announced: frozenset[str] = frozenset(),
    ) -> tuple[list[RowTuple], dict[int, tuple[str, datetime]], list[announce.TelemetryStored]]:
        rows: list[RowTuple] = []
        add = rows.append
        last_seen: dict[int, tuple[str, datetime]] = {}
        telemetry: list[announce.TelemetryStored] = []
        metric_ids = _METRIC_IDS
        for v in accepted:
            if not isinstance(v.message, TelemetryBatch):
                continue
            gw = v.source.gateway_id
            before = len(rows)
            devices: set[int] = set()
            samples: list[announce.AnnouncedSample] = []
            for r in v.readings:
                dev = ids[(gw, r.device)]
                devices.add(dev)
                quality = QUALITY[r.quality.value]
                ts = r.ts
                # The hot loop (one pass per stored value): plain tuples, no lookups
                # beyond two dicts.
                values = r.values
                for name, value in values.items():
                    if value is not None:
                        add((ts, dev, metric_ids[name], value, quality))
                # A reading the gateway marked bad judges no rule (as in the rollups).
                if quality != _BAD and not announced.isdisjoint(values):
                    samples.extend(
                        (r.device, name, ts, values[name])  # type: ignore[misc]
                        for name in announced.intersection(values)
                        if values[name] is not None
                    )
                seen = last_seen.get(dev)
                if seen is None or seen[1] < ts:
                    last_seen[dev] = (gw, ts)
            stamps = [r.ts for r in v.readings]
            telemetry.append(
                announce.TelemetryStored(
                    v.source.region.value,
                    gw,
                    v.message.stream_id,
                    v.message.seq,
                    len(v.readings),
                    len(rows) - before,
                    frozenset(devices),
                    min(stamps) if stamps else None,
                    max(stamps) if stamps else None,
                    tuple(samples),
                )
            )
        return rows, last_seen, telemetry

    def _device_keys(
        self, conn: Connection[Any], accepted: list[Accepted], now: datetime
    ) -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], int], set[tuple[str, str]]]:
        """Keys of every device the batch names (births and readings): remembered, then
        ingest's key map, then allocated in this transaction — at most the gateway's
        daily allowance of new ones (:mod:`cloud.ingest.device_cap`). Returns (all, new,
        refused: the devices over the allowance, which get no key)."""
        announced = _birth_devices(accepted)
        wanted = announced | {(v.source.gateway_id, r.device) for v in accepted for r in v.readings}
        keys = {k: self._device_ids[k] for k in wanted if k in self._device_ids}
        missing = wanted - keys.keys()
        if missing:
            keys.update(repo.find_device_keys(conn, missing))
            missing -= keys.keys()
        if not missing:
            return keys, {}, set()
        gateways = {gw for gw, _ in missing}
        repo.lock_new_devices(conn, gateways)
        # Another worker may have committed some while we waited for the lock.
        keys.update(repo.find_device_keys(conn, missing))
        missing -= keys.keys()
        day = datetime.combine(now.astimezone(UTC).date(), datetime.min.time(), UTC)
        cap = self._limits.max_new_devices_per_day
        admitted, refused = admit_new_devices(
            missing, announced, repo.devices_added_since(conn, gateways, day), cap
        )
        new = repo.allocate_device_keys(conn, admitted)
        keys.update(new)
        if admitted - new.keys():
            # Allocated by a writer that took no lock (none does today): look them up.
            keys.update(repo.find_device_keys(conn, admitted - new.keys()))
        for (gw, local), dev in sorted(new.items()):
            log.info("allocated device %s for %s/%s", dev, gw, local)
        for gw in sorted({gw for gw, _ in refused}):
            n = sum(1 for g, _ in refused if g == gw)
            log.warning("gateway %s: %d new devices refused (limit %d per UTC day)", gw, n, cap)
        return keys, new, refused

    def _event_device_ids(
        self,
        conn: Connection[Any],
        events: Sequence[tuple[str, EventMsg]],
        keys: Mapping[tuple[str, str], int],
    ) -> dict[tuple[str, str], int]:
        """Keys of the devices events name: this batch's, remembered ones, then ingest's
        key map (another worker may have learned the device), in the batch's own
        transaction. Never allocates: an unknown device stays unnamed."""
        wanted = {(gw, e.device) for gw, e in events if e.device}
        ids = {k: keys[k] for k in wanted if k in keys}
        ids.update({k: self._device_ids[k] for k in wanted - ids.keys() if k in self._device_ids})
        if missing := wanted - ids.keys():
            ids.update(repo.find_device_keys(conn, missing))
        return ids

    def _remember_keys(self, keys: Mapping[tuple[str, str], int]) -> None:
        if len(self._device_ids) + len(keys) > _KEY_CACHE_MAX:
            self._device_ids.clear()
        self._device_ids.update(keys)

    def _dead_letter_rows(
        self, batch: Sequence[InboundMessage], verdicts: Sequence[Accepted | Rejected]
    ) -> tuple[list[DeadLetterRow], int]:
        """Bounded rows of the dead letters the rate limit admits, and how many it held
        back. (A batch retried after a failure asks the limiter again: during a database
        outage more may be held back, never more stored.)"""
        rows: list[DeadLetterRow] = []
        suppressed = 0
        prefix = self._limits.dead_letter_prefix_bytes
        for msg, v in zip(batch, verdicts, strict=True):
            reason = v.reason if isinstance(v, Rejected) else v.quarantine_reason
            if reason is None:
                continue
            if self._dead_limiter.admit(dead_letter_source(msg.topic)):
                rows.append(
                    dead_letter_row(
                        msg.received_at, msg.topic, msg.payload, reason, prefix_bytes=prefix
                    )
                )
            else:
                suppressed += 1
        return rows, suppressed

    @staticmethod
    def _stream_owners(verdicts: list[Accepted | Rejected]) -> dict[UUID, tuple[str, str]]:
        """Streams this batch touches → (region, gateway) that sent them.

        Run after :meth:`_check_stream_owners`: every claim left is the stream owner's.
        """
        owners: dict[UUID, tuple[str, str]] = {}
        for v in verdicts:
            claim = _stream_claim(v)
            if claim is not None and v.source is not None:
                owners[claim[0]] = (v.source.region.value, claim[1])
        return owners

    @staticmethod
    def _record_session(conn: Connection[Any], v: Accepted, received_at: datetime) -> None:
        gw, region = v.source.gateway_id, v.source.region.value
        if isinstance(v.message, BirthMsg):
            repo.upsert_session_birth(conn, gw, region, v.message, received_at)
        elif isinstance(v.message, StateMsg):
            repo.upsert_session_state(conn, gw, region, v.message)

    @staticmethod
    def _advance_streams(
        conn: Connection[Any],
        verdicts: list[Accepted | Rejected],
        owners: dict[UUID, tuple[str, str]],
    ) -> tuple[list[StoredNotice], set[tuple[UUID, int]]]:
        """Advance every stream the batch touches; return the ``stored`` notices and the
        (stream, seq) pairs that were already committed (repeats: nothing to announce)."""
        # Raises StreamOwnerError (the batch is retried and the check then rejects) when
        # another worker created one of these streams for another gateway meanwhile.
        progress = repo.lock_streams(conn, {s: gw for s, (_, gw) in owners.items()})
        seqs: dict[UUID, list[int]] = {s: [] for s in owners}
        for v in verdicts:
            if isinstance(v, Accepted):
                if isinstance(v.message, TelemetryBatch | EventMsg | CmdAck | ConfigState):
                    seqs[v.message.stream_id].append(v.message.seq)
                if isinstance(v.message, EventMsg):
                    # Dropped at the gateway: never coming, so no gap should wait for them.
                    seqs[v.message.stream_id].extend(dropped_seqs(v.message))
            elif v.stream_seq is not None and v.stream_seq[0] in seqs:
                seqs[v.stream_seq[0]].append(v.stream_seq[1])
        notices: list[StoredNotice] = []
        repeats: set[tuple[UUID, int]] = set()
        for stream_id, (region, gw) in sorted(owners.items()):
            update = advance(progress[stream_id], seqs[stream_id])
            repeats.update((stream_id, seq) for seq in update.duplicates)
            if update.opened:
                log.info("stream %s of %s: gaps opened %s", stream_id, gw, update.opened)
            if update.closed:
                log.info("stream %s of %s: gaps closed %s", stream_id, gw, update.closed)
            if update.split_off:
                log.info("stream %s of %s: gaps split %s", stream_id, gw, update.split_off)
            repo.save_stream(conn, stream_id, update)
            notices.append(StoredNotice(region, gw, stream_id, update.progress.watermark))
        return notices, repeats


def _birth_devices(births: list[Accepted]) -> set[tuple[str, str]]:
    """(gateway, local id) of every device the batch's births list (other messages are
    passed over)."""
    return {
        (v.source.gateway_id, d.device)
        for v in births
        if isinstance(v.message, BirthMsg)
        for d in v.message.devices
    }


def _birth_event(v: Accepted, keys: Mapping[tuple[str, str], int]) -> Event:
    """``gateway.birth`` listing the devices that have a key (those over the new-device
    cap have none: the registry never hears of them)."""
    gw, birth = v.source.gateway_id, v.message
    assert isinstance(birth, BirthMsg)
    keyed = [d for d in birth.devices if (gw, d.device) in keys]
    if len(keyed) < len(birth.devices):
        birth = birth.model_copy(update={"devices": keyed})
    ids = {d.device: keys[(gw, d.device)] for d in keyed}
    return announce.gateway_birth(v.source.region.value, gw, birth, ids)


def _refuse_devices(
    v: Accepted | Rejected, refused: set[tuple[str, str]], cap: int
) -> Accepted | Rejected:
    """``v`` without the readings of ``refused`` devices (over the new-device cap),
    which are quarantined with the reason, as is a birth that lists any of them."""
    if not refused or not isinstance(v, Accepted):
        return v
    gw, msg = v.source.gateway_id, v.message
    reason = None
    if isinstance(msg, TelemetryBatch):
        out = [r.device for r in v.readings if (gw, r.device) in refused]
        if out:
            kept = tuple(r for r in v.readings if (gw, r.device) not in refused)
            v = replace(v, readings=kept)
            reason = readings_refusal(gw, out, len(msg.readings), cap)
    elif isinstance(msg, BirthMsg):
        out = [d.device for d in msg.devices if (gw, d.device) in refused]
        if out:
            reason = birth_refusal(gw, out, len(msg.devices), cap)
    if reason is None:
        return v
    return replace(v, quarantine_reason="; ".join(filter(None, [v.quarantine_reason, reason])))


def _last_messages(
    batch: Sequence[InboundMessage], verdicts: list[Accepted | Rejected]
) -> list[tuple[str, str, datetime]]:
    """(gateway, region, newest receipt) of every accepted message's gateway."""
    newest: dict[tuple[str, str], datetime] = {}
    for msg, v in zip(batch, verdicts, strict=True):
        if isinstance(v, Accepted):
            key = (v.source.gateway_id, v.source.region.value)
            if key not in newest or newest[key] < msg.received_at:
                newest[key] = msg.received_at
    return [(gw, region, at) for (gw, region), at in newest.items()]


def _device_reports(
    accepted: list[Accepted], keys: Mapping[tuple[str, str], int]
) -> list[tuple[str, str, str, datetime]]:
    """(gateway, local id, status, reported at) from births (devices with a key only)
    and device events; the newest per device within the batch."""
    newest: dict[tuple[str, str], tuple[str, datetime]] = {}

    def put(gw: str, local: str, status: str, at: datetime) -> None:
        key = (gw, local)
        if key not in newest or newest[key][1] <= at:
            newest[key] = (status, at)

    for v in accepted:
        msg = v.message
        if isinstance(msg, BirthMsg):
            for d in msg.devices:
                if (v.source.gateway_id, d.device) in keys:
                    put(v.source.gateway_id, d.device, d.status, msg.ts)
        elif isinstance(msg, EventMsg) and msg.device and (status := device_status(msg.event)):
            put(v.source.gateway_id, msg.device, status, msg.ts)  # a device_* event
    return [(gw, local, status, at) for (gw, local), (status, at) in newest.items()]


def _stream_claim(v: Accepted | Rejected) -> tuple[UUID, str] | None:
    """(stream_id, gateway) a verdict would touch: a birth names its stream, buffered
    messages and salvaged rejections count a seq in it."""
    if isinstance(v, Accepted):
        msg = v.message
        if isinstance(msg, BufferedGatewayMessage | BirthMsg):
            return msg.stream_id, v.source.gateway_id
        return None
    if v.stream_seq is not None and v.source is not None:
        # Set only by validation, for registered gateways (see _check_gateways).
        return v.stream_seq[0], v.source.gateway_id
    return None
