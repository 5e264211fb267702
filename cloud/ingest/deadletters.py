"""What ingest keeps of a message it refuses (issue 12): a bounded dead letter, and at
most so many of them per source and per worker, so junk — from one gateway, or under
sprayed gateway ids — cannot fill ``ingest.dead_letters``.

A dead letter stores a prefix of the payload with the original's size and SHA-256 (and
the dedupe digest over topic and whole payload, migration 003). The
:class:`DeadLetterLimiter` admits dead letters through two token buckets — the source's
(the gateway id in the topic; least recently used sources are forgotten past a cap) and
the worker's for all sources — and counts the rest, which are not stored: their message
is acknowledged all the same (its stream advances as for any refusal), so nothing is
redelivered forever. Pure: time comes from an injectable clock.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from pacing import TokenBucket

__all__ = [
    "DeadLetterLimiter",
    "DeadLetterRow",
    "LimiterConfig",
    "Suppressed",
    "dead_letter_row",
    "dead_letter_source",
    "source_sql",
]

#: received_at, topic, payload prefix, reason, digest, payload size, payload SHA-256.
DeadLetterRow = tuple[datetime, str, bytes, str, bytes, int, bytes]
#: Characters of a topic and of a reason stored (a topic level or a quoted key can be
#: as long as the payload allows).
TOPIC_MAX_CHARS = 512
REASON_MAX_CHARS = 2_000
_SOURCE_MAX_CHARS = 100
#: Sources named in a summary; the rest are added up.
_SUMMARY_TOP = 5
_OTHERS = "(other sources)"


def dead_letter_row(
    received_at: datetime, topic: str, payload: bytes, reason: str, *, prefix_bytes: int
) -> DeadLetterRow:
    """The row to store for a refused message: at most ``prefix_bytes`` of its payload."""
    digest = hashlib.sha256(topic.encode("utf-8", "replace") + b"\x00" + payload).digest()
    return (
        received_at,
        _bounded_text(topic, TOPIC_MAX_CHARS),
        payload[:prefix_bytes],
        _bounded_text(reason, REASON_MAX_CHARS),
        digest,
        len(payload),
        hashlib.sha256(payload).digest(),
    )


def _bounded_text(text: str, most: int) -> str:
    # PostgreSQL text cannot hold U+0000 (a reason may quote a key that has it).
    text = text.replace("\x00", "\\u0000")
    return text if len(text) <= most else text[: most - 1] + "…"


def dead_letter_source(topic: str) -> str:
    """Whom a dead letter is charged to: ``<region>/<gateway id>`` of a gateway topic
    (``potr/v1/<region>/<gateway>/<kind>``, valid or not), else the topic itself."""
    parts = topic.split("/", 4)
    source = "/".join(parts[2:4]) if len(parts) == 5 and parts[:2] == ["potr", "v1"] else topic
    return source[:_SOURCE_MAX_CHARS]


def source_sql(topic_column: str) -> tuple[str, str]:
    """SQL expressions of the region and the gateway id a stored dead letter's topic
    names, read as :func:`dead_letter_source` reads them (both NULL for a topic that is
    no gateway topic): what the read side filters dead letters by. For a query run with
    parameters (its ``%`` are doubled)."""
    gateway_topic = f"{topic_column} LIKE 'potr/v1/%%/%%/%%'"
    return (
        f"(CASE WHEN {gateway_topic} THEN split_part({topic_column}, '/', 3) END)",
        f"(CASE WHEN {gateway_topic} THEN split_part({topic_column}, '/', 4) END)",
    )


@dataclass(frozen=True, slots=True)
class LimiterConfig:
    """Rates in dead letters per second; defaults are :class:`IngestSettings`' defaults."""

    per_source_per_s: float = 1 / 60
    source_burst: int = 20
    total_per_s: float = 1.0
    total_burst: int = 200
    sources_max: int = 10_000
    summary_s: float = 60.0


@dataclass(frozen=True, slots=True)
class Suppressed:
    """Dead letters not stored over ``seconds``: how many, and the top sources."""

    total: int
    seconds: float
    top: tuple[tuple[str, int], ...]

    def describe(self) -> str:
        top = ", ".join(f"{source} {n}" for source, n in self.top)
        return (
            f"{self.total} dead letters not stored in the last {self.seconds:.0f} s "
            f"(rate limit; by source: {top})"
        )


class DeadLetterLimiter:
    """Admit or count each dead letter; not thread-safe (the writer thread owns it)."""

    def __init__(self, config: LimiterConfig, clock: Callable[[], float] = time.monotonic):
        self._config = config
        self._clock = clock
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()
        self._total = TokenBucket(config.total_per_s, config.total_burst, clock)
        self._window_start = clock()
        self._window: Counter[str] = Counter()
        #: Dead letters not stored since start (only grows).
        self.suppressed = 0

    def admit(self, source: str) -> bool:
        """True: store this dead letter (a token of the source's and of the total
        bucket taken); False: counted as suppressed."""
        now = self._clock()
        bucket = self._bucket(source, now)
        if bucket.available(now) >= 1 and self._total.available(now) >= 1:
            bucket.take(1, now)
            self._total.take(1, now)
            return True
        self.suppressed += 1
        # Counted per source only for so many sources, so sprayed ids cannot grow it.
        key = (
            source
            if source in self._window or len(self._window) < self._config.sources_max
            else _OTHERS
        )
        self._window[key] += 1
        return False

    def summary(self) -> Suppressed | None:
        """Once every ``summary_s``: what was suppressed since the last summary (None
        when nothing was, or it is not yet time)."""
        now = self._clock()
        seconds = now - self._window_start
        if seconds < self._config.summary_s:
            return None
        window, self._window, self._window_start = self._window, Counter(), now
        if not window:
            return None
        return Suppressed(sum(window.values()), seconds, tuple(window.most_common(_SUMMARY_TOP)))

    def _bucket(self, source: str, now: float) -> TokenBucket:
        bucket = self._buckets.get(source)
        if bucket is not None:
            self._buckets.move_to_end(source)
            return bucket
        if len(self._buckets) >= self._config.sources_max:
            # A forgotten source starts again with a full burst: the total bucket is
            # what bounds many sources together.
            self._buckets.popitem(last=False)
        bucket = TokenBucket(
            self._config.per_source_per_s, self._config.source_burst, self._clock, start=now
        )
        self._buckets[source] = bucket
        return bucket
