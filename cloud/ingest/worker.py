"""The ingest worker: MQTT (paho thread) → bounded queue → writer thread → PostgreSQL.

Delivery: QoS 1 with manual acks on a persistent session. A batch is acknowledged only
after its transaction commits, so a crash or a database outage makes the broker
redeliver instead of losing; repeats are harmless (``ON CONFLICT DO NOTHING`` and
per-stream seq bookkeeping). After a commit the worker publishes ``stored`` per gateway
stream, at most once per gateway per ``stored_interval_s`` (held-back notices follow).

Blocking threads: ``worker.start()`` … ``worker.stop()`` (also a context manager); a
process builds it with :func:`cloud.bootstrap.create_ingest_worker` and runs it from
asyncio with :func:`cloud.bootstrap.run_ingest`.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cloud.adapters.mqtt import InboundMessage, MqttConsumer
from cloud.adapters.postgres import Connection, ConnectionPool, create_pool, ping
from cloud.ingest.coalesce import StoredCoalescer, StoredNotice
from cloud.ingest.dayclose import close_days
from cloud.ingest.limits import IngestLimits
from cloud.ingest.pipeline import IngestPipeline
from cloud.ingest.presence import check_presence
from cloud.ingest.settings import IngestSettings
from cloud.mqtt_options import mqtt_options
from cloud.telemetry import TelemetryStore
from cloud.telemetry.maintenance import StoreMaintenance
from contracts.messages import StoredMsg
from contracts.timeutil import utc_now
from contracts.topics import GATEWAY_TO_CLOUD, Kind, ingest_filter, topic
from pacing import Backoff

log = logging.getLogger(__name__)
#: TEST ONLY: when set to N, the worker SIGKILLs its own process right after the N-th
#: batch commits and before it is acknowledged (reliability scenario 7). Never set it in
#: production: the process dies on purpose.
CRASH_AFTER_COMMIT_ENV = "POTR_INGEST_TEST_CRASH_AFTER_COMMIT"
#: Attempts at a batch before it is split, and at a single message before it is
#: dead-lettered as poison (only while the database answers).
MAX_ATTEMPTS = 3
#: Between attempts at one batch: 0.4 s doubling to 30 s (one worker, no fleet to spread).
_RETRY = Backoff(0.4, 30.0, jitter="none")


@dataclass
class IngestStats:
    """Counters since start (read them from any thread; they only grow)."""

    messages: int = 0
    batches: int = 0
    readings_added: int = 0
    dead_letters: int = 0
    #: Dead letters the rate limit held back (their messages were acknowledged).
    dead_letters_suppressed: int = 0
    stored_sent: int = 0
    failures: int = 0


def subscriptions(settings: IngestSettings) -> list[str]:
    group = "ingest" if settings.mqtt_shared_subscription else None
    return [
        ingest_filter(settings.ingest_region, kind, shared_group=group)
        for kind in sorted(GATEWAY_TO_CLOUD)
    ]


class IngestWorker:
    """One ingest consumer; run several with distinct ``mqtt_client_id`` to scale out."""

    def __init__(
        self,
        settings: IngestSettings,
        *,
        pool: ConnectionPool[Connection[Any]] | None = None,
        crash_after_commit: int | None = None,
    ) -> None:
        self._settings = settings
        self._crash_after_commit = crash_after_commit
        self._own_pool = pool is None
        self._pool = (
            pool
            if pool is not None
            else create_pool(
                settings.database_url,
                min_size=1,
                # The writer, the offline check and the store's maintenance (which
                # may take a second connection to create partitions) at once.
                max_size=4,
                name="ingest",
                statement_timeout_ms=settings.db_statement_timeout_ms,
            )
        )
        self.store = TelemetryStore(
            self._pool,
            write_mode=settings.telemetry_write_mode,
            past_days=settings.ingest_partition_past_days,
        )
        self.maintenance = StoreMaintenance(self._pool, settings, store=self.store)
        self._pipeline = IngestPipeline(
            self._pool, self.store, limits=IngestLimits.from_settings(settings)
        )
        self._queue: queue.Queue[InboundMessage] = queue.Queue(settings.ingest_queue_max)
        self._stop = threading.Event()
        self._coalescer = StoredCoalescer(settings.stored_interval_s)
        self._writer: threading.Thread | None = None
        self._presence: threading.Thread | None = None
        self._maintainer: threading.Thread | None = None
        self.stats = IngestStats()
        self._consumer = MqttConsumer(
            mqtt_options(
                settings,
                settings.mqtt_client_id,
                session_expiry_s=settings.mqtt_session_expiry_s,
                receive_maximum=settings.mqtt_receive_maximum,
            ),
            subscriptions(settings),
            self._enqueue,
        )

    # -- lifecycle ---------------------------------------------------------------
    def start(self, timeout_s: float = 10.0) -> None:
        """Prepare the store, start the writer, connect and wait until subscribed."""
        self.store.sync_catalog()
        self.store.create_ahead(utc_now().date())
        self._stop.clear()
        self._writer = threading.Thread(target=self._run_writer, name="ingest-writer", daemon=True)
        self._writer.start()
        self._presence = threading.Thread(
            target=self._run_presence, name="ingest-presence", daemon=True
        )
        self._presence.start()
        if self._settings.telemetry_maintenance_in_worker:
            # Every worker schedules it; one at a time runs it (advisory lock).
            self._maintainer = threading.Thread(
                target=self.maintenance.run_until,
                args=(self._stop,),
                name="ingest-maintenance",
                daemon=True,
            )
            self._maintainer.start()
        try:
            self._consumer.start(timeout_s)
        except Exception:
            self._stop_writer(timeout_s)
            raise
        log.info(
            "ingest worker %s subscribed to %s",
            self._settings.mqtt_client_id,
            subscriptions(self._settings),
        )

    def stop(self, timeout_s: float = 10.0) -> None:
        """Finish the batch in hand, send held-back ``stored`` notices, disconnect.

        Messages still queued are not acknowledged: the broker redelivers them.
        """
        self._stop_writer(timeout_s)
        self._consumer.stop()
        if self._own_pool:
            self._pool.close()

    @property
    def subscribe_rounds(self) -> int:
        """How many connections so far got their subscriptions acknowledged."""
        return self._consumer.subscribe_rounds

    def wait_subscribed(self, after: int, timeout_s: float) -> bool:
        """Wait until subscribed on a connection newer than ``after`` counted (a
        :attr:`subscribe_rounds` value): after a broker restart, what gateways publish
        before this reaches no worker (see ``cloud.adapters.mqtt``)."""
        return self._consumer.wait_subscribed(after, timeout_s)

    def request_stop(self) -> None:
        """Ask the writer to stop without waiting: it acks nothing it has not committed."""
        self._stop.set()

    def _stop_writer(self, timeout_s: float) -> None:
        self._stop.set()
        if self._writer is not None:
            self._writer.join(timeout_s)
            self._writer = None
        if self._presence is not None:
            self._presence.join(timeout_s)
            self._presence = None
        if self._maintainer is not None:
            self._maintainer.join(timeout_s)
            self._maintainer = None

    def __enter__(self) -> IngestWorker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- paho's thread -----------------------------------------------------------
    def _enqueue(self, message: InboundMessage) -> None:
        # Blocking here is the back-pressure: paho stops reading and the broker's
        # in-flight window fills up.
        while not self._stop.is_set():
            try:
                self._queue.put(message, timeout=0.5)
                return
            except queue.Full:
                continue

    # -- the offline check and the day closing -----------------------------------
    def _run_presence(self) -> None:
        """Every ``offline_check_interval_s``: the offline check, then the day closing,
        each if no other worker is running it (an advisory lock each; separate
        transactions, so one failing does not hold the other back)."""
        s = self._settings
        while not self._stop.wait(s.offline_check_interval_s):
            now = utc_now()
            try:
                check_presence(self._pool, now, silence_factor=s.offline_silence_factor)
            except Exception:
                log.exception("offline check failed; trying again next round")
            try:
                close_days(
                    self._pool,
                    now,
                    grace_s=s.completeness_close_grace_s,
                    max_days=s.completeness_close_max_days,
                )
            except Exception:
                log.exception("day closing failed; trying again next round")

    # -- the writer thread -------------------------------------------------------
    def _run_writer(self) -> None:
        while not self._stop.is_set():
            batch = self._collect()
            if batch:
                self._handle(batch)
            self._send_stored(self._coalescer.due(time.monotonic()))
            self._pipeline.log_suppressed()
        self._send_stored(self._coalescer.drain())

    def _collect(self) -> list[InboundMessage]:
        """Up to ``ingest_batch_max`` messages, within ``ingest_flush_ms`` of the first;
        earlier when nothing arrives for ``ingest_idle_flush_ms``."""
        s = self._settings
        flush_s, idle_s = s.ingest_flush_ms / 1000, s.ingest_idle_flush_ms / 1000
        # Never wait for more than the broker may have in flight to us unacknowledged.
        most = min(s.ingest_batch_max, s.mqtt_receive_maximum)
        try:
            batch = [self._queue.get(timeout=flush_s)]
        except queue.Empty:
            return []
        deadline = time.monotonic() + flush_s
        while len(batch) < most:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                batch.append(self._queue.get(timeout=min(remaining, idle_s)))
            except queue.Empty:
                break
        return batch

    def _handle(self, batch: Sequence[InboundMessage]) -> bool:
        """Commit then ack; retry on failure; False when stopping left it unacked."""
        attempt = 0
        while True:
            try:
                outcome = self._pipeline.process(batch)
                break
            except Exception as exc:
                attempt += 1
                self.stats.failures += 1
                log.exception("ingest batch of %d failed (attempt %d)", len(batch), attempt)
                if self._stop.is_set():
                    return False
                if attempt >= MAX_ATTEMPTS and len(batch) > 1:
                    return all(self._handle([m]) for m in batch)
                if attempt >= MAX_ATTEMPTS and self._database_answers():
                    return self._poison(batch[0], exc)
                self._stop.wait(_RETRY.delay(attempt))
        self.stats.batches += 1
        if self._crash_after_commit is not None and self.stats.batches >= self._crash_after_commit:
            log.critical(
                "%s: killing this process after a commit, before its ack", CRASH_AFTER_COMMIT_ENV
            )
            os.kill(os.getpid(), signal.SIGKILL)
        for m in batch:
            self._consumer.ack(m)
        self.stats.messages += len(batch)
        self.stats.readings_added += outcome.readings_added
        self.stats.dead_letters += outcome.dead_letters
        self.stats.dead_letters_suppressed += outcome.dead_letters_suppressed
        self._coalescer.add(outcome.stored)
        return True

    def _poison(self, message: InboundMessage, exc: Exception) -> bool:
        """Dead-letter a message that fails on its own, counting its seq in its stream
        (one transaction), so the stream's ``stored`` watermark can pass it."""
        try:
            notices = self._pipeline.dead_letter(
                message, f"ingest failed: {type(exc).__name__}: {exc}"
            )
        except Exception:
            log.exception("could not dead-letter poison message on %s", message.topic)
            return False
        self._consumer.ack(message)
        self.stats.messages += 1
        self.stats.dead_letters += 1
        self._coalescer.add(notices)
        return True

    def _database_answers(self) -> bool:
        try:
            ping(self._pool)
        except Exception:
            return False
        return True

    def _send_stored(self, notices: list[StoredNotice]) -> None:
        failed: list[StoredNotice] = []
        for n in notices:
            msg = StoredMsg(stream_id=n.stream_id, upto_seq=n.upto_seq, ts=utc_now())
            if self._consumer.publish(
                topic(n.region, n.gateway_id, Kind.STORED), msg.to_json(), qos=1
            ):
                self.stats.stored_sent += 1
            else:
                failed.append(n)
        if failed and not self._stop.is_set():
            self._coalescer.add(failed)
